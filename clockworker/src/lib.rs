//! A single-threaded async executor with weighted task queues, scheduled in
//! the manner of EEVDF, that runs on top of any async runtime.
//!
//! Latency-sensitive work and background work often share a thread (or one
//! thread per core). With one FIFO run queue, a burst of background tasks
//! delays every request behind it. clockworker gives each class of work its
//! own queue with a weight: between queues, CPU time is shared in proportion
//! to weight, and a queue that wakes with an earlier deadline preempts the
//! running one at the next poll boundary. Inside a queue, a per-queue
//! scheduler (FIFO by default) picks the task, and task groups share a
//! queue fairly between tenants.
//!
//! clockworker is an executor loop, not a whole runtime: it runs inside
//! tokio (current-thread, with or without a `LocalSet`), smol, any
//! `block_on`, or on its own with [`Executor::block_on`], so tokio's IO,
//! timers and channels keep working in its tasks.
//!
//! # Queues and weights
//!
//! An [`ExecutorBuilder`] lists the queues, each with a key of any
//! `Copy + Eq + Hash + Debug` type and a weight (`1..=`[`MAX_WEIGHT`]).
//! [`Executor::queue`] gives a [`QueueHandle`] that spawns any future (`!Send`
//! ones included) on the executor's thread; each spawn returns a
//! [`JoinHandle`]. Weights can change while tasks run
//! ([`Executor::set_weight`], [`Handle::set_weight`],
//! [`QueueHandle::set_weight`], [`Pool::set_weight`]): the change applies by
//! the next poll boundary, and each queue keeps the credit or debt it had.
//!
//! ```
//! use clockworker::{yield_maybe, ExecutorBuilder};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
//! enum Queue { Foreground, Background }
//!
//! let executor = ExecutorBuilder::new()
//!     .with_queue(Queue::Foreground, 8)
//!     .with_queue(Queue::Background, 1)
//!     .build()
//!     .unwrap();
//! let fg = executor.queue(Queue::Foreground).unwrap();
//! let bg = executor.queue(Queue::Background).unwrap();
//!
//! executor.block_on(async {
//!     // Background work that would hog a plain FIFO executor.
//!     bg.spawn(async {
//!         loop {
//!             std::hint::black_box((0..1_000).sum::<u64>());
//!             yield_maybe().await; // a cheap preemption point
//!         }
//!     });
//!     // Foreground requests still get 8/9 of the thread.
//!     let answer = fg.spawn(async { 42 }).await.unwrap();
//!     assert_eq!(answer, 42);
//! });
//! ```
//!
//! # Tasks
//!
//! A [`JoinHandle`] is a future of `Result<T, `[`JoinError`]`>`. Dropping it
//! detaches the task; [`JoinHandle::abort`] drops the task's future on the
//! executor's thread (promptly, even if the task is parked) and the handle
//! then resolves to [`JoinError::Cancelled`]. Every task records where it was
//! spawned ([`TaskLabel`]). [`yield_now`] always yields; [`yield_maybe`]
//! yields only when the running queue should give way.
//!
//! ```
//! use clockworker::{ExecutorBuilder, JoinError};
//!
//! let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
//! let queue = executor.queue(0).unwrap();
//! executor.block_on(async {
//!     let forever = queue.spawn(std::future::pending::<()>());
//!     forever.abort();
//!     assert!(matches!(forever.await, Err(JoinError::Cancelled)));
//! });
//! ```
//!
//! # Reaching the executor: `Handle` and `Spawner`
//!
//! The [`Executor`] owns the tasks: dropping its last clone drops every
//! task's future. A [`Handle`] reaches the executor without owning it
//! ([`Executor::handle`], or [`Handle::current`] from any code the executor
//! runs), for its queues, spawners and stats. A [`Spawner`]
//! ([`Executor::spawner`], [`Handle::spawner`]) is `Send + Sync` and spawns
//! `Send` futures from any thread, waking the executor if it is idle.
//!
//! ```
//! use clockworker::{ExecutorBuilder, Handle};
//!
//! let executor = ExecutorBuilder::new().with_queue("work", 1).build().unwrap();
//! let work = executor.queue("work").unwrap();
//! let total = executor.block_on(work.spawn(async {
//!     // No executor passed around: find it, and hand a spawner to a thread.
//!     let spawner = Handle::<&str>::current().spawner("work").unwrap();
//!     let remote = std::thread::spawn(move || spawner.spawn(async { 20 }))
//!         .join()
//!         .unwrap();
//!     remote.await.unwrap() + 22
//! }));
//! assert_eq!(total.unwrap(), 42);
//! ```
//!
//! # Schedulers inside a queue, and task groups
//!
//! [`ExecutorBuilder::with_queue_scheduler`] gives a queue another policy
//! than FIFO (see [`sched`]): [`Lifo`](sched::Lifo),
//! [`LeastAttainedService`](sched::LeastAttainedService) (short requests
//! overtake long ones), [`WeightedGroups`](sched::WeightedGroups) (CPU shared
//! between task groups by weight, whatever their number of tasks), or your
//! own [`TaskScheduler`](sched::TaskScheduler). [`QueueHandle::group`] and
//! [`Spawner::group`] spawn into a group (a tenant, a stream, a request and
//! its children); a task's children spawned onto its queue join its group.
//!
//! ```
//! use clockworker::{sched::WeightedGroups, ExecutorBuilder};
//!
//! let executor = ExecutorBuilder::new()
//!     .with_queue_scheduler("tenants", 1, WeightedGroups::new())
//!     .build()
//!     .unwrap();
//! let tenants = executor.queue("tenants").unwrap();
//! // While both are busy, tenant 2 gets twice tenant 1's share.
//! let one = tenants.group(1);
//! let two = tenants.group(2).with_weight(2).unwrap();
//! let (a, b) = executor.block_on(async {
//!     (one.spawn(async { 1 }).await, two.spawn(async { 2 }).await)
//! });
//! assert_eq!(a.unwrap() + b.unwrap(), 3);
//! ```
//!
//! # Stats
//!
//! [`Executor::stats`] and [`Executor::queue_stats`] (or the same on a
//! [`Handle`]) return plain snapshots: per queue, polls, CPU time, spawned,
//! completed, cancelled and panicked tasks, runnable tasks, slices,
//! preemptions, lag, queue delay percentiles and the live groups. The
//! executor-wide snapshot prints as a table, and
//! [`ExecutorStats::metrics`] (or [`PoolStats::metrics`]) flattens it into
//! counters and gauges with stable Prometheus names, for whatever metrics
//! client you use (see [`metrics`]).
//!
//! ```
//! let executor = clockworker::ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
//! let q = executor.queue("q").unwrap();
//! executor.block_on(async { q.spawn(async {}).await.unwrap() });
//! let stats = executor.queue_stats("q").unwrap();
//! assert_eq!((stats.spawned, stats.completed, stats.polls), (1, 1, 1));
//! println!("{}", executor.stats());
//! ```
//!
//! # One executor per core: `Pool`
//!
//! A [`Pool`] runs one executor per worker thread, each with the same
//! weighted queues, so fairness between queues holds on every core. Spawns
//! come from any thread ([`Pool::spawn`], placed by load from outside,
//! local from a worker); [`Pool::spawn_on`] builds a `!Send` future on a
//! chosen worker; idle workers sleep until woken; stealing between workers
//! is opt-in per queue ([`PoolBuilder::with_stealing`]); shutdown drains,
//! times out or cancels, and reports what each worker did (see
//! [`pool`]).
//!
//! ```
//! use clockworker::Pool;
//!
//! let pool = Pool::builder()
//!     .workers(2)
//!     .with_queue("requests", 8)
//!     .with_queue("batch", 1)
//!     .with_stealing("batch")
//!     .build()
//!     .unwrap();
//! let jobs: Vec<_> = (0..100u64).map(|i| pool.spawn("batch", async move { i })).collect();
//! let total: u64 = jobs.into_iter().map(|job| pool.block_on(job).unwrap()).sum();
//! assert_eq!(total, 4950);
//! let report = pool.shutdown_blocking();
//! assert_eq!(report.completed(), 100);
//! ```
//!
//! # Timers
//!
//! [`time::sleep`], [`time::timeout`] and [`time::interval`] work on every
//! host, the executor's own `block_on` included, with one timer map per
//! executor and a test clock ([`time::pause`], [`time::advance`]).
//! Periodic jobs ([`Executor::every`], [`Executor::at`], and `cron` with
//! the `cron` feature) run on a queue with misfire and overlap policies
//! (see [`jobs`]).
//!
//! # Macros
//!
//! With the `macros` feature (default), [`#[clockworker::main]`](main) builds
//! the executor and a tokio current-thread host from a list of weighted
//! queues and runs an `async fn` on them (with `workers = N`, a [`Pool`] of
//! `N` such workers, the body running on worker 0);
//! [`#[clockworker::test]`](test) does the same for tests; [`spawn!`] spawns
//! onto a queue handle, a spawner, a key of the running executor or the
//! current task's queue, and labels the task with its call site;
//! [`#[derive(QueueKey)]`](derive@QueueKey) lets an enum's variants name the
//! queues:
//!
//! ```
//! use clockworker::{spawn, Handle, QueueKey};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
//! enum Queue { Foreground, Background }
//!
//! #[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1))]
//! async fn main() {
//!     let h = spawn!(Queue::Foreground, async { 42 });
//!     assert_eq!(h.await.unwrap(), 42);
//!     let stats = Handle::<Queue>::current().queue_stats(Queue::Foreground).unwrap();
//!     assert_eq!(stats.completed, 1);
//! }
//! ```
//!
//! Mistakes in their use (a variant without a weight, a weight of zero, an
//! unknown option, ...) are compile errors that point at the mistake.
//!
//! # Scheduling
//!
//! - Between queues: weighted fair sharing. Over any window in which queues
//!   stay runnable, CPU time splits in proportion to weight, within about one
//!   time slice plus one poll of lag per queue. An idle queue banks no credit.
//!   A queue that becomes runnable with an earlier virtual deadline preempts
//!   the running queue at the next poll boundary, so a heavy queue's woken
//!   task starts after at most about one poll of a lighter queue.
//! - Inside a queue: the queue's [`TaskScheduler`](sched::TaskScheduler),
//!   FIFO by default.
//! - A poll is never interrupted; [`yield_maybe`] is the cheap way to offer a
//!   preemption point inside long computations.
//! - The executor hands control back to its host runtime regularly, so the
//!   host's IO driver and timers run even while queues stay busy (see
//!   [Hosts and IO](#hosts-and-io)).
//! - CPU time is measured as elapsed time (a TSC clock, a few nanoseconds a
//!   read) around each poll, so time the OS or a hypervisor takes from the
//!   thread during a poll is charged to the running queue. The thread's own
//!   CPU clock would not be: but reading it is a system call
//!   (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, about 2 µs on the
//!   development VM), hundreds of times the cost of a poll boundary.
//!
//! The invariants of the scheduler are written down in the source: the
//! EEVDF accounting in `eevdf.rs`, the executor's parts and their
//! invariants in `core.rs`.
//!
//! # Hosts and IO
//!
//! Inside a host runtime ([`Executor::run_until`]), the host's IO driver
//! runs only while the host has control: a socket that became readable
//! wakes its task only then. clockworker hands control back
//!
//! - when nothing is runnable (it waits for the host's wake-up),
//! - after the [host-yield interval](ExecutorBuilder::with_host_yield_interval)
//!   of continuous work (500 µs by default),
//! - and, at most every 20 µs, at a poll boundary where IO may be waiting
//!   for a heavier queue: when a heavier queue than the running one is idle
//!   (its socket may be ready but unseen), when a lighter queue waits while
//!   a heavier one runs (IO arriving for the heavier one is then seen
//!   before it runs dry, so it stays busy and keeps its share), and, at
//!   most every 10 µs, when a heavier queue runs dry with a lighter one
//!   waiting (it keeps its place if IO has come in). Its woken tasks then
//!   preempt the lighter queue as any wake does.
//!
//! A hand-off to an otherwise idle tokio costs about 0.4 µs (measured with
//! 700,000 a second), so these extra hand-offs cost at most about 2% of a
//! thread of 20 µs-or-shorter polls, and nothing when all queues have the
//! same weight, or under [`Executor::block_on`] (no host).
//!
//! On tokio, each hand-off with work still runnable is *deferred* the way
//! `tokio::task::yield_now` is, so tokio polls its IO driver before it polls
//! the executor again (a plain self-wake would let tokio run up to 61
//! scheduler ticks without looking at its sockets). On smol,
//! `smol::block_on` (async-io's) processes IO on every such hand-off. Run
//! `run_until` directly as the future of the host's `block_on` (or as a
//! task of it); on other hosts, IO progresses as that host drives it
//! whenever clockworker hands control back.
//!
//! Inside clockworker tasks, tokio's own task functions escape the queues:
//! `tokio::spawn` runs its future on tokio's scheduler, with no weight;
//! `tokio::task::spawn_local` needs a `LocalSet` around the host (the one
//! `#[clockworker::main]` builds has one) and runs its future beside the
//! executor, not in a queue; `tokio::task::yield_now` defers the task to
//! tokio, so it runs again only when the executor next hands control back
//! (microseconds, against tens of nanoseconds for [`yield_now`]). Spawn with
//! [`spawn!`], a [`QueueHandle`] or a [`Spawner`] instead. Libraries that
//! take an executor (hyper's `rt::Executor`, for HTTP/2) can be given a
//! queue: `examples/http_server.rs` has a ten-line adapter.
//!
//! # Panics
//!
//! By default a task's panic resumes out of [`Executor::run_until`] /
//! [`Executor::block_on`] with the task's own payload; with
//! [`ExecutorBuilder::with_panic_on_task_panic(false)`](ExecutorBuilder::with_panic_on_task_panic)
//! it is caught and delivered as [`JoinError::Panic`]. The remaining panics
//! of the library are documented where they can happen: running an executor
//! inside itself, [`Handle::current`] outside any executor, `spawn!` by key
//! outside any executor, polling a `JoinHandle` again after it completed.
//!
//! # Tracing
//!
//! With the `tracing` feature, every task has a [`tracing`](https://docs.rs/tracing)
//! span, made when the task is spawned:
//!
//! | | |
//! |---|---|
//! | name | `task` |
//! | target | `clockworker::task` |
//! | level | `TRACE` |
//! | `queue` | the queue's key as `Debug` shows it, without the quotes of a string key (`fg`, `Foreground`, `0`) |
//! | `group` | the task's [`GroupId`] as a number; absent for a task in no group |
//! | `task_id` | [`TaskId::as_u64`] |
//! | `spawned_at` | the spawn site, `file:line:column` (the [`TaskLabel`]) |
//!
//! The executor enters the span once for every poll of the task, and the
//! drop of the task's future happens inside it too (the one after its last
//! poll, or an abort's), so events that the task emits nest under it, and
//! a subscriber that times spans (`tracing-subscriber`'s `fmt` layer with
//! `FmtSpan::CLOSE` prints each span's busy and idle time when the task
//! ends) shows which queue and which spawn site spent the time. A task
//! whose future panics, in either panic mode, emits one `ERROR` event with
//! target `clockworker::task`, the message `task panicked` and the panic's
//! message in its `panic` field, inside its span.
//!
//! The spans are at `TRACE` because they are as frequent as polls (a busy
//! executor polls millions of times a second): a subscriber listening at
//! `DEBUG` or above pays nothing for them. Ask for them by target, for
//! example `clockworker::task=trace` with `tracing-subscriber`'s
//! `EnvFilter`. The panic events show at the default levels. Each span is
//! a root span (no parent): a task outlives the code that spawned it; wrap
//! a future in your own span (`tracing::Instrument`) to carry a request's
//! context into a task. A span belongs to the subscriber that was the
//! default where the task was spawned (the global one, usually).
//!
//! Without the feature none of this is compiled: a task and the run loop
//! are the same as if it did not exist. With it, a task that no subscriber
//! traces costs one level check at its spawn and one branch per poll.
//!
//! # Memory
//!
//! A task is one allocation (async-task). After a burst, the executor gives
//! back the memory of its internal tables (the parked-task registry, the
//! run queues, the injector) once they hold far fewer entries than they
//! have room for; this is checked when the executor hands control back to
//! its host, never per poll.
//!
//! # Features
//!
//! - `tokio` (default): task polls run outside tokio's cooperative budget
//!   (see `tokio::task::coop::unconstrained`), so that the executor's many
//!   tasks, polled inside a single tokio task, do not exhaust one shared
//!   budget; `#[clockworker::main]` hosts the executor on a tokio
//!   current-thread runtime. clockworker's own scheduler and host yields
//!   take the budget's place.
//! - `macros` (default): the attribute macros, the derive and `spawn!`.
//! - `cron`: cron jobs (`JobBuilder::cron`), with croner and chrono-tz.
//! - `tracing`: a span per task and an event per task panic (see
//!   [Tracing](#tracing)).

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]

