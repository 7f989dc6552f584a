//! Planning a sync: walk the trees and compare every entry with the catalog's current versions.
//!
//! The plan says what must be read (new and changed files), what is recorded as it is
//! (directories, symlinks, permission changes), what is gone, and what storing it will take.
//! Planning reads no file content, writes nothing and asks no backend: `sync --dry-run` prints
//! the plan and stops there.

use super::{Counts, FileError, SyncOptions, display};
use crate::catalog::{Catalog, CurrentLookup, CurrentMeta, EntryKind, VersionRecord};
use crate::error::{Error, Result};
use crate::hash::Hash32;
use crate::log;
use crate::progress::Progress;
use crate::scan::{self, ScanEntry, ScanEvent};
use serde::Serialize;
use std::sync::mpsc;

/// A new or changed file whose content must be read. Compact (about 60 bytes with its path),
/// since a first backup plans one per file: the tree is an index into
/// [`SyncOptions::trees`], and the absolute path is made when the file is read.
#[derive(Debug, Clone)]
pub struct ToRead {
    pub tree: u32,
    /// Relative path, `/`-separated raw bytes.
    pub rel: Box<[u8]>,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    /// Counted as new (else as changed).
    pub is_new: bool,
}

impl ToRead {
    /// The settings key of the file's tree.
    pub fn tree_key<'o>(&self, opts: &'o SyncOptions) -> &'o str {
        &opts.trees[self.tree as usize].key
    }

    /// Where the file is.
    pub fn abs(&self, opts: &SyncOptions) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        opts.trees[self.tree as usize]
            .root
            .join(std::ffi::OsStr::from_bytes(&self.rel))
    }

    /// The version the file becomes once read, with its content hash.
    pub fn record(&self, opts: &SyncOptions, hash: Hash32) -> VersionRecord {
        VersionRecord {
            tree: self.tree_key(opts).to_string(),
            path: self.rel.to_vec(),
            kind: EntryKind::File,
            size: self.size,
            mtime_ns: self.mtime_ns,
            mode: self.mode,
            hash: Some(hash),
            target: None,
        }
    }
}

/// What storing the plan would take, for `--dry-run` and cost estimates.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Estimate {
    /// Bytes of new and changed files that would be read.
    pub read_bytes: u64,
    /// Small files that would be bundled, and their bytes.
    pub bundled_files: u64,
    pub bundled_bytes: u64,
    /// Large files that would be one archive each, and their bytes.
    pub large_files: u64,
    pub large_bytes: u64,
    /// Archives that would be written (at most; content already stored is not sent again).
    pub archives: u64,
    /// Upload requests (multipart parts counted), the catalog copy included.
    pub requests: u64,
    /// Estimated price of those requests, USD (list prices; see `cost`).
    pub estimated_upload_usd: f64,
    /// Estimated monthly storage price of what would be added, USD.
    pub estimated_added_monthly_usd: f64,
}

impl Estimate {
    /// Fills in the prices.
    pub fn price(&mut self, prices: &crate::cost::Pricing) {
        self.estimated_upload_usd = prices.uploads(self.requests);
        self.estimated_added_monthly_usd = prices.monthly(self.read_bytes, self.archives);
    }
}

/// The difference between the trees and the catalog, and what it takes to record it.
#[derive(Debug, Default)]
pub struct SyncPlan {
    pub counts: Counts,
    /// New and changed files, in the order the walk found them.
    pub to_read: Vec<ToRead>,
    /// Versions recorded without reading content: directories, symlinks, permission changes.
    pub record: Vec<VersionRecord>,
    /// Current versions (catalog ids) whose paths are gone from the trees.
    pub gone: Vec<i64>,
    /// What could not be scanned.
    pub errors: Vec<FileError>,
    pub estimate: Estimate,
}

/// Requests needed to upload `size` bytes with `part_size` parts (initiate and complete
/// included when it takes more than one part).
pub fn upload_requests(size: u64, part_size: u64) -> u64 {
    let parts = size.div_ceil(part_size.max(1)).max(1);
    if parts == 1 { 1 } else { parts + 2 }
}

