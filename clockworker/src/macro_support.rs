//! What the macros expand to: spawning by queue handle, spawner, key or the
//! current task's queue, and running a `#[clockworker::main]` body (on one
//! executor, or on a pool's worker 0 with `workers = N`). Reached through
//! `clockworker::__private`; not a public API.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::task::Poll;

use crate::context;
use crate::core::Core;
use crate::error::JoinError;
use crate::handle::Handle;
use crate::join::JoinHandle;
use crate::spawner::Spawner;
use crate::task::TaskLabel;

pub use crate::builder::ExecutorBuilder;
pub use crate::executor::Executor;
pub use crate::key::QueueKey;
pub use crate::pool::{Pool, PoolBuilder};
pub use crate::queue::QueueHandle;
#[cfg(feature = "tokio")]
pub use tokio;

/// The first argument of `spawn!(queue, future)`. Inherent `spawn` methods
/// for queue handles and spawners take precedence over [`SpawnByKey`], which
/// covers every other key type.
#[derive(Debug)]
pub struct Target<T>(pub T);

impl<K: Copy> Target<&QueueHandle<K>> {
    /// `spawn!(queue_handle, future)`.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.0.spawn(future)
    }
}

impl<K: Copy> Target<&Spawner<K>> {
    /// `spawn!(spawner, future)`.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(future)
    }
}

/// `spawn!(key, future)`: the key is looked up on the executor running on
/// this thread.
pub trait SpawnByKey {
    /// Spawns onto the queue with this key.
    ///
    /// # Panics
    ///
    /// Panics if no executor is running on this thread, or if it has no queue
    /// with this key.
    #[track_caller]
    fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static;
}

impl<K: Copy + Eq + Hash + Debug + 'static> SpawnByKey for Target<&K> {
    #[track_caller]
    fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let label = TaskLabel::caller();
        let key = self.0;
        let core = running_executor(|| format!("spawn!({key:?}, ..)"));
        match core.find_queue(key) {
            Ok(index) => core.spawn_local(index, future, label, None),
            Err(unknown) => panic!("spawn!({key:?}, ..): {unknown}"),
        }
    }
}

/// `spawn!(future)`: onto the queue of the task that calls it, or the first
/// queue when called from the `run_until`/`block_on` future.
///
/// # Panics
///
/// Panics if no executor is running on this thread.
#[track_caller]
pub fn spawn_current<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let label = TaskLabel::caller();
    let core = running_executor(|| "spawn!(future)".to_owned());
    core.spawn_local(core.current_queue(), future, label, None)
}

#[track_caller]
fn running_executor(call: impl FnOnce() -> String) -> Rc<Core> {
    match context::current() {
        Some(core) => core,
        None => panic!(
            "{} must be called on a thread that is running a clockworker executor \
             (inside `Executor::run_until`, `Executor::block_on` or a \
             `#[clockworker::main]` function); elsewhere, spawn through a \
             `QueueHandle` or a `Spawner`",
            call()
        ),
    }
}

/// Runs `future` on `executor` inside a new tokio current-thread runtime
/// with IO and timers enabled, in a `LocalSet` (so that
/// `tokio::task::spawn_local` in a task does not panic; such tasks run
/// beside the executor, outside its queues): the body of
/// `#[clockworker::main]`.
///
/// # Panics
///
/// Panics if the tokio runtime cannot be built.
#[cfg(feature = "tokio")]
pub fn block_on_tokio<K, F>(executor: &Executor<K>, future: F) -> F::Output
where
    K: Copy + Eq + Hash + Debug + 'static,
    F: Future,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("clockworker: failed to build the tokio runtime: {err}"));
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(executor.run_until(future)))
}

/// The key type of the typed form of `queues(...)`: an enum that derives
/// `QueueKey`. Only here for its message when the derive is missing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not derive `QueueKey`: add `#[derive(clockworker::QueueKey)]` to it",
    label = "the variants of this enum are used as queue keys",
    note = "the typed form `queues(Enum::Variant = weight, ..)` takes the variants of an enum that derives `QueueKey`"
)]
pub trait TypedKey: QueueKey {}

