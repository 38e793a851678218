//! The stall watchdog: a poll that runs longer than a threshold is reported
//! while it is still running, naming its task's spawn site, queue and
//! group, and again when it ends, with its full duration.
//!
//! # How it works
//!
//! - **The beacon.** When the watchdog is on
//!   ([`ExecutorBuilder::with_stall_threshold`](crate::ExecutorBuilder::with_stall_threshold)),
//!   the run loop publishes, at the start of every task poll, what it is
//!   about to poll: the task's id, queue, group, spawn site and the start
//!   time, in a few atomics ([`Beacon`]), and marks the poll over when it
//!   returns. It is a sequence lock: the writer (the executor's thread)
//!   never waits, and a reader (the watchdog) that raced a new poll sees
//!   the sequence change and looks again. Spawn sites are `&'static`
//!   locations, which cannot travel through an atomic without `unsafe`:
//!   the beacon carries their address, and the executor enters each new
//!   address into a shared table the first time it polls a task from that
//!   site (a lock taken once per distinct spawn site, not per poll).
//! - **The watchdog thread.** One small thread per executor (per pool
//!   worker) reads the beacon. If a poll is in progress it sleeps until that
//!   poll's threshold is reached, then looks again: the same poll still
//!   running is a stall, reported at once, while the executor's thread is
//!   stuck in it. Otherwise it checks every half threshold (at least every
//!   millisecond apart). When the executor has left its run loop for two
//!   checks in a row (it is idle, or its host has it), the watchdog sleeps
//!   until the run loop starts again (see [`Doze`]), so an idle executor
//!   costs no wake-ups.
//! - **The end of a stalled poll.** The run loop itself sees that the poll
//!   it just ran took longer than the threshold: it counts the stall in its
//!   queue's stats (`stalls`, `longest_stall`) and reports it once more,
//!   with the whole duration, from the executor's thread.
//! - **Reports.** Each goes to the handler given to
//!   [`on_stall`](crate::ExecutorBuilder::on_stall), with its panic caught
//!   and counted ([`ExecutorStats::stall_handler_panics`](crate::ExecutorStats::stall_handler_panics)),
//!   and, with the `tracing` feature, to a `tracing` warning (target
//!   `clockworker::stall`). With neither, a line goes to standard error.
//!
//! # Costs
//!
//! Off (the default), the run loop checks one `Option` per poll. On, every
//! poll reads the clock (the loop otherwise reads it only every few polls
//! while one queue is busy) and writes the beacon: a handful of plain
//! stores on x86.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHasher;

use crate::clock::Clock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool as StdBool, AtomicU64 as StdU64};
use std::thread;

// The beacon and the doze are the protocol the loom models check; the rest
// (the thread, its table of sites, its counters) stays on `std`.
use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use crate::task::{GroupId, TaskId, TaskLabel};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// What a stall handler is given (see
/// [`ExecutorBuilder::on_stall`](crate::ExecutorBuilder::on_stall)).
pub(crate) type StallHandler = Arc<dyn Fn(&Stall) + Send + Sync>;

/// The shortest time between two looks of the watchdog at a busy executor.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// One poll that ran longer than the stall threshold.
///
/// Reported twice: while the poll is still running
/// ([`StallPhase::Running`], from the watchdog's thread, `elapsed` so far)
/// and when it returns ([`StallPhase::Ended`], from the executor's thread,
/// `elapsed` its whole duration). A poll that ends before the watchdog got
/// to look at it is reported once, ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stall {
    /// The task being polled.
    pub task: TaskId,
    /// Where it was spawned.
    pub spawn_site: TaskLabel,
    /// Its queue's key, as its `Debug` output.
    pub queue: String,
    /// Its queue's index, in the order the queues were configured.
    pub queue_index: usize,
    /// Its group, if it has one.
    pub group: Option<GroupId>,
    /// When the poll started.
    pub started: Instant,
    /// How long the poll has run (so far, or in all).
    pub elapsed: Duration,
    /// Whether the poll is still running.
    pub phase: StallPhase,
    /// The name of the executor's thread (a pool's worker is named
    /// `clockworker-worker-N` unless the pool says otherwise).
    pub thread: Option<String>,
}

/// Whether a [`Stall`] is reported while its poll runs or after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallPhase {
    /// The poll has run for longer than the threshold and has not returned
    /// yet.
    Running,
    /// The poll returned after running for longer than the threshold.
    Ended,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {} of queue {} (spawned at {})",
            self.task, self.queue, self.spawn_site
        )?;
        if let Some(group) = self.group {
            write!(f, ", group {group}")?;
        }
        if let Some(thread) = &self.thread {
            write!(f, ", on thread {thread}")?;
        }
        match self.phase {
            StallPhase::Running => write!(
                f,
                ", has been polled for {:?} and is still running",
                self.elapsed
            ),
            StallPhase::Ended => write!(f, ", was polled for {:?} in one poll", self.elapsed),
        }
    }
}

