//! A non-owning handle to an executor, and finding the one running on this
//! thread.

use std::fmt;
use std::hash::Hash;
use std::rc::Rc;

use std::time::Duration;

use crate::close::{Closed, Drain, Shutdown};
use crate::context;
use crate::core::Core;
use crate::error::{TryCurrentError, UnknownQueue, WeightError};
use crate::key::KeyTable;
use crate::queue::QueueHandle;
use crate::spawner::Spawner;
use crate::stats::{ExecutorStats, QueueStats};

/// A handle to an executor that does not own it: it reaches the executor's
/// queues, spawners and stats, and never keeps its tasks alive.
///
/// Get one from [`Executor::handle`](crate::Executor::handle), or from inside
/// the executor with [`Handle::current`] (in a task, in the future passed to
/// `run_until`/`block_on`, in a `#[clockworker::main]` body). It is cheap to
/// clone and `!Send`, like the executor.
///
/// Only the [`Executor`](crate::Executor) owns the tasks: when its last clone
/// is dropped, every task's future is dropped, even while handles remain
/// (held by those very tasks, say). A handle then still answers, with what
/// it knew: [`is_closed`](Handle::is_closed) is `true`, [`stats`](Handle::stats)
/// return the final counters, and queue handles and spawners obtained from
/// it spawn tasks that resolve to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled) without being
/// polled. This is tokio's model (a `Runtime` owns, a `Handle` reaches).
///
/// # Examples
///
/// ```
/// use clockworker::{ExecutorBuilder, Handle};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("fg", 8)
///     .with_queue("bg", 1)
///     .build()
///     .unwrap();
/// let fg = executor.queue("fg").unwrap();
/// let out = executor.block_on(fg.spawn(async {
///     // Deep inside a task: no executor passed around.
///     let handle = Handle::<&str>::current();
///     let bg = handle.queue("bg").unwrap();
///     bg.spawn(async { 40 }).await.unwrap() + 2
/// }));
/// assert_eq!(out.unwrap(), 42);
/// assert_eq!(executor.stats().queue("bg").unwrap().completed, 1);
/// ```
pub struct Handle<K> {
    core: Rc<Core>,
    keys: Rc<KeyTable<K>>,
}

impl<K> Handle<K> {
    pub(crate) fn new(core: Rc<Core>, keys: Rc<KeyTable<K>>) -> Handle<K> {
        Handle { core, keys }
    }

    pub(crate) fn core(&self) -> &Rc<Core> {
        &self.core
    }

    pub(crate) fn key_list(&self) -> &[K] {
        self.keys.keys()
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> Handle<K> {
    /// The handle of the executor running on this thread.
    ///
    /// # Panics
    ///
    /// Panics if no clockworker executor is running on this thread (outside
    /// its tasks and the future of its `run_until`/`block_on`), or if the
    /// running executor's keys are not of type `K`. Use
    /// [`try_current`](Handle::try_current) to get an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::{spawn, Handle};
    ///
    /// #[clockworker::main(queues(fg = 8, bg = 1))]
    /// async fn main() {
    ///     let handle = Handle::<&str>::current();
    ///     assert_eq!(handle.keys(), ["fg", "bg"]);
    ///     spawn!(bg, async {}).await.unwrap();
    ///     assert_eq!(handle.queue_stats("bg").unwrap().completed, 1);
    /// }
    /// ```
    #[track_caller]
    pub fn current() -> Handle<K> {
        match Self::try_current() {
            Ok(handle) => handle,
            Err(error) => panic!("clockworker: {error}"),
        }
    }

    /// The handle of the executor running on this thread, or why there is
    /// none.
    ///
    /// Runs of different executors nest (a task of one may `block_on`
    /// another); the innermost one is current.
    ///
    /// # Errors
    ///
    /// [`TryCurrentError`]: no executor is running on this thread
    /// ([`is_missing`](TryCurrentError::is_missing)), or the running one's
    /// keys are of another type ([`is_wrong_key_type`](TryCurrentError::is_wrong_key_type)).
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, Handle};
    ///
    /// assert!(Handle::<u8>::try_current().unwrap_err().is_missing());
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// executor.block_on(async {
    ///     assert!(Handle::<u8>::try_current().is_ok());
    ///     assert!(Handle::<&str>::try_current().unwrap_err().is_wrong_key_type());
    /// });
    /// ```
    pub fn try_current() -> Result<Handle<K>, TryCurrentError> {
        let wanted = std::any::type_name::<K>();
        let core = context::current().ok_or_else(|| TryCurrentError::missing(wanted))?;
        let keys = core
            .key_table::<K>()
            .ok_or_else(|| TryCurrentError::wrong_key_type(wanted))?;
        Ok(Handle { core, keys })
    }

    #[inline]
    fn index(&self, key: K) -> Result<u32, UnknownQueue> {
        match self.keys.find(&key) {
            Some(index) => Ok(index),
            None => Err(self.core.unknown(&key)),
        }
    }

    /// A handle that spawns onto the queue with this key, from this thread.
    /// Any future works, `!Send` ones included.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key; its message names the
    /// executor's queues.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue(1, 1).build().unwrap();
    /// let handle = executor.handle();
    /// assert!(handle.queue(1).is_ok());
    /// let error = handle.queue(2).unwrap_err();
    /// assert_eq!(error.to_string(), "no queue with key 2; the executor's queues are [1]");
    /// ```
    #[inline]
    pub fn queue(&self, key: K) -> Result<QueueHandle<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(QueueHandle::new(Rc::downgrade(&self.core), index, key))
    }

