//! Fixtures: a temporary directory with a settings file, source trees `src` (`path`) and
//! `src2` (`path2`), a local backend in `store` and catalogs in `db`; running the binary;
//! parsing its `--json`; comparing trees byte for byte with modes, mtimes and symlinks.

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_glaciersync");

/// The settings of the brief: one local profile `docs` with two trees and a 1 MiB threshold.
pub const SETTINGS: &str = "[global]
database_dir = db
[docs]
local_dir = store
path = src
path2 = src2
archive_byte_size_threshold = 1MiB
";

/// [`SETTINGS`] with more lines in the `[docs]` section.
pub fn settings_with(extra: &str) -> String {
    format!("{SETTINGS}{extra}\n")
}

/// One error of a `--json` summary.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FileError {
    pub path: String,
    pub error: String,
}

/// The `sync --json` summary of one profile: the fields SPEC.md requires (parsing fails when
/// one is missing), and `deleted`.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncSummary {
    pub name: String,
    pub backend: String,
    pub scanned: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub deduplicated: u64,
    pub uploaded_bytes: u64,
    pub archives_uploaded: u64,
    pub errors: Vec<FileError>,
}

impl SyncSummary {
    /// SPEC.md: new + changed + unchanged = scanned − errors.
    pub fn assert_invariant(&self) {
        assert_eq!(
            self.new + self.changed + self.unchanged,
            self.scanned - self.errors.len() as u64,
            "new + changed + unchanged must equal scanned - errors: {self:#?}"
        );
    }
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The one JSON document `--json` prints on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr
            )
        })
    }

    /// `profiles[0]` of the JSON document.
    pub fn profile(&self) -> Value {
        let v = self.json();
        let profiles = v["profiles"].as_array().expect("profiles array");
        assert_eq!(profiles.len(), 1, "{v:#}");
        profiles[0].clone()
    }

    /// The `path` of each entry of `profiles[0].errors`, sorted.
    pub fn error_paths(&self) -> Vec<String> {
        let p = self.profile();
        let mut v: Vec<String> = p["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {p:#}"))
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    pub fn sync_summary(&self) -> SyncSummary {
        let p = self.profile();
        serde_json::from_value(p.clone())
            .unwrap_or_else(|e| panic!("sync summary lacks a field of SPEC.md ({e}): {p:#}"))
    }

    /// Asserts the exit code, showing everything when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr
        );
        self
    }

    /// Asserts that stderr has exactly one non-empty line and returns it.
    #[track_caller]
    pub fn one_stderr_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.stderr
        );
        lines[0]
    }
}

/// A temporary working directory for one test.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// [`SETTINGS`], with empty `src` and `src2`.
    pub fn new() -> Fixture {
        Fixture::with_settings(SETTINGS)
    }

    /// The given settings, with empty `src` and `src2`.
    pub fn with_settings(text: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("glaciersync-e2e-")
            .tempdir()
            .expect("temp dir");
        let f = Fixture { dir };
        std::fs::create_dir(f.p("src")).unwrap();
        std::fs::create_dir(f.p("src2")).unwrap();
        f.write_settings(text);
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path under the fixture's directory.
    pub fn p(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn settings_path(&self) -> PathBuf {
        self.p("settings.ini")
    }

    pub fn write_settings(&self, text: &str) {
        std::fs::write(self.settings_path(), text).unwrap();
    }

    /// Writes a file (creating its directories) under the fixture's directory.
    pub fn write(&self, rel: impl AsRef<Path>, data: &[u8]) -> PathBuf {
        let path = self.p(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        path
    }

    /// The binary with `-c settings.ini` and `args`, configured by [`Fixture::configure`].
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(BIN);
        self.configure(&mut c);
        c.arg("-c").arg(self.settings_path()).args(args);
        c
    }

    /// Runs `c` in the fixture's directory with a clean environment (no config or data
    /// directories of the user, quick retries).
    pub fn configure(&self, c: &mut Command) {
        c.current_dir(self.root())
            .env_remove("GLACIERSYNC_CONFIG")
            .env("HOME", self.root())
            .env("XDG_CONFIG_HOME", self.p(".config"))
            .env("XDG_DATA_HOME", self.p(".data"))
            .env("GLACIERSYNC_RETRY_BASE_MS", "10")
            .stdin(Stdio::null());
    }

    /// Runs the binary to its end.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        run_command(self.command(args))
    }

    /// `sync --json`, which must exit 0; checks the invariant of the summary.
    #[track_caller]
    pub fn sync(&self) -> SyncSummary {
        let r = self.run(&["--json", "sync"]);
        r.expect(0);
        let s = r.sync_summary();
        s.assert_invariant();
        assert!(s.errors.is_empty(), "{s:#?}");
        s
    }

    /// `ls` as raw lines of `path\tsize\tmtime`, optionally `--at` a time.
    #[track_caller]
    pub fn ls(&self, at: Option<&str>) -> Vec<Vec<u8>> {
        let mut args: Vec<&str> = vec!["ls"];
        if let Some(t) = at {
            args.extend(["--at", t]);
        }
        let r = self.run(&args);
        r.expect(0);
        r.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The paths `ls` lists (the first column), as raw bytes.
    #[track_caller]
    pub fn ls_paths(&self, at: Option<&str>) -> Vec<Vec<u8>> {
        self.ls(at)
            .into_iter()
            .map(|l| l.split(|&b| b == b'\t').next().unwrap().to_vec())
            .collect()
    }

    /// The time of the last complete sync as `status --json` gives it (RFC 3339, seconds).
    #[track_caller]
    pub fn last_sync(&self) -> String {
        let r = self.run(&["--json", "status"]);
        r.expect(0);
        r.profile()["last_sync"]
            .as_str()
            .expect("last_sync")
            .to_string()
    }

    /// `restore --to DIR` plus more arguments.
    pub fn restore(&self, to: &Path, more: &[&str]) -> Run {
        let mut args: Vec<OsString> = vec!["--json".into(), "restore".into(), "--to".into()];
        args.push(to.as_os_str().to_owned());
        args.extend(more.iter().map(OsString::from));
        self.run(&args)
    }

    /// The objects under `store/<sub>`, leaving out the owner markers (`owners/`, no archives).
    pub fn stored(&self, sub: &str) -> Vec<PathBuf> {
        let owners = self.p("store/owners");
        files_under(&self.p("store").join(sub))
            .into_iter()
            .filter(|p| !p.starts_with(&owners))
            .collect()
    }

    /// The catalog database of profile `docs`.
    pub fn catalog(&self) -> PathBuf {
        self.p("db/docs.sqlite3")
    }
}

/// Decompresses `packed` into `out` with the reference `zstd` CLI (Debian package `zstd`).
pub fn zstd_decompress(packed: &Path, out: &Path) {
    let st = Command::new("zstd")
        .args(["-d", "-q", "-f", "-o"])
        .arg(out)
        .arg(packed)
        .status()
        .expect("the reference `zstd` CLI (Debian package `zstd`) is installed");
    assert!(st.success(), "zstd -d {}", packed.display());
}

/// Runs a command to its end and collects its output.
pub fn run_command(mut c: Command) -> Run {
    let out = c.output().expect("run glaciersync");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every regular file below `dir` (none when it does not exist), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    entries_under(dir)
        .into_iter()
        .filter(|p| p.symlink_metadata().unwrap().is_file())
        .collect()
}

/// Everything below `dir` (files, links, directories; none when it does not exist), sorted.
pub fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn show(p: &Path) -> String {
    format!("{:?}", p.as_os_str())
}

fn mtime(m: &std::fs::Metadata) -> (i64, i64) {
    (m.mtime(), m.mtime_nsec())
}

/// Asserts that `actual` holds the same tree as `expected`: the same names (as bytes), kinds,
/// bytes, permission bits and mtimes (nanoseconds), symlinks as links with the same target.
/// The two roots themselves are not compared.
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let mut problems = Vec::new();
    compare_dirs(expected, actual, &mut problems);
    assert!(
        problems.is_empty(),
        "{} differs from {}:\n{}",
        show(actual),
        show(expected),
        problems.join("\n")
    );
}

