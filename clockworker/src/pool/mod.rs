//! A thread-per-core pool: one weighted executor per worker thread, the
//! same queue table on each, spawns from anywhere, optional stealing,
//! graceful shutdown.
//!
//! A [`Pool`] starts `n` worker threads. Each runs one
//! [`Executor`](crate::Executor) built from the pool's queue table, on a
//! host: a tokio current-thread runtime with IO and timers (and a
//! `LocalSet`) when the `tokio` feature is on, so tasks on any worker use
//! tokio's sockets and timers; the executor's own `block_on` otherwise.
//! Fairness between queues holds on each worker, as on a single executor.
//!
//! - **Spawning.** [`Pool::spawn`] takes a `Send` future from any thread.
//!   From outside the pool it goes to the less loaded of two workers picked
//!   at random (load: the tasks the pool placed on a worker that have not
//!   finished, a sleeping worker counting as 8 more); from one of the
//!   pool's workers it stays on that worker.
//!   [`Pool::spawn_on`] builds a `!Send` future on a chosen worker. Inside a
//!   worker, `spawn!`, [`Handle::current`](crate::Handle::current) and queue
//!   handles reach that worker's executor.
//! - **Stealing** is off by default and opt-in per queue
//!   ([`PoolBuilder::with_stealing`]): a worker that goes idle offers to
//!   take queued, never-run `Send` tasks of stealing queues from the others;
//!   a busy worker hands over up to half of such a queue (at most 128 tasks)
//!   at its next poll boundary. `!Send` tasks never move; a moved task's
//!   later wakes go to its new worker.
//! - **Parking.** An idle worker's thread sleeps in its host until a spawn
//!   or a wake from another thread rings its doorbell: no polling, no timer.
//!   The doorbell protocol (see `doorbell.rs`, checked by loom models) means
//!   a spawn that races a worker going to sleep is never missed.
//! - **Live weights.** [`Pool::set_weight`] changes a queue's weight on
//!   every worker while tasks run; each worker applies it at its next poll
//!   boundary, keeping its scheduler's accounting consistent.
//! - **Panics** are caught by default: the task's handle gets
//!   [`JoinError::Panic`] and the worker goes on
//!   ([`PoolBuilder::with_panic_on_task_panic`] stops the pool instead).
//! - **Shutdown.** [`Pool::shutdown`] (async) and
//!   [`Pool::shutdown_blocking`] stop accepting spawns, let every worker
//!   finish its tasks, join the threads and return a [`PoolReport`];
//!   [`Pool::shutdown_timeout`] cancels what is left after a deadline;
//!   [`Pool::shutdown_now`] cancels at once. Dropping the pool is
//!   `shutdown_now`.
//!
//! # The hooks it uses
//!
//! The core knows nothing about pools. A worker uses four hooks of its
//! executor (see `core/shed.rs`): an idle hook (where it offers to steal),
//! sheddable queues with `Core::shed` (the busy side of stealing), calls
//! run on the worker's thread from outside (stats, weight changes), and a
//! wake-up when the last task finishes (a draining shutdown).

mod builder;
mod placement;
mod stats;
pub(crate) mod worker;

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

pub use builder::PoolBuilder;
pub use placement::Placement;
pub use stats::{PoolReport, PoolStats, QueueTotals, WorkerReport, WorkerStats};

use crate::error::{BuildError, JoinError, TryCurrentError, UnknownQueue, WeightError};
use crate::handle::Handle;
use crate::join::JoinHandle;
use crate::key::KeyTable;
use crate::shared::Shared;
use crate::spawner::Spawner;
use crate::stats::ExecutorStats;
use crate::task::{Placement as TaskPlacement, TaskLabel};
use builder::WorkerConfig;
use worker::{CANCEL, Control, DRAIN, Ends, PoolShared, current_worker};

/// A thread-per-core pool of weighted executors (see the [module
/// docs](self)).
///
/// `Send + Sync`: share it behind an `Arc`, or move it into a task. Built
/// with [`Pool::builder`].
///
/// # Examples
///
/// ```
/// use clockworker::Pool;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Queue { Foreground, Background }
///
/// let pool = Pool::builder()
///     .workers(2)
///     .with_queue(Queue::Foreground, 8)
///     .with_queue(Queue::Background, 1)
///     .build()
///     .unwrap();
/// let handles: Vec<_> = (0..10u64)
///     .map(|i| pool.spawn(Queue::Background, async move { i * i }))
///     .collect();
/// let sum: u64 = handles.into_iter().map(|h| pool.block_on(h).unwrap()).sum();
/// assert_eq!(sum, 285);
/// let report = pool.shutdown_blocking();
/// assert_eq!(report.completed(), 10);
/// ```
pub struct Pool<K> {
    handle: PoolHandle<K>,
    threads: Mutex<Vec<Option<ThreadHandle<()>>>>,
    /// The report of the first shutdown that saw every worker finish.
    report: Mutex<Option<PoolReport>>,
}

