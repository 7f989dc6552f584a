//! Storing an archive: one UploadArchive up to the part size, else a multipart upload driven by
//! [`crate::backend::multipart`], several parts in flight. Each piece is read once into memory
//! and hashed there in one pass (tree hash and SHA-256, both sent as headers); the archive's
//! tree hash, combined from the parts', is checked before completing. An interrupted multipart
//! upload of the same content is resumed (see [`super::resume`]).

use super::description::description;
use super::errors::not_found_as;
use super::resume::ActiveUpload;
use super::{BACKEND, GlacierBackend, MAX_SINGLE_UPLOAD, part_size_for, short};
use crate::backend::PutMeta;
use crate::backend::aws;
use crate::backend::multipart::{self, Multipart, PartsJob, Source};
use crate::backend::retry::RetryPolicy;
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, TreeHasher};
use crate::log;
use aws_sdk_glacier::primitives::ByteStream;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::path::Path;

/// A piece's digests: its tree hash and plain SHA-256 (hex), as Glacier's headers want them.
pub(super) struct PieceDigest {
    tree_hash: Hash32,
    sha256_hex: String,
}

/// Hashes `data` once, a MiB at a time into both hashes while it is in the cache.
fn digest(data: &[u8]) -> PieceDigest {
    let mut tree = TreeHasher::new();
    let mut sha = Sha256::new();
    for chunk in data.chunks(MIB as usize) {
        tree.update(chunk);
        sha.update(chunk);
    }
    PieceDigest {
        tree_hash: tree.finish(),
        sha256_hex: hex::encode(sha.finalize()),
    }
}

impl GlacierBackend {
    pub(super) fn put_archive(&self, meta: &PutMeta, path: &Path) -> Result<String> {
        if meta.size == 0 {
            return Err(self.err(
                BackendErrorKind::Permanent,
                format!(
                    "{}: Glacier archives hold at least one byte; an empty object cannot be stored",
                    path.display()
                ),
            ));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let source = Source {
            meta,
            path,
            file: &file,
            backend: BACKEND,
        };
        if meta.size <= self.part_size.min(MAX_SINGLE_UPLOAD) {
            self.put_single(&source)
        } else {
            self.put_multipart(source)
        }
    }

    fn put_single(&self, source: &Source<'_>) -> Result<String> {
        let meta = source.meta;
        let permit = self.acquire();
        let data = source.read(0, meta.size)?;
        source.check_len()?;
        let piece = digest(&data);
        source.check_tree_hash(piece.tree_hash)?;
        let sha = piece.sha256_hex;
        let request = self
            .client
            .upload_archive()
            .vault_name(&*self.ctx.vault)
            .archive_description(description(meta))
            .checksum(meta.tree_hash.to_hex())
            .body(ByteStream::from(data))
            .customize()
            .config_override(upload_override(&self.client, meta.size))
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
        archive_id(self, "UploadArchive", out.archive_id())
    }

    fn put_multipart(&self, source: Source<'_>) -> Result<String> {
        let part_size = part_size_for(self.part_size, source.meta.size)?;
        let upload = self.start_upload(source.meta, part_size)?;
        let job = PartsJob {
            source,
            part_size,
            limiter: &self.limiter,
            stop_after: self.stop_after_parts.limit(),
            retry: RetryPolicy::standard(),
        };
        self.runtime.block_on(multipart::upload(upload, &job))
    }

    /// Resumes an unfinished upload of the same content and part size, or initiates one.
    fn start_upload(&self, meta: &PutMeta, part_size: u64) -> Result<Upload<'_>> {
        let desc = description(meta);
        if let Some((active, existing)) = self.find_resumable(meta, &desc, part_size)? {
            log::verbose(&format!(
                "glacier: resuming the upload of {} {} ({} parts already there)",
                meta.kind.as_str(),
                meta.tree_hash,
                existing.len()
            ));
            return Ok(Upload {
                backend: self,
                active,
                part_size,
                existing,
            });
        }
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
        let active = self.mark_active(id).ok_or_else(|| {
            self.err(
                BackendErrorKind::Permanent,
                format!("Glacier handed out upload id {} twice", short(id)),
            )
        })?;
        Ok(Upload {
            backend: self,
            active,
            part_size,
            existing: HashMap::new(),
        })
    }
}

