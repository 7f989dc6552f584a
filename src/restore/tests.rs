//! Plans, tested without backend I/O: a catalog in memory, a backend that answers only the
//! pure questions planning asks (any request panics), and asserts on the plan.

use super::*;
use crate::backend::{Backend, ByteRange, ListOutcome, ObjectKind, PutMeta, Tier, WarmState};
use crate::catalog::{
    ArchiveKind, Catalog, EntryKind, NewArchive, NewContent, Retrieval, SnapshotId, VersionRecord,
};
use crate::hash::tree_hash;
use std::io::Write;
use std::path::Path;

const MIB: u64 = 1 << 20;

/// Answers `name`, `needs_warm_up` and `retrieval_range` (cold: megabyte-aligned, as
/// Glacier); anything else is a request, which planning must never make.
struct Fake {
    cold: bool,
}

impl Backend for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn describe(&self) -> String {
        unreachable!("planning asks no description")
    }
    fn needs_warm_up(&self, _kind: ObjectKind) -> bool {
        self.cold
    }
    fn retrieval_range(&self, _id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        ByteRange {
            start: want.start / MIB * MIB,
            end: want.end.div_ceil(MIB).saturating_mul(MIB).min(object_size),
        }
    }
    fn prepare(&self) -> crate::Result<()> {
        unreachable!("planning makes no request")
    }
    fn put(&self, _: &PutMeta, _: &Path) -> crate::Result<String> {
        unreachable!("planning makes no request")
    }
    fn get(
        &self,
        _: &str,
        _: Option<ByteRange>,
        _: Option<&str>,
        _: &mut dyn Write,
    ) -> crate::Result<u64> {
        unreachable!("planning makes no request")
    }
    fn warm_up(
        &self,
        _: &str,
        _: Option<ByteRange>,
        _: Tier,
        _: Option<&str>,
    ) -> crate::Result<WarmState> {
        unreachable!("planning makes no request")
    }
    fn list(&self, _: Option<&str>) -> crate::Result<ListOutcome> {
        unreachable!("planning makes no request")
    }
    fn delete(&self, _: &str) -> crate::Result<()> {
        unreachable!("planning makes no request")
    }
}

fn file(path: &str, content: &[u8]) -> VersionRecord {
    VersionRecord {
        tree: "path".into(),
        path: path.as_bytes().to_vec(),
        kind: EntryKind::File,
        size: content.len() as u64,
        mtime_ns: 1_000_000_000,
        mode: 0o100644,
        hash: Some(tree_hash(content)),
        target: None,
    }
}

fn entry(path: &str, kind: EntryKind, target: Option<&str>) -> VersionRecord {
    VersionRecord {
        kind,
        size: 0,
        mode: if kind == EntryKind::Dir {
            0o40755
        } else {
            0o120777
        },
        hash: None,
        target: target.map(|t| t.as_bytes().to_vec()),
        ..file(path, b"")
    }
}

/// Records an archive of `size` bytes holding `files` at the given offsets.
fn store(
    cat: &mut Catalog,
    snap: SnapshotId,
    name: &str,
    kind: ArchiveKind,
    size: u64,
    files: &[(VersionRecord, u64)],
) -> i64 {
    let mut contents: Vec<NewContent> = Vec::new();
    for (v, offset) in files {
        let hash = v.hash.unwrap();
        if !contents.iter().any(|c| c.hash == hash) {
            contents.push(NewContent {
                hash,
                size: v.size,
                offset: *offset,
            });
        }
    }
    let versions: Vec<VersionRecord> = files.iter().map(|(v, _)| v.clone()).collect();
    let archive = NewArchive {
        remote_id: name.into(),
        kind,
        size,
        tree_hash: tree_hash(name.as_bytes()),
        backend: "fake".into(),
        stored_at: 1,
    };
    cat.commit_archive(&archive, &contents, &versions, snap)
        .unwrap()
}

fn options(to: &Path, patterns: &[&str]) -> RestoreOptions {
    RestoreOptions {
        args: RestoreArgs {
            to: to.to_path_buf(),
            at: None,
            tier: Tier::Bulk,
            overwrite: false,
            dry_run: true,
            max_cost: None,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
        },
        profile: "docs".into(),
        concurrency: 2,
    }
}

