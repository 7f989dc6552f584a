//! `restore` and `ls` over time: round trips byte for byte (names that are not UTF-8,
//! unicode, symlinks, modes, mtimes), points in time, no overwriting, hash verification, and
//! never a write outside `--to`.

use super::common::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const MIB: usize = 1 << 20;

/// A tree with every kind of name and entry the engine must carry.
fn rich_tree(f: &Fixture) {
    let mut rng = Rng::new(42);
    let src = f.p("src");
    let names: &[&[u8]] = &[
        b"plain.txt",
        "café/naïve résumé.txt".as_bytes(),
        "日本語のファイル.txt".as_bytes(),
        "emoji 🎉 party.md".as_bytes(),
        b"latin1-caf\xe9.bin",
        b"dir-\xff\xfe/inner\x80.txt",
        b"with spaces and * ? [brackets].txt",
        b"..double-dot-prefix",
        b"suffix..",
        b"...",
        b"deep/a/b/c/d/e/f.txt",
        b"back\\slash.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        let path = src.join(raw(name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rng.bytes(100 + i * 37)).unwrap();
    }
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("dup-1.txt"), b"same bytes").unwrap();
    std::fs::write(src.join("dup-2.txt"), b"same bytes").unwrap();
    let script = src.join("script.sh");
    std::fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = src.join("private.key");
    std::fs::write(&private, b"secret").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ro = src.join("read-only.txt");
    std::fs::write(&ro, b"do not touch").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::create_dir(src.join("closed dir")).unwrap();
    std::fs::write(src.join("closed dir/inside.txt"), b"inside").unwrap();
    std::fs::create_dir(src.join("empty dir")).unwrap();

    symlink("plain.txt", src.join("link-to-file")).unwrap();
    symlink("café", src.join("link-to-dir")).unwrap();
    symlink("/etc/hostname", src.join("absolute-link")).unwrap();
    symlink("nowhere/at/all", src.join("dangling-link")).unwrap();
    symlink(raw(b"latin1-caf\xe9.bin"), src.join(raw(b"link-\xe9"))).unwrap();

    f.write("src2/big.bin", &rng.bytes(3 * MIB + 17));
    f.write("src2/at-threshold.bin", &rng.bytes(MIB));
    f.write(
        "src2/big-copy.bin",
        &std::fs::read(f.p("src2/big.bin")).unwrap(),
    );

    // Mtimes with nanoseconds, old and recent; directories last (writing into them moves theirs).
    let mut t = 1_500_000_000i64;
    for p in files_under(&f.p("src"))
        .into_iter()
        .chain(files_under(&f.p("src2")))
    {
        t += 86_400 * 3 + 7;
        set_mtime(&p, t, (t % 1_000_000_000) as u32 + 123);
    }
    std::fs::set_permissions(
        src.join("closed dir"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let mut dirs: Vec<PathBuf> = entries_under(&src)
        .into_iter()
        .filter(|p| p.symlink_metadata().unwrap().is_dir())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
    for d in dirs {
        t += 1000;
        set_mtime(&d, t, 999_999_999);
    }
}

#[test]
fn round_trip_is_byte_for_byte_with_names_modes_mtimes_and_links() {
    let f = Fixture::new();
    rich_tree(&f);
    let s = f.sync();
    assert_eq!(s.deduplicated, 2, "dup-2 and big-copy: {s:#?}");

    // `ls` prints names that are not UTF-8 as their raw bytes.
    let listed = f.ls_paths(None);
    for name in [
        &b"path/latin1-caf\xe9.bin"[..],
        b"path/dir-\xff\xfe/inner\x80.txt",
        "path/café/naïve résumé.txt".as_bytes(),
        b"path/link-\xe9",
    ] {
        assert!(
            listed.iter().any(|l| l == name),
            "{} not in ls",
            name.escape_ascii()
        );
    }

    // `ls` with patterns.
    let r = f.run(&["ls", "**/*.bin", "path/café"]);
    r.expect(0);
    let mut got: Vec<&[u8]> = r
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.split(|&b| b == b'\t').next().unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "path/café/naïve résumé.txt".as_bytes(),
            b"path/latin1-caf\xe9.bin",
            b"path2/at-threshold.bin",
            b"path2/big-copy.bin",
            b"path2/big.bin",
        ]
    );

    let out = f.p("out");
    let r = f.restore(&out, &[]);
    r.expect(0);
    let p = r.profile();
    assert_eq!(p["errors"].as_array().unwrap().len(), 0, "{p:#}");
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
    assert_eq!(
        std::fs::read_link(out.join("path/absolute-link")).unwrap(),
        Path::new("/etc/hostname")
    );
    // Nothing but the two trees, no temporary files.
    let top: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top.len(), 2, "{top:?}");

    // A selection by pattern, also over names that are not UTF-8.
    let out2 = f.p("out2");
    f.restore(&out2, &["path/café/**", "**/*.bin"]).expect(0);
    let mut got: Vec<String> = files_under(&out2)
        .iter()
        .map(|p| {
            p.strip_prefix(&out2)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .escape_ascii()
                .to_string()
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "path/caf\\xc3\\xa9/na\\xc3\\xafve r\\xc3\\xa9sum\\xc3\\xa9.txt",
            "path/latin1-caf\\xe9.bin",
            "path2/at-threshold.bin",
            "path2/big-copy.bin",
            "path2/big.bin",
        ]
    );
}