/// The archive id of an answer, which must have one.
fn archive_id(b: &GlacierBackend, operation: &str, id: Option<&str>) -> Result<String> {
    match id {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(b.err(
            BackendErrorKind::Permanent,
            format!("{operation} answered without an archive id"),
        )),
    }
}

/// A multipart upload this process is writing (marked active until dropped).
struct Upload<'a> {
    backend: &'a GlacierBackend,
    active: ActiveUpload,
    part_size: u64,
    /// Parts Glacier already holds, by start offset: their tree hashes.
    existing: HashMap<u64, Hash32>,
}

impl Multipart for Upload<'_> {
    type Digest = PieceDigest;
    type Stored = ();

    fn digest(&self, _index: usize, data: &[u8]) -> PieceDigest {
        digest(data)
    }

    /// Parts are a power-of-two number of MiB: whole tree-hash nodes.
    fn tree_hash(&self, d: &PieceDigest) -> Option<Hash32> {
        Some(d.tree_hash)
    }

    fn reuse(&self, index: usize, _len: u64, d: &PieceDigest) -> Option<()> {
        let offset = index as u64 * self.part_size;
        (self.existing.get(&offset) == Some(&d.tree_hash)).then_some(())
    }

    fn send(
        &self,
        index: usize,
        offset: u64,
        data: Vec<u8>,
        d: &PieceDigest,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let ctx = self.backend.ctx.clone();
        let end = offset + data.len() as u64 - 1;
        let sha = d.sha256_hex.clone();
        let request = self
            .backend
            .client
            .upload_multipart_part()
            .vault_name(&*ctx.vault)
            .upload_id(&self.active.id)
            .range(format!("bytes {offset}-{end}/*"))
            .checksum(d.tree_hash.to_hex())
            .body(ByteStream::from(data))
            .customize()
            .config_override(upload_override(&self.backend.client, end + 1 - offset))
            .mutate_request(move |req| {
                req.headers_mut()
                    .insert("x-amz-content-sha256", sha.clone());
            })
            .send();
        async move {
            request.await.map(drop).map_err(|e| {
                // Not found: the upload was aborted or reclaimed meanwhile; a retry starts anew.
                not_found_as(
                    ctx.map(&format!("uploading part {index}"), e),
                    BackendErrorKind::Transient,
                    "; will start again",
                )
            })
        }
    }

    async fn complete(self, meta: &PutMeta, _parts: Vec<(PieceDigest, ())>) -> Result<String> {
        let b = self.backend;
        let out = b
            .limited(
                b.client
                    .complete_multipart_upload()
                    .vault_name(&*b.ctx.vault)
                    .upload_id(&self.active.id)
                    .archive_size(meta.size.to_string())
                    .checksum(meta.tree_hash.to_hex())
                    .send(),
            )
            .await
            .map_err(|e| {
                not_found_as(
                    b.ctx.map("completing a multipart upload", e),
                    BackendErrorKind::Transient,
                    "; will start again",
                )
            })?;
        drop(self.active);
        archive_id(b, "CompleteMultipartUpload", out.archive_id())
    }

    async fn abort(&self) -> Result<()> {
        self.backend.abort_upload(&self.active.id).await
    }
}

/// A request carrying `len` bytes of body gets time to send them (see [`aws::upload_timeouts`]).
fn upload_override(client: &aws_sdk_glacier::Client, len: u64) -> aws_sdk_glacier::config::Builder {
    aws_sdk_glacier::config::Builder::new()
        .timeout_config(aws::upload_timeouts(client.config().timeout_config(), len))
}