mod builder;
mod clock;
mod close;
mod context;
mod core;
mod doorbell;
mod eevdf;
pub mod error;
mod executor;
mod group;
mod handle;
pub mod jobs;
mod join;
mod key;
#[cfg(all(test, clockworker_loom))]
mod loom_tests;
mod macro_support;
mod macros;
pub mod metrics;
mod park;
pub mod pool;
mod queue;
mod run;
mod runqueue;
pub mod sched;
mod shared;
mod spawner;
mod stall;
mod stats;
mod sync;
mod task;
pub mod time;
mod trace;
mod yield_now;

pub use builder::ExecutorBuilder;
#[cfg(feature = "macros")]
pub use clockworker_macros::{QueueKey, main, test};
pub use close::{Closed, Drain, QueueReport, Shutdown, ShutdownReport};
pub use eevdf::MAX_WEIGHT;
pub use error::{BuildError, JoinError, TaskPanic, TryCurrentError, UnknownQueue, WeightError};
pub use executor::Executor;
pub use group::{GroupHandle, GroupSpawner};
pub use handle::Handle;
pub use join::JoinHandle;
pub use key::QueueKey;
pub use pool::{
    Placement, Pool, PoolBuilder, PoolHandle, PoolQueue, PoolReport, PoolStats, QueueTotals,
    WorkerReport, WorkerStats,
};
pub use queue::QueueHandle;
pub use run::RunUntil;
pub use spawner::Spawner;
pub use stall::{Stall, StallPhase};
pub use stats::{DelayStats, ExecutorStats, GroupStats, QueueStats};
pub use task::{GroupId, TaskId, TaskLabel};
pub use yield_now::{YieldMaybe, YieldNow, yield_maybe, yield_now};

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::macro_support::*;
}

// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
