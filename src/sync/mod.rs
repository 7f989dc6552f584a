//! `sync`: scan the trees, read what is new or changed, store contents not yet stored (small
//! files packed into tar bundles, large files one archive each), record everything in the
//! catalog, back up the catalog.
//!
//! Plan, then execute: [`plan`] walks the trees and compares them with the catalog, giving a
//! [`SyncPlan`] (what to read, what to record, what is gone, what it costs) without reading
//! file content, writing or asking the backend; `sync --dry-run` prints it and stops.
//! [`execute`] carries a plan out: reads, packs, uploads and records ([`execute`]'s
//! coordinator and the worker threads of `workers`), then completes the snapshot and backs up
//! the catalog.
//!
//! Crash safety: a file version is recorded only in the transaction that records the archive
//! holding its content, after the backend confirmed it stored. A killed sync leaves a
//! `running` snapshot that the next sync resumes; nothing recorded is stored again.

mod bundle;
mod catalog_copy;
mod execute;
mod filter;
mod plan;
mod read;
mod report;
mod workers;

pub use bundle::{BundleWriter, FinishedBundle, MemberMeta};
pub use catalog_copy::{
    BACKUP_BASE, BACKUP_LAST_TIME, BACKUP_PENDING, backup_catalog, clean_staging, note_recovered,
    owe_full_copy,
};
pub use plan::{Estimate, SyncPlan, ToRead, plan, upload_requests};
pub use read::{ReadFile, read_file};
pub use report::{Counts, FileError, SyncReport};

use crate::backend::Backend;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::log;
use crate::progress::Progress;
use crate::scan::TreeSpec;
use std::path::PathBuf;
use std::time::Instant;

/// What a sync needs to know.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub profile: String,
    pub trees: Vec<TreeSpec>,
    pub exclude: Vec<String>,
    /// Paths never to back up (the catalog's and the local backend's directories).
    pub skip: Vec<PathBuf>,
    pub threshold: u64,
    /// Multipart part size, for the plan's request count.
    pub part_size: u64,
    pub concurrency: usize,
    /// Where temporary bundles are written.
    pub staging_dir: PathBuf,
}

fn display(tree: &str, rel: &[u8]) -> String {
    format!("{tree}/{}", String::from_utf8_lossy(rel))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Backs up one profile: plans, then executes. `catalog` must be open and the profile lock
/// held.
pub fn sync(
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    progress: &Progress,
) -> Result<SyncReport> {
    let started = Instant::now();
    let plan = plan(opts, catalog, progress)?;
    execute(plan, opts, backend, catalog, progress, started)
}

/// Carries out `plan`: stores and records it in a new (or the interrupted) snapshot, completes
/// the snapshot and backs up the catalog when it changed.
pub fn execute(
    plan: SyncPlan,
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    progress: &Progress,
    started: Instant,
) -> Result<SyncReport> {
    crate::private::create_dir(&opts.staging_dir).map_err(|e| Error::io(&opts.staging_dir, e))?;
    backend.prepare()?;
    // Before anything is stored: a prune elsewhere must see that this catalog writes here.
    crate::owner::ensure_marked(catalog, backend)?;
    let (snapshot, resumed) = catalog.begin_snapshot(now_secs())?;
    if resumed {
        log::info(&format!(
            "{}: resuming the interrupted sync (snapshot {snapshot})",
            opts.profile
        ));
    }
    let (mut report, changed) = execute::store(plan, opts, backend, catalog, snapshot, progress)?;
    report.name = opts.profile.clone();
    report.backend = backend.name().to_string();
    report.snapshot = Some(snapshot);
    report.resumed = resumed;
    // Owed before the snapshot is complete, so that no kill can drop it. A resumed snapshot
    // holds what the killed run recorded: that is owed a copy too.
    if changed || resumed {
        catalog.set_meta(BACKUP_PENDING, "1")?;
    }
    catalog.finish_snapshot(snapshot, now_secs())?;
    if catalog.meta(BACKUP_PENDING)?.as_deref() == Some("1") {
        let id = backup_catalog(opts, backend, catalog)?;
        report.archives_uploaded += 1;
        report.catalog_backup = Some(id);
    }
    if let Err(e) = backend.cleanup() {
        log::warn(&format!("cleaning up incomplete uploads: {e}"));
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
