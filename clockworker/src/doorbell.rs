//! How another thread gets the attention of an executor that may be asleep
//! in its host.

use std::task::Waker;

use crate::sync::AtomicWaker;
use crate::sync::atomic::{AtomicU8, Ordering};

/// Attention bits that other threads set, and the waker of the host that
/// waits for one to be set.
///
/// The executor's run loop reads the bits at every poll boundary (one
/// relaxed load); when it has nothing left to run it registers its host's
/// waker here and returns `Pending` to the host. Another thread that hands
/// it work rings the bell for that work's bit.
///
/// # Protocol and invariants
///
/// 1. **Publish, then ring.** A ringer makes the work visible first (under
///    the injector's lock, or with a release store), then calls
///    [`notify`](Doorbell::notify), which sets the bit with an acquire-release
///    read-modify-write: an executor that sees the bit and then clears it
///    sees the work.
/// 2. **Only the setter wakes.** `notify` wakes the registered waker only if
///    its own `fetch_or` found the bit clear. Rings of a bit that is already
///    set cost one atomic operation and no wake-up; this is sound only
///    because of 3 and 4.
/// 3. **Clear, then act.** The executor [`clear`](Doorbell::clear)s a bit
///    *before* it takes the work the bit announces, so work published after
///    the take sets the bit again (and wakes again) instead of finding it
///    set and going unannounced.
/// 4. **Register, then re-check.** The executor goes to sleep only through
///    [`register`](Doorbell::register), which registers the host's waker and
///    *then* reads the bits; a bit it returns must be acted on (another turn
///    of the run loop), not slept on. So the executor never sleeps with a
///    set bit that it has not looked at, and the next `notify` of that bit
///    finds it clear and wakes.
///
/// 2 and 4 together: a ring that sets a bit either comes early enough for
/// `register`'s read to see it, or late enough for its wake to find the
/// registered waker. The two cannot both miss: registering and waking are
/// ordered by the waker slot's own synchronization (an atomic state word in
/// `atomic-waker`), and a wake that races a registration wakes the new
/// waker itself. The loom models in `loom_tests` check this, with the
/// injector and every interleaving of ringers against the executor.
///
/// While the executor runs it [`unregister`](Doorbell::unregister)s, so
/// that rings cost no host wake-up at all; it then sees the bits at its next
/// poll boundary.
#[derive(Debug)]
pub(crate) struct Doorbell {
    attention: AtomicU8,
    waker: AtomicWaker,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            attention: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        }
    }

    /// The attention bits, for a cheap check at each poll boundary. A set
    /// bit is acted on after [`clear`](Doorbell::clear), which synchronizes.
    #[inline]
    pub(crate) fn attention(&self) -> u8 {
        self.attention.load(Ordering::Relaxed)
    }

    /// Clears `bit`, before acting on it (invariant 3).
    #[inline]
    pub(crate) fn clear(&self, bit: u8) {
        self.attention.fetch_and(!bit, Ordering::AcqRel);
    }

    /// Sets `bit` and, if this call set it, wakes the registered waker
    /// (invariants 1 and 2). Returns whether it rang (set the bit).
    pub(crate) fn notify(&self, bit: u8) -> bool {
        let rang = self.attention.fetch_or(bit, Ordering::AcqRel) & bit == 0;
        if rang {
            self.waker.wake();
        }
        rang
    }

    /// Sets `bit` without waking anyone: a request for the executor's next
    /// run, which an idle executor need not wake up for (it does not count
    /// for invariant 4's re-check either).
    pub(crate) fn flag(&self, bit: u8) {
        self.attention.fetch_or(bit, Ordering::AcqRel);
    }

    /// Registers `waker` to be woken by the next `notify` that sets a bit,
    /// then returns the bits already set (invariant 4). The caller may
    /// sleep only on the bits that come back clear.
    #[must_use = "a bit set before the waker was registered is only reported here"]
    pub(crate) fn register(&self, waker: &Waker) -> u8 {
        self.waker.register(waker);
        self.attention.load(Ordering::Acquire)
    }

    /// Drops the registered waker: the executor is running and looks at the
    /// bits by itself.
    pub(crate) fn unregister(&self) {
        drop(self.waker.take());
    }
}
