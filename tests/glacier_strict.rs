//! The Glacier backend against `tests/servers/glacier_strict.py`, a stdlib-only Python server that
//! follows AWS's documented vault API strictly (checksums, part alignment, megabyte-aligned
//! retrievals, checksums only for tree-hash aligned downloads) and can inject faults.
//!
//! Every test starts its own server (`$GLACIERSYNC_TEST_PYTHON`, else `python3`), so counters and
//! faults belong to that test alone.

use glaciersync::backend::aws::AwsOptions;
use glaciersync::backend::glacier::{GlacierBackend, GlacierOptions, parse_description};
use glaciersync::backend::retry::Retrying;
use glaciersync::backend::testsuite::{self, SuiteOptions, content, meta_for, read_back};
use glaciersync::backend::{Backend, ByteRange, ListOutcome, ObjectKind, Tier, WarmState};
use glaciersync::error::BackendErrorKind;
use glaciersync::hash::{MIB, tree_hash};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const M: usize = MIB as usize;

#[path = "common/glacier_server.rs"]
mod glacier_server;
use glacier_server::Server;

/// The backend under test, pointed at this server.
trait BackendFor {
    fn backend(&self, vault: &str, part_size: u64, concurrency: usize) -> GlacierBackend;
}

impl BackendFor for Server {
    fn backend(&self, vault: &str, part_size: u64, concurrency: usize) -> GlacierBackend {
        GlacierBackend::new(GlacierOptions {
            aws: AwsOptions {
                region: Some("us-east-1".into()),
                endpoint_url: Some(self.url()),
                access_key: Some("testing".into()),
                secret_key: Some("testing".into()),
                profile: None,
                ..Default::default()
            },
            vault: vault.into(),
            part_size,
            concurrency,
        })
        .unwrap()
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn vault_name(test: &str) -> String {
    format!(
        "strict-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn quick_opts() -> SuiteOptions {
    SuiteOptions {
        poll_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        ..Default::default()
    }
}

fn retrying<B: Backend>(b: B) -> Retrying<B> {
    Retrying::new(b, 6, Duration::from_millis(5))
}

fn log_of(server: &Server, op: &str) -> Vec<Value> {
    server.counters()["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["op"] == op)
        .cloned()
        .collect()
}

/// Polls a warm-up until it is ready; returns the ticket.
fn warm(b: &dyn Backend, id: &str, range: Option<ByteRange>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ticket = None;
    loop {
        match b
            .warm_up(id, range, Tier::Expedited, ticket.as_deref())
            .unwrap()
        {
            WarmState::Ready { ticket } => return ticket.expect("Glacier tickets"),
            WarmState::Pending { ticket: t, eta } => {
                assert!(eta <= Duration::from_secs(300), "{eta:?}");
                assert!(Instant::now() < deadline);
                ticket = Some(t);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn conformance_suite_with_one_mib_parts() {
    let server = Server::start(&[]);
    let vault = vault_name("suite");
    let b = server.backend(&vault, MIB, 4);
    // This server's inventory is the vault at the time of the request (AWS's lags by a day), so
    // the listing checks of the suite run too.
    testsuite::run_all(&b, &quick_opts());
    let c = server.counters();
    assert!(
        c["counters"]["UploadMultipartPart"].as_u64().unwrap() >= 6,
        "multipart used: {c}"
    );
    assert!(
        c["counters"]["UploadArchive"].as_u64().unwrap() >= 3,
        "single uploads used: {c}"
    );
    // Every download was tree-hash aligned, so Glacier sent (and we checked) checksums.
    let outputs = log_of(&server, "GetJobOutput");
    assert!(!outputs.is_empty());
    let archive_outputs: Vec<_> = outputs
        .iter()
        .filter(|e| e.get("checksum").is_some())
        .collect();
    assert!(
        archive_outputs.iter().all(|e| e["checksum"] == true),
        "downloads without checksum: {archive_outputs:?}"
    );
    // Nothing left over.
    assert_eq!(server.state(&vault)["uploads"], json!([]));
}

#[test]
fn describe_and_descriptions() {
    let server = Server::start(&[]);
    let vault = vault_name("desc");
    let b = server.backend(&vault, MIB, 2);
    assert_eq!(
        b.describe(),
        format!("glacier vault {vault} (region us-east-1)")
    );
    assert!(b.needs_warm_up(ObjectKind::Bundle) && b.needs_warm_up(ObjectKind::Catalog));
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(3 * M + 5, 1);
    let src = write(dir.path(), "f", &data);
    let mut m = meta_for(ObjectKind::File, &data);
    m.profile = "Fotos für Oma 📷".into();
    let id = b.put(&m, &src).unwrap();
    let state = server.state(&vault);
    let archive = &state["archives"][0];
    assert_eq!(archive["id"], id);
    let desc = archive["description"].as_str().unwrap();
    assert!(
        desc.is_ascii() && desc.len() < 1024 && !desc.contains("/f"),
        "{desc}"
    );
    let parsed = parse_description(desc).unwrap();
    assert_eq!(parsed.profile, m.profile);
    assert_eq!(parsed.tree_hash, m.tree_hash);
    assert_eq!(parsed.kind, ObjectKind::File);
    assert_eq!(archive["tree_hash"], m.tree_hash.to_hex());
    // Empty objects cannot be archives.
    let empty = write(dir.path(), "e", b"");
    let err = b.put(&meta_for(ObjectKind::File, b""), &empty).unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
}

#[test]
fn interrupted_multipart_upload_resumes_with_only_the_missing_parts() {
    // Pages of two make the client follow ListParts and ListMultipartUploads markers.
    let server = Server::start(&["--page-size", "2"]);
    let vault = vault_name("resume");
    let b = server.backend(&vault, MIB, 3);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(5 * M + 100, 2); // six parts
    let src = write(dir.path(), "big", &data);
    let m = meta_for(ObjectKind::File, &data);

    // A decoy: another upload of ours in progress (other content) must not be picked.
    let other = content(2 * M + 1, 3);
    let other_src = write(dir.path(), "other", &other);
    b.set_stop_after_parts(Some(1));
    b.put(&meta_for(ObjectKind::File, &other), &other_src)
        .unwrap_err();

    // The "crash": four parts sent, then the put stops.
    b.set_stop_after_parts(Some(4));
    let err = b.put(&m, &src).unwrap_err();
    assert!(err.to_string().contains("test hook"), "{err}");
    let uploads = server.state(&vault)["uploads"].clone();
    assert_eq!(uploads.as_array().unwrap().len(), 2, "{uploads}");
    assert_eq!(server.count("UploadMultipartPart"), 5);
    assert_eq!(
        server.state(&vault)["archives"],
        json!([]),
        "nothing stored yet"
    );

    server.control(json!({"action": "reset_counters"}));
    b.set_stop_after_parts(None);
    let id = b.put(&m, &src).unwrap();
    let c = server.counters();
    assert_eq!(
        c["counters"]["InitiateMultipartUpload"],
        Value::Null,
        "resumed, not restarted: {c}"
    );
    assert_eq!(
        c["counters"]["UploadMultipartPart"], 2,
        "only the missing parts: {c}"
    );
    assert!(
        c["counters"]["ListParts"].as_u64().unwrap() >= 2,
        "paged through the parts: {c}"
    );
    assert_eq!(c["counters"]["CompleteMultipartUpload"], 1);
    assert_eq!(read_back(&b, &id, None, &quick_opts()), data);

    // The decoy is still there until cleanup, which aborts it.
    assert_eq!(server.state(&vault)["uploads"].as_array().unwrap().len(), 1);
    b.cleanup().unwrap();
    assert_eq!(server.state(&vault)["uploads"], json!([]));
}

#[test]
fn resume_replaces_parts_whose_tree_hash_differs() {
    let server = Server::start(&[]);
    let vault = vault_name("mismatch");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(4 * M + 9, 4); // five parts
    let m = meta_for(ObjectKind::Bundle, &data);
    // The interrupted run read other bytes for part 1 (the file was being written then).
    let mut early = data.clone();
    early[M + 10] ^= 1;
    let early_src = write(dir.path(), "early", &early);
    b.set_stop_after_parts(Some(2));
    b.put(&m, &early_src).unwrap_err();
    server.control(json!({"action": "reset_counters"}));
    b.set_stop_after_parts(None);
    let src = write(dir.path(), "now", &data);
    let id = b.put(&m, &src).unwrap();
    let parts: Vec<String> = log_of(&server, "UploadMultipartPart")
        .iter()
        .map(|e| e["Content-Range"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        parts.len(),
        4,
        "part 0 kept, part 1 replaced, parts 2-4 sent: {parts:?}"
    );
    assert!(
        !parts.iter().any(|p| p.starts_with("bytes 0-")),
        "{parts:?}"
    );
    assert!(
        parts.iter().any(|p| p.starts_with(&format!("bytes {M}-"))),
        "{parts:?}"
    );
    assert_eq!(read_back(&b, &id, None, &quick_opts()), data);
}

#[test]
fn changed_sources_are_corrupt_and_store_nothing() {
    let server = Server::start(&[]);
    let vault = vault_name("changed");
    let b = server.backend(&vault, MIB, 3);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(3 * M + 77, 5);
    let m = meta_for(ObjectKind::File, &data);
    let mut late = data.clone();
    *late.last_mut().unwrap() ^= 0x55; // detected only after every part was read
    let cases = [
        ("changed at the end", late),
        ("shorter", data[..data.len() - 1].to_vec()),
        ("longer", [data.as_slice(), b"x"].concat()),
        ("much shorter", data[..M / 2].to_vec()),
    ];
    for (what, bytes) in cases {
        let src = write(dir.path(), "src", &bytes);
        let err = b.put(&m, &src).expect_err(what);
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::Corrupt),
            "{what}: {err}"
        );
        let state = server.state(&vault);
        assert_eq!(state["archives"], json!([]), "{what}: stored");
        assert_eq!(state["uploads"], json!([]), "{what}: upload not aborted");
    }
    assert!(server.count("AbortMultipartUpload") >= 3);
}

#[test]
fn ranged_retrieval_asks_for_an_aligned_range_smaller_than_the_archive() {
    let server = Server::start(&[]);
    let vault = vault_name("ranged");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(8 * M + 1234, 6);
    let src = write(dir.path(), "big", &data);
    let size = data.len() as u64;
    let id = b.put(&meta_for(ObjectKind::Bundle, &data), &src).unwrap();
    let m = MIB;
    let cases = [
        // (wanted, retrieved)
        ((3 * m + 10, 3 * m + 5000), (3 * m, 4 * m)),
        ((m + 5, 3 * m - 5), (0, 4 * m)),
        ((3 * m, 5 * m), (3 * m, 5 * m)),
        ((size - 100, size), (8 * m, size)),
        ((7 * m + 1, size - 1), (7 * m, size)),
    ];
    let accepted_range = |server: &Server| -> Option<(u64, u64)> {
        let jobs = log_of(server, "InitiateJob");
        let text = jobs.last().unwrap()["RetrievalByteRange"]
            .as_str()?
            .to_string();
        let (a, b) = text.split_once('-').unwrap();
        Some((a.parse().unwrap(), b.parse::<u64>().unwrap() + 1))
    };
    for ((ws, we), (rs, re)) in cases {
        let want = ByteRange { start: ws, end: we };
        let planned = b.retrieval_range(&id, size, want);
        assert_eq!((planned.start, planned.end), (rs, re), "plan for {want:?}");
        assert!(re - rs < size);
        // A caller warms up the planned range and reads what it wants from it.
        server.control(json!({"action": "reset_counters"}));
        let ticket = warm(&b, &id, Some(planned));
        assert_eq!(
            accepted_range(&server),
            Some((rs, re)),
            "retrieved for {want:?}"
        );
        let mut got = Vec::new();
        b.get(&id, Some(want), Some(&ticket), &mut got).unwrap();
        assert!(got == data[ws as usize..we as usize], "bytes of {want:?}");
        let outputs = log_of(&server, "GetJobOutput");
        let checked = outputs.iter().all(|e| e["checksum"] == true);
        let aligned = glaciersync::backend::glacier::is_tree_hash_aligned(rs, re, size);
        assert_eq!(checked, aligned, "checksums for {want:?}: {outputs:?}");

        // The raw wanted range retrieves the same, except when it ends inside the archive's
        // last megabyte: not knowing the size, the backend then retrieves the whole archive.
        server.control(json!({"action": "reset_counters"}));
        let got = read_back(&b, &id, Some(want), &quick_opts());
        assert!(
            got == data[ws as usize..we as usize],
            "bytes of raw {want:?}"
        );
        let corner = we % m != 0 && we != size && we.div_ceil(m) * m > size;
        let expect = if corner { None } else { Some((rs, re)) };
        assert_eq!(
            accepted_range(&server),
            expect,
            "retrieved for raw {want:?}"
        );
    }
}

#[test]
fn small_reads_from_a_big_retrieval_fetch_little_and_are_verified() {
    let server = Server::start(&[]);
    let vault = vault_name("pieces");
    let b = server.backend(&vault, 16 * MIB, 2); // download windows of 16 MiB
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(20 * M + 99, 13);
    let src = write(dir.path(), "big", &data);
    let id = b.put(&meta_for(ObjectKind::Bundle, &data), &src).unwrap();
    let ticket = warm(&b, &id, None);
    for (a, z) in [
        (3 * M + 10, 3 * M + 5000),
        (M + 5, 6 * M - 5),
        (20 * M + 7, 20 * M + 99),
        (0, 20 * M + 99),
    ] {
        server.control(json!({"action": "reset_counters"}));
        let mut out = Vec::new();
        let want = ByteRange {
            start: a as u64,
            end: z as u64,
        };
        b.get(&id, Some(want), Some(&ticket), &mut out).unwrap();
        assert!(out == data[a..z], "{a}..{z}");
        let mut fetched = 0u64;
        for e in log_of(&server, "GetJobOutput") {
            assert_eq!(e["checksum"], true, "unverified download for {a}..{z}: {e}");
            if let Some(r) = e["Range"].as_str() {
                let (x, y) = r.strip_prefix("bytes=").unwrap().split_once('-').unwrap();
                fetched += y.parse::<u64>().unwrap() + 1 - x.parse::<u64>().unwrap();
            } else {
                fetched += data.len() as u64;
            }
        }
        assert!(
            fetched < (z - a) as u64 + 2 * MIB,
            "{a}..{z}: fetched {fetched}"
        );
    }
}

#[test]
fn jobs_are_not_requested_twice_and_expired_ones_are_requested_again() {
    let server = Server::start(&["--job-delay", "1.5"]);
    let vault = vault_name("expire");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(1500, 7);
    let src = write(dir.path(), "f", &data);
    let id = b.put(&meta_for(ObjectKind::File, &data), &src).unwrap();

    let WarmState::Pending { ticket, .. } = b.warm_up(&id, None, Tier::Expedited, None).unwrap()
    else {
        panic!("a fresh retrieval is pending")
    };
    assert!(ticket.len() < 300 && ticket.starts_with('{'), "{ticket}");
    let WarmState::Pending { ticket: again, eta } = b
        .warm_up(&id, None, Tier::Expedited, Some(&ticket))
        .unwrap()
    else {
        panic!("still pending")
    };
    assert_eq!(again, ticket, "same job");
    assert!(eta <= Duration::from_secs(300) && eta >= Duration::from_secs(60));
    assert_eq!(server.count("InitiateJob"), 1, "never twice for a live job");
    // Without a ticket nothing can be read.
    let err = b.get(&id, None, None, &mut Vec::new()).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::NotWarm), "{err}");

    // The job's 24 hours pass.
    server.control(json!({"action": "expire_job"}));
    let WarmState::Pending { ticket: fresh, .. } =
        b.warm_up(&id, None, Tier::Standard, Some(&ticket)).unwrap()
    else {
        panic!("re-requested")
    };
    assert_ne!(fresh, ticket);
    assert_eq!(server.count("InitiateJob"), 2);
    std::thread::sleep(Duration::from_millis(1600));
    let WarmState::Ready {
        ticket: Some(ready),
    } = b.warm_up(&id, None, Tier::Standard, Some(&fresh)).unwrap()
    else {
        panic!("ready after the delay")
    };
    let mut out = Vec::new();
    assert_eq!(
        b.get(&id, None, Some(&ready), &mut out).unwrap(),
        data.len() as u64
    );
    assert_eq!(out, data);
    // An expired ticket given to get says to warm up again.
    server.control(json!({"action": "expire_job"}));
    let err = b.get(&id, None, Some(&ready), &mut Vec::new()).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::NotWarm), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("glacier: ") && text.matches("glacier:").count() == 1,
        "{text}"
    );
    assert!(text.contains("24 hours"), "{text}");
}

#[test]
fn corrupted_downloads_are_refused() {
    let server = Server::start(&[]);
    let vault = vault_name("corrupt");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(2 * M + 3, 8);
    let src = write(dir.path(), "f", &data);
    let id = b.put(&meta_for(ObjectKind::File, &data), &src).unwrap();
    let ticket = warm(&b, &id, None);
    server.control(json!({"action": "corrupt_next_output"}));
    let mut out = Vec::new();
    let err = b.get(&id, None, Some(&ticket), &mut out).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(out.is_empty(), "corrupt bytes are never written");
    // Retrying does not take corruption for a passing fault; a clean download works.
    let r = retrying(server.backend(&vault, MIB, 2));
    server.control(json!({"action": "corrupt_next_output"}));
    server.control(json!({"action": "reset_counters"}));
    let err = r
        .get(&id, None, Some(&ticket), &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    assert_eq!(server.count("GetJobOutput"), 1);
    let mut out = Vec::new();
    r.get(&id, None, Some(&ticket), &mut out).unwrap();
    assert!(out == data);
}

#[test]
fn a_broken_download_continues_where_it_broke_off() {
    let server = Server::start(&[]);
    let vault = vault_name("truncate");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(4 * M + 10, 9);
    let src = write(dir.path(), "f", &data);
    let id = b.put(&meta_for(ObjectKind::File, &data), &src).unwrap();
    let size = data.len() as u64;
    let whole = ByteRange {
        start: 0,
        end: size,
    };
    let ticket = warm(&b, &id, None);
    server.control(json!({"action": "reset_counters"}));
    // The second window breaks off half way.
    server.control(json!({"action": "truncate_next_output", "after": 1}));
    let plain = b
        .get(&id, Some(whole), Some(&ticket), &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        plain.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{plain}"
    );

    server.control(json!({"action": "reset_counters"}));
    server.control(json!({"action": "truncate_next_output", "after": 1}));
    let mut out = Vec::new();
    let n = retrying(server.backend(&vault, MIB, 2))
        .get(&id, Some(whole), Some(&ticket), &mut out)
        .unwrap();
    assert_eq!(n, size);
    assert!(out == data);
    let ranges: Vec<String> = log_of(&server, "GetJobOutput")
        .iter()
        .map(|e| e["Range"].as_str().unwrap_or("all").to_string())
        .collect();
    let first = format!("bytes=0-{}", M - 1);
    let second = format!("bytes={M}-{}", 2 * M - 1);
    assert_eq!(
        ranges.iter().filter(|r| **r == first).count(),
        1,
        "not restarted: {ranges:?}"
    );
    assert_eq!(
        ranges.iter().filter(|r| **r == second).count(),
        2,
        "resumed: {ranges:?}"
    );
    assert_eq!(ranges.len(), 6, "{ranges:?}");
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let server = Server::start(&[]);
    let vault = vault_name("faults");
    let b = server.backend(&vault, MIB, 3);
    let dir = tempdir();
    let data = content(3 * M + 1, 10);
    let src = write(dir.path(), "f", &data);
    let m = meta_for(ObjectKind::File, &data);

    // Alone, the backend reports the error as transient (and its own SDK does not retry).
    server.control(json!({"action": "fail", "count": 1, "operation": "DescribeVault"}));
    let err = b.prepare().unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    server.control(json!({"action": "throttle", "count": 1, "operation": "DescribeVault"}));
    let err = b.prepare().unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );

    let r = retrying(server.backend(&vault, MIB, 3));
    server.control(json!({"action": "fail", "count": 2, "operation": "DescribeVault"}));
    r.prepare().unwrap();
    // An upload that vanishes under a put (aborted by another cleanup, or reclaimed by Glacier)
    // is a reason to try again, not a lasting failure.
    server.control(json!({"action": "fail", "count": 1, "status": 404,
        "code": "ResourceNotFoundException", "operation": "UploadMultipartPart"}));
    let err = b.put(&m, &src).unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    assert_eq!(err.to_string().matches("glacier:").count(), 1, "{err}");
    b.cleanup().unwrap();
    server.control(json!({"action": "reset_counters"}));
    server.control(json!({"action": "throttle", "count": 2, "operation": "UploadMultipartPart"}));
    server.control(json!({"action": "fail", "count": 1, "operation": "CompleteMultipartUpload"}));
    let id = r.put(&m, &src).unwrap();
    let c = server.counters();
    assert_eq!(
        c["counters"]["InitiateMultipartUpload"], 1,
        "retries resume: {c}"
    );
    assert_eq!(
        c["counters"]["UploadMultipartPart"], 6,
        "4 parts + 2 throttled: {c}"
    );
    server.control(json!({"action": "fail", "count": 2, "operation": "InitiateJob"}));
    server.control(json!({"action": "throttle", "count": 1, "operation": "DescribeJob"}));
    server.control(json!({"action": "fail", "count": 1, "operation": "GetJobOutput"}));
    assert!(read_back(&r, &id, None, &quick_opts()) == data);
    server.control(json!({"action": "fail", "count": 1, "operation": "InitiateJob"}));
    let listed = testsuite::list_all(&r, &quick_opts());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
}

#[test]
fn parts_go_up_in_parallel_within_the_concurrency_limit() {
    let server = Server::start(&[]);
    server.control(json!({"action": "slow", "operation": "UploadMultipartPart", "seconds": 0.5}));
    let vault = vault_name("parallel");
    let b = server.backend(&vault, MIB, 3);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(9 * M, 11);
    let src = write(dir.path(), "f", &data);
    server.control(json!({"action": "reset_counters"}));
    b.put(&meta_for(ObjectKind::File, &data), &src).unwrap();
    let max = server.counters()["max_in_flight"].as_u64().unwrap();
    assert_eq!(max, 3, "three parts at a time, never more");
}

#[test]
fn credentials_refused_give_one_clear_line() {
    let server = Server::start(&[]);
    let vault = vault_name("auth");
    let b = server.backend(&vault, MIB, 1);
    server.control(
        json!({"action": "fail", "count": 2, "status": 403, "code": "InvalidSignatureException"}),
    );
    let err = b.prepare().unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Auth), "{err}");
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains(&vault) && text.contains("us-east-1") && text.contains("secret key"),
        "{text}"
    );
    assert!(!text.contains("testing"), "no secrets: {text}");
    server.control(
        json!({"action": "fail", "count": 1, "status": 403, "code": "ExpiredTokenException"}),
    );
    let err = b.delete("x").unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Auth), "{err}");
}

