//! `sync`: scan the trees, read what is new or changed, store contents not yet stored (small
//! files packed into tar bundles, large files one archive each), record everything in the
//! catalog, back up the catalog.
//!
//! One coordinator thread owns the catalog and every decision; scanner, reader and uploader
//! threads do the I/O and report back over one channel. The coordinator hands out work by
//! credit, so memory stays bounded (file bytes in flight, temporary bundles waiting for upload).
//!
//! Crash safety: a file version is recorded only in the transaction that records the archive
//! holding its content, after the backend confirmed it stored. A killed sync leaves a
//! `running` snapshot that the next sync resumes; nothing recorded is stored again.

mod bundle;
mod read;

pub use bundle::{BundleWriter, FinishedBundle, MemberMeta};
pub use read::{ReadFile, read_file};

use crate::backend::{Backend, ObjectKind, PutMeta};
use crate::catalog::{
    ArchiveKind, Catalog, CurrentVersion, EntryKind, NewArchive, NewContent, SnapshotId,
    VersionRecord,
};
use crate::error::{Error, Result};
use crate::hash::Hash32;
use crate::log;
use crate::progress::Progress;
use crate::scan::{self, ScanEntry, ScanEvent, TreeSpec};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files up to this size are read into memory once and bundled from those bytes.
const KEEP_IN_MEMORY: u64 = 8 << 20;
/// Versions recorded per transaction when no archive commit carries them.
const BATCH: usize = 2000;

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
    pub dry_run: bool,
}

/// A file that could not be backed up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileError {
    pub path: String,
    pub error: String,
}

/// What a dry run would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
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

/// The outcome of syncing one profile: the `--json` summary of SPEC.md, and more.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub name: String,
    pub backend: String,
    pub dry_run: bool,
    pub scanned: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub deduplicated: u64,
    pub skipped: u64,
    pub read_bytes: u64,
    pub uploaded_bytes: u64,
    pub archives_uploaded: u64,
    pub snapshot: Option<SnapshotId>,
    pub resumed: bool,
    pub catalog_backup: Option<String>,
    pub errors: Vec<FileError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    pub seconds: f64,
}

struct HashJob {
    entry: ScanEntry,
    /// Counted as new (else as changed).
    is_new: bool,
}

enum Upload {
    File {
        source: PathBuf,
        hash: Hash32,
        size: u64,
    },
    Bundle {
        bundle: FinishedBundle,
        members: Vec<NewContent>,
    },
}

enum Event {
    Scan(Vec<ScanEvent>),
    TreeDone { tree: String, ok: bool },
    ScanFinished,
    Read(HashJob, std::result::Result<ReadFile, String>),
    Uploaded(Upload, Result<String>),
}

/// Files waiting for a content to be stored, each with whether it was counted as new (else
/// as changed).
#[derive(Default)]
struct Waiting {
    versions: Vec<(VersionRecord, bool)>,
}

fn display(tree: &str, rel: &[u8]) -> String {
    format!("{tree}/{}", String::from_utf8_lossy(rel))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

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

/// Requests needed to upload `size` bytes with `part_size` parts (initiate and complete
/// included when it takes more than one part).
pub fn upload_requests(size: u64, part_size: u64) -> u64 {
    let parts = size.div_ceil(part_size.max(1)).max(1);
    if parts == 1 { 1 } else { parts + 2 }
}

/// Whether `rel` is `prefix` or below it.
fn is_under(rel: &[u8], prefix: &[u8]) -> bool {
    rel.starts_with(prefix) && (rel.len() == prefix.len() || rel[prefix.len()] == b'/')
}

struct Engine<'a> {
    opts: &'a SyncOptions,
    backend: &'a dyn Backend,
    catalog: &'a mut Catalog,
    snapshot: SnapshotId,
    report: SyncReport,
    plan: Plan,
    progress: &'a Progress,
    current: HashMap<(String, Vec<u8>), CurrentVersion>,
    known: HashSet<Hash32>,
    /// Contents being stored in this run, with the versions waiting for them.
    pending: HashMap<Hash32, Waiting>,
    /// (tree, rel prefix) below which nothing may be taken as deleted; `None` = whole tree.
    protected: Vec<(String, Option<Vec<u8>>)>,
    versions: Vec<VersionRecord>,
    backlog: VecDeque<HashJob>,
    reading: usize,
    uploading: usize,
    bundle: Option<BundleWriter>,
    bundle_members: Vec<NewContent>,
    bundle_seq: u64,
    hash_tx: Sender<HashJob>,
    upload_tx: Sender<Upload>,
    fatal: Option<Error>,
    changed_anything: bool,
}

