//! What the executor stores with every task.
//!
//! Tasks are `async-task` allocations. Each carries a [`Header`] as metadata
//! (its id, queue, spawn site and a few atomics the executor reads before
//! every poll) and wraps the user's future in a [`TaskFuture`] that turns
//! panics into [`JoinError::Panic`] and reports completion to the run loop.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::join::{JoinError, TaskPanic};
use crate::sched::GroupId;
use crate::shared::Shared;

/// An opaque, process-unique identifier of a task.
///
/// Returned by [`JoinHandle::id`](crate::JoinHandle::id) and carried by
/// [`TaskPanic`]. Ids are never reused within a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    pub(crate) fn next() -> TaskId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        TaskId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    /// The id as a number.
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
    pub(crate) shared: Arc<Shared>,
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
    /// A task spawned through a `Spawner` that the executor has not seen
    /// yet (it counts it when it first drains it from the injector).
    pub(crate) fresh: AtomicBool,
    /// The task's group and hint, boxed and present only when either is
    /// set: every task pays 8 bytes for them, not 24.
    placement: Option<Box<Placement>>,
}

/// Where a new task goes inside its queue: its group and scheduler hint.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Placement {
    pub(crate) group: Option<(GroupId, u32)>,
    pub(crate) hint: u64,
}

impl Header {
    pub(crate) fn new(
        shared: Arc<Shared>,
        queue: u32,
        label: TaskLabel,
        now: u64,
        fresh: bool,
        placement: Placement,
    ) -> Header {
        Header {
            shared,
            id: TaskId::next(),
            queue,
            label,
            woken_at: AtomicU64::new(now),
            aborted: AtomicBool::new(false),
            fresh: AtomicBool::new(fresh),
            placement: (placement.group.is_some() || placement.hint != 0)
                .then(|| Box::new(placement)),
        }
    }
}

impl Header {
    /// The task's group in its queue, if any.
    #[inline]
    pub(crate) fn group(&self) -> Option<GroupId> {
        self.placement.as_ref()?.group.map(|(group, _)| group)
    }

    /// The weight of the task's group (1 without a group).
    #[inline]
    pub(crate) fn group_weight(&self) -> u32 {
        self.placement
            .as_ref()
            .and_then(|placement| placement.group)
            .map_or(1, |(_, weight)| weight)
    }

    /// The task's scheduler hint (0 by default).
    #[inline]
    pub(crate) fn hint(&self) -> u64 {
        self.placement
            .as_ref()
            .map_or(0, |placement| placement.hint)
    }
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

/// A message between the run loop and the [`TaskFuture`] it is about to
/// run, through a thread-local: the loop says whether to poll or abort, the
/// task future answers with what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Request: poll the future.
    Poll,
    /// Request: drop the future unpolled and complete as `Cancelled`.
    Abort,
    /// Answer: the future is pending.
    Pending,
    /// Answer: the future completed.
    Completed,
    /// Answer: the future panicked.
    Panicked,
    /// Answer: the future was dropped after an abort.
    Cancelled,
}

thread_local! {
    static SIGNAL: Cell<Signal> = const { Cell::new(Signal::Pending) };
    /// A panic payload waiting to be resumed out of `run_until` (propagate
    /// mode).
    static PROPAGATING: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
}

/// Tells the next task future to run what to do.
#[inline]
pub(crate) fn request(signal: Signal) {
    SIGNAL.set(signal);
}

/// What the task future that just ran did. `Poll` or `Abort` come back when
/// no task future ran (the task was already closed).
#[inline]
pub(crate) fn answer() -> Signal {
    SIGNAL.get()
}

/// The payload of a task panic to resume out of `run_until`, if any.
pub(crate) fn take_propagating_panic() -> Option<Box<dyn Any + Send>> {
    PROPAGATING.take()
}

