//! The executors we compare against, behind one small trait, and the
//! workloads that run on all of them.
//!
//! Peers: clockworker (this crate), tokio's current-thread runtime with a
//! `LocalSet` (the baseline), async-executor's `LocalExecutor`, the
//! published clockworker 0.2.6 (running inside a tokio `LocalSet`, as it
//! requires), and glommio's `LocalExecutor` (Linux only). Every workload uses the same futures on every peer: a plain
//! yield (`wake_by_ref` + `Pending`) and the channels below, so that the
//! figures compare executors, not libraries.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

/// An executor under test.
pub trait Peer {
    /// The peer's name in tables.
    const NAME: &'static str;
    /// Its join handle, yielding the task's output.
    type Handle<T: 'static>: Future<Output = T>;
    /// Runs `future` to completion; tasks spawned by it run too.
    fn run<F: Future>(&self, future: F) -> F::Output;
    /// Spawns a task; only called from inside `run`.
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static;
}

/// Turns a handle that yields `Result<T, E>` into one that yields `T`.
pub struct Unwrap<H>(pub H);

impl<T, E: std::fmt::Debug, H: Future<Output = Result<T, E>> + Unpin> Future for Unwrap<H> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("task failed"))
    }
}

/// clockworker: one queue, `block_on`.
pub struct Ours {
    pub executor: clockworker::Executor<u8>,
    pub queue: clockworker::QueueHandle<u8>,
}

impl Ours {
    pub fn new() -> Ours {
        Self::with(clockworker::ExecutorBuilder::new().with_queue(0, 1))
    }

    /// With the stall watchdog on (10 ms, a handler that does nothing): what
    /// the watchdog costs on the hot path.
    pub fn watched() -> Ours {
        Self::with(
            clockworker::ExecutorBuilder::new()
                .with_queue(0, 1)
                .with_stall_threshold(Duration::from_millis(10))
                .on_stall(|_| {}),
        )
    }

    pub fn with(builder: clockworker::ExecutorBuilder<u8>) -> Ours {
        let executor = builder.build().expect("valid configuration");
        let queue = executor.queue(0).expect("queue 0");
        Ours { executor, queue }
    }
}

impl Peer for Ours {
    const NAME: &'static str = "clockworker";
    type Handle<T: 'static> = Unwrap<clockworker::JoinHandle<T>>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        self.executor.block_on(future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Unwrap(self.queue.spawn(future))
    }
}

/// tokio current-thread runtime with a `LocalSet`.
pub struct Tokio {
    runtime: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl Tokio {
    pub fn new() -> Tokio {
        Tokio {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            local: tokio::task::LocalSet::new(),
        }
    }
}

impl Peer for Tokio {
    const NAME: &'static str = "tokio LocalSet";
    type Handle<T: 'static> = Unwrap<tokio::task::JoinHandle<T>>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        self.local.block_on(&self.runtime, future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Unwrap(tokio::task::spawn_local(future))
    }
}

/// async-executor's `LocalExecutor` under `futures_lite::future::block_on`.
pub struct AsyncExecutor {
    executor: async_executor::LocalExecutor<'static>,
}

impl AsyncExecutor {
    pub fn new() -> AsyncExecutor {
        AsyncExecutor {
            executor: async_executor::LocalExecutor::new(),
        }
    }
}

impl Peer for AsyncExecutor {
    const NAME: &'static str = "async-executor";
    type Handle<T: 'static> = async_executor::Task<T>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        futures_lite::future::block_on(self.executor.run(future))
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.executor.spawn(future)
    }
}

/// The published clockworker 0.2.6, inside a tokio `LocalSet`.
pub struct Upstream {
    tokio: Tokio,
    executor: Rc<upstream::Executor<u8>>,
    queue: upstream::QueueHandle<u8>,
}

impl Upstream {
    pub fn new() -> Upstream {
        Self::with(upstream::ExecutorBuilder::new().with_queue(0, 1))
    }

    pub fn with(builder: upstream::ExecutorBuilder<u8>) -> Upstream {
        let executor = builder.build().expect("valid configuration");
        let queue = executor.queue(0).expect("queue 0");
        Upstream {
            tokio: Tokio::new(),
            executor,
            queue,
        }
    }
}

impl Peer for Upstream {
    const NAME: &'static str = "clockworker 0.2.6";
    type Handle<T: 'static> = Unwrap<upstream::JoinHandle<T, u8>>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        self.tokio.run(self.executor.run_until(future))
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Unwrap(self.queue.spawn(future))
    }
}

/// glommio's `LocalExecutor` (its own io_uring reactor; Linux only).
#[cfg(target_os = "linux")]
pub struct Glommio {
    executor: glommio::LocalExecutor,
}

#[cfg(target_os = "linux")]
impl Glommio {
    pub fn new() -> Glommio {
        Glommio {
            executor: glommio::LocalExecutorBuilder::default()
                .make()
                .expect("glommio executor"),
        }
    }
}

