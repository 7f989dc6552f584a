//! Signals mid-sync (one line, exit 128 + the signal, then a rerun finishes the job), a full
//! disk on restore, a restore target that is a file, a first run with `init`, and private
//! catalog files.

use super::helpers::*;
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Enough work that a sync takes a moment: 1,500 small files and two of 4 MiB.
fn busy_fixture() -> Fixture {
    let f = fixture();
    let mut rng = Rng::new(11);
    for i in 0..1500 {
        let n = rng.range(100, 3000) as usize;
        f.write(format!("src/many/{:02}/{i}.txt", i % 30), &rng.bytes(n));
    }
    for i in 0..2 {
        f.write(format!("src2/big{i}.bin"), &rng.bytes(4 << 20));
    }
    f
}

/// Sends `signal` to syncs until one is caught in the middle; checks its exit and line, then
/// that a rerun finishes and nothing is lost.
fn interrupted(signal: &str, number: i32) {
    let f = busy_fixture();
    let mut delay = 150;
    let run = loop {
        let child = f
            .command(&["sync"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let pid = child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if sent.success() && r.code != 0 {
            break r;
        }
        // It finished first: start again from nothing, and signal sooner.
        assert!(delay > 10, "no sync was caught in the middle");
        delay /= 2;
        let _ = std::fs::remove_dir_all(f.p("db"));
        let _ = std::fs::remove_dir_all(f.p("store"));
    };
    one_line(&run, 128 + number, &["interrupted", signal, "again"]);
    nothing_lost(&f);
}

#[test]
fn sigint_mid_sync_then_a_rerun() {
    interrupted("INT", 2);
}

#[test]
fn sigterm_mid_sync_then_a_rerun() {
    interrupted("TERM", 15);
}

/// A 1 MiB tmpfs mounted (as root) at `f`'s `tiny`, or `None` where mounting is not allowed
/// (a skip, which `GLACIERSYNC_TEST_DISALLOW_SKIP=1` turns into a failure).
fn tiny_disk(f: &Fixture) -> Option<PathBuf> {
    let tiny = f.p("tiny");
    std::fs::create_dir(&tiny).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&tiny)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(!is_root(), "mount works as root");
        assert_ne!(
            std::env::var("GLACIERSYNC_TEST_DISALLOW_SKIP").as_deref(),
            Ok("1"),
            "a full disk needs a small tmpfs, which needs root: run the tests as root"
        );
        eprintln!("skipped: mounting a small tmpfs needs root");
        return None;
    }
    Some(tiny)
}

/// Restores `f` into a 1 MiB tmpfs; returns the run and what the tmpfs held.
fn restore_into_a_tiny_disk(f: &Fixture) -> Option<(Run, Vec<PathBuf>)> {
    let tiny = tiny_disk(f)?;
    let r = f.restore(&tiny.join("out"), &[]);
    let listing = entries_under(&tiny);
    let _ = std::process::Command::new("umount").arg(&tiny).status();
    assert!(
        !listing
            .iter()
            .any(|p| p.to_string_lossy().contains("partial")),
        "{listing:?}"
    );
    Some((r, listing))
}

/// A restore into a 1 MiB tmpfs (mounted here as root) of a 2 MiB file and a few small ones:
/// one line naming the write the disk refused (exit 1), no partial file is left, and a restore
/// with room completes. (Which file the disk refuses first depends on the order the downloads
/// end in.)
#[test]
fn a_full_disk_on_restore() {
    let f = fixture();
    f.sync();
    let Some((r, _)) = restore_into_a_tiny_disk(&f) else {
        return;
    };
    let line = one_line(&r, 1, &["No space left", "restore stopped"]);
    assert!(
        line.contains("writing"),
        "names the write, not the read: {line}"
    );
    nothing_lost(&f);
}

/// Thousands of files that do not fit: still one line (the first file the disk refused, and
/// what to do), and the restore stops instead of downloading the rest.
#[test]
fn a_full_disk_stops_a_restore_of_many_files_with_one_line() {
    let f = fixture();
    let mut rng = Rng::new(11);
    for i in 0..600 {
        f.write(format!("src/many/{i:03}.bin"), &rng.bytes(4096));
    }
    f.sync();
    let Some((r, _)) = restore_into_a_tiny_disk(&f) else {
        return;
    };
    let line = one_line(
        &r,
        1,
        &[
            "No space left",
            "restore stopped",
            "run the same restore again",
        ],
    );
    assert!(
        line.contains("tiny/out"),
        "names where to make room: {line}"
    );
    nothing_lost(&f);
}

