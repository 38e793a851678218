//! The turn in progress and the clock: which queue runs, how much of its
//! slice it has used, whether it must give way, and when the host gets
//! control back.
//!
//! Owns the EEVDF scheduler between queues ([`Eevdf`]) and all reading of
//! the clock on the run loop's side. The queues' contents are not its
//! business: the core tells it when a queue becomes runnable
//! ([`Turn::activate`]) and whether the queue whose turn ends still is
//! ([`Turn::end`]).
//!
//! # Clock sampling
//!
//! - While two or more queues are active, the clock is read at every poll
//!   boundary and the ticks between two reads are charged to the queue
//!   whose task was polled in between, so a turn overruns its budget by at
//!   most the poll that crossed it, and a queue that becomes runnable waits
//!   at most for the poll in progress.
//! - With a single active queue there is no one to share with, so the clock
//!   is read every `stride`-th boundary: the stride doubles (up to
//!   [`MAX_STRIDE`]) while the polls between two reads averaged under
//!   `short_poll`, and drops back to 1 after any longer stretch. All elapsed
//!   time is still charged (at the next read); what loses precision is only
//!   the per-poll timestamp (queue-delay samples, the host-yield check,
//!   which may come up to `MAX_STRIDE - 1` short polls late). A second queue
//!   becoming active switches back to reading at every boundary at once.
//!
//! # Weight changes
//!
//! A weight set between turns reaches the scheduler at once. One set during
//! a turn (from a task, from a `run_until` future, from a call between two
//! polls) waits: the running queue's budget was computed at its old weight,
//! and the new weight may change which queue should run. The turn ends at
//! the next poll boundary, and [`Turn::end`] applies the change after
//! charging the turn, before the next pick (see [`Turn::set_weight`]).

use std::cell::{Cell, RefCell};

use crate::clock::Clock;
use crate::eevdf::Eevdf;

/// Marker for "no queue is running".
const NONE: usize = usize::MAX;

/// At most this many polls between two clock reads (single active queue).
const MAX_STRIDE: u32 = 16;

/// The shortest time between two extra hand-offs to the host for IO (see
/// [`Turn::hand_off_first`]). A hand-off to an idle tokio costs well under
/// a microsecond (no measurable change in a yield loop at 10,000 hand-offs
/// a second); 50 µs keeps it under 1% even for polls of a few nanoseconds,
/// and bounds how long a heavier queue's ready socket goes unseen.
const IO_GAP: std::time::Duration = std::time::Duration::from_micros(20);

/// The same for a heavier queue about to run dry (see
/// [`Turn::hand_off_before_dry`]): shorter, as a queue that stays busy keeps
/// its place, and this happens at most once per batch of its work.
const DRY_GAP: std::time::Duration = std::time::Duration::from_micros(10);

pub(crate) struct Turn {
    clock: Clock,
    sched: RefCell<Eevdf>,
    /// The queue whose turn it is, or `NONE` (mirrors `sched.running()`).
    running: Cell<usize>,
    /// Ticks used in the running queue's turn so far, and its budget.
    used: Cell<u64>,
    budget: Cell<u64>,
    /// A queue became runnable with an earlier deadline than the running
    /// one, or a weight changed (see [`Turn::set_weight`]).
    preempt: Cell<bool>,
    /// Weights set while a turn was in progress, applied when it ends:
    /// `(queue, weight)`, one entry per queue.
    reweights: RefCell<Vec<(usize, u32)>>,
    /// Two or more queues are active (mirrors `sched.contended()`).
    contended: Cell<bool>,
    /// The last clock reading: `used` counts up to it. During a poll with
    /// every boundary sampled, the start of that poll.
    now: Cell<u64>,
    /// Polls since the last clock reading, and how many may pass between
    /// two readings (see the module docs).
    unsampled: Cell<u32>,
    stride: Cell<u32>,
    /// A poll shorter than this (on average) lets the clock be read less
    /// often while a single queue is active.
    short_poll: u64,
    /// When the current `run_until` poll must hand control back to its host.
    host_deadline: Cell<u64>,
    /// How long `run_until` may keep its host waiting while work is runnable.
    host_yield: u64,
    /// When the host last handed control to the executor, and whether there
    /// is a host at all (`run_until`, not `block_on`).
    host_started: Cell<u64>,
    has_host: Cell<bool>,
    /// A task has been polled since the host last handed control over:
    /// only then may the executor hand it back early for IO (see
    /// [`Turn::host_idle_for`]).
    polled_for_host: Cell<bool>,
    /// While a heavier queue is idle, the host gets control back at a turn
    /// boundary once this much time has passed since it last had it (see
    /// [`Turn::hand_off_first`] and [`IO_GAP`]).
    io_gap: u64,
    dry_gap: u64,
}