/// Spawns onto a [`Pool`] and reads its stats, from any thread, without
/// owning it: `Clone + Send + Sync`, from [`Pool::handle`] or, in code a
/// worker runs, [`PoolHandle::current`].
///
/// It does not keep the pool running: once the pool is shut down or
/// dropped, spawns give handles that resolve to
/// [`JoinError::Cancelled`]. (Holding the [`Pool`] itself in a task is
/// also fine, but dropping the last `Arc` of it on a worker shuts the pool
/// down.)
///
/// ```
/// use clockworker::{Pool, PoolHandle};
///
/// let pool = Pool::builder().workers(2).with_queue("fan-out", 1).build().unwrap();
/// let parent = pool.spawn("fan-out", async {
///     // On a worker: reach the pool without passing it around.
///     let pool = PoolHandle::<&str>::current();
///     let children: Vec<_> = (0..4u32).map(|i| pool.spawn("fan-out", async move { i })).collect();
///     let mut sum = 0;
///     for child in children {
///         sum += child.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(pool.block_on(parent).unwrap(), 6);
/// ```
pub struct PoolHandle<K> {
    shared: Arc<PoolShared<K>>,
    spawning: Arc<Spawning<K>>,
}

/// What spawning onto the pool needs, known once every worker has started.
pub(crate) struct Spawning<K> {
    slots: Box<[Slot<K>]>,
    keys: KeyTable<K>,
    accepting: AtomicBool,
}

/// The pool's view of one worker.
struct Slot<K> {
    shared: Arc<Shared>,
    /// One per queue.
    spawners: Box<[Spawner<K>]>,
    load: Arc<Load>,
    placed: AtomicU64,
}

/// How many tasks busier than it is a sleeping worker counts as when a
/// spawn from outside picks a worker: a burst of spawns then feeds a worker
/// that is awake (and drains them as fast as they come) before it wakes
/// another, one futex wake-up and one park per task at most rather than per
/// task every time. Measured with `cargo bench --bench pool` (spawn from
/// outside): with plain power of two choices, almost every spawn into a
/// 16-worker pool woke a sleeping worker (0.97 wake-ups and parks per
/// task, 4× tokio's time); the penalty alone barely helps there (two
/// random picks out of 16 rarely include the one awake worker), hence the
/// sticky first pick in `PoolHandle::pick`.
const IDLE_PENALTY: usize = 8;

/// The tasks the pool placed on a worker that have not finished, on a
/// cache line of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Load(AtomicUsize);

