//! Storage backends: one trait, several implementations, one conformance suite.
//!
//! A backend stores opaque objects (one large file, one tar bundle, or one catalog copy) and
//! hands back an id for each: the key for key-addressed stores (local directory, S3), the
//! service-assigned archive id for Glacier vaults. The catalog records ids; backends know
//! nothing of the catalog, and the catalog nothing of backends: only `commands`, `sync`,
//! `restore`, `prune` and `legacy` join them.
//!
//! Cold storage is modelled as a warm-up: [`Backend::warm_up`] requests (or checks on) a
//! retrieval and returns an opaque ticket the caller keeps until the object is readable.

pub mod aws;
pub mod crypt;
pub mod glacier;
pub mod local;
mod multipart;
mod parts;
pub mod retry;
pub mod s3;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::Hash32;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// What an object holds. Decides its storage class, key and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// One large file's bytes as they are.
    File,
    /// A plain tar of small files.
    Bundle,
    /// A consistent copy of a profile's catalog (SQLite database).
    Catalog,
    /// The rows of a profile's catalog that changed since the previous catalog copy or delta
    /// (a zstd-compressed SQLite database): applies to the newest full copy before it, after
    /// the deltas between them. See `sync::catalog_delta`.
    CatalogDelta,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::File => "file",
            ObjectKind::Bundle => "bundle",
            ObjectKind::Catalog => "catalog",
            ObjectKind::CatalogDelta => "catalog-delta",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectKind> {
        match s {
            "file" => Some(ObjectKind::File),
            "bundle" => Some(ObjectKind::Bundle),
            "catalog" => Some(ObjectKind::Catalog),
            "catalog-delta" => Some(ObjectKind::CatalogDelta),
            _ => None,
        }
    }
}

/// Everything a backend needs to know about an object it is asked to store.
#[derive(Debug, Clone)]
pub struct PutMeta {
    pub kind: ObjectKind,
    /// Tree hash of the object's bytes. The backend must verify the bytes it sends against it
    /// and fail with [`BackendErrorKind::Corrupt`](crate::error::BackendErrorKind::Corrupt)
    /// (storing nothing) when they differ, e.g. because the source file changed meanwhile.
    pub tree_hash: Hash32,
    /// Size of the object in bytes.
    pub size: u64,
    /// Profile name, for descriptions.
    pub profile: String,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created: i64,
    /// Set by the encrypting wrapper ([`crypt`]): the object is age-encrypted and its age
    /// header is this many bytes. Key-addressed backends name it with `.age`, Glacier says so
    /// in the description, and listings give it back in [`ObjectInfo::age_header`].
    pub age_header: Option<u64>,
}

/// The error every backend returns when the bytes of `source` are not the ones `meta`
/// announces (the file changed since it was hashed): kind `Corrupt`, and nothing is stored.
/// `what` says what was found instead.
fn changed_while_stored(backend: &str, source: &Path, meta: &PutMeta, what: &str) -> Error {
    Error::backend(
        backend,
        BackendErrorKind::Corrupt,
        format!(
            "{} changed while it was stored (expected {} bytes with tree hash {}; {what}); \
             nothing was stored",
            source.display(),
            meta.size,
            meta.tree_hash
        ),
    )
}

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub id: String,
    pub size: u64,
    /// Known from the key or description, when the object was written by glaciersync.
    pub kind: Option<ObjectKind>,
    pub tree_hash: Option<Hash32>,
    /// Seconds since the Unix epoch.
    pub created: Option<i64>,
    /// The profile a Glacier archive's description names (escaped, perhaps cut, as written);
    /// `None` elsewhere, where the prefix or directory is the profile's.
    pub profile: Option<String>,
    /// Glacier: the archive description as the inventory gives it (whoever wrote it).
    pub description: Option<String>,
    /// Glacier: the SHA-256 tree hash the inventory gives for the archive (whoever wrote it).
    pub listed_tree_hash: Option<Hash32>,
    /// For age-encrypted objects: the length of their age header (see [`PutMeta::age_header`]).
    pub age_header: Option<u64>,
}

