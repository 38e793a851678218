//! Weighted fair sharing between queues, in the manner of EEVDF.
//!
//! This module decides *which queue* runs next. It knows nothing of tasks or
//! futures: the executor tells it when a queue becomes runnable
//! ([`Eevdf::activate`]), how much CPU time the running queue used
//! ([`Eevdf::switch`]) and asks it for the next queue ([`Eevdf::pick`]).
//!
//! # The model
//!
//! Each queue `q` has a weight `w_q` and competes for one thread's CPU time.
//! Time is measured in clock ticks; *virtual* time is ticks scaled by
//! `2^SHIFT / weight`, so a queue's virtual clock runs slower the heavier it
//! is.
//!
//! - **Virtual runtime.** Each queue has a virtual eligible time `ve_q` (its
//!   virtual runtime): running for `t` ticks advances it by `t·2^SHIFT / w_q`.
//! - **Virtual time `V`.** The weighted average of `ve` over the *active*
//!   queues (those with runnable tasks, the running one included):
//!   `V = Σ w_q·ve_q / Σ w_q`. Because it is an average, the lags below always
//!   sum to zero, and `V` advances by `t·2^SHIFT / Σw` when any queue runs for
//!   `t` ticks, which is the rate at which an ideal weighted processor would
//!   serve every active queue at once.
//! - **Lag.** `lag_q = w_q·(V − ve_q)`: how much service the queue is owed
//!   (positive) or has received in excess (negative) compared with the ideal.
//! - **Eligibility.** A queue may run only if `lag_q ≥ 0`, i.e. `ve_q ≤ V`. At
//!   least one active queue is always eligible (the minimum of a set is never
//!   above its average).
//! - **Requests and deadlines.** When a queue starts a request it asks for one
//!   time slice `s` of real time; its virtual deadline is
//!   `vd_q = ve_q + s·2^SHIFT / w_q`. Heavier queues get closer deadlines for
//!   the same slice, which is what gives them lower latency.
//! - **Pick.** Among eligible queues, the earliest virtual deadline runs
//!   (ties: lower index). It keeps running until it has used the rest of its
//!   request (`(vd − ve)·w / 2^SHIFT` ticks), becomes empty, or is preempted.
//!   A request that is interrupted keeps its deadline; a new request starts
//!   only once `ve` has reached `vd`.
//! - **Preemption.** When a queue becomes runnable with an earlier deadline
//!   than the running queue's, it should run as soon as it is eligible:
//!   [`Eevdf::activate`] says after how much more running time of the
//!   current turn that is (zero if it is eligible already; otherwise the
//!   time it takes `V` to reach its eligible time, as `V` advances by
//!   `t·2^SHIFT / Σw` for every tick the running queue runs). The executor
//!   ends the running turn at the first poll boundary past that point. A
//!   poll itself is never interrupted.
//! - **Leaving and joining.** A queue that runs out of tasks leaves the
//!   average. If it had received more than its share (`ve_q > V`), it keeps
//!   that debt, capped at one request, and pays it back when it returns
//!   (bounded carried lag). Positive lag is forfeited: an idle queue banks no
//!   credit, so a queue that slept for a second re-joins at the current `V`
//!   and competes from there instead of monopolising the thread.
//! - **No active queues.** `V` freezes; the next queue to arrive starts there.
//! - **Reweighting.** A queue's weight may change while it competes
//!   ([`Eevdf::reweight`]), as Linux's `reweight_eevdf` does it: an active
//!   queue keeps its lag `w·(V − ve)`, so `ve' = V − (V − ve)·w/w'`, and the
//!   rest of its request keeps its length in real time,
//!   `vd' = V + (vd − V)·w/w'`; an idle queue keeps its debt in real time,
//!   `debt' = debt·w/w'`. Then `Σ w·ve` changes by exactly `(w' − w)·V`, so
//!   `V` stays where it was (the rounding of `ve'` is chosen so that it does
//!   exactly): no queue gains or loses credit by a reweight, and the others'
//!   eligibility and deadlines do not move. From the next request on, the
//!   queue asks for one slice at its new weight. The executor reweights a
//!   queue only between turns (see `core/turn.rs`).
//!
//! Consequences the executor relies on (and the tests check): over any window
//! in which a set of queues stays runnable, each receives CPU time in
//! proportion to its weight, within about one slice plus one poll of lag; a
//! newly runnable heavy queue starts at the next poll boundary unless the
//! running queue's request is nearly complete; and selection costs
//! `O(log n)` in the number of active queues (two binary heaps).
//!
//! # Arithmetic
//!
//! Virtual times are `u64` and may wrap; they are only ever compared through
//! wrapping differences, which is exact while active queues stay within
//! `2^63` units of each other (centuries of lag at the maximum scale). The sum
//! `Σ w_q·(ve_q − base)` is kept in `i128` relative to a base that follows
//! `V`, so it stays small.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Fixed-point shift of virtual time: `2^SHIFT` virtual units per tick at
/// weight 1.
const SHIFT: u32 = 20;

