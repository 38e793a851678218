//! Timers that work on every host: [`sleep`], [`sleep_until`], [`timeout`]
//! and [`interval`].
//!
//! Each executor has its own timers (one ordered map per executor, so a
//! pool's workers each have theirs), fired by its run loop at poll
//! boundaries once their deadline passes. When the executor goes idle with
//! a timer pending, it arranges to be woken at the deadline:
//!
//! - under the executor's own [`block_on`](crate::Executor::block_on)
//!   (and a pool's workers without the `tokio` feature), its thread parks
//!   with that deadline: no other thread is involved;
//! - on any other host (tokio, smol, `futures_lite::future::block_on`...),
//!   one shared timer thread for the whole process sleeps until the
//!   earliest such deadline and then rings the executor's doorbell, which
//!   wakes its host.
//!
//! Nothing polls: an idle executor whose next timer is an hour away sleeps
//! for an hour. A timer polled outside any executor (by a plain
//! `block_on`, say) is woken by the timer thread directly.
//!
//! Timer futures are `Send`; dropping one cancels it (O(log n)).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use clockworker::{time, ExecutorBuilder};
//!
//! let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
//! let started = Instant::now();
//! executor.block_on(async {
//!     time::sleep(Duration::from_millis(5)).await;
//!     let slow = std::future::pending::<()>();
//!     assert!(time::timeout(Duration::from_millis(5), slow).await.is_err());
//! });
//! assert!(started.elapsed() >= Duration::from_millis(10));
//! ```

mod driver;
pub(crate) mod helper;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::shared::Shared;
use driver::{Driver, TimerKey};

/// Waits until `duration` has passed.
///
/// ```
/// # use std::time::Duration;
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// executor.block_on(clockworker::time::sleep(Duration::from_millis(1)));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = now();
    sleep_until(now.checked_add(duration).unwrap_or_else(far_future))
}

/// Waits until `deadline` (at once if it has passed), on the timer clock
/// of the executor that polls it (see [`now`]).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

/// The current executor's timer clock: `Instant::now()`, unless a test
/// [`pause`]d it; outside any executor, `Instant::now()`.
pub fn now() -> Instant {
    match current_driver() {
        Some((_, driver)) => driver.now(),
        None => Instant::now(),
    }
}

/// The executor running on this thread and its timers.
fn current_driver() -> Option<(std::rc::Rc<crate::core::Core>, Arc<Driver>)> {
    let core = crate::context::current()?;
    let driver = Driver::of(&core.shared)?;
    Some((core, driver))
}

/// The test clock's functions need an executor: they were called outside
/// any code an executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoExecutor(());

impl fmt::Display for NoExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no clockworker executor is running on this thread; pause, advance and resume \
             act on the timers of the executor that runs the calling code",
        )
    }
}

impl std::error::Error for NoExecutor {}

/// Pauses the timer clock of the executor running the calling code (for
/// tests): time stands still for its timers until [`advance`] moves it or
/// [`resume`] lets it run again, and whenever the executor has nothing to
/// run but timers, the clock jumps to the next deadline at once (so a test
/// that sleeps an hour finishes in microseconds). [`now`], [`sleep`] and
/// [`interval`] read the paused clock; `Instant::now()` does not.
///
/// # Errors
///
/// [`NoExecutor`] outside code an executor runs.
///
/// ```
/// use std::time::Duration;
/// use clockworker::time;
///
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// let real = std::time::Instant::now();
/// executor.block_on(async {
///     time::pause().unwrap();
///     let start = time::now();
///     time::sleep(Duration::from_secs(3600)).await;
///     assert!(time::now() - start >= Duration::from_secs(3600));
/// });
/// assert!(real.elapsed() < Duration::from_secs(60));
/// ```
pub fn pause() -> Result<(), NoExecutor> {
    let (core, driver) = current_driver().ok_or(NoExecutor(()))?;
    driver.pause(&core.shared);
    Ok(())
}