/// Runs `runnable` with an abort request: its future is dropped unpolled
/// and its handle resolves to `Cancelled`. The task's output is always
/// written this way (a `Runnable` is never just dropped), so a `JoinHandle`
/// never meets a task that closed without output.
pub(crate) fn run_aborted(runnable: async_task::Runnable<Header>) {
    request(Signal::Abort);
    runnable.run();
}

pin_project_lite::pin_project! {
    /// The future the executor actually polls: the user's future, with
    /// panics caught, aborts obeyed and the outcome reported.
    ///
    /// A task registers with its executor (a clone of its waker, keyed by
    /// its id) the first time it returns `Pending`, so that a parked task
    /// can be reached at shutdown or on abort; it unregisters when it
    /// finishes. A task that completes in its first poll never registers.
    #[project = TaskFutureProj]
    pub(crate) enum TaskFuture<F> {
        Running {
            #[pin]
            inner: F,
            id: TaskId,
            propagate_panic: bool,
            registered: bool,
        },
        Done,
    }
}

impl<F> TaskFuture<F> {
    pub(crate) fn new(inner: F, id: TaskId, propagate_panic: bool) -> TaskFuture<F> {
        TaskFuture::Running {
            inner,
            id,
            propagate_panic,
            registered: false,
        }
    }
}

impl<F: Future> TaskFuture<F> {
    /// Drops the user's future now, catching a panic from its `Drop`, and
    /// leaves the registry.
    fn finish(
        mut self: Pin<&mut Self>,
        id: TaskId,
        registered: bool,
    ) -> Result<(), Box<dyn Any + Send>> {
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| self.set(TaskFuture::Done)));
        if registered {
            crate::context::unregister(id);
        }
        dropped
    }
}

/// Hands a task panic to the join handle or, in propagate mode, keeps the
/// payload for `run_until` and gives the handle its message.
fn report_panic(payload: Box<dyn Any + Send>, propagate: bool) -> TaskPanic {
    if propagate {
        let message = TaskPanic::message_of(payload.as_ref());
        PROPAGATING.set(Some(payload));
        TaskPanic::from_message(message)
    } else {
        TaskPanic::new(payload)
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let request = SIGNAL.get();
        let (id, propagate, registered) = match self.as_mut().project() {
            TaskFutureProj::Running {
                id,
                propagate_panic,
                registered,
                ..
            } => (*id, *propagate_panic, *registered),
            // Never polled after completing.
            TaskFutureProj::Done => return Poll::Pending,
        };

        if request == Signal::Abort {
            if let Err(payload) = self.finish(id, registered)
                && propagate
            {
                PROPAGATING.set(Some(payload));
            }
            SIGNAL.set(Signal::Cancelled);
            return Poll::Ready(Err(JoinError::Cancelled));
        }

        let polled = match self.as_mut().project() {
            TaskFutureProj::Running { inner, .. } => {
                std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
            }
            TaskFutureProj::Done => return Poll::Pending,
        };
        match polled {
            Ok(Poll::Pending) => {
                if !registered {
                    if let TaskFutureProj::Running { registered, .. } = self.project() {
                        *registered = true;
                    }
                    crate::context::register(id, cx.waker());
                }
                SIGNAL.set(Signal::Pending);
                Poll::Pending
            }
            Ok(Poll::Ready(value)) => match self.finish(id, registered) {
                Ok(()) => {
                    SIGNAL.set(Signal::Completed);
                    Poll::Ready(Ok(value))
                }
                Err(payload) => {
                    SIGNAL.set(Signal::Panicked);
                    Poll::Ready(Err(JoinError::Panic(report_panic(payload, propagate))))
                }
            },
            Err(payload) => {
                // A future that panicked may panic again when dropped; that
                // second panic is dropped.
                let _ = self.finish(id, registered);
                SIGNAL.set(Signal::Panicked);
                Poll::Ready(Err(JoinError::Panic(report_panic(payload, propagate))))
            }
        }
    }
}
