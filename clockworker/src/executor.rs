//! The executor handle, queue handles and spawners.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use async_task::{Builder, WithInfo};

use crate::context;
use crate::core::{self, Core};
use crate::group::GroupHandle;
use crate::join::JoinHandle;
use crate::key::KeyTable;
use crate::run::{self, RunUntil};
use crate::sched::GroupId;
use crate::shared::Shared;
use crate::stats::{ExecutorStats, QueueStats};
use crate::task::{Header, Placement, TaskFuture, TaskLabel};

/// A single-threaded executor with weighted task queues.
///
/// Built by [`ExecutorBuilder`](crate::ExecutorBuilder). `Executor` is a
/// cheap handle: clones share the same executor, and the executor lives until
/// the last clone is dropped. It is `!Send`; everything that touches it runs
/// on the thread that built it.
///
/// Tasks are spawned onto queues through [`QueueHandle`]s (any future, on
/// this thread) or [`Spawner`]s (`Send` futures, from any thread). They run
/// while [`run_until`](Executor::run_until) (inside any host runtime) or
/// [`block_on`](Executor::block_on) (with no host runtime) drives the
/// executor. Tasks spawned before either starts wait in their queues; tasks
/// still pending when a run returns stay for the next run.
///
/// Dropping the last handle drops every remaining task's future on this
/// thread, parked tasks included, and every outstanding [`JoinHandle`] then
/// resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled).
/// `QueueHandle`s held by tasks do not keep the executor alive (an
/// `Executor` clone moved into one of its own tasks does, until that task
/// ends).
///
/// # Examples
///
/// ```
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("fg", 8)
///     .with_queue("bg", 1)
///     .build()
///     .unwrap();
/// let bg = executor.queue("bg").unwrap();
/// let sum = executor.block_on(async move {
///     let parts: Vec<_> = (0..4).map(|i| bg.spawn(async move { i * 10 })).collect();
///     let mut sum = 0;
///     for part in parts {
///         sum += part.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 60);
/// assert_eq!(executor.queue_stats("bg").unwrap().completed, 4);
/// ```
pub struct Executor<K> {
    inner: Rc<Inner<K>>,
}

struct Inner<K> {
    core: Rc<Core>,
    keys: Rc<KeyTable<K>>,
}

impl<K> Drop for Inner<K> {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

impl<K> Clone for Executor<K> {
    fn clone(&self) -> Self {
        Executor {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> Executor<K> {
    pub(crate) fn new(core: Rc<Core>, keys: Rc<KeyTable<K>>) -> Executor<K> {
        Executor {
            inner: Rc::new(Inner { core, keys }),
        }
    }

    #[inline]
    fn index(&self, key: K) -> Result<u32, UnknownQueue> {
        match self.inner.keys.find(&key) {
            Some(index) => Ok(index),
            None => Err(self.unknown(key)),
        }
    }

    #[cold]
    #[inline(never)]
    fn unknown(&self, key: K) -> UnknownQueue {
        UnknownQueue::new(format!("{key:?}"), self.inner.core.queue_names())
    }

    /// A handle that spawns onto the queue with this key.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    #[inline]
    pub fn queue(&self, key: K) -> Result<QueueHandle<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(QueueHandle {
            core: Rc::downgrade(&self.inner.core),
            index,
            key,
        })
    }

    /// A `Send + Sync` handle that spawns `Send` futures onto the queue with
    /// this key from any thread.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    pub fn spawner(&self, key: K) -> Result<Spawner<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(Spawner {
            shared: self.inner.core.shared.clone(),
            index,
            propagate_panics: self.inner.core.propagate_panics(),
            _key: PhantomData,
        })
    }

