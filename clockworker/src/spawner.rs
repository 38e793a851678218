//! Spawning `Send` futures onto one queue from any thread.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::group::GroupSpawner;
use crate::join::JoinHandle;
use crate::shared::Shared;
use crate::task::{self, GroupId, Placement, TaskLabel, TaskSpec};

/// Spawns `Send` tasks onto one queue of an executor, from any thread.
///
/// Obtained from [`Executor::spawner`](crate::Executor::spawner) or
/// [`Handle::spawner`](crate::Handle::spawner); `Send + Sync + Clone`
/// (given a `Send + Sync` key, as keys are). A spawn wakes the executor if
/// it is idle; the executor counts the task when it first sees it. Tasks can
/// go into a [group](Spawner::group) and carry a
/// [hint](Spawner::spawn_with_hint), as on the executor's thread. It does
/// not keep the executor alive: after the executor is dropped, `spawn`
/// returns a handle that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled) (the future is
/// dropped on the calling thread).
///
/// # Examples
///
/// ```
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// let spawner = executor.spawner(0).unwrap();
/// let handle = std::thread::spawn(move || spawner.spawn(async { 2 + 2 }))
///     .join()
///     .unwrap();
/// assert_eq!(executor.block_on(handle).unwrap(), 4);
/// ```
pub struct Spawner<K> {
    shared: Arc<Shared>,
    index: u32,
    key: K,
    propagate_panics: bool,
    /// The queue is sheddable: its tasks may move (see `task::Home`).
    movable: bool,
}

impl<K: Copy> Spawner<K> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: u32,
        key: K,
        propagate_panics: bool,
        movable: bool,
    ) -> Self {
        Spawner {
            shared,
            index,
            key,
            propagate_panics,
            movable,
        }
    }

    /// Spawns `future` as a task on this queue.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_placed(future, Placement::default(), TaskLabel::caller())
    }

    /// Spawns `future` with a hint for the queue's scheduler (see
    /// [`QueueHandle::spawn_with_hint`](crate::QueueHandle::spawn_with_hint)).
    ///
    /// ```
    /// use clockworker::{sched::Lifo, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("jobs", 1, Lifo::new())
    ///     .build()
    ///     .unwrap();
    /// let spawner = executor.spawner("jobs").unwrap();
    /// let job = std::thread::spawn(move || spawner.spawn_with_hint(3, async { "hinted" }))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(executor.block_on(job).unwrap(), "hinted");
    /// ```
    #[track_caller]
    pub fn spawn_with_hint<F>(&self, hint: u64, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let placement = Placement { group: None, hint };
        self.spawn_placed(future, placement, TaskLabel::caller())
    }

    /// A `Send + Sync` handle that spawns tasks into group `id` of this
    /// queue, from any thread (see [`QueueHandle::group`](crate::QueueHandle::group)).
    ///
    /// ```
    /// use clockworker::{sched::WeightedGroups, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("tenants", 1, WeightedGroups::new())
    ///     .build()
    ///     .unwrap();
    /// let gold = executor.spawner("tenants").unwrap().group(1).with_weight(4).unwrap();
    /// let task = std::thread::spawn(move || gold.spawn(async { "gold" })).join().unwrap();
    /// assert_eq!(executor.block_on(task).unwrap(), "gold");
    /// ```
    pub fn group(&self, id: impl Into<GroupId>) -> GroupSpawner<K>
    where
        K: fmt::Debug,
    {
        GroupSpawner::new(self.clone(), id.into())
    }

    pub(crate) fn spawn_placed<F>(
        &self,
        future: F,
        placement: Placement,
        label: TaskLabel,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let spec = TaskSpec {
            shared: self.shared.clone(),
            queue: self.index,
            label,
            now: self.shared.clock.now(),
            remote: true,
            placement,
            propagate_panics: self.propagate_panics,
            movable: self.movable,
        };
        let (runnable, handle) = spec.build_send(future);
        // A closed executor still takes its own tasks' children.
        let own_task = || crate::context::in_own_task(&self.shared);
        if let Err(runnable) = self.shared.inject_spawn(runnable, own_task) {
            // The executor is gone or closed: drop the (`Send`) future here.
            let _ = task::drop_task(runnable);
        }
        handle
    }

    /// The same spawner, whose tasks never move to another executor (a
    /// pool's `spawn_on` shell must run where it was sent).
    pub(crate) fn fixed(&self) -> Spawner<K> {
        Spawner {
            movable: false,
            ..self.clone()
        }
    }

    /// The queue's key.
    pub fn key(&self) -> K {
        self.key
    }

    /// Whether the executor has been closed
    /// ([`Handle::close`](crate::Handle::close)) or dropped: spawns are then
    /// cancelled (except, on a closed executor that still runs, those made
    /// from its own tasks).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let spawner = executor.spawner("q").unwrap();
    /// assert_eq!(spawner.key(), "q");
    /// assert!(!spawner.is_closed());
    /// drop(executor);
    /// assert!(spawner.is_closed());
    /// let late = spawner.spawn(async { 1 });
    /// assert!(futures_lite::future::block_on(late).unwrap_err().is_cancelled());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closing()
    }
}

impl<K: Copy> Clone for Spawner<K> {
    fn clone(&self) -> Self {
        Spawner {
            shared: self.shared.clone(),
            index: self.index,
            key: self.key,
            propagate_panics: self.propagate_panics,
            movable: self.movable,
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Spawner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("key", &self.key)
            .field("closed", &self.shared.is_closing())
            .finish()
    }
}
