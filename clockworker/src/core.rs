//! The single-threaded heart of an executor: the local run queues, the
//! scheduler between them, the run loop, and shutdown.
//!
//! # Invariants
//!
//! - A `Core` is only touched on the thread that built it (it is reached
//!   through `Rc`s and a thread-local); cross-thread traffic goes through
//!   [`Shared`].
//! - Every live task is *scheduled* (its `Runnable` sits in a local queue or
//!   the injector), *running*, or *registered*: a task registers (its waker,
//!   keyed by its id) the first time its poll returns `Pending`, and leaves
//!   the registry when it finishes. So a parked task is always registered,
//!   which is what lets [`Core::shutdown`] and `JoinHandle::abort` reach it,
//!   while a task that completes in one poll never pays for the registry.
//! - A queue with tasks in its deque is *active* in the scheduler. A queue
//!   leaves the scheduler lazily: only when it is the running queue and the
//!   loop finds its deque empty.
//! - No `RefCell` borrow is held while user code runs (a poll, a future's
//!   drop): user code may spawn, wake, abort or read stats re-entrantly.
//! - While two or more queues are active, the clock is read at every poll
//!   boundary and the ticks between two reads are charged to the queue whose
//!   task was polled in between, so a turn overruns its budget by at most
//!   the poll that crossed it, and a queue that becomes runnable waits at
//!   most for the poll in progress.
//! - With a single active queue there is no one to share with, so the clock
//!   is read every `stride`-th boundary: the stride doubles (up to
//!   `MAX_STRIDE`) while the polls between two reads averaged under
//!   `short_poll`, and drops back to 1 after any longer stretch. All elapsed
//!   time is still charged (at the next read); what loses precision is only
//!   the per-poll timestamp (queue-delay samples, the host-yield check,
//!   which may come up to `MAX_STRIDE - 1` short polls late). A second queue
//!   becoming active switches back to reading at every boundary at once.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use async_task::{Builder, Runnable, WithInfo};
use rustc_hash::FxHasher;
use slab::Slab;

use crate::clock::Clock;
use crate::context;
use crate::eevdf::Eevdf;
use crate::executor::UnknownQueue;
use crate::group::GroupTable;
use crate::join::JoinHandle;
use crate::key::KeyTable;
use crate::run::MainWake;
use crate::runqueue::RunQueue;
use crate::sched::{GroupId, PollOutcome, TaskScheduler};
use crate::shared::{Injected, MAIN, REMOTE, Shared};
use crate::stats::{QueueCounters, QueueStats, bump};
use crate::task::{self, Header, Placement, Signal, TaskFuture, TaskId, TaskLabel};

/// Tunables, in clock ticks.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The time slice each queue requests when it is picked.
    pub(crate) slice: u64,
    /// A poll shorter than this (on average) lets the clock be read less
    /// often while a single queue is active.
    pub(crate) short_poll: u64,
    /// How long `run_until` may keep its host waiting while work is runnable.
    pub(crate) host_yield: u64,
    /// Resume task panics out of `run_until`/`block_on`.
    pub(crate) propagate_panics: bool,
}

/// Marker for "no queue is running".
const NONE: usize = usize::MAX;

/// At most this many polls between two clock reads (single active queue).
const MAX_STRIDE: u32 = 16;

/// A woken `run_until` future is polled at the end of the running turn, or
/// after this many task polls, whichever comes first: promptly enough for
/// an orchestrating future, without a round trip through it per task (a
/// future that awaits many join handles in turn is woken once per task).
const MAIN_BATCH: u32 = 64;

/// One queue's tasks and counters.
struct LocalQueue {
    tasks: RefCell<RunQueue>,
    /// The queue has a custom scheduler, which hears each poll's CPU time.
    custom: bool,
    /// Some polls of this queue may need tracking (its own CPU time, group
    /// accounting): it has a custom scheduler, or a grouped task was ever
    /// spawned into it. Without, the loop takes the plain FIFO path.
    may_track: Cell<bool>,
    /// The queue's live task groups.
    groups: RefCell<GroupTable>,
    weight: u32,
    counters: QueueCounters,
}

