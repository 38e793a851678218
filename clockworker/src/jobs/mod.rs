//! Periodic and one-shot jobs on an executor's queues: [`Handle::every`]
//! (a fixed period), [`Handle::at`] (once), `Handle::cron` (a cron
//! expression in an IANA time zone, with the `cron` feature), and
//! [`Handle::job`] for the options: start and end times, a maximum number
//! of runs, a [`Misfire`] policy and an [`Overlap`] policy. The same
//! methods exist on [`Executor`](crate::Executor).
//!
//! ```
//! use std::time::Duration;
//! use clockworker::{time, ExecutorBuilder};
//!
//! let executor = ExecutorBuilder::new().with_queue("background", 1).build().unwrap();
//! let runs = std::rc::Rc::new(std::cell::Cell::new(0));
//! executor.block_on(async {
//!     time::pause().unwrap(); // a test clock: an hour passes at once
//!     let counter = runs.clone();
//!     let job = executor
//!         .every("background", Duration::from_secs(60), move |_ctx| {
//!             counter.set(counter.get() + 1);
//!             async {}
//!         })
//!         .unwrap();
//!     time::sleep(Duration::from_secs(3630)).await;
//!     job.cancel();
//! });
//! assert_eq!(runs.get(), 60);
//! ```
//!
//! A job is a small scheduler task on the job's queue: it sleeps until the
//! next due time (on the executor's timer clock, so a paused test clock
//! drives it), decides what the due times it reached mean under the job's
//! misfire policy, and starts each run as a task of the same queue under
//! the overlap policy. Due times are computed from the previous due time,
//! never from "now": a fixed interval never drifts (run k is due at
//! start + k·period).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[cfg(feature = "cron")]
mod cron;

use crate::handle::Handle;
use crate::join::JoinHandle;
use crate::time;

/// What a job does with due times it missed (the executor was busy or
/// asleep past them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Misfire {
    /// Run once now for all the missed due times, then go on with the
    /// schedule (Quartz's "fire once now"): the default.
    #[default]
    FireOnceNow,
    /// Run nothing for the missed due times; go on with the next one.
    Skip,
    /// Run once for each missed due time, at most `cap` of them.
    Burst {
        /// The most runs one catch-up starts.
        cap: u32,
    },
    /// Run once now, and shift the schedule: the next run is one period
    /// after this one.
    Delay,
}

/// What a job does when a run is due while the previous one still runs
/// (Kubernetes' `concurrencyPolicy`, plus `QueueOne`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overlap {
    /// Skip the new run (counted in [`JobStats::overlaps_skipped`]): the
    /// default.
    #[default]
    Skip,
    /// Start it beside the running one.
    Allow,
    /// Start it when the running one finishes (at most one waits).
    QueueOne,
    /// Abort the running one and start the new one.
    Replace,
}

/// What a run gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobContext {
    /// The job's id (unique in the process).
    pub job: u64,
    /// When this run was due.
    pub due: Instant,
    /// When it started.
    pub started: Instant,
    /// Runs started before this one.
    pub runs: u64,
    /// Due times the job has missed so far (see [`Misfire`]).
    pub missed: u64,
}

/// A job's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobStats {
    /// Runs started.
    pub runs: u64,
    /// Due times missed (not run on time).
    pub misses: u64,
    /// Runs skipped because the previous one was still running.
    pub overlaps_skipped: u64,
    /// How long the last finished run took.
    pub last_duration: Option<Duration>,
}

/// Why a job could not be scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The period is zero.
    ZeroPeriod,
    /// The executor has no queue with this key (its `Debug` output).
    UnknownQueue(String),
    /// A cron expression did not parse.
    Cron {
        /// The expression.
        expr: String,
        /// What is wrong with it (which field).
        message: String,
    },
    /// No IANA time zone has this name.
    UnknownZone(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::ZeroPeriod => f.write_str("a job's period must not be zero"),
            JobError::UnknownQueue(key) => write!(f, "no queue with key {key}"),
            JobError::Cron { expr, message } => {
                write!(f, "invalid cron expression {expr:?}: {message}")
            }
            JobError::UnknownZone(zone) => write!(f, "unknown time zone {zone:?}"),
        }
    }
}

impl std::error::Error for JobError {}

