//! Carrying out a sync plan: read the new and changed files, pack small ones into bundles,
//! store bundles and large files, record everything, mark what is gone.
//!
//! One coordinator (this module) owns the catalog and every decision; the worker threads
//! ([`super::workers`]) read and upload and report back over one channel. Work is handed out
//! by credit, so memory stays bounded: file bytes in flight and bundles waiting for upload.
//!
//! Crash safety: a file version is recorded only in the transaction that records the archive
//! holding its content, after the backend confirmed it stored. What was stored is recorded in
//! one transaction every [`FLUSH_EVERY`] (or [`BATCH`] versions): a kill in between leaves
//! objects the catalog does not know (`verify --remote` names them, `prune --unknown` removes
//! them), and their files are read and stored again by the next sync.

use super::filter::HashFilter;
use super::plan::{SyncPlan, ToRead};
use super::workers::{self, Event, ReadJob, Upload, Workers};
use super::{BundleWriter, FileError, MemberMeta, ReadFile, SyncOptions, SyncReport, display};
use crate::backend::Backend;
use crate::catalog::{
    ArchiveCommit, ArchiveKind, Catalog, NewArchive, NewContent, SnapshotId, VersionRecord,
};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::Hash32;
use crate::log;
use crate::progress::Progress;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Versions gathered before they are recorded (with the archives they wait for).
const BATCH: usize = 50_000;

/// The longest that what was stored waits to be recorded.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Files handed to a reader at once, and the bytes they may hold (a larger file goes alone).
/// One hand-off and one reply a file cost two thread wake-ups each: with a million small
/// files they were a tenth of a first backup.
const READ_BATCH_FILES: usize = 64;
const READ_BATCH_BYTES: u64 = 4 << 20;

/// Files waiting for a content to be stored, each with whether it was counted as new.
type Waiting = Vec<(VersionRecord, bool)>;

/// Stores and records what `plan` found, in snapshot `snapshot`. Returns the report; the
/// caller completes the snapshot.
pub(super) fn store(
    plan: SyncPlan,
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    snapshot: SnapshotId,
    progress: &Progress,
) -> Result<(SyncReport, bool)> {
    let mut ex = Executor {
        opts,
        catalog,
        snapshot,
        report: SyncReport {
            counts: plan.counts,
            errors: plan.errors,
            ..Default::default()
        },
        progress,
        pending: HashMap::new(),
        versions: Vec::new(),
        stored: Vec::new(),
        stored_versions: 0,
        reading: 0,
        uploading: 0,
        bundle: None,
        bundle_members: Vec::new(),
        bundle_seq: 0,
        fatal: None,
        changed_anything: false,
        backend_name: backend.name(),
        filter: None,
        unflushed: std::collections::HashSet::new(),
    };
    if plan.to_read.len() >= FILTER_FROM {
        ex.filter = Some(known_filter(ex.catalog, plan.to_read.len())?);
    }
    for chunk in plan.record.chunks(2000) {
        ex.catalog.record_versions(chunk, snapshot)?;
        ex.changed_anything = true;
    }
    if !plan.to_read.is_empty() {
        for job in &plan.to_read {
            progress.queue_read(job.size);
        }
        ex.run(plan.to_read, backend)?;
    }
    if !plan.gone.is_empty() {
        ex.catalog.mark_gone(&plan.gone, snapshot)?;
        ex.changed_anything = true;
    }
    Ok((ex.report, ex.changed_anything))
}

struct Executor<'a> {
    opts: &'a SyncOptions,
    catalog: &'a mut Catalog,
    snapshot: SnapshotId,
    report: SyncReport,
    progress: &'a Progress,
    /// Contents being stored in this run, with the versions waiting for them.
    pending: HashMap<Hash32, Waiting>,
    /// Versions of contents already stored, recorded in batches.
    versions: Vec<VersionRecord>,
    /// Archives stored and not yet recorded, with their versions; and how many versions that is.
    stored: Vec<ArchiveCommit>,
    stored_versions: usize,
    reading: usize,
    uploading: usize,
    bundle: Option<BundleWriter>,
    bundle_members: Vec<NewContent>,
    bundle_seq: u64,
    fatal: Option<Error>,
    changed_anything: bool,
    backend_name: &'static str,
    /// Contents that may be stored (the catalog's, and this run's): a content it has never
    /// seen is not looked up in the catalog.
    filter: Option<HashFilter>,
    /// The contents of `stored`: stored, not recorded yet (until the next flush).
    unflushed: std::collections::HashSet<Hash32>,
}