/// Why the run loop stopped.
pub(crate) enum Exit {
    /// Nothing is runnable.
    Idle,
    /// The host-yield interval is over while work is still runnable.
    HostYield,
    /// A `run_until` future was woken, and the running turn has ended (or
    /// `MAIN_BATCH` tasks have been polled since the loop started).
    MainWoken,
    /// A task panicked and panics propagate: resume this payload.
    Panicked(Box<dyn Any + Send>),
}

pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    clock: Clock,
    config: Config,
    queues: Box<[LocalQueue]>,
    sched: RefCell<Eevdf>,
    /// The queue whose turn it is, or `NONE` (mirrors `sched.running()`).
    running: Cell<usize>,
    /// Ticks used in the running queue's turn so far, and its budget.
    slice_used: Cell<u64>,
    slice_budget: Cell<u64>,
    /// A queue became runnable with an earlier deadline than the running one.
    preempt: Cell<bool>,
    /// Two or more queues are active (mirrors `sched.contended()`).
    contended: Cell<bool>,
    /// The last clock reading: `slice_used` counts up to it. During a poll
    /// with every boundary sampled, the start of that poll.
    now: Cell<u64>,
    /// Polls since the last clock reading, and how many may pass between
    /// two readings (see the module docs).
    unsampled: Cell<u32>,
    stride: Cell<u32>,
    /// When the current `run_until` poll must hand control back to its host.
    host_deadline: Cell<u64>,
    /// A `run_until`/`block_on` of this executor is polling.
    pub(crate) in_run: Cell<bool>,
    /// A task (not a `run_until` future) is being polled.
    in_task: Cell<bool>,
    /// The executor has been dropped.
    closed: Cell<bool>,
    /// Wakers of the registered tasks (see the module docs).
    registry: RefCell<HashMap<TaskId, Waker, BuildHasherDefault<FxHasher>>>,
    /// Tasks alive: spawned (and seen, for remote spawns) and not finished.
    live: Cell<usize>,
    /// The task being polled, its group, and whether it was aborted during
    /// its poll (before it could register).
    current_task: Cell<Option<TaskId>>,
    current_group: Cell<Option<GroupId>>,
    /// The hint of the task being polled, for a tracked poll.
    current_hint: Cell<u64>,
    abort_current: Cell<bool>,
    /// Reused buffers for draining the injector.
    injected: RefCell<Injected>,
    host_yields: Cell<u64>,
    idle_waits: Cell<u64>,
    /// The `run_until`/`block_on` futures alive for this executor.
    runners: RefCell<Slab<Arc<MainWake>>>,
    /// The executor's `KeyTable<K>`, for looking keys up without knowing `K`
    /// (`spawn!(key, ..)`), and the keys' `Debug` names.
    keys: Rc<dyn Any>,
    names: Box<[String]>,
}

impl Core {
    pub(crate) fn new(
        queues: Vec<(u32, Option<Box<dyn TaskScheduler>>)>,
        config: Config,
        clock: Clock,
        keys: Rc<dyn Any>,
        names: Box<[String]>,
    ) -> Core {
        let weights: Vec<u32> = queues.iter().map(|(weight, _)| *weight).collect();
        let queues = queues
            .into_iter()
            .map(|(weight, scheduler)| {
                let tasks = RunQueue::new(scheduler);
                LocalQueue {
                    custom: tasks.is_custom(),
                    may_track: Cell::new(tasks.is_custom()),
                    tasks: RefCell::new(tasks),
                    groups: RefCell::new(GroupTable::default()),
                    weight,
                    counters: QueueCounters::new(),
                }
            })
            .collect();
        Core {
            shared: Arc::new(Shared::new(clock.clone())),
            sched: RefCell::new(Eevdf::new(&weights, config.slice)),
            clock,
            config,
            queues,
            running: Cell::new(NONE),
            slice_used: Cell::new(0),
            slice_budget: Cell::new(0),
            preempt: Cell::new(false),
            contended: Cell::new(false),
            now: Cell::new(0),
            unsampled: Cell::new(0),
            stride: Cell::new(1),
            host_deadline: Cell::new(u64::MAX),
            in_run: Cell::new(false),
            in_task: Cell::new(false),
            closed: Cell::new(false),
            registry: RefCell::new(HashMap::default()),
            live: Cell::new(0),
            current_task: Cell::new(None),
            current_group: Cell::new(None),
            current_hint: Cell::new(0),
            abort_current: Cell::new(false),
            injected: RefCell::new(Injected::default()),
            host_yields: Cell::new(0),
            idle_waits: Cell::new(0),
            runners: RefCell::new(Slab::new()),
            keys,
            names,
        }
    }

