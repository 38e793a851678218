//! The executor: the owner of a set of weighted queues and their tasks.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;

use std::time::Duration;

use crate::close::{Drain, Shutdown};
use crate::error::{UnknownQueue, WeightError};
use crate::handle::Handle;
use crate::queue::QueueHandle;
use crate::run::{self, RunUntil};
use crate::spawner::Spawner;
use crate::stats::{ExecutorStats, QueueStats};

/// A single-threaded executor with weighted task queues.
///
/// Built by [`ExecutorBuilder`](crate::ExecutorBuilder). `Executor` owns the
/// executor and its tasks; clones are cheap and share it, and the executor
/// lives until the last clone is dropped. It is `!Send`: everything that
/// touches it runs on the thread that built it.
///
/// Tasks are spawned onto queues through [`QueueHandle`]s (any future, on
/// this thread) or [`Spawner`]s (`Send` futures, from any thread). They run
/// while [`run_until`](Executor::run_until) (inside any host runtime) or
/// [`block_on`](Executor::block_on) (with no host runtime) drives the
/// executor. Tasks spawned before either starts wait in their queues; tasks
/// still pending when a run returns stay for the next run.
///
/// To reach the executor without owning it, use a [`Handle`]
/// ([`executor.handle()`](Executor::handle), or
/// [`Handle::current()`](Handle::current) from inside a task): handles, queue
/// handles and spawners never keep the tasks alive.
///
/// Dropping the last `Executor` drops every remaining task's future on this
/// thread, parked tasks included, and every outstanding
/// [`JoinHandle`](crate::JoinHandle) then resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled). (An `Executor`
/// clone moved into one of its own tasks keeps the executor alive until that
/// task ends; move a [`Handle`] instead.)
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
    inner: Rc<Owner<K>>,
}

/// The owning part: dropping the last one shuts the executor down.
struct Owner<K> {
    handle: Handle<K>,
}

impl<K> Drop for Owner<K> {
    fn drop(&mut self) {
        self.handle.core().shutdown();
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
    pub(crate) fn new(handle: Handle<K>) -> Executor<K> {
        Executor {
            inner: Rc::new(Owner { handle }),
        }
    }

    /// A non-owning handle to this executor: it reaches the executor's
    /// queues, spawners and stats without keeping its tasks alive (two
    /// reference-count increments; unlike tokio's `Runtime::handle`, it is
    /// returned by value, so it can outlive this `Executor` without a
    /// `clone`).
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("bg", 1).build().unwrap();
    /// let handle = executor.handle();
    /// let bg = handle.queue("bg").unwrap();
    /// assert_eq!(executor.block_on(bg.spawn(async { 5 })).unwrap(), 5);
    /// drop(executor);
    /// assert!(handle.is_closed());
    /// ```
    pub fn handle(&self) -> Handle<K> {
        self.inner.handle.clone()
    }

    /// A handle that spawns onto the queue with this key, from this thread
    /// (see [`Handle::queue`]).
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    #[inline]
    pub fn queue(&self, key: K) -> Result<QueueHandle<K>, UnknownQueue> {
        self.inner.handle.queue(key)
    }

    /// A `Send + Sync` handle that spawns `Send` futures onto the queue with
    /// this key from any thread (see [`Handle::spawner`]).
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    pub fn spawner(&self, key: K) -> Result<Spawner<K>, UnknownQueue> {
        self.inner.handle.spawner(key)
    }

    /// Runs the executor's tasks until `future` completes, inside whatever
    /// runtime polls the returned future (tokio, smol, `block_on`s, ...), and
    /// returns `future`'s output.
    ///
    /// `future` itself is polled on this thread when it is woken: at the end
    /// of the running queue's turn or after at most 64 task polls, whichever
    /// comes first (so a future that awaits many join handles in turn does
    /// not cost a round trip per task). While tasks stay runnable, the
    /// returned future hands control back to its host at least every
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
        RunUntil::new(self.inner.handle.core(), future, true)
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
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let spawner = executor.spawner(0).unwrap();
    /// // Woken from another thread while parked.
    /// let out = executor.block_on(async move {
    ///     let handle = std::thread::spawn(move || spawner.spawn(async { 6 * 7 }))
    ///         .join()
    ///         .unwrap();
    ///     handle.await.unwrap()
    /// });
    /// assert_eq!(out, 42);
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        run::block_on(RunUntil::new(self.inner.handle.core(), future, false))
    }

    /// Closes the executor to new work from outside its tasks (see
    /// [`Handle::close`]).
    pub fn close(&self) {
        self.inner.handle.close();
    }

    /// A future that is ready once every task has finished, running the
    /// executor meanwhile (see [`Handle::drain`]).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let q = executor.queue("q").unwrap();
    /// let child_q = q.clone();
    /// q.spawn(async move {
    ///     clockworker::yield_now().await;
    ///     child_q.spawn(async {});
    /// });
    /// futures_lite::future::block_on(executor.drain());
    /// assert_eq!(executor.stats().completed(), 2);
    /// ```
    pub fn drain(&self) -> Drain<'_> {
        self.inner.handle.drain()
    }

    /// Closes, drains for up to `timeout`, cancels what is left and reports
    /// (see [`Handle::shutdown`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let q = executor.queue("q").unwrap();
    /// q.spawn(async { tokio::time::sleep(Duration::from_millis(1)).await });
    /// q.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
    /// let report = executor.shutdown(Duration::from_millis(50)).await;
    /// assert_eq!(report.queues[0].completed, 1);
    /// assert_eq!(report.queues[0].cut_off, 1);
    /// assert!(executor.handle().is_closed());
    /// # }
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Shutdown<'_, K> {
        self.inner.handle.shutdown(timeout)
    }

    /// A snapshot of every queue's counters (see [`Handle::stats`]).
    pub fn stats(&self) -> ExecutorStats<K> {
        self.inner.handle.stats()
    }

    /// A snapshot of one queue's counters (see [`Handle::queue_stats`]).
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    pub fn queue_stats(&self, key: K) -> Result<QueueStats<K>, UnknownQueue> {
        self.inner.handle.queue_stats(key)
    }

    /// Gives the queue with this key a new weight, from the next
    /// scheduling decision on (see [`Handle::set_weight`]).
    ///
    /// # Errors
    ///
    /// [`WeightError`]: an unknown key, or a weight of zero or above
    /// [`MAX_WEIGHT`](crate::MAX_WEIGHT).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new()
    ///     .with_queue("fg", 8)
    ///     .with_queue("bg", 1)
    ///     .build()
    ///     .unwrap();
    /// // Night time: the batch queue gets the larger share.
    /// executor.set_weight("fg", 1).unwrap();
    /// executor.set_weight("bg", 8).unwrap();
    /// assert_eq!(executor.queue_stats("bg").unwrap().weight, 8);
    /// ```
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), WeightError> {
        self.inner.handle.set_weight(key, weight)
    }

    /// The configured queue keys, in order.
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new()
    ///     .with_queue("fg", 8)
    ///     .with_queue("bg", 1)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(executor.keys(), ["fg", "bg"]);
    /// ```
    pub fn keys(&self) -> &[K] {
        self.inner.handle.keys()
    }
}

impl<K: fmt::Debug> fmt::Debug for Executor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handle = &self.inner.handle;
        let core = handle.core();
        f.debug_struct("Executor")
            .field("queues", &handle.key_list())
            .field("live_tasks", &core.live_tasks())
            .field("runnable", &core.runnable_tasks())
            .finish()
    }
}