/// The largest weight a queue or a task group may have (2^20): weights are
/// `1..=MAX_WEIGHT`. Virtual time is kept in fixed point with this many
/// units per tick at weight 1, so that a weight-`MAX_WEIGHT` queue still
/// advances by at least one unit per tick. The builders and
/// `#[clockworker::main]` reject larger weights.
///
/// ```
/// use clockworker::{BuildError, ExecutorBuilder, MAX_WEIGHT};
///
/// assert!(ExecutorBuilder::new().with_queue(0, MAX_WEIGHT).build().is_ok());
/// let error = ExecutorBuilder::new().with_queue(0, MAX_WEIGHT + 1).build().unwrap_err();
/// assert!(matches!(error, BuildError::WeightTooLarge { max: MAX_WEIGHT, .. }));
/// ```
pub const MAX_WEIGHT: u32 = 1 << SHIFT;

/// `a < b` on wrapping virtual times.
#[inline]
fn before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// `a - b` on wrapping virtual times, as a signed distance.
#[inline]
fn distance(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// No runnable tasks; not part of `V`.
    Idle,
    /// Runnable, waiting in one of the heaps.
    Queued,
    /// Runnable and currently picked.
    Running,
}

#[derive(Debug, Clone)]
struct QueueClock {
    weight: u64,
    /// One request (the time slice) in virtual units for this weight.
    request: u64,
    /// Virtual eligible time (virtual runtime).
    eligible: u64,
    /// Virtual deadline of the current request.
    deadline: u64,
    /// Virtual time owed when the queue last left (at most one request).
    debt: u64,
    membership: Membership,
}

/// A heap entry: a queue ordered by one of its virtual times. `BinaryHeap` is
/// a max-heap, so the ordering is reversed to pop the earliest time first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u64,
    queue: u32,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        distance(other.key, self.key)
            .cmp(&0)
            .then_with(|| other.queue.cmp(&self.queue))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The state of the scheduler between queues.
#[derive(Debug)]
pub(crate) struct Eevdf {
    queues: Vec<QueueClock>,
    /// Active, non-running queues with `ve ≤ V` (as of the last pick), keyed
    /// by deadline.
    eligible: BinaryHeap<Entry>,
    /// Active, non-running queues not yet eligible, keyed by eligible time.
    waiting: BinaryHeap<Entry>,
    running: Option<usize>,
    /// `Σ w` over active queues.
    total_weight: u64,
    /// How many queues are active.
    active_queues: usize,
    /// `Σ w·(ve − base)` over active queues.
    weighted_offset: i128,
    /// Reference point for `weighted_offset`; follows `V`.
    base: u64,
    /// The time slice in ticks: each request's length in real time.
    slice: u64,
}

/// The queue to run next and how long its request lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    pub(crate) queue: usize,
    /// Ticks of CPU time left in this queue's current request.
    pub(crate) budget: u64,
}

impl Eevdf {
    /// A scheduler for queues with these weights (each in
    /// `1..=MAX_WEIGHT`), all idle, each asking for `slice` ticks per request.
    pub(crate) fn new(weights: &[u32], slice: u64) -> Eevdf {
        let slice = slice.max(1);
        let queues = weights
            .iter()
            .map(|&weight| {
                debug_assert!((1..=MAX_WEIGHT).contains(&weight));
                let weight = u64::from(weight);
                QueueClock {
                    weight,
                    request: to_virtual(slice, weight),
                    eligible: 0,
                    deadline: 0,
                    debt: 0,
                    membership: Membership::Idle,
                }
            })
            .collect();
        Eevdf {
            queues,
            eligible: BinaryHeap::with_capacity(weights.len()),
            waiting: BinaryHeap::with_capacity(weights.len()),
            running: None,
            total_weight: 0,
            active_queues: 0,
            weighted_offset: 0,
            base: 0,
            slice,
        }
    }

