//! Crash safety: `kill -9` at random points of a sync, again and again; then a sync finishes
//! the job, the catalog is sound, a restore equals the source, the newest state is backed up
//! to the store, and a further sync has nothing to do.

use super::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// The rows of the `versions` table of a catalog database, sorted.
fn versions(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut stmt = c
        .prepare(
            "SELECT tree, hex(path), kind, size, mtime_ns, mode, hash, hex(target), since, until
             FROM versions",
        )
        .unwrap();
    let mut rows: Vec<String> = stmt
        .query_map([], |r| {
            let mut cols = Vec::new();
            for i in 0..10 {
                let v: rusqlite::types::Value = r.get(i)?;
                cols.push(format!("{v:?}"));
            }
            Ok(cols.join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort();
    rows
}

/// Whether the catalog that `recover` rebuilds from the store alone (the newest full copy and
/// the deltas after it) records every version the local catalog has: what the last sync
/// recorded must be recoverable from the backend alone.
fn state_is_backed_up(f: &Fixture) -> bool {
    let live = versions(&f.catalog());
    let scratch = tempfile::tempdir_in(f.root()).unwrap();
    let settings = scratch.path().join("recover.ini");
    std::fs::write(
        &settings,
        format!(
            "[global]\ndatabase_dir = {}\n[docs]\nlocal_dir = {}\npath = {}\npath2 = {}\n",
            scratch.path().join("db").display(),
            f.p("store").display(),
            f.p("src").display(),
            f.p("src2").display()
        ),
    )
    .unwrap();
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.arg("-c").arg(&settings).args(["-p", "docs", "recover"]);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "recover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    versions(&scratch.path().join("db/docs.sqlite3")) == live
}

fn spawn_sync(f: &Fixture) -> Child {
    f.command(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn glaciersync")
}

/// Every small file of the tree.
fn small_files(f: &Fixture) -> Vec<PathBuf> {
    files_under(&f.p("src"))
}

/// Changes the tree so the next sync has work: edits, new files, deletions, a renamed
/// directory, a touched file, and sometimes a new large file.
fn mutate(f: &Fixture, rng: &mut Rng, round: usize) {
    let files = small_files(f);
    for _ in 0..30 {
        let p = &files[rng.range(0, files.len() as u64) as usize];
        let n = rng.range(100, 6 * KIB as u64) as usize;
        std::fs::write(p, rng.bytes(n)).unwrap();
    }
    for i in 0..10 {
        let n = rng.range(0, 4 * KIB as u64) as usize;
        f.write(format!("src/new{round}/n{i}.txt"), &rng.bytes(n));
    }
    let files = small_files(f);
    for _ in 0..5 {
        let p = &files[rng.range(0, files.len() as u64) as usize];
        let _ = std::fs::remove_file(p);
    }
    let p = &files[rng.range(0, files.len() as u64) as usize];
    if p.exists() {
        set_mtime(p, 1_700_000_000 + round as i64, 0);
    }
    if round.is_multiple_of(3) {
        let n = rng.range(2 * MIB as u64, 5 * MIB as u64) as usize;
        f.write(format!("src2/large-{round}.bin"), &rng.bytes(n));
    }
    if round % 4 == 1 && f.p(format!("src/new{}", round - 1)).exists() {
        std::fs::rename(
            f.p(format!("src/new{}", round - 1)),
            f.p(format!("src/renamed{round}")),
        )
        .unwrap();
    }
}

#[test]
fn kill_9_at_random_points_of_sync_loses_nothing() {
    let started = Instant::now();
    let f = Fixture::new();
    let mut rng = Rng::from_clock("kill_9_at_random_points_of_sync_loses_nothing");
    // A few thousand small files and some multi-MiB ones: a first sync takes a while.
    for i in 0..3000 {
        let n = rng.range(200, 6 * KIB as u64) as usize;
        f.write(format!("src/d{:02}/f{i:04}.txt", i % 60), &rng.bytes(n));
    }
    for i in 0..4 {
        let n = rng.range(4 * MIB as u64, 6 * MIB as u64) as usize;
        f.write(format!("src2/big{i}.bin"), &rng.bytes(n));
    }

    let mut kills = 0u32;
    let mut finished = 0;
    let mut round = 0;
    // Kills land at a random point within `budget` ms of the start; whenever a sync finishes
    // first, the budget shrinks, so the kills keep landing inside syncs however fast they get.
    let mut budget: u64 = 1500;
    while kills < 25 {
        round += 1;
        assert!(round < 200, "only {kills} kills in {round} rounds");
        let mut child = spawn_sync(&f);
        // Now and then right at the start (opening the catalog, scanning), mostly later.
        let delay = if rng.range(0, 4) == 0 {
            rng.range(0, 40.min(budget))
        } else {
            rng.range(0, budget)
        };
        std::thread::sleep(Duration::from_millis(delay));
        match child.try_wait().unwrap() {
            Some(status) => {
                // It finished first: it must have succeeded. Give the next run work.
                assert!(status.success(), "an unkilled sync failed: {status}");
                finished += 1;
                budget = (delay * 2 / 3).max(10);
                mutate(&f, &mut rng, round);
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                // The catalog is sound after every kill.
                if f.catalog().exists() {
                    let r = f.run(&["verify"]);
                    assert_eq!(r.code, 0, "verify after kill {kills}:\n{}", r.stderr);
                }
                if kills.is_multiple_of(3) {
                    mutate(&f, &mut rng, round);
                }
            }
        }
    }
    eprintln!(
        "{kills} kills, {finished} syncs finished first, {round} rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Killed uploads leave temporary files in the store; once stale, a sync removes them, but
    // not one that may be another process's upload in progress.
    let tmp = files_under(&f.p("store/tmp"));
    eprintln!("{} temporary files left in the store", tmp.len());
    for t in &tmp {
        set_mtime(t, 1_700_000_000, 0);
    }
    let live = f.write("store/tmp/in-progress", b"another upload");

    // A final sync finishes the job.
    let s = f.sync();
    assert!(s.errors.is_empty(), "{s:#?}");
    assert_eq!(files_under(&f.p("store/tmp")), std::slice::from_ref(&live));
    std::fs::remove_file(&live).unwrap();
    f.run(&["verify"]).expect(0);
    f.run(&["verify", "--local"]).expect(0);
    assert!(
        entries_under(&f.p("db/docs.staging")).is_empty(),
        "temporary files left: {:?}",
        entries_under(&f.p("db/docs.staging"))
    );
    assert!(
        state_is_backed_up(&f),
        "no catalog copy in the store has the last sync's state"
    );

    let out = f.p("out");
    let r = f.restore(&out, &[]);
    r.expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));

    // Nothing left to do: nothing uploaded, not even a catalog copy.
    let s = f.sync();
    assert_eq!((s.new, s.changed, s.deleted), (0, 0, 0), "{s:#?}");
    assert_eq!((s.archives_uploaded, s.uploaded_bytes), (0, 0), "{s:#?}");
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_kill_during_the_catalog_backup_leaves_it_owed() {
    let f = Fixture::new();
    let mut rng = Rng::from_clock("a_kill_during_the_catalog_backup_leaves_it_owed");
    f.write("src/a.txt", b"a");
    f.sync();
    // How long a small sync takes, to aim kills at its end, where the catalog is backed up.
    let mut whole = 0;
    let mut killed = 0;
    for round in 0..40u32 {
        if round.is_multiple_of(10) {
            // Measured again now and then: the machine's load changes.
            f.write("src/a.txt", b"measure");
            let t = Instant::now();
            f.sync();
            whole = t.elapsed().as_micros() as u64;
        }
        f.write("src/a.txt", format!("round {round}").as_bytes());
        let mut child = spawn_sync(&f);
        std::thread::sleep(Duration::from_micros(rng.range(whole / 3, whole * 5 / 4)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        // Whatever was interrupted, the next sync leaves the store with a copy of the catalog
        // as it stands.
        f.sync();
        assert!(
            state_is_backed_up(&f),
            "round {round}: the state of the last sync is in no catalog copy of the store"
        );
    }
    eprintln!("{killed} of 40 runs killed");
}

#[test]
fn kill_9_during_restore_then_restore_again_finishes() {
    let f = Fixture::new();
    let mut rng = Rng::from_clock("kill_9_during_restore_then_restore_again_finishes");
    for i in 0..1500 {
        let n = rng.range(100, 8 * KIB as u64) as usize;
        f.write(format!("src/d{:02}/f{i:04}.txt", i % 40), &rng.bytes(n));
    }
    for i in 0..3 {
        f.write(format!("src2/big{i}.bin"), &rng.bytes(4 * MIB + i));
    }
    f.sync();
    let out = f.p("out");
    let mut kills = 0;
    for _ in 0..8 {
        let mut child = f
            .command(&["restore", "--to", "out"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.range(0, 600)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    eprintln!("{kills} of 8 restores killed");
    let r = f.restore(&out, &[]);
    r.expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
    // Nothing half-written is left behind, and the next run finds all in place.
    let r = f.restore(&out, &[]);
    r.expect(0);
    assert_eq!(r.profile()["restored"], 0);
}
