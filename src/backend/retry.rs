//! The one retry policy ([`RetryPolicy`]: how many tries, and the backoff between them) and
//! the wrapper that applies it to every backend call ([`Retrying`]). It is applied in two
//! places, never stacked: `Retrying` around each call of a backend (`commands::open_backend`
//! wraps every backend in it; the AWS SDK's own retries are off, see `aws::load`), and the
//! multipart driver's abort of an upload whose source changed (`multipart::upload`), which
//! happens inside a `put` that fails `Corrupt`, so the wrapper never sees it to retry it.

use super::{Backend, ByteRange, ListOutcome, ObjectInfo, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::{Error, Result};
use crate::log;
use std::future::Future;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// How often a transient error is tried again, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// The first wait; each next one doubles (capped at 60 s), jittered down to half.
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// Tries per call before a transient error is reported.
    pub const ATTEMPTS: u32 = 6;

    /// Tries per call once one got no answer at all in time: an endpoint that takes
    /// connections and never answers would otherwise hold a sync for six read timeouts.
    pub const SILENT_ATTEMPTS: u32 = 2;

    /// The policy of every backend: [`Self::ATTEMPTS`] tries, waits from 500 ms
    /// (`GLACIERSYNC_RETRY_BASE_MS` overrides it, for tests): about 0.5, 1, 2, 4 and 8 s.
    pub fn standard() -> RetryPolicy {
        let ms = std::env::var("GLACIERSYNC_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        RetryPolicy {
            attempts: Self::ATTEMPTS,
            base_delay: Duration::from_millis(ms),
        }
    }

    /// The wait after failed try `attempt` (0-based): `base_delay` × 2^attempt, capped at
    /// 60 s, with full jitter between half and the whole.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1 << attempt.min(16));
        let capped = exp.min(Duration::from_secs(60));
        let nanos = capped.as_nanos() as u64;
        let jitter = pseudo_random() % (nanos / 2 + 1);
        Duration::from_nanos(nanos / 2 + jitter)
    }

    /// The wait before trying again after `e` failed try `attempt`, or `None` when `e` is
    /// final (not transient, or the tries are used up).
    fn wait_after(&self, what: &str, e: &Error, attempt: u32) -> Option<Duration> {
        let silent = e.to_string().contains(super::aws::NO_ANSWER);
        let attempts = match silent {
            true => self.attempts.min(Self::SILENT_ATTEMPTS),
            false => self.attempts,
        };
        if !e.is_transient() || attempt + 1 >= attempts.max(1) {
            return None;
        }
        let d = self.delay(attempt);
        log::debug(&format!(
            "{what}: {e}; retrying in {:.1} s ({}/{})",
            d.as_secs_f64(),
            attempt + 1,
            self.attempts - 1
        ));
        Some(d)
    }

    /// Runs `op` until it succeeds, fails for good, or the tries are used up.
    pub fn run<T>(&self, what: &str, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match op() {
                Err(e) => match self.wait_after(what, &e, attempt) {
                    Some(d) => std::thread::sleep(d),
                    None => return Err(e),
                },
                ok => return ok,
            }
            attempt += 1;
        }
    }

    /// [`run`](Self::run) for a request made on the async runtime (which must have time
    /// enabled): waits without blocking a worker thread.
    pub async fn run_async<T, F>(&self, what: &str, mut op: impl FnMut() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) => match self.wait_after(what, &e, attempt) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                },
                ok => return ok,
            }
            attempt += 1;
        }
    }
}

/// Retries transient errors of `inner` by the [`RetryPolicy`].
pub struct Retrying<B> {
    inner: B,
    policy: RetryPolicy,
}

impl<B: Backend> Retrying<B> {
    /// `attempts` tries in all, sleeping about `base_delay`, 2×, 4×, … (capped at 60 s) between.
    pub fn new(inner: B, attempts: u32, base_delay: Duration) -> Self {
        Self::with_policy(
            inner,
            RetryPolicy {
                attempts: attempts.max(1),
                base_delay,
            },
        )
    }

    /// Retries by `policy` (the backends' is [`RetryPolicy::standard`]).
    pub fn with_policy(inner: B, policy: RetryPolicy) -> Self {
        Retrying { inner, policy }
    }

    fn run<T>(&self, what: &str, op: impl FnMut() -> Result<T>) -> Result<T> {
        self.policy.run(what, op)
    }
}

fn pseudo_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