    /// A `Send + Sync` handle that spawns `Send` futures onto the queue with
    /// this key from any thread.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    pub fn spawner(&self, key: K) -> Result<Spawner<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(Spawner::new(
            self.core.shared.clone(),
            index,
            key,
            self.core.propagate_panics(),
            self.core.is_sheddable(index),
        ))
    }

    /// A snapshot of every queue's counters and the executor's own (see
    /// [`ExecutorStats`]). After the executor is dropped, the final ones.
    pub fn stats(&self) -> ExecutorStats<K> {
        let core = &self.core;
        let counters = core.counters();
        ExecutorStats {
            queues: self
                .keys
                .keys()
                .iter()
                .enumerate()
                .map(|(index, &key)| core.queue_stats(index, key))
                .collect(),
            live_tasks: core.live_tasks(),
            host_yields: counters.host_yields.get(),
            idle_waits: counters.idle_waits.get(),
            remote_schedules: core.shared.remote_schedules(),
            host_hold: counters.host_holds.snapshot(core.turn.clock()),
            stall_handler_panics: core.watch.as_ref().map_or(0, |w| w.handler_panics()),
        }
    }

    /// A snapshot of one queue's counters.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("bg", 3).build().unwrap();
    /// let bg = executor.queue("bg").unwrap();
    /// executor.block_on(async { bg.spawn(async {}).await.unwrap() });
    /// let stats = executor.handle().queue_stats("bg").unwrap();
    /// assert_eq!((stats.weight, stats.spawned, stats.completed), (3, 1, 1));
    /// ```
    pub fn queue_stats(&self, key: K) -> Result<QueueStats<K>, UnknownQueue> {
        let index = self.index(key)?;
        Ok(self.core.queue_stats(index as usize, key))
    }

    /// Gives the queue with this key a new weight (`1..=`[`MAX_WEIGHT`]),
    /// from the next scheduling decision on, while its tasks run.
    ///
    /// Between turns the change is immediate. During a turn (called from a
    /// task, or from the future of `run_until`/`block_on` while a queue's
    /// turn is in progress), the running turn ends at the next poll
    /// boundary and the new weight applies before the next queue is
    /// picked. The scheduler keeps every queue's lag across the change, as
    /// Linux's EEVDF does when it reweights a task: a queue neither gains
    /// nor loses credit by being reweighted, and from then on CPU time
    /// splits by the new weights. [`QueueStats::weight`] reports the new
    /// weight at once. Setting the weight a queue already has changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`WeightError::UnknownQueue`] if no queue has this key,
    /// [`WeightError::Zero`] or [`WeightError::TooLarge`] for a weight out
    /// of range, [`WeightError::ExecutorGone`] once the executor has been
    /// dropped. Nothing changes then; it never panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, Handle};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("fg", 8)
    ///     .with_queue("bg", 1)
    ///     .build()
    ///     .unwrap();
    /// let bg = executor.queue("bg").unwrap();
    /// executor.block_on(bg.spawn(async {
    ///     // A batch that turns urgent: from inside one of its own tasks.
    ///     Handle::<&str>::current().set_weight("bg", 16).unwrap();
    /// }))
    /// .unwrap();
    /// assert_eq!(executor.queue_stats("bg").unwrap().weight, 16);
    /// assert!(executor.handle().set_weight("bg", 0).is_err());
    /// ```
    ///
    /// [`MAX_WEIGHT`]: crate::MAX_WEIGHT
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), WeightError> {
        let index = self.index(key)?;
        WeightError::check(&key, weight)?;
        self.core.set_weight(index, weight)
    }

    /// The configured queue keys, in order.
    pub fn keys(&self) -> &[K] {
        self.keys.keys()
    }

    /// Whether the executor has been closed ([`close`](Handle::close)) or
    /// dropped: new spawns from outside its tasks are cancelled.
    pub fn is_closed(&self) -> bool {
        self.core.is_closing()
    }

    /// Closes the executor to new work: from now on, spawns that do not
    /// come from one of its own tasks get a handle that resolves to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled) (through a
    /// queue handle, a [`Spawner`] on any thread, `spawn!` in its
    /// `run_until` future, a job's next run). Everything already spawned
    /// runs on, and children that its tasks spawn while they finish are
    /// taken, so that a task that spawns and awaits a child still finishes.
    /// Periodic jobs stop scheduling runs; a run in progress finishes.
    ///
    /// Closing twice, or a dropped executor, does nothing. Pair it with
    /// [`drain`](Handle::drain), or use [`shutdown`](Handle::shutdown),
    /// which closes, drains and cancels what is left at a deadline.
    /// Long-lived tasks (an accept loop, a subscription) can end themselves
    /// by awaiting [`closed`](Handle::closed).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let q = executor.queue("q").unwrap();
    /// let before = q.spawn(async { 1 });
    /// executor.handle().close();
    /// let after = q.spawn(async { 2 });
    /// executor.block_on(executor.drain());
    /// assert_eq!(futures_lite::future::block_on(before).unwrap(), 1);
    /// assert!(futures_lite::future::block_on(after).unwrap_err().is_cancelled());
    /// ```
    pub fn close(&self) {
        self.core.close();
    }

    /// A future that is ready once the executor is closed
    /// ([`close`](Handle::close), [`shutdown`](Handle::shutdown)) or
    /// dropped: what a long-lived task awaits, next to its work, to end
    /// itself during a graceful close.
    pub fn closed(&self) -> Closed {
        Closed::new(self.core.clone())
    }

    /// A future that is ready once every task of the executor has finished
    /// (none is alive, none waits to arrive from another thread). It does
    /// not close the executor: pair it with [`close`](Handle::close) for a
    /// graceful stop.
    ///
    /// Awaited outside the executor, it runs the executor (as
    /// [`run_until`](crate::Executor::run_until) does, in whatever host
    /// polls it). Awaited inside it (in its `run_until` future), it only
    /// waits. Awaited in one of the executor's own tasks, it is ready once
    /// that task is the last one alive.
    pub fn drain(&self) -> Drain<'_> {
        Drain::new(&self.core)
    }

    /// Shuts the executor down gracefully: [closes](Handle::close) it,
    /// [drains](Handle::drain) it for up to `timeout`, then cancels every
    /// task still alive (drops its future; its handle resolves to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled)), and reports
    /// what happened per queue. Runs the executor meanwhile, or only waits
    /// if it is already running (see [`drain`](Handle::drain)).
    ///
    /// Afterwards the executor is shut down for good (as if dropped):
    /// spawns are cancelled, its stats stay readable. A second shutdown
    /// reports the same totals, with nothing cut off.
    ///
    /// Awaited in one of the executor's own tasks, it cannot cancel the
    /// others (it runs inside one of them): it closes and waits for them
    /// until the deadline, and the report says whether they finished.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    /// let q = executor.queue("q").unwrap();
    /// let quick = q.spawn(async { 1 });
    /// let stuck = q.spawn(std::future::pending::<()>());
    /// let report = executor.block_on(executor.handle().shutdown(Duration::from_millis(10)));
    /// assert!(!report.drained);
    /// assert_eq!((report.completed(), report.cut_off()), (1, 1));
    /// assert_eq!(futures_lite::future::block_on(quick).unwrap(), 1);
    /// assert!(futures_lite::future::block_on(stuck).unwrap_err().is_cancelled());
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Shutdown<'_, K> {
        Shutdown::new(&self.core, self.keys.keys(), timeout)
    }
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            core: self.core.clone(),
            keys: self.keys.clone(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Handle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("queues", &self.keys.keys())
            .field("closed", &self.core.is_closing())
            .field("live_tasks", &self.core.live_tasks())
            .finish()
    }
}
