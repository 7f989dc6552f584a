//! The S3 backend: objects under `prefix` in a bucket, keyed as [`object_key`] says.
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
//! Retries of whole operations are left to [`super::retry::Retrying`]; the SDK's own per-request
//! retry (standard mode) stays on, so a dropped connection costs one request, not a re-read of a
//! large file.

use super::aws::{self, AwsOptions};
use super::{
    Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState, object_key,
    parse_object_key,
};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, TreeHasher, sha256, tree_hash};
use crate::log;
use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, GlacierJobParameters,
    RestoreRequest, StorageClass,
};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

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

/// The backend-wide bound on requests in flight.
struct Limiter {
    permits: Arc<Semaphore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// One request's right to be in flight; dropping it frees the place.
struct Slot {
    limiter: Arc<Limiter>,
    _permit: OwnedSemaphorePermit,
}

impl Limiter {
    async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Slot {
            limiter: Arc::clone(self),
            _permit: permit,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Runs before the permit field is dropped, so the count never exceeds the permits.
        self.limiter.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Signs a request with a payload hash computed by us, sparing the SDK a pass over the body.
#[derive(Debug)]
struct PayloadHash(String);

impl Intercept for PayloadHash {
    fn name(&self) -> &'static str {
        "glaciersync::PayloadHash"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(PayloadSigningOverride::Precomputed(self.0.clone()));
        Ok(())
    }
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
    stop_after_parts: AtomicUsize,
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
            limiter: Arc::new(Limiter {
                permits: Arc::new(Semaphore::new(concurrency)),
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
            stats: Arc::new(Mutex::new(S3Stats::default())),
            stop_after_parts: AtomicUsize::new(usize::MAX),
        })
    }

    /// Request counts so far.
    #[doc(hidden)]
    pub fn stats(&self) -> S3Stats {
        let mut s = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.peak_in_flight = self.limiter.peak.load(Ordering::SeqCst);
        s
    }

    /// Test hook: multipart puts stop (failing, upload left in place, as after a crash) once
    /// `parts` parts were sent. `None` turns it off.
    #[doc(hidden)]
    pub fn stop_multipart_after(&self, parts: Option<usize>) {
        self.stop_after_parts
            .store(parts.unwrap_or(usize::MAX), Ordering::SeqCst);
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
        aws::map_sdk_error(NAME, &format!("{action} {}", self.url(key)), e)
    }

    fn class_for(&self, kind: ObjectKind) -> &str {
        match kind {
            ObjectKind::Catalog => "STANDARD",
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

    /// Accepts an object found under `key` (content-addressed: same key, same bytes) when its
    /// size is the one expected.
    async fn accept_existing(&self, key: &str, size: u64) -> Result<()> {
        let Some(head) = self.head(key).await? else {
            return Err(self.err(
                BackendErrorKind::Transient,
                format!(
                    "{}: the service said it exists, but it cannot be found",
                    self.url(key)
                ),
            ));
        };
        check_existing_size(&self.url(key), head.content_length(), size)?;
        self.count(|s| s.already_stored += 1);
        Ok(())
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
        let err = aws::map_sdk_error(NAME, "HeadBucket", e);
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

    async fn put_async(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        let id = object_key(meta);
        let key = self.key(&id)?;
        if meta.size > MAX_OBJECT_SIZE {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "{}: {} bytes is more than an S3 object can hold (5 TiB)",
                    source.display(),
                    meta.size
                ),
            ));
        }
        let file = File::open(source).map_err(|e| Error::io(source, e))?;
        let len = file.metadata().map_err(|e| Error::io(source, e))?.len();
        if len != meta.size {
            return Err(changed(
                source,
                meta,
                &format!("it is now {len} bytes long"),
            ));
        }
        let part_size = self.part_size_for(meta.size);
        if meta.size <= part_size {
            self.put_single(meta, source, &file, &key).await?;
        } else {
            self.put_multipart(meta, source, &file, &key, part_size)
                .await?;
        }
        Ok(id)
    }

