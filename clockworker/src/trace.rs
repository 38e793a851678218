//! The `tracing` feature: one span per task, and an event when a task
//! panics.
//!
//! A task's span is made when the task is spawned (on the spawning thread,
//! with the subscriber current there) and kept in its [`TaskFuture`]
//! (`task.rs`). The task future enters it once for every time the task
//! runs: around a poll of the user's future, the drop of that future that
//! follows its completion, and the drop of a task that is aborted or
//! dropped unpolled. So a subscriber sees one enter per run, and whatever
//! the future does (or its `Drop` does) happens inside the span. The span
//! closes when the task finishes.
//!
//! Without the feature, [`TaskSpan`] is a zero-sized type whose methods do
//! nothing and are always inlined: the task, its header and the run loop
//! are exactly what they are without tracing.
//!
//! [`TaskFuture`]: crate::task::TaskFuture

#[cfg(feature = "tracing")]
pub(crate) use on::TaskSpan;

#[cfg(not(feature = "tracing"))]
pub(crate) use off::TaskSpan;

/// The target of the task spans and of the panic events: filter with
/// `clockworker::task=trace` (spans) or `clockworker::task=error` (panics).
#[cfg(feature = "tracing")]
pub(crate) const TARGET: &str = "clockworker::task";

#[cfg(feature = "tracing")]
mod on {
    use std::any::Any;

    use crate::error::TaskPanic;
    use crate::task::{GroupId, TaskId, TaskLabel};

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

        /// No span (a task that never runs on an executor).
        #[inline]
        pub(crate) fn none() -> TaskSpan {
            TaskSpan(tracing::Span::none())
        }

        /// Moves the span out, leaving none in its place.
        #[inline]
        pub(crate) fn take(&mut self) -> TaskSpan {
            std::mem::replace(self, TaskSpan::none())
        }

        /// Runs `f` inside the span.
        #[inline]
        pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
            self.0.in_scope(f)
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

    /// Nothing: the `tracing` feature is off.
    #[derive(Debug)]
    pub(crate) struct TaskSpan;

    impl TaskSpan {
        #[inline(always)]
        pub(crate) fn none() -> TaskSpan {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn take(&mut self) -> TaskSpan {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
            f()
        }

        #[inline(always)]
        pub(crate) fn panicked(&self, _payload: &(dyn Any + Send)) {}
    }
}

#[cfg(test)]
mod tests {
    /// Without the feature, a task is exactly as large as before spans
    /// existed: the task future holds the user's future and two flags.
    #[cfg(not(feature = "tracing"))]
    #[test]
    fn no_span_no_bytes_without_the_feature() {
        use crate::task::TaskFuture;
        use std::mem::size_of;

        #[allow(dead_code)]
        enum Unspanned<F> {
            Running {
                inner: F,
                propagate_panic: bool,
                parked: bool,
            },
            Done,
        }
        async fn with_state(x: u64) -> u64 {
            crate::yield_now().await;
            x + 1
        }
        assert_eq!(size_of::<super::TaskSpan>(), 0);
        assert_eq!(
            size_of::<TaskFuture<std::future::Ready<u8>>>(),
            size_of::<Unspanned<std::future::Ready<u8>>>()
        );
        type Big = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
        assert_eq!(size_of::<TaskFuture<Big>>(), size_of::<Unspanned<Big>>());
        let future = with_state(1);
        fn sizes<F>(_: &F) -> (usize, usize) {
            (size_of::<TaskFuture<F>>(), size_of::<Unspanned<F>>())
        }
        let (spanned, unspanned) = sizes(&future);
        assert_eq!(spanned, unspanned);
    }
}
