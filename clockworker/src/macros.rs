//! `spawn!`: spawn onto a queue handle, a spawner, a key of the running
//! executor, or the current task's queue, recording the spawn site.

/// Spawns a task: `spawn!(queue, future)` or `spawn!(future)`.
///
/// `queue` may be
///
/// - a [`QueueHandle`](crate::QueueHandle) (the quick form of
///   [`#[clockworker::main]`](crate::main) binds one to each queue's name),
/// - a [`Spawner`](crate::Spawner) (the future must then be `Send`; this
///   works from any thread),
/// - or a key (`"bg"`, `Queue::Background`, `3`), looked up on the executor
///   running on this thread.
///
/// `spawn!(future)` spawns onto the queue of the task that calls it, so that
/// children inherit their parent's queue; called from the body of
/// `#[clockworker::main]` (or any `run_until`/`block_on` future, outside a
/// task), it spawns onto the first queue.
///
/// Either way it returns the task's [`JoinHandle`](crate::JoinHandle) and
/// records the call site (`file:line`) as the task's
/// [label](crate::JoinHandle::label), which the handle's `Debug` and the
/// message of a caught panic show.
///
/// # Examples
///
/// ```
/// use clockworker::spawn;
///
/// #[clockworker::main(queues(fg = 8, bg = 1))]
/// async fn main() {
///     // By handle: `bg` is bound by the quick form.
///     let parent = spawn!(bg, async {
///         // No queue: the child runs on its parent's queue, `bg`.
///         spawn!(async { 20 }).await.unwrap() + 1
///     });
///     // By key: any code on the executor's thread can find a queue.
///     let other = spawn!("fg", async { 21 });
///     // The task is labelled with the line of its `spawn!`.
///     assert_eq!(other.label().line(), line!() - 2);
///     assert_eq!(parent.await.unwrap() + other.await.unwrap(), 42);
/// }
/// ```
///
/// # Panics
///
/// `spawn!(key, future)` and `spawn!(future)` panic when no executor is
/// running on this thread (spawn through a `QueueHandle` or a `Spawner`
/// there instead); `spawn!(key, future)` panics when the executor has no
/// queue with that key, naming the queues it has.
///
/// ```should_panic
/// // Not on an executor's thread: panics with what to do instead.
/// clockworker::spawn!("bg", async {});
/// ```
///
/// It is a compile error to call it with no arguments or more than two.
#[macro_export]
macro_rules! spawn {
    () => {
        ::core::compile_error!(
            "`spawn!` needs a future: write `spawn!(queue, future)` or `spawn!(future)`"
        )
    };
    ($queue:expr, $future:expr $(,)?) => {{
        // Handles and spawners take their inherent `spawn`; keys fall back
        // to this trait.
        #[allow(unused_imports)]
        use $crate::__private::SpawnByKey as _;
        $crate::__private::Target(&$queue).spawn($future)
    }};
    ($future:expr $(,)?) => {
        $crate::__private::spawn_current($future)
    };
    ($queue:expr, $future:expr, $($extra:tt)+) => {
        ::core::compile_error!(
            "`spawn!` takes at most two arguments: write `spawn!(queue, future)` or `spawn!(future)`"
        )
    };
}
