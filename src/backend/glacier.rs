//! The Glacier vault backend (the 2012 vault REST API through `aws-sdk-glacier`).
//!
//! - **Uploads** read the source once. Each piece (the whole archive up to the part size, else
//!   one part) is read into memory under a permit of the backend-wide semaphore, hashed there
//!   (tree hash and plain SHA-256 in the same pass) and sent with both headers set. Archives
//!   above the part size go multipart, several parts in flight; the archive's tree hash is
//!   combined from the parts' and checked against [`PutMeta::tree_hash`] before completing, so
//!   a source that changed meanwhile stores nothing. Memory stays below concurrency × part size.
//! - **Resume**: a multipart upload left by a crash (or by a transient failure: the SDK's own
//!   retries are off, the [`Retrying`](super::retry::Retrying) wrapper re-calls `put`) is found
//!   by its description (same kind, tree hash and profile) and part size; parts whose tree hash
//!   Glacier reports are not sent again.
//! - **Retrieval** is a job: [`Backend::warm_up`] initiates it and returns a small JSON ticket
//!   (job id and the archive range it retrieves); later calls check on it, and re-initiate (with a
//!   warning) when Glacier no longer knows the job. Ranges are widened to whole megabytes, and to
//!   a tree-hash aligned node when that at most doubles them, so that downloads come back with
//!   checksums. [`Backend::get`] downloads the fewest tree-hash nodes (each at most the part
//!   size, capped at 64 MiB) that cover the wanted bytes, at most 2 MiB more than asked for;
//!   it verifies each against `x-amz-sha256-tree-hash` when Glacier sends one and writes only
//!   verified bytes, so a download that breaks off resumes at a node boundary.
//! - **Listing** is an inventory job; descriptions written by glaciersync (ASCII JSON, no file
//!   names) give kind, tree hash and time back.

use super::aws::{self, AwsOptions};
use super::{Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, TreeHasher, combine_tree_hashes, tree_hash};
use crate::log;
use aws_sdk_glacier::Client;
use aws_sdk_glacier::config::retry::RetryConfig;
use aws_sdk_glacier::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glacier::primitives::ByteStream;
use aws_sdk_glacier::types::{JobParameters, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const BACKEND: &str = "glacier";

/// At most this many parts per multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// The largest part size Glacier accepts (4 GiB).
pub const MAX_PART_SIZE: u64 = 4096 * MIB;
/// The largest archive sent in one UploadArchive request ("up to 4 GB").
const MAX_SINGLE_UPLOAD: u64 = 4_000_000_000;
/// Largest download window (bytes held in memory per download).
const MAX_DOWNLOAD_WINDOW: u64 = 64 * MIB;
/// Reads and hashes sources in pieces of this size.
const READ_CHUNK: usize = MIB as usize;
/// Longest escaped profile name put into a description (keeps it under 1024 characters).
const MAX_DESCRIPTION_PROFILE: usize = 512;

/// How to reach a vault.
#[derive(Debug, Clone)]
pub struct GlacierOptions {
    pub aws: AwsOptions,
    pub vault: String,
    /// Multipart part size: a power-of-two number of MiB, 1 MiB to 4 GiB. Archives up to this
    /// size go up in one request. Raised per archive so that none needs more than 10,000 parts.
    pub part_size: u64,
    /// Requests in flight at once, backend-wide.
    pub concurrency: usize,
}

/// A Glacier vault.
pub struct GlacierBackend {
    runtime: tokio::runtime::Runtime,
    client: Client,
    ctx: Ctx,
    part_size: u64,
    permits: Arc<Semaphore>,
    /// Multipart uploads this process is writing: never resumed twice, never cleaned up.
    active_uploads: Arc<Mutex<HashSet<String>>>,
    /// The profile whose unfinished uploads [`Backend::cleanup`] aborts (as its descriptions
    /// name it); `None`: every profile's.
    cleanup_profile: Option<String>,
    /// Test hook: stop a multipart put after starting this many part uploads.
    stop_after_parts: AtomicUsize,
}

/// Checks a vault name: 1 to 255 characters of `a-z`, `A-Z`, `0-9`, `_`, `-` and `.`.
pub fn validate_vault_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid Glacier vault name {name:?}: use 1 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'"
        )))
    }
}

/// Checks a part size: a power-of-two number of MiB from 1 MiB to 4 GiB.
pub fn validate_part_size(part_size: u64) -> Result<()> {
    let ok = (MIB..=MAX_PART_SIZE).contains(&part_size)
        && part_size.is_multiple_of(MIB)
        && (part_size / MIB).is_power_of_two();
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid part_size {part_size} for Glacier: use a power of two MiB from 1MiB to 4GiB (1MiB, 2MiB, 4MiB, ... 64MiB, ...)"
        )))
    }
}

