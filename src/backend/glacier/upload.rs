//! Storing an archive: one UploadArchive up to the part size, else a multipart upload with
//! several parts in flight. The source is read once, each piece hashed as it is read (tree
//! hash and SHA-256), and the archive's tree hash checked before completing. An interrupted
//! multipart upload of the same content is resumed (see [`super::resume`]).

use super::description::description;
use super::errors::not_found_as;
use super::{BACKEND, GlacierBackend, MAX_SINGLE_UPLOAD, part_size_for, short};
use crate::backend::PutMeta;
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, MIB, TreeHasher, combine_tree_hashes};
use crate::log;
use aws_sdk_glacier::primitives::ByteStream;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Reads and hashes sources in pieces of this size.
const READ_CHUNK: usize = MIB as usize;

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

impl GlacierBackend {
    pub(super) fn put_archive(&self, meta: &PutMeta, source: &Path) -> Result<String> {
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
        let stop_after = self.stop_after_parts.limit();
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
                    // Not found: the upload was aborted or reclaimed meanwhile; a retry starts anew.
                    let e = not_found_as(
                        ctx.map(&format!("uploading part {index}"), e),
                        BackendErrorKind::Transient,
                        "; will start again",
                    );
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
                not_found_as(
                    self.ctx.map("completing a multipart upload", e),
                    BackendErrorKind::Transient,
                    "; will start again",
                )
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
}
