//! A backend wrapper that retries transient errors with exponential backoff and jitter.
//! Retry policy lives here once, not in every backend.

use super::{Backend, ByteRange, ListOutcome, ObjectKind, PutMeta, Tier, WarmState};
use crate::error::Result;
use crate::log;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// Retries transient errors of `inner`.
pub struct Retrying<B> {
    inner: B,
    attempts: u32,
    base_delay: Duration,
}

impl<B: Backend> Retrying<B> {
    /// `attempts` tries in all, sleeping about `base_delay`, 2×, 4×, … (capped at 60 s) between.
    pub fn new(inner: B, attempts: u32, base_delay: Duration) -> Self {
        Retrying {
            inner,
            attempts: attempts.max(1),
            base_delay,
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1 << attempt.min(16));
        let capped = exp.min(Duration::from_secs(60));
        // Full jitter between half and the whole delay.
        let nanos = capped.as_nanos() as u64;
        let jitter = pseudo_random() % (nanos / 2 + 1);
        Duration::from_nanos(nanos / 2 + jitter)
    }

    fn run<T>(&self, what: &str, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match op() {
                Err(e) if e.is_transient() && attempt + 1 < self.attempts => {
                    let d = self.delay(attempt);
                    log::debug(&format!(
                        "{what}: {e}; retrying in {:.1} s ({}/{})",
                        d.as_secs_f64(),
                        attempt + 1,
                        self.attempts - 1
                    ));
                    std::thread::sleep(d);
                    attempt += 1;
                }
                other => return other,
            }
        }
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

    fn prepare(&self) -> Result<()> {
        self.run("prepare", || self.inner.prepare())
    }

    fn put(&self, meta: &PutMeta, source: &Path) -> Result<String> {
        self.run("upload", || self.inner.put(meta, source))
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

    fn retrieval_range(&self, object_size: u64, want: ByteRange) -> ByteRange {
        self.inner.retrieval_range(object_size, want)
    }

    fn list(&self, ticket: Option<&str>) -> Result<ListOutcome> {
        self.run("listing", || self.inner.list(ticket))
    }

    fn delete(&self, id: &str) -> Result<()> {
        self.run("delete", || self.inner.delete(id))
    }

    fn cleanup(&self) -> Result<()> {
        self.run("cleanup", || self.inner.cleanup())
    }
}
