//! One executor's timers: a `BTreeMap` from (deadline, sequence number) to
//! the waker of the task waiting for it.
//!
//! The executor's run loop fires the due timers at its poll boundaries (its
//! `Shared::next_deadline` check), and, when it goes idle, asks this driver
//! to arm a wake-up for the next deadline: the park of the executor's own
//! `block_on` (a park with a deadline), or otherwise a `TIMER` ring from
//! the one shared timer thread (`helper`).
//!
//! The map sits behind a mutex because a timer future is `Send` and may be
//! dropped (cancelled) on another thread; on the executor's thread the lock
//! is uncontended. Insert, cancel and fire are O(log n).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use crate::shared::{Deadlines, Shared};

/// A timer's place in its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    /// Clock ticks.
    pub(crate) deadline: u64,
    pub(crate) seq: u64,
}

#[derive(Debug, Default)]
struct Table {
    timers: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

/// The timers of one executor.
#[derive(Debug, Default)]
pub(crate) struct Driver {
    table: Mutex<Table>,
}

impl Driver {
    fn table(&self) -> MutexGuard<'_, Table> {
        // No user code runs under the lock.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver of `shared`'s executor, made on first use (`None` only
    /// if another kind of `Deadlines` were installed; the crate installs
    /// none).
    pub(crate) fn of(shared: &Shared) -> Option<Arc<Driver>> {
        let deadlines: Arc<dyn Deadlines> =
            shared.deadlines(|| Arc::new(Driver::default())).clone();
        let any: Arc<dyn std::any::Any + Send + Sync> = deadlines;
        any.downcast::<Driver>().ok()
    }

    /// Adds a timer for `deadline` on the executor `shared` (this thread's,
    /// running): returns its key, and lowers the executor's next deadline
    /// if needed.
    pub(crate) fn insert(&self, deadline: u64, waker: Waker, shared: &Shared) -> TimerKey {
        let key = {
            let mut table = self.table();
            let key = TimerKey {
                deadline,
                seq: table.next_seq,
            };
            table.next_seq += 1;
            table.timers.insert(key, waker);
            key
        };
        if deadline < shared.next_deadline() {
            shared.set_next_deadline(deadline);
        }
        key
    }

    /// Replaces the waker of a timer still waiting; `false` if it has fired
    /// (or was never here).
    pub(crate) fn update(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.table().timers.get_mut(&key) {
            Some(old) => {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    /// Cancels a timer (a no-op if it has fired). The executor's next
    /// deadline may stay earlier than needed: it then wakes once for
    /// nothing and recomputes it.
    pub(crate) fn remove(&self, key: TimerKey) {
        let waker = self.table().timers.remove(&key);
        drop(waker);
    }
}

impl Deadlines for Driver {
    fn fire(&self, now: u64, shared: &Shared) {
        let due: Vec<Waker> = {
            let mut table = self.table();
            let later = table.timers.split_off(&TimerKey {
                deadline: now.saturating_add(1),
                seq: 0,
            });
            let due = std::mem::replace(&mut table.timers, later);
            shared.set_next_deadline(
                table
                    .timers
                    .first_key_value()
                    .map_or(u64::MAX, |(key, _)| key.deadline),
            );
            due.into_values().collect()
        };
        for waker in due {
            waker.wake();
        }
    }

    fn arm(&self, deadline: u64, shared: &Arc<Shared>) {
        if crate::run::wake_block_on_at(deadline) {
            return;
        }
        super::helper::ring_at(deadline, shared);
    }
}
