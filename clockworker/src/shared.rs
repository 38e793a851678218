//! The thread-safe part of an executor: what other threads (and wakers fired
//! while the executor is not running) use to hand it work.
//!
//! Everything else about an executor lives in the single-threaded core and
//! is touched only on its own thread. A wake on the executor thread while the
//! executor runs goes straight into the core's local queues; any other wake,
//! and every spawn through a `Spawner`, goes through the injector here and
//! sets the `REMOTE` attention bit, which the run loop checks at every poll
//! boundary with one relaxed load.
//!
//! # Waking the host
//!
//! The attention bits and the host's waker form a [`Doorbell`], whose doc
//! comment states the protocol and its invariants. In short: when the
//! executor has nothing to run it registers its host's waker and re-checks
//! the bits before returning `Pending`; a thread that injects work pushes it
//! under the injector's lock, then sets the bit and, only if it was the one
//! to set it, wakes the host. Either the executor sees the bit on its
//! re-check, or the injecting thread finds the registered waker: no wake-up
//! is lost. While the executor runs, the waker is taken out, so remote wakes
//! cost no host wake-up at all.
//!
//! # Closing
//!
//! [`close`](Shared::close) and the check in
//! [`inject_new`](Shared::inject_new) happen under the injector's lock, so a
//! spawn racing the executor's drop is either refused (and handed back) or
//! pushed before the close, where the shutdown's drain after `close` finds
//! it: never both, never lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::Waker;

use async_task::Runnable;

use crate::clock::Clock;
use crate::doorbell::Doorbell;
use crate::sync::{Mutex, MutexGuard};
use crate::task::{Header, TaskId};

/// Work was injected: drain the injector.
pub(crate) const REMOTE: u8 = 1;
/// A `run_until` future was woken: give its caller a chance to poll it.
pub(crate) const MAIN: u8 = 2;
/// A task was woken on the executor's own thread while the executor was not
/// running (by its host's IO driver, say) and went straight into its local
/// queue: only the host needs waking. See `Core::enqueue_resting`.
pub(crate) const LOCAL: u8 = 4;
/// Another executor asked for tasks (see [`Shared::offer_thief`]). Only
/// flagged, never rung: an idle executor does not wake up for it.
pub(crate) const SHED: u8 = 8;
/// Closures wait to run on the executor's thread (see [`Shared::call`]).
pub(crate) const CALL: u8 = 16;
/// End the run loop at the next poll boundary, so that the `run_until`
/// future (woken already) is polled at once (see [`Shared::interrupt`]).
pub(crate) const INTERRUPT: u8 = 32;
/// A deadline of the executor's timers passed while it was idle (rung by
/// the timer thread, see `time::helper`).
pub(crate) const TIMER: u8 = 64;

/// The bits that an idle executor must wake up for (checked again after
/// it registers its host's waker).
pub(crate) const WAKE_BITS: u8 = REMOTE | CALL | INTERRUPT | TIMER;

/// A per-executor timer structure (the `time` module's), seen from the
/// core: the run loop calls [`fire`](Deadlines::fire) once the clock passes
/// [`Shared::next_deadline`]. The core knows nothing else about timers.
pub(crate) trait Deadlines: Send + Sync + std::any::Any + std::fmt::Debug {
    /// Wakes every timer due at `now` (clock ticks), outside any lock, and
    /// stores the next deadline in `shared` (`u64::MAX`: none).
    fn fire(&self, now: u64, shared: &Shared);

    /// The executor goes idle: makes sure it is woken at its next
    /// deadline (by the park of the executor's own `block_on`, or a `TIMER`
    /// ring). Returns `true` if timers fired now instead (a deadline had
    /// passed, or a paused test clock jumped to it): the executor has work
    /// and must not sleep.
    fn going_idle(&self, shared: &Arc<Shared>) -> bool;
}

/// A closure to run on the executor's thread, at a poll boundary.
pub(crate) struct Call(pub(crate) Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Call")
    }
}