#[test]
fn ls_and_restore_at_a_point_in_time() {
    let f = Fixture::new();
    let a = f.write("src/a.txt", b"version one");
    f.write("src/b.txt", b"bravo");
    f.write("src2/big.bin", &Rng::new(1).bytes(2 * MIB));
    set_mtime(&a, 1_600_000_000, 1);
    f.sync();
    let t1 = f.last_sync();
    next_second();

    std::fs::write(&a, b"version two, longer").unwrap();
    set_mtime(&a, 1_600_000_100, 2);
    std::fs::remove_file(f.p("src/b.txt")).unwrap();
    f.write("src/c.txt", b"charlie");
    f.write("src2/big.bin", &Rng::new(2).bytes(2 * MIB));
    f.sync();
    let t2 = f.last_sync();
    assert!(t2 > t1, "{t1} {t2}");

    let at1 = f.ls(Some(&t1));
    let at1: Vec<String> = at1
        .iter()
        .map(|l| String::from_utf8_lossy(l).into())
        .collect();
    assert_eq!(at1.len(), 3, "{at1:?}");
    assert_eq!(at1[0], "path/a.txt\t11\t2020-09-13T12:26:40.000000001Z");
    assert!(at1[1].starts_with("path/b.txt\t5\t"), "{at1:?}");
    assert!(at1[2].starts_with("path2/big.bin\t2097152\t"), "{at1:?}");
    let now: Vec<String> = f
        .ls(None)
        .iter()
        .map(|l| String::from_utf8_lossy(l).into())
        .collect();
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[0], "path/a.txt\t19\t2020-09-13T12:28:20.000000002Z");
    assert!(now[1].starts_with("path/c.txt\t7\t"), "{now:?}");
    assert_eq!(f.ls(Some(&t2)), f.ls(None));
    // A date: the end of that day.
    assert_eq!(f.ls(Some("2999-12-31")), f.ls(None));
    // Before the first sync: nothing to show, said clearly.
    let r = f.run(&["ls", "--at", "2001-01-01T00:00:00Z"]);
    r.expect(2);
    assert!(
        r.one_stderr_line().contains("no complete sync"),
        "{}",
        r.stderr
    );

    // Restore as it stood at t1.
    let old = f.p("old");
    f.restore(&old, &["--at", &t1]).expect(0);
    assert_eq!(
        std::fs::read(old.join("path/a.txt")).unwrap(),
        b"version one"
    );
    let m = std::fs::metadata(old.join("path/a.txt")).unwrap();
    assert_eq!(
        filetime::FileTime::from_last_modification_time(&m),
        filetime::FileTime::from_unix_time(1_600_000_000, 1)
    );
    assert_eq!(std::fs::read(old.join("path/b.txt")).unwrap(), b"bravo");
    assert!(!old.join("path/c.txt").exists());
    assert_eq!(
        std::fs::read(old.join("path2/big.bin")).unwrap(),
        Rng::new(1).bytes(2 * MIB)
    );

    // And as it stands now.
    let new = f.p("new");
    f.restore(&new, &[]).expect(0);
    assert_same_tree(&f.p("src"), &new.join("path"));
    assert_same_tree(&f.p("src2"), &new.join("path2"));
}

/// Sets the `path` column of the version of `from` (tree `path`) to `to`.
fn tamper_path(f: &Fixture, from: &[u8], to: &[u8]) {
    let db = rusqlite::Connection::open(f.catalog()).unwrap();
    let n = db
        .execute(
            "UPDATE versions SET path = ?2 WHERE path = ?1",
            rusqlite::params![from, to],
        )
        .unwrap();
    assert_eq!(n, 1, "no version of {}", from.escape_ascii());
}