    /// The current virtual time `V`.
    pub(crate) fn virtual_time(&self) -> u64 {
        if self.total_weight == 0 {
            return self.base;
        }
        let offset = self
            .weighted_offset
            .div_euclid(i128::from(self.total_weight));
        self.base.wrapping_add(offset as u64)
    }

    /// Whether `queue` has runnable work as far as the scheduler knows.
    pub(crate) fn is_active(&self, queue: usize) -> bool {
        self.queues[queue].membership != Membership::Idle
    }

    /// `queue`'s weight, as the scheduler counts it.
    #[cfg(test)]
    pub(crate) fn weight(&self, queue: usize) -> u64 {
        self.queues[queue].weight
    }

    /// Whether some idle queue has a larger weight than `queue`.
    pub(crate) fn heavier_idle(&self, queue: usize) -> bool {
        let weight = self.queues[queue].weight;
        self.queues
            .iter()
            .any(|q| q.membership == Membership::Idle && q.weight > weight)
    }

    /// Whether some active queue has a smaller weight than `queue`.
    pub(crate) fn lighter_active(&self, queue: usize) -> bool {
        let weight = self.queues[queue].weight;
        self.queues
            .iter()
            .any(|q| q.membership != Membership::Idle && q.weight < weight)
    }

    /// Whether any queue is active.
    pub(crate) fn has_active(&self) -> bool {
        self.total_weight != 0
    }

    /// Whether two or more queues are active: only then do slices and
    /// deadlines decide anything.
    pub(crate) fn contended(&self) -> bool {
        self.active_queues > 1
    }

    /// A queue's lag in ticks: positive when it is owed CPU time.
    pub(crate) fn lag(&self, queue: usize) -> i64 {
        let q = &self.queues[queue];
        let virtual_lag = match q.membership {
            Membership::Idle => -(q.debt as i64),
            _ => distance(self.virtual_time(), q.eligible),
        };
        ((i128::from(virtual_lag) * i128::from(q.weight)) >> SHIFT) as i64
    }

    /// Marks an idle queue runnable: it joins at the current virtual time
    /// plus any debt it carried out. If it has an earlier deadline than the
    /// running queue, returns after how many ticks of the running queue's
    /// current turn (counted from the turn's start) it becomes eligible and
    /// should take over: `Some(0)` means at once.
    pub(crate) fn activate(&mut self, queue: usize) -> Option<u64> {
        debug_assert_eq!(self.queues[queue].membership, Membership::Idle);
        let now = self.virtual_time();
        if self.total_weight == 0 {
            // V was frozen at `base`; start the sum afresh there.
            self.weighted_offset = 0;
        }
        let q = &mut self.queues[queue];
        q.eligible = now.wrapping_add(q.debt);
        q.deadline = q.eligible.wrapping_add(q.request);
        let eligible_now = q.debt == 0;
        q.debt = 0;
        q.membership = Membership::Queued;
        let (weight, eligible_at, deadline) = (q.weight, q.eligible, q.deadline);

        self.total_weight += weight;
        self.active_queues += 1;
        self.weighted_offset += i128::from(weight) * i128::from(distance(eligible_at, self.base));
        self.waiting.push(Entry {
            key: eligible_at,
            queue: queue as u32,
        });

        let running = self.running?;
        if !before(deadline, self.queues[running].deadline) {
            return None;
        }
        if eligible_now {
            return Some(0);
        }
        // V moves 2^SHIFT / Σw virtual units per tick the running queue
        // runs; `V` here leaves out its current turn, which has not been
        // charged yet, so the answer counts from the turn's start.
        let gap = distance(eligible_at, self.virtual_time()).max(0) as u128;
        let ticks = (gap * u128::from(self.total_weight)).div_ceil(1 << SHIFT);
        Some(u64::try_from(ticks).unwrap_or(u64::MAX))
    }

