//! Putting the thread of [`Executor::block_on`](crate::Executor::block_on)
//! to sleep while its future is pending, and waking it from anywhere.

use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::hint::spin_loop;
use crate::sync::thread::{self, Thread};

/// How long [`Parker::park`] spins, checking for a wake-up, before it parks
/// the thread: a reply that arrives within microseconds is much cheaper to
/// catch awake than through a futex sleep and wake-up.
#[cfg(not(all(test, clockworker_loom)))]
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(10);
/// Checks between two looks at the clock while spinning.
#[cfg(not(all(test, clockworker_loom)))]
const SPINS_PER_CLOCK_READ: u32 = 32;

// Under loom: one check, then park. Each spin is an interleaving point, and
// the spin phase only decides *when* the thread parks, not whether a wake is
// seen.
#[cfg(all(test, clockworker_loom))]
const SPIN_BEFORE_PARK: Duration = Duration::ZERO;
#[cfg(all(test, clockworker_loom))]
const SPINS_PER_CLOCK_READ: u32 = 1;

/// Parks the thread that created it until one of its wakers is woken.
///
/// # Invariants
///
/// - `notified` is true exactly when a wake has happened that the parked
///   thread has not consumed yet. Wakers set it with a release swap; the
///   thread consumes it with an acquire swap back to false, so whatever a
///   waker wrote before waking is visible to the thread once it returns.
/// - A waker that turns `notified` from false to true unparks the thread
///   (once: later wakers find it true and know the thread has yet to see
///   it). Unparking makes the thread's park token available, so an unpark
///   that comes before the thread parks makes that park return at once.
/// - The thread parks only after its swap found `notified` false, and swaps
///   again after every return from `thread::park`: a wake is never slept
///   through, and a spurious return (an unpark from elsewhere, or the
///   token of a wake it already consumed) parks again instead of returning
///   without a wake.
#[derive(Debug)]
pub(crate) struct Parker {
    unparker: Arc<Unparker>,
}

/// The shared half of a [`Parker`], behind its wakers.
#[derive(Debug)]
struct Unparker {
    thread: Thread,
    notified: AtomicBool,
}

impl Parker {
    /// A parker for the current thread.
    pub(crate) fn new() -> Parker {
        Parker {
            unparker: Arc::new(Unparker {
                thread: thread::current(),
                notified: AtomicBool::new(false),
            }),
        }
    }

    /// A waker that wakes this parker's thread, from any thread.
    pub(crate) fn waker(&self) -> Waker {
        Waker::from(self.unparker.clone())
    }

    /// [`park`](Self::park), or until `deadline`, whichever comes first.
    pub(crate) fn park_until(&self, deadline: Instant) {
        let notified = &self.unparker.notified;
        loop {
            if notified.swap(false, Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            thread::park_timeout(deadline - now);
        }
    }

    /// Returns once a waker has been woken since the last return (at once if
    /// one already was): spins briefly, then parks the thread.
    pub(crate) fn park(&self) {
        let notified = &self.unparker.notified;
        let spin_until = Instant::now() + SPIN_BEFORE_PARK;
        loop {
            for _ in 0..SPINS_PER_CLOCK_READ {
                if notified.swap(false, Ordering::Acquire) {
                    return;
                }
                spin_loop();
            }
            if Instant::now() >= spin_until {
                break;
            }
        }
        while !notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}
