//! The multipart upload loop the S3 and Glacier backends share. Each backend starts (or
//! resumes) its upload and hands it over as a [`Multipart`]: its rules for hashing and matching
//! parts, and its requests. The loop here does the rest, the same for both:
//!
//! - takes a place in the backend-wide [`Limiter`] before reading a part, so memory stays below
//!   concurrency × part size;
//! - reads each part with a positional read and has the backend hash it;
//! - skips parts an earlier attempt already stored (a resume after a crash or a failure);
//! - sends the others as tasks, several at a time, and keeps the first failure;
//! - checks the whole object's tree hash (and size) against [`PutMeta::tree_hash`] before
//!   completing; a source that changed meanwhile aborts the upload and fails with `Corrupt`.
//!
//! Any other failure leaves the stored parts for a retry (or the next run) to resume.

use super::parts::{Limiter, Slot};
use super::{PutMeta, changed_while_stored};
use crate::error::{BackendErrorKind, Error, Result};
use crate::hash::{Hash32, TreeHasher, combine_tree_hashes};
use std::fs::File;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio::task::{JoinError, JoinSet};

/// An upload started (or resumed) by a backend, as the loop drives it.
pub(super) trait Multipart {
    /// A part's digests, as the service wants them sent.
    type Digest;
    /// What the service keeps of a stored part and completion needs (S3: its ETag).
    type Stored: Send + 'static;

    /// Hashes part `index`, whose bytes are `data`.
    fn digest(&self, index: usize, data: &[u8]) -> Self::Digest;

    /// The part's tree hash, when parts are whole tree-hash nodes (Glacier's power-of-two
    /// parts): the object's tree hash is then combined from them, not hashed again.
    fn tree_hash(&self, digest: &Self::Digest) -> Option<Hash32>;

    /// The part as an earlier attempt stored it, when it holds these bytes: not sent again.
    fn reuse(&self, index: usize, len: u64, digest: &Self::Digest) -> Option<Self::Stored>;

    /// The request sending part `index` (`data`, at `offset`); it runs as a task of its own.
    fn send(
        &self,
        index: usize,
        offset: u64,
        data: Vec<u8>,
        digest: &Self::Digest,
    ) -> impl Future<Output = Result<Self::Stored>> + Send + 'static;

    /// Completes the upload from its parts, in order; returns the id `put` returns.
    fn complete(
        self,
        meta: &PutMeta,
        parts: Vec<(Self::Digest, Self::Stored)>,
    ) -> impl Future<Output = Result<String>>;

    /// Aborts the upload; a failure is only logged (cleanup catches what is left).
    fn abort(&self) -> impl Future<Output = ()>;
}

/// The file being stored, and what it must hold.
pub(super) struct Source<'a> {
    pub(super) meta: &'a PutMeta,
    pub(super) path: &'a Path,
    pub(super) file: &'a File,
    /// The backend's name, for errors.
    pub(super) backend: &'static str,
}

impl Source<'_> {
    /// Reads `len` bytes at `offset` with a positional read.
    pub(super) fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut data = vec![0u8; len as usize];
        read_exact_at(self.file, &mut data, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.changed("it became shorter")
            } else {
                Error::io(self.path, e)
            }
        })?;
        Ok(data)
    }

    /// Fails with `Corrupt` unless the file is as long as announced.
    pub(super) fn check_len(&self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io(self.path, e))?
            .len();
        if len == self.meta.size {
            return Ok(());
        }
        Err(self.changed(&format!("it is now {len} bytes long")))
    }

    /// Fails with `Corrupt` unless `tree` is the announced tree hash.
    pub(super) fn check_tree_hash(&self, tree: Hash32) -> Result<()> {
        if tree == self.meta.tree_hash {
            return Ok(());
        }
        Err(self.changed(&format!("its bytes have tree hash {tree}")))
    }

    /// The source changed while it was stored: `what` says how.
    pub(super) fn changed(&self, what: &str) -> Error {
        changed_while_stored(self.backend, self.path, self.meta, what)
    }
}

/// One multipart upload's work.
pub(super) struct PartsJob<'a> {
    pub(super) source: Source<'a>,
    pub(super) part_size: u64,
    pub(super) limiter: &'a Arc<Limiter>,
    /// Test hook ([`super::parts::StopAfterParts`]): fail after sending this many parts.
    pub(super) stop_after: usize,
}

/// Sends the parts of `job` through `upload` and completes it. A source that changed aborts
/// the upload; after any other failure the parts sent stay for a retry to resume.
pub(super) async fn upload<M: Multipart>(upload: M, job: &PartsJob<'_>) -> Result<String> {
    match send_parts(&upload, job).await {
        Ok(parts) => upload.complete(job.source.meta, parts).await,
        Err(e) => {
            if e.backend_kind() == Some(BackendErrorKind::Corrupt) {
                upload.abort().await;
            }
            Err(e)
        }
    }
}

