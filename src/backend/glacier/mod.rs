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
//!
//! Files: `upload` (single uploads; multipart: Glacier's part rules for the loop of
//! [`super::multipart`]), `resume` (unfinished multipart uploads:
//! resume, abort, cleanup), `retrieval` (jobs and tickets), `ranges` (aligned retrieval
//! ranges and download pieces), `download` (ranged downloads with tree-hash checks),
//! `inventory` (listing), `description` (archive descriptions), `errors`.

mod description;
mod download;
mod errors;
mod inventory;
mod ranges;
mod resume;
mod retrieval;
#[cfg(test)]
mod tests;
mod upload;

pub use description::{Description, description, is_our_description, parse_description};
pub use ranges::{aligned_retrieval_range, is_tree_hash_aligned};

use super::aws::{self, AwsOptions};
use super::parts::{Limiter, Slot, StopAfterParts};
use super::{Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{MIB, tree_hash};
use crate::log;
use aws_sdk_glacier::Client;
use errors::Ctx;
use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

const BACKEND: &str = "glacier";

/// At most this many parts per multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// The largest part size Glacier accepts (4 GiB).
pub const MAX_PART_SIZE: u64 = 4096 * MIB;
/// The largest archive sent in one UploadArchive request ("up to 4 GB").
const MAX_SINGLE_UPLOAD: u64 = 4_000_000_000;
/// Largest download window (bytes held in memory per download).
const MAX_DOWNLOAD_WINDOW: u64 = 64 * MIB;

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
    limiter: Arc<Limiter>,
    /// Multipart uploads this process is writing: never resumed twice, never cleaned up.
    active_uploads: Arc<Mutex<HashSet<String>>>,
    /// The profile whose unfinished uploads [`Backend::cleanup`] aborts (as its descriptions
    /// name it); `None`: every profile's.
    cleanup_profile: Option<String>,
    /// Test hook: stop a multipart put after sending this many parts.
    stop_after_parts: StopAfterParts,
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

impl GlacierBackend {
    /// Builds the client. Validates the vault name and part size; contacts nobody.
    pub fn new(opts: GlacierOptions) -> Result<GlacierBackend> {
        validate_vault_name(&opts.vault)?;
        validate_part_size(opts.part_size)?;
        let concurrency = opts.concurrency.clamp(1, 1024);
        let aws::AwsContext { runtime, config } = aws::load(&opts.aws, concurrency.max(2))?;
        // No SDK retries (see `aws::load`): the Retrying wrapper retries, resuming the upload.
        let conf = aws_sdk_glacier::config::Builder::from(&config).build();
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
                endpoint: aws::endpoint_of(&config, "glacier").into(),
            },
            part_size: opts.part_size,
            limiter: Limiter::new(concurrency),
            active_uploads: Arc::new(Mutex::new(HashSet::new())),
            cleanup_profile: None,
            stop_after_parts: StopAfterParts::off(),
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
            age_header: None,
        };
        self.cleanup_profile = parse_description(&description(&meta)).map(|d| d.profile);
        self
    }

    /// The vault's name.
    pub fn vault(&self) -> &str {
        &self.ctx.vault
    }

    /// Test hook: makes the next multipart puts stop (with an error, leaving the upload for a
    /// resume, as a crash would) after sending `parts` parts. `None` switches it off.
    #[doc(hidden)]
    pub fn set_stop_after_parts(&self, parts: Option<usize>) {
        self.stop_after_parts.set(parts);
    }

    fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        self.ctx.err(kind, msg)
    }

    /// Runs one request under a permit of the backend-wide limit.
    fn call<T>(&self, fut: impl Future<Output = T>) -> T {
        self.runtime.block_on(self.limited(fut))
    }

    /// Awaits one request under a permit of the backend-wide limit.
    async fn limited<T>(&self, fut: impl Future<Output = T>) -> T {
        let _slot = self.limiter.acquire().await;
        fut.await
    }

    /// A place in the backend-wide limit, to move into a task.
    fn acquire(&self) -> Slot {
        self.runtime.block_on(self.limiter.acquire())
    }
}

/// A short form of an archive id for messages.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
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
        self.put_archive(meta, source)
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        self.get_archive(id, range, ticket, out)
    }

    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        self.warm_up_archive(id, range, tier, ticket)
    }

    fn retrieval_range(&self, _id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        aligned_retrieval_range(object_size, want)
    }

    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        self.list_archives(ticket)
    }

    fn list_ready(&self, ticket: Option<&str>) -> Result<Option<Vec<ObjectInfo>>> {
        self.finished_inventory(ticket)
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
        self.cleanup_uploads()
    }
}

/// `profile` as archive descriptions carry it (escaped, perhaps cut), to compare with
/// [`Description::profile`].
pub fn description_profile(profile: &str) -> String {
    let meta = PutMeta {
        kind: ObjectKind::File,
        tree_hash: tree_hash(b""),
        size: 0,
        profile: profile.to_string(),
        created: 0,
        age_header: None,
    };
    parse_description(&description(&meta)).map_or_else(|| profile.to_string(), |d| d.profile)
}