fn names(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", show(dir)))
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

fn compare_dirs(a: &Path, b: &Path, problems: &mut Vec<String>) {
    let (na, nb) = (names(a), names(b));
    if na != nb {
        problems.push(format!(
            "{}: entries {:?} != {:?}",
            show(b),
            na.iter()
                .map(|n| n.as_bytes().escape_ascii().to_string())
                .collect::<Vec<_>>(),
            nb.iter()
                .map(|n| n.as_bytes().escape_ascii().to_string())
                .collect::<Vec<_>>()
        ));
        return;
    }
    for n in na {
        let (pa, pb) = (a.join(&n), b.join(&n));
        let ma = std::fs::symlink_metadata(&pa).unwrap();
        let mb = std::fs::symlink_metadata(&pb).unwrap();
        let (ta, tb) = (ma.file_type(), mb.file_type());
        if ta.is_symlink() != tb.is_symlink() || ta.is_dir() != tb.is_dir() {
            problems.push(format!("{}: kind {ta:?} != {tb:?}", show(&pb)));
            continue;
        }
        if mtime(&ma) != mtime(&mb) {
            problems.push(format!(
                "{}: mtime {:?} != {:?}",
                show(&pb),
                mtime(&ma),
                mtime(&mb)
            ));
        }
        if ta.is_symlink() {
            let (la, lb) = (
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap(),
            );
            if la != lb {
                problems.push(format!("{}: link target {la:?} != {lb:?}", show(&pb)));
            }
            continue;
        }
        let (mode_a, mode_b) = (
            ma.permissions().mode() & 0o7777,
            mb.permissions().mode() & 0o7777,
        );
        if mode_a != mode_b {
            problems.push(format!("{}: mode {mode_a:o} != {mode_b:o}", show(&pb)));
        }
        if ta.is_dir() {
            compare_dirs(&pa, &pb, problems);
        } else if std::fs::read(&pa).unwrap() != std::fs::read(&pb).unwrap() {
            problems.push(format!("{}: content differs", show(&pb)));
        }
    }
}

/// A file or directory name from raw bytes (for names that are not UTF-8).
pub fn raw(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// Sleeps past the current second, so the next sync's snapshot time is later than the last.
pub fn next_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    std::thread::sleep(rest + Duration::from_millis(20));
}

/// Sets a file's mtime (seconds, nanoseconds).
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, nanos)).unwrap();
}

/// A small deterministic pseudo-random generator (xorshift64*), for test data and timings.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Seeded from the clock; the seed is printed so a failure can be replayed.
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::env::var("GLACIERSYNC_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: GLACIERSYNC_TEST_SEED={seed}");
        Rng::new(seed)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}
