//! The single-threaded heart of an executor, and the map of its parts.
//!
//! A [`Core`] is everything about one executor that lives on its thread.
//! It is made of parts with one job each:
//!
//! | part | file | owns |
//! |---|---|---|
//! | [`Turn`] | `core/turn.rs` | the EEVDF scheduler between queues, the running turn, the clock readings, the host's deadline |
//! | [`PollInProgress`] | `core/poll.rs` | whether a run is under way, the task being polled, its group and hint, an abort during its poll |
//! | [`Registry`] | `core/registry.rs` | the wakers of parked tasks, the count of live tasks |
//! | the run loop | `core/run_loop.rs` | nothing: it picks tasks, polls them and keeps the other parts' books after each poll |
//! | [`LocalQueue`] | `core/queue.rs` | one queue's runnable tasks, its groups (`GroupTable`, `core/groups.rs`), weight and counters |
//! | [`Shared`] | `shared.rs` | everything other threads touch: the injector, the attention bits, the host waker |
//! | [`Runners`] | `run.rs` | the `run_until`/`block_on` futures alive for this executor |
//! | the hooks | `core/shed.rs` | nothing: what executors that work together (a pool's workers) use — shedding queued tasks to an idle executor, calls from other threads, the idle hook |
//! | graceful close | `core/close.rs` | nothing: closing to spawns from outside, waiting until drained (a pool worker's drain too), waking `closed()` waiters |
//! | the stall watchdog | `stall.rs` | the beacon each poll publishes, the watchdog thread (`Core::watch`, off unless asked for) |
//!
//! This file holds what ties them together: spawning and waking (a task
//! into its queue), draining the injector, stats and shutdown. The run loop
//! itself, which polls tasks and keeps the books after each poll, is in
//! `core/run_loop.rs`.
//!
//! # Invariants
//!
//! - A `Core` is only touched on the thread that built it (it is reached
//!   through `Rc`s and a thread-local); cross-thread traffic goes through
//!   [`Shared`].
//! - Every live task is *scheduled* (its `Runnable` sits in a local queue or
//!   the injector), *running*, or *parked*: a task enters the [`Registry`]
//!   (its waker, keyed by its id) the first time its poll returns `Pending`,
//!   and leaves it when it finishes. So a parked task is always reachable,
//!   which is what lets [`Core::shutdown`] and `JoinHandle::abort` get to it,
//!   while a task that completes in one poll never pays for the registry.
//! - A queue with runnable tasks is *active* in the scheduler. A queue
//!   leaves the scheduler lazily: only when it is the running queue and the
//!   loop finds it empty.
//! - No `RefCell` borrow is held while user code runs (a poll, a future's
//!   drop, a waker): user code may spawn, wake, abort or read stats
//!   re-entrantly.
//! - The run loop alone decides what a poll did: the task future answers
//!   through the poll protocol (see `task.rs`) and never calls into the
//!   core. Registering a parked task, counting, releasing its group and
//!   propagating its panic happen here, after the poll.
//! - A task popped from a queue is run and counted as a task of the queue
//!   it was spawned on; a custom scheduler that hands out a task of another
//!   executor gives it back to that executor instead (see
//!   [`Core::next_task`]). Nothing another scheduler does can make a task
//!   run twice, be lost, or be counted in the wrong queue.
//! - A task belongs to one executor at a time (`Header::home`). Only a
//!   `Send` task of a sheddable queue that is queued, ungrouped and has
//!   never run may change executor (`Core::shed`): it is then in no
//!   registry and no waker of it exists, so it leaves this executor's books
//!   (its live count) and joins the other's whole. The core never learns
//!   what a pool is: the pool gives it [`Hooks`] when it is built.
//! - Memory follows the load: after a burst, the registry, the FIFO rings,
//!   the group tables and the injector's buffers shrink once they hold far
//!   fewer entries than they have room for ([`Core::trim`], called when the
//!   loop hands control back, never per poll).
//!
//! The clock-sampling rules are in `core/turn.rs`; the EEVDF accounting in
//! `eevdf.rs`.

mod close;
mod groups;
mod poll;
mod queue;
mod registry;
mod run_loop;
mod shed;
mod turn;
mod waiters;

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_task::Runnable;

