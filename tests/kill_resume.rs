//! A multipart upload interrupted by `kill -9` of the real CLI resumes on the next `sync`
//! without sending again any part the service already stored: on S3 (moto, through the relay
//! of `common/s3_relay.rs`, which also counts UploadPart and CompleteMultipartUpload requests)
//! and on a Glacier vault (the strict server of `common/glacier_server.rs`, whose counters and
//! request log say what was sent).
//!
//! Each test starts `glaciersync sync`, waits until K parts of the large file went out, kills
//! the process with SIGKILL (`Child::kill`), looks at what the service holds, syncs again and
//! checks that the second run sent exactly the parts that were missing, completed the upload
//! once, and that a restore gives the tree back byte for byte.
//!
//! A third test kills the sync of one profile while another profile shares its Glacier vault:
//! the other profile, synced first by the next run, must leave the interrupted upload alone.
//!
//! The S3 test needs moto (`GLACIERSYNC_TEST_MOTO`, as `scripts/test.sh` sets it); without it it
//! is skipped with a note, unless `GLACIERSYNC_TEST_DISALLOW_SKIP=1` (then it fails).

#[path = "common/glacier_server.rs"]
mod glacier_server;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/s3_relay.rs"]
mod s3_relay;

use glacier_server::Server;
use glaciersync::backend::testsuite::{content, meta_for};
use glaciersync::backend::{ObjectKind, object_key};
use s3_relay::Relay;
use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
/// Uploads in flight at once (settings `concurrency`): at most this many parts can be cut short
/// by the kill.
const CONCURRENCY: usize = 2;
/// How often the tests look at the service while a sync runs.
const POLL: Duration = Duration::from_millis(20);
/// The longest any one command may take before the test gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);
const SIGKILL: i32 = 9;
/// How long the peers hold back the answer to each part while the sync to be killed runs.
const IN_FLIGHT: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------------
// Peers

/// A bare, unsigned exchange with moto: (status, body).
fn http(base: &str, method: &str, path: &str) -> (u16, String) {
    moto::request(base, method, path, &[], "")
        .unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"))
}

/// The texts of every `<tag>…</tag>` in `xml`, in order.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(rest[..end].to_string());
        rest = &rest[end + close.len()..];
    }
    out
}

/// Incomplete multipart uploads in `bucket`: (key, upload id).
fn s3_uploads(moto: &str, bucket: &str) -> Vec<(String, String)> {
    let (status, body) = http(moto, "GET", &format!("/{bucket}?uploads"));
    assert_eq!(status, 200, "ListMultipartUploads: {body}");
    body.split("<Upload>")
        .skip(1)
        .map(|u| {
            (
                xml_values(u, "Key").remove(0),
                xml_values(u, "UploadId").remove(0),
            )
        })
        .collect()
}