    /// Ends the running queue's turn after it used `used` ticks. If it is
    /// still runnable it goes back to compete; otherwise it leaves.
    pub(crate) fn switch(&mut self, used: u64, still_runnable: bool) {
        let Some(queue) = self.running.take() else {
            return;
        };
        let q = &mut self.queues[queue];
        let advance = to_virtual(used, q.weight);
        q.eligible = q.eligible.wrapping_add(advance);
        if !before(q.eligible, q.deadline) {
            // Request complete: the next one starts where this one ended.
            q.deadline = q.eligible.wrapping_add(q.request);
        }
        let (weight, eligible_at) = (q.weight, q.eligible);
        self.weighted_offset += i128::from(weight) * i128::from(advance);

        if still_runnable {
            self.queues[queue].membership = Membership::Queued;
            self.waiting.push(Entry {
                key: eligible_at,
                queue: queue as u32,
            });
            return;
        }

        // Leave: carry debt (bounded by one request), forfeit credit.
        let now = self.virtual_time();
        let q = &mut self.queues[queue];
        q.debt = (distance(q.eligible, now).max(0) as u64).min(q.request);
        q.membership = Membership::Idle;
        self.total_weight -= weight;
        self.active_queues -= 1;
        self.weighted_offset -= i128::from(weight) * i128::from(distance(eligible_at, self.base));
        if self.total_weight == 0 {
            // Freeze V where it was.
            self.base = now;
            self.weighted_offset = 0;
        }
    }

    /// Gives `queue` a new weight (in `1..=MAX_WEIGHT`) without changing
    /// what it is owed, as Linux's `reweight_eevdf` does.
    ///
    /// - An active queue keeps its lag `w·(V − ve)`: its eligible time
    ///   moves to `ve' = V − (V − ve)·w/w'`, and what is left of its request
    ///   keeps its length in real time (`vd' = V + (vd − V)·w/w'`). `V`
    ///   does not move, so no other queue's lag, eligibility or deadline
    ///   changes. A queued queue's heap entry is replaced, as its keys
    ///   changed.
    /// - An idle queue keeps its debt in real time: `debt' = debt·w/w'`.
    ///
    /// Later requests are one time slice at the new weight. The running
    /// queue may be reweighted too, but its budget (given by
    /// [`pick`](Eevdf::pick)) is then stale: the executor reweights a
    /// queue only between turns.
    pub(crate) fn reweight(&mut self, queue: usize, weight: u32) {
        debug_assert!((1..=MAX_WEIGHT).contains(&weight));
        let new_weight = u64::from(weight.clamp(1, MAX_WEIGHT));
        let old_weight = self.queues[queue].weight;
        if new_weight == old_weight {
            return;
        }
        let (old, new) = (i128::from(old_weight), i128::from(new_weight));
        let request = to_virtual(self.slice, new_weight);
        let membership = self.queues[queue].membership;
        if membership == Membership::Idle {
            let q = &mut self.queues[queue];
            let debt = i128::from(q.debt) * old / new;
            q.debt = u64::try_from(debt).unwrap_or(u64::MAX).min(request);
            q.weight = new_weight;
            q.request = request;
            return;
        }

        let now = self.virtual_time();
        let total = i128::from(self.total_weight);
        // `Σ w·(ve − base) = Σw·(V − base) + remainder`, with the remainder
        // in `0..Σw` (`V` is rounded down).
        let remainder = self.weighted_offset - total * i128::from(distance(now, self.base));
        let q = &self.queues[queue];
        let (eligible, deadline) = (q.eligible, q.deadline);
        // The lag in weighted units, which the new weight must keep.
        let lag = old * i128::from(distance(now, eligible));
        // `V − ve'`: `lag / w'`, rounded so that the remainder stays in
        // `0..Σw'` and `V` keeps its exact value.
        let behind = clamp_virtual((lag + remainder).div_euclid(new));
        let new_eligible = now.wrapping_sub(behind as u64);
        let ahead = clamp_virtual(i128::from(distance(deadline, now)) * old / new);
        let new_deadline = now.wrapping_add(ahead as u64);

        self.weighted_offset += new * i128::from(distance(new_eligible, self.base))
            - old * i128::from(distance(eligible, self.base));
        self.total_weight = self.total_weight - old_weight + new_weight;
        let q = &mut self.queues[queue];
        q.weight = new_weight;
        q.request = request;
        q.eligible = new_eligible;
        q.deadline = new_deadline;

        if membership == Membership::Queued {
            let index = queue as u32;
            self.eligible.retain(|entry| entry.queue != index);
            self.waiting.retain(|entry| entry.queue != index);
            // `pick` moves it on to `eligible` if `ve' ≤ V`.
            self.waiting.push(Entry {
                key: new_eligible,
                queue: index,
            });
        }
    }