/// The version a scan entry becomes, with the content hash when known.
fn record_of(e: &ScanEntry, hash: Option<Hash32>) -> VersionRecord {
    VersionRecord {
        tree: e.tree.clone(),
        path: e.rel.clone(),
        kind: e.kind,
        size: e.size,
        mtime_ns: e.mtime_ns,
        mode: e.mode,
        hash,
        target: e.target.clone(),
    }
}

/// Whether `rel` is `prefix` or below it.
fn is_under(rel: &[u8], prefix: &[u8]) -> bool {
    rel.starts_with(prefix) && (rel.len() == prefix.len() || rel[prefix.len()] == b'/')
}

/// Walks the profile's trees and compares them with the catalog.
pub fn plan(opts: &SyncOptions, catalog: &Catalog, progress: &Progress) -> Result<SyncPlan> {
    let mut excludes = Vec::new();
    for t in &opts.trees {
        excludes.push(
            scan::excludes(&t.root, &opts.exclude)
                .map_err(|m| Error::Usage(format!("{}: {m}", opts.profile)))?,
        );
    }
    let max_id = catalog.max_version_id()?;
    let mut planner = Planner {
        opts,
        current: catalog.current_lookup()?,
        lost: catalog.lost_contents()?,
        seen: vec![0; (max_id as usize + 64) / 64],
        fatal: None,
        protected: Vec::new(),
        plan: SyncPlan::default(),
        progress,
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (tx, rx) = mpsc::sync_channel::<Vec<ScanEvent>>(64);
    std::thread::scope(|s| {
        s.spawn(move || {
            for (tree, ex) in opts.trees.iter().zip(&excludes) {
                let sink = |batch: Vec<ScanEvent>| {
                    let _ = tx.send(batch);
                };
                // A root that cannot be read is reported as an error without a path, which
                // protects the whole tree from being taken as gone.
                scan::walk(tree, ex, &opts.skip, threads, &sink);
            }
        });
        for batch in rx {
            for ev in batch {
                planner.on_event(ev);
            }
        }
    });
    progress.scan_finished();
    if let Some(e) = planner.fatal.take() {
        return Err(e);
    }
    planner.finish(catalog)
}

/// Compares scan events with the current versions, one at a time.
struct Planner<'a> {
    opts: &'a SyncOptions,
    /// Looks up the current version of each scanned entry.
    current: CurrentLookup<'a>,
    /// Contents whose stored copy was found missing or damaged: an unchanged file holding one
    /// is read and stored again.
    lost: std::collections::HashSet<Hash32>,
    /// Bit `id` set: current version `id` was seen by this walk (1 bit a version id, so a
    /// million files cost 125 KB; what is not seen is gone).
    seen: Vec<u64>,
    /// A catalog error that stops the plan.
    fatal: Option<Error>,
    /// (tree, rel prefix) below which nothing may be taken as gone; `None` = the whole tree.
    protected: Vec<(String, Option<Vec<u8>>)>,
    plan: SyncPlan,
    progress: &'a Progress,
}

