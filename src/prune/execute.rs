//! Carrying a prune plan out, in the order docs/catalog.md gives: (1) one transaction forgets
//! the snapshots and their versions and moves every archive to delete into `pruned_archives`;
//! (2) the backend deletes each (a missing one counts as deleted); (3) each deletion is
//! recorded. A kill between any two steps leaves a catalog that no longer uses what is being
//! deleted, and the next prune finishes the pending deletions first.

use super::plan::{PrunePlan, Why};
use super::report::PruneReport;
use crate::backend::Backend;
use crate::catalog::{Catalog, Doomed};
use crate::error::{BackendErrorKind, Result};

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
    let mut report = PruneReport {
        name: plan.name.clone(),
        backend: plan.backend.clone(),
        dry_run: false,
        totals: plan.totals.clone(),
        ..Default::default()
    };
    delete_pending(backend, catalog, now, &mut report)?;
    Ok(report)
}

/// Deletes every archive marked for deletion and not yet confirmed deleted.
fn delete_pending(
    backend: &dyn Backend,
    catalog: &mut Catalog,
    now: i64,
    report: &mut PruneReport,
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
        done.push(p.remote_id);
        if done.len() >= RECORD_BATCH {
            catalog.mark_deleted_many(&std::mem::take(&mut done), now)?;
        }
    }
    catalog.mark_deleted_many(&done, now)
}