/// The part size for an archive of `size` bytes: `part_size`, doubled until at most 10,000
/// parts are needed.
pub fn part_size_for(part_size: u64, size: u64) -> Result<u64> {
    let mut p = part_size;
    while size.div_ceil(p) > MAX_PARTS {
        if p >= MAX_PART_SIZE {
            return Err(Error::backend(
                BACKEND,
                BackendErrorKind::Permanent,
                format!(
                    "{size} bytes is more than a Glacier archive can hold (10,000 parts of 4 GiB)"
                ),
            ));
        }
        p *= 2;
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// Archive descriptions
// ---------------------------------------------------------------------------------------------

/// What glaciersync writes into an archive description, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub kind: ObjectKind,
    pub tree_hash: Hash32,
    pub profile: String,
    /// Seconds since the Unix epoch.
    pub time: Option<i64>,
}

/// Appends `c` to `out` as JSON string content made of printable ASCII only.
fn push_json_ascii(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        ' '..='~' => out.push(c),
        _ => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
}

/// The archive description of an object: ASCII JSON under 1024 characters, no file names, e.g.
/// `{"glaciersync":1,"kind":"file","hash":"…","profile":"photos","time":"2026-11-26T10:00:00Z"}`.
/// Non-ASCII profile names are `\u` escaped; very long ones are cut.
pub fn description(meta: &PutMeta) -> String {
    let mut profile = String::new();
    for c in meta.profile.chars() {
        let mut piece = String::new();
        push_json_ascii(&mut piece, c);
        if profile.len() + piece.len() > MAX_DESCRIPTION_PROFILE {
            break;
        }
        profile.push_str(&piece);
    }
    let time = chrono::DateTime::from_timestamp(meta.created, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"{{"glaciersync":1,"kind":"{}","hash":"{}","profile":"{}","time":"{}"}}"#,
        meta.kind.as_str(),
        meta.tree_hash,
        profile,
        time
    )
}

fn description_json(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str::<serde_json::Value>(text.trim()).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Whether glaciersync wrote this description (of any version).
pub fn is_our_description(text: &str) -> bool {
    description_json(text).is_some_and(|m| m.contains_key("glaciersync"))
}

/// Parses a description written by [`description`]; `None` for anything else.
pub fn parse_description(text: &str) -> Option<Description> {
    let map = description_json(text)?;
    if map.get("glaciersync")?.as_u64()? < 1 {
        return None;
    }
    let kind = ObjectKind::parse(map.get("kind")?.as_str()?)?;
    let tree_hash = Hash32::from_hex(map.get("hash")?.as_str()?)?;
    let profile = map
        .get("profile")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_string();
    let time = map
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    Some(Description {
        kind,
        tree_hash,
        profile,
        time,
    })
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

fn floor_mib(x: u64) -> u64 {
    x / MIB * MIB
}

fn ceil_mib(x: u64) -> u64 {
    x.div_ceil(MIB) * MIB
}

/// The smallest node of a tree hash (an aligned run of 2^k MiB) that contains the MiB-aligned
/// range `[start, end)`, ignoring where the archive ends.
fn tree_node_cover(start: u64, end: u64) -> (u64, u64) {
    let mut span = MIB;
    while start / span != (end - 1) / span {
        span *= 2;
    }
    let s = start / span * span;
    (s, s + span)
}

/// Whether `[start, end)` is a node of the tree hash of an archive of `size` bytes: Glacier
/// returns checksums only for such ranges.
pub fn is_tree_hash_aligned(start: u64, end: u64, size: u64) -> bool {
    if !start.is_multiple_of(MIB) || start >= size || end <= start {
        return false;
    }
    let mut span = MIB;
    while start.is_multiple_of(span) {
        if end == (start + span).min(size) {
            return true;
        }
        if start + span >= size {
            return false;
        }
        span *= 2;
    }
    false
}

/// A tree node costs at most this many times the megabyte-aligned range to be preferred.
const NODE_WIDENING: u64 = 2;

/// The ranges an archive-retrieval job for `want` asks for, best first, when the archive's size
/// is unknown: a cheap tree-hash aligned node, the megabyte-aligned range, the range up to
/// `want.end` (valid when that is the archive's end), and at last the whole archive (`None`).
/// Glacier answers 400 to a range that ends past the archive; the next candidate is tried then.
fn retrieval_candidates(want: ByteRange) -> Vec<Option<(u64, u64)>> {
    let s = floor_mib(want.start);
    let e = ceil_mib(want.end);
    let mut out = Vec::new();
    let (ns, ne) = tree_node_cover(s, e);
    if (ns, ne) != (s, e) && ne - ns <= NODE_WIDENING * (e - s) {
        out.push(Some((ns, ne)));
    }
    out.push(Some((s, e)));
    if want.end != e {
        out.push(Some((s, want.end)));
    }
    out.push(None);
    out
}

/// The range retrieved for `want` of an archive of `size` bytes (see [`retrieval_candidates`]).
pub fn aligned_retrieval_range(size: u64, want: ByteRange) -> ByteRange {
    if want.is_empty() || want.end > size {
        return want;
    }
    let s = floor_mib(want.start);
    let e = ceil_mib(want.end);
    let (ns, ne) = tree_node_cover(s, e);
    if ne <= size && ne - ns <= NODE_WIDENING * (e - s) {
        return ByteRange { start: ns, end: ne };
    }
    ByteRange {
        start: s,
        end: e.min(size),
    }
}

/// Splits `[a, b)` into pieces of at most `window` bytes.
fn exact_pieces(a: u64, b: u64, window: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut s = a;
    while s < b {
        let e = (s / window + 1) * window;
        out.push((s, e.min(b)));
        s = e.min(b);
    }
    out
}

/// Covers `[a, b)` of an archive of `size` bytes with consecutive tree-hash nodes of at most
/// `max_span` bytes (a power-of-two MiB): the fewest such pieces from the megabyte below `a` to
/// the megabyte above `b`, so at most 2 MiB more than asked for are downloaded, all verifiable.
fn aligned_pieces(a: u64, b: u64, size: u64, max_span: u64) -> Vec<(u64, u64)> {
    let hi = ceil_mib(b).min(size);
    let mut out = Vec::new();
    let mut s = floor_mib(a);
    while s < hi {
        let mut span = MIB;
        while span * 2 <= max_span && s.is_multiple_of(span * 2) && (s + span * 2).min(size) <= hi {
            span *= 2;
        }
        let e = (s + span).min(size);
        out.push((s, e));
        s = e;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------------------------

/// What the caller keeps between warm-ups (and passes to `get`): the job and what it retrieves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Ticket {
    job: String,
    /// An inventory job (for `list`) rather than an archive retrieval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    inventory: bool,
    /// First archive byte the job retrieves.
    #[serde(default)]
    start: u64,
    /// End (exclusive) of the retrieved range; none: to the archive's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<u64>,
    /// The archive's size, once Glacier told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// The retrieved range is tree-hash aligned (Glacier sends checksums for aligned downloads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    aligned: bool,
}

impl Ticket {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("tickets serialize")
    }

    fn decode(text: &str) -> Option<Ticket> {
        serde_json::from_str(text).ok()
    }

    /// The archive-absolute end of the job output, when known.
    fn output_end(&self) -> Option<u64> {
        self.end.or(self.size)
    }

    /// Whether the job's output holds `want` (none: the whole archive).
    fn covers(&self, want: Option<ByteRange>) -> bool {
        match want {
            None => self.start == 0 && (self.end.is_none() || self.end == self.size),
            Some(r) => self.start <= r.start && self.end.is_none_or(|e| r.end <= e),
        }
    }
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Bulk => "Bulk",
        Tier::Standard => "Standard",
        Tier::Expedited => "Expedited",
    }
}

/// The longest a retrieval of this tier usually takes.
fn tier_duration(tier: Tier) -> Duration {
    match tier {
        Tier::Expedited => Duration::from_secs(5 * 60),
        Tier::Standard => Duration::from_secs(5 * 3600),
        Tier::Bulk => Duration::from_secs(12 * 3600),
    }
}

/// Inventories take about as long as a standard retrieval.
const INVENTORY_DURATION: Duration = Duration::from_secs(5 * 3600);

/// Expected remaining wait of a job started at `created` (ISO 8601) that takes up to `total`.
fn remaining(total: Duration, created: Option<&str>) -> Duration {
    let elapsed = created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|c| chrono::Utc::now().signed_duration_since(c))
        .and_then(|d| d.to_std().ok())
        .unwrap_or_default();
    total
        .saturating_sub(elapsed)
        .max(Duration::from_secs(60).min(total))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The same backend error with another kind and more words; other errors as they are.
fn rekind(err: Error, kind: BackendErrorKind, more: &str) -> Error {
    match err {
        Error::Backend {
            backend, message, ..
        } => Error::Backend {
            backend,
            kind,
            message: format!("{message}{more}"),
        },
        other => other,
    }
}

/// Names the vault and region in errors; maps SDK errors to kinds.
#[derive(Clone)]
struct Ctx {
    vault: Arc<str>,
    region: Arc<str>,
}

impl Ctx {
    fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        Error::backend(BACKEND, kind, msg)
    }

    fn map<E, R>(&self, what: &str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().unwrap_or_default().to_string();
        let mapped = aws::map_sdk_error(BACKEND, what, err);
        let Error::Backend { kind, message, .. } = mapped else {
            return mapped;
        };
        let (kind, message) = match code.as_str() {
            // moto's answer for a missing vault.
            "VaultNotFound" => (BackendErrorKind::NotFound, message),
            // Expedited capacity runs out now and then; later it is back.
            "InsufficientCapacityException" => (BackendErrorKind::Transient, message),
            "NoLongerSupportedException" => (
                BackendErrorKind::Permanent,
                format!(
                    "{message} (Glacier vaults take no new customers since 2025-12-15: use an existing vault, or the s3 backend with an archive storage class)"
                ),
            ),
            "PolicyEnforcedException" => (
                BackendErrorKind::Permanent,
                format!("{message} (the vault's data retrieval policy refused it)"),
            ),
            _ => (kind, message),
        };
        if kind == BackendErrorKind::Auth {
            return self.err(kind, self.auth_line(what, &code));
        }
        self.err(kind, message)
    }

    /// One clear line for refused credentials; no secrets, no server text that might echo them.
    fn auth_line(&self, what: &str, code: &str) -> String {
        format!(
            "{what}: access to Glacier vault {} in region {} was refused{}: check the access key and secret key (settings aws_access_key/aws_secret_key, the environment, or the aws_profile), that they have not expired, that the region is right, and that their IAM policy allows the glacier actions on this vault",
            self.vault,
            self.region,
            if code.is_empty() {
                String::new()
            } else {
                format!(" ({code})")
            }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Reading sources
// ---------------------------------------------------------------------------------------------

/// One piece of a source, read once and hashed in the same pass.
struct Piece {
    data: Vec<u8>,
    tree_hash: Hash32,
    sha256_hex: String,
}

/// Reads up to `len` bytes (fewer only at the end of the file).
fn read_piece(file: &mut File, source: &Path, len: usize) -> Result<Piece> {
    let mut data = vec![0u8; len];
    let mut filled = 0;
    let mut tree = TreeHasher::new();
    let mut sha = Sha256::new();
    while filled < len {
        let end = (filled + READ_CHUNK).min(len);
        let n = match file.read(&mut data[filled..end]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(source, e)),
        };
        tree.update(&data[filled..filled + n]);
        sha.update(&data[filled..filled + n]);
        filled += n;
    }
    data.truncate(filled);
    Ok(Piece {
        data,
        tree_hash: tree.finish(),
        sha256_hex: hex::encode(sha.finalize()),
    })
}

/// Whether the file has more bytes to give.
fn has_more(file: &mut File, source: &Path) -> Result<bool> {
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(source, e)),
        }
    }
}