#[cfg(target_os = "linux")]
impl Peer for Glommio {
    const NAME: &'static str = "glommio";
    type Handle<T: 'static> = glommio::Task<T>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        self.executor.run(future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        glommio::spawn_local(future)
    }
}

/// The floor under every executor built on async-task: async-task's own
/// `spawn_local`, with a schedule function that pushes onto a thread-local
/// FIFO, and a loop that runs it (no queues, no weights, no stats, no
/// registry). Single-thread workloads only: a wake from another thread
/// would land in that thread's FIFO.
pub struct AsyncTaskFloor;

thread_local! {
    static FLOOR: RefCell<std::collections::VecDeque<async_task::Runnable>> =
        RefCell::new(std::collections::VecDeque::with_capacity(1024));
}

fn floor_schedule(runnable: async_task::Runnable) {
    FLOOR.with(|queue| queue.borrow_mut().push_back(runnable));
}

struct FlagWaker(std::sync::atomic::AtomicBool);

impl std::task::Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

impl Peer for AsyncTaskFloor {
    const NAME: &'static str = "async-task alone";
    type Handle<T: 'static> = async_task::Task<T>;
    fn run<F: Future>(&self, future: F) -> F::Output {
        let flag = Arc::new(FlagWaker(std::sync::atomic::AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if flag.0.swap(false, Ordering::AcqRel)
                && let Poll::Ready(output) = future.as_mut().poll(&mut cx)
            {
                return output;
            }
            loop {
                let next = FLOOR.with(|queue| queue.borrow_mut().pop_front());
                let Some(runnable) = next else { break };
                runnable.run();
                if flag.0.load(Ordering::Acquire) {
                    break;
                }
            }
        }
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (runnable, task) = async_task::spawn_local(future, floor_schedule);
        runnable.schedule();
        task
    }
}

// ----- futures shared by every peer -------------------------------------

/// Yields once: `wake_by_ref` and `Pending`, as every executor's own
/// `yield_now` does at its core.
pub fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// A single-threaded one-slot channel: the lightest possible hand-off, so
/// that ping-pong measures the executor's wake and poll path.
pub struct Slot<T> {
    value: Cell<Option<T>>,
    waiter: RefCell<Option<Waker>>,
}

impl<T> Slot<T> {
    pub fn new() -> Rc<Slot<T>> {
        Rc::new(Slot {
            value: Cell::new(None),
            waiter: RefCell::new(None),
        })
    }

    pub fn send(&self, value: T) {
        self.value.set(Some(value));
        if let Some(waker) = self.waiter.borrow_mut().take() {
            waker.wake();
        }
    }

