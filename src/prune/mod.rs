//! `prune`: apply the profile's retention policy, as a plan, then its execution.
//!
//! [`plan`] reads the catalog (and, for `--unknown`, the backend's listing) into a
//! [`PrunePlan`]: the snapshots the policy does not keep and the versions only they showed,
//! the archives no kept version needs, split into those past their class's minimum storage
//! duration (deleted now) and those still held (with the date they may go), old catalog
//! copies, unknown archives this profile owns, and deletions an interrupted prune left.
//! `--dry-run` prints it. [`execute`] carries it out in the crash-safe order of
//! docs/catalog.md: forget and mark in one transaction, delete in the backend, record.

mod execute;
#[cfg(test)]
mod execute_tests;
mod plan;
mod policy;
mod report;
#[cfg(test)]
mod tests;

pub use execute::execute;
pub use plan::{PlannedArchive, PruneOptions, PrunePlan, Why, plan, select_catalog_copies};
pub use policy::{CalendarSpan, Retention};
pub use report::{PruneReport, PruneTotals};

const DAY: i64 = 86_400;

/// `YYYY-MM-DD` (UTC) of `secs`.
pub fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}