    /// Picks the eligible queue with the earliest deadline and marks it
    /// running. `None` if no queue is active.
    pub(crate) fn pick(&mut self) -> Option<Pick> {
        debug_assert!(self.running.is_none(), "pick while a queue runs");
        if self.total_weight == 0 {
            return None;
        }
        // Move the base to V so the offset sum stays small.
        let now = self.virtual_time();
        let shift = distance(now, self.base);
        self.weighted_offset -= i128::from(self.total_weight) * i128::from(shift);
        self.base = now;

        while let Some(top) = self.waiting.peek().copied() {
            if before(now, top.key) {
                break;
            }
            self.waiting.pop();
            let deadline = self.queues[top.queue as usize].deadline;
            self.eligible.push(Entry {
                key: deadline,
                queue: top.queue,
            });
        }

        let chosen = loop {
            match self.eligible.pop() {
                Some(entry) => {
                    let q = &self.queues[entry.queue as usize];
                    if before(now, q.eligible) {
                        // V moved back (a queue with debt left) since this
                        // entry became eligible: it waits again.
                        self.waiting.push(Entry {
                            key: q.eligible,
                            queue: entry.queue,
                        });
                        continue;
                    }
                    break entry.queue as usize;
                }
                // Unreachable in exact arithmetic (the minimum is never above
                // the average); kept as a safe fallback.
                None => break self.waiting.pop()?.queue as usize,
            }
        };

        let q = &mut self.queues[chosen];
        q.membership = Membership::Running;
        self.running = Some(chosen);
        let remaining = distance(q.deadline, q.eligible).max(0) as u64;
        Some(Pick {
            queue: chosen,
            budget: to_ticks(remaining, q.weight),
        })
    }
}

/// Ticks at `weight` to virtual units.
#[inline]
fn to_virtual(ticks: u64, weight: u64) -> u64 {
    let units = if ticks < (1 << (63 - SHIFT)) {
        (ticks << SHIFT) / weight
    } else {
        u64::try_from((u128::from(ticks) << SHIFT) / u128::from(weight)).unwrap_or(MAX_VIRTUAL)
    };
    units.min(MAX_VIRTUAL)
}

/// A signed span of virtual time, clamped to `±MAX_VIRTUAL`.
#[inline]
fn clamp_virtual(span: i128) -> i64 {
    let max = i128::from(MAX_VIRTUAL);
    span.clamp(-max, max) as i64
}

/// The largest span of virtual time one request or debt may cover: far
/// below `2^63`, so that deadlines stay comparable with `distance` (a
/// request of `2^63` units or more would wrap to a negative distance and
/// read as an empty budget). Reached only by time slices of hours.
const MAX_VIRTUAL: u64 = u64::MAX >> 2;