#[test]
fn listing_knows_our_archives_and_leaves_foreign_ones_unnamed() {
    let server = Server::start(&["--job-delay", "1", "--page-size", "1"]);
    let vault = vault_name("list");
    let b = server.backend(&vault, MIB, 2);
    b.prepare().unwrap();
    let dir = tempdir();
    let data = content(2 * M + 1, 12);
    let src = write(dir.path(), "f", &data);
    let ours = b.put(&meta_for(ObjectKind::Catalog, &data), &src).unwrap();
    // Another tool's archive and another tool's unfinished upload.
    let body = b"someone else's bytes";
    let th = tree_hash(body).to_hex();
    let (status, head, _) = server.glacier(
        "POST",
        &format!("/-/vaults/{vault}/archives"),
        vec![
            ("x-amz-sha256-tree-hash", th.clone()),
            ("x-amz-content-sha256", th),
            ("x-amz-archive-description", "holiday.jpg".into()),
        ],
        body,
    );
    assert_eq!(status, 201, "{head}");
    let (status, head, _) = server.glacier(
        "POST",
        &format!("/-/vaults/{vault}/multipart-uploads"),
        vec![
            ("x-amz-part-size", MIB.to_string()),
            ("x-amz-archive-description", "theirs".into()),
        ],
        b"",
    );
    assert_eq!(status, 201, "{head}");

    let ListOutcome::Pending { ticket, eta } = b.list(None).unwrap() else {
        panic!("an inventory is a job")
    };
    assert!(eta.is_some());
    let ListOutcome::Pending { ticket: same, .. } = b.list(Some(&ticket)).unwrap() else {
        panic!("not ready yet")
    };
    assert_eq!(same, ticket);
    std::thread::sleep(Duration::from_millis(1100));
    let ListOutcome::Ready(items) = b.list(Some(&ticket)).unwrap() else {
        panic!("ready")
    };
    assert_eq!(items.len(), 2);
    let mine = items.iter().find(|o| o.id == ours).unwrap();
    assert_eq!(mine.kind, Some(ObjectKind::Catalog));
    assert_eq!(mine.tree_hash, Some(tree_hash(&data)));
    assert_eq!(mine.created, Some(1_790_000_000));
    assert_eq!(mine.size, data.len() as u64);
    let foreign = items.iter().find(|o| o.id != ours).unwrap();
    assert_eq!(
        (foreign.kind, foreign.tree_hash, foreign.created),
        (None, None, None)
    );
    assert_eq!(foreign.size, body.len() as u64);
    // An expired inventory job is requested again.
    server.control(json!({"action": "expire_job"}));
    assert!(matches!(
        b.list(Some(&ticket)).unwrap(),
        ListOutcome::Pending { .. }
    ));
    assert_eq!(server.count("InitiateJob"), 2);
    // Cleanup leaves other tools' uploads alone.
    b.cleanup().unwrap();
    assert_eq!(server.state(&vault)["uploads"].as_array().unwrap().len(), 1);
    // Deleting twice: the second is NotFound.
    b.delete(&ours).unwrap();
    let err = b.delete(&ours).unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::NotFound),
        "{err}"
    );
}

