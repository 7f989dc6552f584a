//! `restore`: bring the selected files back as they stood in a snapshot.
//!
//! Plan first (what is needed from which archive, what is already in place), then carry it
//! out: warm up what cold storage must thaw (each request recorded in the catalog, never made
//! twice), download what is readable, verify every file's hash before it takes its place, set
//! permissions and mtime. Nothing is written outside the target directory and nothing existing
//! is overwritten without `overwrite`.

use crate::backend::{Backend, ByteRange, ObjectKind, Tier, WarmState};
use crate::catalog::{
    ArchiveKind, ArchiveRow, Catalog, EntryKind, LocatedVersion, Retrieval, Snapshot,
};
use crate::error::{Error, Result};
use crate::hash::{Hash32, TreeHasher};
use crate::log;
use crate::progress::Progress;
use crate::select::Selection;
use crate::sync::FileError;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub profile: String,
    pub to: PathBuf,
    pub at: Option<i64>,
    pub tier: Tier,
    pub overwrite: bool,
    pub dry_run: bool,
    pub patterns: Vec<String>,
    pub concurrency: usize,
}

/// Retrievals of one tier, for the dry-run plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TierPlan {
    pub tier: String,
    /// Objects that must be thawed first.
    pub objects_to_thaw: u64,
    pub bytes_to_thaw: u64,
    /// Bytes that ranged retrieval spares (whole archives minus the ranges retrieved).
    pub bytes_saved_by_ranges: u64,
    pub requests: u64,
}

/// The outcome of a restore run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub name: String,
    pub backend: String,
    pub snapshot: i64,
    pub dry_run: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<TierPlan>,
}

impl RestoreReport {
    /// 0 done, 1 done with errors, 75 waiting for retrievals.
    pub fn exit_code(&self) -> u8 {
        if self.pending > 0 {
            75
        } else if !self.errors.is_empty() {
            1
        } else {
            0
        }
    }
}

/// Joins `tree/rel` under `to`, refusing anything that could leave it.
pub fn safe_dest(to: &Path, tree: &str, rel: &[u8]) -> std::result::Result<PathBuf, String> {
    let tree_ok = !tree.is_empty()
        && tree
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !tree_ok {
        return Err(format!("refusing tree name {tree:?}: not a settings key"));
    }
    let rel_path = Path::new(OsStr::from_bytes(rel));
    let ok = !rel.is_empty()
        && !rel.contains(&0)
        && rel_path
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(format!(
            "refusing path {:?}: it would be written outside the target directory",
            String::from_utf8_lossy(rel)
        ));
    }
    Ok(to.join(tree).join(rel_path))
}

/// Creates the directories from `to` down to `dir`, refusing to pass through a symlink.
fn make_dirs(to: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir
        .strip_prefix(to)
        .map_err(|_| io::Error::other("outside the target"))?;
    let mut cur = to.to_path_buf();
    fs::create_dir_all(&cur)?;
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symlink: refusing to write through it",
                    cur.display()
                )));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a directory",
                    cur.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Directories already created or checked in this restore, so each is checked once, not once
/// per file (restores write many files into few directories).
#[derive(Default)]
struct DirCache {
    known: Mutex<HashSet<PathBuf>>,
}

impl DirCache {
    fn ensure(&self, to: &Path, dir: &Path) -> io::Result<()> {
        if self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(dir)
        {
            return Ok(());
        }
        make_dirs(to, dir)?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = Some(dir);
        while let Some(d) = cur.filter(|d| d.starts_with(to)) {
            if !known.insert(d.to_path_buf()) {
                break;
            }
            cur = d.parent();
        }
        Ok(())
    }
}

fn system_time(mtime_ns: i64) -> std::time::SystemTime {
    let abs = Duration::new(
        mtime_ns.unsigned_abs() / 1_000_000_000,
        (mtime_ns.unsigned_abs() % 1_000_000_000) as u32,
    );
    if mtime_ns >= 0 {
        std::time::UNIX_EPOCH + abs
    } else {
        std::time::UNIX_EPOCH - abs
    }
}

fn set_times_and_mode(path: &Path, mode: u32, mtime_ns: i64) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    let t = filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_file_mtime(path, t)
}

