//! The backend conformance suite. Every backend runs it with a few lines:
//!
//! ```
//! use glaciersync::backend::{local::LocalBackend, testsuite};
//! let dir = std::env::temp_dir().join(format!("glaciersync-doc-{}", std::process::id()));
//! testsuite::run_all(&LocalBackend::new(&dir), &testsuite::SuiteOptions::default());
//! # std::fs::remove_dir_all(&dir).ok();
//! ```
//!
//! It panics (test failure) on the first broken promise of the [`Backend`] trait. Backends that
//! cannot do something their peer server lacks say so in `SuiteOptions` and in a note.
//!
//! Test code only: the module is built for the crate's unit tests and with the `testsuite`
//! cargo feature, which the integration tests get through the crate's dev-dependency on itself
//! (`Cargo.toml`). The shipped library does not carry it.

use super::{Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::BackendErrorKind;
use crate::hash::tree_hash;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a backend's peer supports, and how long to wait for cold reads.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// How long to keep polling a warm-up or listing job before failing.
    pub poll_timeout: Duration,
    pub poll_interval: Duration,
    /// Sizes of the objects to round-trip. Include one above your multipart threshold.
    pub sizes: Vec<usize>,
    /// Whether a listing reflects writes at once (Glacier inventories do not).
    pub listing_is_immediate: bool,
    /// Whether reading a missing id fails with `NotFound` (moto's Glacier answers 500).
    pub missing_is_not_found: bool,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            poll_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            sizes: vec![1, 1000, (1 << 20) + 7, 3 * (1 << 20) + 123],
            listing_is_immediate: true,
            missing_is_not_found: true,
        }
    }
}

/// Deterministic, incompressible-looking test content.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Metadata for storing `data` as an object of `kind`.
pub fn meta_for(kind: ObjectKind, data: &[u8]) -> PutMeta {
    PutMeta {
        kind,
        tree_hash: tree_hash(data),
        size: data.len() as u64,
        profile: "conformance".into(),
        created: 1_790_000_000,
        age_header: None,
    }
}

fn write_source(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(data).unwrap();
    path
}

/// Warms `id` up (polling) and reads it, or `range` of it.
pub fn read_back(
    b: &dyn Backend,
    id: &str,
    range: Option<ByteRange>,
    opts: &SuiteOptions,
) -> Vec<u8> {
    let deadline = Instant::now() + opts.poll_timeout;
    let mut ticket: Option<String> = None;
    let ticket = loop {
        match b
            .warm_up(id, range, Tier::Expedited, ticket.as_deref())
            .expect("warm_up")
        {
            WarmState::Ready { ticket } => break ticket,
            WarmState::Pending { ticket: t, .. } => {
                assert!(Instant::now() < deadline, "warm-up of {id} never finished");
                ticket = Some(t);
                std::thread::sleep(opts.poll_interval);
            }
        }
    };
    let mut out = Vec::new();
    let n = b
        .get(id, range, ticket.as_deref(), &mut out)
        .expect("get after warm-up");
    assert_eq!(n as usize, out.len(), "get reports the bytes it wrote");
    out
}

/// Lists (polling a listing job when there is one).
pub fn list_all(b: &dyn Backend, opts: &SuiteOptions) -> Vec<ObjectInfo> {
    let deadline = Instant::now() + opts.poll_timeout;
    let mut ticket: Option<String> = None;
    loop {
        match b.list(ticket.as_deref()).expect("list") {
            ListOutcome::Ready(items) => return items,
            ListOutcome::Pending { ticket: t, .. } => {
                assert!(Instant::now() < deadline, "listing never finished");
                ticket = Some(t);
                std::thread::sleep(opts.poll_interval);
            }
        }
    }
}

