//! `prune` end to end on the local backend: retention, freed archives, catalog copies, a dry
//! run that changes nothing, `kill -9` at random points, bad lifecycle settings.

use super::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// Every file of the store with its size.
fn store_listing(f: &Fixture) -> BTreeMap<String, u64> {
    files_under(&f.p("store"))
        .into_iter()
        .map(|p| {
            let size = std::fs::metadata(&p).unwrap().len();
            (
                p.strip_prefix(f.root()).unwrap().display().to_string(),
                size,
            )
        })
        .collect()
}

/// Three syncs with files changed and deleted in between.
fn three_syncs(f: &Fixture) {
    f.write("src/a.txt", b"first a");
    f.write("src/b.txt", b"only in the first sync");
    f.write("src/keep.txt", b"never changes");
    f.write("src2/big.bin", &vec![1u8; 2 * MIB]);
    f.sync();
    std::fs::remove_file(f.p("src/b.txt")).unwrap();
    f.write("src/a.txt", b"second a, longer");
    f.write("src2/big.bin", &vec![2u8; 2 * MIB + 10]);
    f.sync();
    f.write("src/a.txt", b"third a, longer still");
    f.write("src2/big.bin", &vec![3u8; 2 * MIB + 20]);
    f.write("src/c.txt", b"new in the third sync");
    f.sync();
}

fn prune_json(f: &Fixture, more: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "prune"];
    args.extend(more);
    let r = f.run(&args);
    r.expect(0);
    r.profile()
}

#[test]
fn keep_last_1_round_trip_frees_dead_archives_and_keeps_the_last_snapshot() {
    let f = Fixture::with_settings(&settings_with("keep_last = 1"));
    three_syncs(&f);
    let before = store_listing(&f);
    let catalog_before = std::fs::read(f.catalog()).unwrap();

    let plan = prune_json(&f, &["--dry-run"]);
    assert_eq!(plan["snapshots_forgotten"], 2, "{plan:#}");
    assert_eq!(plan["dry_run"], true);
    let doomed: Vec<(String, u64)> = plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                format!("store/{}", a["remote_id"].as_str().unwrap()),
                a["size"].as_u64().unwrap(),
            )
        })
        .collect();
    // The two older big files (one archive each) and the second sync's bundle (the first
    // sync's still holds keep.txt, so it is kept whole).
    assert_eq!(doomed.len(), 3, "{plan:#}");
    assert_eq!(
        plan["bytes_deleted"].as_u64().unwrap(),
        doomed.iter().map(|d| d.1).sum::<u64>()
    );
    for (path, size) in &doomed {
        assert_eq!(before.get(path), Some(size), "{path} must be in the store");
    }
    // The dry run changed nothing, remote or local.
    assert_eq!(store_listing(&f), before);
    assert_eq!(std::fs::read(f.catalog()).unwrap(), catalog_before);

    let done = prune_json(&f, &[]);
    assert_eq!(done["snapshots_forgotten"], 2, "{done:#}");
    assert_eq!(done["archives_deleted"], 3);
    assert_eq!(done["archives_held"], 0);
    assert_eq!(done["catalog_backup_pending"], true, "{done:#}");
    let after = store_listing(&f);
    for (path, _) in &doomed {
        assert!(!after.contains_key(path), "{path} must be deleted");
    }
    let freed: u64 = before.values().sum::<u64>() - after.values().sum::<u64>();
    assert_eq!(freed, plan["bytes_deleted"].as_u64().unwrap());
    assert_eq!(
        after.len() + doomed.len(),
        before.len(),
        "prune uploads nothing"
    );

    f.run(&["verify", "--local"]).expect(0);
    f.run(&["verify", "--remote"]).expect(0);
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));

    // The three syncs stored one full catalog copy and two deltas. The next sync stores the
    // owed backup, a full copy (deltas carry no deletions); with three full copies kept,
    // nothing of them goes yet.
    let s = f.sync();
    assert_eq!(s.archives_uploaded, 1, "{s:#?}");
    let catalog_files = |f: &Fixture, ext: &str| {
        files_under(&f.p("store/catalog"))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(&format!(".{ext}.zst")))
            .count()
    };
    assert_eq!(
        (catalog_files(&f, "sqlite3"), catalog_files(&f, "delta")),
        (2, 2)
    );
    let again = prune_json(&f, &[]);
    // The sync made a fourth snapshot, so the third goes; it needed no archive of its own.
    assert_eq!(again["snapshots_forgotten"], 1);
    assert_eq!(again["archives_deleted"], 0, "{again:#}");
    assert_eq!(again["catalog_copies_deleted"], 0, "{again:#}");
    f.run(&["verify", "--remote"]).expect(0);
    // Keeping one recover point: the newest full copy stays, the older one and its deltas go.
    f.sync();
    let mut text = std::fs::read_to_string(f.settings_path()).unwrap();
    text.push_str("keep_catalog_copies = 1\n");
    std::fs::write(f.settings_path(), text).unwrap();
    let last = prune_json(&f, &[]);
    assert_eq!(last["catalog_copies_deleted"], 4, "{last:#}");
    assert_eq!(catalog_files(&f, "delta"), 0);
    // The prune changed the catalog: the next sync stores a full copy beside the kept one.
    f.sync();
    assert_eq!(catalog_files(&f, "sqlite3"), 2);
    f.run(&["verify", "--remote"]).expect(0);
    std::fs::rename(f.p("db"), f.p("db-lost")).unwrap();
    f.run(&["recover"]).expect(0);
    let out2 = f.p("out2");
    f.restore(&out2, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out2.join("path"));
}

