//! clockworker's thread-per-core [`Pool`] against the multi-threaded
//! runtimes people use today, side by side in one run, at several worker
//! counts.
//!
//! Peers (columns):
//!
//! - **clockworker pool**: `Pool` with one queue, no stealing (its
//!   default); with `POOL_STEALING=1`, also the same with stealing on for
//!   that queue;
//! - **tokio multi-thread**: a work-stealing runtime with as many workers;
//! - **async-executor**: one `Executor` run by as many threads (how smol
//!   users build a multi-threaded executor);
//! - **tokio current-thread per core**: one current-thread runtime per
//!   thread, spawns from outside dealt round-robin, spawns from a worker
//!   kept on it (`tokio::spawn` there);
//! - **glommio**: `LocalExecutorPoolBuilder`, Linux only, where the workload
//!   applies (glommio cannot spawn onto an executor from another thread, so
//!   the spawn-from-outside and latency workloads are not run on it). It is
//!   skipped, with a line saying why, when io_uring is not available.
//!
//! Workloads (the shapes of tokio's `rt_multi_threaded` benchmarks):
//!
//! 1. `spawn`: 10,000 empty tasks spawned from a thread outside the runtime,
//!    then joined from it (ns per task);
//! 2. `chain`: each task spawns the next, 1,000 deep; the first is spawned
//!    from outside (ns per task);
//! 3. `yield`: 200 tasks spawned from outside yield 1,000 times each (ns per
//!    yield; a plain `wake_by_ref` + `Pending`, the same future on every
//!    peer);
//! 4. `ping-pong`: two tasks, on workers 0 and 1 where the runtime can pin
//!    them (clockworker `spawn_on`, the per-core runtimes, glommio shards;
//!    tokio and async-executor just spawn two tasks), exchange 1,000 round
//!    trips through a one-slot cross-thread mailbox (ns per round trip);
//! 5. `latency` (the headline): background tasks burning the CPU in 50–100
//!    µs polls with a yield between, four per worker, saturate every
//!    worker; a thread outside the runtime spawns one foreground request
//!    every millisecond (10 µs of work). Measured: spawn → start of the
//!    request's first poll (start delay) and spawn → completion, p50 and
//!    p99. Configurations: clockworker pool with `Foreground` weight 8 and
//!    `Background` weight 1, with and without the background; tokio
//!    multi-thread without background (the baseline) and with it (one
//!    runtime); two tokio multi-thread runtimes, one for each (as users
//!    separate them today). The bar: clockworker's p99 ≤ tokio fg-only's
//!    p99 + one background poll (its 99.9th percentile, measured).
//! 6. `idle`: a runtime built with its workers and left idle for a second:
//!    the process's CPU time in that second (% of one core) and how often
//!    its threads were scheduled (a count of wake-ups); for clockworker
//!    also the pool's own park and wake-up counters.
//!
//! Workloads 1–4 are timed as whole runs (a run's time is short and its
//! own; criterion's per-iteration model does not fit a run that spans
//! threads): one warm-up run, then runs until a time budget is spent (at
//! least 5), and the median is reported. Every runtime is unpinned. For
//! clockworker, one more run is taken between two readings of the pool's
//! counters: worker wake-ups and parks per operation, and how unevenly the
//! tasks were placed (a table of their own).
//!
//! Environment:
//!
//! - `POOL_WORKERS=1,2,4` worker counts (default `1,2`);
//! - `POOL_ONLY=<substring>` runs only the cells whose `workload/peer` name
//!   contains it (`POOL_ONLY=latency`, `POOL_ONLY=tokio`, `POOL_ONLY=idle/`);
//! - `POOL_QUICK=1` a smoke run: small budgets, fewer requests, a short
//!   idle window;
//! - `POOL_STEALING=1` adds the column of the pool with stealing on;
//! - `POOL_SPIN_US=20` sets the pool's `spin_before_park` (default: the
//!   pool's default, 20 µs when the machine has more CPUs than workers and
//!   none otherwise).
//!
//! Run with `cargo bench --bench pool`: prints tables in markdown and
//! writes them to `target/bench-results/pool.md`.

mod support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle as Thread;
use std::time::{Duration, Instant};

use clockworker::Pool;
use support::{Mailbox, Unwrap, median, percentile, process_cpu, spin, yield_once};

const SPAWN_TASKS: u64 = 10_000;
const CHAIN_DEPTH: u64 = 1_000;
const YIELD_TASKS: u64 = 200;
const YIELDS_PER_TASK: u64 = 1_000;
const PING_PONG_ROUNDS: u64 = 1_000;

const MIN_SAMPLES: usize = 5;
const MAX_SAMPLES: usize = 2_000;

/// Foreground requests: one per millisecond, 10 µs of work each.
const REQUEST_INTERVAL: Duration = Duration::from_millis(1);
const REQUEST_WORK: Duration = Duration::from_micros(10);
/// Requests left out of the percentiles (start-up).
const WARM_UP_REQUESTS: usize = 100;
/// Background tasks per worker, and their polls' length (µs).
const BACKGROUND_PER_WORKER: usize = 4;
const BACKGROUND_POLL_MICROS: std::ops::RangeInclusive<u64> = 50..=100;

// ----- configuration --------------------------------------------------------

struct Config {
    workers: Vec<usize>,
    only: String,
    quick: bool,
    stealing: bool,
}

impl Config {
    fn from_env() -> Config {
        let workers = std::env::var("POOL_WORKERS")
            .ok()
            .map(|list| {
                list.split(',')
                    .filter_map(|n| n.trim().parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .collect::<Vec<_>>()
            })
            .filter(|list| !list.is_empty())
            .unwrap_or_else(|| vec![1, 2]);
        Config {
            workers,
            only: std::env::var("POOL_ONLY").unwrap_or_default(),
            quick: flag("POOL_QUICK"),
            stealing: flag("POOL_STEALING"),
        }
    }

    fn wants(&self, workload: &str, peer: &str) -> bool {
        format!("{workload}/{peer}").contains(self.only.as_str())
    }

    /// Time spent on the timed runs of one cell.
    fn budget(&self) -> Duration {
        if self.quick {
            Duration::from_millis(150)
        } else {
            Duration::from_millis(800)
        }
    }

    fn requests(&self) -> usize {
        if self.quick { 400 } else { 2_000 }
    }

    fn idle_window(&self) -> Duration {
        if self.quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(1)
        }
    }
}

