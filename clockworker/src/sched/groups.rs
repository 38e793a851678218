//! CPU time shared between task groups by weight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use slab::Slab;

use super::{GroupId, PollOutcome, ReadyTask, TaskScheduler};

/// Fixed-point shift of group virtual time: nanoseconds · 2^SHIFT / weight.
const SHIFT: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No runnable task.
    Idle,
    /// In the heap.
    Queued,
    /// Supplied the task being polled; back in the heap (if it still has
    /// runnable tasks) once the poll is charged.
    Running,
}

#[derive(Debug)]
struct Group {
    tasks: VecDeque<ReadyTask>,
    /// CPU time received, in nanoseconds · 2^SHIFT / weight.
    virtual_time: u128,
    weight: u32,
    state: State,
}

/// Weighted fair sharing between task groups, FIFO inside a group.
///
/// Each group (tasks without a group form one group of their own) has a
/// virtual time: its CPU time divided by its weight. The runnable group with
/// the smallest virtual time supplies the next task, so CPU time splits
/// between busy groups in proportion to their weights (set with
/// [`GroupHandle::with_weight`](crate::GroupHandle::with_weight); 1 by
/// default), whatever the number of tasks in each: a tenant with a hundred
/// tasks gets no more than one with a single task. A group that becomes
/// runnable starts at the current virtual time, so an idle group banks no
/// credit.
///
/// Cost: one heap pop and one heap push, O(log g), per poll (g: runnable
/// groups); pushing a task to a group that already has runnable tasks is
/// O(1).
#[derive(Debug, Default)]
pub struct WeightedGroups {
    index: HashMap<Option<GroupId>, usize, BuildHasherDefault<FxHasher>>,
    groups: Slab<Group>,
    /// (virtual time, enqueue order, group) of each queued group.
    heap: BinaryHeap<Reverse<(u128, u64, usize)>>,
    /// Where a group that becomes runnable starts: the virtual time of the
    /// group served last.
    floor: u128,
    /// The group that supplied the task being polled.
    running: Option<usize>,
    enqueued: u64,
    len: usize,
}

impl WeightedGroups {
    /// An empty scheduler.
    pub fn new() -> WeightedGroups {
        WeightedGroups::default()
    }

    fn enqueue(&mut self, slot: usize) {
        let group = &mut self.groups[slot];
        group.state = State::Queued;
        self.enqueued += 1;
        self.heap
            .push(Reverse((group.virtual_time, self.enqueued, slot)));
    }

    /// The running group's poll is over: it queues again if it has
    /// runnable tasks.
    fn requeue(&mut self, slot: usize) {
        if self.groups[slot].tasks.is_empty() {
            self.groups[slot].state = State::Idle;
        } else {
            self.enqueue(slot);
        }
    }
}

impl TaskScheduler for WeightedGroups {
    fn name(&self) -> &'static str {
        "WeightedGroups"
    }

    fn shrink(&mut self) {
        for (_, group) in self.groups.iter_mut() {
            super::shrink_deque(&mut group.tasks);
        }
        if crate::core::should_shrink(self.groups.len(), self.groups.capacity()).is_some() {
            // Frees the vacant tail (all of it when empty); keys stay valid.
            self.groups.shrink_to_fit();
        }
        if let Some(room) = crate::core::should_shrink(self.heap.len(), self.heap.capacity()) {
            self.heap.shrink_to(room);
        }
        if let Some(room) = crate::core::should_shrink(self.index.len(), self.index.capacity()) {
            self.index.shrink_to(room);
        }
    }

    fn push(&mut self, task: ReadyTask) {
        let key = task.group();
        let weight = task.group_weight().max(1);
        let slot = match self.index.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = self.groups.insert(Group {
                    tasks: VecDeque::new(),
                    virtual_time: self.floor,
                    weight,
                    state: State::Idle,
                });
                self.index.insert(key, slot);
                slot
            }
        };
        let floor = self.floor;
        let group = &mut self.groups[slot];
        group.weight = weight;
        group.tasks.push_back(task);
        self.len += 1;
        if group.state == State::Idle {
            group.virtual_time = group.virtual_time.max(floor);
            self.enqueue(slot);
        }
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        if let Some(slot) = self.running.take() {
            // The last task handed out was never reported as polled.
            self.requeue(slot);
        }
        let Reverse((virtual_time, _, slot)) = self.heap.pop()?;
        let group = &mut self.groups[slot];
        let Some(task) = group.tasks.pop_front() else {
            unreachable!("a queued group has a runnable task");
        };
        group.state = State::Running;
        self.running = Some(slot);
        self.len -= 1;
        self.floor = self.floor.max(virtual_time);
        Some(task)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn polled(&mut self, outcome: &PollOutcome) {
        let Some(&slot) = self.index.get(&outcome.group) else {
            return;
        };
        let group = &mut self.groups[slot];
        group.virtual_time += (outcome.cpu.as_nanos() << SHIFT) / u128::from(group.weight.max(1));
        if self.running == Some(slot) {
            self.running = None;
            self.requeue(slot);
        }
    }

    fn group_gone(&mut self, group: GroupId) {
        let key = Some(group);
        if let Some(&slot) = self.index.get(&key)
            && self.groups[slot].state == State::Idle
        {
            self.index.remove(&key);
            self.groups.remove(slot);
        }
    }
}
