//! Awaiting, aborting and detaching tasks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use async_task::Task;

use crate::error::JoinError;
use crate::task::{Header, TaskId, TaskLabel};

/// An owned permission to await a task's output, or to abort it.
///
/// Awaiting a `JoinHandle<T>` gives `Ok(T)` when the task completes,
/// `Err(JoinError::Cancelled)` when it was aborted (or its executor was
/// dropped) before completing, and `Err(JoinError::Panic(_))` when its poll
/// panicked and the executor catches panics.
///
/// Dropping the handle *detaches* the task: it keeps running and its output
/// is dropped when it completes, as with tokio's `JoinHandle`.
///
/// A `JoinHandle` is `Send` (and `Sync`) when `T` is `Send`, even for tasks
/// whose futures are not: it can be awaited or aborted from any thread.
///
/// # Examples
///
/// ```
/// use clockworker::{ExecutorBuilder, JoinError};
///
/// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// executor.block_on(async {
///     let answer = queue.spawn(async { 42 });
///     assert_eq!(answer.await.unwrap(), 42);
///
///     let never = queue.spawn(std::future::pending::<()>());
///     never.abort();
///     assert!(matches!(never.await, Err(JoinError::Cancelled)));
/// });
/// ```
pub struct JoinHandle<T> {
    /// `None` only while being dropped.
    task: Option<Task<Result<T, JoinError>, Header>>,
    /// The output was taken.
    done: bool,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Task<Result<T, JoinError>, Header>) -> Self {
        JoinHandle {
            task: Some(task),
            done: false,
        }
    }

    fn header(&self) -> &Header {
        match &self.task {
            Some(task) => task.metadata(),
            None => unreachable!("the task is only taken out in drop"),
        }
    }

    /// Aborts the task.
    ///
    /// If the task has not completed, its future is dropped on the executor
    /// thread at the executor's next poll boundary (a parked task is woken
    /// for this; it does not wait for its own wake-up), and the handle then
    /// resolves to `Err(JoinError::Cancelled)`. The handle resolves only once
    /// the future has been dropped.
    ///
    /// Aborting a task that has already completed changes nothing: the
    /// handle still resolves to its output. Aborting twice is harmless.
    /// `abort` may be called from any thread.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// struct SetOnDrop(Arc<AtomicBool>);
    /// impl Drop for SetOnDrop {
    ///     fn drop(&mut self) { self.0.store(true, Ordering::SeqCst) }
    /// }
    ///
    /// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let dropped = Arc::new(AtomicBool::new(false));
    /// let guard = SetOnDrop(dropped.clone());
    /// let task = queue.spawn(async move {
    ///     let _guard = guard;
    ///     std::future::pending::<()>().await
    /// });
    /// executor.block_on(clockworker::yield_now()); // the task parks
    /// task.abort();
    /// let result = executor.block_on(task);
    /// // The future was dropped before the handle resolved.
    /// assert!(dropped.load(Ordering::SeqCst));
    /// assert!(result.unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        if self.is_finished() {
            return;
        }
        let header = self.header();
        // SeqCst pairs with the executor's read of the flag before each
        // poll: either the executor sees the flag at the task's next poll,
        // or the wake-up below finds the task parked and registered.
        header.aborted.store(true, Ordering::SeqCst);
        crate::context::request_abort(&header.home(), header.id);
    }

    /// Whether the task has finished: completed, panicked, or been dropped
    /// after an abort. Once this returns `true`, awaiting the handle does not
    /// wait.
    pub fn is_finished(&self) -> bool {
        self.done || self.task.as_ref().is_none_or(|task| task.is_finished())
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// The task's label: where it was spawned (`file:line` of the call to
    /// `spawn` or `spawn!`).
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async {});
    /// assert_eq!(task.label().line(), line!() - 1);
    /// assert!(task.label().to_string().ends_with(&format!(":{}", line!() - 2)));
    /// assert!(!task.is_finished());
    /// executor.block_on(task).unwrap();
    /// ```
    pub fn label(&self) -> TaskLabel {
        self.header().label
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    ///
    /// Panics if polled again after it returned `Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(
            !self.done,
            "JoinHandle polled after it already returned Ready"
        );
        let Some(task) = self.task.as_mut() else {
            unreachable!("the task is only taken out in drop")
        };
        // Every task writes an output, `Err(Cancelled)` included (see
        // `task::run_aborted`), so the task never closes without one.
        let output = match Pin::new(&mut *task).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        let result = match output {
            Err(JoinError::Panic(mut panic)) => {
                panic.set_task(self.id(), self.label());
                Err(JoinError::Panic(panic))
            }
            other => other,
        };
        self.done = true;
        Poll::Ready(result)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("label", &format_args!("{}", self.label()))
            .field("finished", &self.is_finished())
            .finish()
    }
}
