//! Counters the executor keeps as it runs, and the snapshots it hands out.
//!
//! The live counters are plain `Cell`s owned by the executor thread and
//! updated on the hot path (a few adds per poll). [`Executor::stats`] and
//! [`Executor::queue_stats`] copy them into the plain, public snapshot types
//! of this module.
//!
//! [`Executor::stats`]: crate::Executor::stats
//! [`Executor::queue_stats`]: crate::Executor::queue_stats

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use crate::clock::Clock;
use crate::task::GroupId;

/// Sub-buckets per power of two: 16 gives percentiles within about 6%.
const SUB_BITS: u32 = 4;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Values at or above `2^MAX_EXP` ticks (days) share the last bucket.
const MAX_EXP: u32 = 48;
const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize + 1) * SUB_COUNT;

/// A log-linear histogram of tick counts, cheap enough to update on every
/// poll: one `leading_zeros`, two shifts and an increment.
pub(crate) struct Histogram {
    buckets: Box<[Cell<u64>]>,
    max: Cell<u64>,
    sum: Cell<u64>,
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| Cell::new(0)).collect(),
            max: Cell::new(0),
            sum: Cell::new(0),
        }
    }

    #[inline]
    fn index(value: u64) -> usize {
        if value < SUB_COUNT as u64 {
            return value as usize;
        }
        let exp = (63 - value.leading_zeros()).min(MAX_EXP);
        let mantissa = if exp == MAX_EXP {
            SUB_COUNT as u64 - 1
        } else {
            (value >> (exp - SUB_BITS)) - SUB_COUNT as u64
        };
        (exp - SUB_BITS + 1) as usize * SUB_COUNT + mantissa as usize
    }

    /// The largest value that falls in bucket `index`.
    fn upper_bound(index: usize) -> u64 {
        if index < SUB_COUNT {
            return index as u64;
        }
        let group = (index / SUB_COUNT) as u32;
        let mantissa = (index % SUB_COUNT + SUB_COUNT) as u64;
        let shift = group - 1;
        ((mantissa + 1) << shift) - 1
    }

    #[inline]
    pub(crate) fn record(&self, value: u64) {
        let bucket = &self.buckets[Self::index(value)];
        bucket.set(bucket.get() + 1);
        self.sum.set(self.sum.get().wrapping_add(value));
        if value > self.max.get() {
            self.max.set(value);
        }
    }

    /// The value at quantile `q` (0..=1), as the upper bound of its bucket,
    /// never above the largest value recorded.
    fn count(&self) -> u64 {
        self.buckets.iter().map(Cell::get).sum()
    }

    fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.get();
            if seen >= rank {
                return Self::upper_bound(index).min(self.max.get());
            }
        }
        self.max.get()
    }

    pub(crate) fn snapshot(&self, clock: &Clock) -> DelayStats {
        let count = self.count();
        DelayStats {
            samples: count,
            mean: clock.to_duration(self.sum.get().checked_div(count).unwrap_or(0)),
            p50: clock.to_duration(self.quantile(0.50)),
            p90: clock.to_duration(self.quantile(0.90)),
            p99: clock.to_duration(self.quantile(0.99)),
            p999: clock.to_duration(self.quantile(0.999)),
            max: clock.to_duration(self.max.get()),
        }
    }
}

/// Live counters of one queue, updated by the executor thread.
pub(crate) struct QueueCounters {
    pub(crate) polls: Cell<u64>,
    /// CPU time spent polling this queue's tasks, in ticks.
    pub(crate) busy: Cell<u64>,
    pub(crate) spawned: Cell<u64>,
    pub(crate) completed: Cell<u64>,
    pub(crate) cancelled: Cell<u64>,
    pub(crate) panicked: Cell<u64>,
    pub(crate) slices: Cell<u64>,
    pub(crate) preemptions: Cell<u64>,
    pub(crate) queue_delay: Histogram,
    /// Polls that ran past the stall threshold, and the longest (ticks).
    pub(crate) stalls: Cell<u64>,
    pub(crate) longest_stall: Cell<u64>,
}

impl QueueCounters {
    pub(crate) fn new() -> QueueCounters {
        QueueCounters {
            polls: Cell::new(0),
            busy: Cell::new(0),
            spawned: Cell::new(0),
            completed: Cell::new(0),
            cancelled: Cell::new(0),
            panicked: Cell::new(0),
            slices: Cell::new(0),
            preemptions: Cell::new(0),
            queue_delay: Histogram::new(),
            stalls: Cell::new(0),
            longest_stall: Cell::new(0),
        }
    }
}

/// Executor-wide counters, updated by the executor thread.
pub(crate) struct ExecutorCounters {
    /// `run_until` handed control back to its host while work was runnable.
    pub(crate) host_yields: Cell<u64>,
    /// `run_until` returned `Pending` with nothing runnable.
    pub(crate) idle_waits: Cell<u64>,
    /// How long each poll of a `run_until` future kept its host waiting.
    pub(crate) host_holds: Histogram,
}

