//! Incremental catalog backups (issue 10): after the first full copy, a sync that changed a
//! few files uploads a small delta; `recover` rebuilds the same catalog from the newest full
//! copy and the deltas after it, also when a delta was uploaded but never recorded.

use super::common::*;
use std::path::PathBuf;

fn ls_text(f: &Fixture) -> Vec<String> {
    f.ls(None)
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// The catalog objects of one kind: `sqlite3` (full copies) or `delta`, stored compressed.
fn with_ext(files: Vec<PathBuf>, ext: &str) -> Vec<PathBuf> {
    let suffix = format!(".{ext}.zst");
    files
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect()
}

fn sql(f: &Fixture, statements: &str) {
    let c = rusqlite::Connection::open(f.catalog()).unwrap();
    c.execute_batch(statements).unwrap();
}

/// A fixture with 20 files under `src/d0`, synced once.
fn twenty_files_synced() -> Fixture {
    let f = Fixture::new();
    for i in 0..20 {
        f.write(
            format!("src/d0/base{i}.txt"),
            format!("base {i}").as_bytes(),
        );
    }
    f.sync();
    f
}

/// Changes a few files: an edit, a new file, a deletion, a new directory.
fn change(f: &Fixture, round: usize) {
    f.write(
        format!("src/d{}/f{}.txt", round % 3, round),
        format!("round {round}").as_bytes(),
    );
    f.write("src/edited.txt", format!("edit {round}").as_bytes());
    let _ = std::fs::remove_file(f.p(format!("src/d0/base{round}.txt")));
}

fn recover_matches(f: &Fixture) {
    let before = ls_text(f);
    let old_status = f.run(&["--json", "status"]).json()["profiles"][0]["files"].clone();
    std::fs::rename(f.p("db"), f.p("db-lost")).unwrap();
    let r = f.run(&["--json", "recover"]);
    r.expect(0);
    assert_eq!(r.profile()["state"], "recovered");
    assert_eq!(ls_text(f), before);
    assert_eq!(
        f.run(&["--json", "status"]).json()["profiles"][0]["files"],
        old_status
    );
    f.run(&["verify"]).expect(0);
    // The recovered catalog owes nothing: the next sync uploads nothing; a change after it is
    // a delta from the recovered state, and recovers again.
    let s = f.sync();
    assert_eq!((s.new, s.changed, s.deleted), (0, 0, 0), "{s:#?}");
    assert_eq!(s.archives_uploaded, 0, "{s:#?}");
    f.write("src/after-recover.txt", b"after");
    f.sync();
    let before = ls_text(f);
    std::fs::rename(f.p("db"), f.p("db-lost2")).unwrap();
    f.run(&["recover"]).expect(0);
    assert_eq!(ls_text(f), before);
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
}

#[test]
fn syncs_after_the_first_upload_small_deltas_and_recover_applies_them() {
    let f = Fixture::new();
    for i in 0..400 {
        f.write(
            format!("src/d0/base{i}.txt"),
            format!("base {i} {}", "x".repeat(i % 40 * 10)).as_bytes(),
        );
    }
    f.write("src2/other.txt", b"other");
    f.sync();
    assert_eq!(with_ext(f.stored("catalog"), "sqlite3").len(), 1);
    for round in 0..5 {
        next_second();
        change(&f, round);
        f.sync();
    }
    let fulls = with_ext(f.stored("catalog"), "sqlite3");
    let deltas = with_ext(f.stored("catalog"), "delta");
    assert_eq!((fulls.len(), deltas.len()), (1, 5), "{fulls:?} {deltas:?}");
    let full = std::fs::metadata(&fulls[0]).unwrap().len();
    for d in &deltas {
        let size = std::fs::metadata(d).unwrap().len();
        assert!(
            size * 4 < full,
            "delta {d:?}: {size} B against a full copy of {full} B"
        );
    }
    recover_matches(&f);
}

#[test]
fn a_delta_uploaded_but_not_recorded_still_recovers_the_newest_state() {
    let f = twenty_files_synced();
    next_second();
    change(&f, 1);
    f.sync();
    // The process died after the upload of the second delta and before recording it: the
    // catalog still owes a backup from the old base, and knows no such archive.
    let base = rusqlite::Connection::open(f.catalog())
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'catalog_backup_base'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    next_second();
    change(&f, 2);
    f.sync();
    sql(
        &f,
        &format!(
            "UPDATE meta SET value = '{base}' WHERE key = 'catalog_backup_base';
             UPDATE meta SET value = '1' WHERE key = 'catalog_backup_pending';
             UPDATE meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'catalog_backup_deltas';
             DELETE FROM archives WHERE id = (SELECT MAX(id) FROM archives WHERE kind = 'catalog-delta');"
        ),
    );
    next_second();
    change(&f, 3);
    f.sync();
    assert_eq!(with_ext(f.stored("catalog"), "delta").len(), 3);
    recover_matches(&f);
}

#[test]
fn a_full_copy_is_made_again_after_50_deltas() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    f.sync();
    for round in 0..51 {
        f.write("src/a.txt", format!("round {round}").as_bytes());
        f.sync();
    }
    let fulls = with_ext(f.stored("catalog"), "sqlite3");
    let deltas = with_ext(f.stored("catalog"), "delta");
    assert_eq!((fulls.len(), deltas.len()), (2, 50));
    recover_matches(&f);
}