/// Virtual units at `weight` to ticks, rounded up so that running for the
/// returned time completes the request.
#[inline]
fn to_ticks(virtual_units: u64, weight: u64) -> u64 {
    let scaled = u128::from(virtual_units) * u128::from(weight);
    ((scaled + (1 << SHIFT) - 1) >> SHIFT) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every queue as always-runnable with polls of `poll` ticks for
    /// `total` ticks; returns the ticks each received.
    fn run_busy(sched: &mut Eevdf, poll: u64, total: u64) -> Vec<u64> {
        let mut got = vec![0; sched.queues.len()];
        let mut elapsed = 0;
        while elapsed < total {
            let pick = sched.pick().expect("active queue");
            let mut used = 0;
            loop {
                used += poll;
                if used >= pick.budget {
                    break;
                }
            }
            got[pick.queue] += used;
            elapsed += used;
            sched.switch(used, true);
        }
        got
    }

    fn activate_all(sched: &mut Eevdf) {
        for q in 0..sched.queues.len() {
            sched.activate(q);
        }
    }

    fn assert_shares(got: &[u64], weights: &[u32], tolerance: f64) {
        let total: u64 = got.iter().sum();
        let weight_total: u32 = weights.iter().sum();
        for (i, (&g, &w)) in got.iter().zip(weights).enumerate() {
            let share = g as f64 / total as f64;
            let ideal = f64::from(w) / f64::from(weight_total);
            assert!(
                (share - ideal).abs() / ideal < tolerance,
                "queue {i}: share {share:.4}, ideal {ideal:.4}, got {got:?}"
            );
        }
    }

    #[test]
    fn shares_follow_weights() {
        for weights in [&[8, 1][..], &[1, 2, 4], &[99, 1], &[1, 1, 1, 1, 1, 1, 1, 1]] {
            let mut sched = Eevdf::new(weights, 1_000);
            activate_all(&mut sched);
            let got = run_busy(&mut sched, 7, 10_000_000);
            assert_shares(&got, weights, 0.005);
        }
    }

    #[test]
    fn long_polls_still_share_fairly() {
        // Polls much longer than the slice: every pick overruns by one poll.
        let weights = [3, 1];
        let mut sched = Eevdf::new(&weights, 10);
        activate_all(&mut sched);
        let got = run_busy(&mut sched, 1_000, 10_000_000);
        assert_shares(&got, &weights, 0.01);
    }

    #[test]
    fn a_slice_of_hours_is_a_long_budget_not_an_empty_one() {
        // 2^62 ticks and more: the virtual request saturates instead of
        // wrapping past 2^63 into a negative distance (an empty budget).
        for slice in [1u64 << 40, 1 << 43, 1 << 50, 1 << 62, u64::MAX] {
            for weight in [1, 8, MAX_WEIGHT] {
                let mut sched = Eevdf::new(&[weight], slice);
                sched.activate(0);
                let pick = sched.pick().unwrap();
                assert!(
                    pick.budget >= slice.min(1 << 40),
                    "slice {slice}, weight {weight}: {pick:?}"
                );
            }
        }
    }

    #[test]
    fn heavy_queue_preempts_light_one() {
        let mut sched = Eevdf::new(&[8, 1], 1_000);
        sched.activate(1);
        let pick = sched.pick().unwrap();
        assert_eq!(pick.queue, 1);
        assert_eq!(pick.budget, 1_000);
        // The heavy queue wakes while the light one runs.
        assert_eq!(sched.activate(0), Some(0));
        sched.switch(10, true);
        assert_eq!(sched.pick().unwrap().queue, 0);
    }

    #[test]
    fn light_queue_does_not_preempt_heavy_one() {
        let mut sched = Eevdf::new(&[8, 1], 1_000);
        sched.activate(0);
        assert_eq!(sched.pick().unwrap().queue, 0);
        assert_eq!(sched.activate(1), None);
    }

    #[test]
    fn equal_queues_do_not_thrash() {
        let mut sched = Eevdf::new(&[1, 1], 1_000);
        sched.activate(0);
        assert_eq!(sched.pick().unwrap().queue, 0);
        // The other joins at V, same request: its deadline is not earlier.
        assert_eq!(sched.activate(1), None);
    }

    #[test]
    fn sleeper_banks_no_credit() {
        let weights = [1, 1];
        let mut sched = Eevdf::new(&weights, 1_000);
        // Queue 0 runs alone for a long time.
        sched.activate(0);
        run_busy(&mut sched, 10, 1_000_000);
        // Queue 1 wakes: it must not get the next 1_000_000 ticks to itself.
        sched.activate(1);
        let got = run_busy(&mut sched, 10, 100_000);
        assert_shares(&got, &weights, 0.05);
    }

    #[test]
    fn light_queue_gets_first_slice_after_about_one_heavy_slice() {
        let mut sched = Eevdf::new(&[99, 1], 1_000);
        activate_all(&mut sched);
        let mut elapsed = 0;
        loop {
            let pick = sched.pick().unwrap();
            if pick.queue == 1 {
                break;
            }
            elapsed += pick.budget;
            sched.switch(pick.budget, true);
        }
        assert!(elapsed <= 2_000, "waited {elapsed} ticks");
    }

    #[test]
    fn debt_is_carried_but_bounded() {
        let mut sched = Eevdf::new(&[1, 1], 100);
        sched.activate(0);
        sched.activate(1);
        let first = sched.pick().unwrap().queue;
        // It hogs far past its request, then goes idle.
        sched.switch(1_000_000, false);
        assert!(sched.lag(first) < 0);
        assert!(sched.lag(first) >= -100, "lag {}", sched.lag(first));
        // When it returns it is not eligible at once: it owes time.
        let other = sched.pick().unwrap().queue;
        assert_eq!(other, 1 - first);
        assert_eq!(sched.activate(first), None, "deadline not earlier");
    }

    #[test]
    fn indebted_heavy_queue_takes_over_once_eligible() {
        let mut sched = Eevdf::new(&[8, 1], 1_000);
        sched.activate(0);
        sched.activate(1);
        // The heavy queue runs a little, then sleeps with a small debt.
        assert_eq!(sched.pick().unwrap().queue, 0);
        sched.switch(50, false);
        assert!(sched.lag(0) < 0);
        // The light queue runs; the heavy one wakes, not yet eligible.
        let light = sched.pick().unwrap();
        assert_eq!(light.queue, 1);
        let after = sched.activate(0).expect("earlier deadline: takes over");
        assert!(after > 0 && after < light.budget, "after {after}");
        // Once the light queue has run that long, the heavy one is
        // eligible and picked.
        sched.switch(after, true);
        assert_eq!(sched.pick().unwrap().queue, 0);
    }

    #[test]
    fn idle_scheduler_picks_nothing_and_freezes_time() {
        let mut sched = Eevdf::new(&[2, 5], 1_000);
        assert!(sched.pick().is_none());
        sched.activate(1);
        let p = sched.pick().unwrap();
        sched.switch(5_000, false);
        assert_eq!(p.queue, 1);
        assert!(!sched.has_active());
        let frozen = sched.virtual_time();
        assert!(sched.pick().is_none());
        assert_eq!(sched.virtual_time(), frozen);
        sched.activate(0);
        assert_eq!(sched.lag(0), 0);
    }

    #[test]
    fn lags_sum_to_zero() {
        let weights = [5, 3, 2, 7];
        let mut sched = Eevdf::new(&weights, 333);
        activate_all(&mut sched);
        for round in 0..1_000u64 {
            let pick = sched.pick().unwrap();
            sched.switch(pick.budget / 2 + round % 17, true);
            let sum: i64 = (0..weights.len()).map(|q| sched.lag(q)).sum();
            // Each lag is rounded down to whole ticks.
            assert!(sum.abs() <= weights.len() as i64, "round {round}: {sum}");
        }
    }

    #[test]
    fn virtual_times_survive_wrapping() {
        let weights = [8, 1];
        let mut sched = Eevdf::new(&weights, 1_000);
        sched.base = u64::MAX - 5_000_000;
        activate_all(&mut sched);
        let got = run_busy(&mut sched, 3, 10_000_000);
        assert_shares(&got, &weights, 0.005);
    }

    /// Ticks left in `queue`'s current request.
    fn remaining(sched: &Eevdf, queue: usize) -> u64 {
        let q = &sched.queues[queue];
        to_ticks(distance(q.deadline, q.eligible).max(0) as u64, q.weight)
    }

    #[test]
    fn reweight_keeps_virtual_time_and_every_lag() {
        let weights = [5, 3, 2, 7];
        let mut sched = Eevdf::new(&weights, 333);
        activate_all(&mut sched);
        let new_weights = [1, 9, 1_000, MAX_WEIGHT, 2, 7, 64, 3];
        for round in 0..2_000usize {
            if round % 5 == 0 {
                // Idle queues come back, with whatever debt they carried.
                for q in 0..weights.len() {
                    if !sched.is_active(q) {
                        sched.activate(q);
                    }
                }
            }
            let Some(pick) = sched.pick() else {
                continue;
            };
            // Odd amounts, some past the budget; now and then a queue leaves.
            let used = pick.budget / 3 + (round as u64 * 37) % 500;
            sched.switch(used, round % 7 != 0);
            // Between turns, as the executor does it.
            let queue = round % weights.len();
            let weight = new_weights[round % new_weights.len()];
            let before = sched.virtual_time();
            let lags: Vec<i64> = (0..weights.len()).map(|q| sched.lag(q)).collect();
            let left = remaining(&sched, queue);
            let active = sched.is_active(queue);
            sched.reweight(queue, weight);
            assert_eq!(sched.virtual_time(), before, "round {round}: V moved");
            for (q, &lag) in lags.iter().enumerate() {
                let after = sched.lag(q);
                if q == queue {
                    // Rounded to whole ticks at either weight; the sum's
                    // remainder (under Σw units) may add one more.
                    let slack = 2 + (sched.total_weight >> SHIFT) as i64;
                    assert!(
                        (after - lag).abs() <= slack,
                        "round {round}: queue {q} ({} -> {weight}) lag {lag} -> {after}",
                        weights[q]
                    );
                } else {
                    assert_eq!(after, lag, "round {round}: queue {q} lag changed");
                }
            }
            if active {
                let now_left = remaining(&sched, queue);
                let slack = 2 + (sched.total_weight >> SHIFT);
                assert!(
                    now_left.abs_diff(left) <= slack,
                    "round {round}: request left {left} -> {now_left}"
                );
            }
        }
        // The active queues' lags still sum to zero, to the rounding of each.
        let sum: i64 = (0..weights.len())
            .filter(|&q| sched.is_active(q))
            .map(|q| sched.lag(q))
            .sum();
        assert!(sum.abs() <= weights.len() as i64, "{sum}");
    }

    #[test]
    fn reweight_keeps_an_idle_queues_debt() {
        let mut sched = Eevdf::new(&[1, 1], 1_000);
        activate_all(&mut sched);
        let first = sched.pick().unwrap().queue;
        sched.switch(5_000, false);
        let debt = sched.lag(first);
        assert!(debt < 0);
        for weight in [8, MAX_WEIGHT, 1, 3] {
            sched.reweight(first, weight);
            assert!(
                (sched.lag(first) - debt).abs() <= 1,
                "weight {weight}: debt {debt} -> {}",
                sched.lag(first)
            );
        }
    }

    #[test]
    fn reweight_at_the_extremes_does_not_overflow() {
        let mut sched = Eevdf::new(&[1, MAX_WEIGHT], 1 << 40);
        activate_all(&mut sched);
        for _ in 0..20 {
            let pick = sched.pick().unwrap();
            sched.switch(pick.budget.max(1), true);
            let before = sched.virtual_time();
            // Swap the weights: the lightest queue becomes the heaviest.
            let (a, b) = (sched.queues[0].weight, sched.queues[1].weight);
            sched.reweight(0, b as u32);
            sched.reweight(1, a as u32);
            assert_eq!(sched.virtual_time(), before);
        }
    }

    #[test]
    fn shares_follow_new_weights_in_both_directions() {
        let mut sched = Eevdf::new(&[8, 1], 1_000);
        activate_all(&mut sched);
        let got = run_busy(&mut sched, 7, 10_000_000);
        assert_shares(&got, &[8, 1], 0.005);
        // 8:1 -> 1:8 while both stay busy.
        sched.reweight(0, 1);
        sched.reweight(1, 8);
        let got = run_busy(&mut sched, 7, 10_000_000);
        assert_shares(&got, &[1, 8], 0.005);
        // And back, one queue at a time.
        sched.reweight(1, 1);
        let got = run_busy(&mut sched, 7, 10_000_000);
        assert_shares(&got, &[1, 1], 0.005);
        sched.reweight(0, 8);
        let got = run_busy(&mut sched, 7, 10_000_000);
        assert_shares(&got, &[8, 1], 0.005);
    }

    #[test]
    fn reweight_gives_no_credit_to_flip_flopping() {
        // Queue 0 is reweighted back and forth after every turn of its own.
        // Each reweight keeps its lag, so over the run it gets what its
        // weights average to; it neither piles up credit nor debt.
        let mut sched = Eevdf::new(&[1, 1], 1_000);
        activate_all(&mut sched);
        let mut got = [0u64; 2];
        for _ in 0..20_000 {
            let pick = sched.pick().unwrap();
            got[pick.queue] += pick.budget;
            sched.switch(pick.budget, true);
            sched.reweight(0, 4);
            sched.reweight(0, 1);
            let lag = sched.lag(0);
            assert!(lag.abs() <= 1_001, "lag {lag}");
        }
        assert_shares(&got, &[1, 1], 0.01);
    }

    #[test]
    fn reweighting_a_waiting_queue_reorders_the_heaps() {
        // Queue 1 waits with a later deadline than queue 0; made much
        // heavier, its deadline comes first and it is picked next.
        let mut sched = Eevdf::new(&[1, 1, 1], 1_000);
        activate_all(&mut sched);
        let first = sched.pick().unwrap().queue;
        assert_eq!(first, 0);
        sched.switch(10, true);
        sched.reweight(2, 100);
        assert_eq!(sched.pick().unwrap().queue, 2);
    }

    #[test]
    fn setting_the_same_weight_changes_nothing() {
        let mut sched = Eevdf::new(&[3, 2], 1_000);
        activate_all(&mut sched);
        let pick = sched.pick().unwrap();
        sched.switch(pick.budget / 2, true);
        let clocks: Vec<_> = sched
            .queues
            .iter()
            .map(|q| (q.eligible, q.deadline))
            .collect();
        sched.reweight(0, 3);
        sched.reweight(1, 2);
        let after: Vec<_> = sched
            .queues
            .iter()
            .map(|q| (q.eligible, q.deadline))
            .collect();
        assert_eq!(clocks, after);
    }
}
