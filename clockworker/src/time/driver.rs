//! One executor's timers: a `BTreeMap` from (deadline, sequence number) to
//! the waker of the task waiting for it, and the executor's timer clock,
//! which a test may pause and advance.
//!
//! The executor's run loop fires the due timers at its poll boundaries (its
//! `Shared::next_deadline` check), and, when it goes idle, asks this driver
//! to arm a wake-up for the next deadline: the park of the executor's own
//! `block_on` (a park with a deadline), or otherwise a `TIMER` ring from
//! the one shared timer thread (`helper`).
//!
//! While the clock is paused, real time means nothing to the timers: the
//! run loop's check is off (`next_deadline` is `u64::MAX`), [`Driver::advance`]
//! moves the clock and fires what it passes, and an executor that goes idle
//! with timers pending jumps straight to the next one (as tokio's paused
//! clock auto-advances).
//!
//! The map sits behind a mutex because a timer future is `Send` and may be
//! dropped (cancelled) on another thread; on the executor's thread the lock
//! is uncontended. Insert, cancel and fire are O(log n).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::Clock;
use crate::shared::{Deadlines, Shared};

/// A timer's place in its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    /// Clock ticks.
    pub(crate) deadline: u64,
    pub(crate) seq: u64,
}

/// A paused clock: it reads `at + elapsed` until advanced.
#[derive(Debug, Clone, Copy)]
struct Paused {
    /// Virtual time gone by since the pause.
    elapsed: Duration,
    /// The real reading (ticks) and the `Instant` when it was paused.
    at_ticks: u64,
    at_instant: Instant,
    /// The furthest deadline (ticks) the clock jumped to: a reading never
    /// falls short of a deadline it fired (ticks and durations convert
    /// with rounding).
    reached: u64,
    /// The wall clock when it was paused; it then moves with `elapsed`,
    /// plus the test's jumps.
    at_wall: SystemTime,
    /// Jumps of the wall clock (forward positive), nanoseconds.
    wall_jump: i128,
}

impl Paused {
    fn now_ticks(&self) -> u64 {
        let ticks = self
            .at_ticks
            .saturating_add(Clock::global().to_ticks(self.elapsed));
        ticks.max(self.reached)
    }

    fn now(&self) -> Instant {
        self.at_instant
            .checked_add(self.elapsed)
            .unwrap_or(self.at_instant)
    }

    fn ticks_of(&self, deadline: Instant) -> u64 {
        let ahead = deadline.saturating_duration_since(self.at_instant);
        self.at_ticks
            .saturating_add(Clock::global().to_ticks(ahead))
    }

    /// Jumps to a timer's deadline (`ticks`, and the `Instant` it came
    /// from), if it is ahead.
    fn reach(&mut self, ticks: u64, instant: Instant) {
        self.elapsed = self
            .elapsed
            .max(instant.saturating_duration_since(self.at_instant));
        self.reached = self.reached.max(ticks);
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Each timer's waker, and its deadline as an `Instant`.
    timers: BTreeMap<TimerKey, (Waker, Instant)>,
    next_seq: u64,
    paused: Option<Paused>,
}

impl Table {
    fn first_deadline(&self) -> u64 {
        self.timers
            .first_key_value()
            .map_or(u64::MAX, |(key, _)| key.deadline)
    }

    /// Takes the timers due at `now`.
    fn take_due(&mut self, now: u64) -> Vec<Waker> {
        let later = self.timers.split_off(&TimerKey {
            deadline: now.saturating_add(1),
            seq: 0,
        });
        std::mem::replace(&mut self.timers, later)
            .into_values()
            .map(|(waker, _)| waker)
            .collect()
    }

    /// What the run loop's check compares with: the first deadline, or
    /// never while paused.
    fn loop_deadline(&self) -> u64 {
        if self.paused.is_some() {
            u64::MAX
        } else {
            self.first_deadline()
        }
    }
}

/// The timers of one executor.
#[derive(Debug, Default)]
pub(crate) struct Driver {
    table: Mutex<Table>,
}

impl Driver {
    fn table(&self) -> MutexGuard<'_, Table> {
        // No user code runs under the lock.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver of `shared`'s executor, made on first use (`None` only
    /// if another kind of `Deadlines` were installed; the crate installs
    /// none).
    pub(crate) fn of(shared: &Shared) -> Option<Arc<Driver>> {
        let deadlines: Arc<dyn Deadlines> =
            shared.deadlines(|| Arc::new(Driver::default())).clone();
        let any: Arc<dyn std::any::Any + Send + Sync> = deadlines;
        any.downcast::<Driver>().ok()
    }

    /// The timer clock's reading, as an `Instant`.
    pub(crate) fn now(&self) -> Instant {
        match &self.table().paused {
            Some(paused) => paused.now(),
            None => Instant::now(),
        }
    }

    /// `None` if `deadline` has passed on the timer clock; else when it
    /// comes, in the clock's ticks.
    pub(crate) fn remaining(&self, deadline: Instant) -> Option<u64> {
        match &self.table().paused {
            Some(paused) => {
                let due = paused.ticks_of(deadline);
                (paused.now_ticks() < due).then_some(due)
            }
            None => real_remaining(deadline),
        }
    }

