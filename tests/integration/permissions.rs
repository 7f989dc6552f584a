//! Files and directories that cannot be read: exit 1, each named on stderr and in the JSON
//! `errors`, the rest backed up, nothing taken as deleted.
//!
//! Tests run as root here, where `chmod 000` stops nothing; the binary is then run as
//! `nobody` (with `setpriv`, else `runuser`) over a fixture owned by `nobody`, so permissions
//! apply as they do for users.

use super::common::*;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const NOBODY: u32 = 65534;

/// How to run the binary so that permissions apply.
enum Runner {
    /// Not root: as we are.
    Direct,
    /// A wrapper that drops to `nobody`, then the binary (a copy `nobody` can execute).
    As(Vec<OsString>, PathBuf),
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn chown_all(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if path.symlink_metadata().unwrap().is_dir() {
        for p in entries_under(path) {
            std::os::unix::fs::lchown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
}

/// Picks a runner, or `None` (with a note) when there is no honest way here.
fn runner(f: &Fixture) -> Option<Runner> {
    if !is_root() {
        return Some(Runner::Direct);
    }
    let uid = format!("--reuid={NOBODY}");
    let gid = format!("--regid={NOBODY}");
    let setpriv = ["setpriv", &uid, &gid, "--clear-groups"];
    let runuser = ["runuser", "-u", "nobody", "--"];
    let wrapper: Vec<OsString> = if works(setpriv[0], &setpriv[1..]) {
        setpriv.iter().map(OsString::from).collect()
    } else if works(runuser[0], &runuser[1..]) {
        runuser.iter().map(OsString::from).collect()
    } else {
        let msg = "running as root without setpriv or runuser: cannot make a file unreadable";
        if std::env::var_os("GLACIERSYNC_TEST_DISALLOW_SKIP").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return None;
    };
    // The binary lives under /root (mode 0700): nobody runs a copy.
    let bin = f.p("glaciersync");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_all(f.root());
    Some(Runner::As(wrapper, bin))
}

fn run(f: &Fixture, runner: &Runner, args: &[&str]) -> Run {
    if is_root() {
        chown_all(f.root());
    }
    let mut c = match runner {
        Runner::Direct => return f.run(args),
        Runner::As(wrapper, bin) => {
            let mut c = Command::new(&wrapper[0]);
            c.args(&wrapper[1..]).arg(bin);
            c
        }
    };
    f.configure(&mut c);
    c.arg("-c").arg(f.settings_path()).args(args);
    run_command(c)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sync(f: &Fixture, runner: &Runner, code: i32) -> (Run, SyncSummary) {
    let r = run(f, runner, &["--json", "sync"]);
    r.expect(code);
    let s = r.sync_summary();
    s.assert_invariant();
    (r, s)
}

#[test]
fn unreadable_file_is_named_and_the_rest_is_backed_up() {
    let f = Fixture::new();
    let Some(runner) = runner(&f) else { return };
    f.write("src/ok.txt", b"fine");
    f.write("src2/also-ok.txt", b"fine too");
    let secret = f.write("src/secret.txt", b"no one may read this");
    if is_root() {
        chown_all(f.root());
    }
    chmod(&secret, 0o000);

    let (r, s) = sync(&f, &runner, 1);
    assert_eq!(
        s.errors,
        [FileError {
            path: "path/secret.txt".into(),
            error: "permission denied".into()
        }],
        "{s:#?}"
    );
    assert_eq!((s.scanned, s.new), (3, 2), "{s:#?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("path/secret.txt"))
        .unwrap_or_else(|| panic!("secret.txt not named on stderr:\n{}", r.stderr));
    assert!(line.contains("permission denied"), "{line}");
    let ls = run(&f, &runner, &["ls"]);
    ls.expect(0);
    assert_eq!(ls.stdout().lines().count(), 2, "{}", ls.stdout());
    assert!(!ls.stdout().contains("secret"), "{}", ls.stdout());

    // Still unreadable: named again, never taken as deleted or unchanged.
    let (_, s) = sync(&f, &runner, 1);
    assert_eq!(s.errors.len(), 1, "{s:#?}");
    assert_eq!((s.unchanged, s.deleted), (2, 0), "{s:#?}");

    // Readable again: backed up.
    chmod(&secret, 0o644);
    let (_, s) = sync(&f, &runner, 0);
    assert_eq!((s.new, s.unchanged), (1, 2), "{s:#?}");

    // A file that was backed up, then changed and became unreadable keeps its last version.
    chmod(&secret, 0o000);
    set_mtime(&secret, 1_700_000_000, 0);
    std::fs::write(f.p("src/ok.txt"), b"edited").unwrap();
    let (_, s) = sync(&f, &runner, 1);
    assert_eq!(s.errors.len(), 1, "{s:#?}");
    assert_eq!(s.errors[0].path, "path/secret.txt", "{s:#?}");
    assert_eq!((s.changed, s.unchanged, s.deleted), (1, 1, 0), "{s:#?}");
    let ls = run(&f, &runner, &["ls"]);
    assert!(ls.stdout().contains("path/secret.txt"), "{}", ls.stdout());
}

#[test]
fn unreadable_directory_is_named_and_its_files_are_not_taken_as_deleted() {
    let f = Fixture::new();
    let Some(runner) = runner(&f) else { return };
    f.write("src/ok.txt", b"fine");
    f.write("src/closed/inner.txt", b"inside");
    f.write("src/closed/deeper/more.txt", b"more");
    let (_, s) = sync(&f, &runner, 0);
    assert_eq!(s.new, 3, "{s:#?}");

    chmod(&f.p("src/closed"), 0o000);
    let (r, s) = sync(&f, &runner, 1);
    assert_eq!(s.deleted, 0, "{s:#?}");
    assert_eq!(s.errors.len(), 1, "{s:#?}");
    assert_eq!(s.errors[0].path, "path/closed", "{s:#?}");
    assert!(r.stderr.contains("path/closed"), "{}", r.stderr);
    let ls = run(&f, &runner, &["ls"]);
    ls.expect(0);
    assert!(
        ls.stdout().contains("path/closed/inner.txt"),
        "{}",
        ls.stdout()
    );
    assert!(
        ls.stdout().contains("path/closed/deeper/more.txt"),
        "{}",
        ls.stdout()
    );
    chmod(&f.p("src/closed"), 0o755);
}