#[test]
fn no_policy_forgets_nothing_and_a_never_synced_profile_has_nothing_to_do() {
    let f = Fixture::new();
    let r = f.run(&["--json", "prune"]);
    r.expect(0);
    assert_eq!(r.profile()["archives_deleted"], 0);
    assert!(!f.catalog().exists(), "no catalog may be created");
    three_syncs(&f);
    let before = store_listing(&f);
    let done = prune_json(&f, &[]);
    assert_eq!(done["snapshots_forgotten"], 0, "{done:#}");
    assert_eq!(done["archives_deleted"], 0);
    assert_eq!(store_listing(&f), before);
    let text = f.run(&["prune", "--dry-run"]);
    text.expect(0);
    assert!(
        text.stderr.contains("no retention policy"),
        "{}",
        text.stderr
    );
}

/// Syncs one file, then leaves in the store an object named as ours that the catalog does not
/// know (what a killed upload leaves); returns its path.
fn synced_with_a_leftover(f: &Fixture) -> std::path::PathBuf {
    f.write("src/a.txt", b"a");
    f.sync();
    f.write(
        "store/data/ab/abababababababababababababababababababababababababababababababab",
        b"left by a killed upload",
    )
}

#[test]
fn unknown_archives_go_only_with_the_option_and_only_when_named_as_ours() {
    let f = Fixture::new();
    let left = synced_with_a_leftover(&f);
    let foreign = f.write("store/data/notes.txt", b"not ours");
    f.run(&["verify", "--remote"]).expect(1);
    prune_json(&f, &[]);
    assert!(
        left.exists(),
        "without --unknown nothing unknown is deleted"
    );
    let plan = prune_json(&f, &["--unknown", "--dry-run"]);
    assert_eq!(plan["unknown_deleted"], 1, "{plan:#}");
    assert!(left.exists());
    let done = prune_json(&f, &["--unknown"]);
    assert_eq!(done["unknown_deleted"], 1, "{done:#}");
    assert!(!left.exists());
    assert!(foreign.exists(), "an object not named as ours stays");
    std::fs::remove_file(&foreign).unwrap();
    f.run(&["verify", "--remote"]).expect(0);
}

#[test]
fn a_dry_run_with_unknown_writes_nothing_and_starts_nothing() {
    let f = Fixture::new();
    let left = synced_with_a_leftover(&f);
    // A listing ticket left by an earlier `verify --remote` (on a vault: an inventory job).
    let c = rusqlite::Connection::open(f.catalog()).unwrap();
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('inventory_ticket', 'job-1')",
        [],
    )
    .unwrap();
    drop(c);
    let catalog_before = std::fs::read(f.catalog()).unwrap();
    let store_before = store_listing(&f);
    let plan = prune_json(&f, &["--dry-run", "--unknown"]);
    assert_eq!(plan["dry_run"], true, "a plan, not a report: {plan:#}");
    assert_eq!(plan["unknown_deleted"], 1, "{plan:#}");
    assert_eq!(plan["inventory_needed"], false, "{plan:#}");
    assert!(
        std::fs::read(f.catalog()).unwrap() == catalog_before,
        "the dry run wrote the catalog"
    );
    assert_eq!(store_listing(&f), store_before);
    assert!(left.exists());
}