use crate::clock::Clock;
use crate::error::{UnknownQueue, WeightError};
use crate::join::JoinHandle;
use crate::key::KeyTable;
use crate::run::Runners;
use crate::sched::TaskScheduler;
use crate::shared::{Injected, LOCAL, REMOTE, Shared};
use crate::stall::Watchdog;
use crate::stats::{ExecutorCounters, QueueStats, bump};
use crate::task::{self, Header, Outcome, Placement, TaskId, TaskLabel, TaskSpec};

pub(crate) use poll::PollInProgress;
pub(crate) use queue::LocalQueue;
pub(crate) use registry::{KEEP, Registry, should_shrink};
pub(crate) use turn::Turn;

/// Tunables, in clock ticks.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The time slice each queue requests when it is picked.
    pub(crate) slice: u64,
    /// How long `run_until` may keep its host waiting while work is runnable.
    pub(crate) host_yield: u64,
    /// Resume task panics out of `run_until`/`block_on`.
    pub(crate) propagate_panics: bool,
}

/// What executors that work together (a pool's workers) add to a core; the
/// core itself knows nothing of pools (see `core/shed.rs`).
#[derive(Default)]
pub(crate) struct Hooks {
    /// Per queue: queued `Send` tasks may be handed to another executor.
    pub(crate) sheddable: Vec<bool>,
    /// Runs each time the executor goes idle, on its thread, outside any
    /// task (no borrow of the core is held).
    pub(crate) on_idle: Option<Box<dyn Fn()>>,
    /// How long the executor, about to go idle, keeps checking its
    /// doorbell before it hands its thread back to its host (a pool's
    /// worker, whose host has nothing else to do; zero otherwise).
    pub(crate) idle_spin: std::time::Duration,
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
    propagate_panics: bool,
    queues: Box<[LocalQueue]>,
    pub(crate) turn: Turn,
    pub(crate) poll: PollInProgress,
    registry: Registry,
    /// Reused buffers for draining the injector.
    injected: std::cell::RefCell<Injected>,
    counters: ExecutorCounters,
    /// The executor has been dropped (or shut down): spawns are cancelled.
    closed: std::cell::Cell<bool>,
    /// The executor has been closed (`Handle::close`): spawns from outside
    /// its tasks are cancelled; its tasks finish (see `core/close.rs`).
    closing: std::cell::Cell<bool>,
    /// Woken when the executor closes (`Handle::closed`).
    close_waiters: waiters::Waiters,
    pub(crate) runners: Runners,
    /// The executor's `KeyTable<K>`, for looking keys up without knowing `K`
    /// (`spawn!(key, ..)`, `Handle::current`), and the keys' `Debug` names.
    keys: Rc<dyn Any>,
    names: Box<[String]>,
    on_idle: Option<Box<dyn Fn()>>,
    /// See [`Hooks::idle_spin`], in clock ticks.
    idle_spin: u64,
    /// Polls counted at the last park (see `Core::went_idle`).
    polls_at_park: std::cell::Cell<u64>,
    /// The stall watchdog, if one was asked for (see `stall.rs`).
    pub(crate) watch: Option<Watchdog>,
}

impl Core {
    pub(crate) fn new(
        queues: Vec<(u32, Option<Box<dyn TaskScheduler>>)>,
        config: Config,
        clock: Clock,
        keys: Rc<dyn Any>,
        names: Box<[String]>,
        hooks: Hooks,
        watch: Option<Watchdog>,
    ) -> Core {
        let weights: Vec<u32> = queues.iter().map(|(weight, _)| *weight).collect();
        let idle_spin = clock.to_ticks(hooks.idle_spin);
        let shared = Shared::new(clock.clone());
        #[cfg(feature = "tracing")]
        let shared = shared.with_queue_names(
            names
                .iter()
                .map(|name| crate::key::unquoted(name.clone()))
                .collect(),
        );
        Core {
            shared: Arc::new(shared),
            propagate_panics: config.propagate_panics,
            queues: queues
                .into_iter()
                .enumerate()
                .map(|(index, (weight, scheduler))| {
                    let mut queue = LocalQueue::new(weight, scheduler);
                    queue.sheddable = hooks.sheddable.get(index).copied().unwrap_or(false);
                    queue
                })
                .collect(),
            turn: Turn::new(clock, &weights, config.slice, config.host_yield),
            poll: PollInProgress::default(),
            registry: Registry::default(),
            injected: Default::default(),
            counters: ExecutorCounters::default(),
            closed: Default::default(),
            closing: Default::default(),
            close_waiters: Default::default(),
            runners: Runners::default(),
            keys,
            names,
            on_idle: hooks.on_idle,
            idle_spin,
            polls_at_park: Default::default(),
            watch,
        }
    }

