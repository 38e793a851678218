//! Graceful close of a single executor: the futures of
//! [`Handle::closed`](crate::Handle::closed), [`Handle::drain`](crate::Handle::drain)
//! and [`Handle::shutdown`](crate::Handle::shutdown), and the
//! [`ShutdownReport`]. The mechanism is the core's (`core/close.rs`); a
//! pool's per-worker drain uses the same.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::core::Core;
use crate::run::RunUntil;

/// The future of [`Handle::closed`](crate::Handle::closed): ready once the
/// executor is closed or dropped.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Closed {
    core: Rc<Core>,
    /// Its place among the executor's waiters, given back when it is
    /// dropped: a `Closed` made and dropped in every connection's task
    /// leaves nothing behind.
    key: Option<usize>,
}

impl Closed {
    pub(crate) fn new(core: Rc<Core>) -> Closed {
        Closed { core, key: None }
    }
}

impl Future for Closed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.core.poll_closed(cx, &mut this.key)
    }
}

impl Drop for Closed {
    fn drop(&mut self) {
        self.core.forget_waiter(&mut self.key, false);
    }
}

/// Ready once every task has finished (see `Core::poll_drained`); gives
/// its place among the waiters back when dropped.
struct Drained<'a> {
    core: &'a Core,
    key: Option<usize>,
}

impl Future for Drained<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.core.poll_drained(cx, &mut this.key)
    }
}

impl Drop for Drained<'_> {
    fn drop(&mut self) {
        self.core.forget_waiter(&mut self.key, true);
    }
}

impl fmt::Debug for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed")
            .field("closed", &self.core.is_closing())
            .finish()
    }
}

/// The future of [`Handle::drain`](crate::Handle::drain) and
/// [`Executor::drain`](crate::Executor::drain): ready once every task has
/// finished.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Drain<'a> {
    inner: Pin<Box<dyn Future<Output = bool> + 'a>>,
}

impl<'a> Drain<'a> {
    pub(crate) fn new(core: &'a Rc<Core>) -> Drain<'a> {
        Drain {
            inner: Box::pin(drain(core, None)),
        }
    }
}

impl Future for Drain<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx).map(|_| ())
    }
}

impl fmt::Debug for Drain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").finish_non_exhaustive()
    }
}

/// The future of [`Handle::shutdown`](crate::Handle::shutdown) and
/// [`Executor::shutdown`](crate::Executor::shutdown).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Shutdown<'a, K> {
    inner: Pin<Box<dyn Future<Output = ShutdownReport<K>> + 'a>>,
}

impl<'a, K: Copy + 'a> Shutdown<'a, K> {
    pub(crate) fn new(core: &'a Rc<Core>, keys: &'a [K], timeout: Duration) -> Shutdown<'a, K> {
        Shutdown {
            inner: Box::pin(shutdown(core, keys, timeout)),
        }
    }
}

impl<K> Future for Shutdown<'_, K> {
    type Output = ShutdownReport<K>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReport<K>> {
        self.inner.as_mut().poll(cx)
    }
}

impl<K> fmt::Debug for Shutdown<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").finish_non_exhaustive()
    }
}

/// What [`Handle::shutdown`](crate::Handle::shutdown) did.
///
/// The per-queue counts are the executor's totals (the same as its
/// [stats](crate::QueueStats)), so that the report adds up with what ran
/// before the shutdown; [`QueueReport::cut_off`] is what the deadline
/// cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport<K> {
    /// One entry per queue, in the order they were configured.
    pub queues: Vec<QueueReport<K>>,
    /// Every task finished before the deadline: nothing was cancelled.
    pub drained: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// One queue's part of a [`ShutdownReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueReport<K> {
    /// The queue's key.
    pub key: K,
    /// Its tasks that ran to completion (over the executor's life).
    pub completed: u64,
    /// Its tasks cancelled (over the executor's life, the deadline's
    /// included).
    pub cancelled: u64,
    /// Its tasks that panicked (over the executor's life).
    pub panicked: u64,
    /// Its tasks still alive at the deadline, and cancelled then (a future
    /// that panicked when dropped counts here too, and in `panicked`).
    pub cut_off: u64,
}

