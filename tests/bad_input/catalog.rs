//! A damaged catalog: one line saying what is wrong and what to do; doing it (moving the
//! catalog away and running `recover`) brings everything back.

use super::helpers::*;
use crate::common::*;

/// A synced fixture whose catalog is then replaced by what `damage` makes of its bytes.
fn damaged(damage: impl Fn(Vec<u8>) -> Vec<u8>) -> Fixture {
    let f = fixture();
    f.sync();
    // Fold the WAL into the file first, as a clean exit leaves it.
    let bytes = std::fs::read(f.catalog()).unwrap();
    std::fs::write(f.catalog(), damage(bytes)).unwrap();
    for s in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", f.catalog().display()));
    }
    f
}

/// Follows the advice: moves the catalog away, recovers, and checks nothing was lost.
fn recover_and_check(f: &Fixture) {
    std::fs::rename(f.catalog(), f.p("damaged.sqlite3")).unwrap();
    f.run(&["recover"]).expect(0);
    let s = f.sync();
    assert_eq!(s.new, 0, "the recovered catalog knows every file: {s:#?}");
    nothing_lost(f);
}

#[test]
fn a_corrupt_catalog() {
    let f = damaged(|mut b| {
        let mid = b.len() / 2;
        b[100..mid].iter_mut().for_each(|x| *x = 0x5a);
        b
    });
    one_line(&f.run(&["sync"]), 2, &["damaged", "recover"]);
    recover_and_check(&f);
}

#[test]
fn a_catalog_that_is_not_a_database() {
    let f = damaged(|b| Rng::new(3).bytes(b.len()));
    one_line(&f.run(&["sync"]), 2, &["not a database", "recover"]);
    recover_and_check(&f);
}

#[test]
fn a_truncated_catalog() {
    let f = damaged(|b| b[..b.len() / 3].to_vec());
    one_line(&f.run(&["ls"]), 2, &["docs.sqlite3", "recover"]);
    recover_and_check(&f);
}

#[test]
fn a_catalog_from_a_newer_version() {
    let f = fixture();
    f.sync();
    let sql = |v: u32| {
        let c = rusqlite_like_set_version(&f.catalog(), v);
        assert!(c, "could not set the version");
    };
    let current = glaciersync::catalog::MIGRATIONS.len() as u32;
    sql(999);
    one_line(&f.run(&["sync"]), 2, &["newer", "upgrade"]);
    sql(current);
    nothing_lost(&f);
}

/// Sets the catalog's `user_version` with the sqlite3 module of Python (no SQLite crate in the
/// tests' dependencies).
fn rusqlite_like_set_version(path: &std::path::Path, v: u32) -> bool {
    let python = std::env::var("GLACIERSYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    std::process::Command::new(python)
        .arg("-c")
        .arg(format!(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('pragma user_version={v}'); c.commit()"
        ))
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_catalog_locked_by_another_process() {
    let f = fixture();
    f.sync();
    // -o: the lock is flock's own, so killing it frees the lock.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(f.p("db/docs.lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    // Wait until the holder has the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let r = loop {
        let r = f.run(&["sync"]);
        if r.code == 2 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    one_line(&r, 2, &["in use", "docs.lock"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    nothing_lost(&f);
}

#[test]
fn a_catalog_that_is_a_directory() {
    let f = fixture();
    std::fs::create_dir_all(f.catalog()).unwrap();
    one_line(&f.run(&["sync"]), 2, &["docs.sqlite3"]);
    std::fs::remove_dir(f.catalog()).unwrap();
    nothing_lost(&f);
}