    pub fn recv(&self) -> impl Future<Output = T> + '_ {
        poll_fn(move |cx| match self.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                *self.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// A token passed between a task and a thread: the thread's reply wakes the
/// task from another thread.
pub struct RemoteToken {
    /// Odd: the thread's turn; even: the task's turn.
    turn: AtomicU64,
    waker: AtomicWaker,
}

impl RemoteToken {
    pub fn new() -> Arc<RemoteToken> {
        Arc::new(RemoteToken {
            turn: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        })
    }
}

// ----- workloads -----------------------------------------------------------

/// Spawns `n` trivial tasks in batches of 200,000 and joins them.
pub fn spawn_join<P: Peer>(peer: &P, n: u64) -> Duration {
    const BATCH: u64 = 200_000;
    peer.run(async {
        let start = Instant::now();
        let mut left = n;
        while left > 0 {
            let batch = left.min(BATCH);
            let handles: Vec<_> = (0..batch).map(|_| peer.spawn(async {})).collect();
            for handle in handles {
                handle.await;
            }
            left -= batch;
        }
        start.elapsed()
    })
}

/// Parks `live` tasks on a future that never completes (until the peer is
/// dropped), to measure spawning with many tasks alive.
pub fn park_tasks<P: Peer>(peer: &P, live: u64) {
    peer.run(async {
        for _ in 0..live {
            drop(peer.spawn(std::future::pending::<()>()));
        }
        // Let each one run once and park.
        for _ in 0..4 {
            yield_once().await;
        }
    });
}

/// One task yields `n` times.
pub fn yield_one<P: Peer>(peer: &P, n: u64) -> Duration {
    peer.run(async {
        let start = Instant::now();
        peer.spawn(async move {
            for _ in 0..n {
                yield_once().await;
            }
        })
        .await;
        start.elapsed()
    })
}

/// `tasks` tasks yield `n / tasks` times each (at least once).
pub fn yield_many<P: Peer>(peer: &P, tasks: u64, n: u64) -> Duration {
    let each = (n / tasks).max(1);
    peer.run(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                peer.spawn(async move {
                    for _ in 0..each {
                        yield_once().await;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await;
        }
        start.elapsed()
    })
}

/// Two tasks pass a token back and forth `n` times.
pub fn ping_pong<P: Peer>(peer: &P, n: u64) -> Duration {
    peer.run(async {
        let ping = Slot::new();
        let pong = Slot::new();
        let start = Instant::now();
        let server = peer.spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                for _ in 0..n {
                    let token = ping.recv().await;
                    pong.send(token + 1);
                }
            }
        });
        let client = peer.spawn(async move {
            let mut token = 0u64;
            for _ in 0..n {
                ping.send(token);
                token = pong.recv().await;
            }
            token
        });
        let token = client.await;
        server.await;
        assert_eq!(token, n);
        start.elapsed()
    })
}

/// A task exchanges a token with a spinning thread `n` times: every round
/// trip wakes the task from another thread.
pub fn remote_ping_pong<P: Peer>(peer: &P, n: u64) -> Duration {
    let token = RemoteToken::new();
    let echo = std::thread::spawn({
        let token = token.clone();
        move || {
            for round in 0..n {
                // Wait for the task's move (turn 2·round + 1), then answer.
                while token.turn.load(Ordering::Acquire) != 2 * round + 1 {
                    std::hint::spin_loop();
                }
                token.turn.store(2 * round + 2, Ordering::Release);
                token.waker.wake();
            }
        }
    });
    let elapsed = peer.run(async {
        let start = Instant::now();
        peer.spawn({
            let token = token.clone();
            async move {
                for round in 0..n {
                    token.turn.store(2 * round + 1, Ordering::Release);
                    poll_fn(|cx| {
                        token.waker.register(cx.waker());
                        if token.turn.load(Ordering::Acquire) == 2 * round + 2 {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                }
            }
        })
        .await;
        start.elapsed()
    });
    echo.join().expect("echo thread");
    elapsed
}

/// Nanoseconds per operation.
pub fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops.max(1) as f64
}

/// Busy-waits for `duration`: stands in for CPU work.
pub fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// The value at quantile `q` (0..=1) of sorted samples (zero if none).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The 99.9th percentile and the maximum of `samples` (zeros if none).
pub fn tail(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    match samples.last() {
        Some(&max) => (percentile(&samples, 0.999), max),
        None => (Duration::ZERO, Duration::ZERO),
    }
}

/// The median of `samples` (zero if none); sorts them.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    percentile(samples, 0.5)
}

// ----- multi-threaded helpers ------------------------------------------------

/// A one-slot mailbox between threads: one task (or thread) sends a
/// non-zero number, one task receives it, woken from whatever thread sent
/// it. The lightest cross-thread hand-off, usable on every executor, so that
/// a ping-pong between workers measures the executors' cross-thread wake
/// path rather than a channel library.
pub struct Mailbox {
    /// Zero: empty.
    value: AtomicU64,
    waker: AtomicWaker,
}

impl Mailbox {
    pub fn new() -> Arc<Mailbox> {
        Arc::new(Mailbox {
            value: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        })
    }

    /// Puts `value` (non-zero) in the slot and wakes the receiver.
    pub fn send(&self, value: u64) {
        debug_assert_ne!(value, 0, "zero marks an empty mailbox");
        self.value.store(value, Ordering::Release);
        self.waker.wake();
    }

    /// Waits for a value and takes it.
    pub fn recv(&self) -> impl Future<Output = u64> + Send + '_ {
        poll_fn(move |cx| {
            let value = self.value.swap(0, Ordering::Acquire);
            if value != 0 {
                return Poll::Ready(value);
            }
            self.waker.register(cx.waker());
            match self.value.swap(0, Ordering::Acquire) {
                0 => Poll::Pending,
                value => Poll::Ready(value),
            }
        })
    }
}

/// CPU time used so far by this process, with how many times its threads
/// were scheduled onto a CPU (a count of wake-ups; `None` where the kernel
/// does not say). Linux only.
///
/// Reads `/proc/self/task/*/schedstat` (nanoseconds on the CPU, and time
/// slices, per thread); falls back to the utime and stime of
/// `/proc/self/stat` (clock ticks, 10 ms each). A thread that exits between
/// two readings takes its time with it: compare readings taken while the
/// same threads live.
pub fn process_cpu() -> Option<(Duration, Option<u64>)> {
    let from_schedstat = || -> Option<(Duration, Option<u64>)> {
        let (mut nanos, mut slices) = (0u64, 0u64);
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let path = entry.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            let mut fields = text.split_whitespace();
            nanos += fields.next()?.parse::<u64>().ok()?;
            slices += fields.nth(1)?.parse::<u64>().ok()?;
        }
        Some((Duration::from_nanos(nanos), Some(slices)))
    };
    let from_stat = || -> Option<(Duration, Option<u64>)> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): state is
        // the first; utime and stime are the 12th and 13th.
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on every Linux configuration in use.
        Some((Duration::from_millis(ticks * 10), None))
    };
    from_schedstat().or_else(from_stat)
}