/// A turn that ended: the queue and the ticks it used.
pub(crate) struct Ended {
    pub(crate) queue: usize,
    pub(crate) used: u64,
}

impl Turn {
    pub(crate) fn new(clock: Clock, weights: &[u32], slice: u64, host_yield: u64) -> Turn {
        Turn {
            io_gap: clock.to_ticks(IO_GAP),
            dry_gap: clock.to_ticks(DRY_GAP),
            host_started: Cell::new(0),
            has_host: Cell::new(false),
            polled_for_host: Cell::new(false),
            short_poll: clock.to_ticks(std::time::Duration::from_micros(1)),
            clock,
            sched: RefCell::new(Eevdf::new(weights, slice)),
            running: Cell::new(NONE),
            used: Cell::new(0),
            budget: Cell::new(0),
            preempt: Cell::new(false),
            reweights: RefCell::new(Vec::new()),
            contended: Cell::new(false),
            now: Cell::new(0),
            unsampled: Cell::new(0),
            stride: Cell::new(1),
            host_deadline: Cell::new(u64::MAX),
            host_yield,
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The last clock reading.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.now.get()
    }

    /// The queue whose turn it is, if a turn is in progress.
    #[inline]
    pub(crate) fn running(&self) -> Option<usize> {
        let running = self.running.get();
        (running != NONE).then_some(running)
    }

    // ----- the host's turn -------------------------------------------------

    /// Starts a `run_until` poll: the host gets control back after the
    /// host-yield interval, or never if `host_yield` is false (`block_on`).
    /// Tasks spawned or woken before the loop runs are dated from here.
    pub(crate) fn begin_host_turn(&self, host_yield: bool) {
        let now = self.clock.now();
        self.now.set(now);
        self.host_started.set(now);
        self.has_host.set(host_yield);
        self.polled_for_host.set(false);
        let deadline = if host_yield {
            now.saturating_add(self.host_yield)
        } else {
            u64::MAX
        };
        self.host_deadline.set(deadline);
    }

    /// How long this `run_until` poll has kept the host waiting, if there
    /// is a host.
    pub(crate) fn host_held(&self) -> Option<u64> {
        self.has_host
            .get()
            .then(|| self.clock.now().saturating_sub(self.host_started.get()))
    }

    pub(crate) fn host_turn_over(&self) -> bool {
        self.clock.now() >= self.host_deadline.get()
    }

    pub(crate) fn host_deadline(&self) -> u64 {
        self.host_deadline.get()
    }

    /// Whether to hand control to the host before starting a turn of
    /// `queue`: the executor runs inside a host, a queue heavier than
    /// `queue` is idle, and the host has not had control for a while.
    ///
    /// A heavier queue that looks idle may be waiting for IO that is ready
    /// but not yet seen: the host's IO driver (tokio's, async-io's) runs
    /// only while the host has control. Without this, the lighter queue
    /// would run until the host-yield interval is over while the heavier
    /// queue's sockets sit unread. With it, the readiness of a heavier
    /// queue's IO reaches the scheduler within about one poll of the
    /// lighter queue (hand-offs at least [`IO_GAP`] apart), and its woken
    /// tasks then preempt the lighter queue as any wake does.
    #[inline]
    pub(crate) fn hand_off_first(&self, queue: usize) -> bool {
        self.io_due() && self.sched.borrow().heavier_idle(queue)
    }

    /// Whether to hand control to the host between two polls of the running
    /// queue, at most every [`IO_GAP`]: when a heavier queue is idle (as
    /// [`Turn::hand_off_first`], for a lighter queue whose turn goes on), or
    /// when a lighter queue is waiting (so that IO arriving for the running
    /// queue while it works is seen before it runs dry, and it stays busy
    /// instead of leaving the thread to the lighter queue's next poll).
    #[inline]
    pub(crate) fn hand_off_between_polls(&self) -> bool {
        let running = self.running.get();
        self.io_due() && running != NONE && {
            let sched = self.sched.borrow();
            sched.heavier_idle(running) || sched.lighter_active(running)
        }
    }

    /// Whether to hand control to the host now that the running queue `dry`
    /// found no task, before it leaves the scheduler to lighter queues: the
    /// IO that would keep it busy (a client's next request on a keep-alive
    /// connection, say) may have arrived while it ran. If it has, the queue
    /// goes on with its turn and keeps its place; leaving, it would forfeit
    /// its credit (an idle queue banks none) and wait behind a lighter
    /// queue's poll.
    #[inline]
    pub(crate) fn hand_off_before_dry(&self, dry: usize) -> bool {
        self.host_idle_for(self.dry_gap) && self.sched.borrow().lighter_active(dry)
    }

    /// There is a host, and it has not had control for [`IO_GAP`].
    #[inline]
    fn io_due(&self) -> bool {
        self.host_idle_for(self.io_gap)
    }

    /// There is a host, it has not had control for `gap` ticks, and a task
    /// has been polled since it last had it. Without that last condition a
    /// `run_until` future whose polls take longer than `gap` and that wakes
    /// itself would use up every host turn: the executor would hand control
    /// back before any task ran, and a lighter queue would starve.
    #[inline]
    fn host_idle_for(&self, gap: u64) -> bool {
        self.has_host.get()
            && self.polled_for_host.get()
            && self.now.get().saturating_sub(self.host_started.get()) >= gap
    }

    // ----- sampling ----------------------------------------------------------

    /// The run loop starts: time spent outside (in the host, in a
    /// `run_until` future) is nobody's.
    pub(crate) fn start_loop(&self) {
        self.now.set(self.clock.now());
        self.unsampled.set(0);
    }

    /// A poll just ended: reads the clock if this boundary is sampled (or
    /// `force`), and says whether it was.
    #[inline]
    pub(crate) fn poll_ended(&self, force: bool) -> bool {
        self.polled_for_host.set(true);
        let unsampled = self.unsampled.get() + 1;
        self.unsampled.set(unsampled);
        let sampled = force || self.contended.get() || unsampled >= self.stride.get();
        if sampled {
            self.sample();
        }
        sampled
    }

    /// Reads the clock, charges the time since the last reading to the
    /// running turn, and adapts the sampling stride.
    #[inline]
    fn sample(&self) {
        let now = self.clock.now();
        let elapsed = now.saturating_sub(self.now.get());
        self.used.set(self.used.get() + elapsed);
        self.now.set(now);
        let polls = u64::from(self.unsampled.replace(0));
        let stride = if self.contended.get() || elapsed >= polls * self.short_poll {
            1
        } else {
            (self.stride.get() * 2).min(MAX_STRIDE)
        };
        self.stride.set(stride);
    }

    /// Reads the clock if polls ran since the last reading.
    #[inline]
    pub(crate) fn settle(&self) {
        if self.unsampled.get() != 0 {
            self.sample();
        }
    }

    // ----- turns -------------------------------------------------------------

    /// Whether the running queue's turn is over: budget used, preempted, or
    /// no turn in progress.
    #[inline]
    pub(crate) fn is_over(&self) -> bool {
        self.running.get() == NONE || self.preempt.get() || self.used.get() >= self.budget.get()
    }

    /// Picks the queue for a new turn (the last one must have ended).
    #[inline]
    pub(crate) fn pick(&self) -> Option<usize> {
        let pick = self.sched.borrow_mut().pick()?;
        self.running.set(pick.queue);
        self.budget.set(pick.budget);
        Some(pick.queue)
    }

    /// Ends the running turn, if any: hands the queue back to the scheduler
    /// (to compete again if `still_runnable` says so) and returns what it
    /// used, for its counters.
    #[inline]
    pub(crate) fn end(&self, still_runnable: impl FnOnce(usize) -> bool) -> Option<Ended> {
        self.preempt.set(false);
        let queue = self.running.replace(NONE);
        if queue == NONE {
            return None;
        }
        let used = self.used.replace(0);
        let runnable = still_runnable(queue);
        let mut sched = self.sched.borrow_mut();
        sched.switch(used, runnable);
        // Weights set during the turn take effect before the next pick.
        for (queue, weight) in self.reweights.borrow_mut().drain(..) {
            sched.reweight(queue, weight);
        }
        self.contended.set(sched.contended());
        Some(Ended { queue, used })
    }

    /// Gives `queue` a new weight (in `1..=MAX_WEIGHT`) from the next
    /// scheduling decision on.
    ///
    /// Between turns it takes effect at once. During a turn (from a task
    /// being polled, from a `run_until` future or a call between two polls)
    /// the running queue's budget was computed at its old weight, and the
    /// new weight may change which queue should run: the change waits, and
    /// the turn ends at the next poll boundary, where [`Turn::end`] applies
    /// it after charging the turn, before the next pick. Either way the
    /// scheduler keeps every queue's lag (see `Eevdf::reweight`).
    pub(crate) fn set_weight(&self, queue: usize, weight: u32) {
        if self.running.get() == NONE
            && let Ok(mut sched) = self.sched.try_borrow_mut()
        {
            sched.reweight(queue, weight);
            return;
        }
        // (The scheduler is never borrowed while user code runs; if it were,
        // the change would wait for the end of the next turn.)
        let mut reweights = self.reweights.borrow_mut();
        match reweights.iter_mut().find(|(q, _)| *q == queue) {
            Some(entry) => entry.1 = weight,
            None => reweights.push((queue, weight)),
        }
        self.preempt.set(true);
    }

    /// Queue `queue` became runnable (its run queue was empty). Returns
    /// whether it preempts the running turn, now or once it becomes
    /// eligible.
    #[inline]
    pub(crate) fn activate(&self, queue: usize) -> bool {
        if self.running.get() == queue {
            // The running queue is active: a wake into it while it runs
            // (a ping-pong between two of its tasks) needs no scheduler.
            return false;
        }
        let mut sched = self.sched.borrow_mut();
        if sched.is_active(queue) {
            return false;
        }
        let preempts = sched.activate(queue);
        self.contended.set(sched.contended());
        match preempts {
            Some(0) => self.preempt.set(true),
            // End the running turn once the woken queue is eligible.
            Some(after) => self.budget.set(self.budget.get().min(after)),
            None => return false,
        }
        true
    }

    /// Whether the code being polled should give way (`yield_maybe`): the
    /// host's turn came, or (in a task) the running turn is over, or (in a
    /// `run_until` future) any queue is runnable.
    pub(crate) fn should_yield(&self, in_task: bool) -> bool {
        let now = self.clock.now();
        if now >= self.host_deadline.get() {
            return true;
        }
        if !in_task {
            return self.sched.borrow().has_active();
        }
        self.preempt.get()
            || self.used.get() + now.saturating_sub(self.now.get()) >= self.budget.get()
    }

    /// Whether any queue is runnable.
    pub(crate) fn has_active(&self) -> bool {
        self.sched.borrow().has_active()
    }

    // ----- stats -------------------------------------------------------------

    /// Ticks used so far by `queue`'s turn in progress (0 if not running).
    pub(crate) fn used_by(&self, queue: usize) -> u64 {
        if self.running.get() == queue {
            self.used.get()
        } else {
            0
        }
    }

    /// `queue`'s lag in ticks.
    pub(crate) fn lag(&self, queue: usize) -> i64 {
        self.sched.borrow().lag(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight_of(turn: &Turn, queue: usize) -> u64 {
        turn.sched.borrow().weight(queue)
    }

    #[test]
    fn a_weight_set_during_a_turn_waits_for_the_turn_to_end() {
        let turn = Turn::new(Clock::get(), &[1, 1], u64::MAX / 4, u64::MAX);
        turn.activate(0);
        turn.activate(1);
        let running = turn.pick().unwrap();
        assert!(!turn.is_over());
        // Both the running queue and the waiting one.
        turn.set_weight(running, 5);
        turn.set_weight(1 - running, 3);
        turn.set_weight(1 - running, 8);
        assert!(turn.is_over(), "the turn ends at the next poll boundary");
        assert_eq!((weight_of(&turn, 0), weight_of(&turn, 1)), (1, 1));
        let ended = turn.end(|_| true).unwrap();
        assert_eq!(ended.queue, running);
        assert_eq!(weight_of(&turn, running), 5);
        assert_eq!(weight_of(&turn, 1 - running), 8, "the last weight set wins");
        assert!(turn.contended.get());
        // Between turns: at once, and no turn to end.
        turn.set_weight(running, 2);
        assert_eq!(weight_of(&turn, running), 2);
        assert!(!turn.preempt.get());
    }
}
