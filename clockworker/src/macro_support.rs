//! What the macros expand to: spawning by queue handle, spawner, key or the
//! current task's queue, and running a `#[clockworker::main]` body. Reached
//! through `clockworker::__private`; not a public API.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;

use crate::context;
use crate::core::Core;
use crate::executor::{QueueHandle, Spawner};
use crate::join::JoinHandle;
use crate::task::TaskLabel;

pub use crate::builder::ExecutorBuilder;
pub use crate::executor::Executor;
pub use crate::key::QueueKey;
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

impl<K> Target<&Spawner<K>> {
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
            Ok(index) => core.spawn_local(index, future, label),
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
    core.spawn_local(core.current_queue(), future, label)
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
/// with IO and timers enabled: the body of `#[clockworker::main]`.
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
    runtime.block_on(executor.run_until(future))
}
