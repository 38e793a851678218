//! A queue's runnable tasks: the built-in FIFO, or a [`TaskScheduler`].
//!
//! The FIFO case is an enum variant, not a trait object, so that a queue
//! without a custom scheduler pays nothing for the possibility (one
//! well-predicted branch per push and pop).

use std::collections::VecDeque;
use std::fmt;

use async_task::Runnable;

use crate::sched::{PollOutcome, ReadyTask, TaskScheduler};
use crate::task::{GroupId, Header};

pub(crate) enum RunQueue {
    Fifo(VecDeque<Runnable<Header>>),
    Custom(Box<dyn TaskScheduler>),
}

impl RunQueue {
    pub(crate) fn new(scheduler: Option<Box<dyn TaskScheduler>>) -> RunQueue {
        match scheduler {
            None => RunQueue::Fifo(VecDeque::new()),
            Some(scheduler) => RunQueue::Custom(scheduler),
        }
    }

    pub(crate) fn is_custom(&self) -> bool {
        matches!(self, RunQueue::Custom(_))
    }

    /// Adds a runnable task; returns whether the queue was empty. A custom
    /// scheduler sees the task with the weight `group_weight` gives its
    /// group (the FIFO never asks).
    #[inline]
    pub(crate) fn push(
        &mut self,
        runnable: Runnable<Header>,
        group_weight: impl FnOnce(&Header) -> u32,
    ) -> bool {
        match self {
            RunQueue::Fifo(tasks) => {
                let was_empty = tasks.is_empty();
                tasks.push_back(runnable);
                was_empty
            }
            RunQueue::Custom(scheduler) => {
                let was_empty = scheduler.is_empty();
                let weight = group_weight(runnable.metadata());
                scheduler.push(ReadyTask::new(runnable, weight));
                was_empty
            }
        }
    }

    /// Gives memory back after a burst (the FIFO's ring, or whatever the
    /// custom scheduler's `shrink` does).
    pub(crate) fn trim(&mut self) {
        match self {
            RunQueue::Fifo(tasks) => crate::sched::shrink_deque(tasks),
            RunQueue::Custom(scheduler) => scheduler.shrink(),
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Runnable<Header>> {
        match self {
            RunQueue::Fifo(tasks) => tasks.pop_front(),
            // A `ReadyTask` the executor handed out always holds its task.
            RunQueue::Custom(scheduler) => scheduler.pop().and_then(ReadyTask::into_runnable),
        }
    }

    /// Moves up to `max` tasks that `may_go` accepts from the back of a
    /// FIFO queue into `into`, newest first. The tasks it refuses stay, in
    /// their order; it looks at no more than `2 * max` tasks. A custom
    /// scheduler's queue gives nothing: only it knows its order.
    pub(crate) fn shed_back(
        &mut self,
        max: usize,
        may_go: impl Fn(&Header) -> bool,
        into: &mut Vec<Runnable<Header>>,
    ) {
        let RunQueue::Fifo(tasks) = self else { return };
        let mut staying = Vec::new();
        let mut moved = 0;
        while moved < max && staying.len() < max {
            let Some(runnable) = tasks.pop_back() else {
                break;
            };
            if may_go(runnable.metadata()) {
                into.push(runnable);
                moved += 1;
            } else {
                staying.push(runnable);
            }
        }
        tasks.extend(staying.into_iter().rev());
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            RunQueue::Fifo(tasks) => tasks.len(),
            RunQueue::Custom(scheduler) => scheduler.len(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            RunQueue::Fifo(tasks) => tasks.is_empty(),
            RunQueue::Custom(scheduler) => scheduler.is_empty(),
        }
    }

    pub(crate) fn polled(&mut self, outcome: &PollOutcome) {
        if let RunQueue::Custom(scheduler) = self {
            scheduler.polled(outcome);
        }
    }

    pub(crate) fn group_gone(&mut self, group: GroupId) {
        if let RunQueue::Custom(scheduler) = self {
            scheduler.group_gone(group);
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            RunQueue::Fifo(_) => "Fifo",
            RunQueue::Custom(scheduler) => scheduler.name(),
        }
    }
}

impl fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunQueue")
            .field("scheduler", &self.name())
            .field("runnable", &self.len())
            .finish()
    }
}