#[test]
fn restore_refuses_paths_that_leave_the_target() {
    let f = Fixture::new();
    for name in ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "ok.txt"] {
        f.write(format!("src/{name}"), name.as_bytes());
    }
    f.write("src2/big.bin", &Rng::new(4).bytes(2 * MIB));
    f.sync();
    tamper_path(&f, b"a.txt", b"../../evil");
    tamper_path(&f, b"b.txt", b"/tmp/glaciersync-e2e-evil-absolute");
    tamper_path(&f, b"c.txt", b"sub/../../../evil-nested");
    tamper_path(&f, b"d.txt", b"..");
    tamper_path(&f, b"big.bin", b"../evil-big");
    {
        let db = rusqlite::Connection::open(f.catalog()).unwrap();
        let n = db
            .execute(
                "UPDATE versions SET tree = '../..' WHERE path = CAST('e.txt' AS BLOB)",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    let to = f.p("deep/er/out");
    let r = f.restore(&to, &[]);
    r.expect(1);
    let named = r.error_paths();
    for bad in [
        "path/../../evil",
        "path//tmp/glaciersync-e2e-evil-absolute",
        "path/sub/../../../evil-nested",
        "path/..",
        "path2/../evil-big",
        "../../e.txt",
    ] {
        assert!(
            named.iter().any(|n| n == bad),
            "{bad} not among the errors {named:?}"
        );
        assert!(
            r.stderr.contains(bad),
            "{bad} not named on stderr:\n{}",
            r.stderr
        );
    }
    assert_eq!(named.len(), 6, "{named:#?}");
    // The good file is restored; nothing was written outside the target.
    assert_eq!(std::fs::read(to.join("path/ok.txt")).unwrap(), b"ok.txt");
    assert_eq!(
        entries_under(&f.p("deep")),
        [
            f.p("deep/er"),
            f.p("deep/er/out"),
            f.p("deep/er/out/path"),
            f.p("deep/er/out/path/ok.txt"),
        ]
    );
    assert!(!Path::new("/tmp/glaciersync-e2e-evil-absolute").exists());
    for name in ["evil", "evil-nested", "evil-big", "e.txt"] {
        assert!(!f.p(name).exists(), "{name} written outside the target");
    }
}

#[test]
fn restore_never_writes_through_a_symlink_in_the_target() {
    let f = Fixture::new();
    f.write("src/sub/file.txt", b"data");
    f.sync();
    let to = f.p("out");
    let outside = f.p("outside");
    std::fs::create_dir_all(to.join("path")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    symlink(&outside, to.join("path/sub")).unwrap();
    let r = f.restore(&to, &[]);
    r.expect(1);
    assert!(r.stderr.contains("path/sub/file.txt"), "{}", r.stderr);
    assert!(
        entries_under(&outside).is_empty(),
        "{:?}",
        entries_under(&outside)
    );
}

#[test]
fn restore_never_overwrites_without_overwrite_and_a_second_run_is_a_no_op() {
    let f = Fixture::new();
    f.write("src/a.txt", b"original a");
    f.write("src/b.txt", b"original b");
    symlink("a.txt", f.p("src/link")).unwrap();
    f.write("src2/big.bin", &Rng::new(8).bytes(2 * MIB));
    f.sync();
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));

    // A second identical run finds everything in place.
    let r = f.restore(&out, &[]);
    r.expect(0);
    let p = r.profile();
    assert_eq!(
        (p["restored"].as_u64(), p["already_present"].as_u64()),
        (Some(0), Some(4)),
        "{p:#}"
    );
    assert_same_tree(&f.p("src"), &out.join("path"));

    // Someone edits restored files: never overwritten without --overwrite.
    std::fs::write(out.join("path/a.txt"), b"edited after the restore").unwrap();
    std::fs::write(out.join("path2/big.bin"), b"small now").unwrap();
    std::fs::remove_file(out.join("path/link")).unwrap();
    symlink("elsewhere", out.join("path/link")).unwrap();
    let r = f.restore(&out, &[]);
    r.expect(1);
    let named = r.error_paths();
    assert_eq!(named, ["path/a.txt", "path/link", "path2/big.bin"]);
    for n in &named {
        assert!(r.stderr.contains(n), "{n} not on stderr:\n{}", r.stderr);
    }
    assert!(r.stderr.contains("--overwrite"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(out.join("path/a.txt")).unwrap(),
        b"edited after the restore"
    );
    assert_eq!(
        std::fs::read(out.join("path2/big.bin")).unwrap(),
        b"small now"
    );
    assert_eq!(
        std::fs::read_link(out.join("path/link")).unwrap(),
        Path::new("elsewhere")
    );

    // With --overwrite they are replaced.
    f.restore(&out, &["--overwrite"]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
    // And once more: all in place.
    let r = f.restore(&out, &[]);
    r.expect(0);
    assert_eq!(r.profile()["restored"].as_u64(), Some(0));
}

/// Flips one byte of `needle`'s first occurrence in the object `path`.
fn corrupt(path: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in object");
    bytes[at + needle.len() / 2] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn restore_verifies_hashes_and_restores_the_rest() {
    let f = Fixture::new();
    f.write(
        "src/a.txt",
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA the first small file",
    );
    f.write(
        "src/b.txt",
        b"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB the second small file",
    );
    f.write(
        "src/c.txt",
        b"CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC the third small file",
    );
    let mut big = Rng::new(6).bytes(2 * MIB);
    big[MIB..MIB + 16].copy_from_slice(b"BIGBIGBIGBIGBIG!");
    f.write("src2/big.bin", &big);
    f.write("src2/fine.bin", &Rng::new(7).bytes(MIB + 100));
    f.sync();
    let bundles = f.stored("bundles");
    assert_eq!(bundles.len(), 1);
    corrupt(&bundles[0], b"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB the second");
    let data = f.stored("data");
    let big_object = data
        .iter()
        .find(|p| std::fs::metadata(p).unwrap().len() == 2 * MIB as u64)
        .unwrap();
    corrupt(big_object, b"BIGBIGBIGBIGBIG!");

    let out = f.p("out");
    let r = f.restore(&out, &[]);
    r.expect(1);
    assert_eq!(r.error_paths(), ["path/b.txt", "path2/big.bin"]);
    for e in r.profile()["errors"].as_array().unwrap() {
        assert!(e["error"].as_str().unwrap().contains("hash"), "{e}");
    }
    assert!(
        r.stderr.contains("path/b.txt") && r.stderr.contains("path2/big.bin"),
        "{}",
        r.stderr
    );
    // No damaged file (or partial one) at the destination; the others restored.
    assert!(!out.join("path/b.txt").exists());
    assert!(!out.join("path2/big.bin").exists());
    let left: Vec<PathBuf> = files_under(&out);
    assert_eq!(
        left,
        [
            out.join("path/a.txt"),
            out.join("path/c.txt"),
            out.join("path2/fine.bin"),
        ]
    );
    for (name, src) in [
        ("path/a.txt", "src/a.txt"),
        ("path/c.txt", "src/c.txt"),
        ("path2/fine.bin", "src2/fine.bin"),
    ] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(f.p(src)).unwrap()
        );
    }
}

#[test]
fn restore_dry_run_writes_nothing() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    f.write("src2/big.bin", &Rng::new(3).bytes(2 * MIB));
    f.sync();
    let out = f.p("out");
    let r = f.restore(&out, &["--dry-run"]);
    r.expect(0);
    let p = r.profile();
    assert_eq!(p["dry_run"], true);
    assert_eq!(p["selected"], 2, "{p:#}");
    // The plan, not a report: nothing restored, what would be downloaded.
    assert!(p.get("restored").is_none(), "{p:#}");
    assert_eq!(p["files_to_restore"], 2, "{p:#}");
    assert_eq!(p["bytes_to_download"], 2 * MIB + 1, "{p:#}");
    assert!(!out.exists());
}

