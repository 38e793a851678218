//! Newest first, with a bound.

use std::collections::VecDeque;

use super::{ReadyTask, TaskScheduler};

/// Last in, first out: the most recently woken task runs first (it is the
/// likeliest to have its data in cache), but every `bound`-th pick takes the
/// oldest runnable task instead, so that no task waits forever.
///
/// With a bound of `n`, the oldest runnable task runs within `n` picks.
#[derive(Debug)]
pub struct Lifo {
    ready: VecDeque<ReadyTask>,
    bound: u32,
    picks: u32,
}

impl Lifo {
    /// The default bound: the oldest task runs at least every 16 picks.
    pub const DEFAULT_BOUND: u32 = 16;

    /// A LIFO with the default bound.
    pub fn new() -> Lifo {
        Lifo::with_bound(Self::DEFAULT_BOUND)
    }

    /// A LIFO whose every `bound`-th pick is the oldest task (`bound` of 0 or
    /// 1 makes every pick the oldest: plain FIFO).
    pub fn with_bound(bound: u32) -> Lifo {
        Lifo {
            ready: VecDeque::new(),
            bound: bound.max(1),
            picks: 0,
        }
    }
}

impl Default for Lifo {
    fn default() -> Lifo {
        Lifo::new()
    }
}

impl TaskScheduler for Lifo {
    fn name(&self) -> &'static str {
        "Lifo"
    }

    fn shrink(&mut self) {
        super::shrink_deque(&mut self.ready);
    }

    fn push(&mut self, task: ReadyTask) {
        self.ready.push_back(task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.picks += 1;
        if self.picks >= self.bound {
            self.picks = 0;
            self.ready.pop_front()
        } else {
            self.ready.pop_back()
        }
    }

    fn len(&self) -> usize {
        self.ready.len()
    }
}
