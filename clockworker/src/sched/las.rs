//! Least attained service: whoever has used the least CPU time runs first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::time::Duration;

use rustc_hash::FxHasher;
use slab::Slab;

use super::{GroupId, PollOutcome, ReadyTask, TaskScheduler};
use crate::task::TaskId;

/// Whose CPU time [`LeastAttainedService`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// Each task's own CPU time: short tasks overtake long ones.
    Task,
    /// Each group's CPU time (a task without a group counts on its own):
    /// light tenants overtake heavy ones.
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Account {
    Task(TaskId),
    Group(GroupId),
}

#[derive(Debug)]
struct Entry {
    task: ReadyTask,
    /// Arrival order; also tells a live entry from a stale heap reference.
    seq: u64,
    account: Account,
}

/// Least attained service: the runnable task whose task (or group) has used
/// the least CPU time so far runs first, so that short requests overtake
/// long ones. Ties go to the earliest arrival.
///
/// Starvation guard: a task that has been runnable for longer than
/// `max_wait` runs next, whatever its attained service, so long tasks still
/// make progress under a steady stream of short ones.
///
/// Cost: O(log n) per push and pop, and a hash map update per poll.
#[derive(Debug)]
pub struct LeastAttainedService {
    attribution: Attribution,
    max_wait: Duration,
    entries: Slab<Entry>,
    by_service: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    by_arrival: VecDeque<(u64, usize)>,
    attained: HashMap<Account, Duration, BuildHasherDefault<FxHasher>>,
    arrivals: u64,
}

impl LeastAttainedService {
    /// The default starvation guard.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(50);

    /// Per-task attained service with the default starvation guard.
    pub fn new() -> LeastAttainedService {
        LeastAttainedService::with(Attribution::Task, Self::DEFAULT_MAX_WAIT)
    }

    /// Attained service counted per task or per group, with a task that has
    /// been runnable for `max_wait` running next regardless.
    pub fn with(attribution: Attribution, max_wait: Duration) -> LeastAttainedService {
        LeastAttainedService {
            attribution,
            max_wait,
            entries: Slab::new(),
            by_service: BinaryHeap::new(),
            by_arrival: VecDeque::new(),
            attained: HashMap::default(),
            arrivals: 0,
        }
    }

    fn account(&self, task: TaskId, group: Option<GroupId>) -> Account {
        match (self.attribution, group) {
            (Attribution::Group, Some(group)) => Account::Group(group),
            _ => Account::Task(task),
        }
    }

    fn attained(&self, account: Account) -> Duration {
        self.attained.get(&account).copied().unwrap_or_default()
    }

    fn take(&mut self, slot: usize) -> ReadyTask {
        self.entries.remove(slot).task
    }

    /// The oldest live arrival, dropping stale references ahead of it.
    fn oldest(&mut self) -> Option<usize> {
        while let Some(&(seq, slot)) = self.by_arrival.front() {
            if self.entries.get(slot).is_some_and(|entry| entry.seq == seq) {
                return Some(slot);
            }
            self.by_arrival.pop_front();
        }
        None
    }
}

impl Default for LeastAttainedService {
    fn default() -> LeastAttainedService {
        LeastAttainedService::new()
    }
}

impl TaskScheduler for LeastAttainedService {
    fn push(&mut self, task: ReadyTask) {
        let account = self.account(task.id(), task.group());
        let attained = self.attained(account);
        self.arrivals += 1;
        let seq = self.arrivals;
        let slot = self.entries.insert(Entry { task, seq, account });
        self.by_service.push(Reverse((attained, seq, slot)));
        self.by_arrival.push_back((seq, slot));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        if let Some(slot) = self.oldest()
            && self.entries[slot].task.waiting_for() >= self.max_wait
        {
            self.by_arrival.pop_front();
            return Some(self.take(slot));
        }
        while let Some(Reverse((attained, seq, slot))) = self.by_service.pop() {
            let Some(entry) = self.entries.get(slot).filter(|entry| entry.seq == seq) else {
                // Taken by the starvation guard.
                continue;
            };
            let current = self.attained(entry.account);
            if current > attained {
                // Its group ran meanwhile: take its place again.
                self.by_service.push(Reverse((current, seq, slot)));
                continue;
            }
            return Some(self.take(slot));
        }
        None
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn polled(&mut self, outcome: &PollOutcome) {
        let account = self.account(outcome.task, outcome.group);
        *self.attained.entry(account).or_default() += outcome.cpu;
        if outcome.finished
            && let Account::Task(_) = account
        {
            self.attained.remove(&account);
        }
    }

    fn group_gone(&mut self, group: GroupId) {
        self.attained.remove(&Account::Group(group));
    }
}
