//! Carrying a prune plan out, in the order docs/catalog.md gives: (1) one transaction forgets
//! the snapshots and their versions and moves every archive to delete into `pruned_archives`;
//! (2) the backend deletes each (a missing one counts as deleted); (3) each deletion is
//! recorded. A kill between any two steps leaves a catalog that no longer uses what is being
//! deleted, and the next prune finishes the pending deletions first. The report counts what
//! was deleted, not what was planned: a deletion the backend refused is not counted (it stays
//! pending for the next prune), and one an interrupted prune left pending is counted by the
//! run that finishes it.

use super::plan::{PlannedArchive, PrunePlan, Why};
use super::report::{PruneReport, PruneTotals};
use crate::backend::Backend;
use crate::catalog::{ArchiveKind, Catalog, Doomed, PrunedArchive};
use crate::error::{BackendErrorKind, Result};
use std::collections::HashMap;

/// Deletions recorded per transaction.
const RECORD_BATCH: usize = 256;

/// Executes `plan` against `backend` and `catalog` at time `now`.
pub fn execute(
    plan: PrunePlan,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    now: i64,
) -> Result<PruneReport> {
    let doomed: Vec<Doomed> = plan
        .delete
        .iter()
        .map(|a| match (a.why, a.id) {
            (Why::Unknown, _) | (_, None) => Doomed::Unknown {
                remote_id: a.remote_id.clone(),
                kind: a.kind.clone(),
                size: a.size,
            },
            (_, Some(id)) => Doomed::Archive(id),
        })
        .collect();
    if !plan.forget.is_empty() || !doomed.is_empty() {
        catalog.forget_and_mark(&plan.forget, &doomed, now)?;
    }
    // Forgetting is done; deletions are counted as the backend confirms them.
    let totals = PruneTotals {
        archives_deleted: 0,
        bytes_deleted: 0,
        catalog_copies_deleted: 0,
        unknown_deleted: 0,
        monthly_cost_saved: 0.0,
        ..plan.totals.clone()
    };
    let mut report = PruneReport {
        name: plan.name.clone(),
        backend: plan.backend.clone(),
        dry_run: false,
        totals,
        ..Default::default()
    };
    let planned: HashMap<&str, &PlannedArchive> = plan
        .delete
        .iter()
        .map(|a| (a.remote_id.as_str(), a))
        .collect();
    delete_pending(backend, catalog, now, &mut report, |report, p| {
        let (place, why) = match planned.get(p.remote_id.as_str()) {
            Some(a) => (a.place.clone(), a.why),
            None => left_over(&plan.backend, p),
        };
        report
            .totals
            .add_deleted(&plan.backend, &place, p.size, why);
    })?;
    Ok(report)
}

/// Where an archive an interrupted prune left pending lay, and why it went, from its record:
/// no backend recorded means an unknown object; catalog copies are S3 `STANDARD`; data of an
/// S3 class no longer known is priced as `DEEP_ARCHIVE` (savings err low).
fn left_over(backend: &str, p: &PrunedArchive) -> (String, Why) {
    let catalog_copy =
        p.kind == ArchiveKind::Catalog.as_str() || p.kind == ArchiveKind::CatalogDelta.as_str();
    let why = if p.backend.is_empty() {
        Why::Unknown
    } else if catalog_copy {
        Why::OldCatalogCopy
    } else {
        Why::Unneeded
    };
    let class = catalog_copy.then_some("STANDARD");
    (crate::cost::place(backend, class), why)
}

/// Deletes every archive marked for deletion and not yet confirmed deleted, calling `deleted`
/// for each one the backend deleted (or no longer has).
fn delete_pending(
    backend: &dyn Backend,
    catalog: &mut Catalog,
    now: i64,
    report: &mut PruneReport,
    mut deleted: impl FnMut(&mut PruneReport, &PrunedArchive),
) -> Result<()> {
    let known: std::collections::HashSet<String> = catalog
        .archives()?
        .into_iter()
        .map(|a| a.remote_id)
        .collect();
    // Deletions are recorded in batches: one not recorded yet is only tried again.
    let mut done: Vec<String> = Vec::new();
    for p in catalog.pending_deletions()? {
        if known.contains(&p.remote_id) {
            // A sync stored the same content under the same key again: it is in use.
            catalog.forget_pruned(&p.remote_id)?;
            continue;
        }
        crate::log::verbose(&format!(
            "{}: deleting {} {}",
            report.name, p.kind, p.remote_id
        ));
        match backend.delete(&p.remote_id) {
            Ok(()) => {}
            Err(e) if e.backend_kind() == Some(BackendErrorKind::NotFound) => {}
            Err(e) => {
                crate::log::error(&format!("{}: {e}", report.name));
                report.problems.push(e.to_string());
                continue;
            }
        }
        deleted(report, &p);
        done.push(p.remote_id);
        if done.len() >= RECORD_BATCH {
            catalog.mark_deleted_many(&std::mem::take(&mut done), now)?;
        }
    }
    catalog.mark_deleted_many(&done, now)
}