    /// One conditional PUT, after checking the bytes against the tree hash.
    async fn put_single(
        &self,
        meta: &PutMeta,
        source: &Path,
        file: &File,
        key: &str,
    ) -> Result<()> {
        let slot = self.limiter.acquire().await;
        let part = read_part(file, source, meta, 0, meta.size, false)?;
        // Up to one leaf, the tree hash is the plain SHA-256.
        let tree = if meta.size <= MIB {
            part.sha256
        } else {
            tree_hash(&part.data)
        };
        if tree != meta.tree_hash {
            return Err(changed(
                source,
                meta,
                &format!("its bytes have tree hash {tree}"),
            ));
        }
        self.count(|s| s.put_object += 1);
        let answer = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .storage_class(StorageClass::from(self.class_for(meta.kind)))
            .content_length(meta.size as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(base64(&part.sha256.0))
            .if_none_match("*")
            .body(ByteStream::from(part.data))
            .customize()
            .interceptor(PayloadHash(part.sha256.to_hex()))
            .send()
            .await;
        drop(slot);
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.sdk_err("uploading", key, e);
                if err.backend_kind() == Some(BackendErrorKind::AlreadyExists) {
                    self.accept_existing(key, meta.size).await
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn put_multipart(
        &self,
        meta: &PutMeta,
        source: &Path,
        file: &File,
        key: &str,
        part_size: u64,
    ) -> Result<()> {
        // A multipart upload learns of an existing object only when completing: look first.
        if let Some(head) = self.head(key).await? {
            check_existing_size(&self.url(key), head.content_length(), meta.size)?;
            self.count(|s| s.already_stored += 1);
            return Ok(());
        }
        let class = self.class_for(meta.kind).to_string();
        let (upload_id, stored) = match self.resumable(key, &class).await? {
            Some(resumed) => resumed,
            None => (self.create_upload(key, &class).await?, HashMap::new()),
        };
        let job = PartsJob {
            meta,
            source,
            file,
            key,
            upload_id: &upload_id,
            part_size,
            stored: &stored,
        };
        let parts = match self.upload_parts(&job).await {
            Ok(parts) => parts,
            Err(e) => {
                if e.backend_kind() == Some(BackendErrorKind::Corrupt) {
                    self.abort_upload(key, &upload_id).await;
                }
                return Err(e);
            }
        };
        self.count(|s| s.complete_multipart += 1);
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .if_none_match("*")
                .send()
                .await
        };
        let err = match answer {
            Ok(_) => return Ok(()),
            Err(e) => self.sdk_err("completing the upload of", key, e),
        };
        if err.backend_kind() == Some(BackendErrorKind::AlreadyExists) {
            // Stored meanwhile by someone else: ours is not needed.
            self.abort_upload(key, &upload_id).await;
            return self.accept_existing(key, meta.size).await;
        }
        // The object may still be there: completed by an earlier attempt whose answer was lost
        // (NoSuchUpload now), or by this one with an answer the SDK could not read (moto 5.2.1
        // names the XML root CompleteMultipartUploadResponse). The service shows which.
        match self.head(key).await {
            Ok(Some(head)) => {
                check_existing_size(&self.url(key), head.content_length(), meta.size)?;
                log::debug(&format!("{}: stored, although {err}", self.url(key)));
                Ok(())
            }
            _ => Err(err),
        }
    }

    /// Reads, checks and sends the parts; returns them in order for completion.
    async fn upload_parts(&self, job: &PartsJob<'_>) -> Result<Vec<CompletedPart>> {
        let size = job.meta.size;
        let parts = size.div_ceil(job.part_size) as usize;
        let stop_after = self.stop_after_parts.load(Ordering::SeqCst);
        // Parts are read in order, so one streaming tree hash covers the whole object.
        let mut tree = TreeHasher::new();
        let mut checksums: Vec<String> = Vec::with_capacity(parts);
        let mut etags: Vec<Option<String>> = vec![None; parts];
        let mut failure: Option<Error> = None;
        let mut tasks: JoinSet<Result<(usize, String)>> = JoinSet::new();
        for index in 0..parts {
            if index >= stop_after {
                failure = Some(self.err(
                    BackendErrorKind::Permanent,
                    format!(
                        "upload of {} stopped after {index} parts (test hook)",
                        job.key
                    ),
                ));
                break;
            }
            let slot = self.limiter.acquire().await;
            while let Some(done) = tasks.try_join_next() {
                record(done, &mut etags, &mut failure);
            }
            if failure.is_some() {
                break;
            }
            let number = index + 1;
            let offset = index as u64 * job.part_size;
            let len = job.part_size.min(size - offset);
            let stored = job.stored.get(&(number as i32));
            let need_md5 = stored.is_some_and(|p| p.size == len && p.checksum.is_none());
            let part = match read_part(job.file, job.source, job.meta, offset, len, need_md5) {
                Ok(part) => part,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            tree.update(&part.data);
            let checksum = base64(&part.sha256.0);
            checksums.push(checksum.clone());
            if let Some(p) = stored.filter(|p| p.matches(len, &checksum, part.md5.as_deref())) {
                etags[index] = Some(p.etag.clone());
                self.count(|s| s.parts_reused += 1);
                continue;
            }
            let what = format!("uploading part {number} of {}", self.url(job.key));
            let request = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(job.key)
                .upload_id(job.upload_id)
                .part_number(number as i32)
                .content_length(len as i64)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(checksum)
                .body(ByteStream::from(part.data))
                .customize()
                .interceptor(PayloadHash(part.sha256.to_hex()))
                .send();
            let stats = Arc::clone(&self.stats);
            tasks.spawn(async move {
                let _slot = slot;
                count(&stats, |s| s.upload_part += 1);
                let out = request
                    .await
                    .map_err(|e| aws::map_sdk_error(NAME, &what, e))?;
                let etag = out.e_tag().ok_or_else(|| {
                    Error::backend(
                        NAME,
                        BackendErrorKind::Permanent,
                        format!("{what}: the answer has no ETag"),
                    )
                })?;
                Ok((index, etag.to_string()))
            });
        }
        while let Some(done) = tasks.join_next().await {
            record(done, &mut etags, &mut failure);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let tree = tree.finish();
        if tree != job.meta.tree_hash {
            return Err(changed(
                job.source,
                job.meta,
                &format!("its bytes have tree hash {tree}"),
            ));
        }
        Ok(etags
            .into_iter()
            .zip(checksums)
            .enumerate()
            .map(|(i, (etag, checksum))| {
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .set_e_tag(etag)
                    .checksum_sha256(checksum)
                    .build()
            })
            .collect())
    }

    /// The newest incomplete upload of `key` that this backend could have started, with the
    /// parts it holds. Resuming only saves work: when an upload cannot be resumed for a reason
    /// a retry will not fix (gone meanwhile, a listing the SDK cannot read), a new one is
    /// started, and [`Backend::cleanup`] later aborts the old one.
    async fn resumable(
        &self,
        key: &str,
        class: &str,
    ) -> Result<Option<(String, HashMap<i32, StoredPart>)>> {
        let newest = self
            .list_uploads(key)
            .await?
            .into_iter()
            .filter(|u| {
                u.key == key && u.sha256 && u.storage_class.as_deref().is_none_or(|c| c == class)
            })
            .max_by_key(|u| u.initiated);
        let Some(upload) = newest else {
            return Ok(None);
        };
        match self.list_parts(key, &upload.upload_id).await {
            Ok(stored) => {
                log::debug(&format!(
                    "{}: resuming an upload with {} part(s) stored",
                    self.url(key),
                    stored.len()
                ));
                Ok(Some((upload.upload_id, stored)))
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                log::debug(&format!("{e}; starting a new upload"));
                Ok(None)
            }
        }
    }

    /// Incomplete multipart uploads whose key starts with `prefix`.
    async fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_key_marker(markers.0.take())
                    .set_upload_id_marker(markers.1.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing incomplete uploads under", prefix, e))?
            };
            for u in out.uploads() {
                let (Some(key), Some(upload_id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                uploads.push(Upload {
                    key: key.to_string(),
                    upload_id: upload_id.to_string(),
                    sha256: u.checksum_algorithm() == Some(&ChecksumAlgorithm::Sha256),
                    storage_class: u.storage_class().map(|c| c.as_str().to_string()),
                    initiated: u.initiated().map(|t| t.as_nanos()),
                });
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            markers = (
                out.next_key_marker().map(str::to_string),
                out.next_upload_id_marker().map(str::to_string),
            );
            if markers.0.is_none() && markers.1.is_none() {
                break;
            }
        }
        Ok(uploads)
    }

    /// Parts already stored in an upload, by part number.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<HashMap<i32, StoredPart>> {
        let mut parts = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .set_part_number_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing the parts of", key, e))?
            };
            for p in out.parts() {
                let (Some(number), Some(size), Some(etag)) = (p.part_number(), p.size(), p.e_tag())
                else {
                    continue;
                };
                parts.insert(
                    number,
                    StoredPart {
                        size: size.max(0) as u64,
                        etag: etag.to_string(),
                        checksum: p.checksum_sha256().map(str::to_string),
                    },
                );
            }
            marker = out.next_part_number_marker().map(str::to_string);
            if out.is_truncated() != Some(true) || marker.is_none() {
                break;
            }
        }
        Ok(parts)
    }

    async fn create_upload(&self, key: &str, class: &str) -> Result<String> {
        self.count(|s| s.create_multipart += 1);
        let out = {
            let _slot = self.limiter.acquire().await;
            self.client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .storage_class(StorageClass::from(class))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .send()
                .await
                .map_err(|e| self.sdk_err("starting the upload of", key, e))?
        };
        out.upload_id().map(str::to_string).ok_or_else(|| {
            self.err(
                BackendErrorKind::Permanent,
                format!(
                    "starting the upload of {}: no upload id in the answer",
                    self.url(key)
                ),
            )
        })
    }

    /// Aborts an upload; failures are only logged (cleanup catches what is left).
    async fn abort_upload(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.try_abort_upload(key, upload_id).await {
            log::warn(&e.to_string());
        }
    }

    async fn try_abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.count(|s| s.abort_multipart += 1);
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
        };
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.sdk_err("aborting the upload of", key, e);
                match err.backend_kind() {
                    Some(BackendErrorKind::NotFound) => Ok(()),
                    _ => Err(err),
                }
            }
        }
    }

    async fn get_async(
        &self,
        id: &str,
        range: Option<ByteRange>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let key = self.key(id)?;
        if let Some(r) = range {
            if r.start > r.end {
                return Err(self.err(
                    BackendErrorKind::Permanent,
                    format!("{}: invalid range {}..{}", self.url(&key), r.start, r.end),
                ));
            }
            if r.is_empty() {
                // HTTP cannot ask for no bytes; check the object and the range instead.
                let head = self.head_existing(&key).await?;
                let size = head.content_length().unwrap_or(0).max(0) as u64;
                if r.end > size {
                    return Err(self.outside(&key, r, size));
                }
                return Ok(0);
            }
        }
        let mut request = self.client.get_object().bucket(&self.bucket).key(&key);
        if let Some(r) = range {
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let _slot = self.limiter.acquire().await;
        self.count(|s| s.get_object += 1);
        let answer = request.send().await.map_err(|e| {
            let err = self.sdk_err("reading", &key, e);
            match err.backend_kind() {
                Some(BackendErrorKind::NotWarm) => self.err(
                    BackendErrorKind::NotWarm,
                    format!(
                        "{} is archived and not restored: warm it up (restore) first",
                        self.url(&key)
                    ),
                ),
                _ => err,
            }
        })?;
        let length = answer.content_length().unwrap_or(-1).max(-1);
        let expected = match range {
            Some(r) => {
                if length != r.len() as i64 {
                    // S3 cuts a range that reaches past the end; refuse rather than return less.
                    let size = total_size(answer.content_range()).unwrap_or(0);
                    return Err(self.outside(&key, r, size));
                }
                r.len()
            }
            None if length >= 0 => length as u64,
            None => {
                return Err(self.err(
                    BackendErrorKind::Transient,
                    format!("reading {}: no length in the answer", self.url(&key)),
                ));
            }
        };
        let mut body = answer.body;
        let mut written = 0u64;
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(self.body_err(&key, written, expected, &e)),
            };
            let room = expected - written;
            let take = (chunk.len() as u64).min(room) as usize;
            out.write_all(&chunk[..take]).map_err(|e| {
                self.err(
                    BackendErrorKind::Permanent,
                    format!("writing what was read from {}: {e}", self.url(&key)),
                )
            })?;
            written += take as u64;
            if take < chunk.len() {
                return Err(self.err(
                    BackendErrorKind::Corrupt,
                    format!(
                        "reading {}: the service sent more than the {expected} bytes asked for",
                        self.url(&key)
                    ),
                ));
            }
        }
        if written != expected {
            return Err(self.err(
                BackendErrorKind::Transient,
                format!(
                    "reading {}: the answer broke off after {written} of {expected} bytes",
                    self.url(&key)
                ),
            ));
        }
        Ok(written)
    }

    fn outside(&self, key: &str, r: ByteRange, size: u64) -> Error {
        self.err(
            BackendErrorKind::Permanent,
            format!(
                "range {}..{} is outside {} ({size} bytes)",
                r.start,
                r.end,
                self.url(key)
            ),
        )
    }

    fn body_err(&self, key: &str, written: u64, expected: u64, e: &dyn std::error::Error) -> Error {
        let text = aws::source_chain(e);
        let kind = if text.to_ascii_lowercase().contains("checksum mismatch") {
            BackendErrorKind::Corrupt
        } else {
            BackendErrorKind::Transient
        };
        self.err(
            kind,
            format!(
                "reading {} (after {written} of {expected} bytes): {text}",
                self.url(key)
            ),
        )
    }

    async fn warm_up_async(&self, id: &str, tier: Tier, ticket: Option<&str>) -> Result<WarmState> {
        let key = self.key(id)?;
        let head = self.head_existing(&key).await?;
        let class = head
            .storage_class()
            .map(|c| c.as_str())
            .unwrap_or("STANDARD")
            .to_string();
        if !is_archive_class(&class) {
            return Ok(WarmState::Ready { ticket: None });
        }
        match restore_state(head.restore()) {
            RestoreState::Done => return Ok(WarmState::Ready { ticket: None }),
            RestoreState::Ongoing => {
                let ticket = ticket
                    .filter(|t| parse_ticket(t).is_some())
                    .map(str::to_string)
                    .unwrap_or_else(|| new_ticket(tier));
                return Ok(WarmState::Pending {
                    eta: ticket_eta(&ticket, &class),
                    ticket,
                });
            }
            RestoreState::None => {}
        }
        // Not restored and no restore running: never asked, or the restored copy expired.
        if class == "DEEP_ARCHIVE" && tier == Tier::Expedited {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "{} is in DEEP_ARCHIVE, which has no Expedited retrieval: use the standard \
                     (up to 12 hours) or bulk (up to 48 hours) tier",
                    self.url(&key)
                ),
            ));
        }
        let job = GlacierJobParameters::builder()
            .tier(match tier {
                Tier::Bulk => aws_sdk_s3::types::Tier::Bulk,
                Tier::Standard => aws_sdk_s3::types::Tier::Standard,
                Tier::Expedited => aws_sdk_s3::types::Tier::Expedited,
            })
            .build()
            .map_err(|e| self.err(BackendErrorKind::Permanent, e.to_string()))?;
        self.count(|s| s.restore_object += 1);
        let answer = {
            let _slot = self.limiter.acquire().await;
            self.client
                .restore_object()
                .bucket(&self.bucket)
                .key(&key)
                .restore_request(
                    RestoreRequest::builder()
                        .days(self.restore_days)
                        .glacier_job_parameters(job)
                        .build(),
                )
                .send()
                .await
        };
        if let Err(e) = answer {
            match e.code() {
                // Someone else asked first: it is on its way.
                Some("RestoreAlreadyInProgress") => {}
                // Not archived after all (moved by a lifecycle rule, say).
                Some("ObjectAlreadyInActiveTierError") => {
                    return Ok(WarmState::Ready { ticket: None });
                }
                _ => return Err(self.sdk_err("requesting a restore of", &key, e)),
            }
        }
        let ticket = new_ticket(tier);
        Ok(WarmState::Pending {
            eta: ticket_eta(&ticket, &class),
            ticket,
        })
    }

    async fn list_async(&self) -> Result<Vec<ObjectInfo>> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = {
                let _slot = self.limiter.acquire().await;
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("listing", &self.prefix, e))?
            };
            for o in out.contents() {
                let Some(id) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if id.is_empty() || id.ends_with('/') {
                    continue;
                }
                let parsed = parse_object_key(id);
                items.push(ObjectInfo {
                    id: id.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    kind: parsed.map(|p| p.0),
                    tree_hash: parsed.map(|p| p.1),
                    created: parsed.and_then(|p| p.2),
                });
            }
            token = out.next_continuation_token().map(str::to_string);
            if out.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(items)
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

    async fn cleanup_async(&self) -> Result<()> {
        let mut aborted = 0;
        for u in self.list_uploads(&self.prefix).await? {
            // Only uploads of keys glaciersync makes: the prefix may be shared.
            let ours = u
                .key
                .strip_prefix(&self.prefix)
                .is_some_and(|id| parse_object_key(id).is_some());
            if ours {
                self.try_abort_upload(&u.key, &u.upload_id).await?;
                aborted += 1;
            }
        }
        if aborted > 0 {
            log::verbose(&format!(
                "s3://{}/{}: aborted {aborted} incomplete upload(s)",
                self.bucket, self.prefix
            ));
        }
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
    fn retrieval_range(&self, object_size: u64, _want: ByteRange) -> ByteRange {
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

    fn cleanup(&self) -> Result<()> {
        self.runtime.block_on(self.cleanup_async())
    }
}

/// What one multipart upload works on.
struct PartsJob<'a> {
    meta: &'a PutMeta,
    source: &'a Path,
    file: &'a File,
    key: &'a str,
    upload_id: &'a str,
    part_size: u64,
    stored: &'a HashMap<i32, StoredPart>,
}