#[derive(Default)]
struct Injector {
    tasks: Vec<Runnable<Header>>,
    /// Tasks aborted from outside the executor's run, to be woken.
    aborts: Vec<TaskId>,
    /// Tasks a queue's scheduler let go of, to be cancelled.
    dropped: Vec<Runnable<Header>>,
    /// Set once the executor has been dropped: new spawns are refused.
    closed: bool,
    /// Set once the executor has been closed (`Handle::close`): spawns from
    /// other threads are refused; its tasks finish.
    closing: bool,
    /// Idle executors with the same queue table that take tasks this one
    /// sheds (see [`Shared::offer_thief`]), each once, in offer order.
    thieves: Vec<Arc<Shared>>,
    /// Closures to run on the executor's thread.
    calls: Vec<Call>,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the thief: two executors may each hold the other.
        f.debug_struct("Injector")
            .field("tasks", &self.tasks.len())
            .field("aborts", &self.aborts.len())
            .field("dropped", &self.dropped.len())
            .field("calls", &self.calls.len())
            .field("thieves", &self.thieves.len())
            .field("closed", &self.closed)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// What the executor takes out of the injector in one go.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    pub(crate) tasks: Vec<Runnable<Header>>,
    pub(crate) aborts: Vec<TaskId>,
    pub(crate) dropped: Vec<Runnable<Header>>,
}

/// Gives memory back after a burst (see `core::should_shrink`).
fn trim_vec<T>(vec: &mut Vec<T>) {
    if let Some(room) = crate::core::should_shrink(vec.len(), vec.capacity()) {
        vec.shrink_to(room);
    }
}

impl Injected {
    /// Some buffer has more room than a small executor ever needs.
    pub(crate) fn oversized(&self) -> bool {
        let keep = crate::core::KEEP;
        self.tasks.capacity() > keep
            || self.aborts.capacity() > keep
            || self.dropped.capacity() > keep
    }

    pub(crate) fn trim(&mut self) {
        trim_vec(&mut self.tasks);
        trim_vec(&mut self.aborts);
        trim_vec(&mut self.dropped);
    }
}

/// State shared between the executor thread and everyone else.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The attention bits and the host's waker.
    doorbell: Doorbell,
    injector: Mutex<Injector>,
    pub(crate) clock: Clock,
    /// Statistics, not part of the protocol: `std` even under loom.
    remote_schedules: AtomicU64,
    counts: HookCounts,
    /// A thief is waiting (a hint, read when a sheddable queue grows; it
    /// changes only under the injector's lock, with the thieves).
    wants_shed: std::sync::atomic::AtomicBool,
    /// The executor went idle and has not run since (a hint for shedding:
    /// a thief that got busy in the meantime is skipped).
    idle: std::sync::atomic::AtomicBool,
    /// The executor's timers, created by the first timer polled on it.
    deadlines: std::sync::OnceLock<Arc<dyn Deadlines>>,
    /// The earliest deadline of its timers, in clock ticks (`u64::MAX`:
    /// none). Written on the executor's thread (a timer polled there, or
    /// fired) and read by its run loop at every poll boundary.
    next_deadline: AtomicU64,
    /// The deadline the timer thread was last asked to ring `TIMER` at
    /// (`u64::MAX`: none): an idle executor asks again only for an earlier
    /// one.
    pub(crate) rings_at: AtomicU64,
    /// The queues' names, by index, for the tasks' spans.
    #[cfg(feature = "tracing")]
    queue_names: Box<[String]>,
}

/// What the hooks for executors that work together (a pool) count, readable
/// from any thread without waking the executor.
#[derive(Debug, Default)]
pub(crate) struct HookCounts {
    /// Times the executor went idle (returned `Pending` with nothing to
    /// run).
    pub(crate) parks: AtomicU64,
    /// Rings of the doorbell while the executor was idle (asleep in its
    /// host, or about to be): the wake-ups that spawns and wakes from
    /// outside its run cost (not requests for its stats).
    pub(crate) wakeups: AtomicU64,
    /// Tasks this executor handed to another one.
    pub(crate) shed: AtomicU64,
    /// Tasks another executor handed to this one.
    pub(crate) moved_in: AtomicU64,
}

impl Shared {
    pub(crate) fn new(clock: Clock) -> Shared {
        Shared {
            doorbell: Doorbell::new(),
            injector: Mutex::new(Injector::default()),
            clock,
            remote_schedules: AtomicU64::new(0),
            counts: HookCounts::default(),
            wants_shed: std::sync::atomic::AtomicBool::new(false),
            idle: std::sync::atomic::AtomicBool::new(false),
            deadlines: std::sync::OnceLock::new(),
            next_deadline: AtomicU64::new(u64::MAX),
            rings_at: AtomicU64::new(u64::MAX),
            #[cfg(feature = "tracing")]
            queue_names: Box::default(),
        }
    }