    /// The index of the queue with this key.
    pub(crate) fn find_queue<K: Copy + Eq + Hash + Debug + 'static>(
        &self,
        key: &K,
    ) -> Result<u32, UnknownQueue> {
        match self.keys.downcast_ref::<KeyTable<K>>() {
            Some(table) => table.find(key),
            None => None,
        }
        .ok_or_else(|| UnknownQueue::new(format!("{key:?}"), self.queue_names()))
    }

    /// The `Debug` names of the queue keys, in order.
    pub(crate) fn queue_names(&self) -> Vec<String> {
        self.names.to_vec()
    }

    /// The queue of the task being polled, or the first queue when the
    /// `run_until` future is being polled: where `spawn!(future)` goes.
    pub(crate) fn current_queue(&self) -> u32 {
        self.current_queue_of_task().unwrap_or(0)
    }

    pub(crate) fn add_runner(&self, runner: Arc<MainWake>) -> usize {
        self.runners.borrow_mut().insert(runner)
    }

    /// Forgets a finished runner and wakes the others' hosts: only one
    /// host waker is registered for remote wake-ups at a time, and it may
    /// have been this runner's.
    pub(crate) fn remove_runner(&self, runner: usize) {
        let others: Vec<Arc<MainWake>> = {
            let mut runners = self.runners.borrow_mut();
            runners.try_remove(runner);
            runners.iter().map(|(_, r)| r.clone()).collect()
        };
        for other in others {
            other.wake_host();
        }
    }

    pub(crate) fn propagate_panics(&self) -> bool {
        self.config.propagate_panics
    }

    // ----- spawning and waking -------------------------------------------

    /// Spawns a (possibly `!Send`) task onto queue `index` from the
    /// executor's thread. With no `placement`, a task spawned onto the queue
    /// of the task being polled joins that task's group.
    pub(crate) fn spawn_local<F>(
        &self,
        index: u32,
        future: F,
        label: TaskLabel,
        placement: Option<Placement>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let now = if self.in_run.get() {
            self.now.get()
        } else {
            self.clock.now()
        };
        let placement = placement.unwrap_or_else(|| self.inherited(index));
        let header = Header::new(self.shared.clone(), index, label, now, false, placement);
        let id = header.id;
        let propagate = self.config.propagate_panics;
        let (runnable, task) = Builder::new().metadata(header).spawn_local(
            move |_| TaskFuture::new(future, id, propagate),
            WithInfo(context::schedule),
        );
        let handle = JoinHandle::new(task);
        if self.closed.get() {
            // The executor is shutting down: the future is dropped unpolled
            // and the handle resolves to `Cancelled`.
            task::run_aborted(runnable);
            return handle;
        }
        self.admit(runnable.metadata());
        self.enqueue(runnable);
        handle
    }

    /// The group a task spawned onto queue `index` inherits: that of the
    /// task being polled, if it belongs to the same queue.
    pub(crate) fn inherited(&self, index: u32) -> Placement {
        if !self.queues[index as usize].may_track.get() {
            // No task of this queue has a group.
            return Placement::default();
        }
        let group = match self.current_group.get() {
            Some(group) if self.current_queue_of_task() == Some(index) => {
                let weight = self.queues[index as usize].groups.borrow().weight(group);
                weight.map(|weight| (group, weight))
            }
            _ => None,
        };
        Placement { group, hint: 0 }
    }

    /// The queue of the task being polled, if a task is being polled.
    fn current_queue_of_task(&self) -> Option<u32> {
        let running = self.running.get();
        (self.in_task.get() && running != NONE).then_some(running as u32)
    }

    /// Counts a task that enters the executor (and its group).
    fn admit(&self, header: &Header) {
        self.live.set(self.live.get() + 1);
        let queue = &self.queues[header.queue as usize];
        bump(&queue.counters.spawned);
        if let Some(group) = header.group() {
            queue.may_track.set(true);
            queue.groups.borrow_mut().join(group, header.group_weight());
        }
    }

    /// Registers a task whose poll returned `Pending` for the first time.
    pub(crate) fn register(&self, id: TaskId, waker: &Waker) {
        self.registry.borrow_mut().insert(id, waker.clone());
    }

    /// Removes a finished task from the registry.
    pub(crate) fn unregister(&self, id: TaskId) {
        // Take the waker out first: dropping it may free the task.
        let waker = self.registry.borrow_mut().remove(&id);
        drop(waker);
    }

    /// Wakes an aborted task so that the loop polls it (and so sees the
    /// abort). A task that is neither registered nor being polled is queued
    /// (the loop sees the abort when it gets to it) or already finished.
    pub(crate) fn wake_for_abort(&self, id: TaskId) {
        let waker = self.registry.borrow().get(&id).cloned();
        match waker {
            Some(waker) => waker.wake(),
            None if self.in_task.get() && self.current_task.get() == Some(id) => {
                // Aborted during its own poll, before it could register:
                // the loop wakes it if that poll parks it.
                self.abort_current.set(true);
            }
            None => {}
        }
    }

    /// A task woken on this thread while the executor runs.
    #[inline]
    pub(crate) fn enqueue_woken(&self, runnable: Runnable<Header>) {
        runnable
            .metadata()
            .woken_at
            .store(self.now.get(), Ordering::Relaxed);
        self.enqueue(runnable);
    }

    #[inline]
    fn enqueue(&self, runnable: Runnable<Header>) {
        let index = runnable.metadata().queue as usize;
        let queue = &self.queues[index];
        let was_empty = queue.tasks.borrow_mut().push(runnable);
        if was_empty {
            let mut sched = self.sched.borrow_mut();
            if !sched.is_active(index) {
                if let Some(after) = sched.activate(index) {
                    // End the running turn once the woken queue is eligible.
                    bump(&queue.counters.preemptions);
                    if after == 0 {
                        self.preempt.set(true);
                    } else {
                        self.slice_budget.set(self.slice_budget.get().min(after));
                    }
                }
                self.contended.set(sched.contended());
            }
        }
    }

    /// Moves injected tasks into the local queues and delivers abort
    /// requests.
    fn drain_injected(&self) {
        self.shared.clear(REMOTE);
        let mut batch = self.injected.take();
        self.shared.take_injected(&mut batch);
        for runnable in batch.tasks.drain(..) {
            let header = runnable.metadata();
            if header.fresh.swap(false, Ordering::Relaxed) {
                // Spawned through a `Spawner`, arriving for the first time.
                self.admit(header);
            }
            self.enqueue(runnable);
        }
        for id in batch.aborts.drain(..) {
            self.wake_for_abort(id);
        }
        for runnable in batch.dropped.drain(..) {
            self.cancel_dropped(runnable);
        }
        self.injected.replace(batch);
    }

    // ----- the run loop --------------------------------------------------

    /// Starts a `run_until` poll: the host gets control back after the
    /// host-yield interval, or never if `host_yield` is false (`block_on`).
    pub(crate) fn begin_host_turn(&self, host_yield: bool) {
        let now = self.clock.now();
        // Tasks spawned or woken by the `run_until` future before the loop
        // runs are dated from here.
        self.now.set(now);
        let deadline = if host_yield {
            now.saturating_add(self.config.host_yield)
        } else {
            u64::MAX
        };
        self.host_deadline.set(deadline);
    }

    pub(crate) fn host_turn_over(&self) -> bool {
        self.clock.now() >= self.host_deadline.get()
    }

    pub(crate) fn note_host_yield(&self) {
        bump(&self.host_yields);
    }

    pub(crate) fn note_idle_wait(&self) {
        bump(&self.idle_waits);
    }

    /// Polls tasks until nothing is runnable, the host's turn comes, a woken
    /// `run_until` future is due (at the end of the running turn, or after
    /// `MAIN_BATCH` polls, and always after at least one poll, so tasks make
    /// progress however often it is woken), or a task panic must propagate.
    pub(crate) fn run_tasks(&self) -> Exit {
        // Time spent outside (in the host, in a `run_until` future) is
        // nobody's.
        self.now.set(self.clock.now());
        self.unsampled.set(0);
        let exit = self.run_loop();
        self.settle();
        exit
    }

    fn run_loop(&self) -> Exit {
        let host_deadline = self.host_deadline.get();
        let mut polls: u32 = 0;
        loop {
            let attention = self.shared.attention();
            if attention != 0 {
                if attention & REMOTE != 0 {
                    self.drain_injected();
                }
                if attention & MAIN != 0 && polls > 0 && (polls >= MAIN_BATCH || self.turn_over()) {
                    return Exit::MainWoken;
                }
            }

            let Some(index) = self.turn() else {
                return Exit::Idle;
            };
            let queue = &self.queues[index];
            let next = queue.tasks.borrow_mut().pop();
            let Some(runnable) = next else {
                // The running queue ran dry: it leaves the scheduler.
                self.settle();
                self.end_turn();
                continue;
            };

            let header = runnable.metadata();
            let id = header.id;
            // Grouped tasks and custom schedulers need this poll's own CPU
            // time and hear about it; queues that use neither skip it all.
            let tracked = queue.may_track.get() && self.track_start(queue, header);
            let start = self.now.get();
            if header.aborted.load(Ordering::Acquire) {
                // The task future drops the user's future and completes as
                // `Cancelled`.
                task::request(Signal::Abort);
            } else {
                let woken_at = header.woken_at.load(Ordering::Relaxed);
                queue
                    .counters
                    .queue_delay
                    .record(start.saturating_sub(woken_at));
                task::request(Signal::Poll);
            }

            polls += 1;
            self.current_task.set(Some(id));
            self.in_task.set(true);
            // The task future catches panics of the user's future; this
            // catches anything else (a panicking waker of the join handle).
            let escaped = std::panic::catch_unwind(AssertUnwindSafe(|| runnable.run())).err();
            self.in_task.set(false);

            let unsampled = self.unsampled.get() + 1;
            self.unsampled.set(unsampled);
            let sampled = tracked || self.contended.get() || unsampled >= self.stride.get();
            if sampled {
                self.sample();
            }

            let answer = task::answer();
            if tracked {
                self.track_end(queue, id, start, answer != Signal::Pending);
            }
            let counters = &queue.counters;
            match answer {
                Signal::Pending => {
                    bump(&counters.polls);
                    if self.abort_current.replace(false) {
                        // Aborted during this poll; registered now.
                        self.wake_for_abort(id);
                    }
                }
                Signal::Completed => {
                    bump(&counters.polls);
                    bump(&counters.completed);
                    self.retire();
                }
                Signal::Cancelled => {
                    bump(&counters.cancelled);
                    self.retire();
                    if let Some(payload) = self.propagating(None) {
                        return Exit::Panicked(payload);
                    }
                }
                Signal::Panicked => {
                    bump(&counters.polls);
                    bump(&counters.panicked);
                    self.retire();
                    if let Some(payload) = self.propagating(None) {
                        return Exit::Panicked(payload);
                    }
                }
                // No task future ran: the task had already closed.
                Signal::Poll | Signal::Abort => self.retire(),
            }
            if escaped.is_some()
                && let Some(payload) = self.propagating(escaped)
            {
                return Exit::Panicked(payload);
            }

            if sampled && self.now.get() >= host_deadline {
                return Exit::HostYield;
            }
        }
    }

    /// Before polling a task of a queue that may track polls: notes the
    /// task's group (for `spawn!` inheritance) and, if this poll needs its
    /// own CPU time, reads the clock now.
    #[inline(never)]
    fn track_start(&self, queue: &LocalQueue, header: &Header) -> bool {
        let group = header.group();
        self.current_group.set(group);
        if !queue.custom && group.is_none() {
            return false;
        }
        self.current_hint.set(header.hint());
        self.settle();
        true
    }

    /// After a tracked poll: charges it to the task's group and tells the
    /// queue's scheduler about it; a finished task leaves its group, and a
    /// group left empty is forgotten.
    #[inline(never)]
    fn track_end(&self, queue: &LocalQueue, task: TaskId, start: u64, finished: bool) {
        let (group, hint) = (self.current_group.get(), self.current_hint.get());
        let cpu = self.now.get().saturating_sub(start);
        let mut gone = None;
        if let Some(group) = group {
            let mut groups = queue.groups.borrow_mut();
            groups.charge(group, cpu);
            if finished && groups.leave(group) {
                gone = Some(group);
            }
        }
        if queue.custom {
            let outcome = PollOutcome {
                task,
                group,
                hint,
                cpu: self.clock.to_duration(cpu),
                finished,
            };
            let mut tasks = queue.tasks.borrow_mut();
            tasks.polled(&outcome);
            if let Some(group) = gone {
                tasks.group_gone(group);
            }
        }
    }

    /// A scheduler dropped a task it held: it is cancelled (its future
    /// dropped, its handle resolving to `Cancelled`) and counted as such.
    fn cancel_dropped(&self, runnable: Runnable<Header>) {
        let header = runnable.metadata();
        let index = header.queue as usize;
        let group = header.group();
        task::run_aborted(runnable);
        let queue = &self.queues[index];
        bump(&queue.counters.cancelled);
        if let Some(group) = group
            && queue.groups.borrow_mut().leave(group)
            && let Ok(mut tasks) = queue.tasks.try_borrow_mut()
        {
            tasks.group_gone(group);
        }
        self.retire();
    }

    /// Counts a task that finished (its future is gone).
    #[inline]
    fn retire(&self) {
        self.live.set(self.live.get() - 1);
        self.abort_current.set(false);
    }

    /// Reads the clock, charges the time since the last reading to the
    /// running turn, and adapts the sampling stride.
    #[inline]
    fn sample(&self) {
        let now = self.clock.now();
        let elapsed = now.saturating_sub(self.now.get());
        self.slice_used.set(self.slice_used.get() + elapsed);
        self.now.set(now);
        let polls = u64::from(self.unsampled.replace(0));
        let stride = if self.contended.get() || elapsed >= polls * self.config.short_poll {
            1
        } else {
            (self.stride.get() * 2).min(MAX_STRIDE)
        };
        self.stride.set(stride);
    }

    /// Reads the clock if polls ran since the last reading.
    #[inline]
    fn settle(&self) {
        if self.unsampled.get() != 0 {
            self.sample();
        }
    }

    /// The panic payload to resume out of `run_until`, if panics propagate:
    /// the one a task future kept, else `escaped`.
    fn propagating(&self, escaped: Option<Box<dyn Any + Send>>) -> Option<Box<dyn Any + Send>> {
        let payload = task::take_propagating_panic().or(escaped);
        payload.filter(|_| self.config.propagate_panics)
    }

    /// Whether the running queue's turn is over: budget used, preempted, or
    /// no turn in progress.
    #[inline]
    fn turn_over(&self) -> bool {
        self.running.get() == NONE
            || self.preempt.get()
            || self.slice_used.get() >= self.slice_budget.get()
    }

    /// The queue whose turn it is, starting a new turn if the last one is
    /// over.
    #[inline]
    fn turn(&self) -> Option<usize> {
        if !self.turn_over() {
            return Some(self.running.get());
        }
        self.settle();
        self.end_turn();
        let pick = self.sched.borrow_mut().pick()?;
        self.running.set(pick.queue);
        self.slice_budget.set(pick.budget);
        bump(&self.queues[pick.queue].counters.slices);
        Some(pick.queue)
    }

    /// Charges the running queue for its turn and hands it back to the
    /// scheduler.
    fn end_turn(&self) {
        self.preempt.set(false);
        let index = self.running.replace(NONE);
        if index == NONE {
            return;
        }
        let used = self.slice_used.replace(0);
        let queue = &self.queues[index];
        queue.counters.busy.set(queue.counters.busy.get() + used);
        let still_runnable = !queue.tasks.borrow().is_empty();
        let mut sched = self.sched.borrow_mut();
        sched.switch(used, still_runnable);
        self.contended.set(sched.contended());
    }

    /// Whether the code being polled should yield now (for `yield_maybe`).
    pub(crate) fn should_yield(&self) -> bool {
        if self.shared.attention() & REMOTE != 0 {
            // Remote wakes count as soon as they are delivered.
            self.drain_injected();
        }
        let now = self.clock.now();
        if now >= self.host_deadline.get() {
            return true;
        }
        if !self.in_task.get() {
            // A `run_until` future: yield if any task is waiting.
            return self.sched.borrow().has_active();
        }
        self.preempt.get()
            || self.slice_used.get() + now.saturating_sub(self.now.get()) >= self.slice_budget.get()
    }

    // ----- stats -----------------------------------------------------------

    pub(crate) fn queue_stats<K>(&self, index: usize, key: K) -> QueueStats<K> {
        let queue = &self.queues[index];
        let counters = &queue.counters;
        let mut busy = counters.busy.get();
        if self.running.get() == index {
            busy += self.slice_used.get();
        }
        let lag_ticks = self.sched.borrow().lag(index);
        let lag_nanos = self.clock.to_duration(lag_ticks.unsigned_abs()).as_nanos() as i64;
        QueueStats {
            key,
            weight: queue.weight,
            polls: counters.polls.get(),
            busy: self.clock.to_duration(busy),
            spawned: counters.spawned.get(),
            completed: counters.completed.get(),
            cancelled: counters.cancelled.get(),
            panicked: counters.panicked.get(),
            runnable: queue.tasks.borrow().len(),
            slices: counters.slices.get(),
            preemptions: counters.preemptions.get(),
            lag_nanos: if lag_ticks < 0 { -lag_nanos } else { lag_nanos },
            queue_delay: counters.queue_delay.snapshot(&self.clock),
            scheduler: queue.tasks.borrow().name(),
            groups: queue.groups.borrow().snapshot(&self.clock),
        }
    }

    pub(crate) fn live_tasks(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn runnable_tasks(&self) -> usize {
        self.queues.iter().map(|q| q.tasks.borrow().len()).sum()
    }

    pub(crate) fn host_yields(&self) -> u64 {
        self.host_yields.get()
    }

    pub(crate) fn idle_waits(&self) -> u64 {
        self.idle_waits.get()
    }

    // ----- shutdown --------------------------------------------------------

    /// Drops every task's future (the executor is being dropped), completing
    /// each task as `Cancelled`. Runs on the executor thread, outside any
    /// run of this executor.
    pub(crate) fn shutdown(&self) {
        self.closed.set(true);
        self.shared.close();
        // Wake every registered task: each one's `Runnable` then lands in a
        // local queue or the injector (this executor is not current, so
        // wakes are injected), where the loop below drops it.
        let wakers = std::mem::take(&mut *self.registry.borrow_mut());
        for (_, waker) in wakers {
            waker.wake();
        }
        self.live.set(0);
        loop {
            let mut dropped_any = false;
            for queue in self.queues.iter() {
                loop {
                    let next = queue.tasks.borrow_mut().pop();
                    let Some(runnable) = next else { break };
                    dropped_any = true;
                    task::run_aborted(runnable);
                }
            }
            let mut batch = Injected::default();
            self.shared.take_injected(&mut batch);
            for runnable in batch.tasks.into_iter().chain(batch.dropped) {
                dropped_any = true;
                task::run_aborted(runnable);
            }
            if !dropped_any {
                break;
            }
        }
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("queues", &self.queues.len())
            .field(
                "live_tasks",
                &self.registry.try_borrow().map(|r| r.len()).ok(),
            )
            .field(
                "running",
                &(self.running.get() != NONE).then(|| self.running.get()),
            )
            .field("in_run", &self.in_run.get())
            .finish_non_exhaustive()
    }
}

/// A handle to a task that never runs: its future is dropped at once and
/// the handle resolves to `Cancelled` (spawning onto a dropped executor).
pub(crate) fn cancelled<F>(index: u32, future: F, label: TaskLabel) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // The executor is gone; the header still needs shared state of its own.
    let shared = Arc::new(Shared::new(Clock::get()));
    let header = Header::new(shared, index, label, 0, false, Placement::default());
    let id = header.id;
    // The schedule function is never called: the task completes (as
    // `Cancelled`) before anything can wake it.
    let (runnable, task) = Builder::new()
        .metadata(header)
        .spawn_local(move |_| TaskFuture::new(future, id, false), |_| {});
    let handle = JoinHandle::new(task);
    task::run_aborted(runnable);
    handle
}
