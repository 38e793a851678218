//! A single-threaded async executor with weighted task queues, scheduled in
//! the manner of EEVDF, that runs on top of any async runtime.
//!
//! Latency-sensitive work and background work often share a thread (or one
//! thread per core). With one FIFO run queue, a burst of background tasks
//! delays every request behind it. clockworker gives each class of work its
//! own queue with a weight: between queues, CPU time is shared in proportion
//! to weight (EEVDF: virtual time, lag, deadlines, preemption at poll
//! boundaries); inside a queue, tasks run in FIFO order.
//!
//! clockworker is an executor loop, not a whole runtime: it runs inside
//! tokio (current-thread, with or without a `LocalSet`), smol, any
//! `block_on`, or on its own with [`Executor::block_on`], so tokio's IO,
//! timers and channels keep working in its tasks.
//!
//! # Example
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
//!             yield_maybe().await;
//!         }
//!     });
//!     // Foreground requests still get 8/9 of the thread.
//!     let answer = fg.spawn(async { 42 }).await.unwrap();
//!     assert_eq!(answer, 42);
//! });
//! ```
//!
//! # Macros
//!
//! With the `macros` feature (default), [`#[clockworker::main]`](main) builds
//! the executor and a tokio current-thread host from a list of weighted
//! queues and runs an `async fn main` on them; [`#[clockworker::test]`](test)
//! does the same for tests; [`spawn!`] spawns onto a queue handle, a
//! spawner, a key of the running executor or the current task's queue, and
//! labels the task with its call site; [`#[derive(QueueKey)]`](derive@QueueKey)
//! lets an enum's variants name the queues:
//!
//! ```
//! use clockworker::{spawn, QueueKey};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
//! enum Queue { Foreground, Background }
//!
//! #[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1))]
//! async fn main() {
//!     let h = spawn!(Queue::Foreground, async { 42 });
//!     assert_eq!(h.await.unwrap(), 42);
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
//! - Inside a queue: FIFO.
//! - A poll is never interrupted; [`yield_maybe`] is the cheap way to offer a
//!   preemption point inside long computations.
//! - The executor hands control back to its host runtime regularly, so the
//!   host's IO driver and timers run even while queues stay busy.
//!
//! The invariants of the scheduler are written down in the source of the
//! `eevdf` module.
//!
//! # Panics
//!
//! By default a task's panic resumes out of [`Executor::run_until`] /
//! [`Executor::block_on`] with the task's own payload; with
//! [`ExecutorBuilder::with_panic_on_task_panic(false)`](ExecutorBuilder::with_panic_on_task_panic)
//! it is caught and delivered as [`JoinError::Panic`].
//!
//! # Features
//!
//! - `tokio` (default): task polls run outside tokio's cooperative budget
//!   (see `tokio::task::coop::unconstrained`), so that the executor's many
//!   tasks, polled inside a single tokio task, do not exhaust one shared
//!   budget. clockworker's own scheduler and host yields take its place.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]

mod builder;
mod clock;
mod context;
mod core;
mod eevdf;
mod error;
mod executor;
mod group;
mod handle;
mod join;
mod key;
mod macro_support;
mod macros;
mod queue;
mod run;
mod runqueue;
pub mod sched;
mod shared;
mod spawner;
mod stats;
mod task;
mod yield_now;

pub use builder::ExecutorBuilder;
#[cfg(feature = "macros")]
pub use clockworker_macros::{QueueKey, main, test};
pub use eevdf::MAX_WEIGHT;
pub use error::{BuildError, JoinError, TaskPanic, TryCurrentError, UnknownQueue};
pub use executor::Executor;
pub use group::{GroupHandle, GroupSpawner};
pub use handle::Handle;
pub use join::JoinHandle;
pub use key::QueueKey;
pub use queue::QueueHandle;
pub use run::RunUntil;
pub use spawner::Spawner;
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