impl Engine<'_> {
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
            self.report.new -= 1;
        } else {
            self.report.changed -= 1;
        }
    }

    fn on_entry(&mut self, e: ScanEntry) {
        let counted = e.kind != EntryKind::Dir;
        if counted {
            self.report.scanned += 1;
            self.progress.scanned(1, e.size);
        }
        let prev = self.current.remove(&(e.tree.clone(), e.rel.clone()));
        let same_meta = prev.as_ref().is_some_and(|p| {
            p.rec.kind == e.kind
                && p.rec.size == e.size
                && p.rec.mtime_ns == e.mtime_ns
                && p.rec.target == e.target
        });
        if same_meta {
            let prev = prev.expect("checked");
            if prev.rec.mode != e.mode {
                // Only the permissions changed: a new version with the same content.
                self.versions.push(record_of(&e, prev.rec.hash));
                if counted {
                    self.report.changed += 1;
                }
            } else if counted {
                self.report.unchanged += 1;
            }
            return;
        }
        // Directories are not counted: a file or link where a directory was is new, and one
        // that a directory replaced is deleted.
        let prev_counted = prev.is_some_and(|p| p.rec.kind != EntryKind::Dir);
        let is_new = !prev_counted;
        match e.kind {
            EntryKind::Dir | EntryKind::Symlink => {
                if counted {
                    if is_new {
                        self.report.new += 1;
                    } else {
                        self.report.changed += 1;
                    }
                } else if prev_counted {
                    self.report.deleted += 1;
                }
                self.versions.push(record_of(&e, None));
            }
            EntryKind::File => {
                if is_new {
                    self.report.new += 1;
                } else {
                    self.report.changed += 1;
                }
                self.plan.read_bytes += e.size;
                if e.size <= self.opts.threshold {
                    self.plan.bundled_files += 1;
                    self.plan.bundled_bytes += e.size;
                } else {
                    self.plan.large_files += 1;
                    self.plan.large_bytes += e.size;
                    self.plan.requests += upload_requests(e.size, self.opts.part_size);
                }
                if !self.opts.dry_run {
                    self.progress.queue_read(e.size);
                    self.backlog.push_back(HashJob { entry: e, is_new });
                }
            }
        }
    }

    fn on_scan_event(&mut self, ev: ScanEvent) {
        match ev {
            ScanEvent::Entry(e) => self.on_entry(e),
            ScanEvent::Error { tree, rel, message } => {
                let path = match &rel {
                    Some(r) => display(&tree, r),
                    None => tree.clone(),
                };
                self.protected.push((tree, rel));
                // Seen, but not read: scanned, and neither new, changed nor unchanged.
                self.report.scanned += 1;
                self.error(path, message);
            }
            ScanEvent::Skipped { tree, rel, why } => {
                self.report.skipped += 1;
                log::verbose(&format!("{}: skipped, {why}", display(&tree, &rel)));
            }
        }
    }

    fn on_read(&mut self, job: HashJob, result: std::result::Result<ReadFile, String>) {
        self.reading -= 1;
        let (e, is_new) = (job.entry, job.is_new);
        let r = match result {
            Ok(r) => r,
            Err(msg) => {
                self.progress.read_done(e.size);
                self.file_error(is_new, display(&e.tree, &e.rel), msg);
                // The old version (if any) stays current: never taken as deleted.
                return;
            }
        };
        self.progress.read_done(e.size);
        self.report.read_bytes += r.size;
        let rec = VersionRecord {
            size: r.size,
            mtime_ns: r.mtime_ns,
            mode: r.mode,
            ..record_of(&e, Some(r.hash))
        };
        if self.known.contains(&r.hash) {
            self.report.deduplicated += 1;
            self.versions.push(rec);
            return;
        }
        if let Some(w) = self.pending.get_mut(&r.hash) {
            self.report.deduplicated += 1;
            w.versions.push((rec, is_new));
            return;
        }
        if r.size <= self.opts.threshold {
            self.add_to_bundle(rec, is_new, &e.abs, r.bytes);
        } else {
            self.pending.insert(
                r.hash,
                Waiting {
                    versions: vec![(rec, is_new)],
                },
            );
            self.send_upload(Upload::File {
                source: e.abs,
                hash: r.hash,
                size: r.size,
            });
        }
    }

    fn add_to_bundle(
        &mut self,
        rec: VersionRecord,
        is_new: bool,
        source: &Path,
        bytes: Option<Vec<u8>>,
    ) {
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
                    self.fatal = Some(Error::io(path, e));
                    return;
                }
            }
        }
        let name = rec.full_path_bytes();
        let meta = MemberMeta {
            name: &name,
            size: rec.size,
            mode: rec.mode,
            mtime_ns: rec.mtime_ns,
        };
        let hash = rec.hash.expect("files have hashes");
        let writer = self.bundle.as_mut().expect("created above");
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
                self.pending.insert(
                    hash,
                    Waiting {
                        versions: vec![(rec, is_new)],
                    },
                );
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
                self.fatal = Some(Error::Io {
                    path: self.opts.staging_dir.clone(),
                    source: e,
                })
            }
        }
        if self
            .bundle
            .as_ref()
            .is_some_and(|b| b.len() >= self.opts.threshold)
        {
            self.close_bundle();
        }
    }

    fn close_bundle(&mut self) {
        let Some(writer) = self.bundle.take() else {
            return;
        };
        let members = std::mem::take(&mut self.bundle_members);
        match writer.finish() {
            Ok(bundle) if members.is_empty() => {
                let _ = std::fs::remove_file(&bundle.path);
            }
            Ok(bundle) => self.send_upload(Upload::Bundle { bundle, members }),
            Err(e) => {
                self.fatal = Some(Error::Io {
                    path: self.opts.staging_dir.clone(),
                    source: e,
                })
            }
        }
    }

    fn send_upload(&mut self, u: Upload) {
        let size = match &u {
            Upload::File { size, .. } => *size,
            Upload::Bundle { bundle, .. } => bundle.size,
        };
        self.progress.queue_upload(size);
        self.uploading += 1;
        let _ = self.upload_tx.send(u);
    }

    fn on_uploaded(&mut self, u: Upload, result: Result<String>) {
        self.uploading -= 1;
        let (kind, size, tree_hash, contents, temp) = match u {
            Upload::File { hash, size, .. } => (
                ArchiveKind::File,
                size,
                hash,
                vec![NewContent {
                    hash,
                    size,
                    offset: 0,
                }],
                None,
            ),
            Upload::Bundle { bundle, members } => (
                ArchiveKind::Bundle,
                bundle.size,
                bundle.tree_hash,
                members,
                Some(bundle.path),
            ),
        };
        if let Some(t) = &temp {
            let _ = std::fs::remove_file(t);
        }
        self.progress.upload_done(size);
        let waiting: Vec<(VersionRecord, bool)> = contents
            .iter()
            .filter_map(|c| self.pending.remove(&c.hash))
            .flat_map(|w| w.versions)
            .collect();
        let remote_id = match result {
            Ok(id) => id,
            Err(e) => {
                let corrupt = e.backend_kind() == Some(crate::error::BackendErrorKind::Corrupt);
                if corrupt && kind == ArchiveKind::File {
                    for (v, is_new) in &waiting {
                        self.file_error(
                            *is_new,
                            v.display_path(),
                            "changed while being uploaded; it will be tried again at the next sync"
                                .into(),
                        );
                    }
                } else {
                    for (v, is_new) in &waiting {
                        self.uncount(*is_new);
                        self.report.errors.push(FileError {
                            path: v.display_path(),
                            error: format!("not stored: {e}"),
                        });
                    }
                    if self.fatal.is_none() {
                        self.fatal = Some(e);
                    }
                }
                return;
            }
        };
        let archive = NewArchive {
            remote_id,
            kind,
            size,
            tree_hash,
            backend: self.backend.name().to_string(),
            stored_at: now_secs(),
        };
        let versions: Vec<VersionRecord> = waiting.into_iter().map(|(v, _)| v).collect();
        match self
            .catalog
            .commit_archive(&archive, &contents, &versions, self.snapshot)
        {
            Ok(_) => {
                self.changed_anything = true;
                self.report.archives_uploaded += 1;
                self.report.uploaded_bytes += size;
                self.known.extend(contents.iter().map(|c| c.hash));
            }
            Err(e) => self.fatal = Some(e),
        }
    }

    fn flush_versions(&mut self) -> Result<()> {
        if self.versions.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.versions);
        self.catalog.record_versions(&batch, self.snapshot)?;
        self.changed_anything = true;
        Ok(())
    }

    /// Hands out reads while the pipeline has room.
    fn dispatch(&mut self, readers: usize) {
        while self.fatal.is_none()
            && self.reading < 2 * readers
            && self.uploading < 2 * self.opts.concurrency.max(1)
        {
            let Some(job) = self.backlog.pop_front() else {
                break;
            };
            self.reading += 1;
            let _ = self.hash_tx.send(job);
        }
    }

    fn deletions(&mut self) -> Result<()> {
        let protected = std::mem::take(&mut self.protected);
        let gone: Vec<i64> = self
            .current
            .values()
            .filter(|cv| {
                !protected.iter().any(|(tree, prefix)| {
                    *tree == cv.rec.tree
                        && prefix.as_ref().is_none_or(|p| is_under(&cv.rec.path, p))
                })
            })
            .map(|cv| {
                if cv.rec.kind != EntryKind::Dir {
                    self.report.deleted += 1;
                }
                cv.id
            })
            .collect();
        if !gone.is_empty() && !self.opts.dry_run {
            self.catalog.mark_gone(&gone, self.snapshot)?;
            self.changed_anything = true;
        }
        Ok(())
    }
}