impl<K> ShutdownReport<K> {
    /// Tasks completed, over every queue.
    pub fn completed(&self) -> u64 {
        self.queues.iter().map(|q| q.completed).sum()
    }

    /// Tasks cancelled, over every queue.
    pub fn cancelled(&self) -> u64 {
        self.queues.iter().map(|q| q.cancelled).sum()
    }

    /// Tasks that panicked, over every queue.
    pub fn panicked(&self) -> u64 {
        self.queues.iter().map(|q| q.panicked).sum()
    }

    /// Tasks cancelled at the deadline, over every queue.
    pub fn cut_off(&self) -> u64 {
        self.queues.iter().map(|q| q.cut_off).sum()
    }
}

/// Waits until every task has finished or `deadline` passes; returns
/// whether they all finished. Drives the executor unless it already runs
/// on this thread (the caller is its `run_until` future, or one of its
/// tasks), in which case it only waits.
async fn drain(core: &Rc<Core>, deadline: Option<Instant>) -> bool {
    let drained = Drained { core, key: None };
    let until = async {
        match deadline {
            None => {
                drained.await;
                true
            }
            Some(deadline) => race(drained, crate::time::sleep_until(deadline)).await,
        }
    };
    if core.poll.in_run() {
        until.await
    } else {
        RunUntil::new(core, until, true).await
    }
}

/// Polls `first` and `second` until one is ready; whether `first` was.
pub(crate) async fn race(
    first: impl Future<Output = ()>,
    second: impl Future<Output = ()>,
) -> bool {
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    std::future::poll_fn(|cx| {
        if first.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        if second.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Pending
    })
    .await
}

/// Closes, drains until `timeout` has passed, then cancels what is left.
async fn shutdown<K: Copy>(core: &Rc<Core>, keys: &[K], timeout: Duration) -> ShutdownReport<K> {
    let started = Instant::now();
    core.close();
    let deadline = started.checked_add(timeout);
    let drained = drain(core, deadline).await;
    let before: Vec<u64> = (0..keys.len()).map(|i| core.ended_unfinished(i)).collect();
    if !drained && !core.poll.in_task() {
        // Outside any task of the executor: nothing is being polled, so
        // every task can be dropped now, as the executor's drop does.
        core.shutdown();
    }
    let queues = keys
        .iter()
        .enumerate()
        .map(|(index, &key)| {
            let stats = core.queue_stats(index, key);
            QueueReport {
                key,
                completed: stats.completed,
                cancelled: stats.cancelled,
                panicked: stats.panicked,
                cut_off: core.ended_unfinished(index) - before[index],
            }
        })
        .collect();
    ShutdownReport {
        queues,
        drained,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use crate::ExecutorBuilder;

    /// `closed()` and `drain()` futures made and dropped before they are
    /// ready (a `select` in every connection's task) leave no waiter
    /// behind; ready ones neither.
    #[test]
    fn dropped_waiting_futures_leave_nothing_behind() {
        let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
        let handle = executor.handle();
        let core = handle.core().clone();
        // A task that stays alive, so that drains wait.
        let parked = executor
            .queue(0)
            .unwrap()
            .spawn(std::future::pending::<()>());
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1_000 {
            let mut closed = pin!(handle.closed());
            assert!(closed.as_mut().poll(&mut cx).is_pending());
            let mut drain = pin!(handle.drain());
            assert!(drain.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(core.waiters(), (0, 0));
        // Waiting ones are there, and gone once ready.
        let mut closed = Box::pin(handle.closed());
        assert!(closed.as_mut().poll(&mut cx).is_pending());
        assert_eq!(core.waiters(), (0, 1));
        handle.close();
        assert!(closed.as_mut().poll(&mut cx).is_ready());
        assert_eq!(core.waiters(), (0, 0));
        drop(closed);
        parked.abort();
        executor.block_on(executor.drain());
        assert_eq!(core.waiters(), (0, 0));
    }
}