fn hash_existing(path: &Path) -> Option<Hash32> {
    let f = File::open(path).ok()?;
    crate::hash::tree_hash_reader(io::BufReader::new(f))
        .ok()
        .map(|(h, _)| h)
}

/// One content to write to one or more destinations.
#[derive(Debug, Clone)]
struct Member {
    offset: u64,
    size: u64,
    hash: Hash32,
    dests: Vec<(PathBuf, LocatedVersion)>,
}

/// What one archive must give.
#[derive(Debug, Clone)]
struct ArchiveWork {
    archive: ArchiveRow,
    members: Vec<Member>,
    span: ByteRange,
}

/// Writes a ranged download into member files, verifying each as it completes.
struct Demux<'a> {
    to: &'a Path,
    dirs: &'a DirCache,
    pos: u64,
    members: &'a [Member],
    next: usize,
    cur: Option<(File, PathBuf, TreeHasher)>,
    done: Vec<(usize, std::result::Result<(), String>)>,
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".glaciersync-partial");
    dest.with_file_name(name)
}

impl Demux<'_> {
    fn open_member(&mut self, i: usize) -> io::Result<()> {
        let dest = &self.members[i].dests[0].0;
        if let Some(parent) = dest.parent() {
            self.dirs.ensure(self.to, parent)?;
        }
        let tmp = partial_name(dest);
        let f = File::create(&tmp)?;
        self.cur = Some((f, tmp, TreeHasher::new()));
        Ok(())
    }

    fn finish_member(&mut self, i: usize) {
        let (file, tmp, hasher) = self.cur.take().expect("member open");
        let m = &self.members[i];
        let result = (|| -> std::result::Result<(), String> {
            let got = hasher.finish();
            if got != m.hash {
                drop(file);
                let _ = fs::remove_file(&tmp);
                return Err(format!(
                    "downloaded content does not match its recorded hash (expected {}, got {got}): not restored",
                    m.hash
                ));
            }
            // Mode and mtime through the open handle (no second open). Like cp and tar, no
            // fsync per file: a restore interrupted by a crash is simply run again, and files
            // already in place are verified by hash and kept.
            let rec = &m.dests[0].1.rec;
            file.set_permissions(fs::Permissions::from_mode(rec.mode & 0o7777))
                .and_then(|()| file.set_modified(system_time(rec.mtime_ns)))
                .map_err(|e| e.to_string())?;
            drop(file);
            place(self.to, self.dirs, &tmp, m)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        self.done.push((i, result));
    }

    /// Members of size zero at the current position need no bytes.
    fn settle_empty(&mut self) -> io::Result<()> {
        while self.next < self.members.len()
            && self.members[self.next].size == 0
            && self.members[self.next].offset <= self.pos
        {
            let i = self.next;
            self.next += 1;
            match self.open_member(i) {
                Ok(()) => self.finish_member(i),
                Err(e) => self.done.push((i, Err(e.to_string()))),
            }
        }
        Ok(())
    }
}

/// Moves a verified temp file into place and copies it to the other destinations.
fn place(to: &Path, dirs: &DirCache, tmp: &Path, m: &Member) -> std::result::Result<(), String> {
    let first = &m.dests[0].0;
    fs::rename(tmp, first).map_err(|e| e.to_string())?;
    for (dest, rec) in &m.dests[1..] {
        if let Some(parent) = dest.parent() {
            dirs.ensure(to, parent).map_err(|e| e.to_string())?;
        }
        let t = partial_name(dest);
        fs::copy(first, &t).map_err(|e| e.to_string())?;
        set_times_and_mode(&t, rec.rec.mode, rec.rec.mtime_ns).map_err(|e| e.to_string())?;
        fs::rename(&t, dest).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Write for Demux<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            self.settle_empty()?;
            if self.cur.is_none() {
                // Skip bytes before the next member (tar headers, padding, other members).
                let Some(m) = self.members.get(self.next) else {
                    self.pos += rest.len() as u64;
                    return Ok(buf.len());
                };
                if self.pos < m.offset {
                    let skip = ((m.offset - self.pos) as usize).min(rest.len());
                    self.pos += skip as u64;
                    rest = &rest[skip..];
                    continue;
                }
                if let Err(e) = self.open_member(self.next) {
                    // This member's bytes are skipped; the others still restore.
                    self.done.push((self.next, Err(e.to_string())));
                    self.next += 1;
                    continue;
                }
            }
            let m = &self.members[self.next];
            let end = m.offset + m.size;
            let take = ((end - self.pos) as usize).min(rest.len());
            let (file, _, hasher) = self.cur.as_mut().expect("open");
            file.write_all(&rest[..take])?;
            hasher.update(&rest[..take]);
            self.pos += take as u64;
            rest = &rest[take..];
            if self.pos == end {
                let i = self.next;
                self.finish_member(i);
                self.next += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.settle_empty()
    }
}

fn object_kind(k: ArchiveKind) -> ObjectKind {
    match k {
        ArchiveKind::File => ObjectKind::File,
        ArchiveKind::Bundle => ObjectKind::Bundle,
        ArchiveKind::Catalog => ObjectKind::Catalog,
    }
}

/// Downloads one archive's span into its members. Returns per-destination results.
fn download(
    backend: &dyn Backend,
    to: &Path,
    dirs: &DirCache,
    work: &ArchiveWork,
    ticket: Option<&str>,
) -> Vec<(LocatedVersion, std::result::Result<(), String>)> {
    let mut demux = Demux {
        to,
        dirs,
        pos: work.span.start,
        members: &work.members,
        next: 0,
        cur: None,
        done: Vec::new(),
    };
    let got = if work.span.is_empty() {
        Ok(0)
    } else {
        backend.get(&work.archive.remote_id, Some(work.span), ticket, &mut demux)
    };
    let flushed = demux.flush();
    if let Some((_, tmp, _)) = demux.cur.take() {
        let _ = fs::remove_file(tmp);
    }
    let mut results = Vec::new();
    let mut finished = vec![false; work.members.len()];
    for (i, r) in demux.done {
        finished[i] = true;
        for (_, v) in &work.members[i].dests {
            results.push((v.clone(), r.clone()));
        }
    }
    let failure = match (&got, &flushed) {
        (Err(e), _) => e.to_string(),
        (_, Err(e)) => e.to_string(),
        _ => "download ended before this file's data".to_string(),
    };
    for (i, m) in work.members.iter().enumerate() {
        if !finished[i] {
            for (_, v) in &m.dests {
                results.push((v.clone(), Err(failure.clone())));
            }
        }
    }
    results
}

fn eta_for(tier: Tier) -> Duration {
    Duration::from_secs(match tier {
        Tier::Expedited => 5 * 60,
        Tier::Standard => 5 * 3600,
        Tier::Bulk => 12 * 3600,
    })
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

/// Restores the selected files of one profile.
pub fn restore(
    opts: &RestoreOptions,
    backend: &dyn Backend,
    catalog: &mut Catalog,
    progress: &Progress,
) -> Result<RestoreReport> {
    let snapshot = snapshot_at(catalog, opts.at, &opts.profile)?;
    let selection = Selection::new(&opts.patterns)?;
    let mut report = RestoreReport {
        name: opts.profile.clone(),
        backend: backend.name().to_string(),
        snapshot: snapshot.id,
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut links = Vec::new();
    let mut dirs = Vec::new();
    // Content hash → member; grouped per archive.
    let mut per_archive: BTreeMap<i64, (ArchiveRow, BTreeMap<Hash32, Member>)> = BTreeMap::new();
    for v in catalog.versions_at(snapshot.id)? {
        if !selection.matches(&v.rec.tree, &v.rec.path) {
            continue;
        }
        let path_str = v.rec.display_path();
        let dest = match safe_dest(&opts.to, &v.rec.tree, &v.rec.path) {
            Ok(d) => d,
            Err(msg) => {
                report.errors.push(FileError {
                    path: path_str,
                    error: msg,
                });
                continue;
            }
        };
        match v.rec.kind {
            EntryKind::Dir => {
                dirs.push((dest, v));
                continue;
            }
            EntryKind::Symlink => {
                report.selected += 1;
                links.push((dest, v));
                continue;
            }
            EntryKind::File => report.selected += 1,
        }
        let hash = v.rec.hash.expect("files have hashes");
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_file() && m.len() == v.rec.size && hash_existing(&dest) == Some(hash) => {
                report.already_present += 1;
                if !opts.dry_run {
                    let _ = set_times_and_mode(&dest, v.rec.mode, v.rec.mtime_ns);
                }
                continue;
            }
            Ok(_) if !opts.overwrite => {
                report.errors.push(FileError {
                    path: path_str,
                    error: format!(
                        "{} exists: not overwritten (use --overwrite)",
                        dest.display()
                    ),
                });
                continue;
            }
            _ => {}
        }
        let Some((archive, offset)) = v.location.clone() else {
            report.errors.push(FileError {
                path: path_str,
                error:
                    "the catalog knows no archive holding this content (run `glaciersync verify`)"
                        .into(),
            });
            continue;
        };
        let entry = per_archive
            .entry(archive.id)
            .or_insert_with(|| (archive.clone(), BTreeMap::new()));
        entry
            .1
            .entry(hash)
            .or_insert_with(|| Member {
                offset,
                size: v.rec.size,
                hash,
                dests: Vec::new(),
            })
            .dests
            .push((dest, v));
    }

    let mut work: Vec<ArchiveWork> = per_archive
        .into_values()
        .map(|(archive, members)| {
            let mut members: Vec<Member> = members.into_values().collect();
            members.sort_by_key(|m| (m.offset, m.size));
            let start = members.first().map_or(0, |m| m.offset);
            let end = members.iter().map(|m| m.offset + m.size).max().unwrap_or(0);
            ArchiveWork {
                archive,
                members,
                span: ByteRange { start, end },
            }
        })
        .collect();

    // Warm-ups: what can be read now, what is pending.
    let mut plan = TierPlan {
        tier: opts.tier.as_str().to_string(),
        ..Default::default()
    };
    let mut ready: Vec<(ArchiveWork, Option<String>)> = Vec::new();
    let mut max_eta: Option<Duration> = None;
    for w in work.drain(..) {
        let kind = object_kind(w.archive.kind);
        if !backend.needs_warm_up(kind) || w.span.is_empty() {
            ready.push((w, None));
            continue;
        }
        let retrieved = backend.retrieval_range(w.archive.size, w.span);
        if opts.dry_run {
            plan.objects_to_thaw += 1;
            plan.bytes_to_thaw += retrieved.len();
            plan.bytes_saved_by_ranges += w.archive.size.saturating_sub(retrieved.len());
            plan.requests += 2;
            continue;
        }
        let whole = retrieved.start == 0 && retrieved.end >= w.archive.size;
        let range = (!whole).then_some(retrieved);
        let saved = catalog.retrieval(w.archive.id, w.span.start, w.span.end)?;
        let state = backend.warm_up(
            &w.archive.remote_id,
            range,
            opts.tier,
            saved.as_ref().and_then(|r| r.ticket.as_deref()),
        )?;
        match state {
            WarmState::Ready { ticket } => ready.push((w, ticket)),
            WarmState::Pending { ticket, eta } => {
                let is_new =
                    saved.as_ref().and_then(|r| r.ticket.as_deref()) != Some(ticket.as_str());
                if is_new {
                    report.requested += 1;
                    catalog.save_retrieval(&Retrieval {
                        archive_id: w.archive.id,
                        range_start: w.span.start,
                        range_end: w.span.end,
                        tier: opts.tier.as_str().to_string(),
                        ticket: Some(ticket),
                        requested_at: chrono::Utc::now().timestamp(),
                    })?;
                }
                report.pending += 1;
                report.pending_bytes += retrieved.len();
                let eta = eta.unwrap_or_else(|| eta_for(opts.tier));
                max_eta = Some(max_eta.map_or(eta, |m| m.max(eta)));
            }
        }
    }
    report.eta_seconds = max_eta.map(|d| d.as_secs());
    if opts.dry_run {
        for (w, _) in &ready {
            plan.requests += u64::from(!w.span.is_empty());
        }
        report.plan = Some(plan);
        return Ok(report);
    }

    // Downloads, several archives at once.
    let total: u64 = ready.iter().map(|(w, _)| w.span.len()).sum();
    let bar = progress.bytes_bar("restore", total);
    let files_total: usize = ready
        .iter()
        .map(|(w, _)| w.members.iter().map(|m| m.dests.len()).sum::<usize>())
        .sum();
    let files_done = AtomicU64::new(0);
    let queue = Mutex::new(ready.into_iter());
    let dir_cache = DirCache::default();
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency.max(1) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((w, ticket)) = next else { return };
                    let r = download(backend, &opts.to, &dir_cache, &w, ticket.as_deref());
                    bar.inc(w.span.len());
                    let n =
                        files_done.fetch_add(r.len() as u64, Ordering::Relaxed) + r.len() as u64;
                    bar.set_message(format!("{n}/{files_total} files"));
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((w, r));
                }
            });
        }
    });
    bar.finish_and_clear();
    for (w, rs) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let mut all_ok = true;
        for (v, r) in rs {
            match r {
                Ok(()) => {
                    report.restored += 1;
                    report.restored_bytes += v.rec.size;
                }
                Err(e) => {
                    all_ok = false;
                    report.errors.push(FileError {
                        path: v.rec.display_path(),
                        error: e,
                    });
                }
            }
        }
        if all_ok {
            catalog.delete_retrieval(w.archive.id, w.span.start, w.span.end)?;
        }
    }

    // Symlinks after files, so no file is written through a restored link.
    for (dest, v) in links {
        let target = OsStr::from_bytes(v.rec.target.as_deref().unwrap_or_default());
        let r = (|| -> io::Result<bool> {
            if let Some(parent) = dest.parent() {
                make_dirs(&opts.to, parent)?;
            }
            if let Ok(m) = fs::symlink_metadata(&dest) {
                if m.file_type().is_symlink() && fs::read_link(&dest)?.as_os_str() == target {
                    return Ok(false);
                }
                if !opts.overwrite {
                    return Err(io::Error::other(format!(
                        "{} exists: not overwritten (use --overwrite)",
                        dest.display()
                    )));
                }
                if m.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} is a directory",
                        dest.display()
                    )));
                }
                fs::remove_file(&dest)?;
            }
            std::os::unix::fs::symlink(target, &dest)?;
            let t = filetime::FileTime::from_unix_time(
                v.rec.mtime_ns.div_euclid(1_000_000_000),
                v.rec.mtime_ns.rem_euclid(1_000_000_000) as u32,
            );
            let _ = filetime::set_symlink_file_times(&dest, t, t);
            Ok(true)
        })();
        match r {
            Ok(true) => report.links += 1,
            Ok(false) => report.already_present += 1,
            Err(e) => report.errors.push(FileError {
                path: v.rec.display_path(),
                error: e.to_string(),
            }),
        }
    }
    // Directories last, deepest first, so their mtimes stick.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.as_os_str().len()));
    for (dest, v) in dirs {
        let r = make_dirs(&opts.to, &dest)
            .and_then(|()| set_times_and_mode(&dest, v.rec.mode, v.rec.mtime_ns));
        match r {
            Ok(()) => report.dirs += 1,
            Err(e) => report.errors.push(FileError {
                path: v.rec.display_path(),
                error: e.to_string(),
            }),
        }
    }
    if report.pending > 0 {
        log::info(&format!(
            "{}: {} retrieval(s) pending ({} bytes); run the same command again in about {}",
            opts.profile,
            report.pending,
            report.pending_bytes,
            human_duration(report.eta_seconds.unwrap_or(0))
        ));
    }
    Ok(report)
}

/// `3 h 20 min`, `5 min`, `40 s`.
pub fn human_duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_never_leave_the_target() {
        let to = Path::new("/restore");
        assert_eq!(
            safe_dest(to, "path", b"a/b.txt").unwrap(),
            Path::new("/restore/path/a/b.txt")
        );
        for bad in [&b"../x"[..], b"/etc/passwd", b"a/../../x", b"", b"a/\0b"] {
            assert!(
                safe_dest(to, "path", bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad_tree in ["..", "", "a/b", "/"] {
            assert!(safe_dest(to, bad_tree, b"x").is_err(), "{bad_tree}");
        }
    }

    #[test]
    fn make_dirs_refuses_symlinked_components() {
        let d = tempfile::tempdir().unwrap();
        let to = d.path().join("to");
        let outside = d.path().join("outside");
        fs::create_dir_all(to.join("path")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, to.join("path/evil")).unwrap();
        let err = make_dirs(&to, &to.join("path/evil/sub")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!outside.join("sub").exists());
    }
}
