//! The one timer thread of the process, for executors whose host gives
//! them no way to sleep until a deadline (any host but the executor's own
//! `block_on`), and for timers polled outside any executor.
//!
//! It sleeps on a condition variable until the earliest deadline it holds,
//! then rings each due executor's `TIMER` bit (which wakes its host) or
//! wakes each due waker. It starts on first use and never polls: with
//! nothing to wait for, it sleeps until asked.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::Waker;
use std::time::Instant;

use crate::clock::Clock;
use crate::shared::Shared;

/// What a deadline wakes.
enum Target {
    /// An idle executor: its doorbell's `TIMER` bit.
    Executor(Weak<Shared>),
    /// A timer polled outside any executor.
    Waker(Waker),
}

#[derive(Default)]
struct Entries {
    /// (deadline in clock ticks, sequence number) → target.
    due: BTreeMap<(u64, u64), Target>,
    next_seq: u64,
    started: bool,
}

struct Helper {
    entries: Mutex<Entries>,
    changed: Condvar,
}

fn helper() -> &'static Helper {
    static HELPER: OnceLock<Helper> = OnceLock::new();
    HELPER.get_or_init(|| Helper {
        entries: Mutex::new(Entries::default()),
        changed: Condvar::new(),
    })
}

impl Helper {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an entry; starts the thread the first time, and wakes it if the
    /// new deadline is its earliest.
    fn add(&'static self, deadline: u64, target: Target) -> (u64, u64) {
        let mut entries = self.entries();
        let key = (deadline, entries.next_seq);
        entries.next_seq += 1;
        let earliest = entries
            .due
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        entries.due.insert(key, target);
        if !entries.started {
            entries.started = true;
            let spawned = std::thread::Builder::new()
                .name("clockworker-timer".to_string())
                .spawn(move || self.run());
            if spawned.is_err() {
                // No thread: deadlines are then only met by other wake-ups.
                entries.started = false;
            }
        } else if earliest {
            self.changed.notify_one();
        }
        key
    }

    fn run(&self) {
        let clock = Clock::global();
        let mut entries = self.entries();
        loop {
            let now = clock.now();
            let later = entries.due.split_off(&(now.saturating_add(1), 0));
            let due = std::mem::replace(&mut entries.due, later);
            if !due.is_empty() {
                drop(entries);
                for target in due.into_values() {
                    match target {
                        Target::Executor(shared) => {
                            if let Some(shared) = shared.upgrade() {
                                shared.rings_at.store(u64::MAX, Ordering::Relaxed);
                                shared.ring_timer();
                            }
                        }
                        Target::Waker(waker) => waker.wake(),
                    }
                }
                entries = self.entries();
                continue;
            }
            entries = match entries.due.first_key_value() {
                None => self
                    .changed
                    .wait(entries)
                    .unwrap_or_else(PoisonError::into_inner),
                Some((&(deadline, _), _)) => {
                    let until = clock.instant_of(deadline);
                    let timeout = until.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(entries, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// Rings `shared`'s `TIMER` bit at `deadline` (clock ticks), unless it is
/// already due to ring by then.
pub(crate) fn ring_at(deadline: u64, shared: &Arc<Shared>) {
    if shared.rings_at.load(Ordering::Relaxed) <= deadline {
        return;
    }
    shared.rings_at.store(deadline, Ordering::Relaxed);
    helper().add(deadline, Target::Executor(Arc::downgrade(shared)));
}

/// Wakes `waker` at `deadline`; the key cancels it.
pub(crate) fn wake_at(deadline: u64, waker: Waker) -> (u64, u64) {
    helper().add(deadline, Target::Waker(waker))
}

/// Cancels a [`wake_at`].
pub(crate) fn cancel(key: (u64, u64)) {
    let target = helper().entries().due.remove(&key);
    drop(target);
}
