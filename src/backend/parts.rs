//! What the S3 and Glacier backends share besides the multipart loop ([`super::multipart`]):
//! the backend-wide bound on requests in flight, and the test hook that stops a multipart
//! upload part-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The backend-wide bound on requests in flight (and so on the memory their bodies hold),
/// whatever the number of callers. Counts the most requests that were in flight at once.
pub(super) struct Limiter {
    permits: Arc<Semaphore>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// One request's right to be in flight; dropping it frees the place.
pub(super) struct Slot {
    limiter: Arc<Limiter>,
    _permit: OwnedSemaphorePermit,
}

impl Limiter {
    /// A bound of `permits` requests in flight.
    pub(super) fn new(permits: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            permits: Arc::new(Semaphore::new(permits)),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// Waits for a place; the slot may be moved into a task and holds the place until dropped.
    pub(super) async fn acquire(self: &Arc<Self>) -> Slot {
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

    /// The most requests in flight at once so far.
    pub(super) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Runs before the permit field is dropped, so the count never exceeds the permits.
        self.limiter.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Test hook: a multipart upload stops (failing, its parts left in place, as after a crash)
/// once it has sent this many parts. Off (no limit) unless set.
pub(super) struct StopAfterParts(AtomicUsize);

impl StopAfterParts {
    pub(super) fn off() -> StopAfterParts {
        StopAfterParts(AtomicUsize::new(usize::MAX))
    }

    /// `None` switches the hook off.
    pub(super) fn set(&self, parts: Option<usize>) {
        self.0.store(parts.unwrap_or(usize::MAX), Ordering::SeqCst);
    }

    /// The number of parts an upload starting now may send (`usize::MAX`: no limit).
    pub(super) fn limit(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
