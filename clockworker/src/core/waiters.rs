//! Futures that wait for a condition of the executor (every task finished,
//! the executor closed): their wakers, each with a bound, under a key the
//! future holds and gives back when it completes or is dropped, so that
//! futures created and dropped in a loop (a `select` on `closed()` in every
//! connection's task) leave nothing behind.

use std::cell::{Cell, RefCell};
use std::task::Waker;

use slab::Slab;

/// The wakers of waiting futures, by key. A waiter stays until its future
/// [`remove`](Waiters::remove)s it; waking does not remove it (a woken
/// future that finds its condition met removes itself, one that does not
/// waits on).
#[derive(Default)]
pub(crate) struct Waiters {
    slab: RefCell<Slab<(usize, Waker)>>,
    /// At least one more than the largest bound (zero: nobody waits), so
    /// that a caller checks one number before it looks at the list. It only
    /// grows while waiters come and go, and drops to zero when the last one
    /// leaves: a stale high value costs a look at the list, never a missed
    /// wake.
    wake_below: Cell<usize>,
}

impl Waiters {
    /// Registers (or updates) the waiter under `key` with `bound` and
    /// `waker`; sets `key` the first time.
    pub(crate) fn register(&self, key: &mut Option<usize>, bound: usize, waker: &Waker) {
        let mut slab = self.slab.borrow_mut();
        match key.and_then(|k| slab.get_mut(k)) {
            Some(entry) => {
                entry.0 = bound;
                if !entry.1.will_wake(waker) {
                    entry.1.clone_from(waker);
                }
            }
            None => *key = Some(slab.insert((bound, waker.clone()))),
        }
        self.wake_below
            .set(self.wake_below.get().max(bound.saturating_add(1)));
    }

    /// Forgets the waiter under `key` (its future completed or was
    /// dropped).
    pub(crate) fn remove(&self, key: &mut Option<usize>) {
        let Some(k) = key.take() else { return };
        let mut slab = self.slab.borrow_mut();
        slab.try_remove(k);
        if slab.is_empty() {
            self.wake_below.set(0);
            if slab.capacity() > 64 {
                *slab = Slab::new();
            }
        }
    }

    /// Whether some waiter's bound is `value` or more (one comparison).
    #[inline]
    pub(crate) fn any_at_least(&self, value: usize) -> bool {
        value < self.wake_below.get()
    }

    /// Wakes every waiter whose bound is `value` or more.
    pub(crate) fn wake_at_least(&self, value: usize) {
        let due: Vec<Waker> = self
            .slab
            .borrow()
            .iter()
            .filter(|(_, (bound, _))| value <= *bound)
            .map(|(_, (_, waker))| waker.clone())
            .collect();
        for waker in due {
            waker.wake();
        }
    }

    /// Waiters registered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slab.borrow().len()
    }
}
