//! The live task groups of one queue: each group's weight, live task count
//! and CPU time, kept while the group has tasks and forgotten with its last
//! one.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use crate::clock::Clock;
use crate::stats::GroupStats;
use crate::task::GroupId;

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
    /// A task joins `group`, creating it (with weight 1 unless `weight`
    /// says otherwise). A group keeps its weight until a task joins with an
    /// explicit one.
    pub(crate) fn join(&mut self, group: GroupId, weight: Option<u32>) {
        let state = self.groups.entry(group).or_insert(GroupState {
            weight: weight.unwrap_or(1),
            live: 0,
            spawned: 0,
            finished: 0,
            busy: 0,
        });
        if let Some(weight) = weight {
            state.weight = weight;
        }
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

    /// Gives memory back after a burst of groups.
    pub(crate) fn trim(&mut self) {
        if let Some(room) =
            super::registry::should_shrink(self.groups.len(), self.groups.capacity())
        {
            self.groups.shrink_to(room);
        }
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