// ----- the beacon -------------------------------------------------------------

/// `Beacon::seq` modulo 4: no poll in progress.
const IDLE: u64 = 0;
/// `Beacon::seq` modulo 4: the executor is writing a new poll's fields.
const WRITING: u64 = 1;
/// `Beacon::seq` modulo 4: a poll is in progress and the fields describe it.
const POLLING: u64 = 2;

/// What the executor's thread publishes about the poll in progress: a
/// sequence lock with one writer that never waits.
///
/// Every poll moves `seq` through `4n + WRITING` (fields being written),
/// `4n + POLLING` (fields valid, poll running) and `4n + 4` (idle). A
/// reader loads `seq`, the fields, then `seq` again: the same `POLLING`
/// value twice means the fields it read are that poll's.
#[derive(Debug, Default)]
pub(crate) struct Beacon {
    seq: AtomicU64,
    started: AtomicU64,
    task: AtomicU64,
    queue: AtomicU32,
    /// The group's number plus one; zero for none.
    group: AtomicU64,
    /// The address of the spawn site's `Location`.
    site: AtomicUsize,
}

/// A poll in progress, as a reader of the [`Beacon`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Identifies this poll: the beacon's sequence while it runs.
    pub(crate) seq: u64,
    pub(crate) started: u64,
    pub(crate) task: u64,
    pub(crate) queue: u32,
    pub(crate) group: Option<GroupId>,
    pub(crate) site: usize,
}

impl Beacon {
    /// A poll starts (executor's thread): `base`, a multiple of 4, is the
    /// sequence the last [`clear`](Self::clear) left (the one writer keeps
    /// it, so that it never reads the beacon back).
    #[inline]
    pub(crate) fn publish(&self, base: u64, poll: &Snapshot) {
        self.seq.store(base + WRITING, Ordering::Relaxed);
        // The field stores below may not be seen before the `WRITING`
        // mark: a reader that sees any of them sees the sequence move.
        fence(Ordering::Release);
        self.started.store(poll.started, Ordering::Relaxed);
        self.task.store(poll.task, Ordering::Relaxed);
        self.queue.store(poll.queue, Ordering::Relaxed);
        self.group.store(
            poll.group.map_or(0, |g| g.as_u64().wrapping_add(1)),
            Ordering::Relaxed,
        );
        self.site.store(poll.site, Ordering::Relaxed);
        self.seq.store(base + POLLING, Ordering::Release);
    }

    /// The poll published at `base` ended (executor's thread); the next
    /// poll publishes at `base + 4`.
    #[inline]
    pub(crate) fn clear(&self, base: u64) {
        self.seq.store(base + 4 + IDLE, Ordering::Release);
    }

    /// The poll in progress, if any (any thread). `None` also when a poll
    /// was starting or ending during the read; the caller looks again later.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 3 != POLLING {
            return None;
        }
        let group = self.group.load(Ordering::Relaxed);
        let snapshot = Snapshot {
            seq,
            started: self.started.load(Ordering::Relaxed),
            task: self.task.load(Ordering::Relaxed),
            queue: self.queue.load(Ordering::Relaxed),
            group: group.checked_sub(1).map(GroupId::new),
            site: self.site.load(Ordering::Relaxed),
        };
        // The field loads above may not be reordered after the re-read.
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(snapshot)
    }
}

// ----- the watchdog's sleep ---------------------------------------------------

/// Whether the executor's run loop is running, and whether the watchdog
/// sleeps until it does: the watchdog sets `sleeping`, then reads
/// `active`; the run loop sets `active`, then reads `sleeping`, each with a
/// sequentially consistent fence between its store and its load. One of
/// the two sees the other's store, so the watchdog never sleeps through a
/// run loop that started (it would miss its stalls), and the run loop
/// wakes it only if it sleeps.
#[derive(Debug, Default)]
pub(crate) struct Doze {
    active: AtomicBool,
    sleeping: AtomicBool,
}