#[test]
fn after_a_prune_the_next_backup_is_a_full_copy_and_recover_keeps_only_what_prune_kept() {
    let f = Fixture::with_settings(
        "[global]\ndatabase_dir = db\n[docs]\nlocal_dir = store\npath = src\nkeep_last = 1\n",
    );
    f.write("src/a.txt", b"first a");
    f.sync();
    next_second();
    f.write("src/a.txt", b"second a, longer");
    f.write("src/b.txt", b"b");
    f.sync();
    assert_eq!(with_ext(f.stored("catalog"), "delta").len(), 1);
    next_second();
    f.run(&["prune"]).expect(0);
    next_second();
    // Deltas carry no deletions: the backup after a prune is a full copy.
    f.write("src/c.txt", b"c");
    f.sync();
    assert_eq!(
        with_ext(f.stored("catalog"), "delta").len(),
        1,
        "no new delta"
    );
    let snapshots =
        |f: &Fixture| f.run(&["--json", "status"]).json()["profiles"][0]["snapshots"].clone();
    let before = (ls_text(&f), snapshots(&f));
    std::fs::rename(f.p("db"), f.p("db-lost")).unwrap();
    f.run(&["recover"]).expect(0);
    // The forgotten snapshot does not come back.
    assert_eq!((ls_text(&f), snapshots(&f)), before);
    f.run(&["verify", "--remote"]).expect(0);
}

#[test]
fn catalog_objects_are_zstd_compressed_sqlite_that_the_zstd_cli_unpacks() {
    let f = Fixture::new();
    for i in 0..300 {
        f.write(
            format!("src/d{}/a-file-with-a-long-name-{i}.txt", i % 7),
            format!("content {i}").as_bytes(),
        );
    }
    f.sync();
    next_second();
    f.write("src/new.txt", b"new");
    f.sync();
    let fulls = with_ext(f.stored("catalog"), "sqlite3");
    let deltas = with_ext(f.stored("catalog"), "delta");
    assert_eq!(
        (fulls.len(), deltas.len()),
        (1, 1),
        "{:?}",
        f.stored("catalog")
    );
    let raw = std::fs::metadata(f.catalog()).unwrap().len();
    let packed = std::fs::metadata(&fulls[0]).unwrap().len();
    assert!(packed * 2 < raw, "{packed} B stored for a {raw} B catalog");
    let count = |db: &std::path::Path, table: &str| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let full = f.p("full.sqlite3");
    zstd_decompress(&fulls[0], &full);
    assert_eq!(
        count(&full, "versions"),
        300 + 7,
        "300 files in 7 directories"
    );
    let delta = f.p("delta.sqlite3");
    zstd_decompress(&deltas[0], &delta);
    assert_eq!(
        count(&delta, "versions"),
        1,
        "the delta holds the one new version"
    );
}

#[test]
fn a_store_whose_full_copy_predates_compression_still_recovers() {
    let f = twenty_files_synced();
    // What releases before compression stored: the SQLite file itself, named by its own tree
    // hash, without `.zst`. The catalog knows the object by that name.
    let packed = only(with_ext(f.stored("catalog"), "sqlite3"));
    let name = packed.file_name().unwrap().to_string_lossy().into_owned();
    let plain = f.p("plain.sqlite3");
    zstd_decompress(&packed, &plain);
    let file = std::fs::File::open(&plain).unwrap();
    let (hash, _) = glaciersync::hash::tree_hash_reader(std::io::BufReader::new(file)).unwrap();
    let time = &name[..16];
    let old_id = format!("catalog/{time}-{}.sqlite3", hash.to_hex());
    std::fs::rename(&plain, f.p("store").join(&old_id)).unwrap();
    std::fs::remove_file(&packed).unwrap();
    let new_id = format!("catalog/{name}");
    sql(
        &f,
        &format!(
            "UPDATE archives SET remote_id = '{old_id}', tree_hash = X'{}', \
             size = {} WHERE remote_id = '{new_id}'",
            hash.to_hex(),
            std::fs::metadata(f.p("store").join(&old_id)).unwrap().len()
        ),
    );
    f.run(&["verify", "--remote"]).expect(0);
    // Recover reads the old full copy, and the deltas made after it are compressed ones.
    recover_matches(&f);
    assert!(f.p("store").join(&old_id).exists());
}

fn only(mut v: Vec<PathBuf>) -> PathBuf {
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}