/// One snapshot: a bundle with a.txt (twice, as a.txt and copy.txt) and b.txt stored out of
/// order, a large file in its own archive, a link and two directories.
fn catalog() -> (Catalog, i64, i64) {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s, _) = cat.begin_snapshot(100).unwrap();
    let (a, b, copy) = (
        file("a.txt", b"aaa"),
        file("b.txt", b"bb"),
        file("copy.txt", b"aaa"),
    );
    let bundle = store(
        &mut cat,
        s,
        "bundle",
        ArchiveKind::Bundle,
        4 * MIB,
        &[
            (b, 2 * MIB + 512),
            (a.clone(), MIB + 512),
            (copy, MIB + 512),
        ],
    );
    let big = file("sub/big.bin", &[7; 3000]);
    let large = store(&mut cat, s, "large", ArchiveKind::File, 3000, &[(big, 0)]);
    let link = entry("sub/link", EntryKind::Symlink, Some("../a.txt"));
    let dirs = [
        entry("sub", EntryKind::Dir, None),
        entry("sub/deeper", EntryKind::Dir, None),
    ];
    cat.record_versions(&[link, dirs[0].clone(), dirs[1].clone()], s)
        .unwrap();
    cat.finish_snapshot(s, 200).unwrap();
    (cat, bundle, large)
}

#[test]
fn members_are_grouped_per_archive_in_offset_order_and_shared_contents_download_once() {
    let (cat, bundle, large) = catalog();
    let to = Path::new("/nonexistent/out");
    let plan = plan(&options(to, &[]), &Fake { cold: false }, &cat).unwrap();
    assert_eq!(plan.archives.len(), 2);
    let a = &plan.archives[0];
    assert_eq!(
        (a.id, a.kind, a.thaw.clone()),
        (bundle, ObjectKind::Bundle, None)
    );
    let offsets: Vec<u64> = a.members.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [MIB + 512, 2 * MIB + 512]);
    let shared: Vec<&str> = a.members[0].dests.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(
        shared,
        ["path/a.txt", "path/copy.txt"],
        "one download, two files"
    );
    assert_eq!(a.members[0].dests[1].path, to.join("path/copy.txt"));
    assert_eq!(
        a.span,
        ByteRange {
            start: MIB + 512,
            end: 2 * MIB + 514
        }
    );
    assert_eq!(
        (plan.archives[1].id, plan.archives[1].span.len()),
        (large, 3000)
    );

    let t = &plan.totals;
    assert_eq!((t.selected, t.files_to_restore, t.archives), (5, 4, 2));
    assert_eq!(t.bytes_to_restore, 3 + 3 + 2 + 3000);
    assert_eq!(t.bytes_to_download, MIB + 2 + 3000);
    assert_eq!(
        (t.objects_to_thaw, t.download_requests, t.requests),
        (0, 2, 2)
    );
    assert!(
        plan.errors.is_empty() && plan.in_place.is_empty(),
        "{plan:?}"
    );

    assert_eq!(plan.links.len(), 1);
    assert_eq!(plan.links[0].target, b"../a.txt");
    let dirs: Vec<&str> = plan.dirs.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(dirs, ["path/sub/deeper", "path/sub"], "deepest first");
}

