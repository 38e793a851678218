//! What a task is: its identifiers ([`TaskId`], [`GroupId`], [`TaskLabel`]),
//! the metadata the executor keeps with it ([`Header`]), the one place where
//! tasks are built ([`TaskSpec`]), and the future the executor actually
//! polls ([`TaskFuture`]).
//!
//! Tasks are `async-task` allocations. Each carries a [`Header`] as metadata
//! (its executor, id, queue, spawn site and a few atomics the executor reads
//! before every poll) and wraps the user's future in a [`TaskFuture`] that
//! obeys aborts, turns panics into [`JoinError::Panic`] and tells the run
//! loop what happened.
//!
//! # The poll protocol
//!
//! The run loop and a task future talk through one thread-local cell
//! ([`Signal`]): the loop writes a request (poll, abort inside a run, drop
//! outside any run) and runs the task; the task future reads the request and
//! overwrites it with its answer (pending, for the first time or not;
//! finished, and how), which the loop reads back. It is a thread-local
//! because nothing else can carry it: async-task gives the future no
//! reference to its header, and `Runnable::run` consumes the task (which
//! may be freed before it returns), so neither side can reach the other
//! through the task. The cell is `const`-initialised and has no destructor,
//! so each access is a plain thread-relative load or store. The task future
//! never calls into the executor: the loop does all the bookkeeping
//! (registering a parked task's waker, counting, propagating a panic) from
//! the answer.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};

use async_task::{Builder, Runnable, WithInfo};

use crate::error::{JoinError, TaskPanic};
use crate::join::JoinHandle;
use crate::shared::Shared;
use crate::sync::{Mutex, MutexGuard};
use crate::trace::{self, TaskSpan};

/// An opaque, process-unique identifier of a task.
///
/// Returned by [`JoinHandle::id`](crate::JoinHandle::id) and carried by
/// [`TaskPanic`]. Ids are never reused within a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    /// The task with this number (for ids read back from atomics); zero,
    /// which no task has, reads as 1.
    pub(crate) fn from_u64(id: u64) -> TaskId {
        TaskId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    /// A fresh id. Each thread takes ids from a block of its own (one
    /// shared atomic add per 65,536 spawns instead of one per spawn), so
    /// ids are unique in the process and increase on each thread, but are
    /// not ordered across threads.
    #[inline]
    pub(crate) fn next() -> TaskId {
        const BLOCK: u64 = 1 << 16;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            /// The next id of this thread's block, and the block's end.
            static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        let fresh_block = || NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
        let id = BLOCK_LEFT
            .try_with(|left| {
                let (next, end) = left.get();
                if next < end {
                    left.set((next + 1, end));
                    return next;
                }
                let start = fresh_block();
                left.set((start + 1, start + BLOCK));
                start
            })
            // During the thread's teardown: one id of a block of its own.
            .unwrap_or_else(|_| fresh_block());
        TaskId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    /// The id as a number.
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let (a, b) = (queue.spawn(async {}), queue.spawn(async {}));
    /// assert_ne!(a.id(), b.id());
    /// assert!(b.id().as_u64() > a.id().as_u64());
    /// assert_eq!(a.id().to_string(), a.id().as_u64().to_string());
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A task group's id within its queue, chosen by the user (a tenant id, a
/// stream id...).
///
/// Groups are how a queue's scheduler tells tenants apart: see
/// [`QueueHandle::group`](crate::QueueHandle::group) and
/// [`Spawner::group`](crate::Spawner::group).
///
/// ```
/// use clockworker::GroupId;
///
/// let tenant = GroupId::from(7);
/// assert_eq!(tenant, GroupId::new(7));
/// assert_eq!(tenant.as_u64(), 7);
/// assert_eq!(tenant.to_string(), "7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u64);

impl GroupId {
    /// The group with this number.
    pub const fn new(id: u64) -> GroupId {
        GroupId(id)
    }

    /// The group's number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for GroupId {
    fn from(id: u64) -> GroupId {
        GroupId(id)
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({})", self.0)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a task was spawned, shown as `file:line`: the task's label.
///
/// Recorded for every spawn (the spawn functions are `#[track_caller]`, so
/// `spawn!` and direct calls alike record the caller). Returned by
/// [`JoinHandle::label`](crate::JoinHandle::label), shown by the handle's
/// `Debug` and in the message of a caught panic.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskLabel(&'static Location<'static>);

impl TaskLabel {
    /// The label of the caller of the function that calls this
    /// (`#[track_caller]` all the way up).
    #[track_caller]
    pub(crate) fn caller() -> TaskLabel {
        TaskLabel(Location::caller())
    }

    /// The source file of the spawn site.
    pub fn file(&self) -> &'static str {
        self.0.file()
    }

    /// The line of the spawn site.
    pub fn line(&self) -> u32 {
        self.0.line()
    }

    /// The column of the spawn site.
    pub fn column(&self) -> u32 {
        self.0.column()
    }

    /// The address of the site's `Location`: the same for every task
    /// spawned there (the stall watchdog's key for it).
    pub(crate) fn address(&self) -> usize {
        std::ptr::from_ref(self.0) as usize
    }

    /// The spawn site; displays as `file:line:column`.
    #[cfg(feature = "tracing")]
    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.0
    }
}

impl fmt::Display for TaskLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.file(), self.0.line())
    }
}