/// The pool builder with `spin_before_park` set to `POOL_SPIN_US`
/// microseconds, if given (else the pool's default).
fn with_spin<K>(builder: clockworker::PoolBuilder<K>) -> clockworker::PoolBuilder<K> {
    let spin = std::env::var("POOL_SPIN_US")
        .ok()
        .and_then(|us| us.trim().parse::<u64>().ok());
    match spin {
        Some(us) => builder.spin_before_park(Duration::from_micros(us)),
        None => builder,
    }
}

/// Whether environment variable `name` is set, and neither empty nor `0`.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// One warm-up run, then runs until the budget is spent (at least
/// [`MIN_SAMPLES`]): the median.
fn measure(config: &Config, mut run: impl FnMut() -> Duration) -> Duration {
    run();
    let began = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < MIN_SAMPLES
        || (began.elapsed() < config.budget() && samples.len() < MAX_SAMPLES)
    {
        samples.push(run());
    }
    median(&mut samples)
}

// ----- the runtimes under test ----------------------------------------------

/// A multi-threaded runtime, built with a number of workers.
trait Runtime: Sized {
    /// Its column.
    const NAME: &'static str;
    type Spawner: Spawn;
    fn build(workers: usize) -> Result<Self, String>;
    fn spawner(&self) -> Self::Spawner;
    /// Runs `future` on the calling thread (never one of the workers).
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures_lite::future::block_on(future)
    }
    /// The pool's own counters so far (clockworker's pool only).
    fn counters(&self) -> Option<Counters> {
        None
    }
    /// Stops the workers and joins their threads.
    fn shutdown(self);
}

/// Spawns onto a runtime, from any thread; cheap to clone.
trait Spawn: Clone + Send + Sync + 'static {
    /// A join handle; dropping it detaches the task.
    type Handle<T: Send + 'static>: Future<Output = T> + Send + Unpin + 'static;
    /// Spawns `future` where the runtime puts it: from outside, by its own
    /// placement; from one of its workers, as the runtime does there.
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// Spawns `future` on worker `worker` (modulo the worker count) where
    /// the runtime can place a task on a worker; elsewhere as `spawn`.
    fn spawn_on<F>(&self, worker: usize, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let _ = worker;
        self.spawn(future)
    }
}

/// Counters of clockworker's pool (see `PoolStats`).
struct Counters {
    parks: u64,
    wakeups: u64,
    /// Tasks placed on each worker.
    placed: Vec<u64>,
}

/// What the pool's counters say about one run of a workload.
#[derive(Clone, Copy)]
struct Diagnosis {
    wakeups_per_op: f64,
    parks_per_op: f64,
    /// Tasks placed on the busiest worker, over the mean.
    imbalance: f64,
}

impl Diagnosis {
    fn between(before: &Counters, after: &Counters, ops: u64) -> Diagnosis {
        let placed: Vec<u64> = after
            .placed
            .iter()
            .zip(&before.placed)
            .map(|(a, b)| a - b)
            .collect();
        let total: u64 = placed.iter().sum();
        let mean = total as f64 / placed.len().max(1) as f64;
        let busiest = placed.iter().copied().max().unwrap_or(0) as f64;
        Diagnosis {
            wakeups_per_op: (after.wakeups - before.wakeups) as f64 / ops as f64,
            parks_per_op: (after.parks - before.parks) as f64 / ops as f64,
            imbalance: if mean > 0.0 { busiest / mean } else { 1.0 },
        }
    }
}

/// clockworker's pool: one queue, with or without stealing.
struct ClockworkerPool<const STEALING: bool> {
    pool: Arc<Pool<u8>>,
}

impl<const STEALING: bool> Runtime for ClockworkerPool<STEALING> {
    const NAME: &'static str = if STEALING {
        "clockworker pool + stealing"
    } else {
        "clockworker pool"
    };
    type Spawner = Arc<Pool<u8>>;

    fn build(workers: usize) -> Result<Self, String> {
        let mut builder = with_spin(Pool::builder().workers(workers).with_queue(0u8, 1));
        if STEALING {
            builder = builder.with_stealing(0);
        }
        let pool = builder.build().map_err(|error| error.to_string())?;
        Ok(ClockworkerPool {
            pool: Arc::new(pool),
        })
    }

    fn spawner(&self) -> Arc<Pool<u8>> {
        self.pool.clone()
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.pool.block_on(future)
    }

    fn counters(&self) -> Option<Counters> {
        let stats = self.pool.stats();
        Some(Counters {
            parks: stats.parks(),
            wakeups: stats.wakeups(),
            placed: stats.workers.iter().map(|w| w.placed).collect(),
        })
    }

    fn shutdown(self) {
        let _ = self.pool.shutdown_blocking();
    }
}

impl Spawn for Arc<Pool<u8>> {
    type Handle<T: Send + 'static> = Unwrap<clockworker::JoinHandle<T>>;

    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Unwrap(Pool::spawn(self, 0, future))
    }

    fn spawn_on<F>(&self, worker: usize, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Unwrap(Pool::spawn_on(
            self,
            worker % self.workers(),
            0,
            move || future,
        ))
    }
}

/// tokio's multi-thread runtime.
struct TokioMulti {
    runtime: tokio::runtime::Runtime,
}

fn tokio_multi(workers: usize, name: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|error| error.to_string())
}

impl Runtime for TokioMulti {
    const NAME: &'static str = "tokio multi-thread";
    type Spawner = tokio::runtime::Handle;

    fn build(workers: usize) -> Result<Self, String> {
        Ok(TokioMulti {
            runtime: tokio_multi(workers, "tokio-mt")?,
        })
    }

    fn spawner(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn shutdown(self) {
        drop(self.runtime);
    }
}

impl Spawn for tokio::runtime::Handle {
    type Handle<T: Send + 'static> = Unwrap<tokio::task::JoinHandle<T>>;

    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Unwrap(tokio::runtime::Handle::spawn(self, future))
    }
}

/// async-executor's `Executor`, run by `workers` threads.
struct AsyncExecutorThreads {
    executor: Arc<async_executor::Executor<'static>>,
    stop: smol::channel::Sender<()>,
    threads: Vec<Thread<()>>,
}