/// Moves the paused clock forward by `by`, waking the timers it passes
/// (their tasks run at the executor's next poll boundary). Returns `false`
/// if the clock is not paused (nothing happens).
///
/// # Errors
///
/// [`NoExecutor`] outside code an executor runs.
pub fn advance(by: Duration) -> Result<bool, NoExecutor> {
    let (_, driver) = current_driver().ok_or(NoExecutor(()))?;
    Ok(driver.advance(by))
}

/// The wall clock as the current executor's timers see it:
/// `SystemTime::now()`, unless a test paused the clock (it then moves with
/// the paused clock, and [`jump_wall_clock`] moves it alone); outside any
/// executor, `SystemTime::now()`. Cron jobs read it.
pub fn wall_now() -> std::time::SystemTime {
    match current_driver() {
        Some((_, driver)) => driver.wall_now(),
        None => std::time::SystemTime::now(),
    }
}

/// Makes the paused wall clock jump by `by`, forward or back, without
/// moving the monotonic clock: what NTP, a suspend or a manual change do
/// to a real one (for testing wall-clock schedules). Returns `false` if the
/// clock is not paused (nothing happens).
///
/// # Errors
///
/// [`NoExecutor`] outside code an executor runs.
pub fn jump_wall_clock(by: Duration, forward: bool) -> Result<bool, NoExecutor> {
    let (_, driver) = current_driver().ok_or(NoExecutor(()))?;
    let nanos = i128::try_from(by.as_nanos()).unwrap_or(i128::MAX);
    Ok(driver.jump_wall(if forward { nanos } else { -nanos }))
}

/// Lets the timer clock run again (real time); timers whose deadlines the
/// paused clock passed fire at once. Returns `false` if it was not paused.
///
/// # Errors
///
/// [`NoExecutor`] outside code an executor runs.
pub fn resume() -> Result<bool, NoExecutor> {
    let (core, driver) = current_driver().ok_or(NoExecutor(()))?;
    Ok(driver.resume(&core.shared))
}

/// About 30 years from now: "never", for a deadline that overflows.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Where a pending [`Sleep`] is registered.
enum Entry {
    /// In the timers of the executor whose shared state this is.
    Executor {
        owner: Arc<Shared>,
        driver: Arc<Driver>,
        key: TimerKey,
    },
    /// With the timer thread (polled outside any executor).
    Helper { key: (u64, u64), waker: Waker },
}

/// The future of [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<Entry>,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed, on the timer clock of the
    /// executor it last waited on (or of the current one, or real time).
    pub fn is_elapsed(&self) -> bool {
        match &self.entry {
            Some(Entry::Executor { driver, .. }) => driver.remaining(self.deadline).is_none(),
            _ => match current_driver() {
                Some((_, driver)) => driver.remaining(self.deadline).is_none(),
                None => Instant::now() >= self.deadline,
            },
        }
    }

    /// Moves the deadline (earlier or later), as a new sleep would.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    fn cancel(&mut self) {
        match self.entry.take() {
            Some(Entry::Executor { driver, key, .. }) => driver.remove(key),
            Some(Entry::Helper { key, .. }) => helper::cancel(key),
            None => {}
        }
    }

    /// Registers (or refreshes) the timer with the executor running `cx`'s
    /// task (`current`), or with the timer thread outside any executor.
    /// `due`: the deadline in that clock's ticks.
    fn register(
        &mut self,
        cx: &mut Context<'_>,
        current: Option<(std::rc::Rc<crate::core::Core>, Arc<Driver>)>,
        due: u64,
    ) {
        match (&self.entry, &current) {
            (Some(Entry::Executor { owner, driver, key }), Some((core, _)))
                if Arc::ptr_eq(owner, &core.shared) && driver.update(*key, cx.waker()) =>
            {
                return;
            }
            (Some(Entry::Helper { waker, .. }), None) if waker.will_wake(cx.waker()) => return,
            _ => {}
        }
        self.cancel();
        self.entry = Some(match current {
            Some((core, driver)) => {
                let key = driver.insert(due, self.deadline, cx.waker().clone(), &core.shared);
                Entry::Executor {
                    owner: core.shared.clone(),
                    driver,
                    key,
                }
            }
            None => {
                let waker = cx.waker().clone();
                Entry::Helper {
                    key: helper::wake_at(due, waker.clone()),
                    waker,
                }
            }
        });
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let current = current_driver();
        let remaining = match &current {
            Some((_, driver)) => driver.remaining(self.deadline),
            None => driver::real_remaining(self.deadline),
        };
        let Some(due) = remaining else {
            self.cancel();
            return Poll::Ready(());
        };
        self.register(cx, current, due);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.entry.is_some())
            .finish()
    }
}