impl fmt::Debug for TaskLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskLabel({self})")
    }
}

/// Per-task metadata, readable from the `Runnable` (executor side) and the
/// `Task` (join handle side) without touching the future.
pub(crate) struct Header {
    /// The executor the task belongs to. Kept here rather than in the
    /// schedule closure so that the closure is zero-sized: async-task then
    /// skips a waker clone and drop around every reschedule.
    home: Home,
    pub(crate) id: TaskId,
    /// Index of the queue the task belongs to.
    pub(crate) queue: u32,
    /// Where the task was spawned.
    pub(crate) label: TaskLabel,
    /// Clock ticks when the task last became runnable.
    pub(crate) woken_at: AtomicU64,
    /// Set by `JoinHandle::abort`; the run loop drops the task instead of
    /// polling it.
    pub(crate) aborted: AtomicBool,
    /// How the task last arrived through the injector, until the executor
    /// takes note of it: [`ARRIVED`] (seen), [`SPAWNED_REMOTELY`] (a spawn
    /// through a `Spawner`: the executor counts it when it first drains it)
    /// or [`MOVED_IN`] (shed by another executor: it joins this one's books
    /// without counting as a spawn).
    pub(crate) arrival: AtomicU8,
    /// The future may be `!Send`: the task must be run and dropped on the
    /// thread that spawned it.
    pub(crate) local: bool,
    /// The task's group and hint, boxed and present only when either is
    /// set: every task pays 8 bytes for them, not 24.
    placement: Option<Box<Placement>>,
}

/// [`Header::arrival`]: the executor has taken note of the task.
pub(crate) const ARRIVED: u8 = 0;
/// [`Header::arrival`]: spawned from another thread, not yet counted.
pub(crate) const SPAWNED_REMOTELY: u8 = 1;
/// [`Header::arrival`]: handed over by another executor (see `Core::shed`).
pub(crate) const MOVED_IN: u8 = 2;

/// The executor a task belongs to.
///
/// Almost every task is [`Fixed`](Home::Fixed) to the executor it was
/// spawned on. A `Send` task spawned onto a *sheddable* queue (a pool's
/// stealing queue) is [`Movable`](Home::Movable): while it is queued and
/// has never run, its executor may hand it to another one built with the
/// same queue table (`Core::shed`), which rewrites its home before the task
/// reaches the new executor. No wake can read the home while it is being
/// rewritten: the task is queued (scheduled), so no waker schedules it, and
/// the new executor only sees it through its injector's lock, taken after
/// the rewrite. The lock is only there because the header is shared.
///
/// A movable home also keeps the address of its executor's shared state,
/// so that the check every wake makes ([`Header::belongs_to`]) is one
/// atomic load rather than a lock. The address identifies the executor:
/// the home holds an `Arc` of that state, which therefore stays at that
/// address, and the executor it is compared with is alive too.
pub(crate) enum Home {
    Fixed(Arc<Shared>),
    /// Boxed: every task's header has room for its home, and the fixed one
    /// is one pointer (16 bytes with the tag, not 32). A smaller task is a
    /// cheaper allocation: at 120 bytes or less it fits glibc's fast bins.
    Movable(Box<MovableHome>),
}

/// The home of a task that may move (see [`Home`]).
pub(crate) struct MovableHome {
    address: AtomicUsize,
    shared: Mutex<Arc<Shared>>,
}

impl Home {
    fn movable(shared: Arc<Shared>) -> Home {
        Home::Movable(Box::new(MovableHome {
            address: AtomicUsize::new(address_of(&shared)),
            shared: Mutex::new(shared),
        }))
    }
}

/// The address of an executor's shared state, as a number.
fn address_of(shared: &Arc<Shared>) -> usize {
    Arc::as_ptr(shared) as usize
}

/// Where a new task goes inside its queue: its group (with the weight the
/// spawner gave the group explicitly, if any) and its scheduler hint.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Placement {
    pub(crate) group: Option<(GroupId, Option<u32>)>,
    pub(crate) hint: u64,
}

