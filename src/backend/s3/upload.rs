//! Storing an object: one conditional PUT up to the part size, else a multipart upload whose
//! parts are read with positional reads, checked against the caller's tree hash and sent
//! several at a time (resuming an interrupted upload of the same key, see [`super::resume`]).

use super::checksum::{PayloadHash, base64};
use super::resume::StoredPart;
use super::{MAX_OBJECT_SIZE, NAME, S3Backend, count};
use crate::backend::aws;
use crate::backend::multipart::{self, Multipart, PartsJob, Source};
use crate::backend::retry::RetryPolicy;
use crate::backend::{PutMeta, object_key};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, sha256, tree_hash};
use crate::log;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, StorageClass};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

impl S3Backend {
    pub(super) async fn put_async(&self, meta: &PutMeta, source: &Path) -> Result<String> {
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
        let source = Source {
            meta,
            path: source,
            file: &file,
            backend: NAME,
        };
        source.check_len()?;
        let part_size = self.part_size_for(meta.size);
        if meta.size <= part_size {
            self.put_single(&source, &key).await?;
        } else {
            self.put_multipart(source, &key, part_size).await?;
        }
        Ok(id)
    }

    /// One conditional PUT, after checking the bytes against the tree hash.
    async fn put_single(&self, source: &Source<'_>, key: &str) -> Result<()> {
        let meta = source.meta;
        let slot = self.limiter.acquire().await;
        let data = source.read(0, meta.size)?;
        let sha = sha256(&data);
        // Up to one leaf, the tree hash is the plain SHA-256.
        source.check_tree_hash(if meta.size <= MIB {
            sha
        } else {
            tree_hash(&data)
        })?;
        self.count(|s| s.put_object += 1);
        let answer = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .storage_class(StorageClass::from(self.class_for(meta.kind)))
            .content_length(meta.size as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(base64(&sha.0))
            .if_none_match("*")
            .body(ByteStream::from(data))
            .customize()
            .config_override(upload_override(&self.client, meta.size))
            .interceptor(PayloadHash(sha.to_hex()))
            .send()
            .await;
        drop(slot);
        match answer {
            Ok(out) => self.confirmed(key, &out, &sha),
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

    /// Checks that a 200 to a PutObject came from S3 storing the object: S3 always answers with
    /// an ETag, and echoes the SHA-256 it was sent when it echoes one. A server that answers
    /// 200 with anything else (a captive portal, a misconfigured proxy or endpoint) stored
    /// nothing that can be trusted.
    fn confirmed(&self, key: &str, out: &PutObjectOutput, sent: &Hash32) -> Result<()> {
        self.stored_as_s3(key, out.e_tag())?;
        match out.checksum_sha256() {
            Some(sum) if sum != base64(&sent.0) => Err(self.err(
                BackendErrorKind::Corrupt,
                format!(
                    "uploading {}: S3 computed SHA-256 {sum} (base64), but {} was sent",
                    self.url(key),
                    base64(&sent.0)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// An upload's answer without an ETag did not come from S3 storing the object.
    pub(super) fn stored_as_s3(&self, key: &str, etag: Option<&str>) -> Result<()> {
        match etag.is_none_or(str::is_empty) {
            false => Ok(()),
            true => Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "uploading {}: {} answered without an ETag, so it did not store the object \
                     as S3 does: check `endpoint_url` and any proxy in between",
                    self.url(key),
                    self.endpoint
                ),
            )),
        }
    }

    async fn put_multipart(&self, source: Source<'_>, key: &str, part_size: u64) -> Result<()> {
        let meta = source.meta;
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
        let upload = Upload {
            backend: self,
            key,
            upload_id,
            stored,
        };
        let job = PartsJob {
            source,
            part_size,
            limiter: &self.limiter,
            stop_after: self.stop_after_parts.limit(),
            retry: RetryPolicy::standard(),
        };
        multipart::upload(upload, &job).await.map(drop)
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

/// A multipart upload of one key, started or resumed.
pub(super) struct Upload<'a> {
    pub(super) backend: &'a S3Backend,
    pub(super) key: &'a str,
    pub(super) upload_id: String,
    /// Parts an earlier attempt stored, by part number.
    pub(super) stored: HashMap<i32, StoredPart>,
}

/// A part's digests: SHA-256 (and its base64 checksum), and MD5 when a stored part of the
/// same number can only be matched by its ETag.
pub(super) struct PartDigest {
    pub(super) sha256: Hash32,
    pub(super) checksum: String,
    pub(super) md5: Option<String>,
}

/// S3 numbers parts from 1.
fn part_number(index: usize) -> i32 {
    index as i32 + 1
}

impl Multipart for Upload<'_> {
    type Digest = PartDigest;
    /// The part's ETag.
    type Stored = String;

    fn digest(&self, index: usize, data: &[u8]) -> PartDigest {
        let stored = self.stored.get(&part_number(index));
        let need_md5 = stored.is_some_and(|p| p.size == data.len() as u64 && p.checksum.is_none());
        let sha256 = sha256(data);
        PartDigest {
            sha256,
            checksum: base64(&sha256.0),
            md5: need_md5.then(|| hex::encode(Md5::digest(data))),
        }
    }

    /// S3 parts are whole MiB, not tree-hash nodes: the tree hash is taken from the bytes.
    fn tree_hash(&self, _digest: &PartDigest) -> Option<Hash32> {
        None
    }

    fn reuse(&self, index: usize, len: u64, d: &PartDigest) -> Option<String> {
        let part = self.stored.get(&part_number(index))?;
        if !part.matches(len, &d.checksum, d.md5.as_deref()) {
            return None;
        }
        self.backend.count(|s| s.parts_reused += 1);
        Some(part.etag.clone())
    }

    fn send(
        &self,
        index: usize,
        _offset: u64,
        data: Vec<u8>,
        d: &PartDigest,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        let b = self.backend;
        let number = part_number(index);
        let what = format!("uploading part {number} of {}", b.url(self.key));
        let len = data.len() as u64;
        let request = b
            .client
            .upload_part()
            .bucket(&b.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_length(data.len() as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&d.checksum)
            .body(ByteStream::from(data))
            .customize()
            .config_override(upload_override(&b.client, len))
            .interceptor(PayloadHash(d.sha256.to_hex()))
            .send();
        let stats = Arc::clone(&b.stats);
        async move {
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
            Ok(etag.to_string())
        }
    }

    async fn complete(self, meta: &PutMeta, parts: Vec<(PartDigest, String)>) -> Result<String> {
        let b = self.backend;
        let parts = parts
            .into_iter()
            .enumerate()
            .map(|(index, (d, etag))| {
                CompletedPart::builder()
                    .part_number(part_number(index))
                    .e_tag(etag)
                    .checksum_sha256(d.checksum)
                    .build()
            })
            .collect();
        b.count(|s| s.complete_multipart += 1);
        let answer = {
            let _slot = b.limiter.acquire().await;
            b.client
                .complete_multipart_upload()
                .bucket(&b.bucket)
                .key(self.key)
                .upload_id(&self.upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .if_none_match("*")
                .send()
                .await
        };
        match answer {
            Ok(out) => b
                .stored_as_s3(self.key, out.e_tag())
                .map(|()| self.key.to_string()),
            Err(e) => {
                self.completion_failed(meta, b.sdk_err("completing the upload of", self.key, e))
                    .await
            }
        }
    }

    async fn abort(&self) -> Result<()> {
        self.backend
            .try_abort_upload(self.key, &self.upload_id)
            .await
    }
}

impl Upload<'_> {
    /// A completion that failed with `err` may still have stored the object.
    async fn completion_failed(&self, meta: &PutMeta, err: Error) -> Result<String> {
        let (b, key) = (self.backend, self.key);
        if err.backend_kind() == Some(BackendErrorKind::AlreadyExists) {
            // Stored meanwhile by someone else: ours is not needed.
            b.abort_upload(key, &self.upload_id).await;
            b.accept_existing(key, meta.size).await?;
            return Ok(key.to_string());
        }
        // The object may still be there: completed by an earlier attempt whose answer was lost
        // (NoSuchUpload now), or by this one with an answer the SDK could not read (moto 5.2.1
        // names the XML root CompleteMultipartUploadResponse). The service shows which.
        match b.head(key).await {
            Ok(Some(head)) => {
                check_existing_size(&b.url(key), head.content_length(), meta.size)?;
                log::debug(&format!("{}: stored, although {err}", b.url(key)));
                Ok(key.to_string())
            }
            _ => Err(err),
        }
    }
}

/// A request carrying `len` bytes of body gets time to send them (see [`aws::upload_timeouts`]).
fn upload_override(client: &aws_sdk_s3::Client, len: u64) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new()
        .timeout_config(aws::upload_timeouts(client.config().timeout_config(), len))
}