impl Runtime for AsyncExecutorThreads {
    const NAME: &'static str = "async-executor";
    type Spawner = Arc<async_executor::Executor<'static>>;

    fn build(workers: usize) -> Result<Self, String> {
        let executor = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|index| {
                let (executor, stopped) = (executor.clone(), stopped.clone());
                std::thread::Builder::new()
                    .name(format!("async-executor-{index}"))
                    .spawn(move || {
                        let _ = futures_lite::future::block_on(executor.run(stopped.recv()));
                    })
                    .map_err(|error| error.to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(AsyncExecutorThreads {
            executor,
            stop,
            threads,
        })
    }

    fn spawner(&self) -> Self::Spawner {
        self.executor.clone()
    }

    fn shutdown(self) {
        drop(self.stop);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// async-executor's task, detached when dropped (as tokio's and
/// clockworker's handles are), not cancelled.
struct Detached<T>(Option<async_executor::Task<T>>);

impl<T> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let task = self.0.as_mut().expect("polled after completion");
        Pin::new(task).poll(cx)
    }
}

impl<T> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

impl Spawn for Arc<async_executor::Executor<'static>> {
    type Handle<T: Send + 'static> = Detached<T>;

    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Detached(Some(async_executor::Executor::spawn(self, future)))
    }
}

/// One tokio current-thread runtime per thread.
struct TokioPerCore {
    spawner: PerCore,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<Thread<()>>,
}

thread_local! {
    /// On a per-core runtime's thread: that set's id and the thread's index.
    static PER_CORE_WORKER: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

#[derive(Clone)]
struct PerCore {
    id: usize,
    handles: Arc<[tokio::runtime::Handle]>,
    next: Arc<AtomicUsize>,
}

impl Runtime for TokioPerCore {
    const NAME: &'static str = "tokio current-thread per core";
    type Spawner = PerCore;

    fn build(workers: usize) -> Result<Self, String> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (mut handles, mut stops, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..workers {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("tokio-ct-{index}"))
                .spawn(move || {
                    PER_CORE_WORKER.set(Some((id, index)));
                    runtime.block_on(async move {
                        let _ = stopped.await;
                    });
                })
                .map_err(|error| error.to_string())?;
            threads.push(thread);
        }
        Ok(TokioPerCore {
            spawner: PerCore {
                id,
                handles: handles.into(),
                next: Arc::default(),
            },
            stops,
            threads,
        })
    }

    fn spawner(&self) -> PerCore {
        self.spawner.clone()
    }

    fn shutdown(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl Spawn for PerCore {
    type Handle<T: Send + 'static> = Unwrap<tokio::task::JoinHandle<T>>;

    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let worker = match PER_CORE_WORKER.get() {
            Some((id, index)) if id == self.id => index,
            _ => self.next.fetch_add(1, Ordering::Relaxed),
        };
        self.spawn_on(worker, future)
    }

    fn spawn_on<F>(&self, worker: usize, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Unwrap(self.handles[worker % self.handles.len()].spawn(future))
    }
}

// ----- workloads 1–4 ----------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Spawn,
    Chain,
    Yield,
    PingPong,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::Spawn,
        Workload::Chain,
        Workload::Yield,
        Workload::PingPong,
    ];

    fn id(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn",
            Workload::Chain => "chain",
            Workload::Yield => "yield",
            Workload::PingPong => "ping-pong",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Workload::Spawn => "spawn 10k from outside + join (ns/task)",
            Workload::Chain => "chained spawn, 1,000 deep (ns/task)",
            Workload::Yield => "200 tasks × 1,000 yields (ns/yield)",
            Workload::PingPong => "ping-pong, workers 0 ↔ 1 (ns/round trip)",
        }
    }

    fn ops(self) -> u64 {
        match self {
            Workload::Spawn => SPAWN_TASKS,
            Workload::Chain => CHAIN_DEPTH,
            Workload::Yield => YIELD_TASKS * YIELDS_PER_TASK,
            Workload::PingPong => PING_PONG_ROUNDS,
        }
    }
}

fn spawn_many<R: Runtime>(runtime: &R) -> Duration {
    let spawner = runtime.spawner();
    let start = Instant::now();
    let handles: Vec<_> = (0..SPAWN_TASKS).map(|_| spawner.spawn(async {})).collect();
    runtime.block_on(async {
        for handle in handles {
            handle.await;
        }
    });
    start.elapsed()
}

/// Spawns the next link of a chain of `left` tasks; the last one posts to
/// `done`.
fn chain<S: Spawn>(spawner: S, left: u64, done: Arc<Mailbox>) {
    if left == 0 {
        done.send(1);
        return;
    }
    let next = spawner.clone();
    drop(spawner.spawn(async move { chain(next, left - 1, done) }));
}

fn chained_spawn<R: Runtime>(runtime: &R) -> Duration {
    let done = Mailbox::new();
    let start = Instant::now();
    chain(runtime.spawner(), CHAIN_DEPTH, done.clone());
    runtime.block_on(done.recv());
    start.elapsed()
}

async fn yielder() {
    for _ in 0..YIELDS_PER_TASK {
        yield_once().await;
    }
}

fn yield_many<R: Runtime>(runtime: &R) -> Duration {
    let spawner = runtime.spawner();
    let start = Instant::now();
    let handles: Vec<_> = (0..YIELD_TASKS).map(|_| spawner.spawn(yielder())).collect();
    runtime.block_on(async {
        for handle in handles {
            handle.await;
        }
    });
    start.elapsed()
}

/// The echoing side of a ping-pong: answers each ping with its value + 1.
async fn pong_server(ping: Arc<Mailbox>, pong: Arc<Mailbox>) {
    for _ in 0..PING_PONG_ROUNDS {
        let value = ping.recv().await;
        pong.send(value + 1);
    }
}

/// The sending side: `PING_PONG_ROUNDS` round trips.
async fn ping_client(ping: Arc<Mailbox>, pong: Arc<Mailbox>) -> u64 {
    let mut value = 1;
    for _ in 0..PING_PONG_ROUNDS {
        ping.send(value);
        value = pong.recv().await;
    }
    value
}