/// A half-open byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Retrieval speed (and price) for cold storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Bulk,
    Standard,
    Expedited,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Bulk => "bulk",
            Tier::Standard => "standard",
            Tier::Expedited => "expedited",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        match s.to_ascii_lowercase().as_str() {
            "bulk" => Some(Tier::Bulk),
            "standard" => Some(Tier::Standard),
            "expedited" => Some(Tier::Expedited),
            _ => None,
        }
    }
}

/// Where a warm-up stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarmState {
    /// Readable now. Pass `ticket` to [`Backend::get`].
    Ready { ticket: Option<String> },
    /// Requested, not yet readable. Keep `ticket` and call [`Backend::warm_up`] again later.
    Pending {
        ticket: String,
        /// Expected remaining wait: every backend with cold storage knows its tiers' times.
        eta: Duration,
    },
}

/// A listing, or the promise of one (Glacier inventories take hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOutcome {
    Ready(Vec<ObjectInfo>),
    Pending {
        ticket: String,
        eta: Option<Duration>,
    },
}

/// A place to store objects.
///
/// Implementations are blocking and thread-safe; callers run several calls at once for
/// parallelism. Every method returns [`crate::error::Error::Backend`] with a kind that says
/// whether a retry can help.
pub trait Backend: Send + Sync {
    /// Short name: `local`, `s3`, `glacier`.
    fn name(&self) -> &'static str;

    /// Human description of where data goes (no secrets), e.g. `s3://bucket/prefix/`.
    fn describe(&self) -> String;

    /// Whether objects of `kind` must be warmed up before [`get`](Self::get).
    fn needs_warm_up(&self, kind: ObjectKind) -> bool;

    /// Makes the backend ready for writing: creates the directory or vault when missing,
    /// checks that the bucket exists and is reachable.
    fn prepare(&self) -> Result<()>;

    /// Stores the file at `source` (exactly `meta.size` bytes) and returns its id. Storing the
    /// same content twice must not fail: a key-addressed backend returns the existing object.
    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String>;

    /// [`put`](Self::put) of a private file the caller hands over and wrote itself, computing
    /// `meta.tree_hash` as it did (the encrypting wrapper's staged ciphertext). A backend that
    /// can take the file as it is may move it instead of copying and re-hashing it (the local
    /// backend renames it); the file may be gone afterwards. The default is `put`.
    fn put_staged(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.put(meta, source)
    }

    /// Whether [`put_staged`](Self::put_staged) stores a file without checking its bytes
    /// against `meta.tree_hash` (the local directory renames it into place, or copies it):
    /// then that hash only names the object, and the encrypting wrapper names a fresh
    /// ciphertext by a random id instead of hashing it. A backend that sends the bytes
    /// somewhere (and checks them on the way) answers `false`.
    fn stages_by_rename(&self) -> bool {
        false
    }

    /// Writes the object's bytes (or `range` of them) to `out`; returns the bytes written.
    /// `ticket` is the one the last [`warm_up`](Self::warm_up) returned with `Ready`.
    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64>;

    /// Requests (ticket `None`) or checks on (ticket from an earlier call) a retrieval of
    /// `range` (or all) of object `id`. Never requests twice for a live ticket. A backend
    /// without cold storage answers `Ready { ticket: None }` at once.
    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState>;

    /// The range a warm-up of `want` of object `id` actually retrieves (Glacier aligns to
    /// megabytes; an encrypted object needs its header and whole chunks).
    fn retrieval_range(&self, id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        let _ = (id, object_size);
        want
    }

    /// Lists every object (ticket: as for warm-ups, for backends whose listing is a job).
    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome>;