fn changed_error(meta: &PutMeta, source: &Path, detail: &str) -> Error {
    Error::backend(
        BACKEND,
        BackendErrorKind::Corrupt,
        format!(
            "{} changed while it was uploaded ({detail}; expected {} bytes with tree hash {}): nothing was stored",
            source.display(),
            meta.size,
            meta.tree_hash
        ),
    )
}

/// Removes an upload id from the active set when dropped.
struct ActiveUpload {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A multipart upload as ListMultipartUploads shows it.
struct UploadInfo {
    id: String,
    description: Option<String>,
    part_size: u64,
}

/// The parts of an upload, by start offset, when they fit the layout of an archive of `size`
/// bytes in parts of `part_size`.
fn parts_fit(
    parts: &[(String, String)],
    part_size: u64,
    size: u64,
) -> Option<HashMap<u64, Hash32>> {
    let mut out = HashMap::new();
    for (range, hash) in parts {
        let (a, b) = range.split_once('-')?;
        let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a % part_size != 0 || a >= size || b + 1 != (a + part_size).min(size) {
            return None;
        }
        out.insert(a, Hash32::from_hex(hash.trim())?);
    }
    Some(out)
}

/// Parses `bytes a-b/total` (total may be `*`).
fn parse_content_range(text: &str) -> Option<(u64, u64)> {
    let rest = text.trim().strip_prefix("bytes")?.trim_start();
    let (range, _total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Inventory job output (JSON).
#[derive(Deserialize)]
struct Inventory {
    #[serde(rename = "ArchiveList", default)]
    archive_list: Vec<InventoryArchive>,
}

#[derive(Deserialize)]
struct InventoryArchive {
    #[serde(rename = "ArchiveId")]
    archive_id: String,
    #[serde(rename = "ArchiveDescription", default)]
    archive_description: Option<String>,
    #[serde(rename = "Size", default)]
    size: u64,
}

/// Parses an inventory into object infos (kind, tree hash and time only for our archives).
fn parse_inventory(body: &[u8]) -> Result<Vec<ObjectInfo>> {
    let inv: Inventory = serde_json::from_slice(body).map_err(|e| {
        Error::backend(
            BACKEND,
            BackendErrorKind::Permanent,
            format!("cannot read the vault inventory: {e}"),
        )
    })?;
    let mut out: Vec<ObjectInfo> = inv
        .archive_list
        .into_iter()
        .map(|a| {
            let ours = a.archive_description.as_deref().and_then(parse_description);
            ObjectInfo {
                id: a.archive_id,
                size: a.size,
                kind: ours.as_ref().map(|d| d.kind),
                tree_hash: ours.as_ref().map(|d| d.tree_hash),
                created: ours.and_then(|d| d.time),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A short form of an archive id for messages.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

impl GlacierBackend {
    /// Builds the client. Validates the vault name and part size; contacts nobody.
    pub fn new(opts: GlacierOptions) -> Result<GlacierBackend> {
        validate_vault_name(&opts.vault)?;
        validate_part_size(opts.part_size)?;
        let concurrency = opts.concurrency.clamp(1, 1024);
        let aws::AwsContext { runtime, config } = aws::load(&opts.aws, concurrency.max(2))?;
        // Retries live in one place, the Retrying wrapper: a failed part is resumed, not
        // re-sent by the SDK behind our back.
        let conf = aws_sdk_glacier::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build();
        let region = config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        Ok(GlacierBackend {
            runtime,
            client: Client::from_conf(conf),
            ctx: Ctx {
                vault: opts.vault.as_str().into(),
                region: region.into(),
            },
            part_size: opts.part_size,
            permits: Arc::new(Semaphore::new(concurrency)),
            active_uploads: Arc::new(Mutex::new(HashSet::new())),
            cleanup_profile: None,
            stop_after_parts: AtomicUsize::new(usize::MAX),
        })
    }

    /// Makes [`Backend::cleanup`] abort only the unfinished uploads of `profile`: a vault
    /// shared by profiles then keeps another profile's interrupted upload for that profile's
    /// next sync to resume.
    pub fn for_profile(mut self, profile: &str) -> GlacierBackend {
        // As descriptions carry it (escaped, perhaps cut), so that it compares equal.
        let meta = PutMeta {
            kind: ObjectKind::File,
            tree_hash: tree_hash(b""),
            size: 0,
            profile: profile.to_string(),
            created: 0,
        };
        self.cleanup_profile = parse_description(&description(&meta)).map(|d| d.profile);
        self
    }

    /// The vault's name.
    pub fn vault(&self) -> &str {
        &self.ctx.vault
    }

    /// Test hook: makes the next multipart puts stop (with an error, leaving the upload for a
    /// resume, as a crash would) after starting `parts` part uploads. `None` switches it off.
    #[doc(hidden)]
    pub fn set_stop_after_parts(&self, parts: Option<usize>) {
        self.stop_after_parts
            .store(parts.unwrap_or(usize::MAX), Ordering::SeqCst);
    }

    fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        self.ctx.err(kind, msg)
    }

    /// Runs one request under a permit of the backend-wide limit.
    fn call<T>(&self, fut: impl Future<Output = T>) -> T {
        self.runtime.block_on(async {
            let _permit = self.permits.acquire().await.expect("never closed");
            fut.await
        })
    }

    fn acquire(&self) -> OwnedSemaphorePermit {
        self.runtime
            .block_on(self.permits.clone().acquire_owned())
            .expect("never closed")
    }

    fn download_window(&self) -> u64 {
        self.part_size.min(MAX_DOWNLOAD_WINDOW)
    }

    // ----- uploads -----

    fn put_single(&self, meta: &PutMeta, source: &Path, mut file: File) -> Result<String> {
        let permit = self.acquire();
        let piece = read_piece(&mut file, source, meta.size as usize)?;
        if piece.data.len() as u64 != meta.size {
            return Err(changed_error(
                meta,
                source,
                &format!("read {} bytes", piece.data.len()),
            ));
        }
        if has_more(&mut file, source)? {
            return Err(changed_error(meta, source, "it grew"));
        }
        if piece.tree_hash != meta.tree_hash {
            return Err(changed_error(
                meta,
                source,
                &format!("read tree hash {}", piece.tree_hash),
            ));
        }
        let sha = piece.sha256_hex;
        let request = self
            .client
            .upload_archive()
            .vault_name(&*self.ctx.vault)
            .archive_description(description(meta))
            .checksum(meta.tree_hash.to_hex())
            .body(ByteStream::from(piece.data))
            .customize()
            .mutate_request(move |req| {
                req.headers_mut()
                    .insert("x-amz-content-sha256", sha.clone());
            });
        let result = self.runtime.block_on(request.send());
        drop(permit);
        let out = result.map_err(|e| {
            self.ctx.map(
                &format!("uploading {} {}", meta.kind.as_str(), meta.tree_hash),
                e,
            )
        })?;
        if let Some(sum) = out.checksum()
            && !sum.eq_ignore_ascii_case(&meta.tree_hash.to_hex())
        {
            // AWS verified our tree-hash header before answering; moto returns plain SHA-256.
            log::debug(&format!(
                "glacier: the server reported checksum {sum} for an archive with tree hash {}",
                meta.tree_hash
            ));
        }
        match out.archive_id() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(self.err(
                BackendErrorKind::Permanent,
                "UploadArchive answered without an archive id",
            )),
        }
    }

    fn list_uploads(&self) -> Result<Vec<UploadInfo>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    self.client
                        .list_multipart_uploads()
                        .vault_name(&*self.ctx.vault)
                        .set_marker(marker.clone())
                        .send(),
                )
                .map_err(|e| self.ctx.map("listing multipart uploads", e))?;
            for u in page.uploads_list() {
                if let Some(id) = u.multipart_upload_id() {
                    out.push(UploadInfo {
                        id: id.to_string(),
                        description: u.archive_description().map(str::to_string),
                        part_size: u.part_size_in_bytes().max(0) as u64,
                    });
                }
            }
            match page.marker() {
                Some(m) if !m.is_empty() && Some(m) != marker.as_deref() => {
                    marker = Some(m.to_string())
                }
                _ => return Ok(out),
            }
        }
    }

    /// (range, tree hash) of every uploaded part.
    fn list_parts(&self, upload_id: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    self.client
                        .list_parts()
                        .vault_name(&*self.ctx.vault)
                        .upload_id(upload_id)
                        .set_marker(marker.clone())
                        .send(),
                )
                .map_err(|e| self.ctx.map("listing the parts of a multipart upload", e))?;
            for p in page.parts() {
                if let (Some(r), Some(h)) = (p.range_in_bytes(), p.sha256_tree_hash()) {
                    out.push((r.to_string(), h.to_string()));
                }
            }
            match page.marker() {
                Some(m) if !m.is_empty() && Some(m) != marker.as_deref() => {
                    marker = Some(m.to_string())
                }
                _ => return Ok(out),
            }
        }
    }