/// The state a [`JobHandle`] shares with its scheduler task.
#[derive(Debug)]
struct JobState {
    id: u64,
    cancelled: AtomicBool,
    /// Cancelled with `abort`: the runs in progress are aborted too.
    abort_runs: AtomicBool,
    next_due: Mutex<Option<Instant>>,
    stats: Mutex<JobStats>,
}

impl JobState {
    fn stats(&self) -> std::sync::MutexGuard<'_, JobStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_next_due(&self, due: Option<Instant>) {
        *self.next_due.lock().unwrap_or_else(PoisonError::into_inner) = due;
    }
}

/// Cancels a job, reads its next due time and its counters. `Send + Sync`.
#[derive(Debug)]
pub struct JobHandle {
    state: Arc<JobState>,
    scheduler: JoinHandle<()>,
}

impl JobHandle {
    /// Stops the job: it never starts a run again (idempotent). A run in
    /// progress finishes.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Release);
        self.state.set_next_due(None);
        self.scheduler.abort();
    }

    /// [`cancel`](Self::cancel), and aborts the runs in progress (their
    /// futures are dropped on the executor's thread).
    pub fn abort(&self) {
        self.state.abort_runs.store(true, Ordering::Release);
        self.cancel();
    }

    /// The job's id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// When the next run is due; `None` once the job is cancelled or done.
    pub fn next_due(&self) -> Option<Instant> {
        *self
            .state
            .next_due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The job's counters.
    pub fn stats(&self) -> JobStats {
        *self.state.stats()
    }

    /// Whether the job was cancelled or has run its last run.
    pub fn is_finished(&self) -> bool {
        self.state.cancelled.load(Ordering::Acquire) || self.scheduler.is_finished()
    }
}