    /// The same, with the queues' names (for the tasks' spans).
    #[cfg(feature = "tracing")]
    pub(crate) fn with_queue_names(self, queue_names: Box<[String]>) -> Shared {
        Shared {
            queue_names,
            ..self
        }
    }

    /// The name of queue `index` (empty for an executor that has none: a
    /// task spawned after its executor is gone).
    #[cfg(feature = "tracing")]
    pub(crate) fn queue_name(&self, index: u32) -> &str {
        self.queue_names
            .get(index as usize)
            .map_or("", String::as_str)
    }

    fn injector(&self) -> MutexGuard<'_, Injector> {
        // No user code runs under this lock, so poisoning cannot leave the
        // vector half-updated.
        self.injector.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The attention bits, for a cheap check at each poll boundary.
    #[inline]
    pub(crate) fn attention(&self) -> u8 {
        self.doorbell.attention()
    }

    /// Clears `bit` (before acting on it, so that a later setter wakes again).
    #[inline]
    pub(crate) fn clear(&self, bit: u8) {
        self.doorbell.clear(bit);
    }

    /// Sets `bit` and wakes the host if the executor may be waiting.
    pub(crate) fn notify(&self, bit: u8) {
        if self.doorbell.notify(bit) && self.is_idle() {
            self.counts.wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts of the hooks below, and of parks and wake-ups.
    pub(crate) fn counts(&self) -> &HookCounts {
        &self.counts
    }

    /// The executor is going idle: registers the host's waker for the next
    /// `notify`, then returns the attention bits already set, which the
    /// caller must act on rather than wait for (see [`Doorbell::register`]).
    #[must_use = "a bit set before the waker was registered is only reported here"]
    pub(crate) fn register_host(&self, waker: &Waker) -> u8 {
        self.doorbell.register(waker)
    }

    /// The executor is running: remote wakes need not wake the host.
    pub(crate) fn unregister_host(&self) {
        self.doorbell.unregister();
    }

    /// Hands a woken task to the executor from outside its run loop.
    ///
    /// Once the executor is closed, a `Send` task is given back, for the
    /// caller to drop on its own thread: its executor's shutdown is over or
    /// under way, and a wake that raced it (set the task's scheduled state
    /// before the shutdown's wake, pushed after its last drain) would
    /// otherwise leave the task in the injector for good. A `!Send` task is
    /// always accepted (it must not be dropped on another thread); see
    /// `Core::shutdown` for the one race that can strand one.
    pub(crate) fn inject(&self, runnable: Runnable<Header>) -> Result<(), Runnable<Header>> {
        runnable
            .metadata()
            .woken_at
            .store(self.clock.now(), Ordering::Relaxed);
        {
            let mut injector = self.injector();
            if injector.closed && !runnable.metadata().local {
                return Err(runnable);
            }
            injector.tasks.push(runnable);
        }
        self.remote_schedules.fetch_add(1, Ordering::Relaxed);
        self.notify(REMOTE);
        Ok(())
    }

    /// Hands a newly spawned (`Send`) task to the executor; gives it back if
    /// the executor is gone, or closed and the spawn does not come from one
    /// of its own tasks (`own_task`, asked only then; see `Core::close`).
    pub(crate) fn inject_spawn(
        &self,
        runnable: Runnable<Header>,
        own_task: impl FnOnce() -> bool,
    ) -> Result<(), Runnable<Header>> {
        {
            let mut injector = self.injector();
            if injector.closed || (injector.closing && !own_task()) {
                return Err(runnable);
            }
            injector.tasks.push(runnable);
        }
        self.remote_schedules.fetch_add(1, Ordering::Relaxed);
        self.notify(REMOTE);
        Ok(())
    }

    /// Hands a task that already belongs to the executor's books, or is
    /// new to it, to the executor; gives it back if the executor is gone
    /// (a closed executor takes it: it is not a spawn from outside).
    pub(crate) fn inject_new(&self, runnable: Runnable<Header>) -> Result<(), Runnable<Header>> {
        self.inject_spawn(runnable, || true)
    }

    /// Asks the executor to wake an aborted task so that it sees the abort.
    pub(crate) fn request_abort(&self, id: TaskId) {
        self.injector().aborts.push(id);
        self.notify(REMOTE);
    }

    /// Hands the executor a task that its queue's scheduler dropped, to be
    /// cancelled on the executor's thread at its next poll boundary (not
    /// here: its future's drop may call back into the queue). Once the
    /// executor is closed, a `Send` task is given back to be dropped by the
    /// caller, as in [`inject`](Shared::inject).
    pub(crate) fn hand_back_dropped(
        &self,
        runnable: Runnable<Header>,
    ) -> Result<(), Runnable<Header>> {
        {
            let mut injector = self.injector();
            if injector.closed && !runnable.metadata().local {
                return Err(runnable);
            }
            injector.dropped.push(runnable);
        }
        self.notify(REMOTE);
        Ok(())
    }

    /// Clears the `REMOTE` bit, then moves every injected task, abort
    /// request and dropped task into `into` (whose vectors should be
    /// empty). Clearing first (invariant 3 of [`Doorbell`]) means work
    /// injected after the take sets the bit again.
    pub(crate) fn take_injected(&self, into: &mut Injected) {
        self.clear(REMOTE);
        let mut injector = self.injector();
        std::mem::swap(&mut injector.tasks, &mut into.tasks);
        std::mem::swap(&mut injector.aborts, &mut into.aborts);
        std::mem::swap(&mut injector.dropped, &mut into.dropped);
    }

    /// Refuses spawns from other threads from now on (`Core::close`); the
    /// executor's tasks go on. Returns whether it was open.
    pub(crate) fn begin_close(&self) -> bool {
        let mut injector = self.injector();
        !std::mem::replace(&mut injector.closing, true)
    }

    /// Whether the executor was closed (`Core::close`) or dropped.
    pub(crate) fn is_closing(&self) -> bool {
        let injector = self.injector();
        injector.closing || injector.closed
    }

    /// Refuses all future spawns (the executor is being dropped). Calls
    /// that never ran are dropped here (their callers see their channels
    /// close), and a thief is let go.
    pub(crate) fn close(&self) {
        let (calls, thief) = {
            let mut injector = self.injector();
            injector.closed = true;
            (
                std::mem::take(&mut injector.calls),
                std::mem::take(&mut injector.thieves),
            )
        };
        drop((calls, thief));
    }

    // ----- hooks for executors that work together (a pool) ---------------
    //
    // The core knows nothing of pools. These are the hooks a pool's workers
    // use: another thread runs a closure on the executor's thread
    // (`call`), an idle executor offers to take queued tasks off a busy one
    // (`offer_thief`, then `Core::shed` moves them with `move_in`), and the
    // counts of parks, wake-ups and moved tasks.

    /// Runs `call` on the executor's thread at its next poll boundary (as
    /// soon as possible; it wakes the executor if idle), with the executor
    /// current (`Handle::current` finds it). Given back if the executor is
    /// closed. Ringing for a call does not count as a wake-up.
    pub(crate) fn call(
        &self,
        call: Box<dyn FnOnce() + Send>,
    ) -> Result<(), Box<dyn FnOnce() + Send>> {
        {
            let mut injector = self.injector();
            if injector.closed {
                return Err(call);
            }
            injector.calls.push(Call(call));
        }
        self.doorbell.notify(CALL);
        Ok(())
    }

    /// Makes the run loop return at its next poll boundary, whatever is
    /// runnable, so that a `run_until` future woken just before is polled
    /// without waiting for the end of the running turn (a pool's worker
    /// told to stop at once). Wakes the executor if idle.
    pub(crate) fn interrupt(&self) {
        self.doorbell.notify(INTERRUPT);
    }

    /// Clears the `CALL` bit, then takes the waiting calls.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        self.clear(CALL);
        std::mem::take(&mut self.injector().calls)
    }

    /// `thief` (an idle executor with the same queue table) would take
    /// queued tasks of this executor's sheddable queues: at its next poll
    /// boundary this executor hands it a batch, if it has one to spare, or
    /// keeps the offer until a sheddable queue grows. Never wakes this
    /// executor (an idle one has nothing to shed). A thief whose offer
    /// stands is not added twice (but the bit is flagged again).
    pub(crate) fn offer_thief(&self, thief: &Arc<Shared>) {
        {
            let mut injector = self.injector();
            if injector.closed {
                return;
            }
            if !injector.thieves.iter().any(|t| Arc::ptr_eq(t, thief)) {
                injector.thieves.push(thief.clone());
            }
            self.wants_shed.store(true, Ordering::Relaxed);
        }
        self.doorbell.flag(SHED);
    }

    // ----- the hooks of the `time` module ---------------------------------

    /// The executor's timers, made by `make` the first time.
    pub(crate) fn deadlines(
        &self,
        make: impl FnOnce() -> Arc<dyn Deadlines>,
    ) -> &Arc<dyn Deadlines> {
        self.deadlines.get_or_init(make)
    }

    /// The earliest timer deadline, in clock ticks (`u64::MAX`: none).
    #[inline]
    pub(crate) fn next_deadline(&self) -> u64 {
        self.next_deadline.load(Ordering::Relaxed)
    }

    /// Sets the earliest timer deadline (on the executor's thread).
    pub(crate) fn set_next_deadline(&self, ticks: u64) {
        self.next_deadline.store(ticks, Ordering::Relaxed);
    }

    /// The executor goes idle: its timers arm a wake-up for their next
    /// deadline, if any (see [`Deadlines::going_idle`]). Returns `true` if
    /// timers fired instead (the caller runs its loop again).
    pub(crate) fn arm_deadline(self: &Arc<Self>) -> bool {
        match self.deadlines.get() {
            Some(deadlines) => deadlines.clone().going_idle(self),
            None => false,
        }
    }

    /// Fires the timers due at `now`, if the executor has any.
    pub(crate) fn fire_deadlines(&self, now: u64) {
        if let Some(deadlines) = self.deadlines.get() {
            deadlines.clone().fire(now, self);
        }
    }

    /// The timer thread's ring: a deadline passed (wakes the host).
    pub(crate) fn ring_timer(&self) {
        self.notify(TIMER);
    }

    /// The executor went idle (`true`) or started a run (`false`).
    #[inline]
    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// The executor is idle: it went idle and has not run since.
    pub(crate) fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    /// A thief is waiting for tasks.
    #[inline]
    pub(crate) fn wants_shed(&self) -> bool {
        self.wants_shed.load(Ordering::Relaxed)
    }

    /// Asks for the next poll boundary to shed tasks (a sheddable queue
    /// grew while a thief waits).
    pub(crate) fn flag_shed(&self) {
        self.doorbell.flag(SHED);
    }

    /// Clears the `SHED` bit, then takes the waiting thieves.
    pub(crate) fn take_thieves(&self) -> Vec<Arc<Shared>> {
        self.clear(SHED);
        let mut injector = self.injector();
        self.wants_shed.store(false, Ordering::Relaxed);
        std::mem::take(&mut injector.thieves)
    }

    /// Puts back thieves that got nothing: their offers stand.
    ///
    /// Never holds this injector's lock while taking another's (two
    /// executors may each be the other's thief): the closed thieves are
    /// sorted out first.
    pub(crate) fn keep_thieves(&self, thieves: impl IntoIterator<Item = Arc<Shared>>) {
        let open: Vec<Arc<Shared>> = thieves.into_iter().filter(|t| !t.is_closed()).collect();
        let mut injector = self.injector();
        if injector.closed {
            return;
        }
        for thief in open {
            if !injector.thieves.iter().any(|t| Arc::ptr_eq(t, &thief)) {
                injector.thieves.push(thief);
            }
        }
        if !injector.thieves.is_empty() {
            self.wants_shed.store(true, Ordering::Relaxed);
        }
    }

    /// Takes tasks that another executor shed (their homes already point
    /// here); gives them all back if this executor is closed.
    pub(crate) fn move_in(
        &self,
        tasks: Vec<Runnable<Header>>,
    ) -> Result<(), Vec<Runnable<Header>>> {
        let now = self.clock.now();
        let count = tasks.len() as u64;
        {
            let mut injector = self.injector();
            if injector.closed {
                return Err(tasks);
            }
            for runnable in tasks {
                let header = runnable.metadata();
                header.woken_at.store(now, Ordering::Relaxed);
                header
                    .arrival
                    .store(crate::task::MOVED_IN, Ordering::Relaxed);
                injector.tasks.push(runnable);
            }
        }
        self.counts.moved_in.fetch_add(count, Ordering::Relaxed);
        self.notify(REMOTE);
        Ok(())
    }

    /// Gives the injector's memory back after a burst.
    pub(crate) fn trim(&self) {
        let mut injector = self.injector();
        trim_vec(&mut injector.tasks);
        trim_vec(&mut injector.aborts);
        trim_vec(&mut injector.dropped);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.injector().closed
    }

    pub(crate) fn remote_schedules(&self) -> u64 {
        self.remote_schedules.load(Ordering::Relaxed)
    }
}
