//! The examples of the original clockworker README, verbatim, each in its own
//! module (only the surrounding `mod` and the `#[test]` are added): they must
//! compile and run unchanged against this crate.

// The seed's panic example matches a single pattern, as written.
#![allow(clippy::single_match)]

#[rustfmt::skip]
mod basic_usage {
// ---- verbatim from the seed README ----
use clockworker::ExecutorBuilder;
use tokio::task::LocalSet;
#[tokio::main(flavor = "current_thread")]
async fn main() {
let local = LocalSet::new();
local.run_until(async {
// Create executor with a single queue
let executor = ExecutorBuilder::new()
.with_queue(0, 1)
.build()
.unwrap();
// Get handle to the queue
let queue = executor.queue(0).unwrap();
// Run executor until our task completes
let result = executor.run_until(async {
// Spawn a task
let handle = queue.spawn(async {
println!("Hello from clockworker!");
42
});
// Wait for task to complete
handle.await
}).await;
println!("Task result: {:?}", result); // Ok(42)
}).await;
}
// ---- end of verbatim ----

#[test]
fn runs() {
    main();
}
}

#[rustfmt::skip]
mod multiple_queues {
// ---- verbatim from the seed README ----
use clockworker::{ExecutorBuilder, yield_maybe};
use tokio::task::LocalSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
#[derive(Debug, PartialEq, Eq, Hash, Copy, Clone)]
enum Queue {
Foreground,
Background,
}
#[tokio::main(flavor = "current_thread")]
async fn main() {
let local = LocalSet::new();
local.run_until(async {
// Create executor with two queues:
// - Foreground: weight 8 (gets 8/9 of CPU time)
// - Background: weight 1 (gets 1/9 of CPU time)
// Note: Queue IDs can be enums (as shown here) or integers, strings, or any
// type implementing QueueKey
let executor = ExecutorBuilder::new()
.with_queue(Queue::Foreground, 8) // High priority queue
.with_queue(Queue::Background, 1) // Low priority queue
.build()
.unwrap();
let high_count = Arc::new(AtomicU32::new(0));
let low_count = Arc::new(AtomicU32::new(0));
// Spawn tasks in both queues
let high_queue = executor.queue(Queue::Foreground).unwrap();
let low_queue = executor.queue(Queue::Background).unwrap();
let high_clone = high_count.clone();
let low_clone = low_count.clone();
executor.run_until(async {
high_queue.spawn({
let count = high_clone;
async move {
loop {
count.fetch_add(1, Ordering::Relaxed);
yield_maybe().await;
}
}
});
low_queue.spawn({
let count = low_clone;
async move {
loop {
count.fetch_add(1, Ordering::Relaxed);
yield_maybe().await;
}
}
});
// Run for a bit
tokio::time::sleep(tokio::time::Duration::from_millis(100)).await;
}).await;
// After running for a bit, high_count should be ~8x low_count
println!("High: {}, Low: {}",
high_count.load(Ordering::Relaxed),
low_count.load(Ordering::Relaxed));
}).await;
}
// ---- end of verbatim ----

#[test]
fn runs() {
    main();
}
}

#[rustfmt::skip]
mod task_cancellation {
// ---- verbatim from the seed README ----
use clockworker::ExecutorBuilder;
use tokio::task::LocalSet;
use tokio::time::{sleep, Duration};
#[tokio::main(flavor = "current_thread")]
async fn main() {
let local = LocalSet::new();
local.run_until(async {
let executor = ExecutorBuilder::new()
.with_queue(0, 1)
.build()
.unwrap();
let queue = executor.queue(0).unwrap();
executor.run_until(async {
// Spawn a long-running task
let handle = queue.spawn(async {
loop {
println!("Running...");
sleep(Duration::from_millis(100)).await;
}
});
// Cancel it after 500ms
sleep(Duration::from_millis(500)).await;
handle.abort();
// Wait for cancellation to complete
let result = handle.await;
assert!(result.is_err());
println!("Task cancelled: {:?}", result);
}).await;
}).await;
}
// ---- end of verbatim ----

#[test]
fn runs() {
    main();
}
}

#[rustfmt::skip]
mod panic_handling {
// ---- verbatim from the seed README ----
use clockworker::{ExecutorBuilder, JoinError};
use tokio::task::LocalSet;
#[tokio::main(flavor = "current_thread")]
async fn main() {
let local = LocalSet::new();
local.run_until(async {
// Configure executor to catch panics instead of crashing
let executor = ExecutorBuilder::new()
.with_queue(0, 1)
.with_panic_on_task_panic(false) // Catch panics
.build()
.unwrap();
let queue = executor.queue(0).unwrap();
let result = executor.run_until(async {
let handle = queue.spawn(async {
panic!("Something went wrong!");
});
handle.await
}).await;
// Panic is caught and returned as JoinError::Panic
match result {
Err(JoinError::Panic(err)) => {
println!("Task panicked: {}", err);
}
_ => {}
}
}).await;
}
// ---- end of verbatim ----

#[test]
fn runs() {
    main();
}
}