/// A part task's outcome: its index and what the service stored.
type Sent<S> = std::result::Result<Result<(usize, S)>, JoinError>;

/// Reads, checks and sends (or reuses) every part; returns them in order.
async fn send_parts<M: Multipart>(
    m: &M,
    job: &PartsJob<'_>,
) -> Result<Vec<(M::Digest, M::Stored)>> {
    let count = job.source.meta.size.div_ceil(job.part_size) as usize;
    let mut run = Run {
        stored: (0..count).map(|_| None).collect(),
        digests: Vec::with_capacity(count),
        whole: WholeHash::default(),
        tasks: JoinSet::new(),
        failure: None,
        sent: 0,
    };
    for index in 0..count {
        // The place is taken before the part is read: it bounds the parts held in memory.
        let slot = job.limiter.acquire().await;
        run.collect_finished(job.source.backend);
        if run.failure.is_some() {
            break;
        }
        if let Err(e) = run.part(m, job, index, slot) {
            run.failure = Some(e);
            break;
        }
    }
    run.finish(job).await
}

/// The state of one pass over the parts.
struct Run<M: Multipart> {
    stored: Vec<Option<M::Stored>>,
    digests: Vec<M::Digest>,
    whole: WholeHash,
    tasks: JoinSet<Result<(usize, M::Stored)>>,
    /// The first failure; later ones are dropped.
    failure: Option<Error>,
    /// Parts sent (not reused), for the test hook.
    sent: usize,
}

impl<M: Multipart> Run<M> {
    /// Reads and hashes part `index`, then reuses it or starts sending it (holding `slot`).
    fn part(&mut self, m: &M, job: &PartsJob<'_>, index: usize, slot: Slot) -> Result<()> {
        let src = &job.source;
        let offset = index as u64 * job.part_size;
        let len = job.part_size.min(src.meta.size - offset);
        let data = src.read(offset, len)?;
        let digest = m.digest(index, &data);
        self.whole.add(m.tree_hash(&digest), &data);
        if let Some(part) = m.reuse(index, len, &digest) {
            self.stored[index] = Some(part);
            self.digests.push(digest);
            return Ok(());
        }
        if self.sent >= job.stop_after {
            return Err(Error::backend(
                src.backend,
                BackendErrorKind::Permanent,
                format!("upload stopped after {} parts (test hook)", self.sent),
            ));
        }
        self.sent += 1;
        let request = m.send(index, offset, data, &digest);
        self.digests.push(digest);
        self.tasks.spawn(async move {
            let _slot = slot;
            request.await.map(|part| (index, part))
        });
        Ok(())
    }

    /// Files the outcomes of the tasks that are done.
    fn collect_finished(&mut self, backend: &str) {
        while let Some(done) = self.tasks.try_join_next() {
            self.record(backend, done);
        }
    }

    /// Files a finished part task's outcome; the first failure is the one kept.
    fn record(&mut self, backend: &str, done: Sent<M::Stored>) {
        let outcome = done.unwrap_or_else(|e| {
            Err(Error::backend(
                backend,
                BackendErrorKind::Permanent,
                format!("a part upload failed: {e}"),
            ))
        });
        match outcome {
            Ok((index, part)) => self.stored[index] = Some(part),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    /// Checks the whole (when every part was read), waits for the tasks (cancelling them when
    /// the source changed) and returns the parts in order, or the first failure.
    async fn finish(mut self, job: &PartsJob<'_>) -> Result<Vec<(M::Digest, M::Stored)>> {
        let src = &job.source;
        if self.failure.is_none() {
            let whole = std::mem::take(&mut self.whole).finish();
            self.failure = src
                .check_len()
                .and_then(|()| src.check_tree_hash(whole))
                .err();
        }
        let corrupt = self.failure.as_ref().and_then(Error::backend_kind);
        if corrupt == Some(BackendErrorKind::Corrupt) {
            self.tasks.abort_all(); // the upload is aborted: its parts in flight are of no use
        }
        while let Some(done) = self.tasks.join_next().await {
            self.record(src.backend, done);
        }
        if let Some(e) = self.failure {
            return Err(e);
        }
        Ok(self
            .digests
            .into_iter()
            .zip(self.stored)
            .map(|(d, s)| (d, s.expect("without a failure, every part is stored")))
            .collect())
    }
}

/// The whole object's tree hash: combined from the parts' own tree hashes when the backend
/// has them, else hashed from the bytes as they go by (parts are read in order).
#[derive(Default)]
struct WholeHash {
    parts: Vec<Hash32>,
    bytes: TreeHasher,
}

impl WholeHash {
    fn add(&mut self, part: Option<Hash32>, data: &[u8]) {
        match part {
            Some(tree) => self.parts.push(tree),
            None => self.bytes.update(data),
        }
    }

    fn finish(self) -> Hash32 {
        if self.parts.is_empty() {
            self.bytes.finish()
        } else {
            combine_tree_hashes(&self.parts)
        }
    }
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