#[test]
fn cold_archives_need_ranged_thaws_and_saved_tickets_count_as_requested() {
    let (mut cat, bundle, large) = catalog();
    cat.save_retrieval(&Retrieval {
        archive_id: large,
        range_start: 0,
        range_end: 3000,
        tier: "bulk".into(),
        ticket: Some("job-1".into()),
        requested_at: 150,
    })
    .unwrap();
    let plan = plan(&options(Path::new("/x"), &[]), &Fake { cold: true }, &cat).unwrap();
    let ranged = plan.archives[0].thaw.clone().expect("the bundle is cold");
    assert_eq!(plan.archives[0].id, bundle);
    assert_eq!(
        ranged.range,
        ByteRange {
            start: MIB,
            end: 3 * MIB
        }
    );
    assert!(!ranged.whole && ranged.requested.is_none(), "{ranged:?}");
    let whole = plan.archives[1]
        .thaw
        .clone()
        .expect("the large file is cold");
    assert!(whole.whole, "{whole:?}");
    assert_eq!(
        whole.requested,
        Some(Requested {
            ticket: "job-1".into(),
            tier: "bulk".into(),
            requested_at: 150
        })
    );
    let t = &plan.totals;
    assert_eq!((t.objects_to_thaw, t.already_requested), (2, 1));
    assert_eq!(t.bytes_to_thaw, 2 * MIB + 3000);
    assert_eq!(
        t.bytes_saved_by_ranges,
        2 * MIB,
        "half the bundle is spared"
    );
    assert_eq!(t.requests, 4, "a warm-up and a download per archive");
}

#[test]
fn files_in_place_are_kept_and_existing_ones_refused_without_overwrite() {
    let (cat, _, _) = catalog();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("path")).unwrap();
    std::fs::write(d.path().join("path/a.txt"), b"aaa").unwrap();
    std::fs::write(d.path().join("path/b.txt"), b"other").unwrap();
    let mut opts = options(d.path(), &["path/*.txt"]);
    let p = plan(&opts, &Fake { cold: false }, &cat).unwrap();
    let in_place: Vec<&str> = p.in_place.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(in_place, ["path/a.txt"]);
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].path, "path/b.txt");
    assert!(
        p.errors[0]
            .error
            .ends_with("exists: not overwritten (use --overwrite)"),
        "{}",
        p.errors[0].error
    );
    let members: Vec<&str> = p.archives[0].members[0]
        .dests
        .iter()
        .map(|d| d.file.as_str())
        .collect();
    assert_eq!(members, ["path/copy.txt"]);
    assert_eq!(
        (p.totals.selected, p.totals.already_present, p.exit_code()),
        (3, 1, Exit::Partial)
    );

    opts.args.overwrite = true;
    let p = plan(&opts, &Fake { cold: false }, &cat).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.archives[0].members[1].dests[0].file, "path/b.txt");
    assert_eq!(p.in_place.len(), 1, "a file in place stays in place");
}

#[test]
fn unsafe_paths_are_refused() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s, _) = cat.begin_snapshot(100).unwrap();
    let evil = file("../evil", b"x");
    let fine = file("fine", b"y");
    store(
        &mut cat,
        s,
        "b",
        ArchiveKind::Bundle,
        2048,
        &[(evil, 512), (fine, 1536)],
    );
    cat.finish_snapshot(s, 200).unwrap();
    let p = plan(&options(Path::new("/x"), &[]), &Fake { cold: false }, &cat).unwrap();
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].path, "path/../evil");
    assert!(
        p.errors[0].error.contains("outside the target"),
        "{:?}",
        p.errors
    );
    assert_eq!(p.archives[0].members.len(), 1);
    assert_eq!(p.archives[0].members[0].dests[0].file, "path/fine");
    assert_eq!(p.totals.selected, 1);
}

#[test]
fn patterns_select_entries() {
    let (cat, _, large) = catalog();
    let p = plan(
        &options(Path::new("/x"), &["sub"]),
        &Fake { cold: false },
        &cat,
    )
    .unwrap();
    assert_eq!(p.archives.len(), 1);
    assert_eq!(p.archives[0].id, large);
    assert_eq!(p.archives[0].members[0].dests[0].file, "path/sub/big.bin");
    assert_eq!((p.links.len(), p.dirs.len(), p.totals.selected), (1, 2, 2));
}

