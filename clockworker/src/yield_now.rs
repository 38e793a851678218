//! Cooperative yield points.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context;

/// Yields to the executor once: the current task goes to the back of its
/// queue and other tasks of the queue (and, at the end of the time slice,
/// other queues) run before it is polled again.
///
/// Works in any future the executor polls, the one passed to
/// [`run_until`](crate::Executor::run_until) included, and under any other
/// executor too.
///
/// # Examples
///
/// ```
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// executor.block_on(async {
///     let a = queue.spawn(async {
///         clockworker::yield_now().await;
///         "a"
///     });
///     let b = queue.spawn(async { "b" });
///     // `b` completes while `a` is yielding.
///     assert_eq!(b.await.unwrap(), "b");
///     assert_eq!(a.await.unwrap(), "a");
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Yields to the executor only if the running queue should give way: its
/// time slice is used up, a queue with an earlier deadline became runnable
/// (a task woken from another thread counts as soon as its wake-up is
/// delivered), or the host runtime is due its turn. Otherwise it completes
/// at once, at the cost of one clock read.
///
/// This is the cheap way to make a long computation preemptible: call it
/// between steps. A step longer than the time slice uses the whole slice
/// up, so `yield_maybe` then yields at every call: that is the queue's turn
/// ending, as it should. In the future passed to
/// [`run_until`](crate::Executor::run_until) it yields if any task is
/// runnable. Outside any clockworker executor it always yields.
///
/// # Examples
///
/// ```
/// use clockworker::{yield_maybe, ExecutorBuilder};
///
/// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let sum = executor.block_on(queue.spawn(async {
///     let mut sum = 0u64;
///     for i in 0..100_000 {
///         sum += i;
///         yield_maybe().await;
///     }
///     sum
/// }));
/// assert_eq!(sum.unwrap(), 4_999_950_000);
/// ```
pub fn yield_maybe() -> YieldMaybe {
    YieldMaybe { yielded: false }
}

/// Future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Future returned by [`yield_maybe`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct YieldMaybe {
    yielded: bool,
}

impl Future for YieldMaybe {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        let should_yield = context::current().is_none_or(|core| core.should_yield());
        if !should_yield {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
