//! The S3 backend: objects under `prefix` in a bucket, keyed as
//! [`object_key`](super::object_key) says.
//!
//! - Data (files, bundles) goes to the configured storage class; catalog copies always to
//!   `STANDARD`, so `recover` never waits for a thaw.
//! - Every write carries `x-amz-checksum-sha256` computed here (per part for multipart, and the
//!   parts' checksums again on completion), is signed with that same SHA-256 as its payload hash
//!   (so the SDK does not hash the body a second time), and is conditional (`If-None-Match: *`):
//!   a retry never overwrites, and a `412` on a content-addressed key means the object is there.
//! - The bytes sent are checked against the caller's tree hash before a single PUT and before a
//!   multipart upload is completed; a mismatch aborts the upload and fails with `Corrupt`.
//! - Objects above the part size go up in parts read with positional reads. One semaphore per
//!   backend bounds the requests in flight (and so the memory: the SDK holds each body in memory)
//!   whatever the number of callers. An upload interrupted by a crash is resumed by the next
//!   `put` of the same key; [`Backend::cleanup`] aborts what is left over.
//! - Objects in `GLACIER` and `DEEP_ARCHIVE` are read after a `RestoreObject`
//!   ([`Backend::warm_up`]); the restore state is read back from `x-amz-restore`, so a restore
//!   is never requested twice while one is live.
//!
//! Retries are left to [`super::retry::Retrying`] (the SDK's own are off, see
//! [`super::aws::load`]): a retried put resumes its multipart upload, sending only the parts
//! that are not stored yet. The multipart driver retries the abort of an upload whose source
//! changed by the same [`super::retry::RetryPolicy`].
//!
//! Files: `upload` (single PUT; multipart: S3's part rules for the loop of
//! [`super::multipart`]), `resume` (incomplete uploads: resume, abort,
//! cleanup), `download` (GET of a whole object or a range), `restore` (warm-ups),
//! `listing`, `checksum` (base64 SHA-256 checksums, precomputed payload hashes).

mod checksum;
mod download;
mod listing;
mod restore;
mod resume;
#[cfg(test)]
mod tests;
mod upload;

pub use checksum::{base64, checksum_sha256};

use super::aws::{self, AwsOptions};
use super::parts::{Limiter, StopAfterParts};
use super::{Backend, ByteRange, ListOutcome, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::MIB;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use restore::is_archive_class;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Smallest part S3 accepts (all but the last part of an upload).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// Largest part S3 accepts, and the largest single PUT.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// Most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Largest S3 object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;

/// The storage classes data may go to.
pub const STORAGE_CLASSES: [&str; 5] = [
    "DEEP_ARCHIVE",
    "GLACIER",
    "GLACIER_IR",
    "STANDARD_IA",
    "STANDARD",
];

const NAME: &str = "s3";

/// Settings of the S3 backend.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub aws: AwsOptions,
    pub bucket: String,
    /// Key prefix, e.g. `pictures/`. A missing trailing `/` is added; a leading `/` dropped.
    pub prefix: String,
    /// Class for data: `DEEP_ARCHIVE`, `GLACIER`, `GLACIER_IR`, `STANDARD_IA` or `STANDARD`.
    pub storage_class: String,
    /// Multipart part size; rounded up to whole MiB, at least 5 MiB, raised to keep an
    /// object within 10,000 parts. Objects up to this size go up in one PUT.
    pub part_size: u64,
    /// Requests in flight over the whole backend (each holds up to one part in memory).
    pub concurrency: usize,
    /// Days a restored copy of an archived object stays readable.
    pub restore_days: i32,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            aws: AwsOptions::default(),
            bucket: String::new(),
            prefix: String::new(),
            storage_class: "DEEP_ARCHIVE".into(),
            part_size: 64 * MIB,
            concurrency: 4,
            restore_days: 7,
        }
    }
}

/// Request counts, for tests and diagnostics.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct S3Stats {
    pub put_object: u64,
    pub create_multipart: u64,
    pub upload_part: u64,
    pub complete_multipart: u64,
    pub abort_multipart: u64,
    pub restore_object: u64,
    pub get_object: u64,
    /// Parts of a resumed upload that were already stored and not sent again.
    pub parts_reused: u64,
    /// Puts that found their object already stored (HEAD, or `412` on a conditional write).
    pub already_stored: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: usize,
}