#[test]
fn at_picks_the_snapshot() {
    let mut cat = Catalog::open_in_memory().unwrap();
    let (s1, _) = cat.begin_snapshot(100).unwrap();
    store(
        &mut cat,
        s1,
        "one",
        ArchiveKind::Bundle,
        1024,
        &[(file("a", b"one"), 512)],
    );
    cat.finish_snapshot(s1, 200).unwrap();
    let (s2, _) = cat.begin_snapshot(300).unwrap();
    store(
        &mut cat,
        s2,
        "two",
        ArchiveKind::Bundle,
        1024,
        &[(file("a", b"two"), 512)],
    );
    cat.finish_snapshot(s2, 400).unwrap();
    let mut opts = options(Path::new("/x"), &[]);
    let at = |opts: &RestoreOptions| {
        let p = plan(opts, &Fake { cold: false }, &cat)?;
        Ok::<_, Error>((p.snapshot, p.archives[0].members[0].hash))
    };
    assert_eq!(
        at(&opts).unwrap(),
        (s2, tree_hash(b"two")),
        "the last by default"
    );
    opts.args.at = Some("1970-01-01T00:04:10Z".into());
    assert_eq!(at(&opts).unwrap(), (s1, tree_hash(b"one")));
    opts.args.at = Some("1970-01-01T00:03:00Z".into());
    let err = at(&opts).unwrap_err().to_string();
    assert!(err.contains("docs: no complete sync at or before"), "{err}");
    opts.args.at = Some("yesterday".into());
    let err = at(&opts).unwrap_err().to_string();
    assert!(err.contains("bad time"), "{err}");
}

#[test]
fn the_plan_prints_itself() {
    let (cat, _, _) = catalog();
    let p = plan(&options(Path::new("/x"), &[]), &Fake { cold: true }, &cat).unwrap();
    let text = p.to_string();
    assert!(
        text.starts_with(
            "docs (dry run): 5 files selected, 0 already in place; would thaw 2 objects (2.0 MiB) with the bulk tier, 2 MiB spared by ranged retrieval, 4 requests; would download 1.0 MiB from 2 archives"
        ),
        "{text}"
    );
    let json = serde_json::to_value(RestoreOutcome::Planned(p)).unwrap();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["selected"], 5);
    assert_eq!(json["bytes_saved_by_ranges"], 2 * MIB);
    assert_eq!(json["archives"][0]["thaw"]["range"]["start"], MIB);
    assert_eq!(
        json["archives"][0]["members"][0]["dests"][0]["path"],
        "/x/path/a.txt"
    );
    assert_eq!(json["tier"], "bulk");
}

#[test]
fn report_summaries_and_exit_codes() {
    let mut r = RestoreReport {
        name: "docs".into(),
        restored: 3,
        restored_bytes: 2048,
        already_present: 1,
        links: 1,
        ..Default::default()
    };
    assert_eq!(
        r.to_string(),
        "docs: 3 files restored (2 KiB), 1 already in place, 1 links, 0 pending retrievals"
    );
    assert_eq!(Report::exit_code(&r), Exit::Ok);
    r.errors.push(FileError {
        path: "path/b.txt".into(),
        error: "permission denied".into(),
    });
    assert!(r.to_string().ends_with(", 1 errors"), "{r}");
    assert_eq!(Report::exit_code(&r), Exit::Partial);
    r.pending = 2;
    assert_eq!(Report::exit_code(&r), Exit::Pending);
}

