//! A damaged store: a restore names each file whose stored bytes are missing or wrong (exit
//! 1), never writes a damaged file, and brings every other file back; a recover from a missing
//! or damaged catalog copy stops with one line (exit 2), and works again after a sync.

use super::helpers::*;
use crate::common::*;
use std::path::PathBuf;

fn only_file(dir: PathBuf) -> PathBuf {
    let files = files_under(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Restores after damage to the stored copy of `path/<bad>` and checks: exit 1, one line
/// naming it with `words` and saying that the next sync stores it again, the bad file not
/// written, no partial file; then that nothing was lost: the next sync stores the file again
/// from the tree, and a restore equals the tree.
fn restore_names(f: &Fixture, bad: &str, words: &[&str]) {
    let out = fresh(f, "out");
    let r = f.restore(&out, &[]);
    let mut all = words.to_vec();
    all.push("the next sync stores it again");
    let line = one_line(&r, 1, &all);
    assert!(line.contains(&format!("path/{bad}")), "{line}");
    assert!(
        !out.join("path").join(bad).exists(),
        "no damaged file in place"
    );
    let leftovers: Vec<_> = entries_under(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    nothing_lost(f);
}

#[test]
fn a_missing_object() {
    let f = fixture();
    f.sync();
    std::fs::remove_file(only_file(f.p("store/data"))).unwrap();
    restore_names(&f, "large.bin", &[]);
}

#[test]
fn a_bit_flipped_object() {
    let f = fixture();
    f.sync();
    let obj = only_file(f.p("store/data"));
    let mut b = std::fs::read(&obj).unwrap();
    b[12345] ^= 0x10;
    std::fs::write(&obj, b).unwrap();
    restore_names(&f, "large.bin", &["does not match"]);
}

#[test]
fn a_truncated_object() {
    let f = fixture();
    f.sync();
    let obj = only_file(f.p("store/data"));
    let b = std::fs::read(&obj).unwrap();
    std::fs::write(&obj, &b[..b.len() / 2]).unwrap();
    restore_names(&f, "large.bin", &[]);
}

/// `verify --remote` finds an object missing (exit 1, saying the next sync stores its files
/// again), and the next sync does, so a restore equals the tree.
#[test]
fn a_missing_object_found_by_verify() {
    let f = fixture();
    f.sync();
    std::fs::remove_file(only_file(f.p("store/data"))).unwrap();
    let v = f.run(&["verify", "--remote"]);
    v.expect(1);
    let line = v
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for w in [
        "data/",
        "missing",
        "the next sync stores its 1 content(s) again",
    ] {
        assert!(line.contains(w), "{w:?} not in {}", v.stderr);
    }
    let s = f.run(&["--json", "sync"]);
    s.expect(0);
    assert_eq!(s.profile()["changed"], 1, "{}", s.stdout());
    f.run(&["verify", "--remote"]).expect(0);
    nothing_lost(&f);
}

#[test]
fn a_bit_flipped_bundle_member() {
    let f = fixture();
    f.write(
        "src/dir/marked.txt",
        b"a member with a unique marker 0123456789\n",
    );
    f.sync();
    let bundles = files_under(&f.p("store/bundles"));
    let (bundle, at) = bundles
        .iter()
        .find_map(|b| {
            let bytes = std::fs::read(b).unwrap();
            let at = bytes.windows(13).position(|w| w == b"unique marker")?;
            Some((b.clone(), at))
        })
        .expect("the member is in a bundle");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, bytes).unwrap();
    restore_names(&f, "dir/marked.txt", &["does not match"]);
}

/// A second settings file whose catalogs live in `db2`: a machine that lost its catalog.
fn lost_machine(f: &Fixture) -> Run {
    let text = SETTINGS.replace("database_dir = db", "database_dir = db2");
    std::fs::write(f.p("lost.ini"), text).unwrap();
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.args(["-c", "lost.ini", "recover"]);
    run_command(c)
}

#[test]
fn recover_without_any_catalog_copy() {
    let f = fixture();
    f.sync();
    for copy in files_under(&f.p("store/catalog")) {
        std::fs::remove_file(copy).unwrap();
    }
    one_line(&lost_machine(&f), 2, &["no catalog copy"]);
    // Deltas build on the last full copy, which is gone: `verify --remote` on the machine that
    // has the catalog finds it missing, and the next backup is a full copy again.
    let v = f.run(&["verify", "--remote"]);
    v.expect(1);
    assert!(
        v.stderr.contains("the next sync stores a full copy"),
        "{}",
        v.stderr
    );
    f.write(
        "src/dir/new.txt",
        b"a change, so the sync stores a catalog copy\n",
    );
    nothing_lost(&f);
    lost_machine(&f).expect(0);
}

#[test]
fn recover_from_a_bit_flipped_catalog_copy() {
    let f = fixture();
    f.sync();
    let copy = only_file(f.p("store/catalog"));
    let mut b = std::fs::read(&copy).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&copy, b).unwrap();
    one_line(
        &lost_machine(&f),
        2,
        &["catalog copy", "hash", "sync --full-catalog-copy"],
    );
    assert!(
        !f.p("db2/docs.sqlite3").exists(),
        "no damaged catalog installed"
    );
    // Deltas build on the last full copy, which is damaged: on the machine that has the
    // catalog, `sync --full-catalog-copy` stores a new full copy although nothing changed.
    let s = f.run(&["--json", "sync", "--full-catalog-copy"]);
    s.expect(0);
    assert_eq!(s.profile()["archives_uploaded"], 1, "{}", s.stdout());
    let copies = files_under(&f.p("store/catalog"));
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(
        copies
            .iter()
            .all(|c| c.to_string_lossy().ends_with(".sqlite3.zst"))
    );
    f.write(
        "src/dir/new.txt",
        b"a change, so the sync stores a catalog copy\n",
    );
    nothing_lost(&f);
    lost_machine(&f).expect(0);
}
