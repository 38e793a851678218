//! Task groups: the handle that spawns into one, and the per-queue table of
//! live groups.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use crate::builder::BuildError;
use crate::clock::Clock;
use crate::eevdf::MAX_WEIGHT;
use crate::executor::QueueHandle;
use crate::join::JoinHandle;
use crate::sched::GroupId;
use crate::stats::GroupStats;
use crate::task::{Placement, TaskLabel};

/// Spawns tasks into one group of a queue. Obtained from
/// [`QueueHandle::group`].
///
/// A group is how a queue's scheduler tells tenants, streams or requests
/// apart: [`WeightedGroups`](crate::sched::WeightedGroups) shares the queue's
/// CPU time between groups by weight, and
/// [`LeastAttainedService`](crate::sched::LeastAttainedService) can count CPU
/// time per group. A task's children spawned onto the same queue join its
/// group. The queue keeps a group's state only while the group has tasks.
///
/// # Examples
///
/// ```
/// use clockworker::{sched::WeightedGroups, ExecutorBuilder};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler("tenants", 1, WeightedGroups::new())
///     .build()
///     .unwrap();
/// let tenants = executor.queue("tenants").unwrap();
/// let gold = tenants.group(1).with_weight(4).unwrap();
/// let basic = tenants.group(2);
/// let (a, b) = executor.block_on(async {
///     (gold.spawn(async { "gold" }).await, basic.spawn(async { "basic" }).await)
/// });
/// assert_eq!((a.unwrap(), b.unwrap()), ("gold", "basic"));
/// // The groups' state is gone with their last task.
/// assert!(executor.queue_stats("tenants").unwrap().groups.is_empty());
/// ```
pub struct GroupHandle<K> {
    queue: QueueHandle<K>,
    id: GroupId,
    weight: u32,
}

impl<K: Copy + fmt::Debug> GroupHandle<K> {
    pub(crate) fn new(queue: QueueHandle<K>, id: GroupId) -> GroupHandle<K> {
        GroupHandle {
            queue,
            id,
            weight: 1,
        }
    }

    /// The same group with this weight (1 by default): tasks spawned through
    /// the returned handle set the group's weight.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWeight`] or [`BuildError::WeightTooLarge`] (the
    /// `key` names the group).
    pub fn with_weight(self, weight: u32) -> Result<GroupHandle<K>, BuildError> {
        let key = || format!("{:?} group {}", self.queue.key(), self.id);
        if weight == 0 {
            return Err(BuildError::ZeroWeight { key: key() });
        }
        if weight > MAX_WEIGHT {
            return Err(BuildError::WeightTooLarge {
                key: key(),
                weight,
                max: MAX_WEIGHT,
            });
        }
        Ok(GroupHandle { weight, ..self })
    }

    /// Spawns `future` as a task of this group.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_with_hint(0, future)
    }

    /// Spawns `future` as a task of this group, with a hint for the queue's
    /// scheduler (see [`QueueHandle::spawn_with_hint`]).
    #[track_caller]
    pub fn spawn_with_hint<F>(&self, hint: u64, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let placement = Placement {
            group: Some((self.id, self.weight)),
            hint,
        };
        self.queue
            .spawn_placed(future, Some(placement), TaskLabel::caller())
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The weight this handle gives the group.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

impl<K: Copy> Clone for GroupHandle<K> {
    fn clone(&self) -> Self {
        GroupHandle {
            queue: self.queue.clone(),
            id: self.id,
            weight: self.weight,
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for GroupHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupHandle")
            .field("queue", &self.queue)
            .field("id", &self.id)
            .field("weight", &self.weight)
            .finish()
    }
}

/// A live group's state in its queue.
#[derive(Debug, Clone, Copy)]
struct GroupState {
    weight: u32,
    live: usize,
    spawned: u64,
    finished: u64,
    /// CPU time, in clock ticks.
    busy: u64,
}

/// The live groups of one queue.
#[derive(Debug, Default)]
pub(crate) struct GroupTable {
    groups: HashMap<GroupId, GroupState, BuildHasherDefault<FxHasher>>,
}

impl GroupTable {
    /// A task joins `group` (creating it) with this weight.
    pub(crate) fn join(&mut self, group: GroupId, weight: u32) {
        let state = self.groups.entry(group).or_insert(GroupState {
            weight,
            live: 0,
            spawned: 0,
            finished: 0,
            busy: 0,
        });
        state.weight = weight;
        state.live += 1;
        state.spawned += 1;
    }

    /// The weight of a live group.
    pub(crate) fn weight(&self, group: GroupId) -> Option<u32> {
        self.groups.get(&group).map(|state| state.weight)
    }

    /// Charges a poll's CPU time to `group`.
    pub(crate) fn charge(&mut self, group: GroupId, ticks: u64) {
        if let Some(state) = self.groups.get_mut(&group) {
            state.busy += ticks;
        }
    }

    /// A task of `group` finished. Returns `true` if it was the group's
    /// last: the group's state is then gone.
    pub(crate) fn leave(&mut self, group: GroupId) -> bool {
        let Some(state) = self.groups.get_mut(&group) else {
            return false;
        };
        state.live -= 1;
        state.finished += 1;
        if state.live == 0 {
            self.groups.remove(&group);
            return true;
        }
        false
    }

    pub(crate) fn snapshot(&self, clock: &Clock) -> Vec<GroupStats> {
        let mut groups: Vec<GroupStats> = self
            .groups
            .iter()
            .map(|(&id, state)| GroupStats {
                id,
                weight: state.weight,
                live_tasks: state.live,
                spawned: state.spawned,
                finished: state.finished,
                busy: clock.to_duration(state.busy),
            })
            .collect();
        groups.sort_by_key(|group| group.id);
        groups
    }
}