    // ----- keys and queues -------------------------------------------------

    /// The executor's key table, if its keys are of type `K`.
    pub(crate) fn key_table<K: 'static>(&self) -> Option<Rc<KeyTable<K>>> {
        self.keys.clone().downcast::<KeyTable<K>>().ok()
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
        .ok_or_else(|| self.unknown(key))
    }

    /// The error for a key the executor does not have.
    #[cold]
    #[inline(never)]
    pub(crate) fn unknown(&self, key: &dyn Debug) -> UnknownQueue {
        UnknownQueue::new(format!("{key:?}"), self.names.to_vec())
    }

    /// The queue of the task being polled, or the first queue when the
    /// `run_until` future is being polled: where `spawn!(future)` goes.
    pub(crate) fn current_queue(&self) -> u32 {
        self.current_queue_of_task().unwrap_or(0)
    }

    /// The queue of the task being polled, if a task is being polled.
    fn current_queue_of_task(&self) -> Option<u32> {
        if !self.poll.in_task() {
            return None;
        }
        self.turn.running().map(|queue| queue as u32)
    }

    /// Gives queue `index` a new weight (already checked to be in
    /// `1..=MAX_WEIGHT`) from the next scheduling decision on: at once
    /// between turns, at the end of the running turn otherwise (which then
    /// ends at the next poll boundary). The same weight again changes
    /// nothing. [`WeightError::ExecutorGone`] once the executor has been
    /// dropped.
    pub(crate) fn set_weight(&self, index: u32, weight: u32) -> Result<(), WeightError> {
        if self.is_closed() {
            return Err(WeightError::ExecutorGone);
        }
        let queue = &self.queues[index as usize];
        if queue.weight.replace(weight) != weight {
            self.turn.set_weight(index as usize, weight);
        }
        Ok(())
    }

    pub(crate) fn propagate_panics(&self) -> bool {
        self.propagate_panics
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    // ----- spawning and waking -------------------------------------------

    /// The spec of a task spawned onto queue `index` from this thread.
    /// With no `placement`, a task spawned onto the queue of the task being
    /// polled joins that task's group.
    #[inline]
    fn local_spec(&self, index: u32, label: TaskLabel, placement: Option<Placement>) -> TaskSpec {
        let now = if self.poll.in_run() {
            self.turn.now()
        } else {
            self.turn.clock().now()
        };
        TaskSpec {
            shared: self.shared.clone(),
            queue: index,
            label,
            now,
            remote: false,
            placement: placement.unwrap_or_else(|| self.inherited(index)),
            propagate_panics: self.propagate_panics,
            movable: self.queues[index as usize].sheddable,
        }
    }

    /// Spawns a (possibly `!Send`) task onto queue `index` from the
    /// executor's thread.
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
        let (runnable, handle) = self.local_spec(index, label, placement).build_local(future);
        self.admit_new(runnable);
        handle
    }

    /// Spawns a `Send` task onto queue `index` from the executor's thread:
    /// as [`spawn_local`](Self::spawn_local), but the task may run on, and
    /// move to, another thread (a pool's stealing).
    pub(crate) fn spawn_send<F>(
        &self,
        index: u32,
        future: F,
        label: TaskLabel,
        placement: Option<Placement>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (runnable, handle) = self.local_spec(index, label, placement).build_send(future);
        self.admit_new(runnable);
        handle
    }

    /// A task spawned on this thread enters its queue.
    #[inline]
    fn admit_new(&self, runnable: Runnable<Header>) {
        if self.closed.get() || (self.closing.get() && !self.poll.in_task()) {
            // The executor is shutting down, or closed and this spawn does
            // not come from one of its tasks: the future is dropped
            // unpolled and the handle resolves to `Cancelled`.
            let _ = task::drop_task(runnable);
            return;
        }
        let index = runnable.metadata().queue;
        self.admit(runnable.metadata());
        self.enqueue(runnable);
        self.note_fresh(index);
    }

    /// The group a task spawned onto queue `index` inherits: that of the
    /// task being polled, if it belongs to the same queue. Inheriting never
    /// changes the group's weight.
    pub(crate) fn inherited(&self, index: u32) -> Placement {
        if !self.queues[index as usize].may_track.get() {
            // No task of this queue has a group.
            return Placement::default();
        }
        let group = match self.poll.group() {
            Some(group) if self.current_queue_of_task() == Some(index) => Some((group, None)),
            _ => None,
        };
        Placement { group, hint: 0 }
    }

    /// Counts a task that enters the executor (and its group).
    fn admit(&self, header: &Header) {
        self.registry.admit();
        let queue = &self.queues[header.queue as usize];
        bump(&queue.counters.spawned);
        if let Some(group) = header.group() {
            queue.may_track.set(true);
            queue.groups.borrow_mut().join(group, header.group_weight());
        }
    }

    /// A task of this executor woken on this thread while the executor runs.
    #[inline]
    pub(crate) fn enqueue_woken(&self, runnable: Runnable<Header>) {
        runnable
            .metadata()
            .woken_at
            .store(self.turn.now(), Ordering::Relaxed);
        self.enqueue(runnable);
    }

    /// A task of this executor woken on its thread while it is not the
    /// current executor (between two polls of `run_until`, typically by the
    /// host's IO driver): it goes straight into its queue, and the host is
    /// woken if the executor waits for it ([`LOCAL`]). Given back, for the
    /// injector, when the executor is closed or the queue is busy (a wake
    /// from inside its own scheduler).
    pub(crate) fn enqueue_resting(
        &self,
        runnable: Runnable<Header>,
    ) -> Result<(), Runnable<Header>> {
        let queue = &self.queues[runnable.metadata().queue as usize];
        if self.closed.get() || queue.tasks.try_borrow_mut().is_err() {
            return Err(runnable);
        }
        runnable
            .metadata()
            .woken_at
            .store(self.turn.clock().now(), Ordering::Relaxed);
        self.enqueue(runnable);
        self.shared.notify(LOCAL);
        Ok(())
    }

    /// Whether any queue has runnable tasks.
    pub(crate) fn has_runnable(&self) -> bool {
        self.turn.has_active()
    }

    /// Puts a runnable task of this executor into its queue. When the
    /// queue is busy (a task woken or spawned from inside that queue's own
    /// scheduler), the task goes through the injector instead and reaches
    /// its queue at the loop's next poll boundary.
    #[inline]
    fn enqueue(&self, runnable: Runnable<Header>) {
        let index = runnable.metadata().queue as usize;
        let queue = &self.queues[index];
        let Ok(mut tasks) = queue.tasks.try_borrow_mut() else {
            self.enqueue_later(runnable);
            return;
        };
        let was_empty = tasks.push(runnable, |header| {
            header.group().map_or(1, |group| queue.group_weight(group))
        });
        drop(tasks);
        if was_empty && self.turn.activate(index) {
            bump(&queue.counters.preemptions);
        }
    }

    /// The queue is busy: through the injector (cancelled at once if the
    /// executor is closed and the task may be dropped here).
    #[cold]
    #[inline(never)]
    fn enqueue_later(&self, runnable: Runnable<Header>) {
        if let Err(runnable) = self.shared.inject(runnable) {
            task::drop_orphan(runnable);
        }
    }

    /// Moves injected tasks into the local queues and delivers abort
    /// requests and dropped tasks.
    fn drain_injected(&self) {
        let mut batch = self.injected.take();
        self.shared.take_injected(&mut batch);
        for runnable in batch.tasks.drain(..) {
            let header = runnable.metadata();
            let fresh = match header.arrival.swap(task::ARRIVED, Ordering::Relaxed) {
                task::ARRIVED => None,
                // Spawned through a `Spawner`, arriving for the first time.
                task::SPAWNED_REMOTELY => {
                    self.admit(header);
                    Some(header.queue)
                }
                // Shed by another executor: alive here now, spawned there.
                _ => {
                    self.registry.admit();
                    Some(header.queue)
                }
            };
            self.enqueue(runnable);
            if let Some(index) = fresh {
                self.note_fresh(index);
            }
        }
        for id in batch.aborts.drain(..) {
            self.wake_for_abort(id);
        }
        for runnable in batch.dropped.drain(..) {
            self.cancel_dropped(runnable);
        }
        self.injected.replace(batch);
    }

    /// Wakes an aborted task so that the loop polls it (and so sees the
    /// abort). A task that is neither parked nor being polled is queued (the
    /// loop sees the abort when it gets to it) or already finished.
    pub(crate) fn wake_for_abort(&self, id: TaskId) {
        match self.registry.waker(id) {
            Some(waker) => waker.wake(),
            // Aborted during its own poll, before it could park: the loop
            // wakes it if that poll parks it.
            None => {
                self.poll.abort_if_current(id);
            }
        }
    }

    /// A scheduler dropped a task it held: it is cancelled (its future
    /// dropped, its handle resolving to `Cancelled`, or to the panic of the
    /// future's `Drop`) and counted as such in its own queue.
    fn cancel_dropped(&self, runnable: Runnable<Header>) {
        let header = runnable.metadata();
        let (id, group) = (header.id, header.group());
        let queue = &self.queues[header.queue as usize];
        let (outcome, parked) = task::drop_task(runnable);
        self.registry.retire(id, parked);
        match outcome {
            Outcome::Panicked => bump(&queue.counters.panicked),
            _ => bump(&queue.counters.cancelled),
        }
        if let Some(group) = group
            && queue.groups.borrow_mut().leave(group)
            && let Ok(mut tasks) = queue.tasks.try_borrow_mut()
        {
            tasks.group_gone(group);
        }
    }

    /// Whether the code being polled should yield now (for `yield_maybe`).
    pub(crate) fn should_yield(&self) -> bool {
        if self.shared.attention() & REMOTE != 0 {
            // Remote wakes count as soon as they are delivered.
            self.drain_injected();
        }
        self.turn.should_yield(self.poll.in_task())
    }

    pub(crate) fn note_host_yield(&self) {
        bump(&self.counters.host_yields);
    }

    pub(crate) fn note_idle_wait(&self) {
        bump(&self.counters.idle_waits);
    }

    /// A `run_until` poll is handing control back to its host: records how
    /// long it held the host.
    pub(crate) fn note_host_hold(&self) {
        if let Some(held) = self.turn.host_held() {
            self.counters.host_holds.record(held);
        }
    }

    /// Gives memory back after a burst: every part whose capacity is far
    /// above what it holds shrinks. A few comparisons when nothing is to be
    /// done; called when a run hands control back to its host (idle, host
    /// yield, done), never per poll.
    pub(crate) fn trim(&self) {
        self.registry.trim();
        for queue in self.queues.iter() {
            queue.trim();
        }
        // The injector's buffers and ours swap at every drain: after a
        // burst of remote traffic both are oversized, and ours says so
        // without taking the injector's lock.
        if let Ok(mut injected) = self.injected.try_borrow_mut()
            && injected.oversized()
        {
            injected.trim();
            self.shared.trim();
        }
    }

    // ----- stats -----------------------------------------------------------

    pub(crate) fn queue_stats<K>(&self, index: usize, key: K) -> QueueStats<K> {
        let queue = &self.queues[index];
        let counters = &queue.counters;
        let clock = self.turn.clock();
        let busy = counters.busy.get() + self.turn.used_by(index);
        let lag_ticks = self.turn.lag(index);
        let lag_nanos = clock.to_duration(lag_ticks.unsigned_abs()).as_nanos() as i64;
        let tasks = queue.tasks.try_borrow().ok();
        QueueStats {
            key,
            weight: queue.weight.get(),
            polls: counters.polls.get(),
            busy: clock.to_duration(busy),
            spawned: counters.spawned.get(),
            completed: counters.completed.get(),
            cancelled: counters.cancelled.get(),
            panicked: counters.panicked.get(),
            runnable: tasks.as_ref().map_or(0, |tasks| tasks.len()),
            slices: counters.slices.get(),
            preemptions: counters.preemptions.get(),
            lag_nanos: if lag_ticks < 0 { -lag_nanos } else { lag_nanos },
            queue_delay: counters.queue_delay.snapshot(clock),
            stalls: counters.stalls.get(),
            longest_stall: clock.to_duration(counters.longest_stall.get()),
            scheduler: tasks.as_ref().map_or("", |tasks| tasks.name()),
            groups: queue.groups.borrow().snapshot(clock),
        }
    }

    pub(crate) fn live_tasks(&self) -> usize {
        self.registry.live()
    }

    pub(crate) fn runnable_tasks(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.tasks.try_borrow().map_or(0, |tasks| tasks.len()))
            .sum()
    }

    pub(crate) fn counters(&self) -> &ExecutorCounters {
        &self.counters
    }

    // ----- shutdown --------------------------------------------------------

    /// Drops every task's future (the executor is being dropped), completing
    /// each task as `Cancelled`. Runs on the executor thread, outside any
    /// run of this executor.
    ///
    /// A wake from another thread can race the shutdown: it marks a parked
    /// task scheduled before the shutdown's own wake, and hands its
    /// `Runnable` over only after the drain below has finished. A `Send`
    /// task is then dropped by the waking thread ([`Shared::inject`] refuses
    /// it once closed). A `!Send` task cannot be dropped there; in that one
    /// race its future is never dropped and its handle never resolves. To
    /// rule it out, stop the other threads' wakes before dropping the
    /// executor, or spawn such tasks through a [`Spawner`](crate::Spawner).
    pub(crate) fn shutdown(&self) {
        self.closed.set(true);
        if let Some(watch) = &self.watch {
            watch.stop();
        }
        self.wake_close_waiters();
        // Wake every parked task: each one's `Runnable` then lands in the
        // injector (this executor is not running, so wakes are injected),
        // where the loop below drops it and counts it as cancelled. Before
        // the close: a closed injector refuses `Send` tasks, which their
        // waker would then drop uncounted.
        for (_, waker) in self.registry.take_all() {
            waker.wake();
        }
        self.shared.close();
        loop {
            let mut dropped_any = false;
            for queue in self.queues.iter() {
                loop {
                    let next = queue.tasks.borrow_mut().pop();
                    let Some(runnable) = next else { break };
                    dropped_any = true;
                    self.drop_at_shutdown(runnable);
                }
            }
            let mut batch = Injected::default();
            self.shared.take_injected(&mut batch);
            for runnable in batch.tasks.into_iter().chain(batch.dropped) {
                dropped_any = true;
                self.drop_at_shutdown(runnable);
            }
            if !dropped_any {
                break;
            }
        }
        self.trim();
    }

    /// Drops a task's future at shutdown; a task of another executor that
    /// sat in one of our queues (a shared scheduler) goes back to it.
    fn drop_at_shutdown(&self, runnable: Runnable<Header>) {
        if !runnable.metadata().belongs_to(&self.shared) {
            self.hand_back_foreign(runnable);
            return;
        }
        let queue = &self.queues[runnable.metadata().queue as usize];
        match task::drop_task(runnable).0 {
            Outcome::Panicked => bump(&queue.counters.panicked),
            _ => bump(&queue.counters.cancelled),
        }
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("queues", &self.queues.len())
            .field("live_tasks", &self.registry.live())
            .field("parked_tasks", &self.registry.len())
            .field("running", &self.turn.running())
            .field("in_run", &self.poll.in_run())
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
    let clock = Clock::get();
    let spec = TaskSpec {
        shared: Arc::new(Shared::new(clock)),
        queue: index,
        label,
        now: 0,
        remote: false,
        placement: Placement::default(),
        propagate_panics: false,
        movable: false,
    };
    let (runnable, handle) = spec.build_local(future);
    let _ = task::drop_task(runnable);
    handle
}
