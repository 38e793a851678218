//! The `tracing` feature: one span per task, and an event when a task
//! panics.
//!
//! A task's span is made when the task is spawned (on the spawning thread,
//! with the subscriber current there) and kept beside its [`TaskFuture`]
//! (`task.rs`) in a `Traced` future, which enters it once for every time
//! the task runs: around a poll of the user's future, the drop of that
//! future that follows its completion, and the drop of a task that is
//! aborted or dropped unpolled. So a subscriber sees one enter per run,
//! and whatever the future does (or its `Drop` does) happens inside the
//! span. The span closes when async-task drops the finished task future,
//! right after its last run.
//!
//! Without the feature, [`TaskSpan`] is a zero-sized type whose methods do
//! nothing and are always inlined, and [`instrument`] gives the task future
//! back as it is: the task, its header and the run loop are exactly what
//! they are without tracing.
//!
//! [`TaskFuture`]: crate::task::TaskFuture

#[cfg(feature = "tracing")]
pub(crate) use on::{TaskSpan, instrument};

#[cfg(not(feature = "tracing"))]
pub(crate) use off::{TaskSpan, instrument};

/// The target of the task spans and of the panic events: filter with
/// `clockworker::task=trace` (spans) or `clockworker::task=error` (panics).
#[cfg(feature = "tracing")]
pub(crate) const TARGET: &str = "clockworker::task";

#[cfg(feature = "tracing")]
mod on {
    use std::any::Any;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use crate::error::{JoinError, TaskPanic};
    use crate::task::{GroupId, TaskFuture, TaskId, TaskLabel};

    pin_project_lite::pin_project! {
        /// A task future and its span, entered around each of its runs.
        /// The span is beside the task future, not in it: a run that
        /// finishes the task drops the user's future inside the span.
        pub(crate) struct Traced<F> {
            #[pin]
            task: TaskFuture<F>,
            span: TaskSpan,
        }
    }

    /// The future a task runs: `task` inside `span`.
    #[inline]
    pub(crate) fn instrument<F>(task: TaskFuture<F>, span: TaskSpan) -> Traced<F> {
        Traced { task, span }
    }

    impl<F: Future> Future for Traced<F> {
        type Output = Result<F::Output, JoinError>;

        #[inline]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let span = &*this.span;
            span.0.in_scope(|| this.task.run(cx, span))
        }
    }

    /// A task's span (see the module docs).
    #[derive(Debug)]
    pub(crate) struct TaskSpan(tracing::Span);

    impl TaskSpan {
        /// The span of a new task of queue `queue` (its name).
        ///
        /// A root span (`parent: None`): a task outlives the code that
        /// spawned it, and nesting each task under its spawner's span
        /// would chain long-lived tasks' spans forever. Its fields are
        /// only computed when a subscriber wants the span.
        #[inline]
        pub(crate) fn new(
            queue: &str,
            group: Option<GroupId>,
            id: TaskId,
            label: TaskLabel,
        ) -> TaskSpan {
            TaskSpan(tracing::span!(
                target: super::TARGET,
                parent: None,
                tracing::Level::TRACE,
                "task",
                queue = queue,
                group = group.map(GroupId::as_u64),
                task_id = id.as_u64(),
                spawned_at = %label.location(),
            ))
        }

        /// No span.
        #[inline]
        pub(crate) fn none() -> TaskSpan {
            TaskSpan(tracing::Span::none())
        }

        /// Reports a panic of the task's future (its poll or its drop) as
        /// an error event in the span.
        #[cold]
        #[inline(never)]
        pub(crate) fn panicked(&self, payload: &(dyn Any + Send)) {
            let message = TaskPanic::message_of(payload);
            let message = message
                .as_deref()
                .unwrap_or("(a payload that is not a string)");
            tracing::error!(
                target: super::TARGET,
                parent: &self.0,
                panic = message,
                "task panicked",
            );
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use std::any::Any;

    use crate::task::TaskFuture;

    /// Nothing: the `tracing` feature is off.
    #[derive(Debug)]
    pub(crate) struct TaskSpan;

    /// The future a task runs: the task future itself.
    #[inline(always)]
    pub(crate) fn instrument<F>(task: TaskFuture<F>, _span: TaskSpan) -> TaskFuture<F> {
        task
    }

    impl TaskSpan {
        #[inline(always)]
        pub(crate) fn none() -> TaskSpan {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn panicked(&self, _payload: &(dyn Any + Send)) {}
    }
}

#[cfg(test)]
mod tests {
    /// Without the feature, a task runs its task future itself, unwrapped,
    /// and no span is made: the task is exactly as large as before spans
    /// existed.
    #[cfg(not(feature = "tracing"))]
    #[test]
    fn nothing_without_the_feature() {
        use crate::task::TaskFuture;

        fn runs<F>(_: &F) -> &'static str {
            std::any::type_name::<F>()
        }
        let span = super::TaskSpan::none();
        let (task, propagate) = (std::future::ready(1u8), false);
        let task = TaskFuture::Running {
            inner: task,
            propagate_panic: propagate,
            parked: false,
        };
        let task: TaskFuture<std::future::Ready<u8>> = super::instrument(task, span);
        assert!(runs(&task).contains("TaskFuture<"));
        assert_eq!(std::mem::size_of::<super::TaskSpan>(), 0);
    }
}