/// Objects in an S3 bucket.
pub struct S3Backend {
    runtime: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    prefix: String,
    region: String,
    storage_class: String,
    part_size: u64,
    restore_days: i32,
    limiter: Arc<Limiter>,
    stats: Arc<Mutex<S3Stats>>,
    stop_after_parts: StopAfterParts,
    /// The endpoint requests go to, named when it does not answer.
    endpoint: String,
}

impl S3Backend {
    /// Checks the options and builds the client; makes no request (see [`Backend::prepare`]).
    pub fn new(opts: S3Options) -> Result<S3Backend> {
        let bucket = opts.bucket.trim().to_string();
        if bucket.is_empty() {
            return Err(Error::Usage(
                "s3: no bucket given (settings key `bucket`)".into(),
            ));
        }
        let storage_class = opts.storage_class.trim().to_ascii_uppercase();
        if !STORAGE_CLASSES.contains(&storage_class.as_str()) {
            return Err(Error::Usage(format!(
                "s3: unknown storage class {:?}: use one of {}",
                opts.storage_class,
                STORAGE_CLASSES.join(", ")
            )));
        }
        if opts.restore_days < 1 {
            return Err(Error::Usage(format!(
                "s3: restore days must be at least 1, not {}",
                opts.restore_days
            )));
        }
        let concurrency = opts.concurrency.max(1);
        let ctx = aws::load(&opts.aws, concurrency)?;
        let mut conf = aws_sdk_s3::config::Builder::from(&ctx.config);
        if has_custom_endpoint(&ctx.config) {
            // S3-compatible servers (and moto) rarely resolve bucket subdomains.
            conf = conf.force_path_style(true);
        }
        let region = ctx
            .config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        Ok(S3Backend {
            runtime: ctx.runtime,
            client: Client::from_conf(conf.build()),
            bucket,
            prefix: normalize_prefix(&opts.prefix),
            region,
            storage_class,
            part_size: normalize_part_size(opts.part_size),
            restore_days: opts.restore_days,
            limiter: Limiter::new(concurrency),
            stats: Arc::new(Mutex::new(S3Stats::default())),
            stop_after_parts: StopAfterParts::off(),
            endpoint: aws::endpoint_of(&ctx.config, "s3"),
        })
    }

    /// Request counts so far.
    #[doc(hidden)]
    pub fn stats(&self) -> S3Stats {
        let mut s = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.peak_in_flight = self.limiter.peak();
        s
    }

    /// Test hook: makes the next multipart puts stop (with an error, leaving the upload for a
    /// resume, as a crash would) after sending `parts` parts. `None` switches it off.
    #[doc(hidden)]
    pub fn set_stop_after_parts(&self, parts: Option<usize>) {
        self.stop_after_parts.set(parts);
    }

    /// The part size used for an object of `size` bytes.
    pub fn part_size_for(&self, size: u64) -> u64 {
        part_size_for(self.part_size, size)
    }

    fn count(&self, f: impl FnOnce(&mut S3Stats)) {
        count(&self.stats, f)
    }

