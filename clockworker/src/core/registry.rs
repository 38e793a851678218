//! The parked tasks: the waker of every live task that has returned
//! `Pending` at least once, keyed by its id, and the count of live tasks.
//!
//! A task enters the registry the first time its poll returns `Pending` and
//! leaves it when it finishes, so a parked task can always be reached, to
//! be dropped at shutdown or woken by an abort, while a task that completes
//! in one poll never pays for the registry.
//!
//! After a burst the table would keep its peak capacity; [`Registry::trim`]
//! gives memory back once it holds far fewer entries than it has room for.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::task::Waker;

use rustc_hash::FxHasher;

use crate::task::TaskId;

type Wakers = HashMap<TaskId, Waker, BuildHasherDefault<FxHasher>>;

/// Room kept whatever the load: no reallocation churn for small executors.
pub(crate) const KEEP: usize = 1024;

/// Shrinks a collection whose capacity is more than four times what it
/// holds (and above [`KEEP`]) to twice what it holds: amortised O(1) per
/// element, and nothing at all while the capacity is in proportion.
pub(crate) fn should_shrink(len: usize, capacity: usize) -> Option<usize> {
    (capacity > KEEP && capacity / 4 > len).then(|| (len * 2).max(KEEP))
}

#[derive(Default)]
pub(crate) struct Registry {
    parked: RefCell<Wakers>,
    /// Tasks alive: spawned (and seen, for remote spawns) and not finished.
    live: Cell<usize>,
    /// Woken when `live` drops to their bound or below (`drain`).
    pub(crate) drained: super::waiters::Waiters,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("live", &self.live.get())
            .field("parked", &self.parked.try_borrow().map(|p| p.len()).ok())
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    /// A task entered the executor.
    #[inline]
    pub(crate) fn admit(&self) {
        self.live.set(self.live.get() + 1);
    }

    /// A task finished; `parked`: it was registered.
    #[inline]
    pub(crate) fn retire(&self, id: TaskId, parked: bool) {
        self.release();
        if parked {
            // Take the waker out first: dropping it may free the task,
            // whose drop must not find the table borrowed.
            let waker = self.parked.borrow_mut().remove(&id);
            drop(waker);
        }
    }

    /// A task left the executor (finished, or handed to another one).
    #[inline]
    pub(crate) fn release(&self) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if self.drained.any_at_least(live) {
            self.drained.wake_at_least(live);
        }
    }

    /// The task is registered (it has parked before).
    pub(crate) fn contains(&self, id: TaskId) -> bool {
        self.parked.borrow().contains_key(&id)
    }

    /// A task returned `Pending` for the first time.
    pub(crate) fn park(&self, id: TaskId, waker: Waker) {
        self.parked.borrow_mut().insert(id, waker);
    }

    /// The waker of a parked task.
    pub(crate) fn waker(&self, id: TaskId) -> Option<Waker> {
        self.parked.borrow().get(&id).cloned()
    }

    /// Empties the registry (shutdown): every waker, for the caller to wake.
    pub(crate) fn take_all(&self) -> Wakers {
        self.live.set(0);
        let parked = std::mem::take(&mut *self.parked.borrow_mut());
        self.drained.wake_at_least(0);
        parked
    }

    pub(crate) fn len(&self) -> usize {
        self.parked.borrow().len()
    }

    /// Gives memory back after a burst (see [`should_shrink`]).
    pub(crate) fn trim(&self) {
        let mut parked = self.parked.borrow_mut();
        if let Some(room) = should_shrink(parked.len(), parked.capacity()) {
            parked.shrink_to(room);
        }
    }
}