#[test]
fn missing_or_truncated_objects_fail_their_files_only() {
    let f = Fixture::new();
    let mut rng = Rng::new(17);
    f.write("src/small.txt", b"in a bundle");
    let (gone, short, fine) = (rng.bytes(MIB + 1), rng.bytes(MIB + 2), rng.bytes(MIB + 3));
    f.write("src2/gone.bin", &gone);
    f.write("src2/short.bin", &short);
    f.write("src2/fine.bin", &fine);
    f.sync();
    f.run(&["verify", "--remote"]).expect(0);
    let object = |content: &[u8]| {
        f.stored("data")
            .into_iter()
            .find(|p| std::fs::read(p).unwrap() == content)
            .unwrap()
    };
    std::fs::remove_file(object(&gone)).unwrap();
    let short_object = object(&short);
    std::fs::write(&short_object, &short[..MIB / 2]).unwrap();

    // verify --remote sees both.
    let r = f.run(&["--json", "verify", "--remote"]);
    r.expect(1);
    let problems = r.profile()["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 2, "{problems:#?}");

    let out = f.p("out");
    let r = f.restore(&out, &[]);
    r.expect(1);
    assert_eq!(r.error_paths(), ["path2/gone.bin", "path2/short.bin"]);
    assert!(r.stderr.contains("path2/gone.bin") && r.stderr.contains("path2/short.bin"));
    assert_eq!(
        files_under(&out),
        [out.join("path/small.txt"), out.join("path2/fine.bin")]
    );
    assert_eq!(std::fs::read(out.join("path2/fine.bin")).unwrap(), fine);
}
