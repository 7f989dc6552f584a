//! The S3 backend against moto's S3 server.
//!
//! The shared server comes from `GLACIERSYNC_TEST_MOTO` (`scripts/test.sh` starts one). Without
//! it every test here is skipped with a note, unless `GLACIERSYNC_TEST_DISALLOW_SKIP=1` turns the
//! skip into a failure. Tests that change server-wide state (restore timing, signature checks)
//! start a moto of their own (`$GLACIERSYNC_TEST_PYTHON -m moto.server`, else `moto_server`).
//! Every test works in a bucket of its own, so they run in parallel.

#[path = "common/s3_relay.rs"]
mod s3_relay;

#[path = "common/moto.rs"]
mod moto;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use glaciersync::backend::aws::{self, AwsOptions};
use glaciersync::backend::s3::{S3Backend, S3Options, checksum_sha256};
use glaciersync::backend::testsuite::{self, SuiteOptions, content, meta_for};
use glaciersync::backend::{
    Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState, object_key,
};
use glaciersync::error::{BackendErrorKind, Result};
use glaciersync::hash::tree_hash;
use s3_relay::Relay;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// Peers

/// A moto server of this test's own, stopped when dropped.
struct OwnMoto {
    child: Child,
    port: u16,
    url: String,
}

impl OwnMoto {
    fn start(env: &[(&str, &str)]) -> OwnMoto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = match std::env::var("GLACIERSYNC_TEST_PYTHON") {
            Ok(py) if !py.trim().is_empty() => {
                let mut c = Command::new(py.trim());
                c.args(["-m", "moto.server"]);
                c
            }
            _ => Command::new("moto_server"),
        };
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "starting moto's server (GLACIERSYNC_TEST_PYTHON -m moto.server, or moto_server)",
            );
        let moto = OwnMoto {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http(port, "GET", "/moto-api/", &[], ""), Ok((200, _))) {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare HTTP/1.0 exchange (for moto's own API and a few unsigned calls).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    moto::request(
        &format!("http://127.0.0.1:{port}"),
        method,
        path,
        headers,
        body,
    )
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start
        + xml[start..]
            .find(&format!("</{tag}>"))
            .expect("closing tag");
    xml[start..end].to_string()
}

/// One IAM call. moto routes by the service in the credential scope and, within its
/// `INITIAL_NO_AUTH_ACTION_COUNT`, checks no signature, so a dummy one does.
fn iam(port: u16, params: &[(&str, &str)]) -> String {
    let body = params
        .iter()
        .chain([("Version", "2010-05-08")].iter())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let (status, answer) = http(
        port,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Amz-Date", "20260101T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            ),
        ],
        &body,
    )
    .expect("IAM call");
    assert_eq!(status, 200, "IAM {params:?}: {answer}");
    answer
}

/// Creates an IAM user allowed everything and returns its access key (3 IAM actions).
fn iam_user(port: u16) -> (String, String) {
    iam(
        port,
        &[("Action", "CreateUser"), ("UserName", "glaciersync")],
    );
    iam(
        port,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "glaciersync"),
            ("PolicyName", "all"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            ),
        ],
    );
    let answer = iam(
        port,
        &[("Action", "CreateAccessKey"), ("UserName", "glaciersync")],
    );
    (
        xml_value(&answer, "AccessKeyId"),
        xml_value(&answer, "SecretAccessKey"),
    )
}