fn spawn_readers(
    n: usize,
    jobs: Receiver<HashJob>,
    events: SyncSender<Event>,
) -> Vec<std::thread::JoinHandle<()>> {
    let jobs = Arc::new(Mutex::new(jobs));
    (0..n)
        .map(|_| {
            let jobs = Arc::clone(&jobs);
            let events = events.clone();
            std::thread::spawn(move || {
                loop {
                    let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    let result = read_file(&job.entry.abs, KEEP_IN_MEMORY);
                    if events.send(Event::Read(job, result)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect()
}

/// Backs up one profile. `catalog` must be open and the profile lock held.
pub fn sync(
    opts: &SyncOptions,
    backend: &(dyn Backend + 'static),
    catalog: &mut Catalog,
    progress: &Progress,
) -> Result<SyncReport> {
    let started = Instant::now();
    let mut excludes = Vec::new();
    for t in &opts.trees {
        excludes.push(
            scan::excludes(&t.root, &opts.exclude)
                .map_err(|m| Error::Usage(format!("{}: {m}", opts.profile)))?,
        );
    }
    if !opts.dry_run {
        std::fs::create_dir_all(&opts.staging_dir).map_err(|e| Error::io(&opts.staging_dir, e))?;
        backend.prepare()?;
    }
    let (snapshot, resumed) = if opts.dry_run {
        (0, false)
    } else {
        catalog.begin_snapshot(now_secs())?
    };
    if resumed {
        log::info(&format!(
            "{}: resuming the interrupted sync (snapshot {snapshot})",
            opts.profile
        ));
    }
    let readers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (event_tx, event_rx) = mpsc::sync_channel::<Event>(256);
    let (hash_tx, hash_rx) = mpsc::channel::<HashJob>();
    let (upload_tx, upload_rx) = mpsc::channel::<Upload>();

    let mut engine = Engine {
        opts,
        backend,
        snapshot,
        report: SyncReport {
            name: opts.profile.clone(),
            backend: backend.name().to_string(),
            dry_run: opts.dry_run,
            snapshot: (!opts.dry_run).then_some(snapshot),
            resumed,
            ..Default::default()
        },
        plan: Plan::default(),
        progress,
        current: catalog.current_versions()?,
        known: catalog.known_contents()?,
        catalog,
        pending: HashMap::new(),
        protected: Vec::new(),
        versions: Vec::new(),
        backlog: VecDeque::new(),
        reading: 0,
        uploading: 0,
        bundle: None,
        bundle_members: Vec::new(),
        bundle_seq: 0,
        hash_tx,
        upload_tx,
        fatal: None,
        changed_anything: false,
    };

    std::thread::scope(|s| -> Result<()> {
        // Scanner.
        {
            let tx = event_tx.clone();
            let trees = opts.trees.clone();
            let skip = opts.skip.clone();
            let excludes = &excludes;
            s.spawn(move || {
                for (tree, ex) in trees.iter().zip(excludes) {
                    let sink = |batch: Vec<ScanEvent>| {
                        let _ = tx.send(Event::Scan(batch));
                    };
                    let ok = scan::walk(tree, ex, &skip, readers, &sink);
                    let _ = tx.send(Event::TreeDone {
                        tree: tree.key.clone(),
                        ok,
                    });
                }
                let _ = tx.send(Event::ScanFinished);
            });
        }
        let reader_handles = spawn_readers(readers, hash_rx, event_tx.clone());
        // Uploaders.
        let upload_rx = Arc::new(Mutex::new(upload_rx));
        for _ in 0..opts.concurrency.max(1) {
            let rx = Arc::clone(&upload_rx);
            let tx = event_tx.clone();
            s.spawn(move || {
                loop {
                    let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    let result = match &job {
                        Upload::File { source, hash, size } => backend.put(
                            &PutMeta {
                                kind: ObjectKind::File,
                                tree_hash: *hash,
                                size: *size,
                                profile: opts.profile.clone(),
                                created: now_secs(),
                            },
                            source,
                        ),
                        Upload::Bundle { bundle, .. } => backend.put(
                            &PutMeta {
                                kind: ObjectKind::Bundle,
                                tree_hash: bundle.tree_hash,
                                size: bundle.size,
                                profile: opts.profile.clone(),
                                created: now_secs(),
                            },
                            &bundle.path,
                        ),
                    };
                    if tx.send(Event::Uploaded(job, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(event_tx);

        let mut scan_finished = false;
        let mut last_flush = Instant::now();
        loop {
            engine.dispatch(readers);
            let idle = engine.backlog.is_empty() && engine.reading == 0;
            if scan_finished && (idle || engine.fatal.is_some()) && engine.reading == 0 {
                engine.close_bundle();
                if engine.uploading == 0 {
                    break;
                }
            }
            let ev = match event_rx.recv_timeout(Duration::from_millis(500)) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            match ev {
                Event::Scan(batch) => {
                    for ev in batch {
                        engine.on_scan_event(ev);
                    }
                }
                Event::TreeDone { tree, ok } => {
                    if !ok {
                        engine.protected.push((tree, None));
                    }
                }
                Event::ScanFinished => {
                    scan_finished = true;
                    progress.scan_finished();
                }
                Event::Read(job, result) => engine.on_read(job, result),
                Event::Uploaded(u, result) => engine.on_uploaded(u, result),
            }
            if engine.fatal.is_some() {
                engine.backlog.clear();
            }
            if !opts.dry_run
                && (engine.versions.len() >= BATCH
                    || (last_flush.elapsed() > Duration::from_secs(2)
                        && !engine.versions.is_empty()))
            {
                if let Err(e) = engine.flush_versions() {
                    engine.fatal = Some(e);
                }
                last_flush = Instant::now();
            }
        }
        // Stop the workers: closing the job channels ends their loops.
        let (dead_tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut engine.hash_tx, dead_tx));
        let (dead_tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut engine.upload_tx, dead_tx));
        drop(event_rx);
        for h in reader_handles {
            let _ = h.join();
        }
        Ok(())
    })?;

    if let Some(e) = engine.fatal.take() {
        let _ = engine.flush_versions();
        return Err(e);
    }
    if opts.dry_run {
        engine.versions.clear();
        engine.deletions()?;
        let mut plan = std::mem::take(&mut engine.plan);
        let bundles = plan.bundled_bytes.div_ceil(opts.threshold.max(1));
        plan.archives = bundles + plan.large_files + 1;
        plan.requests += bundles + 1;
        engine.report.plan = Some(plan);
        engine.report.seconds = started.elapsed().as_secs_f64();
        return Ok(engine.report);
    }
    engine.flush_versions()?;
    engine.deletions()?;
    let changed = engine.changed_anything;
    let mut report = engine.report;
    let catalog = engine.catalog;
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

/// Meta key: "1" while the catalog has changes that no copy in the backend holds.
const BACKUP_PENDING: &str = "catalog_backup_pending";

/// Stores a consistent copy of the catalog in the backend and records it. The catalog owes a
/// copy until then, whatever stops this midway.
pub fn backup_catalog(
    opts: &SyncOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
) -> Result<String> {
    std::fs::create_dir_all(&opts.staging_dir).map_err(|e| Error::io(&opts.staging_dir, e))?;
    let copy = opts
        .staging_dir
        .join(format!("catalog-{}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&copy);
    let result = (|| {
        catalog.backup_to(&copy)?;
        // The copy says no backup is pending: it is the backup.
        Catalog::open(&copy)?.set_meta(BACKUP_PENDING, "0")?;
        let file = std::fs::File::open(&copy).map_err(|e| Error::io(&copy, e))?;
        let (hash, size) = crate::hash::tree_hash_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::io(&copy, e))?;
        // `recover` takes the copy with the latest time, in seconds: each copy gets a later
        // second than the one before, even when two syncs end within one second.
        let last = catalog
            .archives()?
            .into_iter()
            .filter(|a| a.kind == ArchiveKind::Catalog)
            .map(|a| a.stored_at)
            .max();
        let created = last.map_or(now_secs(), |last| now_secs().max(last + 1));
        let id = backend.put(
            &PutMeta {
                kind: ObjectKind::Catalog,
                tree_hash: hash,
                size,
                profile: opts.profile.clone(),
                created,
            },
            &copy,
        )?;
        catalog.record_archive(&NewArchive {
            remote_id: id.clone(),
            kind: ArchiveKind::Catalog,
            size,
            tree_hash: hash,
            backend: backend.name().to_string(),
            stored_at: created,
        })?;
        catalog.set_meta(BACKUP_PENDING, "0")?;
        Ok(id)
    })();
    let _ = std::fs::remove_file(&copy);
    result
}

/// Removes temporary files a killed sync left in the staging directory.
pub fn clean_staging(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
