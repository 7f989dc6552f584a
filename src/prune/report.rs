//! What a prune did (or, in a dry run, would do): the totals, text and JSON.

use super::plan::{PruneOptions, PrunePlan};
use super::{Why, date};
use crate::report::{Exit, Report};
use crate::units::bytes;
use serde::Serialize;
use std::fmt;

/// The figures of a prune (planned or done).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneTotals {
    pub snapshots_forgotten: u64,
    pub versions_forgotten: u64,
    pub archives_deleted: u64,
    pub bytes_deleted: u64,
    pub catalog_copies_deleted: u64,
    pub unknown_deleted: u64,
    pub archives_held: u64,
    pub bytes_held: u64,
    /// `YYYY-MM-DD` from which everything held may go (the latest hold), if anything is held.
    pub held_until: Option<String>,
    /// Storage no longer paid for, at list prices (USD a month).
    pub monthly_cost_saved: f64,
}

impl PruneTotals {
    pub(super) fn of(plan: &PrunePlan, opts: &PruneOptions) -> PruneTotals {
        let mut t = PruneTotals {
            snapshots_forgotten: plan.forget.len() as u64,
            versions_forgotten: plan.versions_forgotten,
            ..Default::default()
        };
        for a in &plan.delete {
            t.add_deleted(&opts.backend, &a.place, a.size, a.why);
        }
        for a in &plan.held {
            t.archives_held += 1;
            t.bytes_held += a.size;
        }
        t.held_until = plan.held.iter().map(|a| a.held_until).max().map(date);
        t
    }

    /// Counts one archive deleted (or, in a plan, to delete): `place` as
    /// [`PlannedArchive::place`](super::PlannedArchive::place) gives it, priced from it.
    pub(super) fn add_deleted(&mut self, backend: &str, place: &str, size: u64, why: Why) {
        self.archives_deleted += 1;
        self.bytes_deleted += size;
        self.catalog_copies_deleted += u64::from(why == Why::OldCatalogCopy);
        self.unknown_deleted += u64::from(why == Why::Unknown);
        let class = place.strip_prefix("s3:");
        self.monthly_cost_saved += crate::cost::pricing(backend, class).monthly(size, 1);
    }
}

impl Report for PrunePlan {
    fn exit_code(&self) -> Exit {
        Exit::Ok
    }
}

fn write_totals(f: &mut fmt::Formatter<'_>, t: &PruneTotals, verb: &str) -> fmt::Result {
    write!(
        f,
        "{} {} snapshots ({} versions); {} {} archives ({}), {} of them old catalog copies and {} unknown",
        verb,
        t.snapshots_forgotten,
        t.versions_forgotten,
        if verb == "forgot" {
            "deleted"
        } else {
            "delete"
        },
        t.archives_deleted,
        bytes(t.bytes_deleted),
        t.catalog_copies_deleted,
        t.unknown_deleted
    )?;
    if t.archives_held > 0 {
        write!(
            f,
            "; {} archives ({}) held until {} (minimum storage duration)",
            t.archives_held,
            bytes(t.bytes_held),
            t.held_until.as_deref().unwrap_or("?")
        )?;
    }
    write!(f, "; saves ${:.2} a month", t.monthly_cost_saved)
}

impl fmt::Display for PrunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}: ",
            self.name,
            if self.dry_run { " (dry run)" } else { "" }
        )?;
        if !self.policy {
            write!(
                f,
                "no retention policy (keep_* keys), no snapshot forgotten; "
            )?;
        }
        write_totals(f, &self.totals, "would forget")?;
        if !self.pending.is_empty() {
            write!(
                f,
                "; {} deletions left by an interrupted prune to finish",
                self.pending.len()
            )?;
        }
        if self.inventory_needed {
            write!(
                f,
                "; unknown archives not planned: no finished vault inventory (a dry run \
                 requests none; `prune --unknown` or `verify --remote` does, then dry-run again)"
            )?;
        }
        for a in &self.held {
            write!(
                f,
                "\n  held until {}: {} {} ({}, {})",
                date(a.held_until),
                a.kind,
                a.remote_id,
                bytes(a.size),
                a.place
            )?;
        }
        Ok(())
    }
}

/// What a prune did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub name: String,
    pub backend: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub totals: PruneTotals,
    /// Deletions the backend refused; a rerun tries them again.
    pub problems: Vec<String>,
    /// The catalog changed and its copy in the backend is owed: the next sync stores it.
    pub catalog_backup_pending: bool,
    /// `--unknown` waits for a Glacier inventory: nothing was done; run again later (exit 75).
    pub waiting_for_inventory: bool,
}

impl Report for PruneReport {
    fn exit_code(&self) -> Exit {
        if !self.problems.is_empty() {
            Exit::Partial
        } else if self.waiting_for_inventory {
            Exit::Pending
        } else {
            Exit::Ok
        }
    }
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.waiting_for_inventory {
            return write!(
                f,
                "{}: waiting for the vault inventory; nothing done",
                self.name
            );
        }
        write!(f, "{}: ", self.name)?;
        write_totals(f, &self.totals, "forgot")?;
        if !self.problems.is_empty() {
            write!(
                f,
                "; {} deletions failed (run prune again)",
                self.problems.len()
            )?;
        }
        Ok(())
    }
}
