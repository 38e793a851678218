//! Procedural macros for `clockworker`: `#[clockworker::main]`,
//! `#[clockworker::test]` and `#[derive(clockworker::QueueKey)]`.
//!
//! Use them through the `clockworker` crate, which re-exports them; this
//! crate's version is pinned to the runtime's. Each macro parses its input
//! (`entry::parse`, `syn`), validates it (`entry::validate`; every mistake is
//! reported at its token, with what to write instead) and expands it
//! (`entry::expand`, `queue_key`). The generated code names only `::core`
//! and `clockworker::__private` (or the path given with `crate = "..."`).

mod entry;
mod errors;
mod queue_key;

use proc_macro::TokenStream;

use entry::Entry;

/// Runs an `async fn` on a clockworker executor with the queues you list,
/// inside a tokio current-thread runtime with IO and timers enabled.
///
/// ```
/// use clockworker::spawn;
///
/// #[clockworker::main(queues(fg = 8, bg = 1))]
/// async fn main() {
///     // `fg` and `bg` are the queues' `QueueHandle`s.
///     let cleanup = spawn!(bg, async { "swept" });
///     let answer = spawn!(fg, async { 42 });
///     assert_eq!(answer.await.unwrap(), 42);
///     assert_eq!(cleanup.await.unwrap(), "swept");
/// }
/// ```
///
/// The function becomes a plain `fn` that builds the executor and a tokio
/// current-thread runtime, runs the body on them (as
/// `Executor::run_until`), and returns the body's value. tokio's timers, IO
/// and channels work in the body and in every task; your crate needs no
/// tokio dependency of its own for this.
///
/// # Queues
///
/// - **Quick form**, `queues(fg = 8, bg = 1)`: queues named by identifiers
///   (their keys are the `&'static str`s `"fg"` and `"bg"`). In the body,
///   each name is bound to its queue's `QueueHandle`, for `spawn!(fg, ..)`;
///   anywhere else on the executor's thread, `spawn!("bg", ..)` finds the
///   queue by name.
/// - **Typed form**, `queues(Queue::Foreground = 8, Queue::Background = 1)`:
///   the keys are the variants of an enum that derives `QueueKey`. Every
///   variant must be given a weight, once; the queues are in the enum's
///   declaration order, so that `executor.stats().queues[key.index()]` is
///   `key`'s. Spawn with `spawn!(Queue::Background, ..)`.
/// - **No `queues`**: one queue, named `"main"`.
///
/// A weight is an integer literal from 1 to 1048576: the queue's share of
/// the CPU relative to the other queues while they all have work.
///
/// ```
/// use clockworker::{spawn, QueueKey};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
/// enum Queue {
///     Foreground,
///     Background,
/// }
///
/// #[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1))]
/// async fn main() {
///     let sum = spawn!(Queue::Background, async { (1..=10).sum::<u32>() });
///     assert_eq!(sum.await.unwrap(), 55);
///     // The running executor, for its stats, spawners and queues.
///     let executor = clockworker::Handle::<Queue>::current();
///     assert_eq!(executor.queue_stats(Queue::Background).unwrap().completed, 1);
///     assert_eq!(executor.queue_stats(Queue::Foreground).unwrap().weight, 8);
/// }
/// ```
///
/// # Options
///
/// - `queues(...)`: see above.
/// - `workers = 4`: a pool of 4 worker threads instead of one executor on
///   the calling thread (see [A pool of workers](#a-pool-of-workers)).
/// - `stealing(bg, ..)`: with `workers`, the queues whose queued tasks idle
///   workers may take from busy ones (`PoolBuilder::with_stealing`).
/// - `panic = "propagate"` (the default) or `panic = "catch"`: whether a
///   task's panic panics the function with the task's own payload, or
///   becomes the task's `JoinError::Panic` while the executor carries on
///   (`ExecutorBuilder::with_panic_on_task_panic`; for a pool,
///   `PoolBuilder::with_panic_on_task_panic`).
/// - `time_slice = "200us"`: how long a queue runs, once picked, before the
///   scheduler picks again, unless another queue preempts it or it runs
///   out of tasks (`ExecutorBuilder::with_time_slice`; the default is
///   100 µs). `"0us"` makes the scheduler pick before every poll.
/// - `host_yield_interval = "250us"`: how long the executor may keep
///   polling tasks before it hands control back to tokio, so that tokio's
///   IO and timers run while queues stay busy
///   (`ExecutorBuilder::with_host_yield_interval`; the default is 500 µs).
///   Without the `tokio` feature there is no host, and it has no effect.
/// - `crate = "path"`: the path of the clockworker crate, when your
///   `Cargo.toml` renames it.
///
/// Each option may be given once. A duration is a string of a whole number
/// followed by a unit, `ns`, `us`, `µs`, `ms` or `s`, with no space:
/// `"0us"`, `"500us"`, `"1ms"`. It is checked at compile time. The builder
/// takes any `Duration`, and so does the macro: anything from zero to
/// `u64::MAX` nanoseconds (about 584 years).
///
/// ```
/// use clockworker::{spawn, yield_maybe};
///
/// // Finer turns between the queues, and tokio's timers and IO looked at
/// // at least every millisecond while the queues stay busy.
/// #[clockworker::main(
///     queues(fg = 8, bg = 1),
///     time_slice = "50us",
///     host_yield_interval = "1ms"
/// )]
/// async fn main() {
///     let sweep = spawn!(bg, async {
///         for _ in 0..1_000 {
///             // ... a step of background work ...
///             yield_maybe().await;
///         }
///     });
///     assert_eq!(spawn!(fg, async { 6 * 7 }).await.unwrap(), 42);
///     sweep.await.unwrap();
/// }
/// ```
///
/// In the body, `clockworker::Handle::current()` reaches the executor: its
/// queues, spawners (`handle.spawner(key)`, for other threads) and stats.
/// (The quick form's keys are `&'static str`s, the typed form's the enum.)
///
/// # Return values
///
/// The function may return a value, `Result`s included, and `?` works in
/// its body:
///
/// ```
/// use clockworker::spawn;
///
/// #[clockworker::main]
/// async fn main() -> Result<(), std::num::ParseIntError> {
///     let parsed = spawn!(async { "42".parse::<u32>() }).await.unwrap()?;
///     assert_eq!(parsed, 42);
///     Ok(())
/// }
/// ```
///
/// # A pool of workers
///
/// `workers = N` (an integer literal, 1 or more) builds a thread-per-core
/// `clockworker::Pool` of `N` worker threads instead of one executor on
/// the calling thread. Every worker gets the same queues and weights and
/// the same `time_slice`, `host_yield_interval` and `panic` settings, and
/// hosts its own tokio current-thread runtime (IO and timers). Every
/// option means for a pool what it means for one executor; `stealing(...)`
/// is the one that needs a pool.
///
/// ```
/// use clockworker::spawn;
///
/// #[clockworker::main(workers = 4, queues(fg = 8, bg = 1))]
/// async fn main() {
///     // The body runs on worker 0, and so do the tasks it spawns.
///     let thread = std::thread::current().name().map(str::to_owned);
///     assert_eq!(thread.as_deref(), Some("clockworker-pool-0"));
///     let answer = spawn!(fg, async { 42 });
///     assert_eq!(answer.await.unwrap(), 42);
/// }
/// ```
///
/// The body runs as a task of worker 0, on the first queue
/// (`Pool::spawn_on`), while the calling thread waits for it:
///
/// - `spawn!`, the quick form's names and `clockworker::Handle::current()`
///   in the body reach worker 0's executor: the tasks it spawns run on
///   worker 0 (these take `!Send` futures, so they never move).
///   `clockworker::PoolHandle::current().spawn(key, fut)` spreads `Send`
///   tasks over the workers, and a `stealing(...)` queue lets an idle
///   worker take such tasks, and those of a `Spawner`, off a busy one (see
///   `PoolBuilder::with_stealing` for which tasks may move).
/// - The body may hold values that are not `Send` (it is built on worker 0),
///   but its output is sent back to the calling thread and must be `Send`:
///   return `Box<dyn Error + Send + Sync>` rather than `Box<dyn Error>`. An
///   output that is not `Send` is a compile error at the return type.
/// - When the body returns, the pool shuts down at once: tasks still
///   running are cancelled, as an executor's are when the body of a
///   single-executor `#[clockworker::main]` returns.
/// - A panic of the body panics the function with the body's own payload.
///   With `panic = "propagate"` (the default), a task's panic on any worker
///   stops the whole pool and panics the function with the panic's message
///   (its payload stays on the worker's thread); with `panic = "catch"` it
///   becomes the task's `JoinError::Panic`, as on one executor.
///
/// # Host runtime
///
/// With the `tokio` feature (the default), the host is a new tokio
/// current-thread runtime with IO and timers enabled (one per worker, with
/// `workers`). Without it, the body runs on `Executor::block_on`, with no
/// host runtime.
///
/// # Compile errors
///
/// Mistakes are compile errors that point at the offending token and say
/// what to write instead: the function is not `async` or takes arguments; a
/// queue is given twice; a weight is zero, negative, too large or
/// not an integer literal; a variant is left out of the typed form, is not a
/// variant of the enum, or the enum does not derive `QueueKey`; the typed and
/// quick forms are mixed; an option is unknown (the message lists the valid
/// ones) or given twice; a duration is not such a string, has an unknown
/// unit, is negative or too long; `spawn!(name, ..)` in the body names no
/// declared queue; `workers` is zero, negative, quoted or not an integer
/// literal; `stealing(...)` is given without `workers`, or names a queue
/// that `queues(...)` does not declare, or one twice; the body of a pool
/// returns a type that is not `Send`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::entry(Entry::Main, args.into(), item.into()).into()
}