impl Default for ExecutorCounters {
    fn default() -> Self {
        ExecutorCounters {
            host_yields: Cell::new(0),
            idle_waits: Cell::new(0),
            host_holds: Histogram::new(),
        }
    }
}

impl fmt::Debug for ExecutorCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorCounters")
            .field("host_yields", &self.host_yields.get())
            .field("idle_waits", &self.idle_waits.get())
            .finish_non_exhaustive()
    }
}

#[inline]
pub(crate) fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

/// Queue delay: the time from a task becoming runnable (spawned or woken) to
/// the start of its next poll.
///
/// Percentiles come from a log-linear histogram and are accurate to about 6%;
/// `max` is exact. A wake that happens during another task's poll is dated
/// at the start of that poll, so local wake-ups are over- rather than
/// under-estimated by at most the waker's poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayStats {
    /// How many delays were recorded (one per poll).
    pub samples: u64,
    /// The mean delay.
    pub mean: Duration,
    /// The median delay.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The largest delay seen.
    pub max: Duration,
}

/// A snapshot of one queue's counters. See [`Executor::queue_stats`].
///
/// [`Executor::queue_stats`]: crate::Executor::queue_stats
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueStats<K> {
    /// The queue's key.
    pub key: K,
    /// The queue's weight.
    pub weight: u32,
    /// Task polls run for this queue.
    pub polls: u64,
    /// CPU time spent polling this queue's tasks (including the executor's
    /// own bookkeeping between polls, a few tens of nanoseconds each).
    pub busy: Duration,
    /// Tasks spawned onto this queue.
    pub spawned: u64,
    /// Tasks that ran to completion.
    pub completed: u64,
    /// Tasks aborted (or dropped by a task scheduler) before they
    /// completed.
    pub cancelled: u64,
    /// Tasks whose poll panicked, or whose future panicked when dropped.
    pub panicked: u64,
    /// Tasks waiting to be polled right now.
    pub runnable: usize,
    /// Times the scheduler picked this queue (one turn of up to one slice).
    pub slices: u64,
    /// Times this queue became runnable with an earlier deadline than the
    /// running queue and preempted it at the next poll boundary.
    pub preemptions: u64,
    /// Scheduling lag in nanoseconds: CPU time the queue is owed (positive)
    /// or has received in excess (negative) relative to its weighted fair
    /// share. Bounded by about one slice plus one poll.
    pub lag_nanos: i64,
    /// Time from wake-up to poll.
    pub queue_delay: DelayStats,
    /// Polls of this queue's tasks that ran longer than the stall threshold
    /// (see [`ExecutorBuilder::with_stall_threshold`](crate::ExecutorBuilder::with_stall_threshold));
    /// always 0 with the watchdog off. Counted when the poll ends.
    pub stalls: u64,
    /// The longest of those polls (zero if none).
    pub longest_stall: Duration,
    /// The queue's task scheduler: [`TaskScheduler::name`](crate::sched::TaskScheduler::name),
    /// `"Fifo"` by default.
    pub scheduler: &'static str,
    /// The queue's live task groups, by id. A group's state (and its entry
    /// here) is dropped when its last task ends.
    pub groups: Vec<GroupStats>,
}

/// A snapshot of one live task group (see [`QueueStats::groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStats {
    /// The group's id.
    pub id: GroupId,
    /// Its weight.
    pub weight: u32,
    /// Its tasks alive now.
    pub live_tasks: usize,
    /// Its tasks spawned so far.
    pub spawned: u64,
    /// Its tasks that finished (completed, panicked or cancelled).
    pub finished: u64,
    /// CPU time spent polling its tasks.
    pub busy: Duration,
}

/// A snapshot of the whole executor. See [`Executor::stats`].
///
/// Its `Display` prints a table, one row per queue:
///
/// ```
/// # let executor = clockworker::ExecutorBuilder::new().with_queue("fg", 8).with_queue("bg", 1).build().unwrap();
/// println!("{}", executor.stats());
/// ```
///
/// [`Executor::stats`]: crate::Executor::stats
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecutorStats<K> {
    /// One entry per queue, in the order they were configured.
    pub queues: Vec<QueueStats<K>>,
    /// Tasks alive (spawned and not yet finished or dropped).
    pub live_tasks: usize,
    /// Times the executor handed control back to its host runtime while work
    /// was still runnable (see
    /// [`ExecutorBuilder::with_host_yield_interval`](crate::ExecutorBuilder::with_host_yield_interval)).
    pub host_yields: u64,
    /// Times the executor had nothing to run and waited for a wake-up.
    pub idle_waits: u64,
    /// Wake-ups and spawns that arrived from other threads (or from this
    /// thread while the executor was not running).
    pub remote_schedules: u64,
    /// How long each poll of a [`run_until`](crate::Executor::run_until)
    /// future kept its host runtime waiting. The host's IO driver and
    /// timers do not run meanwhile, so this is how long a socket that
    /// became ready can go unseen: a wait that the queue delay (wake to
    /// poll) cannot show, because the wake comes only after it. Empty for
    /// [`block_on`](crate::Executor::block_on), which has no host.
    pub host_hold: DelayStats,
    /// Calls of the stall handler (see
    /// [`ExecutorBuilder::on_stall`](crate::ExecutorBuilder::on_stall))
    /// that panicked; each panic is caught.
    pub stall_handler_panics: u64,
}

