//! Least attained service: whoever has used the least CPU time runs first.

use std::collections::{HashMap, VecDeque};
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
    /// Arrival order; also tells a live entry from a stale reference.
    seq: u64,
    account: Account,
}

/// Service classes: 8 per doubling of attained service (see [`class`]).
const CLASSES: usize = 512;
const WORDS: usize = CLASSES / 64;

/// The service class of `nanos` of attained service: exact below 8 ns,
/// then 8 classes per doubling, so that two services in one class differ
/// by less than 12.5%. Monotonic, and below [`CLASSES`] for every `u64`.
fn class(nanos: u64) -> usize {
    if nanos < 8 {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros();
    let mantissa = (nanos >> (exponent - 3)) & 7;
    (((exponent - 2) as usize) << 3) | mantissa as usize
}

/// Least attained service: the runnable task whose task (or group) has used
/// the least CPU time so far runs first, so that short requests overtake
/// long ones.
///
/// Service is compared by class: eight classes per doubling, so services
/// within 12.5% of each other count as equal, and equals run in arrival
/// order. (This is what makes every operation O(1); a task that has run for
/// 1 ms still goes before one that has run for 1.2 ms.)
///
/// Starvation guard: a task that has been runnable for longer than
/// `max_wait` runs next, whatever its attained service, so long tasks still
/// make progress under a steady stream of short ones.
///
/// Cost: O(1) per push, pop and poll (a hash map update per poll). With
/// [`Attribution::Group`], a task whose group has run since it was queued
/// moves to its group's new class when it comes up, at most once per class.
#[derive(Debug)]
pub struct LeastAttainedService {
    attribution: Attribution,
    max_wait: Duration,
    entries: Slab<Entry>,
    /// Per service class, (arrival, entry) in arrival order; entries taken
    /// by the starvation guard are left behind and skipped.
    classes: Box<[VecDeque<(u64, usize)>]>,
    /// Which classes are non-empty.
    occupied: [u64; WORDS],
    by_arrival: VecDeque<(u64, usize)>,
    /// Attained service in nanoseconds.
    attained: HashMap<Account, u64, BuildHasherDefault<FxHasher>>,
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
            classes: (0..CLASSES).map(|_| VecDeque::new()).collect(),
            occupied: [0; WORDS],
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

    fn class_of(&self, account: Account) -> usize {
        class(self.attained.get(&account).copied().unwrap_or_default())
    }

    fn file(&mut self, class: usize, seq: u64, slot: usize) {
        self.classes[class].push_back((seq, slot));
        self.occupied[class / 64] |= 1 << (class % 64);
    }

    /// The lowest non-empty class.
    fn lowest(&self) -> Option<usize> {
        self.occupied
            .iter()
            .position(|&word| word != 0)
            .map(|word| word * 64 + self.occupied[word].trailing_zeros() as usize)
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
    fn name(&self) -> &'static str {
        "LeastAttainedService"
    }

    fn shrink(&mut self) {
        for class in self.classes.iter_mut() {
            super::shrink_deque(class);
        }
        super::shrink_deque(&mut self.by_arrival);
        if crate::core::should_shrink(self.entries.len(), self.entries.capacity()).is_some() {
            // Frees the vacant tail (all of it when empty); keys stay valid.
            self.entries.shrink_to_fit();
        }
        if let Some(room) =
            crate::core::should_shrink(self.attained.len(), self.attained.capacity())
        {
            self.attained.shrink_to(room);
        }
    }

    fn push(&mut self, task: ReadyTask) {
        let account = self.account(task.id(), task.group());
        let class = self.class_of(account);
        self.arrivals += 1;
        let seq = self.arrivals;
        let slot = self.entries.insert(Entry { task, seq, account });
        self.file(class, seq, slot);
        self.by_arrival.push_back((seq, slot));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        if let Some(slot) = self.oldest()
            && self.entries[slot].task.waiting_for() >= self.max_wait
        {
            self.by_arrival.pop_front();
            return Some(self.take(slot));
        }
        while let Some(class) = self.lowest() {
            let bucket = &mut self.classes[class];
            let Some((seq, slot)) = bucket.pop_front() else {
                unreachable!("an occupied class holds an entry");
            };
            if bucket.is_empty() {
                self.occupied[class / 64] &= !(1 << (class % 64));
            }
            let Some(entry) = self.entries.get(slot).filter(|entry| entry.seq == seq) else {
                // Taken by the starvation guard.
                continue;
            };
            let current = self.class_of(entry.account);
            if current > class {
                // Its task or group ran since it was queued: it joins the
                // class it belongs to now.
                self.file(current, seq, slot);
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
        if outcome.finished && matches!(account, Account::Task(_)) {
            self.attained.remove(&account);
            return;
        }
        let cpu = u64::try_from(outcome.cpu.as_nanos()).unwrap_or(u64::MAX);
        let attained = self.attained.entry(account).or_default();
        *attained = attained.saturating_add(cpu);
    }

    fn group_gone(&mut self, group: GroupId) {
        self.attained.remove(&Account::Group(group));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_monotonic_and_fine() {
        let mut previous = 0;
        for nanos in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let c = class(nanos);
            assert!(c >= previous, "class({nanos}) = {c} < {previous}");
            assert!(c < CLASSES);
            previous = c;
        }
        assert_eq!(class(7), 7);
        assert_eq!(class(8), 8);
        assert_eq!(class(15), 15);
        assert_eq!(class(16), 16);
        // Within 12.5%: same class; 12.5% apart: different classes.
        assert_eq!(class(1_048_576), class(1_100_000));
        assert!(class(1_048_576) < class(1_179_648));
        assert!(class(1_000_000) < class(1_200_000));
    }
}