    fn mark_active(&self, id: &str) -> Option<ActiveUpload> {
        let mut set = self
            .active_uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !set.insert(id.to_string()) {
            return None;
        }
        Some(ActiveUpload {
            set: self.active_uploads.clone(),
            id: id.to_string(),
        })
    }

    /// An earlier upload of the same content with the same part size, and its parts.
    fn find_resumable(
        &self,
        meta: &PutMeta,
        desc: &str,
        part_size: u64,
    ) -> Result<Option<(ActiveUpload, HashMap<u64, Hash32>)>> {
        let want = parse_description(desc).expect("our descriptions parse");
        for upload in self.list_uploads()? {
            let Some(theirs) = upload.description.as_deref().and_then(parse_description) else {
                continue;
            };
            if upload.part_size != part_size
                || theirs.kind != want.kind
                || theirs.tree_hash != want.tree_hash
                || theirs.profile != want.profile
            {
                continue;
            }
            let Some(guard) = self.mark_active(&upload.id) else {
                continue; // another thread of ours is writing it
            };
            match self.list_parts(&upload.id) {
                Ok(parts) => match parts_fit(&parts, part_size, meta.size) {
                    Some(map) => return Ok(Some((guard, map))),
                    None => log::verbose(&format!(
                        "glacier: not resuming multipart upload {}: its parts do not fit",
                        short(&upload.id)
                    )),
                },
                Err(e) if e.backend_kind() == Some(BackendErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn abort_upload(&self, upload_id: &str) -> Result<()> {
        match self.call(
            self.client
                .abort_multipart_upload()
                .vault_name(&*self.ctx.vault)
                .upload_id(upload_id)
                .send(),
        ) {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = self.ctx.map("aborting a multipart upload", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn put_multipart(&self, meta: &PutMeta, source: &Path, mut file: File) -> Result<String> {
        let part_size = part_size_for(self.part_size, meta.size)?;
        let desc = description(meta);
        let (guard, existing) = match self.find_resumable(meta, &desc, part_size)? {
            Some((guard, parts)) => {
                log::verbose(&format!(
                    "glacier: resuming the upload of {} {} ({} parts already there)",
                    meta.kind.as_str(),
                    meta.tree_hash,
                    parts.len()
                ));
                (guard, parts)
            }
            None => {
                let out = self
                    .call(
                        self.client
                            .initiate_multipart_upload()
                            .vault_name(&*self.ctx.vault)
                            .archive_description(&desc)
                            .part_size(part_size.to_string())
                            .send(),
                    )
                    .map_err(|e| self.ctx.map("starting a multipart upload", e))?;
                let id = out.upload_id().filter(|id| !id.is_empty()).ok_or_else(|| {
                    self.err(
                        BackendErrorKind::Permanent,
                        "InitiateMultipartUpload answered without an upload id",
                    )
                })?;
                let guard = self.mark_active(id).ok_or_else(|| {
                    self.err(
                        BackendErrorKind::Permanent,
                        format!("Glacier handed out upload id {} twice", short(id)),
                    )
                })?;
                (guard, HashMap::new())
            }
        };
        let upload_id = guard.id.clone();

        let n_parts = meta.size.div_ceil(part_size);
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let stop_after = self.stop_after_parts.load(Ordering::SeqCst);
        let mut tasks = Vec::new();
        let mut hashes = Vec::with_capacity(n_parts as usize);
        let mut started = 0usize;
        let mut outcome: Result<()> = Ok(());
        let mut corrupt = false;
        for index in 0..n_parts {
            let offset = index * part_size;
            let len = part_size.min(meta.size - offset);
            let permit = self.acquire();
            if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                outcome = Err(e);
                break;
            }
            let piece = match read_piece(&mut file, source, len as usize) {
                Ok(p) => p,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            if piece.data.len() as u64 != len {
                corrupt = true;
                outcome = Err(changed_error(
                    meta,
                    source,
                    &format!("it ended after {} bytes", offset + piece.data.len() as u64),
                ));
                break;
            }
            hashes.push(piece.tree_hash);
            if existing.get(&offset) == Some(&piece.tree_hash) {
                continue; // Glacier has this part already
            }
            if started >= stop_after {
                outcome = Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("upload stopped after {started} parts (test hook)"),
                ));
                break;
            }
            started += 1;
            let client = self.client.clone();
            let ctx = self.ctx.clone();
            let upload_id = upload_id.clone();
            let failure = failure.clone();
            tasks.push(self.runtime.spawn(async move {
                let _permit = permit;
                let end = offset + piece.data.len() as u64 - 1;
                let sha = piece.sha256_hex;
                let result = client
                    .upload_multipart_part()
                    .vault_name(&*ctx.vault)
                    .upload_id(upload_id)
                    .range(format!("bytes {offset}-{end}/*"))
                    .checksum(piece.tree_hash.to_hex())
                    .body(ByteStream::from(piece.data))
                    .customize()
                    .mutate_request(move |req| {
                        req.headers_mut()
                            .insert("x-amz-content-sha256", sha.clone());
                    })
                    .send()
                    .await;
                if let Err(e) = result {
                    let mut e = ctx.map(&format!("uploading part {index}"), e);
                    if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                        // The upload was aborted or reclaimed meanwhile: a retry starts anew.
                        e = rekind(e, BackendErrorKind::Transient, "; will start again");
                    }
                    let mut slot = failure.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                }
            }));
        }
        if outcome.is_ok() {
            match has_more(&mut file, source) {
                Ok(false) => {}
                Ok(true) => {
                    corrupt = true;
                    outcome = Err(changed_error(meta, source, "it grew"));
                }
                Err(e) => outcome = Err(e),
            }
        }
        let combined = combine_tree_hashes(&hashes);
        if outcome.is_ok() && combined != meta.tree_hash {
            corrupt = true;
            outcome = Err(changed_error(
                meta,
                source,
                &format!("read tree hash {combined}"),
            ));
        }
        if corrupt {
            for t in &tasks {
                t.abort();
            }
        }
        self.runtime.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        if corrupt {
            if let Err(e) = self.abort_upload(&upload_id) {
                log::warn(&format!(
                    "could not abort multipart upload {} (cleanup will): {e}",
                    short(&upload_id)
                ));
            }
            return Err(outcome.expect_err("corrupt uploads have failed"));
        }
        outcome?;
        if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Parts that made it stay for the retry (or the next run) to resume.
            return Err(e);
        }
        let out = self
            .call(
                self.client
                    .complete_multipart_upload()
                    .vault_name(&*self.ctx.vault)
                    .upload_id(&upload_id)
                    .archive_size(meta.size.to_string())
                    .checksum(combined.to_hex())
                    .send(),
            )
            .map_err(|e| {
                let e = self.ctx.map("completing a multipart upload", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    rekind(e, BackendErrorKind::Transient, "; will start again")
                } else {
                    e
                }
            })?;
        drop(guard);
        match out.archive_id() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(self.err(
                BackendErrorKind::Permanent,
                "CompleteMultipartUpload answered without an archive id",
            )),
        }
    }

    // ----- jobs -----

    fn initiate_retrieval(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
    ) -> Result<WarmState> {
        let candidates = match range {
            Some(r) => retrieval_candidates(r),
            None => vec![None],
        };
        let last = candidates.len() - 1;
        for (i, candidate) in candidates.into_iter().enumerate() {
            let mut params = JobParameters::builder()
                .r#type("archive-retrieval")
                .archive_id(id)
                .tier(tier_name(tier));
            if let Some((s, e)) = candidate {
                params = params.retrieval_byte_range(format!("{s}-{}", e - 1));
            }
            let result = self.call(
                self.client
                    .initiate_job()
                    .vault_name(&*self.ctx.vault)
                    .job_parameters(params.build())
                    .send(),
            );
            match result {
                Ok(out) => {
                    let job = out.job_id().filter(|j| !j.is_empty()).ok_or_else(|| {
                        self.err(
                            BackendErrorKind::Permanent,
                            "InitiateJob answered without a job id",
                        )
                    })?;
                    let ticket = Ticket {
                        job: job.to_string(),
                        inventory: false,
                        start: candidate.map_or(0, |c| c.0),
                        end: candidate.map(|c| c.1),
                        size: None,
                        aligned: false,
                    };
                    return Ok(WarmState::Pending {
                        ticket: ticket.encode(),
                        eta: Some(tier_duration(tier)),
                    });
                }
                Err(e)
                    if i < last
                        && e.code() == Some("InvalidParameterValueException")
                        && candidate.is_some() =>
                {
                    log::debug(&format!(
                        "glacier: range {candidate:?} of {} refused ({}), trying the next",
                        short(id),
                        e.message().unwrap_or_default()
                    ));
                }
                Err(e) => {
                    return Err(self.ctx.map(
                        &format!("requesting the retrieval of archive {}", short(id)),
                        e,
                    ));
                }
            }
        }
        unreachable!("the last candidate either succeeds or returns its error")
    }

    fn initiate_inventory(&self) -> Result<ListOutcome> {
        let out = self
            .call(
                self.client
                    .initiate_job()
                    .vault_name(&*self.ctx.vault)
                    .job_parameters(
                        JobParameters::builder()
                            .r#type("inventory-retrieval")
                            .format("JSON")
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| {
                let e = self.ctx.map("requesting the vault inventory", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    rekind(e, BackendErrorKind::NotFound, " (Glacier makes a vault's first inventory about a day after its first upload)")
                } else {
                    e
                }
            })?;
        let job = out.job_id().filter(|j| !j.is_empty()).ok_or_else(|| {
            self.err(
                BackendErrorKind::Permanent,
                "InitiateJob answered without a job id",
            )
        })?;
        let ticket = Ticket {
            job: job.to_string(),
            inventory: true,
            start: 0,
            end: None,
            size: None,
            aligned: false,
        };
        Ok(ListOutcome::Pending {
            ticket: ticket.encode(),
            eta: Some(INVENTORY_DURATION),
        })
    }

    /// DescribeJob; `Ok(None)` when Glacier does not know the job (expired or never existed).
    fn describe_job(
        &self,
        job: &str,
    ) -> Result<Option<aws_sdk_glacier::operation::describe_job::DescribeJobOutput>> {
        match self.call(
            self.client
                .describe_job()
                .vault_name(&*self.ctx.vault)
                .job_id(job)
                .send(),
        ) {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let e = self.ctx.map("checking a retrieval job", e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Fetches archive bytes `[ws, we)` from the output of the job in `ticket`, verified against
    /// Glacier's checksum when it sends one.
    fn fetch(&self, id: &str, ticket: &Ticket, ws: u64, we: u64) -> Result<Vec<u8>> {
        let js = ticket.start;
        let whole_output = ws == js && ticket.output_end() == Some(we);
        let (rel_start, rel_end) = (ws - js, we - js); // job-relative, end exclusive
        let mut request = self
            .client
            .get_job_output()
            .vault_name(&*self.ctx.vault)
            .job_id(&ticket.job);
        if !whole_output {
            request = request.range(format!("bytes={rel_start}-{}", rel_end - 1));
        }
        let what = format!("downloading bytes {ws}-{} of archive {}", we - 1, short(id));
        let (content_range, checksum, body) = self.call(async {
            let out = request.send().await.map_err(|e| {
                let e = self.ctx.map(&what, e);
                if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                    rekind(e, BackendErrorKind::NotWarm, " (the retrieval job expired: job outputs last 24 hours; warm the archive up again)")
                } else {
                    e
                }
            })?;
            let content_range = out.content_range().map(str::to_string);
            let checksum = out.checksum().map(str::to_string);
            let body = out.body.collect().await.map_err(|e| {
                self.err(
                    BackendErrorKind::Transient,
                    format!("{what}: the download broke off: {e}"),
                )
            })?;
            Ok::<_, Error>((content_range, checksum, body.into_bytes().to_vec()))
        })?;
        let want_len = (rel_end - rel_start) as usize;
        if let Some(sum) = &checksum {
            let got = tree_hash(&body);
            if !got.to_hex().eq_ignore_ascii_case(sum.trim()) {
                return Err(self.err(
                    BackendErrorKind::Corrupt,
                    format!(
                        "{what}: the bytes received do not match Glacier's checksum (tree hash {got}, expected {sum}): the download was corrupted"
                    ),
                ));
            }
        }
        if let Some(text) = content_range.as_deref() {
            let Some((a, b)) = parse_content_range(text) else {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{what}: unreadable Content-Range {text:?}"),
                ));
            };
            if (a, b + 1) != (rel_start, rel_end) {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{what}: Glacier sent bytes {a}-{b} of the job output instead"),
                ));
            }
            if body.len() != want_len {
                return Err(self.err(
                    BackendErrorKind::Transient,
                    format!("{what}: got {} of {want_len} bytes", body.len()),
                ));
            }
            return Ok(body);
        }
        // No Content-Range: the whole output came back (asked for, or the server ignored the
        // Range header). Its offsets are job-relative. A server that ignores the retrieval range
        // as well (moto) sends the whole archive, whose offsets agree with the job's only when
        // the job starts at 0.
        let full_job = ticket.output_end().map(|e| (e - js) as usize) == Some(body.len());
        if (full_job || js == 0) && body.len() >= rel_end as usize {
            Ok(if body.len() == want_len {
                body
            } else {
                body[rel_start as usize..rel_end as usize].to_vec()
            })
        } else {
            Err(self.err(
                BackendErrorKind::Transient,
                format!("{what}: got {} bytes, expected {want_len}", body.len()),
            ))
        }
    }
}

fn write_out(out: &mut dyn Write, data: &[u8]) -> Result<()> {
    out.write_all(data).map_err(|e| {
        Error::backend(
            BACKEND,
            BackendErrorKind::Permanent,
            format!("writing downloaded bytes: {e}"),
        )
    })
}

impl Backend for GlacierBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn describe(&self) -> String {
        format!(
            "glacier vault {} (region {})",
            self.ctx.vault, self.ctx.region
        )
    }