impl<K> ExecutorStats<K> {
    /// The stats of the queue with this key.
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("bg", 2).build().unwrap();
    /// assert_eq!(executor.stats().queue("bg").unwrap().weight, 2);
    /// assert!(executor.stats().queue("fg").is_none());
    /// ```
    pub fn queue(&self, key: K) -> Option<&QueueStats<K>>
    where
        K: PartialEq,
    {
        self.queues.iter().find(|queue| queue.key == key)
    }

    /// Task polls over all queues.
    pub fn polls(&self) -> u64 {
        self.queues.iter().map(|q| q.polls).sum()
    }

    /// CPU time spent polling tasks, over all queues.
    pub fn busy(&self) -> Duration {
        self.queues.iter().map(|q| q.busy).sum()
    }

    /// Tasks spawned over all queues.
    pub fn spawned(&self) -> u64 {
        self.queues.iter().map(|q| q.spawned).sum()
    }

    /// Tasks completed over all queues.
    pub fn completed(&self) -> u64 {
        self.queues.iter().map(|q| q.completed).sum()
    }

    /// Tasks cancelled over all queues.
    pub fn cancelled(&self) -> u64 {
        self.queues.iter().map(|q| q.cancelled).sum()
    }

    /// Tasks that panicked over all queues.
    pub fn panicked(&self) -> u64 {
        self.queues.iter().map(|q| q.panicked).sum()
    }

    /// Tasks waiting to be polled, over all queues.
    pub fn runnable(&self) -> usize {
        self.queues.iter().map(|q| q.runnable).sum()
    }

    /// Each queue's share of the total busy time, in configuration order
    /// (zeros if nothing ran yet).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue("only", 1).build().unwrap();
    /// let only = executor.queue("only").unwrap();
    /// executor.block_on(only.spawn(async {
    ///     let start = std::time::Instant::now();
    ///     while start.elapsed() < std::time::Duration::from_millis(1) {}
    /// })).unwrap();
    /// assert_eq!(executor.stats().cpu_shares(), [1.0]);
    /// ```
    pub fn cpu_shares(&self) -> Vec<f64> {
        let total = self.busy().as_secs_f64();
        self.queues
            .iter()
            .map(|q| {
                if total > 0.0 {
                    q.busy.as_secs_f64() / total
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Formats a duration compactly: `850ns`, `12.3µs`, `4.56ms`, `1.20s`.
fn short(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        format!("{:.1}µs", nanos as f64 / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.2}ms", nanos as f64 / 1e6)
    } else {
        format!("{:.2}s", nanos as f64 / 1e9)
    }
}

impl<K: fmt::Debug> fmt::Display for ExecutorStats<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shares = self.cpu_shares();
        writeln!(
            f,
            "{:<14} {:>6} {:>7} {:>10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
            "queue",
            "weight",
            "share",
            "polls",
            "busy",
            "spawned",
            "done",
            "cancel",
            "panic",
            "runnable",
            "delay50",
            "delay99",
            "delayMax"
        )?;
        for (q, share) in self.queues.iter().zip(shares) {
            let key = format!("{:?}", q.key);
            writeln!(
                f,
                "{:<14} {:>6} {:>6.1}% {:>10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
                key,
                q.weight,
                share * 100.0,
                q.polls,
                short(q.busy),
                q.spawned,
                q.completed,
                q.cancelled,
                q.panicked,
                q.runnable,
                short(q.queue_delay.p50),
                short(q.queue_delay.p99),
                short(q.queue_delay.max),
            )?;
        }
        write!(
            f,
            "live tasks: {}, host yields: {}, idle waits: {}, remote schedules: {}, \
             host held p50/p99/max: {}/{}/{}",
            self.live_tasks,
            self.host_yields,
            self.idle_waits,
            self.remote_schedules,
            short(self.host_hold.p50),
            short(self.host_hold.p99),
            short(self.host_hold.max),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_contain_their_values() {
        for value in (0..5_000u64).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3]) {
            let index = Histogram::index(value);
            assert!(index < BUCKETS);
            if value < (1 << MAX_EXP) {
                assert!(Histogram::upper_bound(index) >= value, "value {value}");
                // Relative bucket width stays below 1/16.
                let lower = if index == 0 {
                    0
                } else {
                    Histogram::upper_bound(index - 1) + 1
                };
                assert!(lower <= value);
                assert!((Histogram::upper_bound(index) - lower) * 16 <= value.max(16));
            }
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.07, "p50 {p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.07, "p99 {p99}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(h.max.get(), 1_000_000);
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.99), 0);
        let s = h.snapshot(&Clock::get());
        assert_eq!(s.samples, 0);
        assert_eq!(s.max, Duration::ZERO);
    }
}
