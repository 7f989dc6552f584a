//! Encryption end to end on the remote peers: on moto's S3 the bucket holds no plaintext
//! marker and no file name, and every object is an age file; on the strict vault server a
//! restore of one small file out of an encrypted bundle retrieves a range (from the age header
//! to the chunks that hold the file), and the bytes retrieved are counted.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/glacier_server.rs"]
mod glacier_server;
#[path = "common/moto.rs"]
mod moto;

use glacier_server::Server;
use glaciersync::backend::testsuite::content;
use serde_json::Value;
use std::path::Path;

const MARKER: &str = "PLAINTEXT-MARKER-5d2b91";
const MARKER_NAME: &str = "marker-file-name-r8w.txt";

fn run(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let (code, json, stderr) = cli::run_json(dir, args);
    (code, json["profiles"][0].clone(), stderr)
}

/// A key pair written as `age-keygen` would: (identity file, recipient).
fn keys(dir: &Path) -> (std::path::PathBuf, String) {
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(dir.join("key.txt"))
        .output()
        .expect("the reference `age-keygen` (Debian package `age`) is installed");
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.join("key.txt")).unwrap();
    let r = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (dir.join("key.txt"), r)
}

#[test]
fn the_s3_bucket_holds_only_age_files_without_markers() {
    let Some(moto) = moto::url() else { return };
    let bucket = moto::unique("gs-age");
    let (status, body) = moto::request(&moto, "PUT", &format!("/{bucket}"), &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keys(d);
    std::fs::write(
        d.join("s.ini"),
        format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\naws_region_name = us-east-1\n\
             endpoint_url = {moto}\ndatabase_dir = db\n\n[p]\nbackend = s3\nbucket = {bucket}\n\
             storage_class = STANDARD\npath = src\narchive_byte_size_threshold = 1MiB\n\
             age_recipients = {recipient}\nage_identity_file = {}\n",
            id.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("src/sub")).unwrap();
    std::fs::write(d.join(format!("src/sub/{MARKER_NAME}")), MARKER.repeat(10)).unwrap();
    std::fs::write(d.join("src/large.bin"), MARKER.repeat(60_000)).unwrap();
    let (code, p, err) = run(d, &["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    // Every object of the bucket, fetched with boto3 from moto's own environment.
    let python = std::env::var("GLACIERSYNC_TEST_PYTHON").expect("GLACIERSYNC_TEST_PYTHON");
    let fetched = d.join("bucket");
    let script = format!(
        "import boto3, os\n\
         s3 = boto3.client('s3', endpoint_url='{moto}', region_name='us-east-1',\n\
           aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', []): \
         p = os.path.join('{}', o['Key']); os.makedirs(os.path.dirname(p), exist_ok=True); \
         s3.download_file('{bucket}', o['Key'], p)\n",
        fetched.display()
    );
    let st = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(st.success());
    let mut objects = Vec::new();
    let mut stack = vec![fetched.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.path().parent().is_some_and(|d| d.ends_with("owners")) {
                // The owner marker: empty, named by a random id (docs/catalog.md).
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()));
                assert_eq!(std::fs::metadata(e.path()).unwrap().len(), 0, "{name}");
            } else {
                objects.push(e.path());
            }
        }
    }
    assert_eq!(
        objects.len(),
        3,
        "a bundle, a file and a catalog copy: {objects:?}"
    );
    for o in &objects {
        let key = o
            .strip_prefix(&fetched)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(key.ends_with(".age") && !key.contains("marker"), "{key}");
        let body = std::fs::read(o).unwrap();
        assert!(body.starts_with(b"age-encryption.org/v1\n"), "{key}");
        for m in [MARKER, MARKER_NAME] {
            assert!(
                !body.windows(m.len()).any(|w| w == m.as_bytes()),
                "plaintext in {key}"
            );
        }
    }
    let (code, r, err) = run(d, &["restore", "--to", "back"]);
    assert_eq!(code, 0, "{err}\n{r}");
    assert_eq!(
        std::fs::read_to_string(d.join(format!("back/path/sub/{MARKER_NAME}"))).unwrap(),
        MARKER.repeat(10)
    );
    let (code, v, err) = run(d, &["verify", "--remote"]);
    assert_eq!(
        code, 0,
        "the listing maps back to the catalog's ids and sizes: {err}\n{v}"
    );
}

/// The path (as `restore` takes it) of the bundle member stored first in its bundle.
fn first_member(catalog: &Path) -> String {
    let db = rusqlite::Connection::open(catalog).unwrap();
    db.query_row(
        "SELECT v.tree || '/' || CAST(v.path AS TEXT) FROM versions v JOIN contents c ON c.hash = v.hash
           JOIN archives a ON a.id = c.archive_id
          WHERE a.kind = 'bundle' ORDER BY c.offset LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn one_member_of_an_encrypted_bundle_is_retrieved_by_range_from_a_vault() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keys(d);
    std::fs::write(
        d.join("s.ini"),
        format!(
            "[global]\naws_access_key = testing\naws_secret_key = testing\naws_region_name = us-east-1\n\
             endpoint_url = {}\ndatabase_dir = db\n\n[p]\nvault_name = age-vault\npath = src\n\
             archive_byte_size_threshold = 8MiB\npart_size = 1MiB\nage_recipients = {recipient}\n\
             age_identity_file = {}\n",
            server.url(),
            id.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("src/small")).unwrap();
    // 60 files of 100 KiB: one encrypted bundle of about 6 MiB.
    for i in 0..60 {
        std::fs::write(
            d.join(format!("src/small/{i:02}.bin")),
            content(100 * 1024, i),
        )
        .unwrap();
    }
    let (code, p, err) = run(d, &["sync"]);
    assert_eq!(code, 0, "{err}\n{p}");
    let member = first_member(&d.join("db/p.sqlite3"));
    let args = [
        "restore",
        "--to",
        "out",
        "--tier",
        "expedited",
        member.as_str(),
    ];
    let (code, first, err) = run(d, &args);
    assert_eq!(code, 75, "requested: {err}\n{first}");
    let (code, done, err) = run(d, &args);
    assert_eq!(code, 0, "{err}\n{done}");
    assert_eq!(done["restored"], 1, "{done}");
    let rel = member.strip_prefix("path/").unwrap();
    assert_eq!(
        std::fs::read(d.join("out").join(&member)).unwrap(),
        std::fs::read(d.join("src").join(rel)).unwrap()
    );
    let log = server.counters()["log"].clone();
    let ranges: Vec<(u64, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["RetrievalByteRange"].as_str())
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1)
        })
        .collect();
    assert_eq!(
        ranges.len(),
        1,
        "one ranged job, not the whole bundle: {log}"
    );
    let retrieved = ranges[0].1 - ranges[0].0;
    assert_eq!(ranges[0].0, 0, "from the age header");
    assert!(
        retrieved <= 2 << 20,
        "{retrieved} bytes retrieved for one 100 KiB file of a 6 MiB bundle"
    );
}