impl Doze {
    /// The run loop starts (executor's thread). Returns whether the
    /// watchdog must be unparked.
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        self.active.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel)
    }

    /// The run loop returned (executor's thread).
    #[inline]
    pub(crate) fn leave(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The watchdog would sleep (watchdog's thread): returns whether it
    /// may park until unparked. If not, the run loop is running again.
    pub(crate) fn try_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.active.load(Ordering::Relaxed) {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The watchdog woke (watchdog's thread).
    pub(crate) fn woke(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

// ----- what the executor and the watchdog share ----------------------------------

/// The state one executor and its watchdog thread share.
struct Watch {
    beacon: Beacon,
    doze: Doze,
    /// Spawn sites by the address of their `Location` (see the module
    /// docs).
    sites: Mutex<FxMap<usize, TaskLabel>>,
    names: Box<[String]>,
    thread: Option<String>,
    clock: Clock,
    /// The threshold in clock ticks (saturated) and as given.
    threshold: u64,
    threshold_time: Duration,
    period: Duration,
    handler: Option<StallHandler>,
    handler_panics: StdU64,
    stop: StdBool,
}

impl Watch {
    /// Reports `stall` to the handler (its panic caught and counted), to
    /// `tracing`, or to standard error.
    fn report(&self, stall: &Stall) {
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "clockworker::stall",
            task = stall.task.as_u64(),
            queue = %stall.queue,
            group = stall.group.map(|g| g.as_u64()),
            spawn_site = %stall.spawn_site,
            elapsed_us = stall.elapsed.as_micros() as u64,
            running = stall.phase == StallPhase::Running,
            "clockworker: stalled poll: {stall}"
        );
        match &self.handler {
            Some(handler) => {
                let called = std::panic::catch_unwind(AssertUnwindSafe(|| handler(stall)));
                if called.is_err() {
                    self.handler_panics.fetch_add(1, Ordering::Relaxed);
                }
            }
            None if cfg!(feature = "tracing") => {}
            None => eprintln!("clockworker: stalled poll: {stall}"),
        }
    }

    fn stall(&self, poll: &Snapshot, elapsed: u64, phase: StallPhase) -> Stall {
        let site = self
            .sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&poll.site)
            .copied();
        let index = poll.queue as usize;
        let elapsed = self.clock.to_duration(elapsed);
        Stall {
            task: TaskId::from_u64(poll.task),
            // Always found: the executor enters a site before it publishes
            // a poll of it.
            spawn_site: site.unwrap_or_else(TaskLabel::caller),
            queue: self.names.get(index).cloned().unwrap_or_default(),
            queue_index: index,
            group: poll.group,
            started: Instant::now()
                .checked_sub(elapsed)
                .unwrap_or_else(Instant::now),
            elapsed,
            phase,
            thread: self.thread.clone(),
        }
    }
}

/// The watchdog's thread: see the module docs.
fn watch(watch: Arc<Watch>) {
    // The poll last reported while running, and how many looks in a row
    // found the run loop stopped.
    let mut reported = None;
    let mut stopped_looks = 0;
    while !watch.stop.load(Ordering::Acquire) {
        let wait = match watch.beacon.snapshot() {
            Some(poll) if reported != Some(poll.seq) => {
                stopped_looks = 0;
                let elapsed = watch.clock.now().saturating_sub(poll.started);
                if elapsed >= watch.threshold {
                    watch.report(&watch.stall(&poll, elapsed, StallPhase::Running));
                    reported = Some(poll.seq);
                    watch.period
                } else {
                    // Look again when this poll reaches the threshold.
                    let elapsed = watch.clock.to_duration(elapsed);
                    (watch.threshold_time.saturating_sub(elapsed))
                        .saturating_add(Duration::from_micros(50))
                }
            }
            Some(_) => watch.period,
            None if watch.doze.is_active() => {
                stopped_looks = 0;
                watch.period
            }
            None => {
                stopped_looks += 1;
                if stopped_looks >= 2 && watch.doze.try_sleep() {
                    if watch.stop.load(Ordering::Acquire) {
                        break;
                    }
                    thread::park();
                    watch.doze.woke();
                    stopped_looks = 0;
                    continue;
                }
                watch.period
            }
        };
        thread::park_timeout(wait);
    }
}

// ----- the executor's side ----------------------------------------------------------

/// The stall watchdog's configuration, as a builder keeps it.
#[derive(Clone, Default)]
pub(crate) struct StallConfig {
    pub(crate) threshold: Option<Duration>,
    pub(crate) handler: Option<StallHandler>,
}

impl fmt::Debug for StallConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StallConfig")
            .field("threshold", &self.threshold)
            .field("handler", &self.handler.is_some())
            .finish()
    }
}

/// A poll that ended past the threshold: for the queue's counters.
pub(crate) struct Overrun {
    pub(crate) queue: usize,
    pub(crate) elapsed: u64,
}

/// The executor's side of the watchdog, kept by its core: publishes each
/// poll, notices the ones that overran, and stops the thread when dropped.
pub(crate) struct Watchdog {
    watch: Arc<Watch>,
    /// The watchdog's thread, to wake it, and to join it when it stops.
    thread: thread::Thread,
    joiner: RefCell<Option<thread::JoinHandle<()>>>,
    /// The poll in progress (or last run), and the beacon's sequence
    /// before it.
    current: Cell<Snapshot>,
    seq: Cell<u64>,
    /// The spawn site entered last, and every one entered so far.
    last_site: Cell<usize>,
    known_sites: RefCell<FxSet<usize>>,
}

impl Watchdog {
    /// Starts the watchdog's thread for an executor with these queue names.
    pub(crate) fn start(
        threshold: Duration,
        handler: Option<StallHandler>,
        names: Box<[String]>,
        clock: Clock,
    ) -> std::io::Result<Watchdog> {
        let thread = std::thread::current().name().map(str::to_string);
        let watch = Arc::new(Watch {
            beacon: Beacon::default(),
            doze: Doze::default(),
            sites: Mutex::new(FxMap::default()),
            names,
            thread,
            threshold: clock.to_ticks(threshold).max(1),
            threshold_time: threshold,
            period: (threshold / 2).max(MIN_PERIOD),
            clock,
            handler,
            handler_panics: StdU64::new(0),
            stop: StdBool::new(false),
        });
        let handle = std::thread::Builder::new()
            .name("clockworker-watchdog".to_string())
            .spawn({
                let watch = watch.clone();
                move || self::watch(watch)
            })?;
        Ok(Watchdog {
            watch,
            thread: handle.thread().clone(),
            joiner: RefCell::new(Some(handle)),
            current: Cell::new(Snapshot {
                seq: 0,
                started: 0,
                task: 0,
                queue: 0,
                group: None,
                site: 0,
            }),
            seq: Cell::new(0),
            last_site: Cell::new(0),
            known_sites: RefCell::default(),
        })
    }

    /// The run loop starts polling.
    #[inline]
    pub(crate) fn enter_loop(&self) {
        if self.watch.doze.enter() {
            self.thread.unpark();
        }
    }

    /// The run loop stopped polling.
    #[inline]
    pub(crate) fn leave_loop(&self) {
        self.watch.doze.leave();
    }

    /// Task `task` of `queue` is about to be polled, from `started` (clock
    /// ticks).
    #[inline]
    pub(crate) fn begin(
        &self,
        task: TaskId,
        queue: u32,
        group: Option<GroupId>,
        label: TaskLabel,
        started: u64,
    ) {
        let site = label.address();
        if site != self.last_site.get() {
            self.note_site(site, label);
        }
        let poll = Snapshot {
            seq: 0,
            started,
            task: task.as_u64(),
            queue,
            group,
            site,
        };
        self.watch.beacon.publish(self.seq.get(), &poll);
        self.current.set(poll);
    }

    /// Enters a spawn site into the shared table the first time a task
    /// from it is polled.
    #[cold]
    #[inline(never)]
    fn note_site(&self, site: usize, label: TaskLabel) {
        self.last_site.set(site);
        if self.known_sites.borrow_mut().insert(site) {
            let mut sites = self.watch.sites.lock().unwrap_or_else(|p| p.into_inner());
            sites.insert(site, label);
        }
    }

    /// The poll ended at `now` (clock ticks): if it overran the threshold,
    /// reports it (from this thread) and says how long it ran.
    #[inline]
    pub(crate) fn end(&self, now: u64) -> Option<Overrun> {
        let seq = self.seq.get();
        self.watch.beacon.clear(seq);
        self.seq.set(seq + 4);
        let poll = self.current.get();
        let elapsed = now.saturating_sub(poll.started);
        if elapsed < self.watch.threshold {
            return None;
        }
        Some(self.overran(&poll, elapsed))
    }

    #[cold]
    #[inline(never)]
    fn overran(&self, poll: &Snapshot, elapsed: u64) -> Overrun {
        self.watch
            .report(&self.watch.stall(poll, elapsed, StallPhase::Ended));
        Overrun {
            queue: poll.queue as usize,
            elapsed,
        }
    }

    /// Stall handler calls that panicked so far.
    pub(crate) fn handler_panics(&self) -> u64 {
        self.watch.handler_panics.load(Ordering::Relaxed)
    }
}

impl Watchdog {
    /// Ends the watchdog's thread (the executor is being dropped) and
    /// waits for it: it ends at its next look, or once a stall handler it
    /// is calling returns. Stalls are no longer watched afterwards.
    pub(crate) fn stop(&self) {
        self.watch.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let joiner = self.joiner.borrow_mut().take();
        if let Some(joiner) = joiner {
            let _ = joiner.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field(
                "threshold",
                &self.watch.clock.to_duration(self.watch.threshold),
            )
            .finish_non_exhaustive()
    }
}
