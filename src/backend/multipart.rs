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
use super::retry::RetryPolicy;
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

    /// Aborts the upload.
    fn abort(&self) -> impl Future<Output = Result<()>>;
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
    /// The retry policy of the abort (the backends': [`RetryPolicy::standard`]).
    pub(super) retry: RetryPolicy,
}

/// Sends the parts of `job` through `upload` and completes it. A source that changed aborts
/// the upload; after any other failure the parts sent stay for a retry to resume.
pub(super) async fn upload<M: Multipart>(upload: M, job: &PartsJob<'_>) -> Result<String> {
    match send_parts(&upload, job).await {
        Ok(parts) => upload.complete(job.source.meta, parts).await,
        Err(e) => {
            if e.backend_kind() == Some(BackendErrorKind::Corrupt) {
                abort(&upload, &job.retry).await;
            }
            Err(e)
        }
    }
}

/// Aborts `upload`, retried by the one [`RetryPolicy`] (the `Retrying` wrapper cannot: this
/// abort happens inside a `put` that then fails `Corrupt`, which it does not retry). A failure
/// left is only logged: the cleanup after the next successful sync aborts what is left.
async fn abort<M: Multipart>(upload: &M, retry: &RetryPolicy) {
    if let Err(e) = retry.run_async("abort", || upload.abort()).await {
        crate::log::warn(&format!(
            "could not abort a multipart upload (cleanup will): {e}"
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ObjectKind;
    use crate::backend::testsuite::{content, meta_for};
    use crate::hash::{MIB, sha256};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// An upload kept in memory: parts stored by an earlier attempt (by index, their SHA-256),
    /// parts that fail when sent, and a log of what was sent, completed and aborted.
    #[derive(Default)]
    struct Fake {
        stored: HashMap<usize, Hash32>,
        failing: Vec<usize>,
        log: Arc<Mutex<Vec<String>>>,
        /// Aborts that fail transiently before one succeeds.
        failing_aborts: Mutex<u32>,
    }

    impl Multipart for &Fake {
        type Digest = Hash32;
        type Stored = usize;

        fn digest(&self, _index: usize, data: &[u8]) -> Hash32 {
            sha256(data)
        }
        fn tree_hash(&self, _digest: &Hash32) -> Option<Hash32> {
            None
        }
        fn reuse(&self, index: usize, _len: u64, digest: &Hash32) -> Option<usize> {
            (self.stored.get(&index) == Some(digest)).then_some(index)
        }
        fn send(
            &self,
            index: usize,
            offset: u64,
            _data: Vec<u8>,
            _digest: &Hash32,
        ) -> impl Future<Output = Result<usize>> + Send + 'static {
            let log = Arc::clone(&self.log);
            let fails = self.failing.contains(&index);
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("send {index} at {offset}"));
                if fails {
                    return Err(Error::backend("fake", BackendErrorKind::Transient, "lost"));
                }
                Ok(index)
            }
        }
        async fn complete(self, _meta: &PutMeta, parts: Vec<(Hash32, usize)>) -> Result<String> {
            let order: Vec<usize> = parts.iter().map(|p| p.1).collect();
            self.log.lock().unwrap().push(format!("complete {order:?}"));
            Ok("id".into())
        }
        async fn abort(&self) -> Result<()> {
            self.log.lock().unwrap().push("abort".into());
            let mut failing = self.failing_aborts.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(Error::backend(
                    "fake",
                    BackendErrorKind::Transient,
                    "HTTP 500",
                ));
            }
            Ok(())
        }
    }

    /// Uploads `on_disk` (announced as `announced`) in 1 MiB parts through `fake`.
    fn run(fake: &Fake, announced: &[u8], on_disk: &[u8], stop_after: usize) -> Result<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("src");
        std::fs::write(&path, on_disk).unwrap();
        let file = File::open(&path).unwrap();
        let meta = meta_for(ObjectKind::File, announced);
        let job = PartsJob {
            source: Source {
                meta: &meta,
                path: &path,
                file: &file,
                backend: "fake",
            },
            part_size: MIB,
            limiter: &Limiter::new(2),
            stop_after,
            retry: RetryPolicy {
                attempts: RetryPolicy::ATTEMPTS,
                base_delay: std::time::Duration::from_millis(1),
            },
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(upload(fake, &job))
    }

    fn sorted_log(fake: &Fake) -> Vec<String> {
        let mut log = fake.log.lock().unwrap().clone();
        log.sort();
        log
    }

    const M: usize = MIB as usize;

    #[test]
    fn stored_parts_are_reused_and_the_rest_sent() {
        let data = content(3 * M + 10, 1);
        let mut fake = Fake::default();
        fake.stored.insert(0, sha256(&data[..M]));
        fake.stored.insert(2, sha256(b"other bytes")); // does not match: sent again
        run(&fake, &data, &data, usize::MAX).unwrap();
        let log = sorted_log(&fake);
        let want = [
            "complete [0, 1, 2, 3]".to_string(),
            format!("send 1 at {M}"),
            format!("send 2 at {}", 2 * M),
            format!("send 3 at {}", 3 * M),
        ];
        assert_eq!(log, want);
    }

    #[test]
    fn a_changed_source_is_corrupt_and_aborts() {
        let data = content(2 * M + 10, 2);
        for (what, on_disk) in [
            ("changed", [&data[..M], b"x", &data[M + 1..]].concat()),
            ("shorter", data[..2 * M].to_vec()),
            ("longer", [&data[..], b"x"].concat()),
        ] {
            let fake = Fake::default();
            let err = run(&fake, &data, &on_disk, usize::MAX).unwrap_err();
            assert_eq!(
                err.backend_kind(),
                Some(BackendErrorKind::Corrupt),
                "{what}"
            );
            assert!(
                err.to_string().contains("changed while it was stored"),
                "{err}"
            );
            let log = fake.log.lock().unwrap();
            assert_eq!(log.last().map(String::as_str), Some("abort"), "{what}");
            assert!(!log.iter().any(|l| l.starts_with("complete")), "{what}");
        }
    }

    /// By the one retry policy: one failure costs a second try; the last of its tries
    /// succeeds; after that many failures the abort is left to the cleanup.
    #[test]
    fn an_abort_that_fails_transiently_is_tried_again() {
        let data = content(2 * M + 10, 3);
        let changed = [&data[..M], b"x", &data[M + 1..]].concat();
        let tries = RetryPolicy::ATTEMPTS;
        for (failing, aborts) in [(1, 2), (tries - 1, tries), (tries + 3, tries)] {
            let fake = Fake {
                failing_aborts: Mutex::new(failing),
                ..Fake::default()
            };
            let err = run(&fake, &data, &changed, usize::MAX).unwrap_err();
            assert_eq!(err.backend_kind(), Some(BackendErrorKind::Corrupt));
            let log = fake.log.lock().unwrap();
            let tried = log.iter().filter(|l| *l == "abort").count();
            assert_eq!(tried, aborts as usize, "{failing} failing aborts: {log:?}");
        }
    }

    #[test]
    fn a_failed_part_fails_the_upload_and_keeps_it() {
        let data = content(4 * M, 3);
        let fake = Fake {
            failing: vec![1],
            ..Fake::default()
        };
        let err = run(&fake, &data, &data, usize::MAX).unwrap_err();
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::Transient),
            "{err}"
        );
        let log = sorted_log(&fake);
        assert!(log.iter().all(|l| l.starts_with("send")), "{log:?}");
        assert!(log.contains(&format!("send 1 at {M}")), "{log:?}");
    }

    #[test]
    fn the_test_hook_stops_after_sending_as_many_parts() {
        let data = content(4 * M, 4);
        let mut fake = Fake::default();
        fake.stored.insert(0, sha256(&data[..M])); // reused parts do not count
        let err = run(&fake, &data, &data, 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("stopped after 2 parts (test hook)"),
            "{err}"
        );
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Permanent));
        let log = sorted_log(&fake);
        assert_eq!(
            log,
            [format!("send 1 at {M}"), format!("send 2 at {}", 2 * M)]
        );
    }
}