    fn needs_warm_up(&self, _kind: ObjectKind) -> bool {
        true
    }

    fn prepare(&self) -> Result<()> {
        let described = self.call(
            self.client
                .describe_vault()
                .vault_name(&*self.ctx.vault)
                .send(),
        );
        let err = match described {
            Ok(_) => return Ok(()),
            Err(e) => self.ctx.map("checking the vault", e),
        };
        let missing = err.backend_kind() == Some(BackendErrorKind::NotFound);
        // A policy may allow creating without describing: CreateVault is idempotent, so try it.
        if !missing && err.backend_kind() != Some(BackendErrorKind::Auth) {
            return Err(err);
        }
        match self.call(
            self.client
                .create_vault()
                .vault_name(&*self.ctx.vault)
                .send(),
        ) {
            Ok(_) => {
                if missing {
                    log::info(&format!(
                        "created Glacier vault {} in region {}",
                        self.ctx.vault, self.ctx.region
                    ));
                }
                Ok(())
            }
            Err(e) if missing => Err(self.ctx.map("creating the vault", e)),
            Err(_) => Err(err),
        }
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        if meta.size == 0 {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "{}: Glacier archives hold at least one byte; an empty object cannot be stored",
                    source.display()
                ),
            ));
        }
        let file = File::open(source).map_err(|e| Error::io(source, e))?;
        if meta.size <= self.part_size.min(MAX_SINGLE_UPLOAD) {
            self.put_single(meta, source, file)
        } else {
            self.put_multipart(meta, source, file)
        }
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        if let Some(r) = range {
            if r.start > r.end {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("invalid range {}..{} of {}", r.start, r.end, short(id)),
                ));
            }
            if r.is_empty() {
                return Ok(0);
            }
        }
        let Some(ticket) = ticket else {
            return Err(self.err(
                BackendErrorKind::NotWarm,
                format!(
                    "archive {} is in cold storage: request its retrieval (warm it up) first",
                    short(id)
                ),
            ));
        };
        let tk = Ticket::decode(ticket)
            .filter(|t| !t.inventory)
            .ok_or_else(|| {
                self.err(
                    BackendErrorKind::Permanent,
                    format!("unreadable retrieval ticket for archive {}", short(id)),
                )
            })?;
        if !tk.covers(range) {
            let what = match range {
                Some(r) => format!("bytes {}..{}", r.start, r.end),
                None => "the whole archive".to_string(),
            };
            return Err(self.err(
                BackendErrorKind::NotWarm,
                format!(
                    "the retrieval of archive {} does not hold {what}: warm that up first",
                    short(id)
                ),
            ));
        }
        let (a, b) = match range {
            Some(r) => (r.start, r.end),
            None => match tk.output_end() {
                Some(end) => (0, end),
                None => {
                    // Size unknown (the server did not say): one request for the whole output.
                    let data = self.fetch_all(id, &tk)?;
                    write_out(out, &data)?;
                    return Ok(data.len() as u64);
                }
            },
        };
        let window = self.download_window();
        let pieces = match tk.size {
            // Glacier sends checksums for tree-hash aligned downloads of aligned jobs.
            Some(size) if tk.aligned && b <= size => aligned_pieces(a, b, size, window),
            _ => exact_pieces(a, b, window),
        };
        let mut written = 0u64;
        for (ws, we) in pieces {
            let data = self.fetch(id, &tk, ws, we)?;
            let from = (a.max(ws) - ws) as usize;
            let to = (b.min(we) - ws) as usize;
            write_out(out, &data[from..to])?;
            written += (to - from) as u64;
        }
        Ok(written)
    }

    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        if range.is_some_and(|r| r.is_empty()) {
            return Ok(WarmState::Ready { ticket: None });
        }
        let Some(text) = ticket else {
            return self.initiate_retrieval(id, range, tier);
        };
        let tk = match Ticket::decode(text) {
            Some(tk) if !tk.inventory && tk.covers(range) => tk,
            _ => {
                log::warn(&format!(
                    "the retrieval ticket of archive {} does not fit this request; requesting the retrieval again",
                    short(id)
                ));
                return self.initiate_retrieval(id, range, tier);
            }
        };
        let Some(job) = self.describe_job(&tk.job)? else {
            log::warn(&format!(
                "Glacier no longer knows the retrieval job of archive {} (job outputs last 24 hours); requested the retrieval again",
                short(id)
            ));
            return self.initiate_retrieval(id, range, tier);
        };
        if job.archive_id().is_some_and(|a| a != id) {
            log::warn(&format!(
                "the retrieval ticket given for archive {} belongs to another archive; requesting the retrieval again",
                short(id)
            ));
            return self.initiate_retrieval(id, range, tier);
        }
        let job_tier = job.tier().and_then(Tier::parse).unwrap_or(tier);
        match job.status_code() {
            Some(StatusCode::Succeeded) => {
                let mut tk = tk;
                if let Some(size) = job.archive_size_in_bytes().filter(|s| *s > 0) {
                    tk.size = Some(size as u64);
                }
                tk.aligned = job.sha256_tree_hash().is_some_and(|h| !h.is_empty());
                Ok(WarmState::Ready {
                    ticket: Some(tk.encode()),
                })
            }
            Some(StatusCode::Failed) => Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "the retrieval job of archive {} failed: {}",
                    short(id),
                    job.status_message().unwrap_or("no reason given")
                ),
            )),
            _ => Ok(WarmState::Pending {
                ticket: text.to_string(),
                eta: Some(remaining(tier_duration(job_tier), job.creation_date())),
            }),
        }
    }

    fn retrieval_range(&self, object_size: u64, want: ByteRange) -> ByteRange {
        aligned_retrieval_range(object_size, want)
    }

    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        let Some(text) = ticket else {
            return self.initiate_inventory();
        };
        let Some(tk) = Ticket::decode(text).filter(|t| t.inventory) else {
            log::warn("the inventory ticket does not fit; requesting the vault inventory again");
            return self.initiate_inventory();
        };
        let Some(job) = self.describe_job(&tk.job)? else {
            log::warn(&format!(
                "Glacier no longer knows the inventory job of vault {} (job outputs last 24 hours); requested the inventory again",
                self.ctx.vault
            ));
            return self.initiate_inventory();
        };
        match job.status_code() {
            Some(StatusCode::Succeeded) => {
                let body = self.fetch_all("inventory", &tk)?;
                Ok(ListOutcome::Ready(parse_inventory(&body)?))
            }
            Some(StatusCode::Failed) => Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "the inventory job of vault {} failed: {}",
                    self.ctx.vault,
                    job.status_message().unwrap_or("no reason given")
                ),
            )),
            _ => Ok(ListOutcome::Pending {
                ticket: text.to_string(),
                eta: Some(remaining(INVENTORY_DURATION, job.creation_date())),
            }),
        }
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.call(
            self.client
                .delete_archive()
                .vault_name(&*self.ctx.vault)
                .archive_id(id)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| self.ctx.map(&format!("deleting archive {}", short(id)), e))
    }

    /// Aborts every unfinished multipart upload whose description says glaciersync, except
    /// those this process is writing and, after [`GlacierBackend::for_profile`], those whose
    /// description names another profile: another profile's interrupted upload is left for its
    /// own next sync to resume. Two processes syncing the same profile into one vault at the
    /// same time can lose each other's upload this way; that put then fails as transient and a
    /// retry starts it again (and Glacier itself reclaims uploads idle for about 24 hours).
    fn cleanup(&self) -> Result<()> {
        let active = self
            .active_uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for upload in self.list_uploads()? {
            if active.contains(&upload.id)
                || !upload
                    .description
                    .as_deref()
                    .is_some_and(is_our_description)
            {
                continue;
            }
            let theirs = upload.description.as_deref().and_then(parse_description);
            if let (Some(ours), Some(theirs)) = (&self.cleanup_profile, theirs)
                && theirs.profile != *ours
            {
                continue;
            }
            self.abort_upload(&upload.id)?;
            log::verbose(&format!(
                "glacier: aborted the unfinished multipart upload {}",
                short(&upload.id)
            ));
        }
        Ok(())
    }
}

