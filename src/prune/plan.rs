//! The prune plan: what to forget, delete now, hold, and why. Asks the backend nothing: the
//! listing for `--unknown` is passed in.

use super::report::PruneTotals;
use super::{DAY, Retention};
use crate::backend::ObjectInfo;
use crate::catalog::{ArchiveKind, ArchiveRow, Catalog, PrunedArchive, SnapshotId};
use crate::error::Result;
use serde::Serialize;
use std::collections::HashSet;

/// What a prune of one profile is asked to do.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub profile: String,
    /// `local`, `s3` or `glacier`.
    pub backend: String,
    /// The S3 class data goes to now (for costs; archives use the class recorded for them).
    pub storage_class: Option<String>,
    pub retention: Retention,
    pub keep_catalog_copies: u32,
    pub min_storage_days: u32,
    /// Seconds since the epoch: "now" for holds.
    pub now: i64,
    pub dry_run: bool,
    /// As descriptions carry it: a Glacier object is this profile's only when its description
    /// names this (`None` on other backends, where the prefix or directory says it).
    pub description_profile: Option<String>,
}

/// Why an archive goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// No kept version needs its contents.
    Unneeded,
    /// A catalog copy older than the newest `keep_catalog_copies`.
    OldCatalogCopy,
    /// In the backend, unknown to the catalog, and this profile's by its name or description.
    Unknown,
}

/// An archive to delete now or to hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedArchive {
    /// Catalog id (`None` for unknown archives).
    pub id: Option<i64>,
    pub remote_id: String,
    pub kind: String,
    pub size: u64,
    pub why: Why,
    /// `s3:<CLASS>`, `glacier` or `local`: what set the hold.
    pub place: String,
    pub stored_at: Option<i64>,
    /// Seconds since the epoch from which deleting costs no early-deletion fee.
    pub held_until: i64,
}

/// Everything a prune will do, decided before anything is done.
#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    pub name: String,
    pub backend: String,
    pub dry_run: bool,
    /// False when no retention key is set: no snapshot is forgotten.
    pub policy: bool,
    pub forget: Vec<SnapshotId>,
    pub snapshots_kept: u64,
    pub versions_forgotten: u64,
    /// Past their minimum storage duration: deleted now.
    pub delete: Vec<PlannedArchive>,
    /// Younger: listed, deleted by a later prune.
    pub held: Vec<PlannedArchive>,
    /// Deletions an interrupted prune left: finished first.
    pub pending: Vec<String>,
    /// `--dry-run --unknown` found no finished vault inventory (a dry run starts none): the
    /// unknown archives are not in this plan. `prune --unknown` or `verify --remote` requests
    /// the inventory; a dry run after it has finished lists them.
    pub inventory_needed: bool,
    #[serde(flatten)]
    pub totals: PruneTotals,
}

/// The catalog objects to drop. A full copy plus the deltas after it make one recover point:
/// the newest `keep` full copies are kept (at least one), with every delta newer than the oldest
/// of them; older full copies and older deltas go. With no full copy at all nothing goes.
pub fn select_catalog_copies(copies: Vec<ArchiveRow>, keep: u32) -> Vec<ArchiveRow> {
    let mut fulls: Vec<(i64, i64)> = copies
        .iter()
        .filter(|a| a.kind == ArchiveKind::Catalog)
        .map(|a| (a.stored_at, a.id))
        .collect();
    fulls.sort_by_key(|&k| std::cmp::Reverse(k));
    let kept = fulls.len().min(keep.max(1) as usize);
    let Some(&oldest_kept) = kept.checked_sub(1).and_then(|i| fulls.get(i)) else {
        return Vec::new();
    };
    let mut drop: Vec<ArchiveRow> = copies
        .into_iter()
        .filter(|a| (a.stored_at, a.id) < oldest_kept)
        .collect();
    drop.sort_by_key(|a| std::cmp::Reverse((a.stored_at, a.id)));
    drop
}

