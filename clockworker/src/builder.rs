//! Configuring and building an executor.

use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use crate::clock::Clock;
use crate::core::{Config, Core, Hooks};
use crate::eevdf::MAX_WEIGHT;
use crate::error::BuildError;
use crate::executor::Executor;
use crate::handle::Handle;
use crate::key::KeyTable;
use crate::sched::{Fifo, TaskScheduler};
use crate::stall::{Stall, StallConfig, Watchdog};

/// Builds an [`Executor`] with a set of weighted queues.
///
/// Queue keys may be any `Copy + Eq + Hash + Debug + 'static` type: integers,
/// `&'static str`s, or a plain enum. Weights are relative CPU shares: a queue
/// of weight 8 gets eight times the CPU time of a queue of weight 1 while
/// both have work.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use clockworker::ExecutorBuilder;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Queue { Foreground, Background }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue(Queue::Foreground, 8)
///     .with_queue(Queue::Background, 1)
///     .with_time_slice(Duration::from_micros(200))
///     .build()
///     .unwrap();
/// assert_eq!(executor.keys(), [Queue::Foreground, Queue::Background]);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ExecutorBuilder<K> {
    queues: Vec<QueueSpec<K>>,
    panic_on_task_panic: bool,
    time_slice: Duration,
    host_yield_interval: Duration,
    /// What a pool adds to its workers' executors.
    hooks: Hooks,
    stall: StallConfig,
}

/// One configured queue.
struct QueueSpec<K> {
    key: K,
    weight: u32,
    /// `None`: the built-in FIFO.
    scheduler: Option<Box<dyn TaskScheduler>>,
}

impl<K> ExecutorBuilder<K> {
    /// The default time slice: how long a queue runs, once picked, before
    /// the scheduler looks again (unless it is preempted or runs dry).
    pub const DEFAULT_TIME_SLICE: Duration = Duration::from_micros(100);

    /// The default interval after which a busy executor hands control back
    /// to its host runtime.
    pub const DEFAULT_HOST_YIELD_INTERVAL: Duration = Duration::from_micros(500);

    /// A builder with no queues and default settings: task panics propagate,
    /// [`DEFAULT_TIME_SLICE`](Self::DEFAULT_TIME_SLICE),
    /// [`DEFAULT_HOST_YIELD_INTERVAL`](Self::DEFAULT_HOST_YIELD_INTERVAL).
    pub fn new() -> Self {
        ExecutorBuilder {
            queues: Vec::new(),
            panic_on_task_panic: true,
            time_slice: Self::DEFAULT_TIME_SLICE,
            host_yield_interval: Self::DEFAULT_HOST_YIELD_INTERVAL,
            hooks: Hooks::default(),
            stall: StallConfig::default(),
        }
    }

