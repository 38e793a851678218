//! Spawning onto one queue from the executor's thread.

use std::fmt;
use std::future::Future;
use std::rc::Weak;

use crate::core::{self, Core};
use crate::error::WeightError;
use crate::group::GroupHandle;
use crate::join::JoinHandle;
use crate::task::{GroupId, Placement, TaskLabel};

/// Spawns tasks onto one queue of an executor, from the executor's thread.
///
/// Obtained from [`Executor::queue`](crate::Executor::queue) or
/// [`Handle::queue`](crate::Handle::queue); cheap to clone, `!Send`. It does
/// not keep the executor alive: once the executor is dropped, `spawn`
/// returns a handle that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled) and drops the future
/// unpolled.
///
/// # Examples
///
/// ```
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("bg", 1).build().unwrap();
/// let bg = executor.queue("bg").unwrap();
/// // Spawned before the executor runs: it waits in its queue.
/// let task = bg.spawn(async { "done" });
/// assert_eq!(bg.key(), "bg");
/// assert_eq!(executor.block_on(task).unwrap(), "done");
///
/// drop(executor);
/// // The executor is gone: the future is dropped unpolled.
/// let late = bg.spawn(async { "never" });
/// assert!(futures_lite::future::block_on(late).unwrap_err().is_cancelled());
/// ```
pub struct QueueHandle<K> {
    core: Weak<Core>,
    index: u32,
    key: K,
}

impl<K: Copy> QueueHandle<K> {
    pub(crate) fn new(core: Weak<Core>, index: u32, key: K) -> QueueHandle<K> {
        QueueHandle { core, index, key }
    }

    /// Spawns `future` as a task on this queue. The future need not be
    /// `Send`. The task starts running the next time the executor runs and
    /// picks this queue; its spawn site is recorded (see
    /// [`JoinHandle::label`]). Spawned from a task of this same queue, the
    /// new task joins the spawning task's group.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_placed(future, None, TaskLabel::caller())
    }

    /// Spawns `future` with a hint for the queue's scheduler: a number its
    /// policy reads through [`ReadyTask::hint`](crate::sched::ReadyTask::hint),
    /// such as a deadline or a priority. The default FIFO scheduler ignores
    /// it. Like [`spawn`](QueueHandle::spawn), the task joins the spawning
    /// task's group when spawned from a task of this queue.
    ///
    /// See [`TaskScheduler`](crate::sched::TaskScheduler) for a scheduler
    /// that orders tasks by their hints.
    #[track_caller]
    pub fn spawn_with_hint<F>(&self, hint: u64, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let label = TaskLabel::caller();
        let group = self
            .core
            .upgrade()
            .and_then(|core| core.inherited(self.index).group);
        let placement = Placement { group, hint };
        self.spawn_placed(future, Some(placement), label)
    }

    /// A handle that spawns tasks into group `id` of this queue. The group
    /// keeps its weight (1 for a new group) unless the handle is given one
    /// with [`GroupHandle::with_weight`].
    ///
    /// ```
    /// use clockworker::{sched::WeightedGroups, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("tenants", 1, WeightedGroups::new())
    ///     .build()
    ///     .unwrap();
    /// let tenants = executor.queue("tenants").unwrap();
    /// let acme = tenants.group(7);
    /// assert_eq!(acme.id().as_u64(), 7);
    /// assert_eq!(executor.block_on(acme.spawn(async { 1 })).unwrap(), 1);
    /// ```
    pub fn group(&self, id: impl Into<GroupId>) -> GroupHandle<K>
    where
        K: fmt::Debug,
    {
        GroupHandle::new(self.clone(), id.into())
    }

    pub(crate) fn spawn_placed<F>(
        &self,
        future: F,
        placement: Option<Placement>,
        label: TaskLabel,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match self.core.upgrade() {
            Some(core) => core.spawn_local(self.index, future, label, placement),
            None => core::cancelled(self.index, future, label),
        }
    }

    /// Gives this queue a new weight, from the next scheduling decision on
    /// (see [`Handle::set_weight`](crate::Handle::set_weight)).
    ///
    /// # Errors
    ///
    /// [`WeightError::Zero`] or [`WeightError::TooLarge`] for a weight out
    /// of range; [`WeightError::ExecutorGone`] once the executor has been
    /// dropped.
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, WeightError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("bg", 1).build().unwrap();
    /// let bg = executor.queue("bg").unwrap();
    /// bg.set_weight(4).unwrap();
    /// assert_eq!(executor.queue_stats("bg").unwrap().weight, 4);
    /// drop(executor);
    /// assert_eq!(bg.set_weight(2), Err(WeightError::ExecutorGone));
    /// ```
    pub fn set_weight(&self, weight: u32) -> Result<(), WeightError>
    where
        K: fmt::Debug,
    {
        WeightError::check(&self.key, weight)?;
        match self.core.upgrade() {
            Some(core) => core.set_weight(self.index, weight),
            None => Err(WeightError::ExecutorGone),
        }
    }

    /// The queue's key.
    pub fn key(&self) -> K {
        self.key
    }
}

impl<K: Copy> Clone for QueueHandle<K> {
    fn clone(&self) -> Self {
        QueueHandle {
            core: self.core.clone(),
            index: self.index,
            key: self.key,
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for QueueHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueHandle")
            .field("key", &self.key)
            .field("executor_alive", &(self.core.strong_count() > 0))
            .finish()
    }
}