    /// Runs the executor's tasks until `future` completes, inside whatever
    /// runtime polls the returned future (tokio, smol, `block_on`s, ...), and
    /// returns `future`'s output.
    ///
    /// `future` itself is polled on this thread when it is woken: at the end
    /// of the running queue's turn or after at most 64 task polls, whichever
    /// comes first (so a future that awaits many join handles in turn does
    /// not cost a round trip per task). While tasks stay runnable, the returned future hands
    /// control back to its host at least every
    /// [host-yield interval](crate::ExecutorBuilder::with_host_yield_interval)
    /// so that the host's IO and timers progress; when nothing is runnable it
    /// returns `Pending` and is woken by any spawn or wake-up, from any
    /// thread.
    ///
    /// # Panics
    ///
    /// Polling the returned future panics if this executor is already
    /// running on this thread (called from one of its own tasks, or from the
    /// future of another `run_until`/`block_on` of it). With the default
    /// panic mode, a task's panic resumes out of this future's poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() {
    ///     let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    ///     let queue = executor.queue(0).unwrap();
    ///     let out = executor
    ///         .run_until(async {
    ///             tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///             queue.spawn(async { 7 }).await
    ///         })
    ///         .await;
    ///     assert_eq!(out.unwrap(), 7);
    /// }
    /// ```
    pub fn run_until<F: Future>(&self, future: F) -> RunUntil<'_, F> {
        RunUntil::new(&self.inner.core, future, true)
    }

    /// Runs the executor's tasks on this thread until `future` completes,
    /// with no host runtime: the thread parks when nothing is runnable and
    /// is unparked by any spawn or wake-up, from any thread.
    ///
    /// Futures that need a particular runtime's reactor (tokio's IO or
    /// timers, say) do not work here; use [`run_until`](Executor::run_until)
    /// inside that runtime instead.
    ///
    /// # Panics
    ///
    /// Panics if this executor is already running on this thread, and, in
    /// the default panic mode, resumes a task's panic.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        run::block_on(RunUntil::new(&self.inner.core, future, false))
    }

    /// A snapshot of every queue's counters.
    pub fn stats(&self) -> ExecutorStats<K> {
        let core = &self.inner.core;
        ExecutorStats {
            queues: self
                .inner
                .keys
                .keys()
                .iter()
                .enumerate()
                .map(|(index, &key)| core.queue_stats(index, key))
                .collect(),
            live_tasks: core.live_tasks(),
            host_yields: core.host_yields(),
            idle_waits: core.idle_waits(),
            remote_schedules: core.shared.remote_schedules(),
        }
    }

    /// A snapshot of one queue's counters.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    pub fn queue_stats(&self, key: K) -> Result<QueueStats<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(self.inner.core.queue_stats(index as usize, key))
    }

    /// The configured queue keys, in order.
    pub fn keys(&self) -> &[K] {
        self.inner.keys.keys()
    }
}

impl<K: fmt::Debug> fmt::Debug for Executor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &self.inner.core;
        f.debug_struct("Executor")
            .field("queues", &self.inner.keys.keys())
            .field("live_tasks", &core.live_tasks())
            .field("runnable", &core.runnable_tasks())
            .finish()
    }
}

/// Spawns tasks onto one queue of an executor, from the executor's thread.
///
/// Obtained from [`Executor::queue`]. It does not keep the executor alive:
/// once the executor is dropped, `spawn` returns a handle that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled) and drops the
/// future unpolled.
pub struct QueueHandle<K> {
    core: Weak<Core>,
    index: u32,
    key: K,
}

impl<K: Copy> QueueHandle<K> {
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
    /// it.
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
            .map(|core| core.inherited(self.index).group);
        let placement = Placement {
            group: group.flatten(),
            hint,
        };
        self.spawn_placed(future, Some(placement), label)
    }

    /// A handle that spawns tasks into group `id` of this queue, with weight
    /// 1 (see [`GroupHandle::with_weight`]).
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

/// Spawns `Send` tasks onto one queue of an executor, from any thread.
///
/// Obtained from [`Executor::spawner`]; `Send + Sync + Clone`. A spawn wakes
/// the executor if it is idle. After the executor is dropped, `spawn`
/// returns a handle that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled).
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
    propagate_panics: bool,
    _key: PhantomData<fn() -> K>,
}

impl<K> Spawner<K> {
    /// Spawns `future` as a task on this queue.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let header = Header::new(
            self.shared.clone(),
            self.index,
            TaskLabel::caller(),
            self.shared.clock.now(),
            true,
            Placement::default(),
        );
        let id = header.id;
        let propagate = self.propagate_panics;
        let (runnable, task) = Builder::new().metadata(header).spawn(
            move |_| TaskFuture::new(future, id, propagate),
            WithInfo(context::schedule),
        );
        let handle = JoinHandle::new(task);
        if let Err(runnable) = self.shared.inject_new(runnable) {
            // The executor is gone: drop the (`Send`) future here.
            crate::task::run_aborted(runnable);
        }
        handle
    }

    /// Whether the executor has been dropped (spawns are then cancelled).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<K> Clone for Spawner<K> {
    fn clone(&self) -> Self {
        Spawner {
            shared: self.shared.clone(),
            index: self.index,
            propagate_panics: self.propagate_panics,
            _key: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Spawner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("queue", &self.index)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// No queue has the requested key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownQueue {
    /// Boxed so that `Result<QueueHandle<K>, UnknownQueue>` stays small on
    /// the lookup path.
    inner: Box<UnknownQueueInner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UnknownQueueInner {
    key: String,
    known: Vec<String>,
}

impl UnknownQueue {
    pub(crate) fn new(key: String, known: Vec<String>) -> UnknownQueue {
        UnknownQueue {
            inner: Box::new(UnknownQueueInner { key, known }),
        }
    }

    /// The key that was asked for, as its `Debug` output.
    pub fn key(&self) -> &str {
        &self.inner.key
    }
}

impl fmt::Display for UnknownQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no queue with key {}; the executor's queues are [{}]",
            self.inner.key,
            self.inner.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownQueue {}
