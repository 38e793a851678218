//! One queue's state on the executor thread: its runnable tasks (the
//! built-in FIFO or a [`TaskScheduler`](crate::sched::TaskScheduler)), its
//! live groups, its weight and its counters.

use std::cell::{Cell, RefCell};

use super::groups::GroupTable;
use crate::runqueue::RunQueue;
use crate::sched::TaskScheduler;
use crate::stats::QueueCounters;

pub(crate) struct LocalQueue {
    pub(crate) tasks: RefCell<RunQueue>,
    /// The queue has a custom scheduler, which hears each poll's CPU time
    /// and may hand back tasks that are not this queue's.
    pub(crate) custom: bool,
    /// Some polls of this queue may need tracking (its own CPU time, group
    /// accounting): it has a custom scheduler, or a grouped task was ever
    /// spawned into it. Without, the loop takes the plain FIFO path.
    pub(crate) may_track: Cell<bool>,
    /// The queue's live task groups.
    pub(crate) groups: RefCell<GroupTable>,
    /// The queue's weight, as last set (the scheduler may take a change
    /// at the end of the running turn; see `Turn::set_weight`).
    pub(crate) weight: Cell<u32>,
    pub(crate) counters: QueueCounters,
    /// Queued `Send` tasks may be handed to another executor (see
    /// `Core::shed`).
    pub(crate) sheddable: bool,
}

impl LocalQueue {
    pub(crate) fn new(weight: u32, scheduler: Option<Box<dyn TaskScheduler>>) -> LocalQueue {
        let tasks = RunQueue::new(scheduler);
        LocalQueue {
            custom: tasks.is_custom(),
            may_track: Cell::new(tasks.is_custom()),
            tasks: RefCell::new(tasks),
            groups: RefCell::new(GroupTable::default()),
            weight: Cell::new(weight),
            counters: QueueCounters::new(),
            sheddable: false,
        }
    }

    /// The weight of a group of this queue (1 for a group it does not
    /// know).
    pub(crate) fn group_weight(&self, group: crate::task::GroupId) -> u32 {
        self.groups.borrow().weight(group).unwrap_or(1)
    }

    /// Gives memory back after a burst.
    pub(crate) fn trim(&self) {
        if let Ok(mut tasks) = self.tasks.try_borrow_mut() {
            tasks.trim();
        }
        if let Ok(mut groups) = self.groups.try_borrow_mut() {
            groups.trim();
        }
    }
}