impl<K> Pool<K> {
    /// A [`PoolBuilder`] (the same as [`PoolBuilder::new`]); the key type
    /// is inferred from the queues added, or given as `Pool::<K>::builder()`.
    pub fn builder() -> PoolBuilder<K> {
        PoolBuilder::new()
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static> Pool<K> {
    /// Starts the workers (see [`PoolBuilder::build`]).
    fn start(
        config: WorkerConfig<K>,
        cpu_sets: Vec<Option<Vec<usize>>>,
        thread_name: &str,
    ) -> Result<Pool<K>, BuildError> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let workers = cpu_sets.len();
        let keys: Vec<K> = config.queues.iter().map(|q| q.key).collect();
        let shared = Arc::new(PoolShared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config,
            controls: (0..workers).map(|_| Control::new()).collect(),
            peers: OnceLock::new(),
            ends: Mutex::new(Ends {
                ends: (0..workers).map(|_| None).collect(),
                waiters: Vec::new(),
            }),
            ended: Condvar::new(),
            spawning: OnceLock::new(),
        });
        let (boot_tx, boot_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        let mut failure = None;
        for (index, cpus) in cpu_sets.into_iter().enumerate() {
            let (pool, boot) = (shared.clone(), boot_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{thread_name}-{index}"))
                .spawn(move || worker::run(index, pool, cpus, boot));
            match spawned {
                Ok(thread) => threads.push(Some(thread)),
                Err(error) => {
                    failure = Some(BuildError::WorkerStart {
                        worker: index,
                        message: format!("cannot spawn its thread: {error}"),
                    });
                    break;
                }
            }
        }
        drop(boot_tx);
        let mut boots: Vec<Option<worker::Boot<K>>> = (0..workers).map(|_| None).collect();
        for _ in 0..threads.len() {
            match boot_rx.recv() {
                Ok((index, Ok(boot))) => boots[index] = Some(boot),
                Ok((_, Err(error))) => {
                    failure.get_or_insert(error);
                }
                Err(_) => break,
            }
        }
        let slots: Option<Vec<Slot<K>>> = boots
            .into_iter()
            .map(|boot| {
                boot.map(|boot| Slot {
                    shared: boot.shared,
                    spawners: boot.spawners.into_boxed_slice(),
                    load: Arc::default(),
                    placed: AtomicU64::new(0),
                })
            })
            .collect();
        let slots = match (failure, slots) {
            (None, Some(slots)) => slots.into_boxed_slice(),
            (failure, _) => {
                // Stop and join whatever started.
                shared.stop_all(CANCEL);
                for thread in threads.into_iter().flatten() {
                    let _ = thread.join();
                }
                return Err(failure.unwrap_or_else(|| BuildError::WorkerStart {
                    worker: 0,
                    message: "a worker exited before it started".to_string(),
                }));
            }
        };
        let peers: Box<[Arc<Shared>]> = slots.iter().map(|slot| slot.shared.clone()).collect();
        if shared.config.queues.iter().any(|queue| queue.stealing) {
            // Every worker went idle before it knew its peers: each offers
            // itself now, as its idle hook would have.
            for (thief, thief_shared) in peers.iter().enumerate() {
                for (victim, victim_shared) in peers.iter().enumerate() {
                    if victim != thief {
                        victim_shared.offer_thief(thief_shared);
                    }
                }
            }
        }
        let _ = shared.peers.set(peers);
        let spawning = Arc::new(Spawning {
            slots,
            keys: KeyTable::new(keys),
            accepting: AtomicBool::new(true),
        });
        let _ = shared.spawning.set(spawning.clone());
        Ok(Pool {
            handle: PoolHandle { shared, spawning },
            threads: Mutex::new(threads),
            report: Mutex::new(None),
        })
    }

    /// A handle that spawns onto this pool from anywhere without owning it
    /// (see [`PoolHandle`]).
    pub fn handle(&self) -> PoolHandle<K> {
        self.handle.clone()
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.handle.workers()
    }

    /// The configured queue keys, in order.
    pub fn keys(&self) -> &[K] {
        self.handle.keys()
    }

    /// The index of the worker running the calling thread, if it is one of
    /// this pool's.
    pub fn current_worker(&self) -> Option<usize> {
        self.handle.current_worker()
    }

    /// A handle that spawns onto the queue with this key (see
    /// [`PoolHandle::queue`]).
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key; its message names the
    /// pool's queues.
    ///
    /// ```
    /// let pool = clockworker::Pool::builder().workers(1).with_queue("io", 1).build().unwrap();
    /// let error = pool.queue("cpu").unwrap_err();
    /// assert_eq!(error.to_string(), "no queue with key \"cpu\"; the executor's queues are [\"io\"]");
    /// let io = pool.queue("io").unwrap();
    /// assert_eq!(pool.block_on(io.spawn(async { 3 })).unwrap(), 3);
    /// ```
    pub fn queue(&self, key: K) -> Result<PoolQueue<'_, K>, UnknownQueue> {
        self.handle.queue(key)
    }

    /// Spawns a `Send` future onto the queue with this key (see
    /// [`PoolHandle::spawn`]): from outside the pool, onto the less loaded
    /// of two workers picked at random; from one of the pool's workers,
    /// onto that worker. An unknown key, or a spawn after a shutdown began,
    /// gives a handle that resolves to [`JoinError::Cancelled`].
    #[track_caller]
    pub fn spawn<F>(&self, key: K, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_labelled(key, future, TaskLabel::caller())
    }

    /// Builds a `!Send` future on worker `worker` with `make` and spawns it
    /// there (see [`PoolHandle::spawn_on`]).
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let pool = clockworker::Pool::builder().workers(2).with_queue(0, 1).build().unwrap();
    /// let on_1 = pool.spawn_on(1, 0, || {
    ///     let not_send = Rc::new(5);
    ///     async move { *not_send + 1 }
    /// });
    /// assert_eq!(pool.block_on(on_1).unwrap(), 6);
    /// ```
    #[track_caller]
    pub fn spawn_on<M, Fut>(&self, worker: usize, key: K, make: M) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.handle
            .spawn_on_labelled(worker, key, make, TaskLabel::caller())
    }