    /// Adds a queue with the given key and weight (a relative CPU share,
    /// `1..=1_048_576`). Keys must be distinct. Invalid keys or weights are
    /// reported by [`build`](Self::build).
    pub fn with_queue(mut self, key: K, weight: u32) -> Self {
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler: None,
        });
        self
    }

    /// Adds a queue whose runnable tasks are ordered by `scheduler` instead
    /// of FIFO: [`Lifo`](crate::sched::Lifo),
    /// [`LeastAttainedService`](crate::sched::LeastAttainedService),
    /// [`WeightedGroups`](crate::sched::WeightedGroups), or your own
    /// [`TaskScheduler`]. Passing [`Fifo`](crate::sched::Fifo) is the same as
    /// [`with_queue`](Self::with_queue).
    ///
    /// A queue with a custom scheduler reads the clock around every poll of
    /// its tasks (to report each poll's CPU time to the scheduler); the
    /// default FIFO path does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use clockworker::{sched::LeastAttainedService, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("requests", 8, LeastAttainedService::new())
    ///     .with_queue("background", 1)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(
    ///     executor.queue_stats("requests").unwrap().scheduler,
    ///     "LeastAttainedService"
    /// );
    /// ```
    pub fn with_queue_scheduler<S: TaskScheduler>(
        mut self,
        key: K,
        weight: u32,
        scheduler: S,
    ) -> Self {
        let scheduler = boxed_scheduler(scheduler);
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler,
        });
        self
    }

    /// Whether a panic in a task panics the executor's caller (`true`, the
    /// default): the panic resumes out of [`run_until`](Executor::run_until) /
    /// [`block_on`](Executor::block_on) with the task's own payload, and the
    /// task's [`JoinHandle`](crate::JoinHandle) gets
    /// [`JoinError::Panic`](crate::JoinError::Panic) with its message. With
    /// `false`, the panic is caught and delivered to the handle only, payload
    /// and all; the executor and its other tasks carry on (tokio's default
    /// for spawned tasks; `true` is closer to tokio's
    /// `unhandled_panic(ShutdownRuntime)`, except that the executor stays
    /// usable).
    ///
    /// Either way a panic from a future's `Drop` while its task is aborted
    /// counts as the task's panic (as in tokio): the handle resolves to
    /// `JoinError::Panic`. When the drop happens outside any run (the
    /// executor being dropped, a spawn onto a dropped executor) it goes to
    /// the handle only.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let error = executor.block_on(queue.spawn(async { panic!("boom") })).unwrap_err();
    /// assert_eq!(error.to_string().rsplit(": ").next(), Some("boom"));
    /// ```
    pub fn with_panic_on_task_panic(mut self, panic: bool) -> Self {
        self.panic_on_task_panic = panic;
        self
    }

    /// The time slice (the request of each turn): once picked, a queue runs
    /// for this much CPU time before the scheduler picks again, unless a
    /// queue with an earlier deadline preempts it or it runs out of tasks.
    ///
    /// Shorter slices interleave queues more finely (a heavy queue that has
    /// used its share waits at most about one slice of a light queue); longer
    /// ones switch less. Fairness holds either way. Zero makes every poll a
    /// turn of its own.
    pub fn with_time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = slice;
        self
    }

    /// How long [`run_until`](Executor::run_until) may keep polling tasks
    /// before it returns `Pending` to its host runtime (after waking itself),
    /// so that the host's IO driver and timers run even while queues stay
    /// busy. [`block_on`](Executor::block_on) has no host and ignores this.
    /// While a heavier queue may be waiting for IO, the executor also hands
    /// control back sooner, whatever this interval (see the crate docs,
    /// "Hosts and IO").
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A server that wants its sockets looked at at least every 100 µs.
    /// let executor = clockworker::ExecutorBuilder::new()
    ///     .with_queue("fg", 8)
    ///     .with_queue("bg", 1)
    ///     .with_host_yield_interval(Duration::from_micros(100))
    ///     .build()
    ///     .unwrap();
    /// # drop(executor);
    /// ```
    pub fn with_host_yield_interval(mut self, interval: Duration) -> Self {
        self.host_yield_interval = interval;
        self
    }

    /// Turns the stall watchdog on: a task poll that runs longer than
    /// `threshold` is reported *while it is still running* (by a small
    /// watchdog thread, within about `threshold` plus a millisecond of the
    /// poll's start), naming the task's spawn site, queue and group, and
    /// again when it returns, with its whole duration. Off by default.
    ///
    /// Reports go to the [`on_stall`](Self::on_stall) handler and, with the
    /// `tracing` feature, to a `tracing` warning (target
    /// `clockworker::stall`; the report while the poll runs comes from the
    /// watchdog's own thread, so set the subscriber as the global default,
    /// not only for the executor's thread); with neither, a line goes to
    /// standard error.
    /// Each queue's stats count its stalls and the longest one
    /// ([`QueueStats::stalls`](crate::QueueStats::stalls)). The watchdog
    /// thread ends when the executor is dropped.
    ///
    /// Cost: every poll then reads the clock and publishes what it polls (a
    /// few plain stores); the README gives the measured figures. Polls of
    /// the future passed to `run_until`/`block_on` are not watched, only
    /// tasks'.
    ///
    /// A zero `threshold` makes [`build`](Self::build) fail with
    /// [`BuildError::StallWatchdog`].
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use clockworker::{ExecutorBuilder, StallPhase};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("bg", 1)
    ///     .with_stall_threshold(Duration::from_millis(5))
    ///     .on_stall(move |stall| log.lock().unwrap().push((stall.phase, stall.spawn_site.line())))
    ///     .build()
    ///     .unwrap();
    /// let bg = executor.queue("bg").unwrap();
    /// let line = line!() + 1;
    /// let task = bg.spawn(async { std::thread::sleep(Duration::from_millis(30)) });
    /// executor.block_on(task).unwrap();
    /// let seen = seen.lock().unwrap();
    /// assert!(seen.contains(&(StallPhase::Running, line)));
    /// assert!(seen.contains(&(StallPhase::Ended, line)));
    /// assert_eq!(executor.queue_stats("bg").unwrap().stalls, 1);
    /// ```
    pub fn with_stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall.threshold = Some(threshold);
        self
    }

    /// Where stall reports go (see
    /// [`with_stall_threshold`](Self::with_stall_threshold), which turns
    /// the watchdog on; without it the handler is never called).
    ///
    /// The handler is called from the watchdog's thread while a stalled
    /// poll runs, and from the executor's thread when it ends: keep it
    /// short (log, count, send on a channel). A panic in it is caught and
    /// counted in
    /// [`ExecutorStats::stall_handler_panics`](crate::ExecutorStats::stall_handler_panics).
    pub fn on_stall(mut self, handler: impl Fn(&Stall) + Send + Sync + 'static) -> Self {
        self.stall.handler = Some(std::sync::Arc::new(handler));
        self
    }

    /// The stall watchdog's settings, as a pool passes them on.
    pub(crate) fn with_stall_config(mut self, stall: StallConfig) -> Self {
        self.stall = stall;
        self
    }

    /// Adds a queue with an already boxed scheduler (`None`: the FIFO); a
    /// pool builds each worker's schedulers with its factories.
    pub(crate) fn with_boxed_queue(
        mut self,
        key: K,
        weight: u32,
        scheduler: Option<Box<dyn TaskScheduler>>,
    ) -> Self {
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler,
        });
        self
    }

    /// What a pool adds to a worker's executor (see `core::Hooks`).
    pub(crate) fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }
}