impl Header {
    /// The task's group in its queue, if any.
    #[inline]
    pub(crate) fn group(&self) -> Option<GroupId> {
        self.placement.as_ref()?.group.map(|(group, _)| group)
    }

    /// The weight the task's spawner gave its group, if it gave one.
    #[inline]
    pub(crate) fn group_weight(&self) -> Option<u32> {
        self.placement.as_ref()?.group?.1
    }

    /// The task's scheduler hint (0 by default).
    #[inline]
    pub(crate) fn hint(&self) -> u64 {
        self.placement
            .as_ref()
            .map_or(0, |placement| placement.hint)
    }

    /// The executor that owns the task is `shared`.
    #[inline]
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        match &self.home {
            Home::Fixed(home) => Arc::ptr_eq(home, shared),
            Home::Movable(home) => home.address.load(Ordering::Acquire) == address_of(shared),
        }
    }

    /// The executor that owns the task (borrowed, unless the task may move).
    #[inline]
    pub(crate) fn home(&self) -> Cow<'_, Arc<Shared>> {
        match &self.home {
            Home::Fixed(home) => Cow::Borrowed(home),
            Home::Movable(home) => Cow::Owned(lock(&home.shared).clone()),
        }
    }

    /// The task may be handed to another executor (see [`Home`]).
    #[inline]
    pub(crate) fn movable(&self) -> bool {
        matches!(self.home, Home::Movable(_))
    }

    /// Makes `shared` the task's executor; only for a movable task that
    /// its current executor holds, queued (see [`Home`]).
    pub(crate) fn move_to(&self, shared: Arc<Shared>) {
        if let Home::Movable(home) = &self.home {
            let mut owner = lock(&home.shared);
            home.address.store(address_of(&shared), Ordering::Release);
            *owner = shared;
        }
    }
}

/// No user code runs under a home's lock: poisoning cannot leave it torn.
fn lock(home: &Mutex<Arc<Shared>>) -> MutexGuard<'_, Arc<Shared>> {
    home.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("id", &self.id)
            .field("queue", &self.queue)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Everything a new task needs besides its future. Every spawn path (a
/// queue handle, a group handle, a spawner, `spawn!`, a spawn onto a dropped
/// executor) builds its tasks through this one type.
pub(crate) struct TaskSpec {
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: u32,
    pub(crate) label: TaskLabel,
    /// Clock ticks at which the task counts as runnable.
    pub(crate) now: u64,
    /// Spawned from another thread: the executor counts it when it first
    /// sees it.
    pub(crate) remote: bool,
    pub(crate) placement: Placement,
    /// Task panics resume out of `run_until` (the executor's panic mode).
    pub(crate) propagate_panics: bool,
    /// The queue is sheddable and the task may move (see [`Home`]); only
    /// honoured for `Send` tasks.
    pub(crate) movable: bool,
}

impl TaskSpec {
    /// The new task's header, whether its panics propagate, and its span.
    #[inline]
    fn header(self, local: bool) -> (Header, bool, TaskSpan) {
        let id = TaskId::next();
        #[cfg(feature = "tracing")]
        let span = TaskSpan::new(
            self.shared.queue_name(self.queue),
            self.placement.group.map(|(group, _)| group),
            id,
            self.label,
        );
        #[cfg(not(feature = "tracing"))]
        let span = TaskSpan::none();
        let placement = &self.placement;
        let home = if self.movable && !local {
            Home::movable(self.shared)
        } else {
            Home::Fixed(self.shared)
        };
        let header = Header {
            home,
            id,
            queue: self.queue,
            label: self.label,
            woken_at: AtomicU64::new(self.now),
            aborted: AtomicBool::new(false),
            arrival: AtomicU8::new(if self.remote {
                SPAWNED_REMOTELY
            } else {
                ARRIVED
            }),
            local,
            placement: (placement.group.is_some() || placement.hint != 0)
                .then(|| Box::new(self.placement)),
        };
        (header, self.propagate_panics, span)
    }

    /// Builds a task whose future may be `!Send`: its `Runnable` must be
    /// run (or dropped) on this thread.
    pub(crate) fn build_local<F>(self, future: F) -> (Runnable<Header>, JoinHandle<F::Output>)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (header, propagate, span) = self.header(true);
        let (runnable, task) = Builder::new().metadata(header).spawn_local(
            move |_| trace::instrument(TaskFuture::new(future, propagate), span),
            WithInfo(crate::context::schedule),
        );
        (runnable, JoinHandle::new(task))
    }

    /// Builds a task whose future is `Send`: its `Runnable` may be run on
    /// any thread.
    pub(crate) fn build_send<F>(self, future: F) -> (Runnable<Header>, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (header, propagate, span) = self.header(false);
        let (runnable, task) = Builder::new().metadata(header).spawn(
            move |_| trace::instrument(TaskFuture::new(future, propagate), span),
            WithInfo(crate::context::schedule),
        );
        (runnable, JoinHandle::new(task))
    }
}

