//! Storing an object: one conditional PUT up to the part size, else a multipart upload whose
//! parts are read with positional reads, checked against the caller's tree hash and sent
//! several at a time (resuming an interrupted upload of the same key, see [`super::resume`]).

use super::checksum::{PayloadHash, base64};
use super::resume::StoredPart;
use super::{MAX_OBJECT_SIZE, NAME, S3Backend, count};
use crate::backend::aws;
use crate::backend::{PutMeta, object_key};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, TreeHasher, sha256, tree_hash};
use crate::log;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, StorageClass};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinSet;

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
        let stop_after = self.stop_after_parts.limit();
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

/// One part (or a whole small object) read into memory, with its digests.
pub(super) struct PartData {
    pub(super) data: Vec<u8>,
    pub(super) sha256: Hash32,
    pub(super) md5: Option<String>,
}

/// Reads `len` bytes at `offset` with a positional read and hashes them.
pub(super) fn read_part(
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
