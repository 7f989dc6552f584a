//! Sync plans, tested without any backend: a small tree in a temporary directory, a catalog in
//! memory, and asserts on the plan. A "sync" between two plans is simulated by recording the
//! plan in the catalog as the executor would (one archive per file read).

use super::*;
use crate::catalog::{ArchiveKind, NewArchive, NewContent};
use crate::hash::tree_hash;
use crate::scan::TreeSpec;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const THRESHOLD: u64 = 100;
const PART: u64 = 64;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    opts: SyncOptions,
    cat: Catalog,
}

fn fixture(exclude: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    fs::create_dir(&root).unwrap();
    let opts = SyncOptions {
        profile: "docs".into(),
        trees: vec![TreeSpec {
            key: "path".into(),
            root: root.clone(),
        }],
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        skip: Vec::new(),
        threshold: THRESHOLD,
        part_size: PART,
        concurrency: 1,
        staging_dir: dir.path().join("staging"),
    };
    Fixture {
        _dir: dir,
        root,
        opts,
        cat: Catalog::open_in_memory().unwrap(),
    }
}

/// Writes `rel` with `content` and a fixed mtime (so a rewrite can keep or change it).
fn write(root: &Path, rel: &str, content: &[u8], mtime_s: u64) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    set_mtime(root, rel, mtime_s);
}

fn set_mtime(root: &Path, rel: &str, mtime_s: u64) {
    let f = fs::File::options()
        .write(true)
        .open(root.join(rel))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_s))
        .unwrap();
}

impl Fixture {
    fn plan(&self) -> SyncPlan {
        plan(&self.opts, &self.cat, &Progress::hidden()).unwrap()
    }

    /// Records `p` as a sync would: each file read stored in an archive of its own, the other
    /// versions recorded, what is gone ended.
    fn record(&mut self, p: &SyncPlan) {
        let (s, _) = self.cat.begin_snapshot(1).unwrap();
        for (n, r) in p.to_read.iter().enumerate() {
            let data = fs::read(r.abs(&self.opts)).unwrap();
            let hash = tree_hash(&data);
            let archive = NewArchive {
                remote_id: format!("s{s}-{n}"),
                kind: ArchiveKind::File,
                size: data.len() as u64,
                tree_hash: hash,
                backend: "none".into(),
                stored_at: 1,
            };
            let content = NewContent {
                hash,
                size: data.len() as u64,
                offset: 0,
            };
            let version = r.record(&self.opts, hash);
            self.cat
                .commit_archive(&archive, &[content], &[version], s)
                .unwrap();
        }
        self.cat.record_versions(&p.record, s).unwrap();
        self.cat.mark_gone(&p.gone, s).unwrap();
        self.cat.finish_snapshot(s, 2).unwrap();
    }

    /// Plans and records: the catalog now matches the tree.
    fn sync(&mut self) -> SyncPlan {
        let p = self.plan();
        self.record(&p);
        p
    }

    /// The catalog id of the current version of `rel`.
    fn current_id(&self, rel: &str) -> i64 {
        self.cat.current_versions().unwrap()[&("path".to_string(), rel.as_bytes().to_vec())].id
    }
}

/// The relative paths to read, sorted (the walk is parallel: its order is not fixed).
fn reads(p: &SyncPlan) -> Vec<(String, bool)> {
    let mut v: Vec<_> = p
        .to_read
        .iter()
        .map(|r| (String::from_utf8(r.rel.to_vec()).unwrap(), r.is_new))
        .collect();
    v.sort();
    v
}