/// The error of [`timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future` for at most `duration`: its output, or [`Elapsed`] (the
/// future is then dropped with the `Timeout`).
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// [`timeout`] with a deadline.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`] and [`timeout_at`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What an [`Interval`] does when ticks were missed (the task came late).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()`, then keep the
    /// original schedule (start + k·period): the default, as tokio's.
    #[default]
    Burst,
    /// Fire once now, then `period` after each late tick: the schedule
    /// shifts.
    Delay,
    /// Fire once now, then at the next tick of the original schedule.
    Skip,
}

/// Ticks every `period`, the first tick at once; ticks never drift (tick
/// `k` is due at start + k·period).
///
/// # Panics
///
/// Panics if `period` is zero.
///
/// ```
/// # use std::time::Duration;
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// executor.block_on(async {
///     let mut ticks = clockworker::time::interval(Duration::from_millis(1));
///     let first = ticks.tick().await;
///     let third = { ticks.tick().await; ticks.tick().await };
///     assert_eq!(third - first, Duration::from_millis(2));
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(now(), period)
}

/// [`interval`] whose first tick is at `start`.
///
/// # Panics
///
/// Panics if `period` is zero.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "clockworker::time::interval: the period must not be zero"
    );
    Interval {
        next: start,
        period,
        missed: MissedTickBehavior::default(),
        sleep: sleep_until(start),
    }
}

/// The stream of ticks of [`interval`].
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
    missed: MissedTickBehavior,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick; returns when it was due.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let due = self.next;
        let now = now();
        let next = match self.missed {
            MissedTickBehavior::Burst => due + self.period,
            MissedTickBehavior::Delay if now > due + self.period => now + self.period,
            MissedTickBehavior::Delay => due + self.period,
            MissedTickBehavior::Skip => {
                let late = now.saturating_duration_since(due).as_nanos();
                let periods = late / self.period.as_nanos() + 1;
                let periods = u32::try_from(periods).unwrap_or(u32::MAX);
                due.checked_add(self.period * periods)
                    .unwrap_or_else(far_future)
            }
        };
        self.next = next;
        self.sleep.reset(next);
        Poll::Ready(due)
    }

    /// What to do about missed ticks (default [`MissedTickBehavior::Burst`]).
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.next = now() + self.period;
        self.sleep.reset(self.next);
    }
}

#[cfg(all(test, not(clockworker_loom)))]
mod tests {
    use super::*;

    /// On the executor's own `block_on` (CI runs this without `tokio` too):
    /// the thread parks with the deadline, and a pool's workers do the same.
    #[test]
    fn sleeps_on_block_on_and_on_a_pool() {
        let executor = crate::ExecutorBuilder::new()
            .with_queue(0u8, 1)
            .build()
            .unwrap();
        let started = Instant::now();
        executor.block_on(sleep(Duration::from_millis(10)));
        assert!(started.elapsed() >= Duration::from_millis(10));
        assert!(executor.stats().idle_waits <= 5);

        let pool = crate::Pool::builder()
            .workers(1)
            .with_queue(0u8, 1)
            .build()
            .unwrap();
        let started = Instant::now();
        let napped = pool.spawn(0, sleep(Duration::from_millis(10)));
        pool.block_on(napped).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(10));
        pool.shutdown_blocking();
    }
}