    /// Runs `future` to completion on the calling thread (see
    /// [`PoolHandle::block_on`]).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        crate::run::block_on(future)
    }

    /// A snapshot of every worker (see [`PoolHandle::stats`]).
    pub fn stats(&self) -> PoolStats<K> {
        self.handle.stats()
    }

    /// Gives the queue with this key a new weight on every worker (see
    /// [`PoolHandle::set_weight`]); returns before the workers have applied
    /// it, each doing so at its next poll boundary.
    ///
    /// # Errors
    ///
    /// [`WeightError`]: an unknown key, a weight out of range, or a pool
    /// whose shutdown has begun.
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), WeightError> {
        self.handle.set_weight(key, weight)
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static> PoolHandle<K> {
    /// The pool whose worker runs the calling code.
    ///
    /// # Panics
    ///
    /// Panics outside a worker of a pool with keys of type `K` (see
    /// [`try_current`](Self::try_current)).
    #[track_caller]
    pub fn current() -> PoolHandle<K> {
        match Self::try_current() {
            Ok(handle) => handle,
            Err(error) => panic!("clockworker: PoolHandle::current(): {error}"),
        }
    }

    /// The pool whose worker runs the calling code.
    ///
    /// # Errors
    ///
    /// [`TryCurrentError`]: this thread is no pool's worker (or its pool is
    /// still starting), or its pool's keys are not of type `K`.
    ///
    /// ```
    /// use clockworker::{Pool, PoolHandle};
    ///
    /// assert!(PoolHandle::<u8>::try_current().unwrap_err().is_missing());
    /// let pool = Pool::builder().workers(1).with_queue(0u8, 1).build().unwrap();
    /// let found = pool.spawn(0, async {
    ///     let wrong = PoolHandle::<&str>::try_current().unwrap_err().is_wrong_key_type();
    ///     (PoolHandle::<u8>::try_current().unwrap().workers(), wrong)
    /// });
    /// assert_eq!(pool.block_on(found).unwrap(), (1, true));
    /// ```
    pub fn try_current() -> Result<PoolHandle<K>, TryCurrentError> {
        let wanted = std::any::type_name::<K>();
        let pool = worker::current_pool().ok_or_else(|| TryCurrentError::missing(wanted))?;
        let shared = pool
            .downcast::<PoolShared<K>>()
            .map_err(|_| TryCurrentError::wrong_key_type(wanted))?;
        let spawning = shared
            .spawning
            .get()
            .cloned()
            .ok_or_else(|| TryCurrentError::missing(wanted))?;
        Ok(PoolHandle { shared, spawning })
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.spawning.slots.len()
    }

    /// The configured queue keys, in order.
    pub fn keys(&self) -> &[K] {
        self.spawning.keys.keys()
    }

    /// The index of the worker running the calling thread, if it is one of
    /// this pool's.
    pub fn current_worker(&self) -> Option<usize> {
        current_worker(self.shared.id)
    }

    /// A handle that spawns onto the queue with this key.
    ///
    /// # Errors
    ///
    /// [`UnknownQueue`] if no queue has this key; its message names the
    /// pool's queues.
    ///
    /// ```
    /// let pool = clockworker::Pool::builder().workers(1).with_queue("io", 1).build().unwrap();
    /// let pool = pool.handle();
    /// let error = pool.queue("cpu").unwrap_err();
    /// assert_eq!(error.to_string(), "no queue with key \"cpu\"; the executor's queues are [\"io\"]");
    /// let io = pool.queue("io").unwrap();
    /// assert_eq!(pool.block_on(io.spawn(async { 3 })).unwrap(), 3);
    /// ```
    pub fn queue(&self, key: K) -> Result<PoolQueue<'_, K>, UnknownQueue> {
        match self.spawning.keys.find(&key) {
            Some(index) => Ok(PoolQueue {
                pool: self,
                index,
                key,
            }),
            None => Err(self.unknown(&key)),
        }
    }

    /// The error for a key the pool does not have.
    #[cold]
    fn unknown(&self, key: &K) -> UnknownQueue {
        UnknownQueue::new(
            format!("{key:?}"),
            self.keys().iter().map(|k| format!("{k:?}")).collect(),
        )
    }

    /// Gives the queue with this key a new weight on every worker
    /// (`1..=`[`MAX_WEIGHT`](crate::MAX_WEIGHT)), as
    /// [`Handle::set_weight`] does on one executor: each worker's scheduler
    /// keeps every queue's lag across the change, so fairness between
    /// queues follows the new weights on every worker.
    ///
    /// It checks the key and the weight, sends the change to every worker
    /// and returns **before** they have applied it: each worker applies it
    /// at its next poll boundary (an idle one is woken for it; one in a
    /// long poll applies it once that poll returns). Called from a task on
    /// one of the pool's workers, that worker applies it at once (and the
    /// call never waits for another worker, so it cannot deadlock). A
    /// worker takes changes and [`stats`](Self::stats) requests in the
    /// order they were made, so a `stats()` that starts after this returns
    /// shows the new weight on every worker.
    ///
    /// # Errors
    ///
    /// [`WeightError::UnknownQueue`], [`WeightError::Zero`] or
    /// [`WeightError::TooLarge`] (nothing changes on any worker), or
    /// [`WeightError::ExecutorGone`] once a shutdown has begun.
    ///
    /// ```
    /// let pool = clockworker::Pool::builder()
    ///     .workers(2)
    ///     .with_queue("fg", 8)
    ///     .with_queue("bg", 1)
    ///     .build()
    ///     .unwrap();
    /// pool.handle().set_weight("bg", 4).unwrap();
    /// for worker in pool.stats().workers {
    ///     assert_eq!(worker.executor.queue("bg").unwrap().weight, 4);
    /// }
    /// assert!(pool.handle().set_weight("bg", 0).unwrap_err().is_invalid_weight());
    /// ```
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), WeightError> {
        let index = match self.spawning.keys.find(&key) {
            Some(index) => index,
            None => return Err(self.unknown(&key).into()),
        };
        WeightError::check(&key, weight)?;
        if !self.spawning.accepting.load(Ordering::Acquire) {
            return Err(WeightError::ExecutorGone);
        }
        let me = self.current_worker();
        for (worker, slot) in self.spawning.slots.iter().enumerate() {
            if me == Some(worker)
                && let Some(core) = crate::context::current()
                && Arc::ptr_eq(core.shared(), &slot.shared)
            {
                // On this worker, inside its run: here and now (a worker
                // whose executor is gone has nothing to change).
                let _ = core.set_weight(index, weight);
                continue;
            }
            // A worker that has stopped refuses the call: nothing to change.
            let _ = slot.shared.call(Box::new(move || {
                // Calls run on the worker's thread with its executor current.
                if let Some(core) = crate::context::current() {
                    let _ = core.set_weight(index, weight);
                }
            }));
        }
        Ok(())
    }

    /// Spawns a `Send` future onto the queue with this key: from outside
    /// the pool, onto the less loaded of two workers picked at random (load:
    /// the tasks the pool placed there that have not finished, plus 8 if the
    /// worker sleeps, so that a burst feeds awake workers before it wakes
    /// others); from one of the pool's workers, onto that worker.
    ///
    /// An unknown key, or a spawn after a shutdown began, gives a handle
    /// that resolves to [`JoinError::Cancelled`] (the future is dropped
    /// here, unpolled); [`queue`](Self::queue) reports an unknown key as an
    /// error instead.
    #[track_caller]
    pub fn spawn<F>(&self, key: K, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_labelled(key, future, TaskLabel::caller())
    }

    fn spawn_labelled<F>(&self, key: K, future: F, label: TaskLabel) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.spawning.keys.find(&key) {
            Some(index) => self.spawn_index(index, future, label),
            None => crate::core::cancelled(0, future, label),
        }
    }

    fn spawn_index<F>(&self, index: u32, future: F, label: TaskLabel) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if !self.spawning.accepting.load(Ordering::Acquire) {
            return crate::core::cancelled(index, future, label);
        }
        if let Some(worker) = self.current_worker()
            && let Some(core) = crate::context::current()
            && Arc::ptr_eq(core.shared(), &self.spawning.slots[worker].shared)
        {
            // On one of our workers, inside its run: stays here.
            let tracked = self.track(worker, future);
            return core.spawn_send(index, tracked, label, None);
        }
        let worker = self.pick();
        let tracked = self.track(worker, future);
        self.spawning.slots[worker].spawners[index as usize].spawn_placed(
            tracked,
            TaskPlacement::default(),
            label,
        )
    }

    /// Wraps `future` so that worker `worker`'s load counts it until it is
    /// dropped.
    fn track<F>(&self, worker: usize, future: F) -> Tracked<F> {
        let slot = &self.spawning.slots[worker];
        slot.placed.fetch_add(1, Ordering::Relaxed);
        slot.load.0.fetch_add(1, Ordering::Relaxed);
        Tracked {
            future,
            _load: LoadGuard(slot.load.clone()),
        }
    }

    /// Power of two choices: the less loaded of two distinct workers, a
    /// sleeping worker counting as [`IDLE_PENALTY`] tasks busier than it
    /// is. The first is the worker this thread picked last (sticky: a
    /// burst from one thread keeps feeding a worker it has woken, rather
    /// than sample two sleeping ones out of many and wake one per spawn),
    /// the second is picked at random; a tie goes to the second if it is
    /// awake, else stays with the first.
    fn pick(&self) -> usize {
        let workers = self.spawning.slots.len();
        if workers == 1 {
            return 0;
        }
        let random = random();
        let pool = self.shared.id;
        let a = match LAST_PICK.get() {
            (last_pool, worker) if last_pool == pool && worker < workers => worker,
            _ => (random % workers as u64) as usize,
        };
        let b = (a + 1 + ((random >> 32) % (workers as u64 - 1)) as usize) % workers;
        let load = |worker: usize| {
            let slot = &self.spawning.slots[worker];
            let idle = slot.shared.is_idle();
            let penalty = if idle { IDLE_PENALTY } else { 0 };
            (slot.load.0.load(Ordering::Relaxed) + penalty, idle)
        };
        let ((load_a, _), (load_b, b_idle)) = (load(a), load(b));
        // A tie with an awake worker goes to the random one: steady
        // traffic spreads over busy workers instead of sticking to one.
        let picked = if load_b < load_a || (load_b == load_a && !b_idle) {
            b
        } else {
            a
        };
        LAST_PICK.set((pool, picked));
        picked
    }

    /// Builds a `!Send` future on worker `worker` with `make` and spawns it
    /// there, onto the queue with this key; its output must be `Send`.
    ///
    /// The future runs inside a small `Send` task on that worker, which
    /// starts it as a task of its own and waits for it: the handle's
    /// [`abort`](JoinHandle::abort) drops the `!Send` future on its worker,
    /// a panic (in `make` or the future) reaches the handle as
    /// [`JoinError::Panic`], and the stats count two tasks. Neither task
    /// ever moves to another worker. A worker index out of range, an
    /// unknown key or a spawn after a shutdown began gives a handle that
    /// resolves to [`JoinError::Cancelled`].
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let pool = clockworker::Pool::builder().workers(2).with_queue(0, 1).build().unwrap();
    /// let pool = pool.handle();
    /// let on_1 = pool.spawn_on(1, 0, || {
    ///     let not_send = Rc::new(5);
    ///     async move { *not_send + 1 }
    /// });
    /// assert_eq!(pool.block_on(on_1).unwrap(), 6);
    /// ```
    #[track_caller]
    pub fn spawn_on<M, Fut>(&self, worker: usize, key: K, make: M) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_on_labelled(worker, key, make, TaskLabel::caller())
    }

    fn spawn_on_labelled<M, Fut>(
        &self,
        worker: usize,
        key: K,
        make: M,
        label: TaskLabel,
    ) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let Some(index) = self.spawning.keys.find(&key) else {
            return crate::core::cancelled(0, std::future::pending(), label);
        };
        self.spawn_on_index(worker, index, make, label)
    }

    fn spawn_on_index<M, Fut>(
        &self,
        worker: usize,
        index: u32,
        make: M,
        label: TaskLabel,
    ) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        if worker >= self.spawning.slots.len() || !self.spawning.accepting.load(Ordering::Acquire) {
            return crate::core::cancelled(index, std::future::pending(), label);
        }
        let shell = async move {
            let mut inner = AbortOnDrop(start_local(index, make, label));
            match (&mut inner).await {
                Ok(Ok(output)) => output,
                Ok(Err(payload)) => std::panic::resume_unwind(payload),
                Err(JoinError::Panic(panic)) => std::panic::resume_unwind(panic.into_panic()),
                // Only its executor's shutdown cancels the inner task, and
                // that shutdown drops this one too.
                Err(_) => std::future::pending().await,
            }
        };
        let tracked = self.track(worker, shell);
        // `fixed`: the shell must start its future on this very worker.
        self.spawning.slots[worker].spawners[index as usize]
            .fixed()
            .spawn_placed(tracked, TaskPlacement::default(), label)
    }

    /// Runs `future` to completion on the calling thread, parking it while
    /// the future is pending: a way to wait for a pool's handles from
    /// synchronous code. The future does not run on a worker (nor inside
    /// a tokio runtime). Do not call it from a pool's worker: it would stop
    /// that worker's tasks until the future completes.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        crate::run::block_on(future)
    }

    /// A snapshot of every worker: its executor's stats, the tasks it
    /// stole and had stolen, its parks and wake-ups (see [`PoolStats`]).
    ///
    /// Each running worker takes its own snapshot at its next poll
    /// boundary (an idle one is woken for it, which does not count as a
    /// wake-up or a park); this call waits for them. A worker busy in a
    /// long poll delays it. A stopped worker gives its final stats.
    pub fn stats(&self) -> PoolStats<K> {
        let me = self.current_worker();
        let mut answers: Vec<Option<mpsc::Receiver<Option<ExecutorStats<K>>>>> = Vec::new();
        for (index, slot) in self.spawning.slots.iter().enumerate() {
            if me == Some(index) || self.shared.ends().ends[index].is_some() {
                answers.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel();
            let asked = slot.shared.call(Box::new(move || {
                let stats = Handle::<K>::try_current().ok().map(|handle| handle.stats());
                let _ = tx.send(stats);
            }));
            answers.push(asked.ok().map(|()| rx));
        }
        let workers = answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| {
                let executor = match answer {
                    None if me == Some(index) => self.own_stats(index),
                    None => self.final_stats(index),
                    Some(rx) => self.await_stats(index, &rx),
                };
                self.worker_stats(index, executor)
            })
            .collect();
        PoolStats { workers }
    }

    /// This worker's stats, taken on its own thread.
    fn own_stats(&self, index: usize) -> ExecutorStats<K> {
        match Handle::<K>::try_current() {
            Ok(handle)
                if Arc::ptr_eq(handle.core().shared(), &self.spawning.slots[index].shared) =>
            {
                handle.stats()
            }
            _ => self.final_stats(index),
        }
    }

    /// Waits for worker `index`'s answer to a stats request. From a worker,
    /// it runs its own executor's calls while it waits, so that two workers
    /// asking each other at once both get their answers.
    fn await_stats(
        &self,
        index: usize,
        rx: &mpsc::Receiver<Option<ExecutorStats<K>>>,
    ) -> ExecutorStats<K> {
        let on_worker = self.current_worker().is_some();
        loop {
            let wait = if on_worker {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(50)
            };
            match rx.recv_timeout(wait) {
                Ok(Some(stats)) => return stats,
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return self.final_stats(index);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if on_worker && let Some(core) = crate::context::current() {
                        core.run_calls();
                    }
                }
            }
        }
    }

    /// Worker `index`'s final stats, once it has stopped (it is stopping:
    /// it refused or dropped a stats request).
    fn final_stats(&self, index: usize) -> ExecutorStats<K> {
        let mut ends = self.shared.ends();
        loop {
            if let Some(end) = &ends.ends[index] {
                return end.stats.clone();
            }
            ends = self
                .shared
                .ended
                .wait(ends)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn worker_stats(&self, index: usize, executor: ExecutorStats<K>) -> WorkerStats<K> {
        let slot = &self.spawning.slots[index];
        let counts = slot.shared.counts();
        WorkerStats {
            worker: index,
            executor,
            placed: slot.placed.load(Ordering::Relaxed),
            stolen: counts.moved_in.load(Ordering::Relaxed),
            had_stolen: counts.shed.load(Ordering::Relaxed),
            parks: counts.parks.load(Ordering::Relaxed),
            wakeups: counts.wakeups.load(Ordering::Relaxed),
            stopped: self.shared.ends().ends[index].is_some(),
        }
    }

    /// Whether the pool has stopped accepting spawns (a shutdown began, or
    /// the pool was dropped).
    pub fn is_closed(&self) -> bool {
        !self.spawning.accepting.load(Ordering::Acquire)
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static> Pool<K> {
    // ----- shutdown --------------------------------------------------------

    /// Stops accepting spawns and tells every worker to stop in `mode`.
    fn begin_shutdown(&self, mode: u8) {
        self.handle
            .spawning
            .accepting
            .store(false, Ordering::Release);
        self.handle.shared.stop_all(mode);
    }

    /// Stops accepting spawns, lets every worker finish its tasks (queued,
    /// running and parked: a task that never finishes keeps its worker
    /// waiting, see [`shutdown_timeout`](Self::shutdown_timeout)), then
    /// joins the threads and reports what each worker did.
    ///
    /// Tasks may still spawn onto their own worker while it drains
    /// (children of draining tasks run too); [`Pool::spawn`] from anywhere
    /// gives cancelled handles. Calling it again (or any other shutdown)
    /// returns the same report. Called from one of the pool's own workers,
    /// it cannot wait for the workers to stop: it starts the shutdown and
    /// returns at once, with every worker marked not
    /// [`finished`](WorkerReport::finished).
    pub fn shutdown(&self) -> impl Future<Output = PoolReport> + '_ {
        self.begin_shutdown(DRAIN);
        std::future::poll_fn(move |cx| {
            if let Some(report) = self.report_if_done(Some(cx)) {
                return Poll::Ready(report);
            }
            Poll::Pending
        })
    }

    /// [`shutdown`](Self::shutdown), blocking the calling thread.
    pub fn shutdown_blocking(&self) -> PoolReport {
        self.begin_shutdown(DRAIN);
        self.wait(None)
    }

    /// [`shutdown_blocking`](Self::shutdown_blocking), but tasks still alive
    /// after `timeout` are cancelled (their futures dropped on their
    /// worker, their handles resolving to
    /// [`JoinError::Cancelled`]).
    pub fn shutdown_timeout(&self, timeout: Duration) -> PoolReport {
        self.begin_shutdown(DRAIN);
        let deadline = Instant::now().checked_add(timeout);
        if let Some(report) = self.report_if_done(None) {
            return report;
        }
        if self.current_worker().is_none() && !self.wait_until(deadline) {
            self.begin_shutdown(CANCEL);
        }
        self.wait(None)
    }

    /// Stops accepting spawns and cancels every task at once (each worker
    /// drops its tasks' futures on its own thread after its current poll;
    /// every handle resolves to `Cancelled`), then joins the threads.
    pub fn shutdown_now(&self) -> PoolReport {
        self.begin_shutdown(CANCEL);
        self.wait(None)
    }

    /// Waits (unless on a worker) until every worker stopped, then reports.
    fn wait(&self, deadline: Option<Instant>) -> PoolReport {
        if self.current_worker().is_none() {
            self.wait_until(deadline);
        }
        self.report_if_done(None)
            .unwrap_or_else(|| self.unfinished_report())
    }

    /// Waits until every worker stopped or `deadline` passed; returns
    /// whether they all stopped.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut ends = self.handle.shared.ends();
        while ends.ends.iter().any(Option::is_none) {
            match deadline {
                None => {
                    ends = self
                        .handle
                        .shared
                        .ended
                        .wait(ends)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    ends = self
                        .handle
                        .shared
                        .ended
                        .wait_timeout(ends, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        true
    }

    /// The report, once every worker has stopped (joining their threads
    /// the first time); otherwise registers `cx`'s waker, if any, and
    /// returns `None`. From a worker: the unfinished report at once.
    fn report_if_done(&self, cx: Option<&mut Context<'_>>) -> Option<PoolReport> {
        if let Some(report) = lock(&self.report).clone() {
            return Some(report);
        }
        let report = {
            let mut ends = self.handle.shared.ends();
            if ends.ends.iter().any(Option::is_none) {
                if self.current_worker().is_some() {
                    return Some(self.unfinished_report());
                }
                if let Some(cx) = cx {
                    ends.waiters.push(cx.waker().clone());
                }
                return None;
            }
            PoolReport {
                workers: ends
                    .ends
                    .iter()
                    .flatten()
                    .map(|end| end.report.clone())
                    .collect(),
            }
        };
        // Every worker has stopped: their threads are ending.
        for thread in lock(&self.threads).iter_mut() {
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
        *lock(&self.report) = Some(report.clone());
        Some(report)
    }

    fn unfinished_report(&self) -> PoolReport {
        PoolReport {
            workers: (0..self.handle.spawning.slots.len())
                .map(|worker| WorkerReport {
                    worker,
                    completed: 0,
                    cancelled: 0,
                    panicked: 0,
                    finished: false,
                    panic: None,
                })
                .collect(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K> Drop for Pool<K> {
    /// [`shutdown_now`](Pool::shutdown_now), unless a shutdown already
    /// finished. Dropped on one of its own workers (the last `Arc` of it
    /// released by a task, say), the pool cannot wait for its workers: it
    /// tells them all to cancel their tasks and stop, and lets their
    /// threads end on their own (the calling worker stops once the task
    /// that dropped the pool returns).
    fn drop(&mut self) {
        if lock(&self.report).is_some() {
            return;
        }
        let (shared, spawning) = (&self.handle.shared, &self.handle.spawning);
        spawning.accepting.store(false, Ordering::Release);
        shared.stop_all(CANCEL);
        if current_worker(shared.id).is_some() {
            // Detach the threads.
            lock(&self.threads).clear();
            return;
        }
        let mut ends = shared.ends();
        while ends.ends.iter().any(Option::is_none) {
            ends = shared
                .ended
                .wait(ends)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(ends);
        for thread in lock(&self.threads).iter_mut() {
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Pool<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl<K> Clone for PoolHandle<K> {
    fn clone(&self) -> Self {
        PoolHandle {
            shared: self.shared.clone(),
            spawning: self.spawning.clone(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for PoolHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHandle")
            .field("workers", &self.spawning.slots.len())
            .field("queues", &self.spawning.keys.keys())
            .field(
                "accepting",
                &self.spawning.accepting.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// Spawns onto one queue of a [`Pool`] (see [`Pool::queue`]).
pub struct PoolQueue<'a, K> {
    pool: &'a PoolHandle<K>,
    index: u32,
    key: K,
}

impl<K: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static> PoolQueue<'_, K> {
    /// [`Pool::spawn`] onto this queue.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.pool
            .spawn_index(self.index, future, TaskLabel::caller())
    }

    /// [`Pool::spawn_on`] onto this queue.
    #[track_caller]
    pub fn spawn_on<M, Fut>(&self, worker: usize, make: M) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.pool
            .spawn_on_index(worker, self.index, make, TaskLabel::caller())
    }

    /// The queue's key.
    pub fn key(&self) -> K {
        self.key
    }
}

impl<K: fmt::Debug> fmt::Debug for PoolQueue<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolQueue").field("key", &self.key).finish()
    }
}

/// Starts `make`'s future as a task of the worker this runs on (the
/// `spawn_on` shell's first poll), its panics caught into its output.
fn start_local<M, Fut>(
    index: u32,
    make: M,
    label: TaskLabel,
) -> JoinHandle<Result<Fut::Output, Box<dyn Any + Send>>>
where
    M: FnOnce() -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let future = CatchUnwind(make());
    match crate::context::current() {
        Some(core) => core.spawn_local(index, future, label, None),
        // A shell always runs on its worker's executor.
        None => crate::core::cancelled(index, future, label),
    }
}

pin_project_lite::pin_project! {
    /// A future whose poll's panics become its output.
    struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

#[allow(non_snake_case)]
fn CatchUnwind<F>(future: F) -> CatchUnwind<F> {
    CatchUnwind { future }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// A join handle that aborts its task when dropped (the `spawn_on` shell's
/// hold on the task it started).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for &mut AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pin_project_lite::pin_project! {
    /// A future counted in its worker's load until it is dropped.
    struct Tracked<F> {
        #[pin]
        future: F,
        _load: LoadGuard,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

struct LoadGuard(Arc<Load>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// The pool and worker this thread's last spawn from outside went to.
    static LAST_PICK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A fast thread-local pseudo-random number (xorshift64*), for picking
/// workers.
fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seeded per thread from its stack address and the time.
            let here = &x as *const u64 as u64;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() as u64);
            x = (here ^ nanos.rotate_left(32)) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(all(test, not(clockworker_loom)))]
mod tests {
    use super::*;

    /// The pool on whichever host the features give (CI runs this without
    /// `tokio` too: the executor's own `block_on`): spawns from outside and
    /// from a worker, a `!Send` future, a drain and its report.
    #[test]
    fn runs_on_either_host() {
        let pool = Pool::builder()
            .workers(2)
            .with_queue(0u8, 1)
            .with_stealing(0)
            .build()
            .unwrap();
        let fan_out = pool.spawn(0, async {
            let pool = PoolHandle::<u8>::current();
            let children: Vec<_> = (0..50u64)
                .map(|i| pool.spawn(0, async move { i }))
                .collect();
            let mut sum = 0;
            for child in children {
                sum += child.await.unwrap();
            }
            sum
        });
        assert_eq!(pool.block_on(fan_out).unwrap(), 1225);
        let local = pool.spawn_on(1, 0, || {
            let here = std::rc::Rc::new(std::thread::current().id());
            async move { *here }
        });
        let on_1 = pool.block_on(local).unwrap();
        assert_ne!(on_1, std::thread::current().id());
        let report = pool.shutdown_blocking();
        assert!(report.finished());
        // The fan-out, its 50 children, and the spawn_on shell and task.
        assert_eq!(report.completed(), 53);
        assert!(pool.spawn(0, async {}).is_finished());
    }
}