fn ping_pong<R: Runtime>(runtime: &R) -> Duration {
    let spawner = runtime.spawner();
    let (ping, pong) = (Mailbox::new(), Mailbox::new());
    let start = Instant::now();
    let server = spawner.spawn_on(0, pong_server(ping.clone(), pong.clone()));
    let client = spawner.spawn_on(1, ping_client(ping, pong));
    let last = runtime.block_on(async {
        let last = client.await;
        server.await;
        last
    });
    assert_eq!(last, 1 + PING_PONG_ROUNDS);
    start.elapsed()
}

fn run_workload<R: Runtime>(runtime: &R, workload: Workload) -> Duration {
    match workload {
        Workload::Spawn => spawn_many(runtime),
        Workload::Chain => chained_spawn(runtime),
        Workload::Yield => yield_many(runtime),
        Workload::PingPong => ping_pong(runtime),
    }
}

/// ns per operation, by workload, worker count and column.
type Throughput = BTreeMap<(Workload, usize, &'static str), f64>;
/// The pool's counters over one run, by workload, worker count and column.
type Diagnoses = BTreeMap<(Workload, usize, &'static str), Diagnosis>;

/// Runs workloads 1–4 on a fresh `R` with `workers` workers.
fn throughput<R: Runtime>(
    config: &Config,
    workers: usize,
    results: &mut Throughput,
    diagnoses: &mut Diagnoses,
) {
    let wanted: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| config.wants(w.id(), R::NAME))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let runtime = match R::build(workers) {
        Ok(runtime) => runtime,
        Err(error) => {
            println!("{}: cannot build with {workers} workers: {error}", R::NAME);
            return;
        }
    };
    for workload in wanted {
        let time = measure(config, || run_workload(&runtime, workload));
        let ns = time.as_nanos() as f64 / workload.ops() as f64;
        let mut line = format!(
            "{:<10} {:>2} workers  {:<32} {ns:>10.1} ns/op",
            workload.id(),
            workers,
            R::NAME
        );
        // One more run, between two readings of the pool's counters.
        let diagnosis = runtime.counters().and_then(|before| {
            run_workload(&runtime, workload);
            let after = runtime.counters()?;
            Some(Diagnosis::between(&before, &after, workload.ops()))
        });
        if let Some(d) = diagnosis {
            let _ = write!(
                line,
                "  (per op: {:.2} wake-ups, {:.2} parks; busiest worker {:.2}× the mean)",
                d.wakeups_per_op, d.parks_per_op, d.imbalance
            );
            diagnoses.insert((workload, workers, R::NAME), d);
        }
        println!("{line}");
        results.insert((workload, workers, R::NAME), ns);
    }
    runtime.shutdown();
}

// ----- glommio --------------------------------------------------------------

const GLOMMIO: &str = "glommio";

#[cfg(target_os = "linux")]
mod glommio_peer {
    use super::*;
    use glommio::{LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};
    use std::rc::Rc;
    use std::sync::Barrier;
    use support::Slot;

    type Shards<T> = PoolThreadHandles<Option<T>>;

    /// Starts `workers` glommio executors (unbound), each running
    /// `body(its index)`.
    pub fn start<T, B, F>(workers: usize, body: B) -> Result<Shards<T>, String>
    where
        T: Send + 'static,
        B: Fn(usize) -> F + Clone + Send + 'static,
        F: Future<Output = Option<T>> + 'static,
    {
        let next = Arc::new(AtomicUsize::new(0));
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(workers)).on_all_shards(
                move || {
                    let shard = next.fetch_add(1, Ordering::Relaxed);
                    body(shard)
                },
            )
        }));
        match started {
            Ok(Ok(shards)) => Ok(shards),
            Ok(Err(error)) => Err(format!("{error:?}")),
            Err(_) => Err("panicked while starting".to_string()),
        }
    }

    /// Waits for every shard; the first `Some` any returned.
    pub fn join<T>(shards: Shards<T>) -> Result<Option<T>, String> {
        let mut output = None;
        for result in shards.join_all() {
            match result {
                Ok(value) => output = output.or(value),
                Err(error) => return Err(format!("{error:?}")),
            }
        }
        Ok(output)
    }

    /// Whether glommio starts here (io_uring, locked memory): `Err` with the
    /// reason if not.
    pub fn available() -> Result<(), String> {
        join(start(1, |_| async { Some(()) })?).map(|_| ())
    }

    fn local_chain(left: u64, done: Rc<Slot<u64>>) {
        if left == 0 {
            done.send(1);
            return;
        }
        glommio::spawn_local(async move { local_chain(left - 1, done) }).detach();
    }

    /// Runs `workload` on a fresh pool of `workers` shards, timed as the
    /// other peers are (samples kept in step by a barrier): the median, or
    /// `None` where glommio does not apply.
    pub fn measure(
        config: &Config,
        workers: usize,
        workload: Workload,
    ) -> Result<Option<Duration>, String> {
        if workload == Workload::Spawn {
            return Ok(None);
        }
        let barrier = Arc::new(Barrier::new(workers));
        let stop = Arc::new(AtomicBool::new(false));
        let (ping, pong) = (Mailbox::new(), Mailbox::new());
        let budget = config.budget();
        let server_shard = 1 % workers;
        let shards = start(workers, move |shard| {
            let (barrier, stop) = (barrier.clone(), stop.clone());
            let (ping, pong) = (ping.clone(), pong.clone());
            async move {
                let mut samples = Vec::new();
                let mut warm_up = true;
                let began = Instant::now();
                loop {
                    barrier.wait();
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let start = Instant::now();
                    let elapsed = match workload {
                        Workload::Spawn => unreachable!(),
                        Workload::Chain => {
                            if shard == 0 {
                                let done = Slot::new();
                                local_chain(CHAIN_DEPTH, done.clone());
                                done.recv().await;
                            }
                            start.elapsed()
                        }
                        Workload::Yield => {
                            // The 200 tasks dealt over the shards.
                            let mine = (0..YIELD_TASKS)
                                .filter(|i| *i as usize % workers == shard)
                                .count();
                            let tasks: Vec<_> =
                                (0..mine).map(|_| glommio::spawn_local(yielder())).collect();
                            for task in tasks {
                                task.await;
                            }
                            // Until every shard is done.
                            barrier.wait();
                            start.elapsed()
                        }
                        Workload::PingPong => {
                            let server = (shard == server_shard).then(|| {
                                glommio::spawn_local(pong_server(ping.clone(), pong.clone()))
                            });
                            if shard == 0 {
                                let last = ping_client(ping.clone(), pong.clone()).await;
                                assert_eq!(last, 1 + PING_PONG_ROUNDS);
                            }
                            let elapsed = start.elapsed();
                            if let Some(server) = server {
                                server.await;
                            }
                            elapsed
                        }
                    };
                    if workload != Workload::Yield {
                        barrier.wait();
                    }
                    if shard == 0 {
                        if !std::mem::take(&mut warm_up) {
                            samples.push(elapsed);
                        }
                        let enough = samples.len() >= MIN_SAMPLES
                            && (began.elapsed() >= budget || samples.len() >= MAX_SAMPLES);
                        stop.store(enough, Ordering::Release);
                    }
                }
                (shard == 0).then(|| median(&mut samples))
            }
        })?;
        join(shards)
    }

    /// A pool of `workers` idle shards, each waiting on its mailbox.
    pub struct Idle {
        shards: Shards<()>,
        stops: Arc<[Arc<Mailbox>]>,
    }

    impl Idle {
        pub fn start(workers: usize) -> Result<Idle, String> {
            let stops: Arc<[Arc<Mailbox>]> = (0..workers).map(|_| Mailbox::new()).collect();
            let shards = start(workers, {
                let stops = stops.clone();
                move |shard| {
                    let stop = stops[shard].clone();
                    async move {
                        stop.recv().await;
                        None
                    }
                }
            })?;
            Ok(Idle { shards, stops })
        }

        pub fn stop(self) {
            for stop in self.stops.iter() {
                stop.send(1);
            }
            let _ = join(self.shards);
        }
    }
}

