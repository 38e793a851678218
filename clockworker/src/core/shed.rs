//! The hooks that let executors work together (a pool's workers) without
//! the core knowing about pools: handing queued tasks to an idle executor
//! (`shed`), running closures sent from other threads (`run_calls`), going
//! idle (`went_idle`). Waiting until every task is done is the executor's
//! own graceful close (`core/close.rs`), which a pool's drain uses too.
//!
//! # Shedding
//!
//! An idle executor offers itself as a *thief* to a busy one
//! ([`Shared::offer_thief`](crate::shared::Shared::offer_thief)), which
//! flags the busy one's `SHED` bit without waking it. At its next poll
//! boundary the busy executor takes the waiting thieves and moves, to each
//! in turn, up to half of what is left in its sheddable queues (at most
//! [`SHED_BATCH`] tasks per thief), newest first; once it has nothing to
//! spare it keeps the remaining offers, and the next task that has never
//! run to enter a sheddable queue that then holds two or more tasks flags
//! the bit again. A task moves only if it is `Send`, movable (spawned
//! onto a sheddable queue), in no group, not aborted and has never run:
//! it is then in no executor's registry, so its new executor's books (live
//! count, registry) are complete, and no waker of it exists outside its
//! `Runnable`, which this executor holds. Its home is rewritten before the
//! thief's injector receives it, so every later wake goes to the thief
//! (see `task::Home`). A thief that closed in the meantime gives the tasks
//! back, and they stay here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_task::Runnable;

use super::Core;
use crate::shared::{Shared, WAKE_BITS};
use crate::task::Header;

/// The most tasks one shed moves.
pub(crate) const SHED_BATCH: usize = 128;

impl Core {
    /// A task that has never run (a spawn, or a task shed to us) entered
    /// queue `index`: if the queue is sheddable, a thief waits and there is
    /// a task to spare, the next poll boundary sheds. Only such tasks may
    /// move, so a wake of a task that has run never asks for a shed (a
    /// busy executor with nothing to spare would otherwise try at every
    /// poll boundary).
    #[inline]
    pub(super) fn note_fresh(&self, index: u32) {
        let queue = &self.queues[index as usize];
        if queue.sheddable && self.shared.wants_shed() {
            let spare = queue.tasks.try_borrow().map_or(0, |tasks| tasks.len());
            if spare >= 2 {
                self.shared.flag_shed();
            }
        }
    }

    /// Hands a batch of queued tasks to the waiting thief, if any (see the
    /// module docs).
    #[cold]
    #[inline(never)]
    pub(super) fn shed(&self) {
        let thieves = self.shared.take_thieves();
        if self.is_closed() {
            return;
        }
        let mut thieves = thieves.into_iter();
        while let Some(thief) = thieves.next() {
            if Arc::ptr_eq(&thief, &self.shared) || !thief.is_idle() {
                // A thief that got work since its offer has withdrawn it
                // (it offers again when it next goes idle).
                continue;
            }
            if !self.shed_to(&thief) {
                // Nothing to spare: this offer and the rest stand.
                self.shared
                    .keep_thieves(std::iter::once(thief).chain(thieves));
                return;
            }
        }
    }

    /// Moves a batch to `thief`; whether there was one to move.
    fn shed_to(&self, thief: &Arc<Shared>) -> bool {
        let mut batch = Vec::new();
        for queue in self.queues.iter().filter(|queue| queue.sheddable) {
            let Ok(mut tasks) = queue.tasks.try_borrow_mut() else {
                continue;
            };
            let spare = (tasks.len() / 2).min(SHED_BATCH - batch.len());
            tasks.shed_back(spare, |header| self.may_shed(header), &mut batch);
        }
        if batch.is_empty() {
            return false;
        }
        for runnable in &batch {
            runnable.metadata().move_to(thief.clone());
        }
        let count = batch.len();
        match thief.move_in(batch) {
            Ok(()) => {
                for _ in 0..count {
                    self.registry.release();
                }
                self.shared
                    .counts()
                    .shed
                    .fetch_add(count as u64, Ordering::Relaxed);
            }
            Err(batch) => {
                // The thief closed: the tasks stay (a closed thief's
                // offer is dropped).
                for runnable in batch {
                    runnable.metadata().move_to(self.shared.clone());
                    self.requeue(runnable);
                }
            }
        }
        true
    }

    /// A task that may go to another executor (see the module docs).
    fn may_shed(&self, header: &Header) -> bool {
        !header.local
            && header.movable()
            && header.group().is_none()
            && !header.aborted.load(Ordering::Relaxed)
            && !self.registry.contains(header.id)
    }

    /// Runs the closures other threads sent (`Shared::call`), each with
    /// its panic caught: they are the pool's own, and a panic must not
    /// unwind through the run loop.
    #[cold]
    #[inline(never)]
    pub(crate) fn run_calls(&self) {
        for call in self.shared.take_calls() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call.0));
        }
    }

    /// The executor goes idle: counts the park (if a task ran since the
    /// last one: a wake-up that only ran calls, such as a stats request,
    /// is not one) and runs the idle hook (a pool's worker offers itself to
    /// busy workers there).
    pub(crate) fn went_idle(&self) {
        let polls: u64 = self.queues.iter().map(|q| q.counters.polls.get()).sum();
        if polls != self.polls_at_park.replace(polls) {
            self.shared.counts().parks.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.set_idle(true);
        if let Some(hook) = &self.on_idle {
            hook();
        }
    }

    /// The executor is about to go idle: for up to [`Hooks::idle_spin`]
    /// (zero unless a pool set it), keeps checking for work from other
    /// threads (or `woken`, its `run_until` future's wake) before its
    /// thread sleeps in its host. A reply that comes within microseconds
    /// then costs no futex sleep and wake-up. Returns whether work came.
    ///
    /// [`Hooks::idle_spin`]: super::Hooks::idle_spin
    pub(crate) fn spin_for_work(&self, woken: impl Fn() -> bool) -> bool {
        if self.idle_spin == 0 {
            return false;
        }
        let clock = self.turn.clock();
        let until = clock.now().saturating_add(self.idle_spin);
        loop {
            for _ in 0..8 {
                if self.shared.attention() & WAKE_BITS != 0 || woken() {
                    return true;
                }
                // A few pauses between two looks: the doorbell's cache line
                // is also where the threads that ring it write.
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
            }
            if clock.now() >= until {
                return false;
            }
        }
    }

    /// The thief a shed was meant for is gone: a moved task comes back.
    fn requeue(&self, runnable: Runnable<Header>) {
        self.enqueue(runnable);
    }

    /// Queue `index` is sheddable.
    pub(crate) fn is_sheddable(&self, index: u32) -> bool {
        self.queues
            .get(index as usize)
            .is_some_and(|queue| queue.sheddable)
    }

    /// The shared state of this executor, for a pool that keeps it.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
