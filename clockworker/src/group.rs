//! Task groups: the handles that spawn into one, from the executor's thread
//! ([`GroupHandle`]) and from any thread ([`GroupSpawner`]).
//!
//! A group's state (weight, live tasks, CPU time) lives in its queue while
//! the group has tasks; see `core/groups.rs`.

use std::fmt;
use std::future::Future;

use crate::eevdf::MAX_WEIGHT;
use crate::error::BuildError;
use crate::join::JoinHandle;
use crate::queue::QueueHandle;
use crate::spawner::Spawner;
use crate::task::{GroupId, Placement, TaskLabel};

/// Checks a group weight; the error names the queue and the group.
fn check_weight(key: &dyn fmt::Debug, group: GroupId, weight: u32) -> Result<u32, BuildError> {
    let name = || format!("{key:?} group {group}");
    if weight == 0 {
        return Err(BuildError::ZeroWeight { key: name() });
    }
    if weight > MAX_WEIGHT {
        return Err(BuildError::WeightTooLarge {
            key: name(),
            weight,
            max: MAX_WEIGHT,
        });
    }
    Ok(weight)
}

/// Spawns tasks into one group of a queue, from the executor's thread.
/// Obtained from [`QueueHandle::group`].
///
/// A group is how a queue's scheduler tells tenants, streams or requests
/// apart: [`WeightedGroups`](crate::sched::WeightedGroups) shares the queue's
/// CPU time between groups by weight, and
/// [`LeastAttainedService`](crate::sched::LeastAttainedService) can count CPU
/// time per group. A task's children spawned onto the same queue join its
/// group. The queue keeps a group's state only while the group has tasks.
///
/// A group keeps the weight it was last given explicitly: spawning through
/// a handle made with [`with_weight`](GroupHandle::with_weight) sets it,
/// spawning through a plain `queue.group(id)` leaves it as it is (1 for a
/// group that has no tasks yet).
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
    /// The weight this handle gives the group, if any.
    weight: Option<u32>,
}

impl<K: Copy + fmt::Debug> GroupHandle<K> {
    pub(crate) fn new(queue: QueueHandle<K>, id: GroupId) -> GroupHandle<K> {
        GroupHandle {
            queue,
            id,
            weight: None,
        }
    }

    /// The same group with this weight: tasks spawned through the returned
    /// handle set the group's weight (which it keeps until it is given
    /// another).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWeight`] or [`BuildError::WeightTooLarge`] (above
    /// [`MAX_WEIGHT`](crate::MAX_WEIGHT)); the `key` names the queue and the
    /// group.
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let queue = executor.queue("q").unwrap();
    /// let error = queue.group(3).with_weight(0).unwrap_err();
    /// assert_eq!(error.to_string(), "queue \"q\" group 3 has weight 0; weights must be at least 1");
    /// ```
    pub fn with_weight(self, weight: u32) -> Result<GroupHandle<K>, BuildError> {
        let weight = check_weight(&self.queue.key(), self.id, weight)?;
        Ok(GroupHandle {
            weight: Some(weight),
            ..self
        })
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

    /// The weight this handle gives the group: the one given to
    /// [`with_weight`](GroupHandle::with_weight), or 1.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(1)
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

/// Spawns `Send` tasks into one group of a queue, from any thread. Obtained
/// from [`Spawner::group`]; `Send + Sync + Clone`. Tasks spawned through it
/// take part in their group exactly as those of a [`GroupHandle`] do, with
/// the same weight rules.
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
/// let tenant = executor.spawner("tenants").unwrap().group(9).with_weight(3).unwrap();
/// assert_eq!((tenant.id().as_u64(), tenant.weight()), (9, 3));
/// let task = std::thread::spawn(move || tenant.spawn(async { 1 })).join().unwrap();
/// assert_eq!(executor.block_on(task).unwrap(), 1);
/// ```
pub struct GroupSpawner<K> {
    spawner: Spawner<K>,
    id: GroupId,
    weight: Option<u32>,
}

impl<K: Copy + fmt::Debug> GroupSpawner<K> {
    pub(crate) fn new(spawner: Spawner<K>, id: GroupId) -> GroupSpawner<K> {
        GroupSpawner {
            spawner,
            id,
            weight: None,
        }
    }

    /// The same group with this weight (see [`GroupHandle::with_weight`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWeight`] or [`BuildError::WeightTooLarge`]; the
    /// `key` names the queue and the group.
    pub fn with_weight(self, weight: u32) -> Result<GroupSpawner<K>, BuildError> {
        let weight = check_weight(&self.spawner.key(), self.id, weight)?;
        Ok(GroupSpawner {
            weight: Some(weight),
            ..self
        })
    }

    /// Spawns `future` as a task of this group.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with_hint(0, future)
    }

    /// Spawns `future` as a task of this group, with a hint for the queue's
    /// scheduler.
    #[track_caller]
    pub fn spawn_with_hint<F>(&self, hint: u64, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let placement = Placement {
            group: Some((self.id, self.weight)),
            hint,
        };
        self.spawner
            .spawn_placed(future, placement, TaskLabel::caller())
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The weight this handle gives the group: the one given to
    /// [`with_weight`](GroupSpawner::with_weight), or 1.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(1)
    }
}

impl<K: Copy> Clone for GroupSpawner<K> {
    fn clone(&self) -> Self {
        GroupSpawner {
            spawner: self.spawner.clone(),
            id: self.id,
            weight: self.weight,
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for GroupSpawner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSpawner")
            .field("spawner", &self.spawner)
            .field("id", &self.id)
            .field("weight", &self.weight)
            .finish()
    }
}