/// A legacy tar known only by member names is planned whole (one thaw of the whole archive),
/// its members named; once read, its members are planned by range like any bundle's.
#[test]
fn legacy_tars_are_read_whole_until_their_offsets_are_known() {
    use crate::catalog::{LegacyArchiveIn, LegacyImportIn, LegacyMemberIn, LegacyResolved};
    let mut cat = Catalog::open_in_memory().unwrap();
    let member = |name: &str, size| LegacyMemberIn {
        archive: 0,
        member: name.as_bytes().to_vec(),
        size,
    };
    let mut c = file("c.txt", b"ccc");
    let mut d = file("d.txt", b"dd");
    (c.hash, d.hash) = (None, None);
    let snap = cat
        .import_legacy(&LegacyImportIn {
            time: 50,
            archives: vec![LegacyArchiveIn {
                remote_id: "T".into(),
                tar: true,
                sha1: "ab".repeat(20),
                size: 3 * MIB,
                tree_hash: Some(tree_hash(b"t")),
                stored_at: 50,
                backend: "glacier".into(),
            }],
            members: vec![member("h/c.txt", 3), member("h/d.txt", 2)],
            versions: vec![(c, 0), (d, 1)],
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = plan(
        &options(dir.path(), &["path/d.txt"]),
        &Fake { cold: true },
        &cat,
    )
    .unwrap();
    let a = &p.archives[0];
    assert_eq!((a.span.start, a.span.end), (0, 3 * MIB));
    assert!(a.thaw.as_ref().unwrap().whole);
    let legacy = a.legacy.as_ref().unwrap();
    assert_eq!(legacy.names, [b"h/d.txt".to_vec()]);
    assert_eq!(legacy.all.len(), 2, "every member gets its hash once read");
    assert_eq!(legacy.tree_hash, Some(tree_hash(b"t")));

    let resolved = |name: &str, offset, data: &[u8]| LegacyResolved {
        member: name.as_bytes().to_vec(),
        offset,
        size: data.len() as u64,
        hash: tree_hash(data),
    };
    cat.legacy_resolve(
        (a.id, "T"),
        &[
            resolved("h/c.txt", 512, b"ccc"),
            resolved("h/d.txt", 2 * MIB, b"dd"),
        ],
        &[],
        None,
    )
    .unwrap();
    let p = plan(
        &options(dir.path(), &["path/d.txt"]),
        &Fake { cold: true },
        &cat,
    )
    .unwrap();
    let a = &p.archives[0];
    assert!(a.legacy.is_none());
    assert_eq!((a.span.start, a.span.end), (2 * MIB, 2 * MIB + 2));
    assert_eq!(a.members[0].hash, tree_hash(b"dd"));
    assert_eq!(p.snapshot, snap);
}

#[test]
fn each_archive_is_quoted_at_the_class_it_was_stored_in() {
    let (cat, _, _) = catalog();
    let mut plan = plan(&options(Path::new("/x"), &[]), &Fake { cold: true }, &cat).unwrap();
    plan.backend = "s3".into();
    plan.tier = Tier::Standard;
    // Both archives were stored (at 1) while data went to DEEP_ARCHIVE; GLACIER since 50.
    let history = [(0, "DEEP_ARCHIVE".to_string()), (50, "GLACIER".to_string())];
    plan.price(&history, Some("GLACIER"));
    let deep = plan.quote.clone().unwrap();
    assert_eq!(deep.place, "s3:DEEP_ARCHIVE", "{deep:?}");
    assert_eq!(deep.thaw_requests, 2);
    // DEEP_ARCHIVE standard: $0.02/GB and $0.10 per 1,000 requests.
    let gb = deep.bytes_to_thaw as f64 / (1u64 << 30) as f64;
    assert!((deep.thaw_usd - (gb * 0.02 + 2.0 * 0.10 / 1000.0)).abs() < 1e-12);
    // Priced at the class set now, it would be cheaper: that was the bug.
    plan.price(&[(0, "GLACIER".to_string())], Some("GLACIER"));
    let glacier = plan.quote.clone().unwrap();
    assert_eq!(glacier.place, "s3:GLACIER");
    assert!(glacier.total_usd < deep.total_usd);
    // Stored before any record: the class set now.
    plan.price(&[(50, "GLACIER".to_string())], Some("STANDARD_IA"));
    let q = plan.quote.clone().unwrap();
    assert_eq!(q.place, "s3:STANDARD_IA");
    // One archive stored under each class: each priced at its own.
    plan.archives[1].stored_at = 60;
    plan.price(&history, Some("GLACIER"));
    let q = plan.quote.clone().unwrap();
    assert_eq!(q.place, "s3:DEEP_ARCHIVE+s3:GLACIER", "{q:?}");
    assert_eq!(q.places.len(), 2);
    assert!(q.price_table.contains(crate::cost::PRICES_AS_OF));
}

#[test]
fn the_cli_parses_its_restore_options_into_the_librarys_struct() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RestoreArgs,
    }
    let cli =
        Cli::try_parse_from(["restore", "--to", "out", "--max-cost", "2.5", "--dry-run"]).unwrap();
    assert_eq!(cli.args.max_cost, Some(2.5));
    assert!(cli.args.dry_run);
    let cli = Cli::try_parse_from(["restore", "--to", "out"]).unwrap();
    assert_eq!(cli.args.max_cost, None);
}