impl<K: QueueKey> TypedKey for K {}

/// The queue table of the typed form `queues(Queue::A = 8, Queue::B = 1)`:
/// one queue per variant, in declaration order (so that the queue at
/// position `key.index()` is `key`'s), each with the weight that `weight`
/// (an exhaustive `match` generated by the macro) gives it.
pub fn typed_builder<K: TypedKey>(weight: impl Fn(K) -> u32) -> ExecutorBuilder<K> {
    K::ALL.iter().fold(ExecutorBuilder::new(), |builder, &key| {
        builder.with_queue(key, weight(key))
    })
}

/// Builds the executor of a `#[clockworker::main]` / `#[clockworker::test]`.
///
/// # Panics
///
/// Never in practice: the macro has already checked every key and weight at
/// compile time.
pub fn build<K>(builder: ExecutorBuilder<K>) -> Executor<K>
where
    K: Copy + Eq + Hash + Debug + 'static,
{
    builder.build().unwrap_or_else(|err| {
        panic!("clockworker: the queues of `#[clockworker::main]` were checked at compile time, yet the executor could not be built: {err}")
    })
}

/// The handle of a queue that `#[clockworker::main(queues(name = ..))]`
/// declared: the `name` bound in the function's body.
///
/// # Panics
///
/// Never in practice: the macro declared the queue itself.
pub fn queue<K>(executor: &Executor<K>, key: K) -> QueueHandle<K>
where
    K: Copy + Eq + Hash + Debug + 'static,
{
    executor.queue(key).unwrap_or_else(|err| {
        panic!("clockworker: a queue declared by `#[clockworker::main]` is missing: {err}")
    })
}

/// Pins the output type of a `#[clockworker::main]` body to the function's
/// declared return type, so that `?` in the body knows what to convert to.
pub fn body<T, F: Future<Output = T>>(body: F) -> F {
    body
}

/// Stands in for an argument of a `#[clockworker::main]` function that
/// wrongly takes arguments, so that its body still type-checks next to the
/// error that says to remove them. Never called: the crate does not compile.
///
/// # Panics
///
/// Always.
pub fn unreachable_argument<T>() -> T {
    unreachable!("`#[clockworker::main]` functions take no arguments")
}

/// Runs the body of `#[clockworker::main]` / `#[clockworker::test]` on its
/// executor: inside a tokio current-thread runtime with IO and timers (the
/// `tokio` feature), or with no host runtime at all, on
/// [`Executor::block_on`], without it.
#[cfg(feature = "tokio")]
pub fn run_main<K, F>(executor: &Executor<K>, future: F) -> F::Output
where
    K: Copy + Eq + Hash + Debug + 'static,
    F: Future,
{
    block_on_tokio(executor, future)
}

/// Runs the body of `#[clockworker::main]` / `#[clockworker::test]` on its
/// executor: inside a tokio current-thread runtime with IO and timers (the
/// `tokio` feature), or with no host runtime at all, on
/// [`Executor::block_on`], without it.
#[cfg(not(feature = "tokio"))]
pub fn run_main<K, F>(executor: &Executor<K>, future: F) -> F::Output
where
    K: Copy + Eq + Hash + Debug + 'static,
    F: Future,
{
    executor.block_on(future)
}

// ----- `workers = N`: a pool ---------------------------------------------

/// The typed form of `queues(...)` on a pool: [`typed_builder`]'s queue
/// table, on every worker.
pub fn typed_pool_builder<K: TypedKey>(weight: impl Fn(K) -> u32) -> PoolBuilder<K> {
    K::ALL.iter().fold(PoolBuilder::new(), |builder, &key| {
        builder.with_queue(key, weight(key))
    })
}

