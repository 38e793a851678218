//! Choosing the next task inside one queue.
//!
//! Between queues, the executor shares CPU time by weight (EEVDF). Inside a
//! queue, a [`TaskScheduler`] decides which runnable task runs next. The
//! default is FIFO; [`ExecutorBuilder::with_queue_scheduler`] picks another
//! one per queue:
//!
//! - [`Fifo`]: runnable tasks in the order they became runnable (the
//!   default, on a fast path that costs nothing extra);
//! - [`Lifo`]: the newest runnable task first, with a bound so that the
//!   oldest still runs;
//! - [`LeastAttainedService`]: the task (or group) that has used the least
//!   CPU time first, so that short requests overtake long ones, with a
//!   guard against starving the long ones;
//! - [`WeightedGroups`]: CPU time shared between task groups in proportion
//!   to their weights, whatever the number of tasks per group; FIFO inside a
//!   group.
//!
//! Or implement [`TaskScheduler`] yourself: it owns the queue's runnable
//! tasks ([`ReadyTask`]s), hands the executor the next one, and hears how
//! long each poll took.
//!
//! # Groups
//!
//! [`QueueHandle::group`] returns a handle that spawns tasks into a group of
//! that queue (a tenant, a stream, a request and its children). A task
//! spawned onto its parent's own queue (`spawn!(future)`,
//! `QueueHandle::spawn`) joins its parent's group. The queue keeps each
//! group's weight, live task count and CPU time while the group has tasks,
//! and frees that state when its last task ends (see
//! [`QueueStats::groups`]).
//!
//! [`ExecutorBuilder::with_queue_scheduler`]: crate::ExecutorBuilder::with_queue_scheduler
//! [`QueueHandle::group`]: crate::QueueHandle::group
//! [`QueueStats::groups`]: crate::QueueStats::groups

mod groups;
mod las;
mod lifo;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use async_task::Runnable;

use crate::clock::Clock;
use crate::task::{Header, TaskId, TaskLabel};

/// Re-exported here, where schedulers meet it; defined beside
/// [`TaskId`](crate::TaskId).
pub use crate::task::GroupId;

pub use groups::WeightedGroups;
pub use las::{Attribution, LeastAttainedService};
pub use lifo::Lifo;