    fn key(&self, id: &str) -> Result<String> {
        if id.is_empty() {
            return Err(self.err(BackendErrorKind::Permanent, "empty object id"));
        }
        Ok(format!("{}{id}", self.prefix))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn err(&self, kind: BackendErrorKind, msg: impl Into<String>) -> Error {
        Error::backend(NAME, kind, msg)
    }

    fn sdk_err<E, R>(&self, action: &str, key: &str, e: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        aws::map_sdk_error_at(
            NAME,
            &format!("{action} {}", self.url(key)),
            Some(&self.endpoint),
            e,
        )
    }

    fn class_for(&self, kind: ObjectKind) -> &str {
        match kind {
            ObjectKind::Catalog | ObjectKind::CatalogDelta => "STANDARD",
            ObjectKind::File | ObjectKind::Bundle => &self.storage_class,
        }
    }

    /// HEAD of `key`; `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<HeadObjectOutput>> {
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
        };
        match answer {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let err = self.sdk_err("reading metadata of", key, e);
                match err.backend_kind() {
                    Some(BackendErrorKind::NotFound) => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }

    /// HEAD of `key`, which must exist.
    async fn head_existing(&self, key: &str) -> Result<HeadObjectOutput> {
        self.head(key).await?.ok_or_else(|| {
            self.err(
                BackendErrorKind::NotFound,
                format!("{} does not exist", self.url(key)),
            )
        })
    }

    async fn prepare_async(&self) -> Result<()> {
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client.head_bucket().bucket(&self.bucket).send().await
        };
        let Err(e) = answer else {
            return Ok(());
        };
        let actual_region = e
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        if let Some(actual) = actual_region.filter(|r| *r != self.region) {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "bucket {} is in region {actual}, not {}: set aws_region_name = {actual}",
                    self.bucket, self.region
                ),
            ));
        }
        let err = aws::map_sdk_error_at(NAME, "HeadBucket", Some(&self.endpoint), e);
        let kind = err.backend_kind().unwrap_or(BackendErrorKind::Permanent);
        let advice = match kind {
            BackendErrorKind::Auth => {
                "check the credentials (aws_access_key and aws_secret_key, aws_profile or the \
                 AWS environment) and that they may use this bucket"
            }
            BackendErrorKind::NotFound => {
                "check the bucket name, region and endpoint; the bucket must exist (glaciersync \
                 does not create it)"
            }
            BackendErrorKind::Transient => "check the network and endpoint_url, then try again",
            _ => "check the bucket name, region and endpoint_url",
        };
        Err(self.err(
            kind,
            format!(
                "cannot use bucket {} in region {}: {}; {advice}",
                self.bucket,
                self.region,
                backend_message(&err)
            ),
        ))
    }

    async fn delete_async(&self, id: &str) -> Result<()> {
        let key = self.key(id)?;
        // S3 deletes a missing key without complaint; the trait wants NotFound.
        self.head_existing(&key).await?;
        let _slot = self.limiter.acquire().await;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.sdk_err("deleting", &key, e))?;
        Ok(())
    }
}

impl Backend for S3Backend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "s3://{}/{} (storage class {}, region {})",
            self.bucket, self.prefix, self.storage_class, self.region
        )
    }

    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        is_archive_class(self.class_for(kind))
    }

    fn prepare(&self) -> Result<()> {
        self.runtime.block_on(self.prepare_async())
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.runtime.block_on(self.put_async(meta, source))
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        _ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        self.runtime.block_on(self.get_async(id, range, out))
    }

    fn warm_up(
        &self,
        id: &str,
        _range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        self.runtime.block_on(self.warm_up_async(id, tier, ticket))
    }

    /// S3 restores whole objects.
    fn retrieval_range(&self, _id: &str, object_size: u64, _want: ByteRange) -> ByteRange {
        ByteRange {
            start: 0,
            end: object_size,
        }
    }

    fn list(&self, _ticket: Option<&str>) -> Result<ListOutcome> {
        self.runtime
            .block_on(self.list_async())
            .map(ListOutcome::Ready)
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.runtime.block_on(self.delete_async(id))
    }

    fn owners(&self) -> Result<Option<Vec<String>>> {
        self.runtime.block_on(self.owners_async()).map(Some)
    }

    fn mark_owner(&self, id: &str) -> Result<()> {
        self.runtime.block_on(self.mark_owner_async(id))
    }

    fn cleanup(&self) -> Result<()> {
        self.runtime.block_on(self.cleanup_async())
    }
}

fn count(stats: &Mutex<S3Stats>, f: impl FnOnce(&mut S3Stats)) {
    f(&mut stats.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The message of a backend error, without the backend's name.
fn backend_message(err: &Error) -> String {
    match err {
        Error::Backend { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Whether an endpoint other than AWS's is configured (settings, `AWS_ENDPOINT_URL`, the
/// shared config file, or `AWS_ENDPOINT_URL_S3`).
fn has_custom_endpoint(config: &aws_config::SdkConfig) -> bool {
    config.endpoint_url().is_some()
        || std::env::var("AWS_ENDPOINT_URL_S3").is_ok_and(|v| !v.trim().is_empty())
}

fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim().trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// Whole MiB, within S3's part limits.
fn normalize_part_size(part_size: u64) -> u64 {
    (part_size.div_ceil(MIB) * MIB).clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// The configured part size, raised (in whole MiB) so that `size` needs at most 10,000 parts.
fn part_size_for(part_size: u64, size: u64) -> u64 {
    part_size.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}