/// Makes restores on `port` take `seconds`. moto's clock for a key starts when the key is made
/// and moves one step (none → in progress → restored) on the first look after `seconds`; before
/// its first step a requested restore already reads as done.
fn set_restore_delay(port: u16, seconds: u64) {
    let body = format!(
        r#"{{"model_name": "s3::keyrestore", "transition": {{"progression": "time", "seconds": {seconds}}}}}"#
    );
    let (status, answer) = http(
        port,
        "POST",
        "/moto-api/state-manager/set-transition",
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("set-transition");
    assert!(
        status == 200 || status == 201,
        "set-transition: {status} {answer}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn aws_options(endpoint: &str, access_key: &str, secret_key: &str) -> AwsOptions {
    AwsOptions {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.into()),
        access_key: Some(access_key.into()),
        secret_key: Some(secret_key.into()),
        profile: None,
        ..Default::default()
    }
}

fn options(endpoint: &str, bucket: &str, class: &str) -> S3Options {
    S3Options {
        aws: aws_options(endpoint, "testing", "testing"),
        bucket: bucket.into(),
        prefix: "test/".into(),
        storage_class: class.into(),
        part_size: 5 * MIB as u64,
        concurrency: 4,
        restore_days: 1,
    }
}

fn bucket_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "gs-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A client of our own, to set up and to look behind the backend's back.
struct Raw {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Raw {
    fn new(endpoint: &str, access_key: &str, secret_key: &str) -> Raw {
        let ctx = aws::load(&aws_options(endpoint, access_key, secret_key), 1).unwrap();
        let conf = aws_sdk_s3::config::Builder::from(&ctx.config)
            .force_path_style(true)
            .build();
        Raw {
            rt: ctx.runtime,
            client: Client::from_conf(conf),
        }
    }

    fn create_bucket(&self, bucket: &str) {
        self.rt
            .block_on(self.client.create_bucket().bucket(bucket).send())
            .expect("create bucket");
    }

    fn head(&self, bucket: &str, key: &str) -> Option<HeadObjectOutput> {
        self.rt
            .block_on(
                self.client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .checksum_mode(ChecksumMode::Enabled)
                    .send(),
            )
            .ok()
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(body.to_vec()))
                    .send(),
            )
            .expect("raw put");
    }

    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("raw get");
            out.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    /// Keys and storage classes, as ListObjectsV2 shows them.
    fn listing(&self, bucket: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(self.client.list_objects_v2().bucket(bucket).send())
            .expect("raw list");
        out.contents()
            .iter()
            .map(|o| {
                (
                    o.key().unwrap().to_string(),
                    o.storage_class()
                        .map_or("STANDARD", |c| c.as_str())
                        .to_string(),
                )
            })
            .collect()
    }

    /// Incomplete uploads: (key, upload id).
    fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(self.client.list_multipart_uploads().bucket(bucket).send())
            .expect("raw list uploads");
        out.uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap().to_string(),
                    u.upload_id().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn part_count(&self, bucket: &str, key: &str, upload_id: &str) -> usize {
        self.rt
            .block_on(
                self.client
                    .list_parts()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send(),
            )
            .expect("raw list parts")
            .parts()
            .len()
    }

    fn start_upload(&self, bucket: &str, key: &str) {
        self.rt
            .block_on(
                self.client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .send(),
            )
            .expect("raw create upload");
    }
}

/// A bucket of the test's own on a moto server, and a scratch directory.
struct Fixture {
    endpoint: String,
    bucket: String,
    raw: Raw,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn on(endpoint: &str, tag: &str) -> Fixture {
        let raw = Raw::new(endpoint, "testing", "testing");
        let bucket = bucket_name(tag);
        raw.create_bucket(&bucket);
        Fixture {
            endpoint: endpoint.to_string(),
            bucket,
            raw,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn shared(tag: &str) -> Option<Fixture> {
        Some(Fixture::on(&moto::url()?, tag))
    }

    fn options(&self, class: &str) -> S3Options {
        options(&self.endpoint, &self.bucket, class)
    }

    fn backend(&self, class: &str) -> S3Backend {
        S3Backend::new(self.options(class)).expect("backend")
    }

    fn source(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    fn uploads_of(&self, key: &str) -> Vec<String> {
        self.raw
            .uploads(&self.bucket)
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, id)| id)
            .collect()
    }
}

fn read_all(b: &dyn Backend, id: &str, range: Option<ByteRange>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    b.get(id, range, None, &mut out)?;
    Ok(out)
}

fn listed(b: &dyn Backend) -> Vec<ObjectInfo> {
    match b.list(None).expect("list") {
        ListOutcome::Ready(items) => items,
        ListOutcome::Pending { .. } => panic!("S3 listings are immediate"),
    }
}

/// The suite warms up with the Expedited tier, which DEEP_ARCHIVE does not offer (the backend
/// refuses it, as tested below): this adapter asks for Standard instead.
struct NoExpedited<'a>(&'a S3Backend);