#[test]
fn bad_vault_names_and_part_sizes_are_usage_errors() {
    let opts = |vault: &str, part_size: u64| GlacierOptions {
        aws: AwsOptions::default(),
        vault: vault.into(),
        part_size,
        concurrency: 1,
    };
    for (vault, part) in [("bad name", MIB), ("", MIB), ("ok", 3 * MIB), ("ok", 0)] {
        let err = GlacierBackend::new(opts(vault, part))
            .err()
            .expect("refused");
        assert!(matches!(err, glaciersync::Error::Usage(_)), "{err}");
    }
}

/// The encrypting wrapper over a vault: multipart uploads, ranged retrievals (from the header
/// to the chunks that hold the range) and the inventory's descriptions go through it.
#[test]
fn conformance_suite_encrypted() {
    use glaciersync::backend::crypt::{AgeKeys, Crypt};
    let server = Server::start(&[]);
    let b = server.backend(&vault_name("age"), MIB, 4);
    let staging = tempfile::tempdir().unwrap();
    let c = Crypt::new(b, AgeKeys::generate(), staging.path());
    testsuite::run_all(&c, &quick_opts());
    let log = server.counters()["log"].clone();
    let ranged = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["RetrievalByteRange"].is_string())
        .count();
    assert!(
        ranged >= 1,
        "ranged retrievals of encrypted archives: {log}"
    );
}