fn recorded(p: &SyncPlan) -> Vec<(String, EntryKind)> {
    let mut v: Vec<_> = p
        .record
        .iter()
        .map(|r| (String::from_utf8(r.path.clone()).unwrap(), r.kind))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn counts(scanned: u64, new: u64, changed: u64, unchanged: u64, deleted: u64) -> Counts {
    Counts {
        scanned,
        new,
        changed,
        unchanged,
        deleted,
        skipped: 0,
    }
}

#[test]
fn a_first_plan_reads_every_file_and_records_directories_and_links() {
    let f = fixture(&[]);
    write(&f.root, "a.txt", b"alpha", 1_000);
    write(&f.root, "sub/b.txt", b"bravo!", 2_000);
    std::os::unix::fs::symlink("a.txt", f.root.join("link")).unwrap();
    let p = f.plan();
    assert_eq!(
        reads(&p),
        [("a.txt".into(), true), ("sub/b.txt".into(), true)]
    );
    let b = p.to_read.iter().find(|r| &*r.rel == b"sub/b.txt").unwrap();
    assert_eq!((b.size, b.mtime_ns), (6, 2_000 * 1_000_000_000));
    assert_eq!(b.abs(&f.opts), f.root.join("sub/b.txt"));
    assert_eq!(
        recorded(&p),
        [
            ("link".into(), EntryKind::Symlink),
            ("sub".into(), EntryKind::Dir)
        ]
    );
    let link = p.record.iter().find(|r| r.path == b"link").unwrap();
    assert_eq!(link.target.as_deref(), Some(&b"a.txt"[..]));
    // Directories are not counted; files and links are.
    assert_eq!(p.counts, counts(3, 3, 0, 0, 0));
    assert!(p.gone.is_empty() && p.errors.is_empty());
}

#[test]
fn an_unchanged_tree_plans_nothing() {
    let mut f = fixture(&[]);
    write(&f.root, "a.txt", b"alpha", 1_000);
    write(&f.root, "sub/b.txt", b"bravo!", 2_000);
    f.sync();
    let p = f.plan();
    assert!(p.to_read.is_empty(), "{:?}", reads(&p));
    assert!(p.record.is_empty(), "{:?}", recorded(&p));
    assert!(p.gone.is_empty());
    assert_eq!(p.counts, counts(2, 0, 0, 2, 0));
    assert_eq!(p.estimate.read_bytes, 0);
    // Only the catalog copy would be stored.
    assert_eq!((p.estimate.archives, p.estimate.requests), (1, 1));
}

#[test]
fn a_file_whose_size_or_mtime_changed_is_read_again() {
    let mut f = fixture(&[]);
    write(&f.root, "same.txt", b"same", 1_000);
    write(&f.root, "size.txt", b"four", 1_000);
    write(&f.root, "mtime.txt", b"four", 1_000);
    write(&f.root, "content.txt", b"four", 1_000);
    f.sync();
    write(&f.root, "size.txt", b"five!", 1_000);
    set_mtime(&f.root, "mtime.txt", 1_001);
    // Same size and mtime: not read, whatever the bytes (the plan reads no content).
    write(&f.root, "content.txt", b"FOUR", 1_000);
    let p = f.plan();
    assert_eq!(
        reads(&p),
        [("mtime.txt".into(), false), ("size.txt".into(), false)]
    );
    assert!(p.record.is_empty());
    assert_eq!(p.counts, counts(4, 0, 2, 2, 0));
    assert_eq!(p.estimate.read_bytes, 5 + 4);
}

#[test]
fn a_permission_change_is_recorded_with_the_known_content_unread() {
    let mut f = fixture(&[]);
    write(&f.root, "a.sh", b"echo", 1_000);
    f.sync();
    let path = f.root.join("a.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let p = f.plan();
    assert!(p.to_read.is_empty());
    assert_eq!(recorded(&p), [("a.sh".into(), EntryKind::File)]);
    let r = &p.record[0];
    assert_eq!(r.mode & 0o777, 0o755);
    assert_eq!(r.hash, Some(tree_hash(b"echo")));
    assert_eq!(p.counts, counts(1, 0, 1, 0, 0));
}

#[test]
fn a_deleted_file_is_gone_by_its_catalog_id() {
    let mut f = fixture(&[]);
    write(&f.root, "keep.txt", b"keep", 1_000);
    write(&f.root, "old/drop.txt", b"drop", 1_000);
    f.sync();
    let (drop_id, dir_id) = (f.current_id("old/drop.txt"), f.current_id("old"));
    fs::remove_dir_all(f.root.join("old")).unwrap();
    let mut p = f.plan();
    p.gone.sort();
    let mut want = vec![drop_id, dir_id];
    want.sort();
    assert_eq!(p.gone, want);
    // The directory is gone too, but only files and links count as deleted.
    assert_eq!(p.counts, counts(1, 0, 0, 1, 1));
    assert!(p.to_read.is_empty());
}

/// The plan reads no content, so it cannot see a rename or a copy: the new path is read as a
/// new file (the executor then finds its content stored and uploads nothing), the old one gone.
#[test]
fn a_renamed_or_copied_file_is_read_as_new_and_the_old_path_is_gone() {
    let mut f = fixture(&[]);
    write(&f.root, "a.txt", b"alpha", 1_000);
    write(&f.root, "b.txt", b"bravo", 1_000);
    f.sync();
    let a_id = f.current_id("a.txt");
    fs::rename(f.root.join("a.txt"), f.root.join("renamed.txt")).unwrap();
    fs::copy(f.root.join("b.txt"), f.root.join("copy.txt")).unwrap();
    set_mtime(&f.root, "copy.txt", 1_000);
    let p = f.plan();
    assert_eq!(
        reads(&p),
        [("copy.txt".into(), true), ("renamed.txt".into(), true)]
    );
    assert_eq!(p.gone, [a_id]);
    assert_eq!(p.counts, counts(3, 2, 0, 1, 1));
}

#[test]
fn excluded_entries_are_neither_read_nor_counted() {
    let f = fixture(&["*.log", "cache/"]);
    write(&f.root, "a.txt", b"alpha", 1_000);
    write(&f.root, "debug.log", b"noise", 1_000);
    write(&f.root, "sub/trace.log", b"noise", 1_000);
    write(&f.root, "cache/blob", b"noise", 1_000);
    let p = f.plan();
    assert_eq!(reads(&p), [("a.txt".into(), true)]);
    assert_eq!(recorded(&p), [("sub".into(), EntryKind::Dir)]);
    assert_eq!(p.counts, counts(1, 1, 0, 0, 0));
    assert_eq!(p.estimate.read_bytes, 5);
}

#[test]
fn a_bad_exclude_pattern_is_a_usage_error() {
    let f = fixture(&["a/**/b/[z-a]"]);
    let err = plan(&f.opts, &f.cat, &Progress::hidden()).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
}

/// Files up to the threshold are bundled, larger ones are an archive each, uploaded in parts.
#[test]
fn the_estimate_splits_small_and_large_files_at_the_threshold() {
    let f = fixture(&[]);
    write(&f.root, "tiny", &[1; 10], 1_000);
    write(&f.root, "at_threshold", &[2; THRESHOLD as usize], 1_000);
    write(&f.root, "just_over", &[3; THRESHOLD as usize + 1], 1_000);
    write(&f.root, "large", &[4; 200], 1_000);
    let e = f.plan().estimate;
    assert_eq!((e.bundled_files, e.bundled_bytes), (2, 110));
    assert_eq!((e.large_files, e.large_bytes), (2, 301));
    assert_eq!(e.read_bytes, 411);
    // 110 bundled bytes make 2 bundles of at most 100; 2 large files; the catalog copy.
    assert_eq!(e.archives, 2 + 2 + 1);
    // 101 B in 64 B parts: 2 parts + initiate + complete; 200 B: 4 + 2; bundles; the copy.
    assert_eq!(e.requests, 4 + 6 + 2 + 1);
}

#[test]
fn upload_requests_counts_initiate_and_complete_only_for_multipart() {
    assert_eq!(upload_requests(0, PART), 1);
    assert_eq!(upload_requests(PART, PART), 1);
    assert_eq!(upload_requests(PART + 1, PART), 4);
    assert_eq!(upload_requests(10 * PART, PART), 12);
}