/// Archives marked for deletion whose deletion is not recorded yet.
fn pending_deletions(db: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row(
        "SELECT COUNT(*) FROM pruned_archives WHERE deleted_at IS NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn kill_9_at_random_points_of_prune_leaves_a_backup_verify_accepts() {
    // Files over 1 KiB are stored alone: many archives for each prune to delete.
    let f = Fixture::with_settings(
        "[global]\ndatabase_dir = db\n[docs]\nlocal_dir = store\npath = src\npath2 = src2\n\
         archive_byte_size_threshold = 1K\nkeep_last = 1\nkeep_catalog_copies = 2\n",
    );
    let mut rng = Rng::from_clock("kill_9_at_random_points_of_prune");
    let mut budget: u64 = 200;
    let (mut kills, mut finished, mut round, mut mid_deletion) = (0u32, 0u32, 0u32, 0u32);
    let mut dirty = true;
    while kills < 12 {
        round += 1;
        assert!(round < 300, "only {kills} kills in {round} rounds");
        if dirty {
            // Work for the next prune: many dead archives.
            for i in 0..60 {
                let n = 2048 + rng.range(0, 999) as usize;
                f.write(format!("src2/f{i}.bin"), &rng.bytes(n));
            }
            f.write(format!("src/r{round}.txt"), &rng.bytes(100));
            f.sync();
            dirty = false;
        }
        let mut child = f
            .command(&["prune"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.range(0, budget);
        std::thread::sleep(Duration::from_millis(delay));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "an unkilled prune failed: {status}");
                finished += 1;
                budget = (delay * 2 / 3).max(5);
                dirty = true;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                let between = pending_deletions(&f.catalog()) > 0;
                mid_deletion += u32::from(between);
                if !between {
                    // Killed before marking (start-up takes longer on a loaded machine): aim
                    // later next time, so kills also land between marking and deleting.
                    budget = (budget * 3 / 2 + 10).min(5_000);
                }
                // Now and then a sync on top of a half-done prune.
                dirty |= kills.is_multiple_of(4);
                let r = f.run(&["verify", "--remote"]);
                assert_eq!(
                    r.code, 0,
                    "verify --remote after kill {kills}:\n{}",
                    r.stderr
                );
            }
        }
    }
    eprintln!(
        "{kills} kills ({mid_deletion} between marking and deleting), {finished} prunes finished first, {round} rounds"
    );
    assert!(
        mid_deletion > 0,
        "no kill landed between marking and deleting"
    );
    // A rerun finishes the job: nothing dead remains, nothing pending, the tree restores.
    let fulls_before = catalog_copies(&f).0.len();
    prune_json(&f, &[]);
    let again = prune_json(&f, &["--dry-run"]);
    assert_eq!(again["archives_deleted"], 0, "{again:#}");
    assert_eq!(again["pending"].as_array().unwrap().len(), 0, "{again:#}");
    f.run(&["verify", "--remote"]).expect(0);
    f.run(&["verify", "--local"]).expect(0);
    let out = f.p("out");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
    // The newest two full copies stay, with the deltas made after the older of them.
    let (fulls, deltas) = catalog_copies(&f);
    assert_eq!(fulls.len(), fulls_before.min(2), "keep_catalog_copies = 2");
    let oldest_full = &fulls[0][..16];
    assert!(
        deltas.iter().all(|d| &d[..16] >= oldest_full),
        "a delta older than the kept full copies stayed: {fulls:?} {deltas:?}"
    );
}