impl GlacierBackend {
    /// The whole output of a job in one request (inventories, archives of unknown size).
    fn fetch_all(&self, what: &str, tk: &Ticket) -> Result<Vec<u8>> {
        let ctx_what = format!("downloading the output of job for {}", short(what));
        let (checksum, body) = self.call(async {
            let out = self
                .client
                .get_job_output()
                .vault_name(&*self.ctx.vault)
                .job_id(&tk.job)
                .send()
                .await
                .map_err(|e| {
                    let e = self.ctx.map(&ctx_what, e);
                    if e.backend_kind() == Some(BackendErrorKind::NotFound) {
                        rekind(
                            e,
                            BackendErrorKind::NotWarm,
                            " (the job expired: outputs last 24 hours)",
                        )
                    } else {
                        e
                    }
                })?;
            let checksum = out.checksum().map(str::to_string);
            let body = out.body.collect().await.map_err(|e| {
                self.err(
                    BackendErrorKind::Transient,
                    format!("{ctx_what}: the download broke off: {e}"),
                )
            })?;
            Ok::<_, Error>((checksum, body.into_bytes().to_vec()))
        })?;
        if let Some(sum) = checksum {
            let got = tree_hash(&body);
            if !got.to_hex().eq_ignore_ascii_case(sum.trim()) {
                return Err(self.err(
                    BackendErrorKind::Corrupt,
                    format!(
                        "{ctx_what}: the bytes received do not match Glacier's checksum (tree hash {got}, expected {sum}): the download was corrupted"
                    ),
                ));
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(profile: &str) -> PutMeta {
        PutMeta {
            kind: ObjectKind::Catalog,
            tree_hash: tree_hash(b"abc"),
            size: 3,
            profile: profile.into(),
            created: 1_795_687_200, // 2026-11-26T10:00:00Z
        }
    }

    #[test]
    fn vault_names() {
        for ok in ["a", "my-vault_1.2", &"x".repeat(255)] {
            validate_vault_name(ok).unwrap();
        }
        for bad in ["", "with space", "slash/", "ümlaut", &"x".repeat(256)] {
            let e = validate_vault_name(bad).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "names it: {e}");
        }
    }

    #[test]
    fn part_sizes() {
        for ok in [MIB, 2 * MIB, 64 * MIB, 4096 * MIB] {
            validate_part_size(ok).unwrap();
        }
        for bad in [0, MIB - 1, 3 * MIB, 5 * 1000 * 1000, 8192 * MIB] {
            assert!(validate_part_size(bad).is_err(), "{bad}");
        }
        assert_eq!(part_size_for(MIB, 10_000 * MIB).unwrap(), MIB);
        assert_eq!(part_size_for(MIB, 10_000 * MIB + 1).unwrap(), 2 * MIB);
        assert_eq!(part_size_for(64 * MIB, 1 << 40).unwrap(), 128 * MIB);
        assert_eq!(
            part_size_for(MIB, 10_000 * MAX_PART_SIZE).unwrap(),
            MAX_PART_SIZE
        );
        assert!(part_size_for(MIB, 10_000 * MAX_PART_SIZE + 1).is_err());
    }

    #[test]
    fn descriptions_are_ascii_json_and_round_trip() {
        let d = description(&meta("photos"));
        assert_eq!(
            d,
            format!(
                r#"{{"glaciersync":1,"kind":"catalog","hash":"{}","profile":"photos","time":"2026-11-26T10:00:00Z"}}"#,
                tree_hash(b"abc")
            )
        );
        for profile in [
            "Fotos für Oma 📷",
            "quote\"back\\slash",
            "tab\tnew\nline",
            "",
        ] {
            let d = description(&meta(profile));
            assert!(d.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{d}");
            assert!(d.len() < 1024);
            let p = parse_description(&d).unwrap();
            assert_eq!(p.profile, profile);
            assert_eq!(p.kind, ObjectKind::Catalog);
            assert_eq!(p.tree_hash, tree_hash(b"abc"));
            assert_eq!(p.time, Some(1_795_687_200));
            assert!(is_our_description(&d));
        }
        let long = description(&meta(&"🦀".repeat(5000)));
        assert!(long.len() < 1024 && long.is_ascii(), "{}", long.len());
        assert!(parse_description(&long).is_some());
        assert_eq!(parse_description("my archive1"), None);
        assert_eq!(parse_description(r#"{"kind":"file"}"#), None);
        assert!(!is_our_description("{\"other\":1}"));
    }

    #[test]
    fn tree_hash_alignment() {
        let m = MIB;
        // The 6.5 MB archive of AWS's example: [2, 4) MB is aligned, [1, 3) MB is not.
        let size = 6 * m + m / 2;
        assert!(is_tree_hash_aligned(2 * m, 4 * m, size));
        assert!(!is_tree_hash_aligned(m, 3 * m, size));
        assert!(is_tree_hash_aligned(0, size, size));
        assert!(is_tree_hash_aligned(4 * m, size, size));
        assert!(is_tree_hash_aligned(6 * m, size, size));
        assert!(!is_tree_hash_aligned(4 * m, 8 * m, size));
        assert!(!is_tree_hash_aligned(0, 6 * m, size));
        assert!(is_tree_hash_aligned(5 * m, 6 * m, size));
        assert!(!is_tree_hash_aligned(10, m, size));
    }

    #[test]
    fn retrieval_ranges_are_megabyte_aligned() {
        let m = MIB;
        let size = 2 * m + 4321;
        let r = |s, e| ByteRange { start: s, end: e };
        assert_eq!(aligned_retrieval_range(size, r(10, 5000)), r(0, m));
        assert_eq!(aligned_retrieval_range(size, r(m - 3, m + 3)), r(0, 2 * m));
        assert_eq!(aligned_retrieval_range(size, r(0, size)), r(0, size));
        assert_eq!(
            aligned_retrieval_range(size, r(2 * m + 1, size)),
            r(2 * m, size)
        );
        // [1, 3) MiB widens to the node [0, 4) MiB (twice as long) when the archive has it.
        assert_eq!(
            aligned_retrieval_range(100 * m, r(m + 5, 3 * m - 5)),
            r(0, 4 * m)
        );
        // [3, 5) MiB would need [0, 8) MiB: too much, stays megabyte aligned.
        assert_eq!(
            aligned_retrieval_range(100 * m, r(3 * m, 5 * m)),
            r(3 * m, 5 * m)
        );
        for (size, s, e) in [
            (size, 10, 5000),
            (100 * m, m + 5, 3 * m - 5),
            (9 * m, 7 * m, 9 * m),
        ] {
            let got = aligned_retrieval_range(size, r(s, e));
            assert!(got.start <= s && got.end >= e);
            assert_eq!(got.start % m, 0);
            assert!(got.end.is_multiple_of(m) || got.end == size);
        }
        // Candidates when the size is unknown: node, megabyte range, up to the end, all.
        assert_eq!(
            retrieval_candidates(r(0, size)),
            vec![Some((0, 4 * m)), Some((0, 3 * m)), Some((0, size)), None]
        );
        assert_eq!(
            retrieval_candidates(r(10, 5000)),
            vec![Some((0, m)), Some((0, 5000)), None]
        );
    }

    #[test]
    fn download_pieces() {
        let m = MIB;
        let size = 8 * m + 1234;
        for (a, b, max) in [
            (0, size, m),
            (0, size, 4 * m),
            (m + 5, 6 * m - 5, 64 * m),
            (3 * m + 10, 3 * m + 5000, 64 * m),
            (7 * m + 1, size - 1, 2 * m),
            (size - 1, size, 64 * m),
            (0, 1, m),
        ] {
            let pieces = aligned_pieces(a, b, size, max);
            assert!(
                pieces[0].0 <= a && pieces.last().unwrap().1 >= b,
                "{a}..{b}: {pieces:?}"
            );
            assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0), "{pieces:?}");
            let total: u64 = pieces.iter().map(|p| p.1 - p.0).sum();
            assert!(total < (b - a) + 2 * m, "{a}..{b}: {pieces:?}");
            for &(s, e) in &pieces {
                assert!(is_tree_hash_aligned(s, e, size), "{s}..{e} of {a}..{b}");
                assert!(e - s <= max);
            }
        }
        assert_eq!(
            aligned_pieces(m + 5, 6 * m - 5, size, 64 * m),
            vec![(m, 2 * m), (2 * m, 4 * m), (4 * m, 6 * m)]
        );
        assert_eq!(
            aligned_pieces(0, size, size, 64 * m),
            vec![(0, size)],
            "the root node"
        );
        assert_eq!(
            aligned_pieces(0, size, size, 4 * m),
            vec![(0, 4 * m), (4 * m, 8 * m), (8 * m, size)]
        );
        assert_eq!(
            exact_pieces(5, 2 * m + 1, m),
            vec![(5, m), (m, 2 * m), (2 * m, 2 * m + 1)]
        );
    }

    #[test]
    fn tickets_round_trip_and_cover() {
        let t = Ticket {
            job: "J".into(),
            inventory: false,
            start: MIB,
            end: Some(3 * MIB),
            size: None,
            aligned: false,
        };
        let text = t.encode();
        assert!(text.len() < 200, "{text}");
        assert_eq!(Ticket::decode(&text), Some(t.clone()));
        let r = |s, e| Some(ByteRange { start: s, end: e });
        assert!(t.covers(r(MIB, 3 * MIB)));
        assert!(!t.covers(r(0, 10)));
        assert!(!t.covers(None));
        let whole = Ticket {
            start: 0,
            end: None,
            ..t
        };
        assert!(whole.covers(None) && whole.covers(r(5, 10 * MIB)));
        assert_eq!(Ticket::decode("not json"), None);
    }

    #[test]
    fn listed_parts_must_fit() {
        let m = MIB;
        let h = tree_hash(b"x").to_hex();
        let parts = vec![
            (format!("0-{}", m - 1), h.clone()),
            (format!("{}-{}", 2 * m, 2 * m + 9), h.clone()),
        ];
        let fit = parts_fit(&parts, m, 2 * m + 10).unwrap();
        assert_eq!(fit.len(), 2);
        assert!(parts_fit(&parts, 2 * m, 2 * m + 10).is_none());
        assert!(parts_fit(&[("5-9".into(), h)], m, 3 * m).is_none());
    }

    #[test]
    fn inventory_parsing() {
        let ours = description(&meta("p"));
        let body = serde_json::json!({
            "VaultARN": "arn:aws:glacier:us-east-1:1:vaults/v",
            "InventoryDate": "2026-11-26T10:00:00Z",
            "ArchiveList": [
                {"ArchiveId": "b", "ArchiveDescription": ours, "CreationDate": "2026-11-26T10:00:01Z", "Size": 3, "SHA256TreeHash": tree_hash(b"abc").to_hex()},
                {"ArchiveId": "a", "ArchiveDescription": "my archive1", "CreationDate": "2012-05-15T17:19:46.700Z", "Size": 2140123, "SHA256TreeHash": "6b9d4cf8697bd3af6aa1b590a0b27b337da5b18988dbcc619a3e608a554a1e62"}
            ]
        });
        let items = parse_inventory(body.to_string().as_bytes()).unwrap();
        assert_eq!(items[0].id, "a");
        assert_eq!(
            (items[0].kind, items[0].tree_hash, items[0].created),
            (None, None, None)
        );
        assert_eq!(items[1].kind, Some(ObjectKind::Catalog));
        assert_eq!(items[1].tree_hash, Some(tree_hash(b"abc")));
        assert_eq!(items[1].created, Some(1_795_687_200));
        assert_eq!(items[1].size, 3);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-1048575/8388608"),
            Some((0, 1048575))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9)));
        assert_eq!(parse_content_range("items 5-9/*"), None);
    }
}