    /// The listing, only if it can be had without starting anything (for dry runs): a
    /// backend whose listing is a job gives the output of the job `ticket` names once it has
    /// finished, and `None` with no ticket, while the job runs, or when the job is gone; it
    /// never starts one. Wrappers forward it. The default, for backends that list at once,
    /// is [`list`](Self::list).
    fn list_ready(&self, ticket: Option<&str>) -> Result<Option<Vec<ObjectInfo>>> {
        Ok(match self.list(ticket)? {
            ListOutcome::Ready(items) => Some(items),
            ListOutcome::Pending { .. } => None,
        })
    }

    /// Deletes an object. Deleting a missing object is an error of kind `NotFound`.
    fn delete(&self, id: &str) -> Result<()>;

    /// Called after a successful sync: abort incomplete uploads left by crashed runs.
    fn cleanup(&self) -> Result<()> {
        Ok(())
    }

    /// The catalogs that have written to this place (their owner ids, from the empty marker
    /// objects `owners/<id>`), where content-addressed keys let two catalogs share an object:
    /// a local directory, an S3 prefix. `None` where nothing is ever shared (a vault gives
    /// each upload its own archive id). Prune deletes nothing in a place another owner marked.
    fn owners(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    /// Marks this place as written by the catalog with owner id `id` (see
    /// [`owners`](Self::owners)); marking twice is no error.
    fn mark_owner(&self, id: &str) -> Result<()> {
        let _ = id;
        Ok(())
    }
}

/// Where owner markers live, relative to a key-addressed backend's root or prefix. Listings
/// of objects leave it out: a marker is no archive.
pub const OWNERS_DIR: &str = "owners";

/// Whether `id` is a plain owner id (what [`Backend::mark_owner`] accepts): 1-64 lower-case
/// hex digits, so it is safe as a file name and an S3 key.
pub fn is_owner_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key of an object in a key-addressed backend (local directory, S3), relative to the
/// backend's root or prefix. Content-addressed, so a retried or repeated upload of the same
/// bytes lands on the same key.
///
/// - `data/<first two hex>/<tree hash>` for a large file,
/// - `bundles/<tree hash>.tar` for a bundle,
/// - `catalog/<YYYYMMDDTHHMMSSZ>-<tree hash>.sqlite3.zst` for a catalog copy,
/// - `catalog/<YYYYMMDDTHHMMSSZ>-<tree hash>.delta.zst` for a catalog delta (both
///   zstd-compressed SQLite files; stores written before compression hold them without `.zst`).
///
/// An age-encrypted object (`meta.age_header` set) is named by the tree hash of its
/// ciphertext, with its header length and `.age` after it: `bundles/<hash>.<header>.tar.age`.
pub fn object_key(meta: &PutMeta) -> String {
    let h = meta.tree_hash.to_hex();
    let (h, age) = match meta.age_header {
        Some(n) => (format!("{h}.{n}"), ".age"),
        None => (h, ""),
    };
    match meta.kind {
        ObjectKind::File => format!("data/{}/{}{age}", &h[..2], h),
        ObjectKind::Bundle => format!("bundles/{h}.tar{age}"),
        ObjectKind::Catalog | ObjectKind::CatalogDelta => {
            let t = chrono::DateTime::from_timestamp(meta.created, 0).unwrap_or_default();
            let ext = if meta.kind == ObjectKind::Catalog {
                "sqlite3.zst"
            } else {
                "delta.zst"
            };
            format!("catalog/{}-{}.{ext}{age}", t.format("%Y%m%dT%H%M%SZ"), h)
        }
    }
}

/// What [`parse_object_key`] reads from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    pub kind: ObjectKind,
    pub tree_hash: Hash32,
    /// Catalog copies: their time.
    pub created: Option<i64>,
    /// Encrypted objects: the age header length.
    pub age_header: Option<u64>,
}

/// Splits `<hash>` or `<hash>.<age header length>` (when `age`).
fn hash_part(s: &str, age: bool) -> Option<(Hash32, Option<u64>)> {
    if !age {
        return Some((Hash32::from_hex(s)?, None));
    }
    let (h, n) = s.split_once('.')?;
    Some((Hash32::from_hex(h)?, Some(n.parse().ok()?)))
}