/// Builds the pool of a `#[clockworker::main(workers = N)]`.
///
/// # Panics
///
/// If a worker cannot start (its thread or its tokio runtime cannot be
/// created). The queues, weights and worker count were checked at compile
/// time.
pub fn build_pool<K>(builder: PoolBuilder<K>) -> Pool<K>
where
    K: Copy + Eq + Hash + Debug + Send + Sync + 'static,
{
    builder.build().unwrap_or_else(|err| {
        panic!("clockworker: the pool of `#[clockworker::main(workers = ..)]` could not be built: {err}")
    })
}

/// The handle of a queue that `#[clockworker::main(workers = N, queues(name
/// = ..))]` declared, on the worker the body runs on: the `name` bound in
/// the function's body.
///
/// # Panics
///
/// Never in practice: the body runs on a worker of the pool the macro
/// built, which has the queue.
pub fn current_queue<K>(key: K) -> QueueHandle<K>
where
    K: Copy + Eq + Hash + Debug + 'static,
{
    Handle::<K>::current().queue(key).unwrap_or_else(|err| {
        panic!("clockworker: a queue declared by `#[clockworker::main]` is missing: {err}")
    })
}

/// What the body of a `#[clockworker::main(workers = N)]` sends back to the
/// calling thread: its output, or its panic's payload.
pub type BodyOutput<T> = Result<T, Box<dyn Any + Send>>;

/// The output of a `#[clockworker::main(workers = N)]` body: it is sent from
/// worker 0 to the calling thread, so it must be `Send`. Named for the
/// compiler's note when it is not ("required for `T` to implement
/// `PoolBodyOutputMustBeSend`"), which the macro places at the function's
/// return type.
pub trait PoolBodyOutputMustBeSend: Send + 'static {}

impl<T: Send + 'static> PoolBodyOutputMustBeSend for T {}

/// Spawns the body of a `#[clockworker::main(workers = N)]` onto worker 0
/// of `pool`, on its first queue: `make` builds the future there (it may
/// be `!Send`). A panic of the body becomes its output's `Err`, with the
/// panic's own payload, so that the calling thread can resume it whole.
#[track_caller]
pub fn spawn_body<K, M, F>(pool: &Pool<K>, make: M) -> JoinHandle<BodyOutput<F::Output>>
where
    K: Copy + Eq + Hash + Debug + Send + Sync + 'static,
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: PoolBodyOutputMustBeSend,
{
    let Some(&key) = pool.keys().first() else {
        panic!("clockworker: the pool of `#[clockworker::main]` has no queue");
    };
    pool.spawn_on(0, key, move || catch_body(make()))
}

/// `body`, with the panics of its polls caught into its output.
async fn catch_body<F: Future>(body: F) -> BodyOutput<F::Output> {
    let mut body = std::pin::pin!(body);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

/// Waits on the calling thread for the body of a
/// `#[clockworker::main(workers = N)]`, then shuts the pool down at once
/// (tasks still running are cancelled, as an executor's are when the body
/// of a `#[clockworker::main]` returns) and returns the body's output.
///
/// # Panics
///
/// With the panic of a task that stopped the pool (`panic = "propagate"`,
/// the default: its message, as the pool's report gives it), else with the
/// body's own panic (its payload, whole).
pub fn finish_pool<K, T>(pool: Pool<K>, body: JoinHandle<BodyOutput<T>>) -> T
where
    K: Copy + Eq + Hash + Debug + Send + Sync + 'static,
{
    let outcome = pool.block_on(body);
    let report = pool.shutdown_now();
    drop(pool);
    let task_panic = report
        .workers
        .iter()
        .find_map(|worker| worker.panic.clone());
    if let Some(message) = task_panic {
        // The root cause: the body may have failed on its handle since.
        std::panic::resume_unwind(Box::new(message));
    }
    match outcome {
        Ok(Ok(output)) => output,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(JoinError::Panic(panic)) => std::panic::resume_unwind(panic.into_panic()),
        Err(error) => panic!(
            "clockworker: the pool of `#[clockworker::main]` stopped before its body finished: {error}"
        ),
    }
}
