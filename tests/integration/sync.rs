//! `sync`: the JSON summary, change detection, deduplication, bundling and the threshold,
//! excludes, symlinks, `--dry-run`, and `verify --local`.

use super::common::*;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;

fn mtime_of(path: &Path) -> (i64, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec() as u32)
}

fn total_size(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn json_summary_has_the_fields_of_the_spec() {
    let f = Fixture::new();
    let mut rng = Rng::new(7);
    f.write("src/a.txt", b"alpha");
    f.write("src/sub/b.txt", b"bravo");
    f.write("src/empty", b"");
    f.write("src/a-copy.txt", b"alpha");
    std::os::unix::fs::symlink("a.txt", f.p("src/link")).unwrap();
    f.write("src2/big.bin", &rng.bytes(2 * MIB));

    let r = f.run(&["--json", "sync"]);
    r.expect(0);
    // Nothing but the JSON document on stdout.
    let doc = r.json();
    assert_eq!(doc.as_object().unwrap().len(), 1, "{doc:#}");
    let s = r.sync_summary();
    s.assert_invariant();
    assert_eq!(s.name, "docs");
    assert_eq!(s.backend, "local");
    // Directories are not counted; the link is.
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged),
        (6, 6, 0, 0),
        "{s:#?}"
    );
    assert_eq!(s.deduplicated, 1, "a-copy.txt has a.txt's content: {s:#?}");
    assert_eq!(s.deleted, 0);
    assert!(s.errors.is_empty());
    let bundles = f.stored("bundles");
    let data = f.stored("data");
    let catalogs = f.stored("catalog");
    assert_eq!((bundles.len(), data.len(), catalogs.len()), (1, 1, 1));
    // One bundle, one large file, and the catalog copy.
    assert_eq!(s.archives_uploaded, 3, "{s:#?}");
    let mut objects = bundles.clone();
    objects.extend(data);
    assert_eq!(s.uploaded_bytes, total_size(&objects), "{s:#?}");

    // `status` agrees.
    let r = f.run(&["--json", "status"]);
    r.expect(0);
    let st = r.profile();
    assert_eq!(st["files"], 5, "{st:#}");
    assert_eq!(st["archives"], 3, "{st:#}");
    assert_eq!(st["pending_retrievals"], 0, "{st:#}");
    assert!(st["last_sync"].is_string(), "{st:#}");

    // Again: nothing to do, nothing uploaded, not even a catalog copy.
    let s = f.sync();
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged),
        (6, 0, 0, 6),
        "{s:#?}"
    );
    assert_eq!((s.deduplicated, s.deleted), (0, 0));
    assert_eq!((s.archives_uploaded, s.uploaded_bytes), (0, 0), "{s:#?}");
    assert_eq!(f.stored("").len(), 3);

    // Without --json: a summary on stderr, nothing on stdout.
    let r = f.run(&["sync"]);
    r.expect(0);
    assert!(r.stdout.is_empty(), "{}", r.stdout());
    assert!(r.stderr.contains("6 scanned"), "{}", r.stderr);
}