/// `#[clockworker::main]` for tests: runs an `async fn` test on a fresh
/// clockworker executor inside a fresh tokio current-thread runtime.
///
/// It takes the same options as `#[clockworker::main]` and adds `#[test]`
/// itself (do not add another). Other attributes, such as
/// `#[should_panic]`, go below it. With `workers = N`, the test's body runs
/// on worker 0 of a fresh pool, and the test thread waits for it (see
/// `#[clockworker::main]`'s "A pool of workers").
///
/// ```rust,test_harness
/// use clockworker::spawn;
///
/// #[clockworker::test(queues(fg = 8, bg = 1))]
/// async fn background_tasks_run_on_bg() {
///     let task = spawn!(bg, async { 2 + 2 });
///     assert_eq!(task.await.unwrap(), 4);
///     let executor = clockworker::Handle::<&str>::current();
///     assert_eq!(executor.queue_stats("bg").unwrap().completed, 1);
/// }
///
/// #[clockworker::test]
/// #[should_panic(expected = "boom")]
/// async fn a_task_panic_fails_the_test() {
///     let _ = spawn!(async { panic!("boom") }).await;
/// }
///
/// #[clockworker::test(workers = 2, queues(fg = 8, bg = 1))]
/// async fn on_a_pool() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let number: u32 = spawn!(bg, async { "7".parse::<u32>() }).await??;
///     assert_eq!(number, 7);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::entry(Entry::Test, args.into(), item.into()).into()
}