/// Counts what passes through, so a retried read can continue where it broke off.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<B: Backend> Backend for Retrying<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn needs_warm_up(&self, kind: ObjectKind) -> bool {
        self.inner.needs_warm_up(kind)
    }

    fn stages_by_rename(&self) -> bool {
        self.inner.stages_by_rename()
    }

    fn prepare(&self) -> Result<()> {
        self.run("prepare", || self.inner.prepare())
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.run("upload", || self.inner.put(meta, source))
    }

    fn put_staged(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.run("upload", || self.inner.put_staged(meta, source))
    }

    fn get(
        &self,
        id: &str,
        range: Option<ByteRange>,
        ticket: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut counting = Counting {
            inner: out,
            written: 0,
        };
        self.run("download", || {
            let done = counting.written;
            let r = match (done, range) {
                (0, _) => range,
                (_, Some(r)) => Some(ByteRange {
                    start: r.start + done,
                    end: r.end,
                }),
                (_, None) => {
                    return Err(crate::error::Error::backend(
                        self.inner.name(),
                        crate::error::BackendErrorKind::Permanent,
                        format!("download of {id} broke off after {done} bytes"),
                    ));
                }
            };
            self.inner.get(id, r, ticket, &mut counting)?;
            Ok(counting.written)
        })
    }

    fn warm_up(
        &self,
        id: &str,
        range: Option<ByteRange>,
        tier: Tier,
        ticket: Option<&str>,
    ) -> Result<WarmState> {
        self.run("retrieval request", || {
            self.inner.warm_up(id, range, tier, ticket)
        })
    }

    fn retrieval_range(&self, id: &str, object_size: u64, want: ByteRange) -> ByteRange {
        self.inner.retrieval_range(id, object_size, want)
    }

    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        self.run("listing", || self.inner.list(ticket))
    }

    fn list_ready(&self, ticket: Option<&str>) -> Result<Option<Vec<ObjectInfo>>> {
        self.run("listing", || self.inner.list_ready(ticket))
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.run("delete", || self.inner.delete(id))
    }

    fn cleanup(&self) -> Result<()> {
        self.run("cleanup", || self.inner.cleanup())
    }

    fn owners(&self) -> Result<Option<Vec<String>>> {
        self.run("listing owners", || self.inner.owners())
    }

    fn mark_owner(&self, id: &str) -> Result<()> {
        self.run("marking the owner", || self.inner.mark_owner(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    #[test]
    fn a_silent_endpoint_is_tried_twice_other_transient_errors_six_times() {
        let p = RetryPolicy {
            attempts: RetryPolicy::ATTEMPTS,
            base_delay: Duration::from_millis(1),
        };
        let silent = Error::backend(
            "s3",
            BackendErrorKind::Transient,
            "uploading x: no answer from http://127.0.0.1:9 in time (read timeout after 60s)",
        );
        let busy = Error::backend("s3", BackendErrorKind::Transient, "uploading x: SlowDown");
        assert!(p.wait_after("t", &silent, 0).is_some());
        assert!(p.wait_after("t", &silent, 1).is_none());
        assert!(p.wait_after("t", &busy, 4).is_some());
        assert!(p.wait_after("t", &busy, 5).is_none());
    }
    use crate::backend::testsuite::{self, content, meta_for};
    use crate::error::{BackendErrorKind, Error};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A backend whose calls fail on purpose: the next `fail_first` calls, and every `every`-th
    /// call, with an error of `kind`. A failing `get` first writes up to `get_prefix` bytes of
    /// the real answer, as a download that breaks off does.
    struct Flaky<B> {
        inner: B,
        kind: BackendErrorKind,
        fail_first: AtomicU32,
        every: u32,
        get_prefix: usize,
        calls: AtomicU32,
        faults: AtomicU32,
        /// The ranges `get` was asked for, in order.
        ranges: Mutex<Vec<Option<ByteRange>>>,
    }

    impl<B: Backend> Flaky<B> {
        fn new(inner: B, kind: BackendErrorKind) -> Flaky<B> {
            Flaky {
                inner,
                kind,
                fail_first: AtomicU32::new(0),
                every: 0,
                get_prefix: 0,
                calls: AtomicU32::new(0),
                faults: AtomicU32::new(0),
                ranges: Mutex::new(Vec::new()),
            }
        }

        fn fail_next(&self, calls: u32) {
            self.fail_first.store(calls, Ordering::SeqCst);
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }

        /// The injected error for this call, if it is to fail.
        fn fault(&self) -> Result<()> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let first = self
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                .is_ok();
            if !first && (self.every == 0 || !n.is_multiple_of(self.every)) {
                return Ok(());
            }
            self.faults.fetch_add(1, Ordering::SeqCst);
            Err(Error::backend(
                "flaky",
                self.kind,
                format!("fault at call {n}"),
            ))
        }
    }

    impl<B: Backend> Backend for Flaky<B> {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn needs_warm_up(&self, kind: ObjectKind) -> bool {
            self.inner.needs_warm_up(kind)
        }
        fn prepare(&self) -> Result<()> {
            self.fault()?;
            self.inner.prepare()
        }
        fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
            self.fault()?;
            self.inner.put(meta, source)
        }
        fn get(
            &self,
            id: &str,
            range: Option<ByteRange>,
            ticket: Option<&str>,
            out: &mut dyn Write,
        ) -> Result<u64> {
            self.ranges.lock().unwrap().push(range);
            let Err(fault) = self.fault() else {
                return self.inner.get(id, range, ticket, out);
            };
            let mut all = Vec::new();
            self.inner.get(id, range, ticket, &mut all)?;
            out.write_all(&all[..self.get_prefix.min(all.len())])
                .unwrap();
            Err(fault)
        }
        fn warm_up(
            &self,
            id: &str,
            range: Option<ByteRange>,
            tier: Tier,
            ticket: Option<&str>,
        ) -> Result<WarmState> {
            self.fault()?;
            self.inner.warm_up(id, range, tier, ticket)
        }
        fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
            self.fault()?;
            self.inner.list(ticket)
        }
        fn delete(&self, id: &str) -> Result<()> {
            self.fault()?;
            self.inner.delete(id)
        }
        fn cleanup(&self) -> Result<()> {
            self.fault()?;
            self.inner.cleanup()
        }
        fn owners(&self) -> Result<Option<Vec<String>>> {
            self.fault()?;
            self.inner.owners()
        }
        fn mark_owner(&self, id: &str) -> Result<()> {
            self.fault()?;
            self.inner.mark_owner(id)
        }
    }

    fn retrying<B: Backend>(inner: B, attempts: u32) -> Retrying<B> {
        Retrying::new(inner, attempts, Duration::ZERO)
    }

    fn flaky_local(dir: &Path, kind: BackendErrorKind) -> Flaky<LocalBackend> {
        Flaky::new(LocalBackend::new(dir.join("store")), kind)
    }

    #[test]
    fn the_wrapper_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let b = retrying(LocalBackend::new(dir.path().join("store")), 3);
        testsuite::run_all(&b, &Default::default());
    }

    #[test]
    fn over_a_flaky_backend_the_wrapper_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let mut flaky = flaky_local(dir.path(), BackendErrorKind::Transient);
        flaky.every = 2; // every other call fails, none twice in a row
        let b = retrying(flaky, 2);
        testsuite::run_all(&b, &Default::default());
        assert!(b.inner.faults.load(Ordering::SeqCst) > 10);
    }

    #[test]
    fn transient_errors_are_retried_until_the_attempts_run_out() {
        let dir = tempfile::tempdir().unwrap();
        let b = retrying(flaky_local(dir.path(), BackendErrorKind::Transient), 3);
        b.inner.fail_next(2);
        b.prepare().unwrap();
        assert_eq!(b.inner.calls(), 3);
        b.inner.fail_next(3);
        let err = b.prepare().unwrap_err();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Transient));
        assert_eq!(b.inner.calls(), 6, "three attempts, then the error");
        b.prepare().unwrap();
    }

    #[test]
    fn other_errors_are_not_retried() {
        for kind in [
            BackendErrorKind::Permanent,
            BackendErrorKind::Auth,
            BackendErrorKind::NotFound,
            BackendErrorKind::Corrupt,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let b = retrying(flaky_local(dir.path(), kind), 5);
            b.inner.fail_next(1);
            let err = b.prepare().unwrap_err();
            assert_eq!(err.backend_kind(), Some(kind));
            assert_eq!(b.inner.calls(), 1, "{kind:?} tried once");
        }
    }

    /// Stores `data` through `b`; returns its id.
    fn store(b: &dyn Backend, dir: &Path, data: &[u8]) -> String {
        let src = dir.join("src");
        std::fs::write(&src, data).unwrap();
        b.put(&meta_for(ObjectKind::Bundle, data), &src).unwrap()
    }

    #[test]
    fn a_broken_ranged_get_continues_at_the_byte_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut flaky = flaky_local(dir.path(), BackendErrorKind::Transient);
        flaky.get_prefix = 100;
        let b = retrying(flaky, 3);
        let data = content(10_000, 3);
        let id = store(&b, dir.path(), &data);
        b.inner.fail_next(2);
        let mut out = Vec::new();
        let range = ByteRange {
            start: 1000,
            end: 9000,
        };
        let n = b.get(&id, Some(range), None, &mut out).unwrap();
        assert_eq!(n, 8000);
        assert!(out == data[1000..9000], "each byte once, in order");
        let asked: Vec<_> = b
            .inner
            .ranges
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.map(|r| (r.start, r.end)))
            .collect();
        assert_eq!(
            asked,
            [Some((1000, 9000)), Some((1100, 9000)), Some((1200, 9000))]
        );
    }

    #[test]
    fn a_broken_whole_get_is_not_started_again() {
        // Without a range the end is unknown: rather than write bytes twice, it fails.
        let dir = tempfile::tempdir().unwrap();
        let mut flaky = flaky_local(dir.path(), BackendErrorKind::Transient);
        flaky.get_prefix = 100;
        let b = retrying(flaky, 3);
        let data = content(5000, 4);
        let id = store(&b, dir.path(), &data);
        b.inner.fail_next(1);
        let mut out = Vec::new();
        let err = b.get(&id, None, None, &mut out).unwrap_err();
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::Permanent),
            "{err}"
        );
        assert!(out == data[..100]);
        assert_eq!(b.inner.calls(), 2, "the put, then one get");
        // A get that fails before writing anything is simply tried again.
        b.inner.fail_next(1);
        let mut flaky_free = Vec::new();
        let mut b = b;
        b.inner.get_prefix = 0;
        b.get(&id, None, None, &mut flaky_free).unwrap();
        assert!(flaky_free == data);
    }
}