#[test]
fn change_detection_touch_edit_same_size_edit_delete() {
    let f = Fixture::new();
    let mut rng = Rng::new(11);
    let a = f.write("src/a.txt", b"alpha");
    let b = f.write("src/b.txt", b"bravo, first version");
    let c = f.write("src/c.txt", b"charlie");
    let d = f.write("src/d.txt", b"delta");
    let big = f.write("src2/big.bin", &rng.bytes(2 * MIB));
    let s = f.sync();
    assert_eq!((s.new, s.archives_uploaded), (5, 3), "{s:#?}");
    let bundles = f.stored("bundles").len();

    // Touch: mtime only. Changed, its content deduplicated: only the catalog copy is uploaded.
    let (secs, _) = mtime_of(&a);
    set_mtime(&a, secs + 10, 5);
    let s = f.sync();
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged, s.deleted),
        (5, 0, 1, 4, 0),
        "{s:#?}"
    );
    assert_eq!(s.deduplicated, 1, "{s:#?}");
    assert_eq!((s.archives_uploaded, s.uploaded_bytes), (1, 0), "{s:#?}");
    assert_eq!(f.stored("bundles").len(), bundles);
    assert_eq!(f.stored("catalog").len(), 2);
    let line = f
        .ls(None)
        .into_iter()
        .find(|l| l.starts_with(b"path/a.txt\t"))
        .unwrap();
    let line = String::from_utf8(line).unwrap();
    assert!(
        line.ends_with(".000000005Z"),
        "ls shows the new mtime: {line}"
    );

    // Edit: new content of another size.
    std::fs::write(&b, b"bravo, the second version").unwrap();
    let s = f.sync();
    assert_eq!((s.new, s.changed, s.unchanged), (0, 1, 4), "{s:#?}");
    assert_eq!(s.deduplicated, 0);
    assert_eq!(s.archives_uploaded, 2, "a bundle and the catalog: {s:#?}");
    assert_eq!(f.stored("bundles").len(), bundles + 1);

    // Same-size edit with a new mtime.
    let before = mtime_of(&c);
    std::fs::write(&c, b"CHARLIE").unwrap();
    set_mtime(&c, before.0 + 3, before.1);
    let s = f.sync();
    assert_eq!(
        (s.changed, s.unchanged, s.deduplicated),
        (1, 4, 0),
        "{s:#?}"
    );
    assert_eq!(s.archives_uploaded, 2, "{s:#?}");

    // Same-size edit of a large file: a new object under data/.
    let mut bytes = std::fs::read(&big).unwrap();
    bytes[MIB] ^= 0xff;
    std::fs::write(&big, &bytes).unwrap();
    let s = f.sync();
    assert_eq!((s.changed, s.unchanged), (1, 4), "{s:#?}");
    assert_eq!(s.uploaded_bytes, 2 * MIB as u64, "{s:#?}");
    assert_eq!(f.stored("data").len(), 2);

    // Delete: counted, gone from `ls`, still listed as it stood before.
    let before_delete = f.last_sync();
    next_second();
    std::fs::remove_file(&d).unwrap();
    let s = f.sync();
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged, s.deleted),
        (4, 0, 0, 4, 1),
        "{s:#?}"
    );
    assert_eq!(s.archives_uploaded, 1, "only the catalog copy: {s:#?}");
    let now: BTreeSet<Vec<u8>> = f.ls_paths(None).into_iter().collect();
    assert!(!now.contains(&b"path/d.txt"[..]), "{now:?}");
    assert_eq!(now.len(), 4);
    let then: BTreeSet<Vec<u8>> = f.ls_paths(Some(&before_delete)).into_iter().collect();
    assert!(then.contains(&b"path/d.txt"[..]), "{then:?}");
    assert_eq!(then.len(), 5);

    // A deletion is recorded once.
    let s = f.sync();
    assert_eq!(
        (s.deleted, s.unchanged, s.archives_uploaded),
        (0, 4, 0),
        "{s:#?}"
    );
}

#[test]
fn permission_change_is_a_new_version_with_the_same_content() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let a = f.write("src/a.sh", b"#!/bin/sh\n");
    f.sync();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = f.sync();
    assert_eq!((s.changed, s.unchanged), (1, 0), "{s:#?}");
    assert_eq!(f.stored("bundles").len(), 1, "content not stored again");
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    let mode = std::fs::metadata(out.join("path/a.sh")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn rename_and_copy_are_not_stored_again() {
    let f = Fixture::new();
    let mut rng = Rng::new(3);
    f.write("src/docs/report.txt", &rng.bytes(100_000));
    f.write("src2/video.bin", &rng.bytes(3 * MIB));
    f.sync();
    let stored = f.stored("bundles").len() + f.stored("data").len();

    std::fs::create_dir(f.p("src/archive")).unwrap();
    std::fs::rename(
        f.p("src/docs/report.txt"),
        f.p("src/archive/report-2024.txt"),
    )
    .unwrap();
    std::fs::copy(f.p("src2/video.bin"), f.p("src/video-copy.bin")).unwrap();
    let s = f.sync();
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged, s.deleted),
        (3, 2, 0, 1, 1),
        "{s:#?}"
    );
    assert_eq!(s.deduplicated, 2, "{s:#?}");
    assert_eq!(s.uploaded_bytes, 0, "{s:#?}");
    assert_eq!(s.archives_uploaded, 1, "only the catalog copy: {s:#?}");
    assert_eq!(f.stored("bundles").len() + f.stored("data").len(), stored);

    // And they restore.
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
}