/// Workloads 1–4 on glommio, if it runs here.
fn glommio_throughput(config: &Config, workers: usize, results: &mut Throughput) {
    #[cfg(target_os = "linux")]
    for workload in Workload::ALL {
        if !config.wants(workload.id(), GLOMMIO) {
            continue;
        }
        match glommio_peer::measure(config, workers, workload) {
            Ok(Some(time)) => {
                let ns = time.as_nanos() as f64 / workload.ops() as f64;
                println!(
                    "{:<10} {:>2} workers  {:<32} {ns:>10.1} ns/op",
                    workload.id(),
                    workers,
                    GLOMMIO
                );
                results.insert((workload, workers, GLOMMIO), ns);
            }
            Ok(None) => {}
            Err(error) => println!("glommio: {} failed: {error}", workload.id()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (config, workers, results);
}

// ----- workload 5: foreground latency under background load -----------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
enum Queue {
    Foreground,
    Background,
}

#[derive(Clone, Copy)]
struct Sample {
    /// Spawn → start of its first poll.
    start: Duration,
    /// Spawn → completion.
    total: Duration,
}

/// A foreground request spawned at `sent`.
async fn request(sent: Instant) -> Sample {
    let started = Instant::now();
    spin(REQUEST_WORK);
    Sample {
        start: started - sent,
        total: sent.elapsed(),
    }
}

/// A background task: polls of 50–100 µs of CPU with a yield between, until
/// `stop`; returns the duration of each poll.
async fn background<Y: Future<Output = ()>>(
    stop: Arc<AtomicBool>,
    seed: u64,
    yield_now: fn() -> Y,
) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut polls = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        spin(Duration::from_micros(rng.u64(BACKGROUND_POLL_MICROS)));
        polls.push(began.elapsed());
        yield_now().await;
    }
    polls
}

async fn tokio_yield() {
    tokio::task::yield_now().await;
}

async fn clockworker_yield() {
    clockworker::yield_now().await;
}

/// What one latency configuration measured.
struct Latency {
    name: &'static str,
    workers: usize,
    /// After the warm-up.
    samples: Vec<Sample>,
    /// Every background poll's duration.
    background_polls: Vec<Duration>,
    /// Background CPU time over the background's run, as a share of the
    /// workers' time.
    background_share: f64,
    /// Sends more than 0.5 ms behind schedule (the generator thread was
    /// held up), and the worst lateness.
    late_sends: usize,
    max_lateness: Duration,
}

impl Latency {
    fn quantile(&self, pick: fn(&Sample) -> Duration, q: f64) -> Duration {
        let mut values: Vec<Duration> = self.samples.iter().map(pick).collect();
        values.sort();
        percentile(&values, q)
    }

    fn background_poll(&self, q: f64) -> Duration {
        let mut polls = self.background_polls.clone();
        polls.sort();
        percentile(&polls, q)
    }
}

/// Sends `requests` requests from this thread, one per
/// [`REQUEST_INTERVAL`] on an absolute schedule (sleeping until just before
/// each, spinning the rest), spawning each with `spawn(sent)`; waits for
/// them all.
fn generate<H: Future<Output = Sample>>(
    requests: usize,
    mut spawn: impl FnMut(Instant) -> H,
) -> (Vec<Sample>, usize, Duration) {
    let mut handles = Vec::with_capacity(requests);
    let (mut late_sends, mut max_lateness) = (0, Duration::ZERO);
    let start = Instant::now() + Duration::from_millis(5);
    for i in 0..requests {
        let due = start + REQUEST_INTERVAL * i as u32;
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if left > Duration::from_micros(200) {
                std::thread::sleep(left - Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
        }
        let now = Instant::now();
        let late = now - due;
        max_lateness = max_lateness.max(late);
        if late > Duration::from_micros(500) {
            late_sends += 1;
        }
        handles.push(spawn(now));
    }
    let samples = futures_lite::future::block_on(async {
        let mut samples = Vec::with_capacity(handles.len());
        for handle in handles {
            samples.push(handle.await);
        }
        samples
    });
    (samples, late_sends, max_lateness)
}

/// Background tasks saturating the workers.
struct BackgroundLoad<H> {
    stop: Arc<AtomicBool>,
    began: Instant,
    handles: Vec<H>,
    threads: usize,
}

impl<H: Future<Output = Vec<Duration>>> BackgroundLoad<H> {
    /// Starts [`BACKGROUND_PER_WORKER`] tasks per worker, task `i` with
    /// `spawn(i, stop)`.
    fn start(workers: usize, mut spawn: impl FnMut(usize, Arc<AtomicBool>) -> H) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let began = Instant::now();
        let handles = (0..workers * BACKGROUND_PER_WORKER)
            .map(|i| spawn(i, stop.clone()))
            .collect();
        // Let every worker get busy.
        std::thread::sleep(Duration::from_millis(50));
        BackgroundLoad {
            stop,
            began,
            handles,
            threads: workers,
        }
    }

    /// Stops the tasks: every poll, and the share of the workers' time they
    /// took.
    fn stop(self) -> (Vec<Duration>, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.began.elapsed();
        let polls: Vec<Duration> = futures_lite::future::block_on(async {
            let mut polls = Vec::new();
            for handle in self.handles {
                polls.extend(handle.await);
            }
            polls
        });
        let busy: Duration = polls.iter().sum();
        let share = busy.as_secs_f64() / (elapsed.as_secs_f64() * self.threads as f64);
        (polls, share)
    }
}

fn outcome(
    name: &'static str,
    workers: usize,
    generated: (Vec<Sample>, usize, Duration),
    background: Option<(Vec<Duration>, f64)>,
) -> Latency {
    let (mut samples, late_sends, max_lateness) = generated;
    samples.drain(..WARM_UP_REQUESTS.min(samples.len()));
    let (background_polls, background_share) = background.unwrap_or_default();
    Latency {
        name,
        workers,
        samples,
        background_polls,
        background_share,
        late_sends,
        max_lateness,
    }
}

const POOL_FG_BG: &str = "clockworker pool fg+bg (8:1)";
const POOL_FG: &str = "clockworker pool fg-only";
const TOKIO_FG: &str = "tokio multi-thread fg-only";
const TOKIO_FG_BG: &str = "tokio multi-thread fg+bg";
const TWO_TOKIO: &str = "two tokio multi-thread runtimes (fg, bg)";

fn latency_pool(config: &Config, workers: usize, with_background: bool) -> Latency {
    let pool = with_spin(
        Pool::builder()
            .workers(workers)
            .with_queue(Queue::Foreground, 8)
            .with_queue(Queue::Background, 1),
    )
    .build()
    .expect("valid pool");
    let load = with_background.then(|| {
        BackgroundLoad::start(workers, |i, stop| {
            Unwrap(pool.spawn_on(i % workers, Queue::Background, move || {
                background(stop, i as u64, clockworker_yield)
            }))
        })
    });
    let generated = generate(config.requests(), |sent| {
        Unwrap(pool.spawn(Queue::Foreground, request(sent)))
    });
    let background = load.map(BackgroundLoad::stop);
    let _ = pool.shutdown_blocking();
    let name = if with_background { POOL_FG_BG } else { POOL_FG };
    outcome(name, workers, generated, background)
}

fn latency_tokio(config: &Config, workers: usize, with_background: bool) -> Latency {
    let runtime = tokio_multi(workers, "tokio-mt").expect("tokio runtime");
    let load = with_background.then(|| {
        BackgroundLoad::start(workers, |i, stop| {
            Unwrap(runtime.spawn(background(stop, i as u64, tokio_yield)))
        })
    });
    let generated = generate(config.requests(), |sent| {
        Unwrap(runtime.spawn(request(sent)))
    });
    let background = load.map(BackgroundLoad::stop);
    drop(runtime);
    let name = if with_background {
        TOKIO_FG_BG
    } else {
        TOKIO_FG
    };
    outcome(name, workers, generated, background)
}

fn latency_two_tokio(config: &Config, workers: usize) -> Latency {
    let foreground = tokio_multi(workers, "tokio-fg").expect("tokio runtime");
    let background_runtime = tokio_multi(workers, "tokio-bg").expect("tokio runtime");
    let load = BackgroundLoad::start(workers, |i, stop| {
        Unwrap(background_runtime.spawn(background(stop, i as u64, tokio_yield)))
    });
    let generated = generate(config.requests(), |sent| {
        Unwrap(foreground.spawn(request(sent)))
    });
    let background = load.stop();
    drop(foreground);
    drop(background_runtime);
    outcome(TWO_TOKIO, workers, generated, Some(background))
}

fn latency(config: &Config, workers: usize, outcomes: &mut Vec<Latency>) {
    type Run = fn(&Config, usize) -> Latency;
    let runs: [(&str, Run); 5] = [
        (TOKIO_FG, |c, n| latency_tokio(c, n, false)),
        (TOKIO_FG_BG, |c, n| latency_tokio(c, n, true)),
        (TWO_TOKIO, latency_two_tokio),
        (POOL_FG, |c, n| latency_pool(c, n, false)),
        (POOL_FG_BG, |c, n| latency_pool(c, n, true)),
    ];
    for (name, run) in runs {
        if !config.wants("latency", name) {
            continue;
        }
        let o = run(config, workers);
        println!(
            "latency    {:>2} workers  {:<42} start p50 {:>7} p99 {:>7} µs; done p50 {:>7} p99 {:>7} µs",
            workers,
            o.name,
            us(o.quantile(|s| s.start, 0.5)),
            us(o.quantile(|s| s.start, 0.99)),
            us(o.quantile(|s| s.total, 0.5)),
            us(o.quantile(|s| s.total, 0.99)),
        );
        outcomes.push(o);
    }
}

// ----- workload 6: idle CPU ---------------------------------------------------

struct Idle {
    workers: usize,
    column: &'static str,
    /// % of one core.
    cpu_percent: f64,
    /// Threads scheduled in, per second.
    schedules_per_second: Option<f64>,
    /// clockworker's own parks and wake-ups, per second.
    parks_and_wakeups: Option<(f64, f64)>,
}

/// The process's CPU use over `config.idle_window()`: % of one core, and
/// thread wake-ups per second where the kernel counts them.
fn watch_idle(config: &Config) -> Option<(f64, Option<f64>)> {
    let window = config.idle_window();
    let (cpu0, slices0) = process_cpu()?;
    std::thread::sleep(window);
    let (cpu1, slices1) = process_cpu()?;
    let seconds = window.as_secs_f64();
    let cpu = cpu1.saturating_sub(cpu0).as_secs_f64() / seconds * 100.0;
    let schedules = slices0
        .zip(slices1)
        .map(|(a, b)| b.saturating_sub(a) as f64 / seconds);
    Some((cpu, schedules))
}

fn idle<R: Runtime>(config: &Config, workers: usize, results: &mut Vec<Idle>) {
    if !config.wants("idle", R::NAME) {
        return;
    }
    let Ok(runtime) = R::build(workers) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(200));
    // Asking the pool for its counters wakes its workers: done outside the
    // window, with time to settle.
    let before = runtime.counters();
    std::thread::sleep(Duration::from_millis(50));
    let watched = watch_idle(config);
    let after = runtime.counters();
    runtime.shutdown();
    let Some((cpu_percent, schedules_per_second)) = watched else {
        println!("idle: cannot read this process's CPU time (/proc)");
        return;
    };
    let seconds = config.idle_window().as_secs_f64();
    let parks_and_wakeups = before.zip(after).map(|(before, after)| {
        (
            (after.parks - before.parks) as f64 / seconds,
            (after.wakeups - before.wakeups) as f64 / seconds,
        )
    });
    report_idle(
        workers,
        R::NAME,
        cpu_percent,
        schedules_per_second,
        parks_and_wakeups,
        results,
    );
}

