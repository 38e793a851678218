//! CPU time shared between task groups by weight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use super::{GroupId, PollOutcome, ReadyTask, TaskScheduler};

/// Fixed-point shift of group virtual time: nanoseconds · 2^SHIFT / weight.
const SHIFT: u32 = 16;

#[derive(Debug)]
struct Group {
    tasks: VecDeque<ReadyTask>,
    /// CPU time received, in nanoseconds · 2^SHIFT / weight.
    virtual_time: u128,
    weight: u32,
    /// In the heap (has runnable tasks).
    queued: bool,
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
/// Cost: O(log g) per push and pop (g: runnable groups), plus an O(log g)
/// update per poll.
#[derive(Debug, Default)]
pub struct WeightedGroups {
    groups: HashMap<Option<GroupId>, Group, BuildHasherDefault<FxHasher>>,
    /// (virtual time, insertion order, group); stale entries are skipped.
    heap: BinaryHeap<Reverse<(u128, u64, Option<GroupId>)>>,
    /// Where a group that becomes runnable starts: the virtual time of the
    /// group served last.
    floor: u128,
    pushes: u64,
    len: usize,
}

impl WeightedGroups {
    /// An empty scheduler.
    pub fn new() -> WeightedGroups {
        WeightedGroups::default()
    }

    fn enqueue(&mut self, key: Option<GroupId>, virtual_time: u128) {
        self.pushes += 1;
        self.heap.push(Reverse((virtual_time, self.pushes, key)));
    }
}

impl TaskScheduler for WeightedGroups {
    fn push(&mut self, task: ReadyTask) {
        let key = task.group();
        let weight = task.group_weight().max(1);
        let floor = self.floor;
        let group = self.groups.entry(key).or_insert_with(|| Group {
            tasks: VecDeque::new(),
            virtual_time: floor,
            weight,
            queued: false,
        });
        group.weight = weight;
        group.tasks.push_back(task);
        self.len += 1;
        if !group.queued {
            group.queued = true;
            group.virtual_time = group.virtual_time.max(floor);
            let virtual_time = group.virtual_time;
            self.enqueue(key, virtual_time);
        }
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        while let Some(Reverse((virtual_time, _, key))) = self.heap.pop() {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            if !group.queued || group.virtual_time != virtual_time {
                continue;
            }
            let Some(task) = group.tasks.pop_front() else {
                group.queued = false;
                continue;
            };
            self.len -= 1;
            self.floor = self.floor.max(virtual_time);
            if group.tasks.is_empty() {
                group.queued = false;
            } else {
                self.enqueue(key, virtual_time);
            }
            return Some(task);
        }
        None
    }

    fn len(&self) -> usize {
        self.len
    }

    fn polled(&mut self, outcome: &PollOutcome) {
        let key = outcome.group;
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        group.virtual_time += (outcome.cpu.as_nanos() << SHIFT) / u128::from(group.weight.max(1));
        if group.queued {
            let virtual_time = group.virtual_time;
            self.enqueue(key, virtual_time);
        }
    }

    fn group_gone(&mut self, group: GroupId) {
        if self
            .groups
            .get(&Some(group))
            .is_some_and(|g| g.tasks.is_empty())
        {
            self.groups.remove(&Some(group));
        }
    }
}