/// A job's schedule and options, before it starts (see [`Handle::job`]).
pub struct JobBuilder<K> {
    handle: Handle<K>,
    key: K,
    period: Option<Duration>,
    #[cfg(feature = "cron")]
    cron: Option<Result<cron::CronSchedule, JobError>>,
    start: Option<Instant>,
    end: Option<Instant>,
    max_runs: Option<u64>,
    misfire: Misfire,
    overlap: Overlap,
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> JobBuilder<K> {
    pub(crate) fn new(handle: Handle<K>, key: K) -> Self {
        JobBuilder {
            handle,
            key,
            period: None,
            #[cfg(feature = "cron")]
            cron: None,
            start: None,
            end: None,
            max_runs: None,
            misfire: Misfire::default(),
            overlap: Overlap::default(),
        }
    }

    /// Runs every `period` (a one-shot without it).
    pub fn every(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// Runs on the due times of cron expression `expr` (5 fields, or 6
    /// with seconds first; `L`, `W`, `#`...) in the IANA time zone `zone`
    /// (`"UTC"`, `"America/New_York"`), on the wall clock, with the DST
    /// rules of the `croner` crate: a fixed time lost in a spring gap runs
    /// at the first minute after it, one repeated in the autumn runs once.
    /// A bad expression or zone is reported by [`spawn`](Self::spawn).
    #[cfg(feature = "cron")]
    pub fn cron(mut self, expr: &str, zone: &str) -> Self {
        self.cron = Some(cron::CronSchedule::new(expr, zone));
        self
    }

    /// The first due time (default: now for `every`, one period from now
    /// with [`Handle::every`]).
    pub fn start_at(mut self, start: Instant) -> Self {
        self.start = Some(start);
        self
    }

    /// No run is due at or after `end`.
    pub fn end_at(mut self, end: Instant) -> Self {
        self.end = Some(end);
        self
    }

    /// At most `runs` runs.
    pub fn max_runs(mut self, runs: u64) -> Self {
        self.max_runs = Some(runs);
        self
    }

    /// The misfire policy (default [`Misfire::FireOnceNow`]).
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// The overlap policy (default [`Overlap::Skip`]).
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// Starts the job: `run` is called for each run and its future spawned
    /// onto the job's queue.
    ///
    /// # Errors
    ///
    /// [`JobError::ZeroPeriod`], [`JobError::UnknownQueue`].
    pub fn spawn<F, Fut>(self, run: F) -> Result<JobHandle, JobError>
    where
        F: FnMut(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if self.period == Some(Duration::ZERO) {
            return Err(JobError::ZeroPeriod);
        }
        let queue = self
            .handle
            .queue(self.key)
            .map_err(|_| JobError::UnknownQueue(format!("{:?}", self.key)))?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let state = Arc::new(JobState {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cancelled: AtomicBool::new(false),
            abort_runs: AtomicBool::new(false),
            next_due: Mutex::new(None),
            stats: Mutex::new(JobStats::default()),
        });
        let first = self.start.unwrap_or_else(time::now);
        state.set_next_due(Some(first));
        let plan = Plan {
            first,
            period: self.period,
            end: self.end,
            max_runs: self.max_runs,
            misfire: self.misfire,
            overlap: self.overlap,
        };
        let closed = self.handle.closed();
        #[cfg(feature = "cron")]
        if let Some(cron) = self.cron {
            let cron = cron?;
            let job = cron_schedule(cron, plan, state.clone(), queue.clone(), run);
            let scheduler = queue.spawn(until_closed(closed, state.clone(), job));
            return Ok(JobHandle { state, scheduler });
        }
        let job = schedule(plan, state.clone(), queue.clone(), run);
        let scheduler = queue.spawn(until_closed(closed, state.clone(), job));
        Ok(JobHandle { state, scheduler })
    }
}

struct Plan {
    first: Instant,
    period: Option<Duration>,
    end: Option<Instant>,
    max_runs: Option<u64>,
    misfire: Misfire,
    overlap: Overlap,
}

/// The runs of a job in flight (for the overlap policy).
#[derive(Default)]
struct InFlight {
    running: Vec<JoinHandle<()>>,
    queued: Option<(Instant, u64)>,
}

/// Held by a scheduler task: when `JobHandle::abort` drops it, the runs in
/// progress are aborted as well.
struct AbortRunsOnDrop {
    in_flight: Rc<RefCell<InFlight>>,
    state: Arc<JobState>,
}

impl Drop for AbortRunsOnDrop {
    fn drop(&mut self) {
        if self.state.abort_runs.load(Ordering::Acquire)
            && let Ok(mut flight) = self.in_flight.try_borrow_mut()
        {
            for run in flight.running.drain(..) {
                run.abort();
            }
        }
    }
}

/// Runs a job's scheduler until it ends or the executor is closed
/// (`Handle::close`): a closed executor schedules no more runs, and runs in
/// progress finish.
async fn until_closed(closed: crate::Closed, state: Arc<JobState>, job: impl Future<Output = ()>) {
    crate::close::race(job, closed).await;
    state.set_next_due(None);
}

/// The scheduler task of a job.
async fn schedule<K, F, Fut>(
    plan: Plan,
    state: Arc<JobState>,
    queue: crate::QueueHandle<K>,
    mut run: F,
) where
    K: Copy + Eq + Hash + fmt::Debug + 'static,
    F: FnMut(JobContext) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut runner = Runner::new(plan, state, queue);
    let (plan, state) = (runner.plan.clone(), runner.state.clone());
    let mut due = plan.first;
    loop {
        if runner.is_done() || plan.end.is_some_and(|end| due >= end) {
            state.set_next_due(None);
            return;
        }
        state.set_next_due(Some(due));
        time::sleep_until(due).await;
        let now = time::now();
        // The due times reached: `due` and any later ones up to now.
        let (missed, next) = match plan.period {
            None => (0, None),
            Some(period) => {
                let behind = now.saturating_duration_since(due).as_nanos() / period.as_nanos();
                let missed = u64::try_from(behind).unwrap_or(u64::MAX);
                let next = match plan.misfire {
                    Misfire::Delay if missed > 0 => now + period,
                    _ => due + period * u32::try_from(missed + 1).unwrap_or(u32::MAX),
                };
                (missed, Some(next))
            }
        };
        runner.reached(due, missed, &mut run);
        match next {
            Some(next) => due = next,
            None => {
                state.set_next_due(None);
                return;
            }
        }
    }
}

/// What both schedulers (a period, a cron expression) share once they
/// know a due time was reached: the misfire policy, the overlap policy,
/// the run count, and the runs in flight (aborted with the job by
/// `JobHandle::abort`).
struct Runner<K> {
    plan: Rc<Plan>,
    state: Arc<JobState>,
    queue: crate::QueueHandle<K>,
    in_flight: Rc<RefCell<InFlight>>,
    _abort_runs: AbortRunsOnDrop,
    started: u64,
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> Runner<K> {
    fn new(plan: Plan, state: Arc<JobState>, queue: crate::QueueHandle<K>) -> Runner<K> {
        let in_flight = Rc::new(RefCell::new(InFlight::default()));
        Runner {
            plan: Rc::new(plan),
            _abort_runs: AbortRunsOnDrop {
                in_flight: in_flight.clone(),
                state: state.clone(),
            },
            state,
            queue,
            in_flight,
            started: 0,
        }
    }

    /// Cancelled, or its last run started.
    fn is_done(&self) -> bool {
        self.state.cancelled.load(Ordering::Acquire)
            || self.plan.max_runs.is_some_and(|max| self.started >= max)
    }

    /// Due time `due` was reached, and `missed` later ones too: counts the
    /// misses and starts the runs the misfire policy asks for.
    fn reached<F, Fut>(&mut self, due: Instant, missed: u64, run: &mut F)
    where
        F: FnMut(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if missed > 0 {
            self.state.stats().misses += missed;
        }
        let runs_now: u64 = match self.plan.misfire {
            _ if missed == 0 => 1,
            Misfire::FireOnceNow | Misfire::Delay => 1,
            Misfire::Skip => 0,
            Misfire::Burst { cap } => (missed + 1).min(u64::from(cap.max(1))),
        };
        for _ in 0..runs_now {
            if self.plan.max_runs.is_some_and(|max| self.started >= max) {
                break;
            }
            let ctx = JobContext {
                job: self.state.id,
                due,
                started: time::now(),
                runs: self.started,
                missed: self.state.stats().misses,
            };
            if start_run(
                &self.plan,
                &self.state,
                &self.queue,
                &self.in_flight,
                run,
                ctx,
            ) {
                self.started += 1;
            }
        }
    }
}

/// Starts one run under the overlap policy; whether it started.
fn start_run<K, F, Fut>(
    plan: &Plan,
    state: &Arc<JobState>,
    queue: &crate::QueueHandle<K>,
    in_flight: &Rc<RefCell<InFlight>>,
    run: &mut F,
    ctx: JobContext,
) -> bool
where
    K: Copy + Eq + Hash + fmt::Debug + 'static,
    F: FnMut(JobContext) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut flight = in_flight.borrow_mut();
    flight.running.retain(|handle| !handle.is_finished());
    if !flight.running.is_empty() {
        match plan.overlap {
            Overlap::Skip => {
                state.stats().overlaps_skipped += 1;
                return false;
            }
            Overlap::Replace => {
                for handle in flight.running.drain(..) {
                    handle.abort();
                }
            }
            Overlap::QueueOne | Overlap::Allow => {}
        }
    }
    let waits_for: Vec<_> = if plan.overlap == Overlap::QueueOne && !flight.running.is_empty() {
        if flight.queued.is_some() {
            state.stats().overlaps_skipped += 1;
            return false;
        }
        flight.queued = Some((ctx.due, ctx.runs));
        std::mem::take(&mut flight.running)
    } else {
        Vec::new()
    };
    let future = run(ctx);
    let stats_state = state.clone();
    let flight_rc = in_flight.clone();
    let handle = queue.spawn(async move {
        for earlier in waits_for {
            let _ = earlier.await;
        }
        flight_rc.borrow_mut().queued = None;
        let began = Instant::now();
        future.await;
        stats_state.stats().last_duration = Some(began.elapsed());
    });
    state.stats().runs += 1;
    flight.running.push(handle);
    true
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> Handle<K> {
    /// A [`JobBuilder`] for a job on the queue with this key.
    pub fn job(&self, key: K) -> JobBuilder<K> {
        JobBuilder::new(self.clone(), key)
    }

    /// Runs `run` every `period` on the queue with this key, the first run
    /// one period from now; defaults for the rest (see [`JobBuilder`]).
    ///
    /// # Errors
    ///
    /// [`JobError::ZeroPeriod`], [`JobError::UnknownQueue`].
    pub fn every<F, Fut>(&self, key: K, period: Duration, run: F) -> Result<JobHandle, JobError>
    where
        F: FnMut(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let first = time::now().checked_add(period).unwrap_or_else(time::now);
        self.job(key).every(period).start_at(first).spawn(run)
    }

    /// Runs `run` once at `when` (at once if it has passed) on the queue
    /// with this key.
    ///
    /// # Errors
    ///
    /// [`JobError::UnknownQueue`].
    pub fn at<F, Fut>(&self, key: K, when: Instant, run: F) -> Result<JobHandle, JobError>
    where
        F: FnOnce(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let mut run = Some(run);
        self.job(key).start_at(when).max_runs(1).spawn(move |ctx| {
            let run = run.take();
            async move {
                if let Some(run) = run {
                    run(ctx).await;
                }
            }
        })
    }
}

impl<K: fmt::Debug> fmt::Debug for JobBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobBuilder")
            .field("key", &self.key)
            .field("period", &self.period)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("max_runs", &self.max_runs)
            .field("misfire", &self.misfire)
            .field("overlap", &self.overlap)
            .finish_non_exhaustive()
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> crate::Executor<K> {
    /// See [`Handle::job`].
    pub fn job(&self, key: K) -> JobBuilder<K> {
        self.handle().job(key)
    }

    /// See [`Handle::every`].
    ///
    /// # Errors
    ///
    /// [`JobError::ZeroPeriod`], [`JobError::UnknownQueue`].
    pub fn every<F, Fut>(&self, key: K, period: Duration, run: F) -> Result<JobHandle, JobError>
    where
        F: FnMut(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.handle().every(key, period, run)
    }

    /// See [`Handle::at`].
    ///
    /// # Errors
    ///
    /// [`JobError::UnknownQueue`].
    pub fn at<F, Fut>(&self, key: K, when: Instant, run: F) -> Result<JobHandle, JobError>
    where
        F: FnOnce(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.handle().at(key, when, run)
    }
}

#[cfg(feature = "cron")]
use time::wall_now;

/// The longest single sleep toward a wall-clock due time: the wall clock
/// may jump (NTP, suspend, a manual change) while the timer sleeps on the
/// monotonic clock, so it looks again at least this often.
#[cfg(feature = "cron")]
const WALL_RECHECK: Duration = Duration::from_secs(60);

/// The scheduler task of a cron job.
#[cfg(feature = "cron")]
async fn cron_schedule<K, F, Fut>(
    cron: cron::CronSchedule,
    plan: Plan,
    state: Arc<JobState>,
    queue: crate::QueueHandle<K>,
    mut run: F,
) where
    K: Copy + Eq + Hash + fmt::Debug + 'static,
    F: FnMut(JobContext) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    use std::time::SystemTime;
    let mut runner = Runner::new(plan, state, queue);
    let (plan, state) = (runner.plan.clone(), runner.state.clone());
    // The latest due time reached: never run twice for one due time, even
    // if the wall clock goes back.
    let mut last_due: SystemTime = wall_now();
    loop {
        if runner.is_done() {
            state.set_next_due(None);
            return;
        }
        let Some(due) = cron.next_after(last_due) else {
            state.set_next_due(None);
            return;
        };
        let as_instant = |wall: SystemTime| match wall.duration_since(wall_now()) {
            Ok(ahead) => time::now() + ahead,
            Err(behind) => time::now() - behind.duration(),
        };
        if plan.end.is_some_and(|end| as_instant(due) >= end) {
            state.set_next_due(None);
            return;
        }
        state.set_next_due(Some(as_instant(due)));
        // Sleep toward the wall-clock due time in capped steps.
        loop {
            match due.duration_since(wall_now()) {
                Ok(ahead) if !ahead.is_zero() => time::sleep(ahead.min(WALL_RECHECK)).await,
                _ => break,
            }
        }
        // Due times reached since: `due`, and any later ones up to now (a
        // forward jump, or a busy executor).
        let now = wall_now();
        let mut latest = due;
        let mut missed: u64 = 0;
        while let Some(next) = cron.next_after(latest) {
            if next > now {
                break;
            }
            latest = next;
            missed += 1;
        }
        runner.reached(as_instant(due), missed, &mut run);
        last_due = latest;
    }
}

impl<K: Copy + Eq + Hash + fmt::Debug + 'static> Handle<K> {
    /// Runs `run` on the due times of cron expression `expr` in time zone
    /// `zone` (see [`JobBuilder::cron`]).
    ///
    /// # Errors
    ///
    /// [`JobError::Cron`] (naming what is wrong), [`JobError::UnknownZone`],
    /// [`JobError::UnknownQueue`].
    #[cfg(feature = "cron")]
    pub fn cron<F, Fut>(
        &self,
        key: K,
        expr: &str,
        zone: &str,
        run: F,
    ) -> Result<JobHandle, JobError>
    where
        F: FnMut(JobContext) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.job(key).cron(expr, zone).spawn(run)
    }
}
