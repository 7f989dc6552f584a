//! `prune` and the restore cost cap against moto's S3 and Glacier: a dead `DEEP_ARCHIVE`
//! object stored today is held 180 days while a dead `STANDARD` one is deleted; a vault holds
//! 90 days; `restore --max-cost` refuses before the server sees any restore request.
//! `scripts/test.sh` starts moto and sets `GLACIERSYNC_TEST_MOTO`.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/s3_relay.rs"]
mod s3_relay;

use serde_json::Value;
use std::path::{Path, PathBuf};

const DAY: i64 = 86_400;

struct Env {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Env {
    fn new(endpoint: &str) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            endpoint: endpoint.to_string(),
        };
        std::fs::create_dir_all(env.path("src")).unwrap();
        env
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn settings(&self, profile_body: &str) {
        let text = format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\n\
             aws_region_name = us-east-1\nendpoint_url = {}\ndatabase_dir = db\n\n[p]\n\
             path = src\narchive_byte_size_threshold = 64KiB\n{profile_body}\n",
            self.endpoint
        );
        std::fs::write(self.path("s.ini"), text).unwrap();
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.path("src").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    /// Runs a command that must exit `code`; returns profile 0 of its JSON.
    #[track_caller]
    fn ok(&self, code: i32, args: &[&str]) -> Value {
        let (c, j, err) = cli::run_json(self.dir.path(), args);
        assert_eq!(c, code, "{args:?}: {err}\n{j:#}");
        j["profiles"][0].clone()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// The keys of a bucket, as moto lists them.
fn keys(moto: &str, bucket: &str) -> String {
    let (status, body) =
        moto::request(moto, "GET", &format!("/{bucket}?list-type=2"), &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn big(n: u8) -> Vec<u8> {
    (0..200_000u32).map(|i| (i as u8) ^ n).collect()
}

fn held_ids(plan: &Value) -> Vec<String> {
    plan["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["remote_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn s3_dead_deep_archive_is_held_180_days_and_dead_standard_is_deleted() {
    let Some(moto) = moto::url() else { return };
    let bucket = moto::unique("gs-prune");
    let (status, body) = moto::request(&moto, "PUT", &format!("/{bucket}"), &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    let env = Env::new(&moto);
    let deep =
        format!("backend = s3\nbucket = {bucket}\nstorage_class = DEEP_ARCHIVE\nkeep_last = 1\n");
    env.settings(&deep);
    env.write("small.txt", b"stays");
    let t0 = Env::now();
    for n in 1..=2 {
        env.write("big.bin", &big(n));
        env.ok(0, &["sync"]);
    }
    let t1 = Env::now();
    // big.bin's first version, in DEEP_ARCHIVE since today: held, not deleted.
    let plan = env.ok(0, &["prune", "--dry-run"]);
    let held = &plan["held"][0];
    assert_eq!(plan["archives_held"], 1, "{plan:#}");
    assert_eq!(plan["archives_deleted"], 0, "{plan:#}");
    assert_eq!(held["place"], "s3:DEEP_ARCHIVE");
    let stored = held["stored_at"].as_i64().unwrap();
    assert!((t0..=t1).contains(&stored), "{held}");
    assert_eq!(held["held_until"].as_i64().unwrap(), stored + 180 * DAY);
    let first = held["remote_id"].as_str().unwrap().to_string();
    let done = env.ok(0, &["prune"]);
    assert_eq!(done["archives_held"], 1, "{done:#}");
    assert_eq!(done["held_until"], plan["held_until"]);
    assert!(
        keys(&moto, &bucket).contains(&format!("p/{first}")),
        "held: still stored"
    );
    let status = env.ok(0, &["status"]);
    assert_eq!(status["dead_bytes_held"], 200_000, "{status:#}");

    // Data now goes to STANDARD: its dead objects have no minimum duration.
    env.settings(&deep.replace("DEEP_ARCHIVE", "STANDARD"));
    for n in 3..=4 {
        env.write("big.bin", &big(n));
        env.ok(0, &["sync"]);
    }
    let plan = env.ok(0, &["prune", "--dry-run"]);
    // The second version (DEEP_ARCHIVE) joins the held; the third (STANDARD) goes now.
    assert_eq!(plan["archives_held"], 2, "{plan:#}");
    let gone: Vec<&Value> = plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "file")
        .collect();
    assert_eq!(gone.len(), 1, "{plan:#}");
    assert_eq!(gone[0]["place"], "s3:STANDARD");
    let third = gone[0]["remote_id"].as_str().unwrap().to_string();
    env.ok(0, &["prune"]);
    let listed = keys(&moto, &bucket);
    assert!(!listed.contains(&format!("p/{third}")), "STANDARD: deleted");
    for id in held_ids(&plan) {
        assert!(
            listed.contains(&format!("p/{id}")),
            "{id} held: still stored"
        );
    }
    env.ok(0, &["verify", "--remote"]);
    // (small.txt's bundle is in DEEP_ARCHIVE, which a profile now on STANDARD does not thaw.)
    env.ok(0, &["restore", "--to", "out", "path/big.bin"]);
    assert_eq!(std::fs::read(env.path("out/path/big.bin")).unwrap(), big(4));
}

#[test]
fn glacier_vault_holds_dead_archives_90_days() {
    let Some(moto) = moto::url() else { return };
    let env = Env::new(&moto);
    let vault = moto::unique("gs-prune-vault");
    env.settings(&format!("vault_name = {vault}\nkeep_last = 1\n"));
    env.write("small.txt", b"stays");
    for n in 1..=2 {
        env.write("big.bin", &big(n));
        env.ok(0, &["sync"]);
    }
    let plan = env.ok(0, &["prune", "--dry-run"]);
    assert_eq!(plan["archives_held"], 1, "{plan:#}");
    assert_eq!(plan["archives_deleted"], 0, "{plan:#}");
    let held = &plan["held"][0];
    assert_eq!(held["place"], "glacier");
    let stored = held["stored_at"].as_i64().unwrap();
    assert_eq!(held["held_until"].as_i64().unwrap(), stored + 90 * DAY);
    let done = env.ok(0, &["prune"]);
    assert_eq!(done["snapshots_forgotten"], 1, "{done:#}");
    assert_eq!(done["archives_held"], 1);
    // Still recorded (so still held, not deleted): the next plan holds it again.
    let again = env.ok(0, &["prune", "--dry-run"]);
    assert_eq!(held_ids(&again), held_ids(&plan));
    // min_storage_days lengthens the hold.
    env.settings(&format!(
        "vault_name = {vault}\nkeep_last = 1\nmin_storage_days = 120\n"
    ));
    let longer = env.ok(0, &["prune", "--dry-run"]);
    assert_eq!(
        longer["held"][0]["held_until"].as_i64().unwrap(),
        stored + 120 * DAY
    );
}

fn restore_requests(relay: &s3_relay::Relay) -> usize {
    relay
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.param("restore").is_some())
        .count()
}

/// A profile on moto's S3 (through a relay that counts requests), in a new bucket named after
/// `name`, that stored a large and a small file as DEEP_ARCHIVE; with its settings' body.
fn synced_deep_archive(name: &str) -> Option<(s3_relay::Relay, Env, String)> {
    let moto = moto::url()?;
    let bucket = moto::unique(name);
    let (status, body) = moto::request(&moto, "PUT", &format!("/{bucket}"), &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    let relay = s3_relay::Relay::start(&moto);
    let env = Env::new(&relay.url);
    let body = format!("backend = s3\nbucket = {bucket}\nstorage_class = DEEP_ARCHIVE\n");
    env.settings(&body);
    env.write("big.bin", &big(1));
    env.write("small.txt", b"small");
    env.ok(0, &["sync"]);
    Some((relay, env, body))
}

#[test]
fn max_cost_refuses_a_restore_over_the_cap_and_requests_nothing() {
    let Some((relay, env, body)) = synced_deep_archive("gs-cap") else {
        return;
    };

    let plan = env.ok(
        0,
        &["restore", "--to", "out", "--tier", "standard", "--dry-run"],
    );
    let quote = &plan["quote"];
    assert_eq!(quote["tier"], "standard", "{plan:#}");
    assert_eq!(quote["place"], "s3:DEEP_ARCHIVE");
    assert!(quote["total_usd"].as_f64().unwrap() > 0.0, "{quote}");

    let (code, _, err) = cli::run_json(
        env.dir.path(),
        &[
            "restore",
            "--to",
            "out",
            "--tier",
            "standard",
            "--max-cost",
            "0",
        ],
    );
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for part in [
        "over the cap of $0.00",
        "standard tier",
        "requests",
        "us-east-1",
        "nothing was requested",
    ] {
        assert!(lines[0].contains(part), "{:?} lacks {part:?}", lines[0]);
    }
    // A dry run over the cap says so and exits 2 too, before requesting anything.
    let (code, _, err) = cli::run_json(
        env.dir.path(),
        &[
            "restore",
            "--to",
            "out",
            "--tier",
            "standard",
            "--dry-run",
            "--max-cost",
            "0",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("over the cap of $0.00"), "{err}");
    assert!(err.contains("dry run"), "{err}");
    // The setting is the default cap.
    env.settings(&format!("{body}max_restore_cost = 0.000001\n"));
    let (code, _, err) = cli::run_json(env.dir.path(), &["restore", "--to", "out"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        restore_requests(&relay),
        0,
        "the server saw a restore request"
    );
    assert!(!Path::new(&env.path("out/path/big.bin")).exists());

    // Under the cap the restore goes ahead (and the count above could see requests).
    let (code, _, err) = cli::run_json(
        env.dir.path(),
        &["restore", "--to", "out", "--max-cost", "5"],
    );
    assert!(code == 0 || code == 75, "{err}");
    assert!(restore_requests(&relay) > 0);
}

#[test]
fn the_quote_prices_each_archive_at_the_class_it_was_stored_in() {
    let Some((relay, env, body)) = synced_deep_archive("gs-quote-class") else {
        return;
    };
    // Data now goes to GLACIER; what is stored stays in DEEP_ARCHIVE.
    env.settings(&body.replace("DEEP_ARCHIVE", "GLACIER"));
    let plan = env.ok(
        0,
        &["restore", "--to", "out", "--tier", "standard", "--dry-run"],
    );
    let q = &plan["quote"];
    assert_eq!(q["place"], "s3:DEEP_ARCHIVE", "{q:#}");
    assert_eq!(q["places"][0]["per_gb"], 0.02, "{q:#}");
    assert_eq!(q["places"][0]["per_1000_requests"], 0.10, "{q:#}");
    // DEEP_ARCHIVE's standard tier: $0.02/GB and $0.10 per 1,000 requests; GLACIER's: $0.01
    // and $0.05. A cap between the two quotes refuses the restore.
    let gib = (1u64 << 30) as f64;
    let thaw_gb = q["bytes_to_thaw"].as_f64().unwrap() / gib;
    let requests = q["thaw_requests"].as_f64().unwrap();
    assert_eq!(requests, 2.0, "{q:#}");
    let transfer = q["transfer_usd"].as_f64().unwrap();
    let deep = q["total_usd"].as_f64().unwrap();
    let glacier = thaw_gb * 0.01 + requests * 0.05 / 1000.0 + transfer;
    assert!(
        (deep - (thaw_gb * 0.02 + requests * 0.10 / 1000.0 + transfer)).abs() < 1e-12,
        "{q:#}"
    );
    let cap = format!("{}", (deep + glacier) / 2.0);
    let (code, _, err) = cli::run_json(
        env.dir.path(),
        &[
            "restore",
            "--to",
            "out",
            "--tier",
            "standard",
            "--max-cost",
            &cap,
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s3:DEEP_ARCHIVE"), "{err}");
    assert_eq!(
        restore_requests(&relay),
        0,
        "the server saw a restore request"
    );
}

/// The remote ids of one profile's catalog.
fn recorded(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c.prepare("SELECT remote_id FROM archives").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn prune_unknown_in_a_shared_vault_takes_only_this_profiles_archives() {
    let Some(moto) = moto::url() else { return };
    let env = Env::new(&moto);
    let vault = moto::unique("gs-prune-shared");
    let text = format!(
        "[global]\naws_access_key = testing\naws_secret_key = testing\n\
         aws_region_name = us-east-1\nendpoint_url = {moto}\ndatabase_dir = db\n\n\
         [p]\nvault_name = {vault}\npath = src\n\n[q]\nvault_name = {vault}\npath = src2\n"
    );
    std::fs::write(env.path("s.ini"), text).unwrap();
    env.write("a.txt", b"profile p");
    std::fs::create_dir_all(env.path("src2")).unwrap();
    std::fs::write(env.path("src2/b.txt"), b"profile q").unwrap();
    env.ok(0, &["-p", "p", "sync"]);
    env.ok(0, &["-p", "q", "sync"]);
    // p forgets its catalog copy: an archive of p the catalog does not know.
    let db = env.path("db/p.sqlite3");
    let c = rusqlite::Connection::open(&db).unwrap();
    let copy: String = c
        .query_row(
            "SELECT remote_id FROM archives WHERE kind = 'catalog'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute("DELETE FROM archives WHERE kind = 'catalog'", [])
        .unwrap();
    drop(c);
    let theirs = recorded(&env.path("db/q.sqlite3"));
    assert!(!theirs.is_empty());

    // A dry run starts no inventory and writes nothing: it says the inventory is needed.
    let before = std::fs::read(&db).unwrap();
    let first = env.ok(0, &["-p", "p", "prune", "--unknown", "--dry-run"]);
    assert_eq!(first["inventory_needed"], true, "{first:#}");
    assert!(
        std::fs::read(&db).unwrap() == before,
        "a dry run wrote the catalog"
    );
    // `verify --remote` requests it (75) and keeps its ticket; moto finishes it within
    // seconds, and the dry run then reads it.
    let (code, _, err) = cli::run_json(env.dir.path(), &["-p", "p", "verify", "--remote"]);
    assert_eq!(code, 75, "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let plan = loop {
        let j = env.ok(0, &["-p", "p", "prune", "--unknown", "--dry-run"]);
        if j["inventory_needed"] == false {
            break j;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the inventory never came"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    let unknown: Vec<&Value> = plan["delete"]
        .as_array()
        .unwrap()
        .iter()
        .chain(plan["held"].as_array().unwrap())
        .filter(|a| a["why"] == "unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "{plan:#}");
    assert_eq!(unknown[0]["remote_id"], copy.as_str());
    // Stored today in a vault: held 90 days, not deleted.
    assert_eq!(plan["archives_held"], 1, "{plan:#}");
    for id in &theirs {
        assert!(
            !plan.to_string().contains(id.as_str()),
            "q's archive {id} in p's plan"
        );
    }
}