/// Parses a key made by [`object_key`] back into kind, tree hash, time (catalogs) and age
/// header length (encrypted objects).
pub fn parse_object_key(key: &str) -> Option<KeyInfo> {
    let (key, age) = match key.strip_suffix(".age") {
        Some(k) => (k, true),
        None => (key, false),
    };
    let info = |kind, (tree_hash, age_header), created| KeyInfo {
        kind,
        tree_hash,
        created,
        age_header,
    };
    if let Some(rest) = key.strip_prefix("data/") {
        let (_, h) = rest.split_once('/')?;
        return Some(info(ObjectKind::File, hash_part(h, age)?, None));
    }
    if let Some(rest) = key.strip_prefix("bundles/") {
        let h = rest.strip_suffix(".tar")?;
        return Some(info(ObjectKind::Bundle, hash_part(h, age)?, None));
    }
    let rest = key.strip_prefix("catalog/")?;
    let rest = rest.strip_suffix(".zst").unwrap_or(rest);
    let (rest, kind) = match rest.strip_suffix(".sqlite3") {
        Some(r) => (r, ObjectKind::Catalog),
        None => (rest.strip_suffix(".delta")?, ObjectKind::CatalogDelta),
    };
    let (t, h) = rest.split_once('-')?;
    let time = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%SZ").ok()?;
    let created = Some(time.and_utc().timestamp());
    Some(info(kind, hash_part(h, age)?, created))
}

impl<T: Backend + ?Sized> Backend for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        (**self).needs_warm_up(kind)
    }
    fn stages_by_rename(&self) -> bool {
        (**self).stages_by_rename()
    }
    fn prepare(&self) -> Result<()> {
        (**self).prepare()
    }
    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        (**self).put(meta, source)
    }
    fn put_staged(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        (**self).put_staged(meta, source)
    }
    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        (**self).get(id, range, ticket, out)
    }
    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        (**self).warm_up(id, range, tier, ticket)
    }
    fn retrieval_range(&self, id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        (**self).retrieval_range(id, object_size, want)
    }
    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        (**self).list(ticket)
    }
    fn list_ready(&self, ticket: Option<&str>) -> Result<Option<Vec<ObjectInfo>>> {
        (**self).list_ready(ticket)
    }
    fn delete(&self, id: &str) -> Result<()> {
        (**self).delete(id)
    }
    fn cleanup(&self) -> Result<()> {
        (**self).cleanup()
    }
    fn owners(&self) -> Result<Option<Vec<String>>> {
        (**self).owners()
    }
    fn mark_owner(&self, id: &str) -> Result<()> {
        (**self).mark_owner(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::tree_hash;

    #[test]
    fn keys_round_trip() {
        for age_header in [None, Some(183)] {
            for kind in [
                ObjectKind::File,
                ObjectKind::Bundle,
                ObjectKind::Catalog,
                ObjectKind::CatalogDelta,
            ] {
                let meta = PutMeta {
                    kind,
                    tree_hash: tree_hash(b"x"),
                    size: 1,
                    profile: "p".into(),
                    created: 1_764_000_000,
                    age_header,
                };
                let key = object_key(&meta);
                assert_eq!(key.ends_with(".age"), age_header.is_some(), "{key}");
                let k = parse_object_key(&key).unwrap();
                assert_eq!(k.kind, kind);
                assert_eq!(k.tree_hash, meta.tree_hash);
                assert_eq!(k.age_header, age_header);
                assert_eq!(
                    k.created.is_some(),
                    matches!(kind, ObjectKind::Catalog | ObjectKind::CatalogDelta)
                );
                if let Some(t) = k.created {
                    assert_eq!(t, meta.created);
                }
            }
        }
        assert_eq!(parse_object_key("other/thing"), None);
        assert_eq!(parse_object_key("bundles/ab.tar.age"), None);
    }
}