/// The part numbers an upload holds.
fn s3_parts(moto: &str, bucket: &str, key: &str, upload_id: &str) -> BTreeSet<u32> {
    let (status, body) = http(
        moto,
        "GET",
        &format!("/{bucket}/{key}?uploadId={upload_id}"),
    );
    assert_eq!(status, 200, "ListParts: {body}");
    xml_values(&body, "PartNumber")
        .iter()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The keys of the objects in `bucket`, leaving out the owner markers (`owners/`: empty, no
/// archives; docs/catalog.md).
fn s3_objects(moto: &str, bucket: &str) -> Vec<String> {
    let (status, body) = http(moto, "GET", &format!("/{bucket}?list-type=2"));
    assert_eq!(status, 200, "ListObjectsV2: {body}");
    xml_values(&body, "Key")
        .into_iter()
        .filter(|k| !k.contains("/owners/"))
        .collect()
}

/// Reads `read` until two readings `interval` apart agree and `done` accepts them: what a
/// service holds once the requests a killed client had sent have been served.
fn settled<T: PartialEq>(
    interval: Duration,
    mut read: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = read();
    loop {
        std::thread::sleep(interval);
        let now = read();
        if now == last && done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "the service never settled");
        last = now;
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI

/// A scratch directory with `s.ini`, the tree `src` of profile `p`, and the catalogs in `db`.
struct Env {
    dir: tempfile::TempDir,
    runs: std::cell::Cell<u32>,
}

impl Env {
    /// `profiles`: the profile sections, `[p]` with `path = src` among them.
    fn new(endpoint: &str, profiles: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("s.ini"),
            format!(
                "[global]\naws_access_key = testing\naws_secret_key = testing\n\
                 aws_region_name = us-east-1\nendpoint_url = {endpoint}\ndatabase_dir = db\n\
                 concurrency = {CONCURRENCY}\n\n{profiles}"
            ),
        )
        .unwrap();
        Env {
            dir,
            runs: std::cell::Cell::new(0),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A tree of a few small files (one bundle) and one large file of `large` random bytes;
    /// returns the large file's bytes.
    fn make_tree(&self, large: usize, seed: u64) -> Vec<u8> {
        let src = self.path("src");
        std::fs::create_dir_all(src.join("small")).unwrap();
        for i in 0..5u64 {
            std::fs::write(
                src.join(format!("small/{i}.txt")),
                content(1000 + 100 * i as usize, seed + 1 + i),
            )
            .unwrap();
        }
        let data = content(large, seed);
        std::fs::write(src.join("large.bin"), &data).unwrap();
        data
    }

    /// Starts `glaciersync -c s.ini --json ARGS`; stdout and stderr go to files.
    fn spawn(&self, args: &[&str]) -> (Child, PathBuf, PathBuf) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let out = self.path(&format!("run{n}.out"));
        let err = self.path(&format!("run{n}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_glaciersync"))
            .current_dir(self.dir.path())
            .env("GLACIERSYNC_RETRY_BASE_MS", "50")
            .args(["-c", "s.ini", "--json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("glaciersync starts");
        (child, out, err)
    }

    /// Runs a command to its end: (exit code, the JSON of profile `p`, stderr).
    fn run(&self, args: &[&str]) -> (i32, Value, String) {
        let (mut child, out, err) = self.spawn(args);
        let status = wait_with_deadline(&mut child, COMMAND_DEADLINE, args);
        let stderr = std::fs::read_to_string(&err).unwrap();
        let stdout = std::fs::read(&out).unwrap();
        let json: Value = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: bad JSON ({e}); stderr: {stderr}"));
        let p = json["profiles"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "p"))
            .unwrap_or_else(|| panic!("{args:?}: no profile p in {json}; stderr: {stderr}"))
            .clone();
        (status.code().unwrap_or(-1), p, stderr)
    }

    /// Starts `sync`, waits until `ready` says so, and kills the process with SIGKILL.
    fn sync_killed_when(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let (child, _, err) = self.spawn(&["sync"]);
        let mut child = KillOnDrop(child);
        let child = &mut child.0;
        let deadline = Instant::now() + COMMAND_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "sync ended ({status}) before {what}: make the large file larger\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            if ready() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {what} after {COMMAND_DEADLINE:?}\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(POLL);
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "sync was killed, not finished: {status}"
        );
    }

    fn catalog(&self) -> PathBuf {
        self.path("db/p.sqlite3")
    }
}

/// A child process that a failing test does not leave running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration, what: &[&str]) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what:?} did not finish within {limit:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// Archives of `kind` the catalog records, read as any SQLite reader would while a sync writes
/// it (WAL mode); 0 while it cannot be read (not created yet, busy).
fn recorded_archives(catalog: &Path, kind: &str) -> u64 {
    let read = || -> rusqlite::Result<u64> {
        let db = rusqlite::Connection::open_with_flags(
            catalog,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        db.query_row(
            "SELECT count(*) FROM archives WHERE kind = ?1",
            [kind],
            |row| row.get(0),
        )
    };
    read().unwrap_or(0)
}

/// Two trees hold the same files with the same bytes.
fn assert_same_tree(want: &Path, got: &Path) {
    fn files(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    files(want, want, &mut a);
    files(got, got, &mut b);
    assert_eq!(a, b, "the same files");
    for rel in &a {
        assert!(
            std::fs::read(want.join(rel)).unwrap() == std::fs::read(got.join(rel)).unwrap(),
            "{} differs",
            rel.display()
        );
    }
}

/// Checks what the second run sent against what the service held after the kill: every
/// missing part sent once, none of the stored ones again, and no more than the bound the
/// kill allows (K counted when the process died, at most `CONCURRENCY` of them cut short).
fn assert_only_missing_parts_sent(
    total: usize,
    counted_at_kill: usize,
    stored: &BTreeSet<u32>,
    sent: &[u32],
) {
    let sent_set: BTreeSet<u32> = sent.iter().copied().collect();
    assert_eq!(sent.len(), sent_set.len(), "no part sent twice: {sent:?}");
    assert!(
        sent_set.is_disjoint(stored),
        "parts already stored were sent again: sent {sent:?}, stored {stored:?}"
    );
    let all: BTreeSet<u32> = (1..=total as u32).collect();
    let missing: BTreeSet<u32> = all.difference(stored).copied().collect();
    assert_eq!(sent_set, missing, "exactly the missing parts were sent");
    assert!(
        sent.len() <= total - (counted_at_kill.saturating_sub(CONCURRENCY)),
        "{} parts sent; at most {total} - ({counted_at_kill} - {CONCURRENCY})",
        sent.len()
    );
}

// ---------------------------------------------------------------------------------------------
// S3

/// Parts of the large file counted before the kill.
const S3_KILL_AFTER: usize = 5;
const S3_PART: usize = 5 * MIB;

#[test]
fn s3_upload_killed_midway_resumes_without_resending_parts() {
    let Some(moto) = moto::url() else { return };
    let bucket = moto::unique("gs-kill");
    let (status, body) = http(&moto, "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "CreateBucket: {body}");
    let relay = Relay::start(&moto);
    // STANDARD: moto lists every incomplete upload as STANDARD whatever class it was started
    // with, and the backend resumes only uploads of the class it would write (on AWS an upload
    // started for DEEP_ARCHIVE is listed as DEEP_ARCHIVE). In any other class the resume would
    // not be found on moto, though it would be on AWS.
    let env = Env::new(
        &relay.url,
        &format!(
            "[p]\npath = src\nbackend = s3\nbucket = {bucket}\nstorage_class = STANDARD\n\
             part_size = 5MiB\n"
        ),
    );
    let large = env.make_tree(60 * MIB + 12_345, 71);
    let total = large.len().div_ceil(S3_PART);
    assert_eq!(total, 13);
    let key = format!("p/{}", object_key(&meta_for(ObjectKind::File, &large)));
    let parts_of = |reqs: &[s3_relay::Request]| -> Vec<u32> {
        reqs.iter()
            .filter(|r| r.is_upload_part() && r.is_for(&key))
            .map(|r| r.part_number().unwrap())
            .collect()
    };

    // The kill comes once K parts went out and the bundle of small files is recorded. A
    // bundle the service stored but the catalog had not recorded yet when the kill came would
    // be left as an object unknown to the catalog (the next run writes its files into a new
    // bundle, whose members may come in another order and so have another key), and `verify
    // --remote` would rightly report it. Waiting for the record makes the outcome exact: no
    // stray object at all.
    //
    // Answers to parts are held back a little, so that the kill finds parts in flight: stored
    // by moto, or cut short, but never acknowledged to the process that sent them.
    relay.delay_upload_part_answers(IN_FLIGHT);
    let mut unacknowledged = 0;
    env.sync_killed_when("K parts and a recorded bundle", || {
        let parts: Vec<_> = relay
            .requests()
            .into_iter()
            .filter(|r| r.is_upload_part())
            .collect();
        unacknowledged = parts.iter().filter(|r| !r.delivered).count();
        parts.len() >= S3_KILL_AFTER && recorded_archives(&env.catalog(), "bundle") >= 1
    });
    relay.delay_upload_part_answers(Duration::ZERO);
    // Bytes the dead process had already written may still reach the relay, and parts fully
    // sent may still be stored: wait until moto has answered every part that reached it whole
    // (a part cut short never will be).
    settled(
        Duration::from_millis(200),
        || -> Vec<(bool, bool)> {
            let parts = relay.requests().into_iter().filter(|r| r.is_upload_part());
            parts.map(|r| (r.whole, r.status.is_some())).collect()
        },
        |parts| parts.iter().all(|&(whole, answered)| answered || !whole),
    );
    let uploads = s3_uploads(&moto, &bucket);
    let ours: Vec<&(String, String)> = uploads.iter().filter(|(k, _)| *k == key).collect();
    assert_eq!(
        ours.len(),
        1,
        "one incomplete upload of the large file: {uploads:?}"
    );
    let upload_id = ours[0].1.clone();
    let stored = s3_parts(&moto, &bucket, &key, &upload_id);
    let first_run = relay.requests();
    let counted_at_kill = parts_of(&first_run).len();
    assert!(counted_at_kill >= S3_KILL_AFTER);
    assert!(
        stored.len() >= counted_at_kill.saturating_sub(CONCURRENCY)
            && stored.len() <= counted_at_kill,
        "{} parts stored of {counted_at_kill} sent before the kill",
        stored.len()
    );
    assert!(stored.len() < total, "the upload was not finished");
    assert_eq!(relay.complete_multipart_uploads(), 0, "nothing completed");
    let (status, _) = http(&moto, "HEAD", &format!("/{bucket}/{key}"));
    assert_eq!(status, 404, "the large file is not stored yet");
    eprintln!(
        "s3: killed after {counted_at_kill} UploadPart requests ({unacknowledged} not yet \
         acknowledged when the kill was decided); {} of {total} parts stored ({stored:?})",
        stored.len(),
    );

    // The next sync resumes the upload and sends only what is missing.
    let (code, p, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["resumed"], true, "the killed snapshot is resumed: {p}");
    assert_eq!(
        p["archives_uploaded"], 2,
        "the large file and the catalog copy (the bundle was recorded before the kill): {p}"
    );
    let second_run = &relay.requests()[first_run.len()..];
    let sent = parts_of(second_run);
    eprintln!(
        "s3: the second run sent {} parts ({sent:?}); bound {}",
        sent.len(),
        total - (counted_at_kill.saturating_sub(CONCURRENCY))
    );
    assert_only_missing_parts_sent(total, counted_at_kill, &stored, &sent);
    for r in second_run.iter().filter(|r| r.is_for(&key)) {
        assert!(
            r.param("uploads").is_none(),
            "no new upload was started: {r:?}"
        );
        if let Some(id) = r.param("uploadId") {
            assert_eq!(
                id, upload_id,
                "the interrupted upload is the one resumed: {r:?}"
            );
        }
    }
    assert!(
        second_run
            .iter()
            .any(|r| r.is_list_parts() && r.is_for(&key)),
        "the stored parts were listed"
    );
    let completes: Vec<_> = second_run
        .iter()
        .filter(|r| r.is_complete_multipart())
        .collect();
    assert_eq!(completes.len(), 1, "{completes:?}");
    assert!(completes[0].is_for(&key) && completes[0].status == Some(200));
    assert_eq!(relay.complete_multipart_uploads(), 1, "one complete in all");
    assert!(
        s3_uploads(&moto, &bucket).is_empty(),
        "no incomplete upload is left"
    );
    let (status, _) = http(&moto, "HEAD", &format!("/{bucket}/{key}"));
    assert_eq!(status, 200, "the large file is stored");

    let (code, p, err) = env.run(&["restore", "--to", "out"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_same_tree(&env.path("src"), &env.path("out/path"));

    // Every object in the bucket is one the catalog knows, and every archive it knows is
    // there: the incomplete upload was completed (it was never an object), and nothing was
    // stored without being recorded (see the kill above).
    let (code, p, err) = env.run(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["problems"], serde_json::json!([]), "{p}");
    let objects = s3_objects(&moto, &bucket);
    assert_eq!(
        p["checked_archives"].as_u64(),
        Some(objects.len() as u64),
        "{objects:?}"
    );
    assert_eq!(
        objects.len(),
        3,
        "the bundle, the large file and the second run's catalog copy: {objects:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Glacier

/// Parts of the large file counted before the kill.
const GLACIER_KILL_AFTER: usize = 6;
const GLACIER_PART: usize = MIB;
const VAULT: &str = "kill-vault";

/// The first bytes of the parts an UploadMultipartPart log entry names, as part numbers from 1.
fn glacier_parts(log: &[Value]) -> Vec<u32> {
    log.iter()
        .filter(|e| e["op"] == "UploadMultipartPart")
        .map(|e| {
            let range = e["Content-Range"].as_str().expect("a Content-Range");
            let start: usize = range
                .trim_start_matches("bytes ")
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (start / GLACIER_PART) as u32 + 1
        })
        .collect()
}

fn count_op(log: &[Value], op: &str) -> usize {
    log.iter().filter(|e| e["op"] == op).count()
}

#[test]
fn glacier_upload_killed_midway_resumes_without_resending_parts() {
    glacier_kill_and_resume(false);
}

/// The same, with another profile in the same vault synced before: its end-of-sync cleanup
/// must leave the interrupted upload of `p` for `p` to resume.
#[test]
fn glacier_upload_killed_midway_survives_another_profiles_cleanup() {
    glacier_kill_and_resume(true);
}

fn glacier_kill_and_resume(other_profile_first: bool) {
    let server = Server::start(&[]);
    let p = format!("[p]\npath = src\nvault_name = {VAULT}\npart_size = 1MiB\n");
    let env = if other_profile_first {
        let env = Env::new(
            &server.url(),
            &format!("[other]\npath = other\nvault_name = {VAULT}\n\n{p}"),
        );
        std::fs::create_dir_all(env.path("other")).unwrap();
        for i in 0..3 {
            std::fs::write(env.path(&format!("other/{i}.txt")), content(500, 80 + i)).unwrap();
        }
        env
    } else {
        Env::new(&server.url(), &p)
    };
    let large = env.make_tree(24 * MIB, 72);
    let total = large.len().div_ceil(GLACIER_PART);
    let log = || -> Vec<Value> { server.counters()["log"].as_array().unwrap().clone() };

    // Parts are stored a little after their bodies arrived, so that the kill finds parts in
    // flight that the server goes on to store without the process ever hearing of it.
    let slow = |seconds: f64| {
        server.control(serde_json::json!({
            "action": "slow", "operation": "UploadMultipartPart", "seconds": seconds
        }));
    };
    slow(IN_FLIGHT.as_secs_f64());
    env.sync_killed_when("K parts", || {
        server.count("UploadMultipartPart") >= GLACIER_KILL_AFTER as u64
    });
    slow(0.0);
    // The server counts a part once its body has arrived, and stores it after the delay; a
    // part the kill cut short arrives short, is counted, and refused. Wait until what arrived
    // is served: no change for four times the delay.
    let state = settled(4 * IN_FLIGHT, || server.state(VAULT), |_| true);
    let first_run = log();
    let counted_at_kill = count_op(&first_run, "UploadMultipartPart");
    let uploads = state["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 1, "one incomplete upload: {state}");
    let stored: BTreeSet<u32> = uploads[0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s.as_u64().unwrap() as usize / GLACIER_PART) as u32 + 1)
        .collect();
    assert!(
        stored.len() >= counted_at_kill.saturating_sub(CONCURRENCY)
            && stored.len() <= counted_at_kill,
        "{} parts stored of {counted_at_kill} counted before the kill",
        stored.len()
    );
    assert!(stored.len() < total, "the upload was not finished");
    assert_eq!(count_op(&first_run, "CompleteMultipartUpload"), 0);
    eprintln!(
        "glacier: killed after {counted_at_kill} UploadMultipartPart requests; {} of {total} \
         parts stored ({stored:?})",
        stored.len()
    );

    let (code, p, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["resumed"], true, "the killed snapshot is resumed: {p}");
    let second_run = log()[first_run.len()..].to_vec();
    let sent = glacier_parts(&second_run);
    eprintln!(
        "glacier: the second run sent {} parts ({sent:?}); bound {}",
        sent.len(),
        total - (counted_at_kill.saturating_sub(CONCURRENCY))
    );
    assert_only_missing_parts_sent(total, counted_at_kill, &stored, &sent);
    assert!(
        count_op(&second_run, "ListParts") >= 1,
        "the stored parts were listed"
    );
    assert_eq!(
        count_op(&second_run, "InitiateMultipartUpload"),
        0,
        "no new upload was started"
    );
    assert_eq!(count_op(&second_run, "CompleteMultipartUpload"), 1);
    let state = server.state(VAULT);
    assert_eq!(
        state["uploads"],
        serde_json::json!([]),
        "no incomplete upload is left"
    );
    let archives = state["archives"].as_array().unwrap();
    assert!(
        archives
            .iter()
            .any(|a| a["size"].as_u64() == Some(large.len() as u64)),
        "the large file is an archive: {state}"
    );

    // Retrieval jobs: the first run starts them and waits (75); the server finishes jobs at
    // once, so the second downloads everything.
    let (code, p, err) = env.run(&["-p", "p", "restore", "--to", "out"]);
    assert_eq!(code, 75, "{err}\n{p}");
    assert!(p["requested"].as_u64().unwrap() > 0, "{p}");
    let (code, p, err) = env.run(&["-p", "p", "restore", "--to", "out"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["requested"], 0, "nothing requested twice: {p}");
    assert_same_tree(&env.path("src"), &env.path("out/path"));
}

/// With encryption on, the ciphertext of the killed upload is kept in the profile's staging
/// directory: the next sync finds the same incomplete upload (its key is the ciphertext's
/// hash) and sends only the parts it lacks, byte for byte the same ciphertext.
#[test]
fn s3_encrypted_upload_killed_midway_resumes_with_the_same_ciphertext() {
    let Some(moto) = moto::url() else { return };
    let bucket = moto::unique("gs-kill-age");
    let (status, body) = http(&moto, "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "CreateBucket: {body}");
    let relay = Relay::start(&moto);
    let keys = glaciersync::backend::crypt::AgeKeys::generate();
    let identity = keys.identities.as_ref().unwrap()[0].clone();
    let recipient = keys.recipients[0].to_string();
    let dir = tempfile::tempdir().unwrap();
    let id_file = dir.path().join("key.txt");
    {
        use glaciersync::backend::crypt::ExposeSecret;
        std::fs::write(
            &id_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
    }
    let env = Env::new(
        &relay.url,
        &format!(
            "[p]\npath = src\nbackend = s3\nbucket = {bucket}\nstorage_class = STANDARD\n\
             part_size = 5MiB\nage_recipients = {recipient}\nage_identity_file = {}\n",
            id_file.display()
        ),
    );
    let large = env.make_tree(40 * MIB + 777, 72);
    // 40 MiB of plaintext and 640 tags of 16 bytes and the header: 9 parts of 5 MiB.
    let total = (large.len() + 640 * 16 + 300).div_ceil(S3_PART);
    let data_key = || -> Option<String> {
        s3_uploads(&moto, &bucket)
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| k.starts_with("p/data/") && k.ends_with(".age"))
    };
    relay.delay_upload_part_answers(IN_FLIGHT);
    env.sync_killed_when("K parts and a recorded bundle", || {
        let parts = relay
            .requests()
            .into_iter()
            .filter(|r| r.is_upload_part())
            .count();
        parts >= S3_KILL_AFTER && recorded_archives(&env.catalog(), "bundle") >= 1
    });
    relay.delay_upload_part_answers(Duration::ZERO);
    settled(
        Duration::from_millis(200),
        || -> Vec<(bool, bool)> {
            let parts = relay.requests().into_iter().filter(|r| r.is_upload_part());
            parts.map(|r| (r.whole, r.status.is_some())).collect()
        },
        |parts| parts.iter().all(|&(whole, answered)| answered || !whole),
    );
    let key = data_key().expect("an incomplete upload of the encrypted large file");
    let uploads: Vec<_> = s3_uploads(&moto, &bucket)
        .into_iter()
        .filter(|(k, _)| *k == key)
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let upload_id = uploads[0].1.clone();
    let stored = s3_parts(&moto, &bucket, &key, &upload_id);
    let first_run = relay.requests();
    let parts_of = |reqs: &[s3_relay::Request]| -> Vec<u32> {
        reqs.iter()
            .filter(|r| r.is_upload_part() && r.is_for(&key))
            .map(|r| r.part_number().unwrap())
            .collect()
    };
    let counted_at_kill = parts_of(&first_run).len();
    assert!(stored.len() < total, "the upload was not finished");

    let (code, p, err) = env.run(&["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    let second_run = &relay.requests()[first_run.len()..];
    let sent = parts_of(second_run);
    assert_only_missing_parts_sent(total, counted_at_kill, &stored, &sent);
    assert!(
        second_run
            .iter()
            .filter(|r| r.is_for(&key))
            .all(|r| r.param("uploads").is_none()),
        "no new upload of the large file: the same ciphertext, the same key"
    );
    assert!(
        s3_uploads(&moto, &bucket).is_empty(),
        "no incomplete upload is left"
    );
    assert!(
        std::fs::read_dir(env.path("db/p.age-staging")).map_or(true, |d| d.count() == 0),
        "the staged ciphertext is gone once stored"
    );
    let (code, p, err) = env.run(&["restore", "--to", "out"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_same_tree(&env.path("src"), &env.path("out/path"));
    let (code, p, err) = env.run(&["verify", "--remote"]);
    assert_eq!(code, 0, "{err}\n{p}");
    assert_eq!(p["problems"], serde_json::json!([]), "{p}");
}