impl Backend for NoExpedited<'_> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        self.0.needs_warm_up(kind)
    }
    fn prepare(&self) -> Result<()> {
        self.0.prepare()
    }
    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.0.put(meta, source)
    }
    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        self.0.get(id, range, ticket, out)
    }
    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        let tier = if tier == Tier::Expedited {
            Tier::Standard
        } else {
            tier
        };
        self.0.warm_up(id, range, tier, ticket)
    }
    fn retrieval_range(&self, id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        self.0.retrieval_range(id, object_size, want)
    }
    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        self.0.list(ticket)
    }
    fn delete(&self, id: &str) -> Result<()> {
        self.0.delete(id)
    }
    fn cleanup(&self) -> Result<()> {
        self.0.cleanup()
    }
    fn owners(&self) -> Result<Option<Vec<String>>> {
        self.0.owners()
    }
    fn mark_owner(&self, id: &str) -> Result<()> {
        self.0.mark_owner(id)
    }
}

/// Sizes above the 5 MiB part size, so that every kind goes up in parts too: index 2 is a
/// catalog (STANDARD), index 3 a file (the data class).
fn suite_options() -> SuiteOptions {
    SuiteOptions {
        sizes: vec![1, 1000, 12 * MIB + 5, 11 * MIB + 123],
        ..SuiteOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The conformance suite

#[test]
fn conformance_suite_deep_archive() {
    let Some(f) = Fixture::shared("deep") else {
        return;
    };
    let b = f.backend("DEEP_ARCHIVE");
    testsuite::run_all(&NoExpedited(&b), &suite_options());
    let s = b.stats();
    assert!(s.upload_part >= 6, "multipart uploads exercised: {s:?}");
    assert!(
        s.restore_object >= 1,
        "archived objects were restored: {s:?}"
    );
}

#[test]
fn conformance_suite_standard() {
    let Some(f) = Fixture::shared("std") else {
        return;
    };
    let b = f.backend("STANDARD");
    testsuite::run_all(&b, &suite_options());
    let s = b.stats();
    assert!(s.upload_part >= 6, "multipart uploads exercised: {s:?}");
    assert_eq!(s.restore_object, 0, "nothing to restore in STANDARD: {s:?}");
}

#[test]
fn conformance_suite_glacier_with_expedited_restores() {
    let Some(f) = Fixture::shared("glacier") else {
        return;
    };
    let b = f.backend("GLACIER");
    testsuite::run_all(&b, &suite_options());
    assert!(b.stats().restore_object >= 1);
}

// ---------------------------------------------------------------------------------------------
// Layout and storage classes

#[test]
fn catalogs_are_standard_while_data_is_deep_archive() {
    let Some(f) = Fixture::shared("classes") else {
        return;
    };
    let b = f.backend("DEEP_ARCHIVE");
    b.prepare().unwrap();
    assert!(b.needs_warm_up(ObjectKind::File));
    assert!(b.needs_warm_up(ObjectKind::Bundle));
    assert!(!b.needs_warm_up(ObjectKind::Catalog));

    let mut ids = Vec::new();
    for (i, (kind, size)) in [
        (ObjectKind::File, 1000),
        (ObjectKind::Bundle, 2000),
        (ObjectKind::Catalog, 3000),
        (ObjectKind::Catalog, 6 * MIB + 1),
        (ObjectKind::File, 6 * MIB + 2),
    ]
    .into_iter()
    .enumerate()
    {
        let data = content(size, 40 + i as u64);
        let id = b
            .put(&meta_for(kind, &data), &f.source(&format!("c{i}"), &data))
            .unwrap();
        assert_eq!(
            id,
            object_key(&meta_for(kind, &data)),
            "ids are keys without the prefix"
        );
        ids.push((kind, id, data));
    }
    let listing = f.raw.listing(&f.bucket);
    for (kind, id, data) in &ids {
        let key = format!("test/{id}");
        let want = if *kind == ObjectKind::Catalog {
            "STANDARD"
        } else {
            "DEEP_ARCHIVE"
        };
        let (_, class) = listing
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("{key} not listed"));
        assert_eq!(class, want, "listed class of {key}");
        let head = f.raw.head(&f.bucket, &key).unwrap();
        assert_eq!(
            head.storage_class().map_or("STANDARD", |c| c.as_str()),
            want,
            "class of {key} by HEAD"
        );
        if *kind == ObjectKind::Catalog {
            // Readable at once, with no warm-up: recover needs no thaw.
            assert_eq!(
                b.warm_up(id, None, Tier::Bulk, None).unwrap(),
                WarmState::Ready { ticket: None }
            );
            assert!(read_all(&b, id, None).unwrap() == *data);
        }
    }
    assert_eq!(b.stats().restore_object, 0);
}

#[test]
fn listing_is_confined_to_the_prefix_and_describe_names_it() {
    let Some(f) = Fixture::shared("prefix") else {
        return;
    };
    let a = S3Backend::new(S3Options {
        prefix: "a/".into(),
        ..f.options("STANDARD")
    })
    .unwrap();
    let b = S3Backend::new(S3Options {
        prefix: "b".into(),
        ..f.options("GLACIER_IR")
    })
    .unwrap();
    assert_eq!(
        a.describe(),
        format!(
            "s3://{}/a/ (storage class STANDARD, region us-east-1)",
            f.bucket
        )
    );
    assert_eq!(
        b.describe(),
        format!(
            "s3://{}/b/ (storage class GLACIER_IR, region us-east-1)",
            f.bucket
        )
    );
    assert!(
        !b.needs_warm_up(ObjectKind::File),
        "GLACIER_IR reads at once"
    );
    let da = content(100, 1);
    let db = content(200, 2);
    let ida = a
        .put(&meta_for(ObjectKind::File, &da), &f.source("a", &da))
        .unwrap();
    let idb = b
        .put(&meta_for(ObjectKind::Bundle, &db), &f.source("b", &db))
        .unwrap();
    f.raw.put(&f.bucket, "a/notes/readme.txt", b"not ours");
    let la = listed(&a);
    assert_eq!(la.len(), 2, "{la:?}");
    let ours = la.iter().find(|o| o.id == ida).expect("a's object listed");
    assert_eq!(ours.size, 100);
    assert_eq!(ours.kind, Some(ObjectKind::File));
    assert_eq!(ours.tree_hash, Some(tree_hash(&da)));
    let foreign = la
        .iter()
        .find(|o| o.id == "notes/readme.txt")
        .expect("foreign key listed");
    assert_eq!(foreign.kind, None);
    let lb = listed(&b);
    assert_eq!(
        lb.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [idb.as_str()]
    );
    assert!(
        read_all(&b, &idb, None).unwrap() == db,
        "GLACIER_IR reads without restore"
    );
}

// ---------------------------------------------------------------------------------------------
// Checksums, conditional writes, ranges

#[test]
fn every_write_carries_our_sha256_checksum_and_is_conditional() {
    let Some(moto) = moto::url() else {
        return;
    };
    let relay = Relay::start(&moto);
    let f = Fixture::on(&relay.url, "cond");
    let b = f.backend("STANDARD");
    // Single PUT: the stored checksum is the one we computed (moto stores, never computes, it).
    let data = content(70_000, 3);
    let meta = meta_for(ObjectKind::Bundle, &data);
    let src = f.source("small", &data);
    let id = b.put(&meta, &src).unwrap();
    let head = f.raw.head(&f.bucket, &format!("test/{id}")).unwrap();
    assert_eq!(
        head.checksum_sha256(),
        Some(checksum_sha256(&data).as_str())
    );

    // The same content again: If-None-Match makes the service refuse it (412), which is success.
    let again = b.put(&meta, &src).unwrap();
    assert_eq!(again, id);
    let s = b.stats();
    assert_eq!((s.put_object, s.already_stored), (2, 1), "{s:?}");
    assert_eq!(
        f.raw.listing(&f.bucket).len(),
        1,
        "one object for the same content"
    );

    // A multipart object stored twice: the second put sends no part and starts no upload.
    let big = content(11 * MIB + 5, 4);
    let big_meta = meta_for(ObjectKind::File, &big);
    let big_src = f.source("big", &big);
    let big_id = b.put(&big_meta, &big_src).unwrap();
    let before = b.stats();
    assert_eq!(before.upload_part, 3);
    assert_eq!(b.put(&big_meta, &big_src).unwrap(), big_id);
    let after = b.stats();
    assert_eq!(after.upload_part, before.upload_part, "no part re-sent");
    assert_eq!(
        after.create_multipart, before.create_multipart,
        "no upload started"
    );
    assert_eq!(after.already_stored, before.already_stored + 1);
    // Created as a composite SHA-256 upload: the object's checksum is the SHA-256 of its
    // parts' SHA-256s (AWS appends the part count; moto's HEAD leaves it out).
    let digests: Vec<u8> = big
        .chunks(5 * MIB)
        .flat_map(|part| glaciersync::hash::sha256(part).0)
        .collect();
    let want = checksum_sha256(&digests);
    let big_head = f.raw.head(&f.bucket, &format!("test/{big_id}")).unwrap();
    let got = big_head.checksum_sha256().expect("a checksum");
    assert!(
        got == want || got == format!("{want}-3"),
        "{got} is not {want}-3"
    );

    // Bodies are signed with the SHA-256 we computed (the SDK does not hash them again): it
    // must be right, or AWS refuses the request.
    let (checked, wrong) = relay.payload_hashes();
    assert!(
        checked >= 2 + 3,
        "PUTs and parts signed with their payload hash: {checked}"
    );
    assert_eq!(wrong, 0, "payload hashes that differ from the body");

    // An empty object is an object too.
    let empty_meta = meta_for(ObjectKind::Bundle, b"");
    let empty_id = b.put(&empty_meta, &f.source("empty", b"")).unwrap();
    assert!(read_all(&b, &empty_id, None).unwrap().is_empty());
    assert_eq!(
        f.raw
            .head(&f.bucket, &format!("test/{empty_id}"))
            .unwrap()
            .checksum_sha256(),
        Some(checksum_sha256(b"").as_str())
    );

    // Something else under our key is never overwritten, and is reported, not accepted.
    let other = content(5000, 5);
    let other_meta = meta_for(ObjectKind::File, &other);
    let other_key = format!("test/{}", object_key(&other_meta));
    f.raw.put(&f.bucket, &other_key, b"junk");
    let err = b.put(&other_meta, &f.source("other", &other)).unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(f.raw.get(&f.bucket, &other_key), b"junk", "not overwritten");
}

#[test]
fn ranged_reads_are_exact_or_refused() {
    let Some(f) = Fixture::shared("range") else {
        return;
    };
    let b = f.backend("STANDARD");
    let data = content(10_000, 6);
    let id = b
        .put(&meta_for(ObjectKind::Bundle, &data), &f.source("r", &data))
        .unwrap();
    let r = |start, end| Some(ByteRange { start, end });
    assert!(read_all(&b, &id, r(9_990, 10_000)).unwrap() == data[9_990..]);
    assert!(read_all(&b, &id, r(500, 500)).unwrap().is_empty());
    // Past the end: the object is shorter than what asks for it (ranges come from the
    // catalog), so it is damaged, and a restore marks what it held lost.
    for bad in [r(9_000, 10_001), r(10_000, 10_010), r(20_000, 20_001)] {
        let mut out = Vec::new();
        let err = b.get(&id, bad, None, &mut out).unwrap_err();
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::Corrupt),
            "{bad:?}: {err}"
        );
        assert!(out.is_empty(), "{bad:?}: nothing written");
    }
}

