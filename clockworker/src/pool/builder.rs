//! Configuring and building a [`Pool`].

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::Pool;
use super::placement::Placement;
use crate::ExecutorBuilder;
use crate::builder::{boxed_scheduler, check_queues, check_stall};
use crate::error::BuildError;
use crate::sched::TaskScheduler;
use crate::stall::{Stall, StallConfig};

/// Builds each worker's scheduler for a queue.
pub(crate) type SchedulerFactory = Arc<dyn Fn() -> Option<Box<dyn TaskScheduler>> + Send + Sync>;

/// One configured queue: every worker gets one like it.
pub(crate) struct PoolQueueSpec<K> {
    pub(crate) key: K,
    pub(crate) weight: u32,
    pub(crate) scheduler: Option<SchedulerFactory>,
    pub(crate) stealing: bool,
}

impl<K: Copy> Clone for PoolQueueSpec<K> {
    fn clone(&self) -> Self {
        PoolQueueSpec {
            key: self.key,
            weight: self.weight,
            scheduler: self.scheduler.clone(),
            stealing: self.stealing,
        }
    }
}

/// Everything a worker needs to build its executor and host.
pub(crate) struct WorkerConfig<K> {
    pub(crate) queues: Vec<PoolQueueSpec<K>>,
    pub(crate) panic_on_task_panic: bool,
    pub(crate) time_slice: Duration,
    pub(crate) host_yield_interval: Duration,
    pub(crate) on_worker_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
    pub(crate) spin_before_park: Duration,
    pub(crate) stall: StallConfig,
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> WorkerConfig<K> {
    /// The executor builder of one worker (its schedulers freshly built).
    pub(crate) fn executor_builder(&self) -> ExecutorBuilder<K> {
        let mut builder = ExecutorBuilder::new()
            .with_panic_on_task_panic(self.panic_on_task_panic)
            .with_time_slice(self.time_slice)
            .with_host_yield_interval(self.host_yield_interval)
            .with_stall_config(self.stall.clone());
        for spec in &self.queues {
            let scheduler = spec.scheduler.as_ref().and_then(|factory| factory());
            builder = builder.with_boxed_queue(spec.key, spec.weight, scheduler);
        }
        builder
    }
}

/// Builds a [`Pool`]: its worker count, its queue table (the same on every
/// worker), its stealing queues, where its workers run and the executor
/// tunables.
///
/// # Examples
///
/// ```
/// use clockworker::{Placement, Pool};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Queue { Foreground, Background }
///
/// let pool = Pool::builder()
///     .workers(2)
///     .with_queue(Queue::Foreground, 8)
///     .with_queue(Queue::Background, 1)
///     .with_stealing(Queue::Background)
///     .placement(Placement::Unbound)
///     .thread_name("app-worker")
///     .build()
///     .unwrap();
/// assert_eq!(pool.workers(), 2);
/// let answer = pool.spawn(Queue::Foreground, async { 42 });
/// assert_eq!(pool.block_on(answer).unwrap(), 42);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder<K> {
    pub(crate) workers: Option<usize>,
    pub(crate) queues: Vec<PoolQueueSpec<K>>,
    pub(crate) stealing: Vec<K>,
    pub(crate) placement: Placement,
    pub(crate) thread_name: String,
    pub(crate) on_worker_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
    pub(crate) panic_on_task_panic: bool,
    pub(crate) time_slice: Duration,
    pub(crate) host_yield_interval: Duration,
    /// `None`: chosen at `build` (see [`PoolBuilder::spin_before_park`]).
    pub(crate) spin_before_park: Option<Duration>,
    pub(crate) stall: StallConfig,
}

impl<K> Default for PoolBuilder<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> PoolBuilder<K> {
    /// The default [`spin_before_park`](Self::spin_before_park) when the
    /// machine has no core to spare (as many workers as CPUs, or more): none,
    /// a worker that runs out of work parks at once (as glommio's executors
    /// and tokio's current-thread runtime do).
    pub const DEFAULT_SPIN_BEFORE_PARK: Duration = Duration::ZERO;

    /// The default [`spin_before_park`](Self::spin_before_park) when the
    /// machine has more CPUs than the pool has workers: 20 µs.
    pub const SPARE_CORE_SPIN_BEFORE_PARK: Duration = Duration::from_micros(20);

    /// A builder with no queues: as many workers as the machine has
    /// available parallelism (at least 1), [`Placement::Unbound`], task
    /// panics caught (each handle gets [`JoinError::Panic`](crate::JoinError::Panic);
    /// the worker carries on), the executor's default time slice and host
    /// yield interval, threads named `clockworker-pool-{index}`.
    pub fn new() -> Self {
        PoolBuilder {
            workers: None,
            queues: Vec::new(),
            stealing: Vec::new(),
            placement: Placement::Unbound,
            thread_name: "clockworker-pool".to_string(),
            on_worker_start: None,
            panic_on_task_panic: false,
            time_slice: ExecutorBuilder::<K>::DEFAULT_TIME_SLICE,
            host_yield_interval: ExecutorBuilder::<K>::DEFAULT_HOST_YIELD_INTERVAL,
            spin_before_park: None,
            stall: StallConfig::default(),
        }
    }

