//! Graceful close: the core's side of `Handle::close`, `drain` and
//! `shutdown`, and of a pool worker's drain (the same mechanism).
//!
//! - **Closing** stops spawns that come from outside the executor's own
//!   tasks: from other threads (through a `Spawner`, refused under the
//!   injector's lock, so none slips in after `close` returns), from the
//!   `run_until` future, from another executor's tasks. Children that the
//!   executor's tasks spawn while they finish are still taken: a task that
//!   spawns a child and awaits it must be able to finish. Tasks already
//!   spawned (queued, parked, or waiting in the injector) all run.
//! - **Draining** waits until no task is left (or, awaited from one of the
//!   executor's own tasks, until that task is the last one): the registry
//!   wakes the waiter when the live count reaches its bound.
//! - **Cancelling what is left** is the executor's drop (`Core::shutdown`):
//!   every queued and parked task's future is dropped and counted as
//!   cancelled.

use std::task::{Context, Poll};

use super::Core;
use crate::shared::REMOTE;

impl Core {
    /// Closes the executor (see the module docs). Returns whether it was
    /// open; closing twice, or after the executor was dropped, does nothing.
    pub(crate) fn close(&self) -> bool {
        if self.closing.replace(true) || self.closed.get() {
            return false;
        }
        self.shared.begin_close();
        self.wake_close_waiters();
        true
    }

    /// Whether the executor was closed or dropped: spawns from outside its
    /// tasks are cancelled.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get() || self.closed.get()
    }

    /// Ready once the executor is closed or dropped. `key` is the
    /// caller's place among the waiters: give it back with
    /// [`forget_waiter`](Core::forget_waiter) if the caller stops waiting.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>, key: &mut Option<usize>) -> Poll<()> {
        if self.is_closing() {
            self.close_waiters.remove(key);
            return Poll::Ready(());
        }
        self.close_waiters.register(key, 0, cx.waker());
        Poll::Pending
    }

    pub(super) fn wake_close_waiters(&self) {
        self.close_waiters.wake_at_least(0);
    }

    /// The caller of [`poll_closed`](Core::poll_closed) (`closed`) or
    /// [`poll_drained`](Core::poll_drained) (`drained`) stops waiting.
    pub(crate) fn forget_waiter(&self, key: &mut Option<usize>, drained: bool) {
        if drained {
            self.registry.drained.remove(key);
        } else {
            self.close_waiters.remove(key);
        }
    }

    /// Ready once every task has finished: none is alive, none waits in the
    /// injector. Polled from one of the executor's own tasks, once that
    /// task is the last one alive. `key` as for
    /// [`poll_closed`](Core::poll_closed).
    pub(crate) fn poll_drained(&self, cx: &mut Context<'_>, key: &mut Option<usize>) -> Poll<()> {
        let (bound, done) = if self.poll.in_task() {
            (
                1,
                self.live_tasks() <= 1 && self.shared.attention() & REMOTE == 0,
            )
        } else {
            (0, self.is_drained())
        };
        if done {
            self.registry.drained.remove(key);
            return Poll::Ready(());
        }
        if self.live_tasks() <= bound {
            // Work waits in the injector: look again once the loop has
            // taken it in.
            cx.waker().wake_by_ref();
        } else {
            self.registry.drained.register(key, bound, cx.waker());
        }
        Poll::Pending
    }

    /// Waiters registered now: on `drain`, and on `closed` (for tests of
    /// what dropped futures leave behind).
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> (usize, usize) {
        (self.registry.drained.len(), self.close_waiters.len())
    }

    /// Every task is done and nothing waits in the injector.
    pub(crate) fn is_drained(&self) -> bool {
        self.live_tasks() == 0 && self.shared.attention() & REMOTE == 0 && !self.has_runnable()
    }

    /// Queue `index`'s tasks that ended without completing (cancelled or
    /// panicked): what a cancellation at a deadline adds to.
    pub(crate) fn ended_unfinished(&self, index: usize) -> u64 {
        let counters = &self.queues[index].counters;
        counters.cancelled.get() + counters.panicked.get()
    }
}