    /// Adds a timer for `deadline` (ticks) on the executor `shared` (this
    /// thread's, running): returns its key, and lowers the executor's next
    /// deadline if needed.
    pub(crate) fn insert(
        &self,
        deadline: u64,
        instant: Instant,
        waker: Waker,
        shared: &Shared,
    ) -> TimerKey {
        let (key, loop_deadline) = {
            let mut table = self.table();
            let key = TimerKey {
                deadline,
                seq: table.next_seq,
            };
            table.next_seq += 1;
            table.timers.insert(key, (waker, instant));
            (key, table.loop_deadline())
        };
        if loop_deadline < shared.next_deadline() {
            shared.set_next_deadline(loop_deadline);
        }
        key
    }

    /// Replaces the waker of a timer still waiting; `false` if it has fired
    /// (or was never here).
    pub(crate) fn update(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.table().timers.get_mut(&key) {
            Some((old, _)) => {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    /// Cancels a timer (a no-op if it has fired). The executor's next
    /// deadline may stay earlier than needed: it then wakes once for
    /// nothing and recomputes it.
    pub(crate) fn remove(&self, key: TimerKey) {
        let waker = self.table().timers.remove(&key);
        drop(waker);
    }

    /// Pauses the timer clock (a no-op if paused).
    pub(crate) fn pause(&self, shared: &Shared) {
        let mut table = self.table();
        if table.paused.is_none() {
            let now = Clock::global().now();
            table.paused = Some(Paused {
                elapsed: Duration::ZERO,
                at_ticks: now,
                at_instant: Instant::now(),
                reached: now,
                at_wall: SystemTime::now(),
                wall_jump: 0,
            });
        }
        shared.set_next_deadline(table.loop_deadline());
    }

    /// Resumes real time; the timers keep their deadlines (the paused
    /// clock's readings), so those it had passed fire at once. Returns
    /// whether it was paused.
    pub(crate) fn resume(&self, shared: &Shared) -> bool {
        let mut table = self.table();
        let was = table.paused.take().is_some();
        shared.set_next_deadline(table.loop_deadline());
        was
    }

    /// The wall clock as the timers see it: real, or (paused) the wall
    /// clock at the pause, moved with the paused clock and the test's
    /// jumps.
    pub(crate) fn wall_now(&self) -> SystemTime {
        match &self.table().paused {
            Some(paused) => {
                let wall = paused.at_wall + paused.elapsed;
                let jump = Duration::from_nanos(paused.wall_jump.unsigned_abs() as u64);
                if paused.wall_jump >= 0 {
                    wall + jump
                } else {
                    wall.checked_sub(jump).unwrap_or(SystemTime::UNIX_EPOCH)
                }
            }
            None => SystemTime::now(),
        }
    }

    /// Jumps the paused wall clock (not the monotonic one) by `nanos`
    /// (negative: back). Returns `false` if the clock is not paused.
    pub(crate) fn jump_wall(&self, nanos: i128) -> bool {
        match self.table().paused.as_mut() {
            Some(paused) => {
                paused.wall_jump += nanos;
                true
            }
            None => false,
        }
    }

    /// Moves the paused clock `by` forward and wakes the timers it passes
    /// (their tasks run at the executor's next poll boundary). Returns
    /// `false`, doing nothing, if the clock is not paused.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        let due = {
            let mut table = self.table();
            let Some(paused) = table.paused.as_mut() else {
                return false;
            };
            paused.elapsed = paused.elapsed.saturating_add(by);
            let now = paused.now_ticks();
            table.take_due(now)
        };
        for waker in due {
            waker.wake();
        }
        true
    }
}

/// `None` if `deadline` has passed in real time; else when it comes, in
/// clock ticks. (The `Instant` decides: a deadline converted to ticks and
/// back can land a few ticks off.)
pub(crate) fn real_remaining(deadline: Instant) -> Option<u64> {
    let now = Instant::now();
    (now < deadline).then(|| Clock::global().ticks_of(deadline))
}

impl Deadlines for Driver {
    fn fire(&self, now: u64, shared: &Shared) {
        let due = {
            let mut table = self.table();
            if table.paused.is_some() {
                shared.set_next_deadline(u64::MAX);
                return;
            }
            let due = table.take_due(now);
            shared.set_next_deadline(table.loop_deadline());
            due
        };
        for waker in due {
            waker.wake();
        }
    }

    fn going_idle(&self, shared: &Arc<Shared>) -> bool {
        let due = {
            let mut table = self.table();
            let Some((&first, &(_, instant))) = table.timers.first_key_value() else {
                return false;
            };
            let next = first.deadline;
            match table.paused.as_mut() {
                Some(paused) => {
                    // Nothing else can happen: jump to the next deadline.
                    paused.reach(next, instant);
                    let now = paused.now_ticks();
                    table.take_due(now)
                }
                None if next <= Clock::global().now() => {
                    let due = table.take_due(Clock::global().now());
                    shared.set_next_deadline(table.loop_deadline());
                    due
                }
                None => {
                    drop(table);
                    if !crate::run::wake_block_on_at(next) {
                        super::helper::ring_at(next, shared);
                    }
                    return false;
                }
            }
        };
        let fired = !due.is_empty();
        for waker in due {
            waker.wake();
        }
        fired
    }
}