impl<K> Default for ExecutorBuilder<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> ExecutorBuilder<K> {
    /// Builds the executor.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if no queue was added, a key was added twice, a
    /// weight is zero or above the maximum, or the stall watchdog cannot
    /// run.
    pub fn build(self) -> Result<Executor<K>, BuildError> {
        check_queues(self.queues.iter().map(|spec| (spec.key, spec.weight)))?;
        check_stall(&self.stall)?;
        let clock = Clock::get();
        let config = Config {
            slice: clock.to_ticks(self.time_slice),
            host_yield: clock.to_ticks(self.host_yield_interval),
            propagate_panics: self.panic_on_task_panic,
        };
        let (keys, queues): (Vec<K>, Vec<_>) = self
            .queues
            .into_iter()
            .map(|spec| (spec.key, (spec.weight, spec.scheduler)))
            .unzip();
        let names: Box<[String]> = keys.iter().map(|key| format!("{key:?}")).collect();
        let watch = match self.stall.threshold {
            Some(threshold) => Some(
                Watchdog::start(threshold, self.stall.handler, names.clone(), clock.clone())
                    .map_err(|error| {
                        BuildError::StallWatchdog(format!("its thread could not start: {error}"))
                    })?,
            ),
            None => None,
        };
        let keys = Rc::new(KeyTable::new(keys));
        let core = Rc::new(Core::new(
            queues,
            config,
            clock,
            keys.clone(),
            names,
            self.hooks,
            watch,
        ));
        crate::context::make_resident(&core);
        Ok(Executor::new(Handle::new(core, keys)))
    }
}

/// The checks of the stall watchdog's settings.
pub(crate) fn check_stall(stall: &StallConfig) -> Result<(), BuildError> {
    match stall.threshold {
        Some(threshold) if threshold.is_zero() => Err(BuildError::StallWatchdog(
            "the stall threshold is zero; give `with_stall_threshold` a positive duration"
                .to_string(),
        )),
        _ => Ok(()),
    }
}

/// A queue's scheduler as the core takes it: `None` for [`Fifo`] (the
/// built-in FIFO path).
pub(crate) fn boxed_scheduler<S: TaskScheduler>(scheduler: S) -> Option<Box<dyn TaskScheduler>> {
    let fifo = (&scheduler as &dyn Any).is::<Fifo>();
    (!fifo).then(|| Box::new(scheduler) as _)
}

/// The checks of a queue table (keys and weights, in order) that
/// [`ExecutorBuilder::build`] makes; a pool makes them once for all its
/// workers.
pub(crate) fn check_queues<K: PartialEq + fmt::Debug>(
    queues: impl Iterator<Item = (K, u32)>,
) -> Result<(), BuildError> {
    let queues: Vec<(K, u32)> = queues.collect();
    if queues.is_empty() {
        return Err(BuildError::NoQueues);
    }
    for (i, (key, weight)) in queues.iter().enumerate() {
        if queues[..i].iter().any(|(other, _)| other == key) {
            return Err(BuildError::DuplicateQueue {
                key: format!("{key:?}"),
            });
        }
        if *weight == 0 {
            return Err(BuildError::ZeroWeight {
                key: format!("{key:?}"),
            });
        }
        if *weight > MAX_WEIGHT {
            return Err(BuildError::WeightTooLarge {
                key: format!("{key:?}"),
                weight: *weight,
                max: MAX_WEIGHT,
            });
        }
    }
    Ok(())
}

impl<K: fmt::Debug> fmt::Debug for ExecutorBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues: Vec<_> = self
            .queues
            .iter()
            .map(|spec| {
                let scheduler = spec.scheduler.as_ref().map_or("Fifo", |s| s.name());
                (&spec.key, spec.weight, scheduler)
            })
            .collect();
        f.debug_struct("ExecutorBuilder")
            .field("queues", &queues)
            .field("panic_on_task_panic", &self.panic_on_task_panic)
            .field("time_slice", &self.time_slice)
            .field("host_yield_interval", &self.host_yield_interval)
            .field("stall", &self.stall)
            .finish()
    }
}