impl Planner<'_> {
    fn on_event(&mut self, ev: ScanEvent) {
        match ev {
            ScanEvent::Entry(e) => self.on_entry(e),
            ScanEvent::Error { tree, rel, message } => {
                let path = match &rel {
                    Some(r) => display(&tree, r),
                    None => tree.clone(),
                };
                self.protected.push((tree, rel));
                // Seen, but not read: scanned, and neither new, changed nor unchanged.
                self.plan.counts.scanned += 1;
                log::error(&format!("{path}: {message}"));
                self.plan.errors.push(FileError {
                    path,
                    error: message,
                });
            }
            ScanEvent::Skipped { tree, rel, why } => {
                self.plan.counts.skipped += 1;
                log::verbose(&format!("{}: skipped, {why}", display(&tree, &rel)));
            }
        }
    }

    fn on_entry(&mut self, e: ScanEntry) {
        let counted = e.kind != EntryKind::Dir;
        if counted {
            self.plan.counts.scanned += 1;
            self.progress.scanned(1, e.size);
        }
        if self.fatal.is_some() {
            return;
        }
        let prev = match self.current.get(&e.tree, &e.rel) {
            Ok(p) => p,
            Err(err) => {
                self.fatal = Some(err);
                return;
            }
        };
        if let Some(p) = &prev {
            let id = p.id as usize;
            if let Some(word) = self.seen.get_mut(id / 64) {
                *word |= 1 << (id % 64);
            }
        }
        if let Some(prev) = prev.as_ref().filter(|p| same_meta(p, &e)) {
            if e.kind == EntryKind::File && prev.hash.is_some_and(|h| self.lost.contains(&h)) {
                log::verbose(&format!(
                    "{}: its stored copy was lost; storing it again",
                    display(&e.tree, &e.rel)
                ));
                self.plan.counts.changed += 1;
                self.add_to_read(e, false);
                return;
            }
            if prev.mode != e.mode {
                // Only the permissions changed: a new version with the same content.
                self.plan.record.push(record_of(&e, prev.hash));
                if counted {
                    self.plan.counts.changed += 1;
                }
            } else if counted {
                self.plan.counts.unchanged += 1;
            }
            return;
        }
        // Directories are not counted: a file or link where a directory was is new, and one
        // that a directory replaced is deleted.
        let prev_counted = prev.is_some_and(|p| p.kind != EntryKind::Dir);
        let is_new = !prev_counted;
        if counted {
            if is_new {
                self.plan.counts.new += 1;
            } else {
                self.plan.counts.changed += 1;
            }
        } else if prev_counted {
            self.plan.counts.deleted += 1;
        }
        match e.kind {
            EntryKind::Dir | EntryKind::Symlink => self.plan.record.push(record_of(&e, None)),
            EntryKind::File => self.add_to_read(e, is_new),
        }
    }

    fn add_to_read(&mut self, e: ScanEntry, is_new: bool) {
        let est = &mut self.plan.estimate;
        est.read_bytes += e.size;
        if e.size <= self.opts.threshold {
            est.bundled_files += 1;
            est.bundled_bytes += e.size;
        } else {
            est.large_files += 1;
            est.large_bytes += e.size;
            est.requests += upload_requests(e.size, self.opts.part_size);
        }
        let tree = self
            .opts
            .trees
            .iter()
            .position(|t| t.key == e.tree)
            .unwrap_or(0) as u32;
        self.plan.to_read.push(ToRead {
            tree,
            rel: e.rel.into_boxed_slice(),
            size: e.size,
            mtime_ns: e.mtime_ns,
            mode: e.mode,
            is_new,
        });
    }

    /// What was not seen is gone, unless an error hid it; then the totals.
    fn finish(mut self, catalog: &Catalog) -> Result<SyncPlan> {
        drop(self.current);
        let (protected, seen, plan) = (&self.protected, &self.seen, &mut self.plan);
        catalog.for_each_current(|id, tree, path, kind| {
            let i = id as usize;
            if seen.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0) {
                return;
            }
            let hidden = protected
                .iter()
                .any(|(t, prefix)| t == tree && prefix.as_ref().is_none_or(|p| is_under(path, p)));
            if hidden {
                return;
            }
            if kind != EntryKind::Dir {
                plan.counts.deleted += 1;
            }
            plan.gone.push(id);
        })?;
        let est = &mut self.plan.estimate;
        let bundles = est.bundled_bytes.div_ceil(self.opts.threshold.max(1));
        // One archive per bundle and large file, and the catalog copy.
        est.archives = bundles + est.large_files + 1;
        est.requests += bundles + 1;
        Ok(self.plan)
    }
}

fn same_meta(prev: &CurrentMeta, e: &ScanEntry) -> bool {
    prev.kind == e.kind
        && prev.size == e.size
        && prev.mtime_ns == e.mtime_ns
        && prev.target == e.target
}

#[cfg(test)]
mod tests;