// ---------------------------------------------------------------------------------------------
// Cold reads

#[test]
fn deep_archive_restore_is_requested_once_and_waited_for() {
    if moto::url().is_none() {
        return;
    }
    // Restore timing is server-wide in moto: this test has a server of its own.
    let moto = OwnMoto::start(&[]);
    let f = Fixture::on(&moto.url, "restore");
    const DELAY: u64 = 3;
    set_restore_delay(moto.port, DELAY);
    let b = f.backend("DEEP_ARCHIVE");
    let data = content(3000, 7);
    let id = b
        .put(&meta_for(ObjectKind::File, &data), &f.source("cold", &data))
        .unwrap();
    let made = Instant::now();
    let key = format!("test/{id}");

    let mut out = Vec::new();
    let err = b.get(&id, None, None, &mut out).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::NotWarm), "{err}");
    assert!(out.is_empty());

    let err = b.warm_up(&id, None, Tier::Expedited, None).unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("DEEP_ARCHIVE") && msg.contains("Expedited"),
        "{msg}"
    );
    assert_eq!(
        b.stats().restore_object,
        0,
        "nothing requested for a refused tier"
    );

    let WarmState::Pending { ticket, eta } = b.warm_up(&id, None, Tier::Standard, None).unwrap()
    else {
        panic!("a fresh restore is pending");
    };
    assert!(eta > Duration::from_secs(11 * 3600) && eta <= Duration::from_secs(12 * 3600));
    assert_eq!(b.stats().restore_object, 1);

    // Let moto's clock pass its first step, so the next look finds the restore in progress.
    std::thread::sleep(
        (made + Duration::from_millis(DELAY * 1000 + 500))
            .saturating_duration_since(Instant::now()),
    );
    let WarmState::Pending { ticket, .. } =
        b.warm_up(&id, None, Tier::Standard, Some(&ticket)).unwrap()
    else {
        panic!("a restore in progress is pending");
    };
    let head = f.raw.head(&f.bucket, &key).unwrap();
    assert_eq!(
        head.restore(),
        Some("ongoing-request=\"true\""),
        "the server says in progress"
    );
    let err = b.get(&id, None, None, &mut out).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::NotWarm), "{err}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ticket = ticket;
    loop {
        match b.warm_up(&id, None, Tier::Standard, Some(&ticket)).unwrap() {
            WarmState::Ready { ticket } => {
                assert_eq!(ticket, None);
                break;
            }
            WarmState::Pending { ticket: t, .. } => {
                assert!(Instant::now() < deadline, "restore never finished");
                ticket = t;
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    assert_eq!(b.stats().restore_object, 1, "never requested twice");
    assert!(read_all(&b, &id, None).unwrap() == data);
    assert!(
        read_all(
            &b,
            &id,
            Some(ByteRange {
                start: 10,
                end: 2000
            })
        )
        .unwrap()
            == data[10..2000]
    );
    // Restored: a later warm-up is Ready at once and requests nothing.
    assert_eq!(
        b.warm_up(&id, None, Tier::Bulk, None).unwrap(),
        WarmState::Ready { ticket: None }
    );
    assert_eq!(b.stats().restore_object, 1);
}

// ---------------------------------------------------------------------------------------------
// Multipart: resume, verification, cleanup, concurrency

#[test]
fn an_interrupted_multipart_upload_resumes_without_resending_parts() {
    let Some(moto) = moto::url() else {
        return;
    };
    let f = Fixture::on(&Relay::start(&moto).url, "resume");
    // moto lists every incomplete upload as STANDARD whatever its class, and the backend only
    // resumes uploads of the class it would write: so this runs in STANDARD.
    let data = content(4 * 5 * MIB + 123_457, 8);
    let meta = meta_for(ObjectKind::File, &data);
    let src = f.source("resume", &data);
    let key = format!("test/{}", object_key(&meta));

    let crashed = f.backend("STANDARD");
    crashed.set_stop_after_parts(Some(2));
    let err = crashed.put(&meta, &src).unwrap_err();
    assert_ne!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    let s = crashed.stats();
    assert_eq!(
        (s.create_multipart, s.upload_part, s.abort_multipart),
        (1, 2, 0),
        "{s:?}"
    );
    let uploads = f.uploads_of(&key);
    assert_eq!(uploads.len(), 1, "the interrupted upload stays");
    assert_eq!(f.raw.part_count(&f.bucket, &key, &uploads[0]), 2);

    // A new process: everything it knows comes from the service.
    let fresh = f.backend("STANDARD");
    let id = fresh.put(&meta, &src).unwrap();
    let s = fresh.stats();
    assert_eq!(
        s.create_multipart, 0,
        "the upload was resumed, not restarted: {s:?}"
    );
    assert_eq!(s.parts_reused, 2, "{s:?}");
    assert_eq!(s.upload_part, 3, "only the missing parts were sent: {s:?}");
    assert_eq!(s.complete_multipart, 1);
    assert!(f.uploads_of(&key).is_empty(), "completed");
    assert!(read_all(&fresh, &id, None).unwrap() == data);
}

#[test]
fn a_file_changed_before_resuming_is_refused_and_its_upload_aborted() {
    let Some(moto) = moto::url() else {
        return;
    };
    let f = Fixture::on(&Relay::start(&moto).url, "changed");
    let data = content(3 * 5 * MIB + 99, 9);
    let meta = meta_for(ObjectKind::File, &data);
    let src = f.source("changed", &data);
    let key = format!("test/{}", object_key(&meta));
    let crashed = f.backend("STANDARD");
    crashed.set_stop_after_parts(Some(2));
    crashed.put(&meta, &src).unwrap_err();
    assert_eq!(f.uploads_of(&key).len(), 1);

    // The first part, already stored, changes on disk: it no longer matches and is re-sent;
    // then the whole no longer matches the tree hash.
    let mut changed = data.clone();
    changed[100] ^= 1;
    std::fs::write(&src, &changed).unwrap();
    let fresh = f.backend("STANDARD");
    let err = fresh.put(&meta, &src).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    let s = fresh.stats();
    assert_eq!(
        s.parts_reused, 1,
        "only the unchanged stored part matched: {s:?}"
    );
    assert_eq!(s.abort_multipart, 1, "{s:?}");
    assert!(f.uploads_of(&key).is_empty(), "upload aborted");
    assert!(f.raw.head(&f.bucket, &key).is_none(), "nothing stored");
}

#[test]
fn a_large_file_that_differs_from_its_hash_leaves_nothing_stored() {
    let Some(f) = Fixture::shared("corrupt") else {
        return;
    };
    let b = f.backend("DEEP_ARCHIVE");
    let data = content(2 * 5 * MIB + 7, 10);
    let meta = meta_for(ObjectKind::File, &data);
    let key = format!("test/{}", object_key(&meta));
    let mut other = data.clone();
    *other.last_mut().unwrap() ^= 0x80;
    let err = b.put(&meta, &f.source("c", &other)).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    assert!(f.uploads_of(&key).is_empty(), "upload aborted");
    assert!(f.raw.head(&f.bucket, &key).is_none(), "nothing stored");
    // A size that differs is refused before anything is sent.
    let err = b.put(&meta, &f.source("short", &data[1..])).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    assert_eq!(b.stats().create_multipart, 1);
}

#[test]
fn cleanup_aborts_our_stale_uploads_only() {
    let Some(f) = Fixture::shared("cleanup") else {
        return;
    };
    let b = f.backend("DEEP_ARCHIVE");
    b.set_stop_after_parts(Some(1));
    for seed in [11, 12] {
        let data = content(6 * MIB, seed);
        b.put(&meta_for(ObjectKind::File, &data), &f.source("s", &data))
            .unwrap_err();
    }
    f.raw.start_upload(&f.bucket, "test/notes/readme.txt");
    f.raw.start_upload(&f.bucket, "elsewhere/data/x");
    assert_eq!(f.raw.uploads(&f.bucket).len(), 4);
    b.cleanup().unwrap();
    let mut left: Vec<String> = f.raw.uploads(&f.bucket).into_iter().map(|u| u.0).collect();
    left.sort();
    assert_eq!(left, ["elsewhere/data/x", "test/notes/readme.txt"]);
    b.cleanup().unwrap();
}

#[test]
fn requests_in_flight_stay_within_the_backend_wide_limit() {
    let Some(moto) = moto::url() else {
        return;
    };
    let relay = Relay::start(&moto);
    let f = Fixture::on(&relay.url, "limit");
    let b = S3Backend::new(S3Options {
        concurrency: 2,
        ..f.options("STANDARD")
    })
    .unwrap();
    let objects: Vec<(PutMeta, PathBuf, Vec<u8>)> = (0..4)
        .map(|i| {
            let data = content(2 * 5 * MIB + 1 + 1000 * i, 20 + i as u64);
            let src = f.source(&format!("p{i}"), &data);
            (meta_for(ObjectKind::File, &data), src, data)
        })
        .collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = objects
            .iter()
            .map(|(meta, src, _)| s.spawn(|| b.put(meta, src).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let st = b.stats();
    assert_eq!(st.upload_part, 12, "{st:?}");
    assert_eq!(
        st.peak_in_flight, 2,
        "at most `concurrency` requests (and part buffers) at once, and that many used: {st:?}"
    );
    assert!(
        relay.peak() <= 2,
        "the server saw {} requests at once",
        relay.peak()
    );
    for (id, (_, _, data)) in ids.iter().zip(&objects) {
        assert!(read_all(&b, id, None).unwrap() == *data);
    }
}

// ---------------------------------------------------------------------------------------------
// Access problems

#[test]
fn wrong_credentials_fail_prepare_with_auth_and_no_secret() {
    if moto::url().is_none() {
        return;
    }
    // Signature checks are server-wide in moto: this test has a server of its own. The first 3
    // actions (creating an IAM user and its key) go unchecked.
    let moto = OwnMoto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let (access_key, secret) = iam_user(moto.port);
    let raw = Raw::new(&moto.url, &access_key, &secret);
    let bucket = bucket_name("auth");
    raw.create_bucket(&bucket);
    let with = |ak: &str, sk: &str| {
        S3Backend::new(S3Options {
            aws: aws_options(&moto.url, ak, sk),
            ..options(&moto.url, &bucket, "STANDARD")
        })
        .unwrap()
    };

    // The right key works, uploads included (signed with our own payload hash).
    let good = with(&access_key, &secret);
    good.prepare().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = content(4000, 30);
    let src = dir.path().join("a");
    std::fs::write(&src, &data).unwrap();
    let id = good
        .put(&meta_for(ObjectKind::Bundle, &data), &src)
        .unwrap();
    assert!(read_all(&good, &id, None).unwrap() == data);

    let wrong_secret = "Wr0ngSecretThatMustNeverBePrinted0123456";
    for (ak, sk) in [
        (access_key.as_str(), wrong_secret),
        ("AKIAUNKNOWNKEY000000", wrong_secret),
    ] {
        let err = with(ak, sk).prepare().unwrap_err();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Auth), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&bucket) && msg.contains(REGION),
            "names bucket and region: {msg}"
        );
        assert!(msg.contains("credentials"), "says what to check: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
        for shown in [msg, format!("{err:?}")] {
            assert!(
                !shown.contains(wrong_secret) && !shown.contains(&secret),
                "{shown}"
            );
        }
        let err = with(ak, sk)
            .put(&meta_for(ObjectKind::Bundle, &data), &src)
            .unwrap_err();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Auth), "{err}");
    }
}

#[test]
fn a_missing_bucket_fails_prepare_with_not_found() {
    let Some(endpoint) = moto::url() else {
        return;
    };
    let bucket = bucket_name("missing");
    let b = S3Backend::new(options(&endpoint, &bucket, "DEEP_ARCHIVE")).unwrap();
    let err = b.prepare().unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::NotFound),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&bucket) && msg.contains(REGION), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

/// The encrypting wrapper over S3 (DEEP_ARCHIVE, so thaws and multipart go through it too).
#[test]
fn conformance_suite_encrypted_deep_archive() {
    use glaciersync::backend::crypt::{AgeKeys, Crypt};
    let Some(f) = Fixture::shared("age") else {
        return;
    };
    let b = f.backend("DEEP_ARCHIVE");
    let staging = f.dir.path().join("age-staging");
    let c = Crypt::new(NoExpedited(&b), AgeKeys::generate(), &staging);
    testsuite::run_all(&c, &suite_options());
    let s = b.stats();
    assert!(s.upload_part >= 6, "multipart uploads exercised: {s:?}");
    assert!(s.restore_object >= 1, "thaws went through: {s:?}");
}