fn tar_list(bundle: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(bundle).output().unwrap();
    assert!(
        out.status.success(),
        "tar -tf {}: {}",
        bundle.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn small_files_go_into_few_plain_tar_bundles_that_close_past_the_threshold() {
    let f = Fixture::new();
    let mut rng = Rng::new(5);
    // 1000 files of 2 KiB: 2.5 KiB each in a tar (header and data), 2,560,000 bytes in all.
    for i in 0..1000 {
        f.write(format!("src/d{:02}/f{i:04}.txt", i % 37), &rng.bytes(2048));
    }
    let s = f.sync();
    assert_eq!(s.new, 1000);
    assert!(f.stored("data").is_empty());
    let bundles = f.stored("bundles");
    // A bundle closes once it passes 1 MiB: after 410 members, 410 more, and the last 180.
    assert_eq!(bundles.len(), 3, "{bundles:?}");
    assert_eq!(s.archives_uploaded, 4, "{s:#?}");
    let mut sizes: Vec<u64> = bundles
        .iter()
        .map(|b| std::fs::metadata(b).unwrap().len())
        .collect();
    sizes.sort();
    let member = 2560;
    let end_blocks = 1024;
    assert_eq!(sizes[0], 180 * member + end_blocks, "{sizes:?}");
    for s in &sizes[1..] {
        assert_eq!(*s, 410 * member + end_blocks, "{sizes:?}");
        assert!(*s >= MIB as u64 && *s - end_blocks - member < MIB as u64);
    }

    // Plain tars, members named as `ls` prints paths, every small file exactly once.
    let mut members = Vec::new();
    for b in &bundles {
        members.extend(tar_list(b));
    }
    let unique: BTreeSet<&String> = members.iter().collect();
    assert_eq!(unique.len(), members.len(), "a file stored twice");
    let expected: BTreeSet<String> = f
        .ls_paths(None)
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    assert_eq!(expected.len(), 1000);
    assert_eq!(
        unique.into_iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );

    // `tar -x` gives back the files' bytes.
    let x = f.p("untar");
    std::fs::create_dir(&x).unwrap();
    for b in &bundles {
        let st = Command::new("tar")
            .arg("-xf")
            .arg(b)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap();
        assert!(st.success());
    }
    for m in &members {
        let rel = m.strip_prefix("path/").unwrap();
        assert_eq!(
            std::fs::read(x.join(m)).unwrap(),
            std::fs::read(f.p("src").join(rel)).unwrap(),
            "{m}"
        );
    }

    // Exactly at the threshold: bundled. One byte more: an object of its own, its bytes as
    // they are.
    f.write("src2/at-threshold.bin", &rng.bytes(MIB));
    let above = f.write("src2/above.bin", &rng.bytes(MIB + 1));
    let s = f.sync();
    assert_eq!((s.new, s.archives_uploaded), (2, 3), "{s:#?}");
    let data = f.stored("data");
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(
        std::fs::read(&data[0]).unwrap(),
        std::fs::read(&above).unwrap()
    );
    let new_bundles: Vec<_> = f
        .stored("bundles")
        .into_iter()
        .filter(|b| !bundles.contains(b))
        .collect();
    assert_eq!(new_bundles.len(), 1);
    assert_eq!(tar_list(&new_bundles[0]), ["path2/at-threshold.bin"]);
}

#[test]
fn excludes_use_gitignore_syntax_over_several_lines() {
    let f = Fixture::with_settings(&settings_with(
        "exclude = *.tmp\n    /build/\n\tcache/\n    !keep.tmp\n    secret*.txt",
    ));
    for p in [
        "src/a.txt",
        "src/x.tmp",
        "src/keep.tmp",
        "src/build/out.o",
        "src/lib/build/kept.rs",
        "src/cache/c.bin",
        "src/deep/er/cache/d.bin",
        "src/cache.txt",
        "src/secret-plans.txt",
        "src/sub/secret.txt",
        "src2/y.tmp",
        "src2/b.txt",
        "src2/build/left-out.o",
    ] {
        f.write(p, p.as_bytes());
    }
    let s = f.sync();
    let listed: BTreeSet<String> = f
        .ls_paths(None)
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    let expected: BTreeSet<String> = [
        "path/a.txt",
        "path/keep.tmp",
        "path/lib/build/kept.rs",
        "path/cache.txt",
        "path2/b.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // `/build/` is anchored at the root of each tree: src2/build is left out too.
    assert_eq!(listed, expected);
    assert_eq!(s.scanned, 5, "excluded files are not even scanned: {s:#?}");

    // The sample's form: nothing on the key line, every pattern indented below it.
    f.write_settings(&settings_with("exclude =\n    *.txt\n    *.tmp\n    *.o\n"));
    let s = f.sync();
    // What is excluded now is gone from the latest sync; what no longer is, is new.
    assert_eq!(
        f.ls_paths(None),
        [
            &b"path/cache/c.bin"[..],
            b"path/deep/er/cache/d.bin",
            b"path/lib/build/kept.rs"
        ]
    );
    assert_eq!((s.deleted, s.new, s.unchanged), (4, 2, 1), "{s:#?}");
}

#[test]
fn symlinks_are_stored_as_links_not_followed() {
    let f = Fixture::new();
    let outside = f.p("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("not-mine.txt"), b"outside the tree").unwrap();
    f.write("src/real.txt", b"real");
    std::os::unix::fs::symlink(&outside, f.p("src/to-dir")).unwrap();
    std::os::unix::fs::symlink("real.txt", f.p("src/to-file")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", f.p("src/dangling")).unwrap();
    let s = f.sync();
    assert_eq!((s.scanned, s.new), (4, 4), "{s:#?}");
    let r = f.run(&["--json", "ls"]);
    r.expect(0);
    let files = r.profile()["files"].as_array().unwrap().clone();
    let kinds: Vec<(String, String)> = files
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("path/dangling", "symlink"),
            ("path/real.txt", "file"),
            ("path/to-dir", "symlink"),
            ("path/to-file", "symlink"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Only real.txt's bytes were stored.
    let bundles = f.stored("bundles");
    assert_eq!(bundles.len(), 1);
    assert_eq!(tar_list(&bundles[0]), ["path/real.txt"]);

    // A link whose target changes is a changed entry.
    std::fs::remove_file(f.p("src/to-file")).unwrap();
    std::os::unix::fs::symlink("elsewhere.txt", f.p("src/to-file")).unwrap();
    let s = f.sync();
    assert_eq!((s.changed, s.unchanged), (1, 3), "{s:#?}");

    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_eq!(
        std::fs::read_link(out.join("path/to-dir")).unwrap(),
        outside
    );
    // Nothing was written through the restored link.
    assert_eq!(entries_under(&outside), [outside.join("not-mine.txt")]);
}

#[test]
fn dry_run_reports_the_plan_and_changes_nothing() {
    let f = Fixture::new();
    let mut rng = Rng::new(9);
    for i in 0..20 {
        f.write(format!("src/f{i}.txt"), &rng.bytes(1000));
    }
    f.write("src2/big.bin", &rng.bytes(2 * MIB));

    let r = f.run(&["--json", "sync", "--dry-run"]);
    r.expect(0);
    let s = r.sync_summary();
    s.assert_invariant();
    assert_eq!((s.scanned, s.new), (21, 21), "{s:#?}");
    let p = r.profile();
    assert_eq!(p["dry_run"], true);
    let plan = &p["plan"];
    assert_eq!(plan["large_files"], 1, "{plan:#}");
    assert_eq!(plan["bundled_files"], 20, "{plan:#}");
    assert_eq!(plan["read_bytes"], 20 * 1000 + 2 * MIB as u64, "{plan:#}");
    assert!(plan["archives"].as_u64().unwrap() >= 3, "{plan:#}");
    assert!(plan["requests"].as_u64().unwrap() >= 3, "{plan:#}");
    assert!(plan["estimated_upload_usd"].is_number(), "{plan:#}");
    // Nothing written: no catalog, no store.
    assert!(!f.catalog().exists());
    assert!(!f.p("store").exists(), "{:?}", entries_under(&f.p("store")));
    assert!(
        entries_under(&f.p("db")).is_empty(),
        "{:?}",
        entries_under(&f.p("db"))
    );

    // The text form says what it would do.
    let r = f.run(&["sync", "--dry-run"]);
    r.expect(0);
    assert!(
        r.stderr.contains("dry run") && r.stderr.contains("21 new"),
        "{}",
        r.stderr
    );

    // After a real sync, a dry run sees the change and leaves catalog and store alone.
    f.sync();
    let catalog_before = std::fs::read(f.catalog()).unwrap();
    let store_before = entries_under(&f.p("store"));
    let db_before = entries_under(&f.p("db"));
    std::fs::write(f.p("src/f0.txt"), b"changed").unwrap();
    std::fs::remove_file(f.p("src/f1.txt")).unwrap();
    let r = f.run(&["--json", "sync", "--dry-run"]);
    r.expect(0);
    let s = r.sync_summary();
    assert_eq!((s.changed, s.deleted, s.unchanged), (1, 1, 19), "{s:#?}");
    assert_eq!(std::fs::read(f.catalog()).unwrap(), catalog_before);
    assert_eq!(entries_under(&f.p("store")), store_before);
    assert_eq!(entries_under(&f.p("db")), db_before);
    // The real sync afterwards still sees the change.
    let s = f.sync();
    assert_eq!((s.changed, s.deleted), (1, 1), "{s:#?}");
}

#[test]
fn verify_local_detects_bit_rot() {
    let f = Fixture::new();
    let a = f.write("src/photo.jpg", b"the picture as it was taken");
    f.write("src/other.txt", b"fine");
    f.sync();
    f.run(&["verify", "--local"]).expect(0);

    // A file changed the honest way (new mtime) is not a problem of the backup.
    let o = f.p("src/other.txt");
    let t = mtime_of(&o);
    std::fs::write(&o, b"edited").unwrap();
    set_mtime(&o, t.0 + 60, 0);
    f.run(&["verify", "--local"]).expect(0);

    // Bit rot: same size, same mtime, other bytes.
    let t = mtime_of(&a);
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[4] ^= 0x01;
    std::fs::write(&a, &bytes).unwrap();
    set_mtime(&a, t.0, t.1);
    assert_eq!(mtime_of(&a), t);
    let r = f.run(&["--json", "verify", "--local"]);
    r.expect(1);
    assert!(r.stderr.contains("path/photo.jpg"), "{}", r.stderr);
    let problems = r.profile()["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].as_str().unwrap().contains("path/photo.jpg"));
    // A sync does not notice (size and mtime are the same) ...
    let s = f.sync();
    assert_eq!(s.unchanged, 1, "{s:#?}");
    // ... and the backup still has the good bytes.
    let out = f.p("out");
    f.restore(&out, &["path/photo.jpg"]).expect(0);
    assert_eq!(
        std::fs::read(out.join("path/photo.jpg")).unwrap(),
        b"the picture as it was taken"
    );
}

#[test]
fn entries_that_change_kind_are_counted_and_restored_at_each_time() {
    let f = Fixture::new();
    f.write("src/x", b"a file that becomes a directory");
    f.write("src/d/f.txt", b"in a directory that becomes a file");
    std::os::unix::fs::symlink("x", f.p("src/l")).unwrap();
    let s = f.sync();
    assert_eq!((s.scanned, s.new), (3, 3), "{s:#?}");
    let before = f.last_sync();
    let old = f.p("old");
    std::fs::create_dir(&old).unwrap();
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(f.p("src"))
            .arg(&old)
            .status()
            .unwrap()
            .success()
    );
    next_second();

    std::fs::remove_file(f.p("src/x")).unwrap();
    f.write("src/x/y.txt", b"now inside x");
    std::fs::remove_dir_all(f.p("src/d")).unwrap();
    f.write("src/d", b"now a file");
    std::fs::remove_file(f.p("src/l")).unwrap();
    f.write("src/l", b"a link no more");
    let s = f.sync();
    // Directories are not files: x/y.txt and the file d are new, the link that became a
    // file is changed; the file x (now a directory) and d/f.txt are gone.
    assert_eq!(
        (s.scanned, s.new, s.changed, s.unchanged, s.deleted),
        (3, 2, 1, 0, 2),
        "{s:#?}"
    );
    assert_eq!(
        f.ls_paths(None),
        [&b"path/d"[..], b"path/l", b"path/x/y.txt"]
    );
    assert_eq!(
        f.ls_paths(Some(&before)),
        [&b"path/d/f.txt"[..], b"path/l", b"path/x"]
    );

    let now = f.p("now");
    f.restore(&now, &[]).expect(0);
    assert_same_tree(&f.p("src"), &now.join("path"));
    let then = f.p("then");
    f.restore(&then, &["--at", &before]).expect(0);
    assert_same_tree(&old.join("src"), &then.join("path"));
}

#[test]
fn special_files_are_skipped_without_error() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    assert!(
        Command::new("mkfifo")
            .arg(f.p("src/pipe"))
            .status()
            .unwrap()
            .success()
    );
    let r = f.run(&["--json", "-v", "sync"]);
    r.expect(0);
    let s = r.sync_summary();
    assert_eq!((s.scanned, s.new), (1, 1), "{s:#?}");
    assert_eq!(r.profile()["skipped"], 1);
    assert!(r.stderr.contains("path/pipe"), "{}", r.stderr);
    assert_eq!(f.ls_paths(None), [b"path/a.txt".to_vec()]);
}

#[test]
fn a_file_written_during_the_sync_is_never_stored_torn() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = Fixture::new();
    let mut rng = Rng::new(21);
    f.write("src/quiet.txt", b"still");
    let log = f.write("src2/growing.log", &rng.bytes(4 * MIB));
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                out.write_all(&i.to_le_bytes().repeat(512)).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let r = f.run(&["--json", "sync"]);
        stop.store(true, Ordering::Relaxed);
        r
    });
    eprintln!("sync of a growing file: exit {}", r.code);
    let s = r.sync_summary();
    s.assert_invariant();
    match r.code {
        // Read between two writes: stored as it stood then.
        0 => assert!(s.errors.is_empty(), "{s:#?}"),
        // Changed while read or stored: named, and tried again next time.
        1 => {
            assert_eq!(s.errors.len(), 1, "{s:#?}");
            assert_eq!(s.errors[0].path, "path2/growing.log");
            assert!(s.errors[0].error.contains("changed while"), "{s:#?}");
            assert!(r.stderr.contains("path2/growing.log"), "{}", r.stderr);
        }
        other => panic!("exit {other}: {}", r.stderr),
    }
    // Whatever was stored is the file as it stood at one moment: a prefix of it now.
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    let now = std::fs::read(&log).unwrap();
    if r.code == 0 {
        let stored = std::fs::read(out.join("path2/growing.log")).unwrap();
        assert!(stored.len() >= 4 * MIB && now.starts_with(&stored));
    } else {
        assert!(!out.join("path2/growing.log").exists());
    }
    // Once it is quiet, it is backed up.
    let s = f.sync();
    assert_eq!(s.errors.len(), 0);
    let out2 = f.p("out2");
    f.restore(&out2, &[]).expect(0);
    assert_same_tree(&f.p("src2"), &out2.join("path2"));
}

#[test]
fn recover_brings_back_the_newest_catalog_even_after_two_syncs_in_one_second() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    next_second();
    f.sync();
    f.write("src/b.txt", b"b");
    f.sync();
    f.write("src/c.txt", b"c");
    f.sync();
    let ls = || -> Vec<String> {
        f.ls(None)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };
    let before = ls();
    assert_eq!(before.len(), 3);
    assert_eq!(f.stored("catalog").len(), 3);

    std::fs::rename(f.p("db"), f.p("db-lost")).unwrap();
    let r = f.run(&["--json", "recover"]);
    r.expect(0);
    assert_eq!(r.profile()["state"], "recovered");
    assert_eq!(ls(), before);
    f.run(&["verify"]).expect(0);
}

/// Thousands of files to read (past the point where the sync filters contents in memory before
/// asking the catalog): copies among them are stored once, and after a rename of them all
/// nothing is stored again.
#[test]
fn thousands_of_copies_and_renames_are_stored_once() {
    let f = Fixture::new();
    for i in 0..5000 {
        f.write(
            format!("src/a/{i}.txt"),
            format!("content number {}\n", i % 2500).as_bytes(),
        );
    }
    let s = f.sync();
    assert_eq!((s.new, s.deduplicated), (5000, 2500), "{s:#?}");
    let members: u64 = f
        .stored("bundles")
        .iter()
        .map(|b| {
            tar::Archive::new(std::fs::File::open(b).unwrap())
                .entries()
                .unwrap()
                .count() as u64
        })
        .sum();
    assert_eq!(members, 2500, "each content stored once");
    std::fs::rename(f.p("src/a"), f.p("src/b")).unwrap();
    let s = f.sync();
    assert_eq!(
        (s.new, s.deleted, s.deduplicated),
        (5000, 5000, 5000),
        "{s:#?}"
    );
    assert_eq!(s.uploaded_bytes, 0, "{s:#?}");
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
}
