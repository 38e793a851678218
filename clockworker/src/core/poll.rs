//! The poll in progress: whether a run of the executor is under way, which
//! task it is polling, that task's group and hint, and whether the task was
//! aborted during its own poll.
//!
//! Read by code that runs *inside* a poll (`spawn!` finds the current
//! queue and group here; `JoinHandle::abort` of the running task sets
//! `aborted`), written only by the run loop around each poll.

use std::cell::Cell;

use crate::task::{GroupId, TaskId};

#[derive(Debug, Default)]
pub(crate) struct PollInProgress {
    /// A `run_until`/`block_on` of this executor is polling.
    in_run: Cell<bool>,
    /// A task (not a `run_until` future) is being polled.
    in_task: Cell<bool>,
    task: Cell<Option<TaskId>>,
    /// The group and hint of the task being polled (set for queues that
    /// track groups; see `LocalQueue::may_track`).
    group: Cell<Option<GroupId>>,
    hint: Cell<u64>,
    /// The task being polled was aborted during this poll, before it could
    /// park: the loop wakes it if the poll parks it. Cleared before every
    /// poll, and by nothing else.
    aborted: Cell<bool>,
}

impl PollInProgress {
    /// Marks a run as started; returns whether one already was.
    pub(crate) fn enter_run(&self) -> bool {
        self.in_run.replace(true)
    }

    pub(crate) fn exit_run(&self) {
        self.in_run.set(false);
    }

    #[inline]
    pub(crate) fn in_run(&self) -> bool {
        self.in_run.get()
    }

    #[inline]
    pub(crate) fn in_task(&self) -> bool {
        self.in_task.get()
    }

    /// The task `id` is about to be polled.
    #[inline]
    pub(crate) fn begin(&self, id: TaskId) {
        self.task.set(Some(id));
        self.aborted.set(false);
        self.in_task.set(true);
    }

    /// The poll is over; returns whether the task was aborted during it.
    #[inline]
    pub(crate) fn end(&self) -> bool {
        self.in_task.set(false);
        self.aborted.replace(false)
    }

    /// The group and hint of the task about to be polled.
    #[inline]
    pub(crate) fn set_placement(&self, group: Option<GroupId>, hint: u64) {
        self.group.set(group);
        self.hint.set(hint);
    }

    pub(crate) fn group(&self) -> Option<GroupId> {
        self.group.get()
    }

    pub(crate) fn hint(&self) -> u64 {
        self.hint.get()
    }

    /// Records an abort of task `id` if it is the one being polled; returns
    /// whether it was.
    pub(crate) fn abort_if_current(&self, id: TaskId) -> bool {
        let current = self.in_task.get() && self.task.get() == Some(id);
        if current {
            self.aborted.set(true);
        }
        current
    }
}