    /// The number of worker threads (at least 1: `0` is a
    /// [`BuildError::ZeroWorkers`]). Default: the available parallelism.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Adds a queue with the given key and weight to every worker (see
    /// [`ExecutorBuilder::with_queue`]).
    pub fn with_queue(mut self, key: K, weight: u32) -> Self {
        self.queues.push(PoolQueueSpec {
            key,
            weight,
            scheduler: None,
            stealing: false,
        });
        self
    }

    /// Adds a queue whose tasks are ordered by a scheduler that `factory`
    /// builds, once per worker (see [`ExecutorBuilder::with_queue_scheduler`]).
    ///
    /// ```
    /// use clockworker::{sched::LeastAttainedService, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .with_queue_scheduler("requests", 4, LeastAttainedService::new)
    ///     .build()
    ///     .unwrap();
    /// let stats = pool.stats();
    /// assert_eq!(stats.workers[0].executor.queues[0].scheduler, "LeastAttainedService");
    /// ```
    pub fn with_queue_scheduler<S, F>(mut self, key: K, weight: u32, factory: F) -> Self
    where
        S: TaskScheduler,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.queues.push(PoolQueueSpec {
            key,
            weight,
            scheduler: Some(Arc::new(move || boxed_scheduler(factory()))),
            stealing: false,
        });
        self
    }

    /// Lets idle workers take queued `Send` tasks of this queue from busy
    /// workers, in batches (off by default: thread-per-core locality).
    ///
    /// Only tasks that have not run yet move, and only those spawned as
    /// `Send` tasks onto this queue: by [`Pool::spawn`] (from anywhere) or
    /// a worker's [`Spawner`](crate::Spawner). A task spawned on a worker
    /// through its executor (`spawn!`, a queue handle: these take `!Send`
    /// futures too), a [`Pool::spawn_on`] task and a task in a
    /// [group](crate::QueueHandle::group) never move. A moved
    /// task joins the back of the thief's queue of the same key, and its
    /// later wakes go to the thief. The queue must use the FIFO scheduler;
    /// an unknown key or a custom scheduler is a [`BuildError::Stealing`].
    pub fn with_stealing(mut self, key: K) -> Self {
        self.stealing.push(key);
        self
    }

    /// Where the workers run (default [`Placement::Unbound`]). CPUs are
    /// checked when the pool is built: an empty or duplicate set, a CPU
    /// that does not exist, too few CPUs, or a failure to pin is a
    /// [`BuildError::Placement`].
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The worker threads' names: `{name}-{index}` (default
    /// `clockworker-pool`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Runs on each worker thread, with its index, after pinning and before
    /// its executor starts. A panic in it makes [`build`](Self::build)
    /// return [`BuildError::WorkerStart`] (and stop the workers already
    /// started).
    pub fn on_worker_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_worker_start = Some(Arc::new(hook));
        self
    }

    /// Whether a task panic unwinds out of its worker's executor (default
    /// `false`: the pool catches it, as tokio's multi-thread runtime does;
    /// the task's handle gets [`JoinError::Panic`](crate::JoinError::Panic)
    /// and the worker carries on). With `true`, the first task panic stops
    /// the whole pool at once: every worker cancels its tasks, as
    /// [`Pool::shutdown_now`] does, and the shutdown's report carries the
    /// panic's message in [`WorkerReport::panic`](crate::WorkerReport::panic).
    pub fn with_panic_on_task_panic(mut self, panic: bool) -> Self {
        self.panic_on_task_panic = panic;
        self
    }

    /// Each worker's time slice (see [`ExecutorBuilder::with_time_slice`]).
    pub fn with_time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = slice;
        self
    }

    /// How long a worker that runs out of work keeps checking for more
    /// (spinning on its doorbell) before its thread sleeps in its host.
    ///
    /// A spawn or reply that comes within that time costs no futex sleep
    /// and wake-up. A round trip between two workers took about 50 µs
    /// without spinning and under 1 µs with 20 µs of it on the 2-core
    /// development VM (`POOL_SPIN_US=20 cargo bench --bench pool`). On a
    /// 16-core machine, 10,000 spawns from outside into 4–16 workers cost
    /// 1.9–2.0 µs each without spinning and 1.0–1.1 µs with 20 µs of it.
    ///
    /// The price is up to that much CPU each time a worker runs dry. When
    /// the machine has no core to spare, that CPU is taken from other
    /// threads: spawns from a third thread into 2 workers on 2 cores got up
    /// to 1.5× slower.
    ///
    /// Default: [`SPARE_CORE_SPIN_BEFORE_PARK`](Self::SPARE_CORE_SPIN_BEFORE_PARK)
    /// (20 µs) when the machine has more CPUs than the pool has workers,
    /// [`DEFAULT_SPIN_BEFORE_PARK`](Self::DEFAULT_SPIN_BEFORE_PARK) (none)
    /// otherwise. An idle pool never spins: only a worker that just ran out
    /// of work does, once.
    pub fn spin_before_park(mut self, spin: Duration) -> Self {
        self.spin_before_park = Some(spin);
        self
    }

    /// Turns each worker's stall watchdog on (see
    /// [`ExecutorBuilder::with_stall_threshold`]): a poll longer than
    /// `threshold` on any worker is reported while it runs and when it
    /// ends; [`Stall::thread`](crate::Stall::thread) names the worker's
    /// thread. Each worker has its own watchdog thread. A zero threshold is
    /// a [`BuildError::StallWatchdog`].
    pub fn with_stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall.threshold = Some(threshold);
        self
    }

    /// Where every worker's stall reports go (see
    /// [`ExecutorBuilder::on_stall`]); one handler for the whole pool.
    pub fn on_stall(mut self, handler: impl Fn(&Stall) + Send + Sync + 'static) -> Self {
        self.stall.handler = Some(Arc::new(handler));
        self
    }

    /// Each worker's host yield interval (see
    /// [`ExecutorBuilder::with_host_yield_interval`]).
    pub fn with_host_yield_interval(mut self, interval: Duration) -> Self {
        self.host_yield_interval = interval;
        self
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static> PoolBuilder<K> {
    /// Starts the workers and returns the pool once every one of them runs.
    ///
    /// # Errors
    ///
    /// [`BuildError`]: the queue errors of [`ExecutorBuilder::build`],
    /// [`ZeroWorkers`](BuildError::ZeroWorkers),
    /// [`Placement`](BuildError::Placement),
    /// [`Stealing`](BuildError::Stealing),
    /// [`StallWatchdog`](BuildError::StallWatchdog), or
    /// [`WorkerStart`](BuildError::WorkerStart) (a worker's thread or host
    /// could not be created, pinning failed, or `on_worker_start`
    /// panicked). Workers already started are stopped and joined first.
    pub fn build(mut self) -> Result<Pool<K>, BuildError> {
        let workers = match self.workers {
            Some(0) => return Err(BuildError::ZeroWorkers),
            Some(workers) => workers,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        check_queues(self.queues.iter().map(|spec| (spec.key, spec.weight)))?;
        check_stall(&self.stall)?;
        for key in &self.stealing {
            let Some(spec) = self.queues.iter_mut().find(|spec| spec.key == *key) else {
                return Err(BuildError::Stealing {
                    key: format!("{key:?}"),
                    reason: "no queue has this key".to_string(),
                });
            };
            if spec.scheduler.is_some() {
                return Err(BuildError::Stealing {
                    key: format!("{key:?}"),
                    reason: "it has a custom scheduler; only FIFO queues can give tasks away"
                        .to_string(),
                });
            }
            spec.stealing = true;
        }
        let cpu_sets = match self.placement {
            Placement::Unbound => vec![None; workers],
            ref placement => placement.cpu_sets(workers, &super::placement::allowed_cpus()?)?,
        };
        let config = WorkerConfig {
            queues: self.queues,
            panic_on_task_panic: self.panic_on_task_panic,
            time_slice: self.time_slice,
            host_yield_interval: self.host_yield_interval,
            on_worker_start: self.on_worker_start,
            spin_before_park: self.spin_before_park.unwrap_or_else(|| {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                if cpus > workers {
                    Self::SPARE_CORE_SPIN_BEFORE_PARK
                } else {
                    Self::DEFAULT_SPIN_BEFORE_PARK
                }
            }),
            stall: self.stall,
        };
        Pool::start(config, cpu_sets, &self.thread_name)
    }
}

impl<K: fmt::Debug> fmt::Debug for PoolBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues: Vec<_> = self
            .queues
            .iter()
            .map(|spec| (&spec.key, spec.weight))
            .collect();
        f.debug_struct("PoolBuilder")
            .field("workers", &self.workers)
            .field("queues", &queues)
            .field("stealing", &self.stealing)
            .field("placement", &self.placement)
            .field("thread_name", &self.thread_name)
            .field("panic_on_task_panic", &self.panic_on_task_panic)
            .field("time_slice", &self.time_slice)
            .field("host_yield_interval", &self.host_yield_interval)
            .field("spin_before_park", &self.spin_before_park)
            .field("stall", &self.stall)
            .finish_non_exhaustive()
    }
}