/// Orders the runnable tasks of one queue.
///
/// The scheduler owns the queue's runnable tasks: the executor
/// [`push`](TaskScheduler::push)es a task when it becomes runnable (spawned,
/// or woken), and [`pop`](TaskScheduler::pop)s the next one whenever the
/// queue gets to run a task. After every poll of a task from this queue the
/// executor reports how long the poll took and whether the task finished
/// ([`polled`](TaskScheduler::polled)), and when a group's last task ends it
/// says so ([`group_gone`](TaskScheduler::group_gone)).
///
/// Contract:
///
/// - Return every task you are given, exactly once. A [`ReadyTask`] that is
///   dropped instead is cancelled: its future is dropped and its
///   `JoinHandle` resolves to `Cancelled`.
/// - [`len`](TaskScheduler::len) is the number of tasks held; `pop` returns
///   `Some` whenever `len() > 0`.
/// - Do not call into the executor (spawn, abort, read its stats, run it)
///   from these methods: they run while the queue is being updated. Waking
///   a task is fine: a wake of a task of this same queue reaches it through
///   the executor's injector, at the next poll boundary.
/// - Hand back only tasks you were given by this queue. The executor checks
///   where each popped task belongs and never lets a wrong answer corrupt
///   its books: a task of another queue of the same executor (one policy
///   object shared by two queues) is run and counted as a task of its own
///   queue; a task of another executor is re-routed to that executor, as if
///   it had been woken there (or cancelled, if that executor is gone).
///
/// # Examples
///
/// Earliest deadline first, by a deadline given as the task's hint (see
/// `examples/edf_scheduler.rs` for a complete program):
///
/// ```
/// use std::collections::BTreeMap;
/// use clockworker::sched::{ReadyTask, TaskScheduler};
///
/// #[derive(Default)]
/// struct EarliestDeadlineFirst {
///     /// (deadline, arrival order) -> task
///     ready: BTreeMap<(u64, u64), ReadyTask>,
///     arrivals: u64,
/// }
///
/// impl TaskScheduler for EarliestDeadlineFirst {
///     fn push(&mut self, task: ReadyTask) {
///         self.arrivals += 1;
///         self.ready.insert((task.hint(), self.arrivals), task);
///     }
///     fn pop(&mut self) -> Option<ReadyTask> {
///         self.ready.pop_first().map(|(_, task)| task)
///     }
///     fn len(&self) -> usize {
///         self.ready.len()
///     }
/// }
///
/// let executor = clockworker::ExecutorBuilder::new()
///     .with_queue_scheduler("requests", 1, EarliestDeadlineFirst::default())
///     .build()
///     .unwrap();
/// let requests = executor.queue("requests").unwrap();
/// let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// for deadline in [30, 10, 20] {
///     let order = order.clone();
///     requests.spawn_with_hint(deadline, async move { order.borrow_mut().push(deadline) });
/// }
/// executor.block_on(clockworker::yield_now());
/// assert_eq!(*order.borrow(), [10, 20, 30]);
/// ```
pub trait TaskScheduler: 'static {
    /// A task became runnable.
    fn push(&mut self, task: ReadyTask);

    /// The task to poll next, if any.
    fn pop(&mut self) -> Option<ReadyTask>;

    /// How many runnable tasks the scheduler holds.
    fn len(&self) -> usize;

    /// Whether the scheduler holds no runnable task.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A task of this queue was polled (or, if aborted, dropped): for how
    /// long, and whether it finished (completed, panicked or was
    /// cancelled). After `finished`, the task is gone.
    ///
    /// Every task handed out by [`pop`](TaskScheduler::pop) is polled at
    /// once, and `polled` is called for it before the next `pop`; a task
    /// that wakes itself while being polled is pushed back before its
    /// `polled` call. (Only shutdown, which drops the scheduler, breaks the
    /// pairing.)
    fn polled(&mut self, outcome: &PollOutcome) {
        let _ = outcome;
    }

    /// The last task of a group ended: its state can be dropped.
    fn group_gone(&mut self, group: GroupId) {
        let _ = group;
    }

    /// The executor is handing control back to its host: a good moment to
    /// give back memory kept from a burst (collections far larger than what
    /// they hold). Not called per poll. The default does nothing; the
    /// built-in schedulers shrink their collections.
    fn shrink(&mut self) {}

    /// The scheduler's name, shown in [`QueueStats::scheduler`](crate::QueueStats::scheduler)
    /// and `Debug` output. Defaults to the type's path; the built-in
    /// schedulers give their bare names (`"Fifo"`, `"Lifo"`,
    /// `"LeastAttainedService"`, `"WeightedGroups"`).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// What a poll did, as reported to [`TaskScheduler::polled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollOutcome {
    /// The task.
    pub task: TaskId,
    /// Its group, if any.
    pub group: Option<GroupId>,
    /// Its hint.
    pub hint: u64,
    /// The CPU time of this poll.
    pub cpu: Duration,
    /// The task finished: it completed, panicked or was cancelled.
    pub finished: bool,
}

/// A runnable task, held by a [`TaskScheduler`] until it hands it back to
/// be polled.
pub struct ReadyTask {
    /// `None` only once handed back to the executor.
    runnable: Option<Runnable<Header>>,
    /// The weight of the task's group when it became runnable.
    group_weight: u32,
}

impl ReadyTask {
    pub(crate) fn new(runnable: Runnable<Header>, group_weight: u32) -> ReadyTask {
        ReadyTask {
            runnable: Some(runnable),
            group_weight,
        }
    }

