//! The CLI end to end against moto's S3 and Glacier servers: sync, change, sync, restore (a
//! thaw in progress exits 75, a later run finishes with 0), and `recover` on an empty
//! `database_dir`. `scripts/test.sh` starts moto and sets `GLACIERSYNC_TEST_MOTO`; without it
//! these tests skip with a note, unless `GLACIERSYNC_TEST_DISALLOW_SKIP=1` (then they fail).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/moto.rs"]
mod moto;

use glaciersync::backend::testsuite::content;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An unsigned request to moto (its S3, or its own `/moto-api/`), which must succeed.
fn http(method: &str, url: &str, body: &str) {
    let (base, path) = match url.match_indices('/').nth(2) {
        Some((i, _)) => url.split_at(i),
        None => (url, "/"),
    };
    let (status, answer) = moto::request(base, method, path, &[], body)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert!(
        (200..300).contains(&status),
        "{method} {url}: {status} {answer}"
    );
}

struct Env {
    dir: tempfile::TempDir,
    moto: String,
}

impl Env {
    fn new(moto: String) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            moto,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write_settings(&self, profile_body: &str, db: &str) {
        let text = format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\naws_region_name = us-east-1\nendpoint_url = {}\ndatabase_dir = {db}\n\n[p]\npath = src\narchive_byte_size_threshold = 64KiB\n{profile_body}\n",
            self.moto
        );
        std::fs::write(self.path("s.ini"), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> (i32, Value, String) {
        cli::run_json(self.dir.path(), args)
    }

    fn profile(json: &Value) -> &Value {
        &json["profiles"][0]
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn make_tree(root: &Path) {
    for i in 0..30 {
        write(
            root,
            &format!("small/{i}.txt"),
            format!("file {i}\n").repeat(i + 1).as_bytes(),
        );
    }
    write(root, "big/one.bin", &content(300_000, 1));
    write(root, "big/two.bin", &content(200_000, 2));
}

/// One test, since moto's restore delay is server-wide state.
#[test]
fn s3_deep_archive_round_trip_with_thaw_and_recover() {
    let Some(url) = moto::url() else { return };
    let env = Env::new(url.clone());
    let bucket = moto::unique("gs-e2e");
    http("PUT", &format!("{url}/{bucket}"), "");
    let body = format!("backend = s3\nbucket = {bucket}\nstorage_class = DEEP_ARCHIVE\n");
    env.write_settings(&body, "db");
    let src = env.path("src");
    make_tree(&src);

    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}");
    let p = Env::profile(&j);
    assert_eq!(p["backend"], "s3");
    assert_eq!(p["new"], 32);
    assert!(p["archives_uploaded"].as_u64().unwrap() >= 3, "{p}");

    // Change: edit one, add one, delete one.
    write(&src, "small/0.txt", b"edited\n");
    write(&src, "small/new.txt", b"new file\n");
    std::fs::remove_file(src.join("big/two.bin")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}");
    let p = Env::profile(&j);
    assert_eq!(
        (
            p["changed"].as_u64(),
            p["new"].as_u64(),
            p["deleted"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{p}"
    );

    // A thaw that takes a while: the first restore requests and exits 75.
    http(
        "POST",
        &format!("{url}/moto-api/state-manager/set-transition"),
        r#"{"model_name": "s3::keyrestore", "transition": {"progression": "time", "seconds": 4}}"#,
    );
    let reset = || {
        http(
            "POST",
            &format!("{url}/moto-api/state-manager/unset-transition"),
            r#"{"model_name": "s3::keyrestore"}"#,
        )
    };
    let (code, j, err) = env.run(&["restore", "--to", "out", "--tier", "standard"]);
    if code != 75 {
        reset();
    }
    assert_eq!(code, 75, "{err}\n{j}");
    let p = Env::profile(&j);
    assert!(p["pending"].as_u64().unwrap() > 0, "{p}");
    assert!(p["requested"].as_u64().unwrap() > 0, "{p}");
    // moto moves a restore one step (requested, in progress, done) at the first look after
    // the delay: later runs see it in progress, then done, and never request again.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut runs = 0;
    let (code, j, err) = loop {
        std::thread::sleep(Duration::from_secs(5));
        runs += 1;
        let (code, j, err) = env.run(&["restore", "--to", "out", "--tier", "standard"]);
        assert_eq!(
            Env::profile(&j)["requested"],
            0,
            "nothing requested twice: {j}"
        );
        if code != 75 || std::time::Instant::now() > deadline {
            break (code, j, err);
        }
    };
    reset();
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(runs >= 2, "a restore in progress was seen waiting");
    cli::assert_same_tree(&src, &env.path("out/path"));

    // The listing agrees with the catalog; an object nobody recorded is reported.
    let (code, j, err) = env.run(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(
        Env::profile(&j)["checked_archives"].as_u64().unwrap() >= 5,
        "{j}"
    );
    http(
        "PUT",
        &format!("{url}/{bucket}/p/bundles/stray.tar"),
        "stray",
    );
    let (code, j, err) = env.run(&["verify", "--remote"]);
    assert_eq!(code, 1, "{err}\n{j}");
    assert!(
        err.contains("bundles/stray.tar") && err.contains("unknown"),
        "{err}"
    );

    // Recover on an empty database_dir: the catalog comes back (the full copy of the first
    // sync and the delta of the second, both in STANDARD: no thaw) and works.
    let (_, ls_before, _) = env.run(&["ls"]);
    env.write_settings(&body, "db2");
    let (code, j, err) = env.run(&["recover"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(Env::profile(&j)["state"], "recovered");
    let (code, j, err) = env.run(&["ls"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Env::profile(&j)["files"].as_array().unwrap().len(), 32);
    assert_eq!(Env::profile(&j)["files"], Env::profile(&ls_before)["files"]);
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}");
    let p = Env::profile(&j);
    assert_eq!(p["unchanged"], 32, "{p}");
    assert_eq!(
        p["archives_uploaded"], 0,
        "nothing unchanged is uploaded: {p}"
    );
}

#[test]
fn glacier_vault_round_trip_and_recover_from_inventory() {
    let Some(url) = moto::url() else { return };
    let env = Env::new(url);
    let vault = moto::unique("gs-e2e-vault");
    env.write_settings(&format!("vault_name = {vault}\n"), "db");
    let src = env.path("src");
    make_tree(&src);

    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}");
    let p = Env::profile(&j);
    assert_eq!(p["backend"], "glacier");
    assert_eq!(p["new"], 32);

    // Retrieval jobs: the first run initiates them and exits 75; moto finishes expedited
    // jobs after about 2 s.
    let (code, j, err) = env.run(&["restore", "--to", "out", "--tier", "expedited"]);
    assert_eq!(code, 75, "{err}\n{j}");
    assert!(Env::profile(&j)["requested"].as_u64().unwrap() > 0, "{j}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (code, j, err) = loop {
        std::thread::sleep(Duration::from_secs(3));
        let (code, j, err) = env.run(&["restore", "--to", "out", "--tier", "expedited"]);
        assert_eq!(
            Env::profile(&j)["requested"],
            0,
            "nothing requested twice: {j}"
        );
        if code != 75 || std::time::Instant::now() > deadline {
            break (code, j, err);
        }
    };
    assert_eq!(code, 0, "{err}\n{j}");
    cli::assert_same_tree(&src, &env.path("out/path"));

    // A second sync that changes a few files stores a catalog delta.
    write(&src, "small/0.txt", b"edited again\n");
    write(&src, "small/newer.txt", b"newer file\n");
    std::fs::remove_file(src.join("big/two.bin")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let (code, j, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Env::profile(&j)["changed"], 1, "{j}");
    let (_, ls_before, _) = env.run(&["ls"]);

    // Recover: inventory job (75), retrieval jobs of the full copy and the delta (75), then
    // the catalog.
    env.write_settings(&format!("vault_name = {vault}\n"), "db2");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut saw_pending = 0;
    loop {
        let (code, j, err) = env.run(&["recover", "--tier", "expedited"]);
        if code == 0 {
            assert_eq!(Env::profile(&j)["state"], "recovered");
            break;
        }
        assert_eq!(code, 75, "{err}\n{j}");
        saw_pending += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "recover never finished"
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(
        saw_pending >= 2,
        "inventory and catalog retrieval both wait"
    );
    let (code, j, err) = env.run(&["ls"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(Env::profile(&j)["files"].as_array().unwrap().len(), 32);
    assert_eq!(Env::profile(&j)["files"], Env::profile(&ls_before)["files"]);

    // verify --remote: an inventory job first (75), then the comparison.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (code, j, err) = loop {
        let (code, j, err) = env.run(&["verify", "--remote"]);
        if code != 75 || std::time::Instant::now() > deadline {
            break (code, j, err);
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    assert_eq!(code, 0, "{err}\n{j}");
    assert!(
        Env::profile(&j)["checked_archives"].as_u64().unwrap() >= 3,
        "{j}"
    );
}

/// A missing bucket exits 2 with one line naming it; the secret key never appears in any
/// output, even at the highest verbosity, whether the run fails or succeeds.
#[test]
fn s3_missing_bucket_is_one_clear_line_and_secrets_stay_secret() {
    let Some(url) = moto::url() else { return };
    let env = Env::new(url.clone());
    const SECRET: &str = "Sup3rS3cretValueNeverPrinted";
    let settings = |bucket: &str| {
        std::fs::write(
            env.path("s.ini"),
            format!(
                "[global]\naws_access_key = AKIAGLACIERSYNCTEST\naws_secret_key = {SECRET}\naws_region_name = us-east-1\nendpoint_url = {url}\ndatabase_dir = db\n\n[p]\npath = src\nbackend = s3\nbucket = {bucket}\n"
            ),
        )
        .unwrap();
    };
    write(&env.path("src"), "a.txt", b"hello");
    let missing = moto::unique("gs-missing");
    settings(&missing);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_glaciersync"))
            .current_dir(env.dir.path())
            .env("GLACIERSYNC_RETRY_BASE_MS", "10")
            .args(["-c", "s.ini", "-vvv"])
            .args(args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(SECRET), "the secret leaked: {all}");
        (out.status.code().unwrap_or(-1), all)
    };
    let (code, out) = run(&["sync"]);
    assert_eq!(code, 2, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one line: {out}");
    assert!(errors[0].contains(&missing), "names the bucket: {out}");

    let bucket = moto::unique("gs-secret");
    http("PUT", &format!("{url}/{bucket}"), "");
    settings(&bucket);
    let (code, out) = run(&["sync"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["--json", "status"]);
    assert_eq!(code, 0, "{out}");
}