/// Runs every check of the suite.
pub fn run_all(b: &dyn Backend, opts: &SuiteOptions) {
    b.prepare().expect("prepare");
    b.prepare().expect("prepare is idempotent");
    let dir = tempfile_dir();
    let ids = round_trips(b, opts, &dir);
    ranged_reads(b, opts, &dir);
    same_content_twice(b, &dir);
    changed_source_is_refused(b, &dir);
    missing_objects(b, opts);
    listing(b, opts, &dir, &ids);
    deletion(b, opts, &dir);
    owner_marks(b, opts);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "glaciersync-suite-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every size round-trips byte for byte, for every kind.
fn round_trips(b: &dyn Backend, opts: &SuiteOptions, dir: &Path) -> Vec<(String, usize)> {
    let mut ids = Vec::new();
    for (i, &size) in opts.sizes.iter().enumerate() {
        let kind = [ObjectKind::File, ObjectKind::Bundle, ObjectKind::Catalog][i % 3];
        let data = content(size, i as u64 + 1);
        let src = write_source(dir, &format!("rt{i}"), &data);
        let id = b.put(&meta_for(kind, &data), &src).expect("put");
        assert!(!id.is_empty(), "put returns an id");
        let back = read_back(b, &id, None, opts);
        assert_eq!(back.len(), data.len(), "size of {id}");
        assert!(back == data, "content of {id} differs");
        ids.push((id, size));
    }
    ids
}

/// Ranged reads return exactly the bytes asked for.
fn ranged_reads(b: &dyn Backend, opts: &SuiteOptions, dir: &Path) {
    let data = content(2 * (1 << 20) + 4321, 99);
    let src = write_source(dir, "ranged", &data);
    let id = b
        .put(&meta_for(ObjectKind::Bundle, &data), &src)
        .expect("put");
    for (start, end) in [
        (0, 1),
        (10, 5000),
        ((1 << 20) - 3, (1 << 20) + 3),
        (0, data.len()),
    ] {
        let r = ByteRange {
            start: start as u64,
            end: end as u64,
        };
        let got = read_back(b, &id, Some(r), opts);
        assert!(got == data[start..end], "range {start}..{end} of {id}");
    }
}

/// Storing the same bytes again succeeds and leaves a readable object.
fn same_content_twice(b: &dyn Backend, dir: &Path) {
    let data = content(4096, 7);
    let src = write_source(dir, "twice", &data);
    let meta = meta_for(ObjectKind::Bundle, &data);
    let a = b.put(&meta, &src).expect("first put");
    let c = b.put(&meta, &src).expect("second put of the same content");
    assert!(!a.is_empty() && !c.is_empty());
}

/// A source that does not match its announced tree hash is refused as corrupt.
fn changed_source_is_refused(b: &dyn Backend, dir: &Path) {
    let data = content(5000, 8);
    let meta = meta_for(ObjectKind::File, &data);
    let mut other = data.clone();
    other[4000] ^= 0xff;
    let src = write_source(dir, "changed", &other);
    let err = b
        .put(&meta, &src)
        .expect_err("put of bytes that differ from meta");
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Corrupt),
        "wrong kind: {err}"
    );
}

/// Missing objects are reported, not invented.
fn missing_objects(b: &dyn Backend, opts: &SuiteOptions) {
    let id = crate::backend::object_key(&meta_for(ObjectKind::File, b"never stored"));
    let mut out = Vec::new();
    let err = b
        .get(&id, None, None, &mut out)
        .expect_err("get of a missing object");
    if opts.missing_is_not_found {
        assert!(
            matches!(
                err.backend_kind(),
                Some(BackendErrorKind::NotFound | BackendErrorKind::NotWarm)
            ),
            "wrong kind: {err}"
        );
    }
    assert!(out.is_empty(), "nothing written for a missing object");
}

/// The listing shows what was stored, with sizes and kinds.
fn listing(b: &dyn Backend, opts: &SuiteOptions, _dir: &Path, ids: &[(String, usize)]) {
    if !opts.listing_is_immediate {
        return;
    }
    let items = list_all(b, opts);
    for (id, size) in ids {
        let item = items
            .iter()
            .find(|o| &o.id == id)
            .unwrap_or_else(|| panic!("{id} missing from the listing"));
        assert_eq!(item.size, *size as u64, "listed size of {id}");
        assert!(item.kind.is_some(), "kind of {id} is known");
    }
    let catalogs: Vec<_> = items
        .iter()
        .filter(|o| o.kind == Some(ObjectKind::Catalog))
        .collect();
    assert!(
        catalogs.iter().all(|c| c.created.is_some()),
        "catalog copies carry their time"
    );
}

/// Where objects can be shared, marks are listed (sorted, each once, even when marked twice),
/// never appear among the objects, and a bad id is refused. Where they cannot, marking is a
/// no-op and there is nothing to list.
fn owner_marks(b: &dyn Backend, opts: &SuiteOptions) {
    let before = b.owners().expect("owners");
    for id in ["f00d", "0badcafe", "f00d"] {
        b.mark_owner(id).expect("mark_owner");
    }
    let Some(before) = before else {
        assert_eq!(b.owners().expect("owners"), None, "owners stays None");
        return;
    };
    let after = b.owners().expect("owners").expect("owners stays Some");
    for id in ["0badcafe", "f00d"] {
        assert_eq!(after.iter().filter(|o| *o == id).count(), 1, "owner {id}");
    }
    assert!(
        after.len() <= before.len() + 2,
        "marks listed once: {after:?}"
    );
    assert!(after.is_sorted(), "owners sorted: {after:?}");
    assert!(b.mark_owner("../x").is_err(), "a path as owner id");
    if opts.listing_is_immediate {
        let items = list_all(b, opts);
        assert!(
            items.iter().all(|o| !o.id.contains("f00d")),
            "a marker listed as an object"
        );
    }
}

/// Deleted objects are gone; deleting again is `NotFound`.
fn deletion(b: &dyn Backend, opts: &SuiteOptions, dir: &Path) {
    let data = content(3000, 11);
    let src = write_source(dir, "del", &data);
    let id = b
        .put(&meta_for(ObjectKind::File, &data), &src)
        .expect("put");
    b.delete(&id).expect("delete");
    if opts.listing_is_immediate {
        assert!(
            list_all(b, opts).iter().all(|o| o.id != id),
            "deleted {id} still listed"
        );
    }
    if opts.missing_is_not_found {
        let err = b.delete(&id).expect_err("second delete");
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::NotFound),
            "{err}"
        );
    }
}
