//! Faults inside the suite: the CLI end to end through `tests/common/fault_relay.rs`, which
//! throttles, fails after forwarding, resets, truncates and delays a share of the requests, in
//! front of moto's S3 and of the strict vault server. Every run must still end with exit 0 and
//! a restored tree equal to the source; each test prints the faults it injected and checks
//! that there were some.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/fault_relay.rs"]
mod fault_relay;
#[path = "common/glacier_server.rs"]
mod glacier_server;
#[path = "common/moto.rs"]
mod moto;

use fault_relay::FaultRelay;
use glaciersync::backend::testsuite::content;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prints what `relay` injected and, when the test command asks for it
/// (`GLACIERSYNC_TEST_FAULT_REPORT`, a file), adds a line to that file: `cargo test` hides what
/// passing tests print, and the test command prints the file at its end.
fn report(label: &str, relay: &FaultRelay) {
    let line = format!("{label} {}", relay.summary());
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("GLACIERSYNC_TEST_FAULT_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("fault report file");
        writeln!(f, "{line}").expect("fault report");
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn settings(&self, endpoint: &str, db: &str, profile: &str) {
        let text = format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\n\
             aws_region_name = us-east-1\nendpoint_url = {endpoint}\ndatabase_dir = {db}\n\
             read_timeout = 20s\n\n[p]\npath = src\narchive_byte_size_threshold = 64KiB\n{profile}\n"
        );
        std::fs::write(self.path("s.ini"), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> (i32, Value, String) {
        cli::run_json(self.dir.path(), args)
    }

    /// Runs `args` until it no longer waits for a retrieval (exit 75); returns the last run.
    fn until_done(&self, args: &[&str]) -> (i32, Value, String) {
        // moto finishes expedited Glacier jobs after a few seconds.
        for _ in 0..60 {
            let r = self.run(args);
            if r.0 != 75 {
                return r;
            }
            std::thread::sleep(Duration::from_millis(1500));
        }
        panic!("{args:?} still waiting after 60 runs");
    }

    fn ok(&self, args: &[&str], relay: &FaultRelay) -> Value {
        let (code, j, err) = self.until_done(args);
        assert_eq!(code, 0, "{args:?} ({}): {err}\n{j}", relay.summary());
        j["profiles"][0].clone()
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// 40 small files (bundles), two of a few hundred KiB, and one large file in `parts` parts.
fn make_tree(root: &Path, large: usize) {
    for i in 0..40 {
        write(
            root,
            &format!("small/{i}.txt"),
            format!("file {i}\n").repeat(i * 40 + 1).as_bytes(),
        );
    }
    write(root, "mid/one.bin", &content(300_000, 1));
    write(root, "mid/two.bin", &content(200_000, 2));
    write(root, "large.bin", &content(large, 3));
}

/// sync, change, sync, restore, recover (and a sync on the recovered catalog), all through the
/// relay at `percent` % faults.
fn round_trip(env: &Env, relay: &FaultRelay, endpoint_profile: &str, tier: &str) {
    let src = env.path("src");
    let p = env.ok(&["sync"], relay);
    assert_eq!(p["new"], 43, "{p}");
    write(&src, "small/0.txt", b"edited\n");
    write(&src, "small/new.txt", b"new file\n");
    std::fs::remove_file(src.join("mid/two.bin")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let p = env.ok(&["sync"], relay);
    assert_eq!(
        (p["changed"].as_u64(), p["new"].as_u64()),
        (Some(1), Some(1)),
        "{p}"
    );

    env.ok(&["restore", "--to", "out", "--tier", tier], relay);
    cli::assert_same_tree(&src, &env.path("out/path"));

    env.settings(&relay.url, "db2", endpoint_profile);
    let p = env.ok(&["recover", "--tier", tier], relay);
    assert_eq!(p["state"], "recovered", "{p}");
    let p = env.ok(&["sync"], relay);
    assert_eq!(
        (p["unchanged"].as_u64(), p["archives_uploaded"].as_u64()),
        (Some(43), Some(0)),
        "{p}"
    );
}

fn s3_env(moto: &str, relay: &FaultRelay) -> (Env, String) {
    let bucket = moto::unique("gs-faults");
    let (status, body) = moto::request(moto, "PUT", &format!("/{bucket}"), &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    let env = Env::new();
    let profile = format!(
        "backend = s3\nbucket = {bucket}\nstorage_class = DEEP_ARCHIVE\npart_size = 5MiB\n"
    );
    env.settings(&relay.url, "db", &profile);
    (env, profile)
}

#[test]
fn s3_deep_archive_at_10_percent_faults() {
    let Some(moto) = moto::url() else { return };
    let relay = FaultRelay::start(&moto);
    let (env, profile) = s3_env(&moto, &relay);
    // 12 MiB: three parts of 5 MiB or less.
    make_tree(&env.path("src"), 12 << 20);
    relay.set_faults(10);
    round_trip(&env, &relay, &profile, "standard");
    report("s3 at 10 %:", &relay);
    assert!(relay.faults() > 0, "{}", relay.summary());
}

/// A catalog copy's download that breaks off (twice, after half its bytes) is continued where
/// it stopped, as any other download is; `recover` does not give up.
#[test]
fn recover_continues_a_broken_catalog_download() {
    let Some(moto) = moto::url() else { return };
    let relay = FaultRelay::start(&moto);
    let (env, profile) = s3_env(&moto, &relay);
    make_tree(&env.path("src"), 1 << 20);
    env.ok(&["sync"], &relay);
    env.settings(&relay.url, "db2", &profile);
    // Only the GETs of the catalog copy.
    relay.fault_next(
        ".sqlite3.zst?x-id=GetObject",
        fault_relay::Fault::Truncate,
        2,
    );
    let p = env.ok(&["recover"], &relay);
    assert_eq!(p["state"], "recovered", "{p}");
    assert_eq!(relay.faults(), 2, "{}", relay.summary());
    let p = env.ok(&["ls"], &relay);
    assert_eq!(p["files"].as_array().unwrap().len(), 43, "{p}");
}

#[test]
fn vault_at_10_percent_faults() {
    let server = glacier_server::Server::start(&[]);
    let relay = FaultRelay::start(&server.url());
    let env = Env::new();
    let profile = "vault_name = faults\npart_size = 1MiB\n".to_string();
    env.settings(&relay.url, "db", &profile);
    // 3.5 MiB: four parts of 1 MiB or less.
    make_tree(&env.path("src"), 7 << 19);
    relay.set_faults(10);
    round_trip(&env, &relay, &profile, "expedited");
    report("vault at 10 %:", &relay);
    assert!(relay.faults() > 0, "{}", relay.summary());
}

/// moto's Glacier (no multipart there: the large file fits in one upload).
#[test]
fn moto_vault_at_10_percent_faults() {
    let Some(moto) = moto::url() else { return };
    let relay = FaultRelay::start(&moto);
    let env = Env::new();
    let profile = format!(
        "vault_name = {}\npart_size = 8MiB\n",
        moto::unique("gs-faults")
    );
    env.settings(&relay.url, "db", &profile);
    make_tree(&env.path("src"), 1 << 20);
    relay.set_faults(10);
    round_trip(&env, &relay, &profile, "expedited");
    report("moto vault at 10 %:", &relay);
    assert!(relay.faults() > 0, "{}", relay.summary());
}

#[test]
fn s3_restore_and_recover_at_30_percent_faults() {
    let Some(moto) = moto::url() else { return };
    let relay = FaultRelay::start(&moto);
    let (env, profile) = s3_env(&moto, &relay);
    make_tree(&env.path("src"), 6 << 20);
    env.ok(&["sync"], &relay);
    relay.set_faults(30);
    env.ok(&["restore", "--to", "out"], &relay);
    cli::assert_same_tree(&env.path("src"), &env.path("out/path"));
    env.settings(&relay.url, "db2", &profile);
    let p = env.ok(&["recover"], &relay);
    assert_eq!(p["state"], "recovered", "{p}");
    relay.set_faults(0);
    let p = env.ok(&["ls"], &relay);
    assert_eq!(p["files"].as_array().unwrap().len(), 43, "{p}");
    report("s3 at 30 %:", &relay);
    assert!(relay.faults() > 0, "{}", relay.summary());
}

#[test]
fn vault_restore_and_recover_at_30_percent_faults() {
    let server = glacier_server::Server::start(&[]);
    let relay = FaultRelay::start(&server.url());
    let env = Env::new();
    let profile = "vault_name = faults30\npart_size = 1MiB\n".to_string();
    env.settings(&relay.url, "db", &profile);
    make_tree(&env.path("src"), 5 << 19);
    env.ok(&["sync"], &relay);
    relay.set_faults(30);
    env.ok(&["restore", "--to", "out", "--tier", "expedited"], &relay);
    cli::assert_same_tree(&env.path("src"), &env.path("out/path"));
    env.settings(&relay.url, "db2", &profile);
    let p = env.ok(&["recover", "--tier", "expedited"], &relay);
    assert_eq!(p["state"], "recovered", "{p}");
    report("vault at 30 %:", &relay);
    assert!(relay.faults() > 0, "{}", relay.summary());
}