/// A request from the run loop to the [`TaskFuture`] it is about to run, or
/// the task future's answer (see the module docs). A fieldless enum, so that
/// the loop tells the answers apart with one byte compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Request: poll the future.
    Poll,
    /// Request from inside a run: drop the future unpolled and complete as
    /// `Cancelled`. A panic from the future's `Drop` is the run's to report
    /// (resumed out of `run_until` in propagate mode).
    Abort,
    /// Request from outside any run (executor drop, a spawn onto a closed
    /// executor, a task a scheduler let go of): drop the future unpolled. A
    /// panic from its `Drop` goes to the join handle, whole, and nowhere
    /// else.
    Drop,
    /// Answer: the future is pending (and has been before).
    Pending,
    /// Answer: the future is pending for the first time; its waker is
    /// waiting in [`take_parked_waker`] for the executor's registry.
    PendingFirst,
    /// Answers: the task is finished (its future is gone), and how; the
    /// `Parked` forms: it had returned `Pending` before, so the executor
    /// holds its waker.
    Completed,
    CompletedParked,
    Panicked,
    PanickedParked,
    Cancelled,
    CancelledParked,
}

impl Signal {
    fn finished(outcome: Outcome, parked: bool) -> Signal {
        match (outcome, parked) {
            (Outcome::Completed, false) => Signal::Completed,
            (Outcome::Completed, true) => Signal::CompletedParked,
            (Outcome::Panicked, false) => Signal::Panicked,
            (Outcome::Panicked, true) => Signal::PanickedParked,
            (Outcome::Cancelled, false) => Signal::Cancelled,
            (Outcome::Cancelled, true) => Signal::CancelledParked,
        }
    }

    /// For a "finished" answer: how the task finished, and whether it had
    /// parked.
    #[inline]
    pub(crate) fn finished_as(self) -> Option<(Outcome, bool)> {
        Some(match self {
            Signal::Completed => (Outcome::Completed, false),
            Signal::CompletedParked => (Outcome::Completed, true),
            Signal::Panicked => (Outcome::Panicked, false),
            Signal::PanickedParked => (Outcome::Panicked, true),
            Signal::Cancelled => (Outcome::Cancelled, false),
            Signal::CancelledParked => (Outcome::Cancelled, true),
            _ => return None,
        })
    }
}

/// How a task finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    /// Its poll, or its future's `Drop`, panicked.
    Panicked,
    /// It was aborted (or its executor dropped) before it completed.
    Cancelled,
}

thread_local! {
    static SIGNAL: Cell<Signal> = const { Cell::new(Signal::Poll) };
    /// The waker of a task that returned `Pending` for the first time, for
    /// the executor to register. Touched once per parked task.
    static PARKED_WAKER: Cell<Option<Waker>> = const { Cell::new(None) };
    /// A panic payload to be resumed out of `run_until` (propagate mode).
    /// Written only during a poll requested by a run loop, which takes it
    /// right after that poll: a payload never outlives the poll that made
    /// it.
    static PROPAGATING: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
}

/// Tells the next task future to run what to do.
#[inline]
pub(crate) fn request(signal: Signal) {
    SIGNAL.set(signal);
}

/// What the task future that just ran answered. The request comes back
/// unchanged when no task future ran (the task had already closed).
#[inline]
pub(crate) fn answer() -> Signal {
    SIGNAL.get()
}

/// Runs `runnable` with a [`Signal::Drop`] request: its future is dropped
/// unpolled, on this thread, and its handle resolves to `Cancelled` (or to
/// the panic of the future's `Drop`, whole). A `Runnable` is never just
/// dropped, so a `JoinHandle` never meets a task that closed without
/// output. Returns how the task finished and whether it had parked (the
/// executor may hold its waker).
pub(crate) fn drop_task(runnable: Runnable<Header>) -> (Outcome, bool) {
    request(Signal::Drop);
    runnable.run();
    // Already closed: nothing ran.
    answer().finished_as().unwrap_or((Outcome::Cancelled, true))
}

