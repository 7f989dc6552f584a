//! `restore`: bring the selected files back as they stood in a snapshot.
//!
//! Two steps, as rustic_core's `prepare_restore` and `restore`:
//!
//! 1. [`plan`] reads the catalog and the target directory and builds a [`RestorePlan`]: per
//!    archive the members to extract and the byte span to download, what cold storage must
//!    thaw first (and which retrievals an earlier run already requested), the files already in
//!    place, links, directories, what cannot be restored, and the totals. It asks the backend
//!    only pure questions and writes nothing. `--dry-run` prints the plan and stops there.
//! 2. [`execute`] carries the plan out: warm up what cold storage must thaw (each request
//!    recorded in the catalog, never made twice), download what is readable, verify every
//!    file's hash before it takes its place, then links and directories, with permissions and
//!    mtime. Nothing is written outside the target directory and nothing existing is
//!    overwritten without `--overwrite`.
//!
//! Files: `plan.rs` (the plan and its totals), `execute.rs` (warm-ups, parallel downloads,
//! links, directories), `demux.rs` (one download split into verified member files),
//! `dest.rs` (safe destinations, directories, modes and times).

mod demux;
mod dest;
mod execute;
mod legacy;
mod plan;
#[cfg(test)]
mod tests;

pub use dest::{check_target, safe_dest};
pub use execute::execute;
pub use legacy::LegacyRead;
pub use plan::{ArchivePlan, Dest, Link, Member, PlanTotals, Requested, RestorePlan, Thaw, plan};

use crate::backend::Tier;
use crate::catalog::{Catalog, Snapshot};
use crate::error::{Error, Result};
use crate::report::{Exit, Report};
use crate::sync::FileError;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// What to restore and how: the `restore` command's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// Target directory
    #[arg(long)]
    pub to: PathBuf,
    /// RFC 3339 time or a date (end of that day, local time)
    #[arg(long)]
    pub at: Option<String>,
    /// Retrieval tier for cold storage
    #[arg(long, value_enum, default_value_t = Tier::Bulk)]
    pub tier: Tier,
    /// Replace existing files in DIR
    #[arg(long)]
    pub overwrite: bool,
    /// Print what would be retrieved and restored, with a quote; change nothing (over
    /// --max-cost: exit 2, as the restore would)
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse (exit 2, nothing requested) a restore whose thaw and transfer cost more USD
    /// (default: the max_restore_cost setting)
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Globs over paths as ls prints them (none: everything)
    pub patterns: Vec<String>,
}

/// A restore of one profile: the command's arguments and what the profile adds.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub args: RestoreArgs,
    /// Profile name, for messages.
    pub profile: String,
    /// Archives downloaded at once.
    pub concurrency: usize,
}

/// The outcome of a restore run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub name: String,
    pub backend: String,
    pub snapshot: i64,
    pub selected: u64,
    pub restored: u64,
    pub already_present: u64,
    pub restored_bytes: u64,
    pub links: u64,
    pub dirs: u64,
    /// Archives (or ranges of them) still being thawed.
    pub pending: u64,
    pub pending_bytes: u64,
    /// Retrievals requested in this run.
    pub requested: u64,
    /// Longest expected wait of the pending retrievals, in seconds.
    pub eta_seconds: Option<u64>,
    pub errors: Vec<FileError>,
}

impl Report for RestoreReport {
    /// 75 while retrievals are pending, else 1 when some files failed.
    fn exit_code(&self) -> Exit {
        if self.pending > 0 {
            Exit::Pending
        } else if !self.errors.is_empty() {
            Exit::Partial
        } else {
            Exit::Ok
        }
    }
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} files restored ({}), {} already in place, {} links, {} pending retrievals",
            self.name,
            self.restored,
            crate::units::bytes(self.restored_bytes),
            self.already_present,
            self.links,
            self.pending
        )?;
        if !self.errors.is_empty() {
            write!(f, ", {} errors", self.errors.len())?;
        }
        Ok(())
    }
}

/// What `restore` gives back: the plan of a dry run, or the report of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RestoreOutcome {
    Planned(RestorePlan),
    Restored(RestoreReport),
}

impl Report for RestoreOutcome {
    fn exit_code(&self) -> Exit {
        match self {
            RestoreOutcome::Planned(p) => p.exit_code(),
            RestoreOutcome::Restored(r) => r.exit_code(),
        }
    }
}

impl RestoreOutcome {
    /// The files that could not be (or would not be) restored.
    pub fn errors(&self) -> &[FileError] {
        match self {
            RestoreOutcome::Planned(p) => &p.errors,
            RestoreOutcome::Restored(r) => &r.errors,
        }
    }
}

impl fmt::Display for RestoreOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreOutcome::Planned(p) => p.fmt(f),
            RestoreOutcome::Restored(r) => r.fmt(f),
        }
    }
}

/// The newest complete snapshot at or before `at` (default: the last), or an error that says
/// there is none and what to do.
pub fn snapshot_at(catalog: &Catalog, at: Option<i64>, profile: &str) -> Result<Snapshot> {
    catalog.snapshot_at(at)?.ok_or_else(|| {
        Error::Usage(match at {
            Some(t) => format!(
                "{profile}: no complete sync at or before {}",
                crate::timespec::format(t)
            ),
            None => format!("{profile}: no complete sync yet: run `glaciersync sync` first"),
        })
    })
}