/// Files to read from which the contents filter pays for reading every stored hash once.
const FILTER_FROM: usize = 4096;

/// A filter of the stored contents, with room for `more` new ones.
fn known_filter(catalog: &Catalog, more: usize) -> Result<HashFilter> {
    let n = catalog.content_count()? as usize;
    let mut f = HashFilter::with_capacity(n + more);
    catalog.for_each_content(|h| f.insert(h))?;
    Ok(f)
}

impl Executor<'_> {
    /// Reads, packs and uploads `jobs` with worker threads until all is stored or a fatal error.
    fn run(&mut self, jobs: Vec<ToRead>, backend: &dyn Backend) -> Result<()> {
        let readers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let uploaders = self.opts.concurrency.max(1);
        let mut backlog = jobs.into_iter();
        let profile = self.opts.profile.as_str();
        let (event_tx, event_rx) = mpsc::sync_channel::<Event>(256);
        std::thread::scope(|s| {
            let workers = workers::start(s, readers, uploaders, backend, profile, &event_tx);
            drop(event_tx);
            self.coordinate(&workers, &mut backlog, &event_rx, readers, uploaders);
            // Dropping the job channels ends the workers' loops; the scope joins them.
            drop(workers);
            drop(event_rx);
        });
        // Also after a fatal error: what the backend stored is recorded.
        let flushed = self.flush();
        match self.fatal.take() {
            Some(e) => Err(e),
            None => flushed,
        }
    }

    fn coordinate(
        &mut self,
        workers: &Workers,
        backlog: &mut impl Iterator<Item = ToRead>,
        events: &mpsc::Receiver<Event>,
        readers: usize,
        uploaders: usize,
    ) {
        let mut last_flush = Instant::now();
        let mut backlog_done = false;
        loop {
            // Hand out batches of reads while the pipeline has room.
            while !backlog_done
                && self.fatal.is_none()
                && self.reading < 2 * readers
                && self.uploading < 2 * uploaders
            {
                let batch = self.next_batch(backlog);
                if batch.is_empty() {
                    backlog_done = true;
                    break;
                }
                self.reading += 1;
                let _ = workers.read.send(batch);
            }
            if (backlog_done || self.fatal.is_some()) && self.reading == 0 {
                self.close_bundle(workers);
                if self.uploading == 0 {
                    return;
                }
            }
            match events.recv_timeout(Duration::from_millis(500)) {
                Ok(Event::Read(batch)) => {
                    self.reading -= 1;
                    for (job, result) in batch {
                        self.on_read(workers, job, result);
                    }
                }
                Ok(Event::Uploaded(u, result)) => self.on_uploaded(u, result),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let waiting = self.versions.len() + self.stored_versions;
            let due = last_flush.elapsed() > FLUSH_EVERY;
            if waiting >= BATCH || (due && (waiting > 0 || !self.stored.is_empty())) {
                if let Err(e) = self.flush() {
                    self.fatal.get_or_insert(e);
                }
                last_flush = Instant::now();
            }
        }
    }

    /// The next files to read: up to [`READ_BATCH_FILES`] of them, or fewer holding at least
    /// [`READ_BATCH_BYTES`]; none when the backlog is done.
    fn next_batch(&self, backlog: &mut impl Iterator<Item = ToRead>) -> Vec<ReadJob> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < READ_BATCH_FILES && bytes < READ_BATCH_BYTES {
            let Some(job) = backlog.next() else {
                break;
            };
            bytes += job.size;
            let abs = job.abs(self.opts);
            batch.push(ReadJob { job, abs });
        }
        batch
    }

    fn error(&mut self, path: String, error: String) {
        log::error(&format!("{path}: {error}"));
        self.report.errors.push(FileError { path, error });
    }

    /// A new or changed file that is not backed up after all: an error, and no longer new or
    /// changed, so that new + changed + unchanged = scanned - errors.
    fn file_error(&mut self, is_new: bool, path: String, error: String) {
        self.uncount(is_new);
        self.error(path, error);
    }

    fn uncount(&mut self, is_new: bool) {
        if is_new {
            self.report.counts.new -= 1;
        } else {
            self.report.counts.changed -= 1;
        }
    }

    fn on_read(
        &mut self,
        workers: &Workers,
        ReadJob { job, abs }: ReadJob,
        result: std::result::Result<ReadFile, String>,
    ) {
        let is_new = job.is_new;
        self.progress.read_done(job.size);
        let r = match result {
            Ok(r) => r,
            Err(msg) => {
                // The old version (if any) stays current: never taken as deleted.
                let path = display(job.tree_key(self.opts), &job.rel);
                return self.file_error(is_new, path, msg);
            }
        };
        self.report.read_bytes += r.size;
        let rec = VersionRecord {
            size: r.size,
            mtime_ns: r.mtime_ns,
            mode: r.mode,
            ..job.record(self.opts, r.hash)
        };
        let known = match &mut self.filter {
            Some(f) if !f.may_contain(&r.hash) => {
                // New to the catalog and to this run: from now on it may be stored.
                f.insert(&r.hash);
                Ok(false)
            }
            _ => self.catalog.has_content(&r.hash),
        };
        let known = match known {
            Ok(k) => k,
            Err(e) => {
                self.fatal.get_or_insert(e);
                return;
            }
        };
        // Stored in this run and not recorded yet: the version is recorded with that archive,
        // in the same flush.
        if known || self.unflushed.contains(&r.hash) {
            self.report.deduplicated += 1;
            self.versions.push(rec);
        } else if let Some(w) = self.pending.get_mut(&r.hash) {
            self.report.deduplicated += 1;
            w.push((rec, is_new));
        } else if r.size <= self.opts.threshold {
            self.add_to_bundle(workers, rec, is_new, &abs, r.bytes);
        } else {
            self.pending.insert(r.hash, vec![(rec, is_new)]);
            let (hash, size) = (r.hash, r.size);
            self.send_upload(
                workers,
                Upload::File {
                    source: abs,
                    hash,
                    size,
                },
            );
        }
    }

    fn open_bundle(&mut self) -> Option<&mut BundleWriter> {
        if self.bundle.is_none() {
            self.bundle_seq += 1;
            let path = self.opts.staging_dir.join(format!(
                "bundle-{}-{}.tar",
                std::process::id(),
                self.bundle_seq
            ));
            match BundleWriter::create(&path) {
                Ok(w) => self.bundle = Some(w),
                Err(e) => {
                    self.fatal.get_or_insert(Error::io(path, e));
                    return None;
                }
            }
        }
        self.bundle.as_mut()
    }

    fn add_to_bundle(
        &mut self,
        workers: &Workers,
        rec: VersionRecord,
        is_new: bool,
        source: &Path,
        bytes: Option<Vec<u8>>,
    ) {
        let name = rec.full_path_bytes();
        let meta = MemberMeta {
            name: &name,
            size: rec.size,
            mode: rec.mode,
            mtime_ns: rec.mtime_ns,
        };
        let hash = rec.hash.expect("files have hashes");
        let Some(writer) = self.open_bundle() else {
            return;
        };
        let added = match &bytes {
            Some(b) => writer.add_bytes(&meta, b).map(|off| (off, Some(hash))),
            None => writer.add_file(&meta, source),
        };
        match added {
            Ok((offset, Some(h))) if h == hash => {
                self.bundle_members.push(NewContent {
                    hash,
                    size: rec.size,
                    offset,
                });
                self.pending.insert(hash, vec![(rec, is_new)]);
            }
            Ok(_) => self.file_error(
                is_new,
                rec.display_path(),
                "changed while being read; it will be tried again at the next sync".into(),
            ),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                self.file_error(is_new, rec.display_path(), crate::error::io_message(&e))
            }
            Err(e) => {
                self.fatal
                    .get_or_insert(Error::io(&self.opts.staging_dir, e));
            }
        }
        if self
            .bundle
            .as_ref()
            .is_some_and(|b| b.len() >= self.opts.threshold)
        {
            self.close_bundle(workers);
        }
    }

    fn close_bundle(&mut self, workers: &Workers) {
        let Some(writer) = self.bundle.take() else {
            return;
        };
        let members = std::mem::take(&mut self.bundle_members);
        match writer.finish() {
            Ok(bundle) if members.is_empty() => {
                let _ = std::fs::remove_file(&bundle.path);
            }
            Ok(bundle) => self.send_upload(workers, Upload::Bundle { bundle, members }),
            Err(e) => {
                self.fatal
                    .get_or_insert(Error::io(&self.opts.staging_dir, e));
            }
        }
    }

    fn send_upload(&mut self, workers: &Workers, u: Upload) {
        self.progress.queue_upload(u.size());
        self.uploading += 1;
        let _ = workers.upload.send(u);
    }

    fn on_uploaded(&mut self, u: Upload, result: Result<String>) {
        self.uploading -= 1;
        self.progress.upload_done(u.size());
        let (kind, size, tree_hash, contents) = match u {
            Upload::File { hash, size, .. } => (
                ArchiveKind::File,
                size,
                hash,
                vec![NewContent {
                    hash,
                    size,
                    offset: 0,
                }],
            ),
            Upload::Bundle { bundle, members } => {
                let _ = std::fs::remove_file(&bundle.path);
                (ArchiveKind::Bundle, bundle.size, bundle.tree_hash, members)
            }
        };
        let waiting: Waiting = contents
            .iter()
            .filter_map(|c| self.pending.remove(&c.hash))
            .flatten()
            .collect();
        match result {
            Ok(remote_id) => {
                let archive = NewArchive {
                    remote_id,
                    kind,
                    size,
                    tree_hash,
                    backend: self.backend_name.to_string(),
                    stored_at: super::now_secs(),
                };
                self.record_stored(archive, contents, waiting);
            }
            Err(e) => self.upload_failed(kind, e, &waiting),
        }
    }

    /// Gathers a stored archive with its contents and the versions that waited for them, to
    /// be recorded by the next [`flush`](Self::flush).
    fn record_stored(&mut self, archive: NewArchive, contents: Vec<NewContent>, waiting: Waiting) {
        let versions: Vec<VersionRecord> = waiting.into_iter().map(|(v, _)| v).collect();
        self.stored_versions += versions.len();
        self.unflushed.extend(contents.iter().map(|c| c.hash));
        self.stored.push(ArchiveCommit {
            archive,
            contents,
            versions,
        });
    }

    /// A large file that changed while it was stored is that file's error; any other failure
    /// stops the sync, its files reported as not stored.
    fn upload_failed(&mut self, kind: ArchiveKind, e: Error, waiting: &Waiting) {
        let corrupt = e.backend_kind() == Some(BackendErrorKind::Corrupt);
        if corrupt && kind == ArchiveKind::File {
            for (v, is_new) in waiting {
                self.file_error(
                    *is_new,
                    v.display_path(),
                    "changed while being uploaded; it will be tried again at the next sync".into(),
                );
            }
            return;
        }
        for (v, is_new) in waiting {
            self.uncount(*is_new);
            self.report.errors.push(FileError {
                path: v.display_path(),
                error: format!("not stored: {e}"),
            });
        }
        self.fatal.get_or_insert(e);
    }

    /// Records the archives stored and the versions gathered since the last flush, in one
    /// transaction.
    fn flush(&mut self) -> Result<()> {
        if self.versions.is_empty() && self.stored.is_empty() {
            return Ok(());
        }
        let stored = std::mem::take(&mut self.stored);
        let versions = std::mem::take(&mut self.versions);
        self.stored_versions = 0;
        self.unflushed.clear();
        self.catalog
            .commit_archives(&stored, &versions, self.snapshot)?;
        self.changed_anything = true;
        for a in &stored {
            self.report.archives_uploaded += 1;
            self.report.uploaded_bytes += a.archive.size;
        }
        Ok(())
    }
}