/// Implements `clockworker::QueueKey` for a fieldless enum: the number of
/// variants, all of them in declaration order, a dense index (`0..COUNT`,
/// in declaration order, whatever the discriminants) and each variant's name.
///
/// The enum must also be `Clone`, `Copy`, `Debug`, `PartialEq`, `Eq` and
/// `Hash`, like any queue key. Deriving `QueueKey` is what makes its variants
/// usable in the typed form of `#[clockworker::main(queues(...))]`; a plain
/// enum without it still works as a key for `ExecutorBuilder::with_queue`.
///
/// ```
/// use clockworker::QueueKey;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
/// enum Queue {
///     Foreground,
///     Background,
/// }
///
/// assert_eq!(Queue::COUNT, 2);
/// assert_eq!(Queue::ALL, [Queue::Foreground, Queue::Background]);
/// assert_eq!(Queue::Background.index(), 1);
/// assert_eq!(Queue::Background.name(), "Background");
/// ```
///
/// It is a compile error to derive it for a struct, a union, an enum with
/// no variants, with generic parameters, or with a variant that has fields.
/// Where the clockworker crate is renamed, say so with
/// `#[clockworker(crate = "path")]` on the enum.
#[proc_macro_derive(QueueKey, attributes(clockworker))]
pub fn derive_queue_key(input: TokenStream) -> TokenStream {
    queue_key::derive(input.into()).into()
}