/// The names of the full catalog copies and of the deltas in the store, oldest first.
fn catalog_copies(f: &Fixture) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = files_under(&f.p("store/catalog"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().partition(|n| n.ends_with(".sqlite3.zst"))
}

#[track_caller]
fn bad_lifecycle(extra: &str, parts: &[&str]) {
    let f = Fixture::with_settings(&settings_with(extra));
    let r = f.run(&["prune"]);
    r.expect(2);
    let err = r.one_stderr_line();
    for p in parts {
        assert!(err.contains(p), "{err:?} should contain {p:?}");
    }
}

#[test]
fn bad_lifecycle_settings_are_one_line_naming_the_key() {
    bad_lifecycle("keep_daily = -1", &["`keep_daily`", "whole number"]);
    bad_lifecycle("keep_within = 30 days", &["`keep_within`", "30d"]);
    bad_lifecycle(
        "keep_lastt = 3",
        &["keep_lastt", "did you mean `keep_last`"],
    );
    bad_lifecycle(
        "keep_catalog_copies = 0",
        &["`keep_catalog_copies`", "at least 1"],
    );
    bad_lifecycle(
        "max_restore_cost = cheap",
        &["`max_restore_cost`", "US dollars"],
    );
}

#[test]
fn restore_dry_run_quotes_and_a_cap_is_kept_on_the_local_backend_too() {
    let f = Fixture::new();
    f.write("src/a.txt", b"a");
    f.sync();
    let r = f.run(&["restore", "--to", "out", "--dry-run"]);
    r.expect(0);
    assert!(r.stderr.contains("would cost $0.00"), "{}", r.stderr);
    for dry_run in [&[][..], &["--dry-run"]] {
        let mut args = vec!["restore", "--to", "out", "--max-cost=-1"];
        args.extend(dry_run);
        let r = f.run(&args);
        r.expect(2);
        assert!(r.one_stderr_line().contains("--max-cost"), "{}", r.stderr);
    }
    // A dry run within the cap is the plan.
    f.run(&["restore", "--to", "out", "--dry-run", "--max-cost", "0"])
        .expect(0);
    // Local restores are free: any cap passes.
    f.run(&["restore", "--to", "out", "--max-cost", "0"])
        .expect(0);
    assert!(Path::new(&f.p("out/path/a.txt")).exists());
}

#[test]
fn profiles_sharing_a_store_are_never_pruned() {
    let f = Fixture::with_settings(&format!(
        "{}\n[other]\nlocal_dir = store\npath = src2\n",
        settings_with("keep_last = 1")
    ));
    f.write("src/a.txt", b"a");
    f.run(&["-p", "docs", "sync"]).expect(0);
    let before = store_listing(&f);
    let r = f.run(&["-p", "docs", "prune"]);
    r.expect(2);
    let err = r.one_stderr_line();
    assert!(
        err.contains("[docs] and [other] store into the same place"),
        "{err}"
    );
    assert_eq!(store_listing(&f), before);
}

/// The same store written by a profile of another settings file (another machine, say): each
/// catalog marks the store, and a prune of either one, `--unknown` or not, deletes nothing.
#[test]
fn a_store_another_catalog_writes_to_is_never_pruned() {
    let f = Fixture::with_settings(&settings_with("keep_last = 1"));
    std::fs::write(
        f.p("other.ini"),
        "[global]\ndatabase_dir = db-other\n[beta]\nlocal_dir = store\npath = src2\nkeep_last = 1\n",
    )
    .unwrap();
    let other = |args: &[&str]| {
        let mut c = Command::new(BIN);
        f.configure(&mut c);
        c.arg("-c").arg(f.p("other.ini")).args(args);
        run_command(c)
    };
    f.write("src/a.txt", b"alpha's only file");
    f.write("src2/b.txt", b"beta's first file");
    f.sync();
    other(&["sync"]).expect(0);
    // Beta's first file is dead for beta after this second sync, and beta's old catalog copy
    // is one docs never knew: both look like docs' garbage to a prune of docs.
    std::fs::remove_file(f.p("src2/b.txt")).unwrap();
    f.write("src2/c.txt", b"beta's second file");
    other(&["sync"]).expect(0);
    let before = store_listing(&f);
    for args in [
        &["prune", "--unknown"][..],
        &["prune"],
        &["prune", "--dry-run"],
    ] {
        let r = f.run(args);
        r.expect(2);
        let err = r.one_stderr_line();
        assert!(
            err.contains("is also written by 1 other catalog") && err.contains("owners/"),
            "{args:?}: {err}"
        );
        assert_eq!(store_listing(&f), before, "{args:?} changed the store");
    }
    // Nothing of beta's was lost (its verify would name docs' objects as unknown to it).
    other(&["restore", "--to", "out-b"]).expect(0);
    assert_eq!(
        std::fs::read(f.p("out-b/path/c.txt")).unwrap(),
        b"beta's second file"
    );
    // Alone again (the other catalog's mark removed by hand, as the message says), it prunes.
    let marks: Vec<_> = std::fs::read_dir(f.p("store/owners")).unwrap().collect();
    assert_eq!(marks.len(), 2, "one mark per catalog");
    std::fs::remove_dir_all(f.p("store/owners")).unwrap();
    f.run(&["prune"]).expect(0);
}