fn report_idle(
    workers: usize,
    column: &'static str,
    cpu_percent: f64,
    schedules_per_second: Option<f64>,
    parks_and_wakeups: Option<(f64, f64)>,
    results: &mut Vec<Idle>,
) {
    let mut line =
        format!("idle       {workers:>2} workers  {column:<32} {cpu_percent:>6.2}% of a core");
    if let Some(s) = schedules_per_second {
        let _ = write!(line, ", {s:.0} thread wake-ups/s");
    }
    if let Some((parks, wakeups)) = parks_and_wakeups {
        let _ = write!(line, ", pool parks {parks:.0}/s, wake-ups {wakeups:.0}/s");
    }
    println!("{line}");
    results.push(Idle {
        workers,
        column,
        cpu_percent,
        schedules_per_second,
        parks_and_wakeups,
    });
}

fn idle_glommio(config: &Config, workers: usize, results: &mut Vec<Idle>) {
    #[cfg(target_os = "linux")]
    {
        if !config.wants("idle", GLOMMIO) {
            return;
        }
        let Ok(shards) = glommio_peer::Idle::start(workers) else {
            return;
        };
        std::thread::sleep(Duration::from_millis(250));
        let watched = watch_idle(config);
        shards.stop();
        if let Some((cpu, schedules)) = watched {
            report_idle(workers, GLOMMIO, cpu, schedules, None, results);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (config, workers, results);
}

// ----- tables ----------------------------------------------------------------

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

const COLUMNS: [&str; 6] = [
    ClockworkerPool::<false>::NAME,
    ClockworkerPool::<true>::NAME,
    TokioMulti::NAME,
    AsyncExecutorThreads::NAME,
    TokioPerCore::NAME,
    GLOMMIO,
];

fn throughput_table(out: &mut String, results: &Throughput, workers: &[usize]) {
    // The columns that ran.
    let columns: Vec<&str> = COLUMNS
        .into_iter()
        .filter(|column| results.keys().any(|(_, _, c)| c == column))
        .collect();
    let _ = write!(out, "| workload | workers |");
    for column in &columns {
        let _ = write!(out, " {column} |");
    }
    let _ = writeln!(out, " pool / tokio multi-thread | pool / best other |");
    let _ = write!(out, "|---|---:|");
    for _ in &columns {
        out.push_str("---:|");
    }
    out.push_str("---:|---:|\n");
    for workload in Workload::ALL {
        for &n in workers {
            let value = |column: &str| results.get(&(workload, n, column)).copied();
            if columns.iter().all(|column| value(column).is_none()) {
                continue;
            }
            let _ = write!(out, "| {} | {n} |", workload.label());
            for column in &columns {
                match value(column) {
                    Some(v) => {
                        let _ = write!(out, " {v:.1} |");
                    }
                    None => out.push_str(" – |"),
                }
            }
            let ours = value(ClockworkerPool::<false>::NAME);
            // The best of the other runtimes (not the pool with stealing).
            let best_other = columns
                .iter()
                .filter(|column| !column.starts_with("clockworker"))
                .filter_map(|column| value(column))
                .reduce(f64::min);
            let ratio = |other: Option<f64>| match (ours, other) {
                (Some(o), Some(t)) if t > 0.0 => format!("{:.2}", o / t),
                _ => "–".to_string(),
            };
            let _ = writeln!(
                out,
                " {} | {} |",
                ratio(value(TokioMulti::NAME)),
                ratio(best_other)
            );
        }
    }
}

/// The pool's counters over one run of each workload: what its time went
/// into.
fn diagnosis_table(out: &mut String, diagnoses: &Diagnoses, workers: &[usize]) {
    if diagnoses.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nclockworker pool, one run of each workload: worker wake-ups (doorbell rings from \
         other threads) and parks per operation, and the tasks placed on the busiest worker \
         over the mean (no stealing: the slowest worker sets the run's time).\n"
    );
    let _ = writeln!(
        out,
        "| workload | workers | column | wake-ups / op | parks / op | busiest worker / mean |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
    for workload in Workload::ALL {
        for &n in workers {
            for ((w, count, column), d) in diagnoses {
                if *w != workload || *count != n {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {n} | {column} | {:.2} | {:.2} | {:.2} |",
                    workload.label(),
                    d.wakeups_per_op,
                    d.parks_per_op,
                    d.imbalance
                );
            }
        }
    }
}

fn latency_table(out: &mut String, outcomes: &[Latency], workers: &[usize]) {
    let _ = writeln!(
        out,
        "| configuration | workers | start delay p50 / p99 (µs) | completion p50 / p99 (µs) | background share of the workers | generator sends > 0.5 ms late (worst, µs) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for &n in workers {
        for o in outcomes.iter().filter(|o| o.workers == n) {
            let share = if o.background_polls.is_empty() {
                "–".to_string()
            } else {
                format!("{:.1}%", o.background_share * 100.0)
            };
            let _ = writeln!(
                out,
                "| {} | {n} | {} / {} | {} / {} | {share} | {} ({}) |",
                o.name,
                us(o.quantile(|s| s.start, 0.5)),
                us(o.quantile(|s| s.start, 0.99)),
                us(o.quantile(|s| s.total, 0.5)),
                us(o.quantile(|s| s.total, 0.99)),
                o.late_sends,
                us(o.max_lateness),
            );
        }
    }
    // The bar.
    for &n in workers {
        let find = |name: &str| outcomes.iter().find(|o| o.workers == n && o.name == name);
        let (Some(ours), Some(baseline)) = (find(POOL_FG_BG), find(TOKIO_FG)) else {
            continue;
        };
        let poll_p50 = ours.background_poll(0.5);
        let poll = ours.background_poll(0.999);
        let _ = writeln!(
            out,
            "\n{n} worker(s): one background poll in the clockworker run: p50 {} µs, p99.9 {} µs (the bar uses p99.9).",
            us(poll_p50),
            us(poll)
        );
        for (what, pick) in [
            (
                "start delay",
                (|s: &Sample| s.start) as fn(&Sample) -> Duration,
            ),
            ("completion", |s: &Sample| s.total),
        ] {
            let mine = ours.quantile(pick, 0.99);
            let bar = baseline.quantile(pick, 0.99) + poll;
            let _ = writeln!(
                out,
                "- clockworker fg+bg p99 {what} {} µs vs bar {} µs (tokio fg-only p99 {} µs + one background poll): {}",
                us(mine),
                us(bar),
                us(baseline.quantile(pick, 0.99)),
                if mine <= bar { "meets" } else { "misses" }
            );
        }
    }
}

fn idle_table(out: &mut String, results: &[Idle], workers: &[usize]) {
    let _ = write!(out, "| workers |");
    let columns: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != ClockworkerPool::<true>::NAME)
        .collect();
    for column in &columns {
        let _ = write!(out, " {column} |");
    }
    let _ = writeln!(out, " clockworker pool parks / wake-ups per s |");
    let _ = write!(out, "|---:|");
    for _ in &columns {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for &n in workers {
        if !results.iter().any(|r| r.workers == n) {
            continue;
        }
        let _ = write!(out, "| {n} |");
        for column in &columns {
            match results
                .iter()
                .find(|r| r.workers == n && r.column == *column)
            {
                Some(r) => {
                    let _ = write!(out, " {:.2}%", r.cpu_percent);
                    if let Some(s) = r.schedules_per_second {
                        let _ = write!(out, " ({s:.0}/s)");
                    }
                    out.push_str(" |");
                }
                None => out.push_str(" – |"),
            }
        }
        match results
            .iter()
            .find(|r| r.workers == n && r.column == ClockworkerPool::<false>::NAME)
            .and_then(|r| r.parks_and_wakeups)
        {
            Some((parks, wakeups)) => {
                let _ = writeln!(out, " {parks:.0} / {wakeups:.0} |");
            }
            None => out.push_str(" – |\n"),
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let config = Config::from_env();
    println!(
        "pool benchmark: workers {:?}{}{}; {} CPUs available",
        config.workers,
        if config.quick { ", quick" } else { "" },
        if config.only.is_empty() {
            String::new()
        } else {
            format!(", only {:?}", config.only)
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    #[cfg(target_os = "linux")]
    let glommio = match glommio_peer::available() {
        Ok(()) => true,
        Err(error) => {
            println!("glommio: unavailable ({error})");
            false
        }
    };
    #[cfg(not(target_os = "linux"))]
    let glommio = false;

    let began = Instant::now();
    let mut throughputs = Throughput::new();
    let mut diagnoses = Diagnoses::new();
    let mut latencies = Vec::new();
    let mut idles = Vec::new();
    for &workers in &config.workers {
        let (t, d) = (&mut throughputs, &mut diagnoses);
        throughput::<ClockworkerPool<false>>(&config, workers, t, d);
        if config.stealing {
            throughput::<ClockworkerPool<true>>(&config, workers, t, d);
        }
        throughput::<TokioMulti>(&config, workers, t, d);
        throughput::<AsyncExecutorThreads>(&config, workers, t, d);
        throughput::<TokioPerCore>(&config, workers, t, d);
        if glommio {
            glommio_throughput(&config, workers, &mut throughputs);
        }
    }
    for &workers in &config.workers {
        latency(&config, workers, &mut latencies);
    }
    for &workers in &config.workers {
        idle::<ClockworkerPool<false>>(&config, workers, &mut idles);
        idle::<TokioMulti>(&config, workers, &mut idles);
        idle::<AsyncExecutorThreads>(&config, workers, &mut idles);
        idle::<TokioPerCore>(&config, workers, &mut idles);
        if glommio {
            idle_glommio(&config, workers, &mut idles);
        }
    }

    let mut out = String::new();
    if !throughputs.is_empty() {
        let _ = writeln!(
            out,
            "### Throughput (median time per operation, ns; lower is better)\n"
        );
        throughput_table(&mut out, &throughputs, &config.workers);
        diagnosis_table(&mut out, &diagnoses, &config.workers);
    }
    if !latencies.is_empty() {
        let _ = writeln!(
            out,
            "\n### Foreground latency under background load (1 request/ms, {} µs each; background: {} tasks per worker, {}–{} µs polls)\n",
            REQUEST_WORK.as_micros(),
            BACKGROUND_PER_WORKER,
            BACKGROUND_POLL_MICROS.start(),
            BACKGROUND_POLL_MICROS.end()
        );
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let crowded: Vec<String> = config
            .workers
            .iter()
            .filter(|&&n| n + 1 > cpus)
            .map(|n| n.to_string())
            .collect();
        if !crowded.is_empty() {
            let _ = writeln!(
                out,
                "With {} worker(s) on {cpus} CPUs, the saturated workers and the request \
                 generator outnumber the CPUs: the operating system preempts workers in \
                 the middle of background polls (see the longest background poll), and \
                 the tails show that as much as the executors.\n",
                crowded.join(", ")
            );
        }
        latency_table(&mut out, &latencies, &config.workers);
    }
    if !idles.is_empty() {
        let _ = writeln!(
            out,
            "\n### Idle: CPU over {:.1} s (% of one core; thread wake-ups per second)\n",
            config.idle_window().as_secs_f64()
        );
        idle_table(&mut out, &idles, &config.workers);
    }
    println!("\n{out}");
    println!("(took {:.0} s)", began.elapsed().as_secs_f64());
    let dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()) + "/bench-results";
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(format!("{dir}/pool.md"), &out);
    }
}