    pub(crate) fn into_runnable(mut self) -> Option<Runnable<Header>> {
        self.runnable.take()
    }

    fn header(&self) -> &Header {
        match &self.runnable {
            Some(runnable) => runnable.metadata(),
            None => unreachable!("a ReadyTask is emptied only when consumed"),
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// The task's group in its queue, if any.
    pub fn group(&self) -> Option<GroupId> {
        self.header().group()
    }

    /// The weight of the task's group when the task became runnable (1 for
    /// a task without a group). A group keeps the weight it was last given
    /// explicitly ([`GroupHandle::with_weight`](crate::GroupHandle::with_weight),
    /// [`GroupSpawner::with_weight`](crate::GroupSpawner::with_weight)).
    pub fn group_weight(&self) -> u32 {
        self.group_weight
    }

    /// The task's hint: a number given at spawn (`spawn_with_hint`) for the
    /// queue's scheduler to read, such as a deadline or a priority; 0 by
    /// default.
    pub fn hint(&self) -> u64 {
        self.header().hint()
    }

    /// Where the task was spawned.
    pub fn label(&self) -> TaskLabel {
        self.header().label
    }

    /// How long the task has been runnable.
    pub fn waiting_for(&self) -> Duration {
        let clock = Clock::global();
        let since = self
            .header()
            .woken_at
            .load(std::sync::atomic::Ordering::Relaxed);
        clock.to_duration(clock.now().saturating_sub(since))
    }

    /// When the task became runnable.
    pub fn runnable_since(&self) -> Instant {
        let waited = self.waiting_for();
        let now = Instant::now();
        now.checked_sub(waited).unwrap_or(now)
    }
}

impl Drop for ReadyTask {
    fn drop(&mut self) {
        if let Some(runnable) = self.runnable.take() {
            // A scheduler let go of a task: its executor cancels it rather
            // than lose it.
            let shared = runnable.metadata().home().into_owned();
            if let Err(runnable) = shared.hand_back_dropped(runnable) {
                // Its executor is gone; a `Send` task is dropped here.
                crate::task::drop_orphan(runnable);
            }
        }
    }
}

impl fmt::Debug for ReadyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.runnable {
            Some(_) => f
                .debug_struct("ReadyTask")
                .field("id", &self.id())
                .field("group", &self.group())
                .field("hint", &self.hint())
                .field("label", &self.label())
                .finish(),
            None => f.write_str("ReadyTask(<taken>)"),
        }
    }
}

/// Shrinks a deque that is far larger than what it holds.
pub(crate) fn shrink_deque<T>(deque: &mut VecDeque<T>) {
    if let Some(room) = crate::core::should_shrink(deque.len(), deque.capacity()) {
        deque.shrink_to(room);
    }
}

/// First in, first out: the default.
///
/// Passing `Fifo` to
/// [`ExecutorBuilder::with_queue_scheduler`](crate::ExecutorBuilder::with_queue_scheduler)
/// is the same as [`with_queue`](crate::ExecutorBuilder::with_queue): the
/// executor's built-in FIFO path, which costs nothing over a FIFO-only
/// executor. Used as a [`TaskScheduler`] on its own (for instance inside a
/// scheduler of your own), it is a plain FIFO.
#[derive(Debug, Default)]
pub struct Fifo {
    ready: VecDeque<ReadyTask>,
}

impl Fifo {
    /// An empty FIFO.
    pub fn new() -> Fifo {
        Fifo::default()
    }
}

impl TaskScheduler for Fifo {
    fn name(&self) -> &'static str {
        "Fifo"
    }

    fn shrink(&mut self) {
        shrink_deque(&mut self.ready);
    }

    fn push(&mut self, task: ReadyTask) {
        self.ready.push_back(task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop_front()
    }

    fn len(&self) -> usize {
        self.ready.len()
    }
}