#[test]
fn restore_to_an_existing_file() {
    let f = fixture();
    f.sync();
    let target = f.write("a-file", b"mine\n");
    let r = f.restore(&target, &[]);
    one_line(&r, 2, &["a-file", "not a directory"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"mine\n");
    nothing_lost(&f);
}

#[test]
fn restore_to_a_path_below_a_file() {
    let f = fixture();
    f.sync();
    let file = f.write("a-file", b"mine\n");
    one_line(
        &f.restore(&file.join("below"), &[]),
        2,
        &["not a directory"],
    );
    nothing_lost(&f);
}

#[test]
fn restore_to_a_dangling_symlink() {
    let f = fixture();
    f.sync();
    let link = f.p("gone-link");
    std::os::unix::fs::symlink(f.p("no-such-dir"), &link).unwrap();
    one_line(
        &f.restore(&link, &[]),
        2,
        &["gone-link", "symlink", "does not exist"],
    );
    assert!(
        !f.p("no-such-dir").exists(),
        "nothing created through the link"
    );
    nothing_lost(&f);
}

/// A place no directory can be made in (as root too): one line, exit 2, before any request.
#[test]
fn restore_to_a_place_that_cannot_hold_a_directory() {
    let f = fixture();
    f.sync();
    one_line(
        &f.restore(Path::new("/proc/glaciersync-nope"), &[]),
        2,
        &["/proc/glaciersync-nope", "cannot create it"],
    );
    nothing_lost(&f);
}

/// `glaciersync init TREE` then `sync`, with the default settings file.
#[test]
fn a_first_run_with_init_naming_the_tree() {
    let f = fixture();
    let pictures = f
        .write("Pictures/cat.jpg", b"meow")
        .parent()
        .unwrap()
        .to_path_buf();
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.arg("init").arg(&pictures);
    let r = run_command(c);
    r.expect(0);
    assert!(
        format!("{}{}", r.stdout(), r.stderr).contains("Pictures"),
        "{r:?}"
    );
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.args(["--json", "sync"]);
    let r = run_command(c);
    r.expect(0);
    assert_eq!(r.profile()["new"], 1, "{}", r.stdout());
}

/// Without `~/Documents`, `init` backs up the current directory, and `sync` works.
#[test]
fn a_first_run_without_documents() {
    let f = fixture();
    let here = f.p("work");
    std::fs::create_dir(&here).unwrap();
    std::fs::write(here.join("notes.txt"), b"notes").unwrap();
    for args in [&["init"][..], &["sync"]] {
        let mut c = std::process::Command::new(BIN);
        f.configure(&mut c);
        c.current_dir(&here).args(args);
        run_command(c).expect(0);
    }
}

/// A fresh account without `~/Documents`, in its home directory (root in `/root`, say): the
/// home is backed up, without the sample's store and catalog inside it.
#[test]
fn a_first_run_from_the_home_directory() {
    let f = fixture();
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(BIN);
        f.configure(&mut c);
        c.current_dir(f.root()).args(args);
        run_command(c)
    };
    run(&["init"]).expect(0);
    let first = run(&["--json", "sync"]);
    first.expect(0);
    let second = run(&["--json", "sync"]);
    second.expect(0);
    assert_eq!(second.profile()["new"], 0, "{}", second.stdout());
    let listed = run(&["ls"]);
    listed.expect(0);
    assert!(
        listed.stdout().contains("src/large.bin"),
        "{}",
        listed.stdout()
    );
    assert!(
        !listed.stdout().contains("glaciersync-store"),
        "the store backed itself up: {}",
        listed.stdout()
    );
}

#[test]
fn init_naming_no_directory() {
    let f = fixture();
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.args(["init", "no-such-dir"]);
    one_line(&run_command(c), 2, &["no-such-dir", "not a directory"]);
    assert!(!f.p(".config/glaciersync/settings.ini").exists());
}

/// Catalogs hold every file name: their directory is 0700, they and their lock are 0600.
#[test]
fn catalogs_are_private() {
    let f = fixture();
    f.sync();
    let mode = |p: &str| std::fs::metadata(f.p(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("db"), 0o700);
    assert_eq!(mode("db/docs.sqlite3"), 0o600);
    assert_eq!(mode("db/docs.lock"), 0o600);
    // The local store too: its catalog copies hold every name, its objects every byte.
    for dir in ["db", "store"] {
        for entry in entries_under(&f.p(dir)) {
            let m = std::fs::metadata(&entry).unwrap();
            let bits = m.permissions().mode() & 0o077;
            assert_eq!(bits, 0, "{} is open to others", entry.display());
        }
    }
    assert_eq!(mode("store"), 0o700);
    nothing_lost(&f);
}

/// `init` makes the settings' directory (which may hold an identity file) 0700, the settings
/// and identity files 0600.
#[test]
fn init_makes_its_directory_private() {
    let f = fixture();
    let mut c = std::process::Command::new(BIN);
    f.configure(&mut c);
    c.args(["init", "--age"]).arg(f.p("src"));
    run_command(c).expect(0);
    let mode = |p: &str| std::fs::metadata(f.p(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".config/glaciersync"), 0o700);
    for entry in entries_under(&f.p(".config/glaciersync")) {
        let m = std::fs::metadata(&entry).unwrap();
        assert_eq!(m.permissions().mode() & 0o077, 0, "{}", entry.display());
    }
}