/// Plans the prune of `opts` on `catalog`; `listing` is the backend's, for `--unknown`.
pub fn plan(
    opts: &PruneOptions,
    catalog: &Catalog,
    listing: Option<&[ObjectInfo]>,
) -> Result<PrunePlan> {
    let snapshots = catalog.snapshots()?;
    let complete: Vec<_> = snapshots.iter().filter(|s| s.complete).collect();
    let times: Vec<i64> = complete
        .iter()
        .map(|s| s.finished_at.unwrap_or(s.started_at))
        .collect();
    let mut keep = opts.retention.keep(&times, opts.now);
    // The last complete sync (by id) is the tree as it stands: always kept, even when a clock
    // gone wrong dated an earlier sync later.
    if let Some(last) = keep.last_mut() {
        *last = true;
    }
    let forget: Vec<SnapshotId> = complete
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(s, _)| s.id)
        .collect();
    let dead = catalog.dead_after_forget(&forget)?;
    let classes = catalog.storage_classes()?;
    let mut goes: Vec<PlannedArchive> = dead
        .archives
        .iter()
        .map(|a| planned(opts, &classes, a, Why::Unneeded))
        .collect();
    let copies = catalog
        .archives()?
        .into_iter()
        .filter(|a| matches!(a.kind, ArchiveKind::Catalog | ArchiveKind::CatalogDelta))
        .collect();
    for a in select_catalog_copies(copies, opts.keep_catalog_copies) {
        goes.push(planned(opts, &classes, &a, Why::OldCatalogCopy));
    }
    let pending = catalog.pending_deletions()?;
    if let Some(listing) = listing {
        goes.extend(unknown(opts, catalog, &classes, listing, &pending)?);
    }
    let (delete, held): (Vec<_>, Vec<_>) = goes.into_iter().partition(|a| opts.now >= a.held_until);
    let mut plan = PrunePlan {
        name: opts.profile.clone(),
        backend: opts.backend.clone(),
        dry_run: opts.dry_run,
        policy: !opts.retention.is_empty(),
        snapshots_kept: (snapshots.len() - forget.len()) as u64,
        forget,
        versions_forgotten: dead.versions,
        delete,
        held,
        pending: pending.into_iter().map(|p| p.remote_id).collect(),
        inventory_needed: false,
        totals: PruneTotals::default(),
    };
    plan.totals = PruneTotals::of(&plan, opts);
    Ok(plan)
}

/// The S3 class an archive was stored in: catalog copies go to `STANDARD`; data to the class
/// in effect when it was stored (`storage_classes`); `None` when no record says.
fn class_at(classes: &[(i64, String)], kind: &str, stored_at: i64) -> Option<String> {
    if kind == ArchiveKind::Catalog.as_str() || kind == ArchiveKind::CatalogDelta.as_str() {
        return Some("STANDARD".into());
    }
    crate::catalog::storage_class_at(classes, stored_at).map(str::to_string)
}

/// Where an archive lies and until when it is held.
fn hold(
    opts: &PruneOptions,
    classes: &[(i64, String)],
    kind: &str,
    stored_at: i64,
) -> (String, i64) {
    let class = (opts.backend == "s3")
        .then(|| class_at(classes, kind, stored_at))
        .flatten();
    let days =
        crate::cost::min_storage_days(&opts.backend, class.as_deref()).max(opts.min_storage_days);
    let place = match (&*opts.backend, class) {
        ("s3", Some(c)) => format!("s3:{c}"),
        ("s3", None) => "s3:unrecorded class, held as DEEP_ARCHIVE".into(),
        (b, _) => b.to_string(),
    };
    // No minimum: deletable now, even when `stored_at` runs a few seconds ahead of the clock
    // (catalog copies get one second after the last, so quick syncs run ahead).
    let until = match days {
        0 => stored_at.min(opts.now),
        _ => stored_at + i64::from(days) * DAY,
    };
    (place, until)
}

fn planned(
    opts: &PruneOptions,
    classes: &[(i64, String)],
    a: &ArchiveRow,
    why: Why,
) -> PlannedArchive {
    let (place, held_until) = hold(opts, classes, a.kind.as_str(), a.stored_at);
    PlannedArchive {
        id: Some(a.id),
        remote_id: a.remote_id.clone(),
        kind: a.kind.as_str().to_string(),
        size: a.size,
        why,
        place,
        stored_at: Some(a.stored_at),
        held_until,
    }
}

/// Listed objects the catalog does not know that are provably this profile's. An object whose
/// age is unknown is held as if stored now.
fn unknown(
    opts: &PruneOptions,
    catalog: &Catalog,
    classes: &[(i64, String)],
    listing: &[ObjectInfo],
    pending: &[PrunedArchive],
) -> Result<Vec<PlannedArchive>> {
    let mut known: HashSet<String> = catalog
        .archives()?
        .into_iter()
        .map(|a| a.remote_id)
        .collect();
    known.extend(catalog.pruned_ids()?);
    known.extend(pending.iter().map(|p| p.remote_id.clone()));
    let mut out = Vec::new();
    for o in listing {
        if known.contains(&o.id) || !owned(opts, o) {
            continue;
        }
        let kind = o.kind.map_or("file", |k| k.as_str());
        let stored_at = o.created.unwrap_or(opts.now);
        let (place, held_until) = hold(opts, classes, kind, stored_at);
        out.push(PlannedArchive {
            id: None,
            remote_id: o.id.clone(),
            kind: kind.to_string(),
            size: o.size,
            why: Why::Unknown,
            place,
            stored_at: o.created,
            held_until,
        });
    }
    Ok(out)
}

/// Whether an object is provably this profile's: named as glaciersync names objects (the
/// listing covers only this profile's prefix or directory) and, in a vault, described as ours
/// with this profile's name. Archives of the 2013 script (other descriptions) never are.
fn owned(opts: &PruneOptions, o: &ObjectInfo) -> bool {
    if o.kind.is_none() || o.tree_hash.is_none() {
        return false;
    }
    match &opts.description_profile {
        Some(ours) => o.profile.as_deref() == Some(ours.as_str()),
        None => opts.backend != "glacier",
    }
}
