//! Vaults and databases of the 2013 script, written as the script wrote them
//! (`tests/legacy/script2013.py` on moto's Glacier), read back by the CLI: `recover` on a new
//! machine, then `restore`; `sync` adopting the database on the same machine, then `restore`.
//! Both give back the trees. `scripts/test.sh` starts moto and sets `GLACIERSYNC_TEST_MOTO` and
//! `GLACIERSYNC_TEST_PYTHON` (a Python with boto3); without them these tests skip with a note,
//! unless `GLACIERSYNC_TEST_DISALLOW_SKIP=1`.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/moto.rs"]
mod moto;

use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const THRESHOLD: u64 = 4096;

struct Env {
    dir: tempfile::TempDir,
    moto: String,
    python: String,
}

impl Env {
    fn new() -> Option<Env> {
        let moto = moto::url()?;
        let python = std::env::var("GLACIERSYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
            moto,
            python,
        })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Settings as the script's users have them: a `path` per tree and a vault.
    fn settings(&self, vault: &str, db: &str, root: &str) {
        let text = format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\naws_region_name = us-east-1\nendpoint_url = {}\ndatabase_dir = {db}\n\n[p]\nvault_name = {vault}\narchive_byte_size_threshold = {THRESHOLD}\npath = {root}\n",
            self.moto
        );
        std::fs::write(self.path("s.ini"), text).unwrap();
    }

    /// One run of the 2013 script over `root`, its database at `db/p.sqlite3`.
    fn script(&self, vault: &str, db: &str, root: &str, extra: &[&str]) {
        std::fs::create_dir_all(self.path(db)).unwrap();
        let helper = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("tests/legacy/script2013.py");
        let out = Command::new(&self.python)
            .arg(helper)
            .args(["--endpoint", &self.moto, "--vault", vault, "--profile", "p"])
            .arg("--db")
            .arg(self.path(db).join("p.sqlite3"))
            .arg("--root")
            .arg(self.path(root))
            .args(["--threshold", &THRESHOLD.to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "script2013.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run(&self, args: &[&str]) -> (i32, Value, String) {
        cli::run_json(self.dir.path(), args)
    }

    /// Runs `args` until it stops exiting 75 (moto finishes expedited jobs in about 2 s).
    /// Returns the last outcome (with the stderr of every run) and how many runs waited.
    fn until_done(&self, args: &[&str]) -> ((i32, Value, String), u32) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut waited = 0;
        let mut all = String::new();
        loop {
            let (code, j, err) = self.run(args);
            all.push_str(&err);
            if code != 75 {
                return ((code, j, all), waited);
            }
            waited += 1;
            assert!(Instant::now() < deadline, "{args:?} never finished: {err}");
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn profile(j: &Value) -> &Value {
    &j["profiles"][0]
}

fn write(root: &Path, rel: &str, data: &[u8], mtime: f64) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    let t = filetime::FileTime::from_unix_time(mtime.floor() as i64, (mtime.fract() * 1e9) as u32);
    filetime::set_file_mtime(&p, t).unwrap();
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The first run's tree: small files (tars), a large one and an identical copy (one archive),
/// a file that will grow past the threshold, unicode names.
fn first_tree(root: &Path) {
    write(root, "a.txt", b"alpha\n", 1_368_000_000.123_456);
    write(
        root,
        "docs/b.txt",
        b"bravo, first version\n",
        1_368_000_100.5,
    );
    write(root, "docs/grows.txt", b"small for now\n", 1_368_000_200.0);
    write(
        root,
        "ünïcødé/çà va ✓.txt",
        "gemütlich\n".as_bytes(),
        1_368_000_300.25,
    );
    write(root, "big/one.bin", &bytes(9000, 1), 1_368_000_400.0);
    write(
        root,
        "big/same-as-one.bin",
        &bytes(9000, 1),
        1_368_000_500.0,
    );
    write(root, "pad/p1.txt", &bytes(3000, 7), 1_368_000_600.0);
    write(root, "pad/p2.txt", &bytes(3000, 8), 1_368_000_601.0);
}

/// The second run: b changed (a newer tar), grows.txt grew past the threshold (a whole
/// archive), and a new file.
fn second_run_changes(root: &Path) {
    write(
        root,
        "docs/b.txt",
        b"bravo, second version, longer\n",
        1_368_100_100.75,
    );
    write(root, "docs/grows.txt", &bytes(6000, 3), 1_368_100_200.0);
    write(root, "new.txt", b"new in run two\n", 1_368_100_300.0);
}

/// Same files, same bytes, same mtimes (to the microsecond: the script kept float seconds).
fn assert_same_tree(a: &Path, b: &Path) {
    cli::assert_same_tree(a, b);
    for e in walk(a) {
        let (ma, mb) = (
            std::fs::metadata(a.join(&e)).unwrap(),
            std::fs::metadata(b.join(&e)).unwrap(),
        );
        let ns = |m: &std::fs::Metadata| m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        assert!((ns(&ma) - ns(&mb)).abs() < 1000, "{e:?}: mtimes differ");
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out
}

/// New machine: only the settings file. `recover` finds the newest database archive (passing
/// over an unreadable newer one, and saying so), imports it; `restore` gives back the tree
/// as of the script's last run; a second restore reads the now-known offsets; `verify
/// --remote` lists the archive a crashed run left undescribed.
#[test]
fn recover_from_a_script_vault_then_restore() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy");
    let src = env.path("src");
    first_tree(&src);
    env.script(&vault, "old-db", "src", &[]);
    std::thread::sleep(Duration::from_millis(50));
    second_run_changes(&src);
    env.script(&vault, "old-db", "src", &[]);
    // A crashed run: its archive is in the vault, in no uploaded database.
    write(
        &src,
        "crashed.txt",
        b"uploaded, never described\n",
        1_368_200_000.0,
    );
    env.script(&vault, "old-db", "src", &["--no-db-upload", "--garbage-db"]);
    std::fs::remove_file(src.join("crashed.txt")).unwrap();

    env.settings(&vault, "new-db", "src");
    let ((code, j, err), waited) = env.until_done(&["recover", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(waited >= 2, "inventory and database retrieval both wait");
    assert_eq!(profile(&j)["state"], "recovered");
    assert!(
        err.contains("unreadable") && err.contains("falling back to the next newest"),
        "{err}"
    );
    assert!(err.contains("adopted") && err.contains("→ path"), "{err}");
    assert!(env.path("new-db/p.sqlite3.legacy-2013").exists());

    let (code, j, err) = env.run(&["ls"]);
    assert_eq!(code, 0, "{err}");
    let files: Vec<&str> = profile(&j)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"path/ünïcødé/çà va ✓.txt"), "{files:?}");
    assert_eq!(files.len(), 9, "{files:?}");

    // Nine files in five archives (two tars, three file archives, one shared by two files):
    // each is requested once.
    let (code, j, err) = env.run(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 75, "{err}\n{j}");
    assert_eq!(profile(&j)["requested"], 5, "{j}");
    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_same_tree(&src, &env.path("out/path"));

    // The offsets are known now: a second restore reads members by range, verified by hash.
    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out2", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_same_tree(&src, &env.path("out2/path"));

    let ((code, j, err), _) = env.until_done(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let undescribed = profile(&j)["legacy_undescribed"].as_array().unwrap();
    assert_eq!(undescribed.len(), 1, "{j}");
    assert!(
        err.contains("no database the catalog imported describes it"),
        "{err}"
    );
}

/// Same machine: `sync` adopts the script's database (its tables kept in a backup file),
/// uploads only what changed since the script's last run, and `restore` brings back files
/// the script stored and files glaciersync stored alike.
#[test]
fn adopt_the_script_database_then_sync_and_restore() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy-adopt");
    let src = env.path("src");
    first_tree(&src);
    env.script(&vault, "db", "src", &[]);
    second_run_changes(&src);
    env.script(&vault, "db", "src", &[]);
    let legacy_bytes = std::fs::read(env.path("db/p.sqlite3")).unwrap();
    // Changed after the script's last run: one edited, one new.
    write(&src, "a.txt", b"alpha, edited by hand\n", 1_368_300_000.0);
    write(
        &src,
        "later.txt",
        b"written after the script\n",
        1_368_300_100.0,
    );

    env.settings(&vault, "db", "src");
    let (code, j, err) = env.run(&["sync", "--dry-run"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let (code, j, err) = env.run(&["restore", "--to", "dry", "--dry-run"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(profile(&j)["selected"], 9, "{j}");
    assert_eq!(
        std::fs::read(env.path("db/p.sqlite3")).unwrap(),
        legacy_bytes
    );
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let adopted: Vec<&str> = err.lines().filter(|l| l.contains("adopted")).collect();
    assert_eq!(adopted.len(), 1, "one line says what was adopted: {err}");
    let p = profile(&j);
    assert_eq!(
        (
            p["unchanged"].as_u64(),
            p["changed"].as_u64(),
            p["new"].as_u64()
        ),
        (Some(8), Some(1), Some(1)),
        "{p}"
    );
    assert_eq!(
        std::fs::read(env.path("db/p.sqlite3.legacy-2013")).unwrap(),
        legacy_bytes,
        "the legacy tables are kept untouched"
    );

    // The vault's inventory gives the archives' sizes and tree hashes the database lacked.
    let ((code, j, err), _) = env.until_done(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let cat = rusqlite::Connection::open(env.path("db/p.sqlite3")).unwrap();
    let unlisted: i64 = cat
        .query_row(
            "SELECT COUNT(*) FROM legacy_archives WHERE listed = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unlisted, 0);
    drop(cat);

    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_same_tree(&src, &env.path("out/path"));
    // Adopting happens once.
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(!err.contains("adopted"), "{err}");
    assert_eq!(profile(&j)["unchanged"], 10);
}

/// A database written on Windows (drive letters, backslashes; tar members without the drive)
/// recovered on Linux: its tree matches no `path…` key and gets a derived key that `ls`
/// shows; a tar member missing where the database says is one clear error, no partial file.
#[test]
fn a_windows_database_on_linux_and_a_missing_tar_member() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy-win");
    let src = env.path("pics");
    first_tree(&src);
    write(
        &src,
        "gone/missing.txt",
        b"recorded, never tarred\n",
        1_368_000_700.0,
    );
    env.script(
        &vault,
        "old-db",
        "pics",
        &[
            "--windows-basepath",
            r"C:\Users\me\Pictures",
            "--drop-member",
            r"gone\missing.txt",
        ],
    );
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    env.settings(&vault, "new-db", "elsewhere");
    let ((code, j, err), _) = env.until_done(&["recover", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(
        err.contains(r"C:\Users\me\Pictures → legacy-Pictures-"),
        "{err}"
    );
    let (code, j, err) = env.run(&["ls"]);
    assert_eq!(code, 0, "{err}");
    let first = profile(&j)["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let key = first.split('/').next().unwrap().to_string();
    assert!(key.starts_with("legacy-Pictures-"), "{first}");

    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 1, "{err}\n{j}");
    let errors = profile(&j)["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{j}");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("is not in legacy archive"),
        "{j}"
    );
    let out = env.path("out").join(&key);
    assert!(!out.join("gone/missing.txt").exists());
    assert!(
        walk(&env.path("out"))
            .iter()
            .all(|p| !p.to_string_lossy().contains("partial"))
    );
    std::fs::remove_dir_all(src.join("gone")).unwrap();
    cli::assert_same_tree(&src, &out);
}

/// A temp dir with a local profile `p` (settings `s.ini`, empty tree `src`) whose catalog
/// file `db/p.sqlite3` is a database of the script's tables made by `sql`; and that file.
fn script_database_only(sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    let db = dir.path().join("db/p.sqlite3");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    std::fs::write(
        dir.path().join("s.ini"),
        "[global]\ndatabase_dir = db\n\n[p]\nlocal_dir = store\npath = src\n",
    )
    .unwrap();
    (dir, db)
}

/// A legacy database with missing columns: one clear line, exit 2, the file untouched.
#[test]
fn a_damaged_legacy_database_is_one_clear_line() {
    let (dir, db) = script_database_only(
        "CREATE TABLE glaciersync_files (profile text, basepath text, fname text);
         CREATE TABLE glaciersync_hashes (archive_id text, hash text);",
    );
    let before = std::fs::read(&db).unwrap();
    for args in [&["sync"][..], &["ls"], &["status"]] {
        let (code, _, err) = cli::run_json(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (_, _, err) = cli::run_json(dir.path(), &["sync"]);
    assert!(err.contains("lacks mtime, bytesize, archive_id"), "{err}");
    assert!(err.contains("glaciersync_tars is missing"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is untouched");
}

/// A second run that changed every file of the first run's tar and the file of a whole-file
/// archive: the newest database still lists the old tar and the old archive (in
/// `glaciersync_hashes` and `glaciersync_tars`) though no file row points at them. `recover`
/// remembers them: `verify --remote` lists no archive as undescribed, and `prune` deletes none.
#[test]
fn archives_no_file_needs_now_are_still_described() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy-superseded");
    let src = env.path("src");
    write(&src, "a.txt", b"alpha, first\n", 1_368_000_000.0);
    write(&src, "b.txt", b"bravo, first\n", 1_368_000_001.0);
    write(&src, "w.bin", &bytes(9000, 1), 1_368_000_002.0);
    env.script(&vault, "old-db", "src", &[]);
    write(&src, "a.txt", b"alpha, second run\n", 1_368_100_000.0);
    write(&src, "b.txt", b"bravo, second run\n", 1_368_100_001.0);
    write(&src, "w.bin", &bytes(9000, 2), 1_368_100_002.0);
    env.script(&vault, "old-db", "src", &[]);

    env.settings(&vault, "new-db", "src");
    let ((code, j, recovered), _) = env.until_done(&["recover", "--tier", "expedited"]);
    assert_eq!(code, 0, "{recovered}\n{j}");

    let ((code, j, err), _) = env.until_done(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let p = profile(&j);
    assert_eq!(p["legacy_undescribed"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(p["problems"].as_array().unwrap().len(), 0, "{j}");
    assert!(!err.contains("describes it"), "{err}");
    // The two superseded archives, the two that hold the files, compared with the vault.
    assert_eq!(p["checked_archives"], 4, "{j}");
    assert!(
        recovered.contains("3 files in 2 archives, and 2 older archives no file needs now"),
        "{recovered}"
    );

    let ((code, j, err), _) = env.until_done(&["prune", "--unknown", "--dry-run"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(
        profile(&j)["delete"].as_array().map(Vec::len),
        Some(0),
        "{j}"
    );

    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_same_tree(&src, &env.path("out/path"));

    // The same on the machine that ran the script: adopting its database (no inventory: the
    // sizes are estimates until `verify --remote` reads the vault's).
    env.settings(&vault, "old-db", "src");
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(
        err.contains("and 2 older archives no file needs now"),
        "{err}"
    );
    let ((code, j, err), _) = env.until_done(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let p = profile(&j);
    assert_eq!(p["legacy_undescribed"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(p["problems"].as_array().unwrap().len(), 0, "{j}");
}

/// Tar members written on Windows in its ANSI code page (cp1252): characters that code page
/// puts at 0x80–0x9F (€ – “ ” … Š œ) are found as well as Latin-1 ones.
#[test]
fn tar_members_in_the_windows_code_page() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy-cp1252");
    let src = env.path("docs");
    let names = [
        "Rechnung 100€.txt",
        "a – b.txt",
        "“Zitat” ‘so’ — …/Šœ Ÿ.txt",
        "café.txt",
        "plain.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        write(
            &src,
            name,
            format!("{name}: file {i}\n").as_bytes(),
            1_368_000_000.0 + i as f64,
        );
    }
    env.script(
        &vault,
        "old-db",
        "docs",
        &[
            "--windows-basepath",
            r"C:\Users\me\Documents",
            "--member-encoding",
            "cp1252",
        ],
    );
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    env.settings(&vault, "new-db", "elsewhere");
    let ((code, j, err), _) = env.until_done(&["recover", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let ((code, j, err), _) = env.until_done(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    let keys: Vec<PathBuf> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_same_tree(&src, &keys[0]);
}

/// A hard-linked pair and a symlink in one tar: `tarfile.add` stored the second path of the
/// pair as a hard-link entry and the symlink as a symlink entry. The pair comes back as two
/// files with the bytes of the member the link names; the symlink comes back as the symlink
/// (and is a symlink in the catalog from then on).
#[test]
fn hard_links_and_symlinks_in_a_legacy_tar() {
    let Some(env) = Env::new() else { return };
    let vault = moto::unique("gs-legacy-links");
    let src = env.path("src");
    write(&src, "a.txt", b"alpha\n", 1_368_000_000.0);
    write(&src, "h/first.txt", b"hard-linked bytes\n", 1_368_000_001.0);
    std::fs::hard_link(src.join("h/first.txt"), src.join("h/second.txt")).unwrap();
    std::fs::create_dir_all(src.join("l")).unwrap();
    std::os::unix::fs::symlink("../a.txt", src.join("l/to-a.txt")).unwrap();
    write(&src, "z.txt", b"last\n", 1_368_000_003.0);
    env.script(&vault, "old-db", "src", &[]);

    env.settings(&vault, "new-db", "src");
    let ((code, j, err), _) = env.until_done(&["recover", "--tier", "expedited"]);
    assert_eq!(code, 0, "{err}\n{j}");
    for (round, out) in ["out", "out2"].iter().enumerate() {
        let ((code, j, err), _) = env.until_done(&["restore", "--to", out, "--tier", "expedited"]);
        assert_eq!(code, 0, "round {round}: {err}\n{j}");
        let back = env.path(out).join("path");
        assert_same_tree(&src, &back);
        assert_eq!(
            std::fs::read(back.join("h/second.txt")).unwrap(),
            b"hard-linked bytes\n"
        );
        let link = back.join("l/to-a.txt");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "round {round}: not a symlink"
        );
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("../a.txt"));
    }
    let cat = rusqlite::Connection::open(env.path("new-db/p.sqlite3")).unwrap();
    let (kind, target): (String, Vec<u8>) = cat
        .query_row(
            "SELECT kind, target FROM versions WHERE path = CAST('l/to-a.txt' AS BLOB)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), &target[..]), ("symlink", &b"../a.txt"[..]));
}

/// A catalog file holding only some of the script's tables (no `glaciersync_files`) is the
/// script's too: one clear line, exit 2, nothing written.
#[test]
fn some_of_the_script_tables_are_the_script_database() {
    let (dir, db) = script_database_only(
        "CREATE TABLE glaciersync_hashes (archive_id text, hash text);
         CREATE TABLE glaciersync_tars (archive_id text, mtime real);
         CREATE TABLE glaciersync_tar_files (tar_rowid integer, file_rowid integer);
         INSERT INTO glaciersync_hashes VALUES ('A1', 'aa');",
    );
    let before = std::fs::read(&db).unwrap();
    for args in [&["sync"][..], &["sync", "--dry-run"], &["ls"], &["status"]] {
        let (code, _, err) = cli::run_json(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("2013 glaciersync script"), "{args:?}: {err}");
    }
    let (_, _, err) = cli::run_json(dir.path(), &["sync"]);
    assert!(err.contains("table glaciersync_files is missing"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is untouched");
    assert!(!dir.path().join("db/p.sqlite3.legacy-2013").exists());
}