/// An incomplete multipart upload as listed.
struct Upload {
    key: String,
    upload_id: String,
    sha256: bool,
    storage_class: Option<String>,
    initiated: Option<i128>,
}

/// A part already stored in an incomplete upload.
struct StoredPart {
    size: u64,
    etag: String,
    /// Its SHA-256 (base64), when the service lists it.
    checksum: Option<String>,
}

impl StoredPart {
    /// Whether this part holds the local part's bytes: same size and SHA-256, or, where the
    /// service lists no checksum, an ETag equal to the local part's MD5.
    fn matches(&self, len: u64, checksum: &str, md5_hex: Option<&str>) -> bool {
        self.size == len
            && match &self.checksum {
                Some(c) => c == checksum,
                None => {
                    md5_hex.is_some_and(|m| self.etag.trim_matches('"').eq_ignore_ascii_case(m))
                }
            }
    }
}

/// One part (or a whole small object) read into memory, with its digests.
struct PartData {
    data: Vec<u8>,
    sha256: Hash32,
    md5: Option<String>,
}

/// Reads `len` bytes at `offset` with a positional read and hashes them.
fn read_part(
    file: &File,
    source: &Path,
    meta: &PutMeta,
    offset: u64,
    len: u64,
    want_md5: bool,
) -> Result<PartData> {
    let mut data = vec![0u8; len as usize];
    read_exact_at(file, &mut data, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            changed(source, meta, "it became shorter")
        } else {
            Error::io(source, e)
        }
    })?;
    let sha = sha256(&data);
    let md5 = want_md5.then(|| hex::encode(Md5::digest(&data)));
    Ok(PartData {
        data,
        sha256: sha,
        md5,
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn changed(source: &Path, meta: &PutMeta, what: &str) -> Error {
    Error::backend(
        NAME,
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

fn check_existing_size(url: &str, found: Option<i64>, size: u64) -> Result<()> {
    if found == Some(size as i64) {
        return Ok(());
    }
    Err(Error::backend(
        NAME,
        BackendErrorKind::Permanent,
        format!(
            "{url} already exists with {} bytes instead of {size}: it was not written by \
             glaciersync or is damaged; remove it and sync again",
            found.map_or("an unknown number of".to_string(), |n| n.to_string())
        ),
    ))
}

/// Files a finished part task's outcome.
fn record(
    done: std::result::Result<Result<(usize, String)>, tokio::task::JoinError>,
    etags: &mut [Option<String>],
    failure: &mut Option<Error>,
) {
    let outcome = done.unwrap_or_else(|e| {
        Err(Error::backend(
            NAME,
            BackendErrorKind::Permanent,
            format!("a part upload failed: {e}"),
        ))
    });
    match outcome {
        Ok((index, etag)) => etags[index] = Some(etag),
        Err(e) => {
            failure.get_or_insert(e);
        }
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

fn is_archive_class(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

#[derive(Debug, PartialEq, Eq)]
enum RestoreState {
    /// No restore requested, or the restored copy expired.
    None,
    Ongoing,
    /// A restored copy is readable.
    Done,
}

/// Reads `x-amz-restore`: `ongoing-request="true"`, or `ongoing-request="false",
/// expiry-date="…"`.
fn restore_state(header: Option<&str>) -> RestoreState {
    let Some(h) = header else {
        return RestoreState::None;
    };
    let h = h.to_ascii_lowercase().replace(' ', "");
    if h.contains("ongoing-request=\"true\"") {
        RestoreState::Ongoing
    } else if h.contains("ongoing-request=\"false\"") {
        RestoreState::Done
    } else {
        RestoreState::None
    }
}

/// How long a restore takes at most (AWS's documented typical times).
fn restore_time(class: &str, tier: Tier) -> Duration {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let deep = class == "DEEP_ARCHIVE";
    match tier {
        Tier::Expedited => Duration::from_secs(5 * 60),
        Tier::Standard if deep => hours(12),
        Tier::Standard => hours(5),
        Tier::Bulk if deep => hours(48),
        Tier::Bulk => hours(12),
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A ticket remembers the tier and when the restore was asked for: `s3-restore:<tier>:<time>`.
fn new_ticket(tier: Tier) -> String {
    format!("s3-restore:{}:{}", tier.as_str(), now_unix())
}

fn parse_ticket(ticket: &str) -> Option<(Tier, i64)> {
    let rest = ticket.strip_prefix("s3-restore:")?;
    let (tier, time) = rest.split_once(':')?;
    Some((Tier::parse(tier)?, time.parse().ok()?))
}

fn ticket_eta(ticket: &str, class: &str) -> Option<Duration> {
    let (tier, asked) = parse_ticket(ticket)?;
    let elapsed = Duration::from_secs((now_unix() - asked).max(0) as u64);
    restore_time(class, tier)
        .checked_sub(elapsed)
        .filter(|d| !d.is_zero())
}

/// The whole size from `Content-Range: bytes 0-9/1234`.
fn total_size(content_range: Option<&str>) -> Option<u64> {
    content_range?.rsplit_once('/')?.1.trim().parse().ok()
}

/// Standard base64 (RFC 4648, with padding), as S3 checksum headers use.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `x-amz-checksum-sha256` value of a body: base64 of its SHA-256.
pub fn checksum_sha256(body: &[u8]) -> String {
    base64(&sha256(body).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn checksum_is_base64_of_sha256() {
        assert_eq!(
            checksum_sha256(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            checksum_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn parts_are_read_at_their_offsets_and_hashed() {
        let data = crate::backend::testsuite::content((3 << 20) + 77, 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let meta = PutMeta {
            kind: ObjectKind::File,
            tree_hash: tree_hash(&data),
            size: data.len() as u64,
            profile: "p".into(),
            created: 0,
        };
        for (offset, len) in [(0, 2 * MIB), (2 * MIB, MIB + 77), (5, 10)] {
            let part = read_part(&file, &path, &meta, offset, len, true).unwrap();
            let slice = &data[offset as usize..(offset + len) as usize];
            assert!(part.data == slice);
            assert_eq!(part.sha256, sha256(slice));
            assert_eq!(part.md5.unwrap(), hex::encode(Md5::digest(slice)));
        }
        assert_eq!(
            read_part(&file, &path, &meta, 0, 10, false).unwrap().md5,
            None
        );
        let err = read_part(&file, &path, &meta, data.len() as u64 - 5, 10, false)
            .err()
            .unwrap();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt), "{err}");
    }

    #[test]
    fn part_sizes() {
        assert_eq!(normalize_part_size(1), MIN_PART_SIZE);
        assert_eq!(normalize_part_size(5 * MIB + 1), 6 * MIB);
        assert_eq!(normalize_part_size(64 * MIB), 64 * MIB);
        assert_eq!(normalize_part_size(u64::MAX / 2), MAX_PART_SIZE);
        assert_eq!(part_size_for(8 * MIB, 100 * MIB), 8 * MIB);
        // 1 TiB in 8 MiB parts would be 131,072 parts: raised to whole MiB within 10,000.
        let tib = 1024 * 1024 * MIB;
        let p = part_size_for(8 * MIB, tib);
        assert_eq!(p % MIB, 0);
        assert!(tib.div_ceil(p) <= MAX_PARTS && tib.div_ceil(p - MIB) > MAX_PARTS);
        assert!(
            MAX_OBJECT_SIZE.div_ceil(part_size_for(MIN_PART_SIZE, MAX_OBJECT_SIZE)) <= MAX_PARTS
        );
    }

    fn offline(storage_class: &str) -> Result<S3Backend> {
        S3Backend::new(S3Options {
            aws: AwsOptions {
                region: Some("eu-west-1".into()),
                endpoint_url: Some("http://127.0.0.1:9".into()),
                access_key: Some("AKIDEXAMPLE".into()),
                secret_key: Some("SecretNeverShown".into()),
                profile: None,
            },
            bucket: "b".into(),
            prefix: "pictures".into(),
            storage_class: storage_class.into(),
            ..S3Options::default()
        })
    }

    #[test]
    fn options_are_checked_and_shown_without_secrets() {
        let b = offline("deep_archive").unwrap();
        assert_eq!(
            b.describe(),
            "s3://b/pictures/ (storage class DEEP_ARCHIVE, region eu-west-1)"
        );
        for (class, cold) in [
            ("DEEP_ARCHIVE", true),
            ("GLACIER", true),
            ("GLACIER_IR", false),
            ("STANDARD_IA", false),
            ("STANDARD", false),
        ] {
            let b = offline(class).unwrap();
            assert_eq!(b.needs_warm_up(ObjectKind::File), cold, "{class}");
            assert_eq!(b.needs_warm_up(ObjectKind::Bundle), cold, "{class}");
            assert!(!b.needs_warm_up(ObjectKind::Catalog), "{class}");
        }
        let err = offline("COLD").err().unwrap();
        assert!(err.to_string().contains("COLD"), "{err}");
        let err = S3Backend::new(S3Options::default()).err().unwrap();
        assert!(err.to_string().contains("bucket"), "{err}");
        let shown = format!("{:?}", offline_options());
        assert!(!shown.contains("SecretNeverShown"), "{shown}");
    }

    fn offline_options() -> S3Options {
        S3Options {
            aws: AwsOptions {
                secret_key: Some("SecretNeverShown".into()),
                ..AwsOptions::default()
            },
            ..S3Options::default()
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("pictures/"), "pictures/");
        assert_eq!(normalize_prefix("pictures"), "pictures/");
        assert_eq!(normalize_prefix("/a/b"), "a/b/");
        assert_eq!(normalize_prefix(""), "");
    }

    #[test]
    fn restore_header() {
        assert_eq!(restore_state(None), RestoreState::None);
        assert_eq!(
            restore_state(Some("ongoing-request=\"true\"")),
            RestoreState::Ongoing
        );
        assert_eq!(
            restore_state(Some(
                "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""
            )),
            RestoreState::Done
        );
    }

    #[test]
    fn tickets_and_etas() {
        let t = new_ticket(Tier::Bulk);
        assert_eq!(parse_ticket(&t).map(|p| p.0), Some(Tier::Bulk));
        let eta = ticket_eta(&t, "DEEP_ARCHIVE").unwrap();
        assert!(eta <= Duration::from_secs(48 * 3600) && eta > Duration::from_secs(47 * 3600));
        let old = format!("s3-restore:expedited:{}", now_unix() - 3600);
        assert_eq!(ticket_eta(&old, "GLACIER"), None);
        assert_eq!(parse_ticket("garbage"), None);
        assert_eq!(
            restore_time("GLACIER", Tier::Standard),
            Duration::from_secs(5 * 3600)
        );
        assert_eq!(
            restore_time("DEEP_ARCHIVE", Tier::Standard),
            Duration::from_secs(12 * 3600)
        );
    }

    #[test]
    fn content_range_total() {
        assert_eq!(total_size(Some("bytes 0-9/1234")), Some(1234));
        assert_eq!(total_size(Some("bytes */*")), None);
        assert_eq!(total_size(None), None);
    }

    #[test]
    fn stored_parts_match_on_checksum_or_md5_etag() {
        let with_sum = StoredPart {
            size: 10,
            etag: "\"x\"".into(),
            checksum: Some("abc=".into()),
        };
        assert!(with_sum.matches(10, "abc=", None));
        assert!(!with_sum.matches(10, "abd=", None));
        assert!(!with_sum.matches(11, "abc=", None));
        let etag_only = StoredPart {
            size: 10,
            etag: "\"0CC175B9C0F1B6A831C399E269772661\"".into(),
            checksum: None,
        };
        assert!(etag_only.matches(10, "zzz=", Some("0cc175b9c0f1b6a831c399e269772661")));
        assert!(!etag_only.matches(10, "zzz=", Some("ffff")));
        assert!(!etag_only.matches(10, "zzz=", None));
    }
}
