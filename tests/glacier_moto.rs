//! The Glacier backend against moto's server (`GLACIERSYNC_TEST_MOTO=http://127.0.0.1:PORT`).
//!
//! moto lacks parts of the vault API, so these tests stay within what it has: no multipart
//! uploads (the part size is above every size used), retrieval ranges accepted but ignored (the
//! whole archive comes back; every range here starts in the first megabyte), no checksums on
//! downloads, archive id = MD5 of the body, and 500 for deleting a missing archive. Jobs take 2 s
//! (Expedited) or 5 s (inventories, moto's Standard).

#[path = "common/moto.rs"]
mod moto;

use glaciersync::backend::aws::AwsOptions;
use glaciersync::backend::glacier::{GlacierBackend, GlacierOptions};
use glaciersync::backend::testsuite::{self, SuiteOptions, content, read_back};
use glaciersync::backend::{Backend, ByteRange, ObjectKind, PutMeta};
use glaciersync::error::BackendErrorKind;
use glaciersync::hash::{MIB, tree_hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn backend(url: &str, test: &str) -> GlacierBackend {
    let vault = format!(
        "moto-{test}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    GlacierBackend::new(GlacierOptions {
        aws: AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(url.to_string()),
            access_key: Some("testing".into()),
            secret_key: Some("testing".into()),
            profile: None,
            ..Default::default()
        },
        vault,
        // Above every size the suite stores: moto has no multipart upload routes.
        part_size: 8 * MIB,
        concurrency: 4,
    })
    .unwrap()
}

fn opts() -> SuiteOptions {
    SuiteOptions {
        poll_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(250),
        // Deleting a missing archive is a 500 in moto.
        missing_is_not_found: false,
        // Glacier inventories lag behind writes (moto's does not, see the test below).
        listing_is_immediate: false,
        ..Default::default()
    }
}

#[test]
fn conformance_suite_on_moto() {
    let Some(url) = moto::url() else { return };
    let b = backend(&url, "suite");
    testsuite::run_all(&b, &opts());
}

#[test]
fn inventory_on_moto_names_our_archives() {
    let Some(url) = moto::url() else { return };
    let b = backend(&url, "inventory");
    b.prepare().unwrap();
    b.prepare().unwrap(); // must not wipe anything (moto's CreateVault replaces a vault)
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (i, (kind, size)) in [
        (ObjectKind::File, 3 * MIB as usize + 5),
        (ObjectKind::Bundle, 10_000),
        (ObjectKind::Catalog, 77),
    ]
    .into_iter()
    .enumerate()
    {
        let data = content(size, 100 + i as u64);
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &data).unwrap();
        let meta = PutMeta {
            kind,
            tree_hash: tree_hash(&data),
            size: size as u64,
            profile: "moto ü".into(),
            created: 1_795_687_200 + i as i64,
            age_header: None,
        };
        // moto answers with a plain SHA-256 above 1 MiB; the upload must not fail on that.
        ids.push((b.put(&meta, &path).unwrap(), meta));
    }
    b.prepare().unwrap();
    let items = testsuite::list_all(&b, &opts());
    assert_eq!(items.len(), 3, "{items:?}");
    for (id, meta) in &ids {
        let item = items.iter().find(|o| &o.id == id).unwrap();
        assert_eq!(item.size, meta.size);
        assert_eq!(item.kind, Some(meta.kind));
        assert_eq!(item.tree_hash, Some(meta.tree_hash));
        assert_eq!(item.created, Some(meta.created));
    }
    // A range of the big one (moto sends the whole archive; the backend cuts it).
    let (id, meta) = &ids[0];
    let want = ByteRange {
        start: 1000,
        end: MIB + 10,
    };
    let got = read_back(&b, id, Some(want), &opts());
    let data = content(meta.size as usize, 100);
    assert!(got == data[1000..MIB as usize + 10]);
    // Without a warm-up nothing is readable.
    let err = b.get(id, None, None, &mut Vec::new()).unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::NotWarm), "{err}");
    b.delete(id).unwrap();
    b.cleanup().unwrap_err(); // moto has no multipart routes: ListMultipartUploads is a 404
}