/// Drops a task whose executor is gone or closing (a wake, a hand-back or a
/// re-route it refused), on this thread, outside any run. A panic is
/// swallowed: one from the future's `Drop` already reached its handle, and
/// async-task panics rather than drop a `!Send` future off its thread (the
/// task is then leaked, never dropped on the wrong thread).
pub(crate) fn drop_orphan(runnable: Runnable<Header>) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop_task(runnable)));
}

/// The waker of the task that just answered `Pending { first: true }`.
#[inline]
pub(crate) fn take_parked_waker() -> Option<Waker> {
    PARKED_WAKER.take()
}

/// The payload of the task panic the last poll left to resume, if any.
pub(crate) fn take_propagating_panic() -> Option<Box<dyn Any + Send>> {
    PROPAGATING.take()
}

pin_project_lite::pin_project! {
    /// The future the executor actually polls: the user's future, with
    /// panics caught, aborts obeyed and the outcome reported. With the
    /// `tracing` feature, it runs inside the task's span (`trace::Traced`).
    #[project = TaskFutureProj]
    pub(crate) enum TaskFuture<F> {
        Running {
            #[pin]
            inner: F,
            propagate_panic: bool,
            // It returned `Pending` before.
            parked: bool,
        },
        Done,
    }
}

impl<F> TaskFuture<F> {
    fn new(inner: F, propagate_panic: bool) -> TaskFuture<F> {
        TaskFuture::Running {
            inner,
            propagate_panic,
            parked: false,
        }
    }
}

impl<F: Future> TaskFuture<F> {
    /// Drops the user's future now, catching a panic from its `Drop`.
    fn finish(mut self: Pin<&mut Self>) -> Result<(), Box<dyn Any + Send>> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.set(TaskFuture::Done)))
    }

    /// Does what the run loop asked (see [`Signal`]); a panic is reported
    /// in `span` too (the task's span, inside which this runs).
    #[inline(always)]
    pub(crate) fn run(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        span: &TaskSpan,
    ) -> Poll<Result<F::Output, JoinError>> {
        let request = SIGNAL.get();
        let (propagate, parked) = match self.as_mut().project() {
            TaskFutureProj::Running {
                propagate_panic,
                parked,
                ..
            } => (*propagate_panic, *parked),
            // Never polled after completing.
            TaskFutureProj::Done => return Poll::Pending,
        };
        let finished = |outcome| Signal::finished(outcome, parked);
        let panicked = |payload: Box<dyn Any + Send>, propagate| {
            span.panicked(payload.as_ref());
            Poll::Ready(Err(report_panic(payload, propagate)))
        };

        if request != Signal::Poll {
            // Abort (inside a run) or drop (outside any run).
            return match self.finish() {
                Ok(()) => {
                    SIGNAL.set(finished(Outcome::Cancelled));
                    Poll::Ready(Err(JoinError::Cancelled))
                }
                Err(payload) => {
                    SIGNAL.set(finished(Outcome::Panicked));
                    panicked(payload, propagate && request == Signal::Abort)
                }
            };
        }

        let polled = match self.as_mut().project() {
            TaskFutureProj::Running { inner, .. } => {
                std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
            }
            TaskFutureProj::Done => return Poll::Pending,
        };
        match polled {
            Ok(Poll::Pending) => {
                if !parked {
                    if let TaskFutureProj::Running { parked, .. } = self.project() {
                        *parked = true;
                    }
                    PARKED_WAKER.set(Some(cx.waker().clone()));
                }
                SIGNAL.set(if parked {
                    Signal::Pending
                } else {
                    Signal::PendingFirst
                });
                Poll::Pending
            }
            Ok(Poll::Ready(value)) => match self.finish() {
                Ok(()) => {
                    SIGNAL.set(finished(Outcome::Completed));
                    Poll::Ready(Ok(value))
                }
                Err(payload) => {
                    SIGNAL.set(finished(Outcome::Panicked));
                    panicked(payload, propagate)
                }
            },
            Err(payload) => {
                // A future that panicked may panic again when dropped; that
                // second panic is dropped.
                let _ = self.finish();
                SIGNAL.set(finished(Outcome::Panicked));
                panicked(payload, propagate)
            }
        }
    }
}

/// The error a join handle gets for a task panic: in propagate mode the
/// payload stays for the run loop to resume and the handle gets the message.
fn report_panic(payload: Box<dyn Any + Send>, propagate: bool) -> JoinError {
    let panic = if propagate {
        let message = TaskPanic::message_of(payload.as_ref());
        PROPAGATING.set(Some(payload));
        TaskPanic::from_message(message)
    } else {
        TaskPanic::new(payload)
    };
    JoinError::Panic(panic)
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.run(cx, &TaskSpan::none())
    }
}
