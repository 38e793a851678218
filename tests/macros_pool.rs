//! `#[clockworker::main(workers = N)]` / `#[clockworker::test(workers = N)]`
//! at run time: the body runs on worker 0 of a pool built from the same
//! queue list, `spawn!` reaches that worker's executor, the output and the
//! panics come back to the calling thread, and the pool is shut down when
//! the body returns. (What must not compile is in `tests/ui/pool_*.rs`.)

use std::error::Error;
use std::num::ParseIntError;
use std::panic::catch_unwind;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clockworker::{Handle, QueueKey, spawn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

// ----- where the body runs --------------------------------------------------

#[clockworker::test(workers = 2, queues(fg = 8, bg = 1))]
async fn the_body_runs_on_worker_0_of_a_pool() {
    assert_eq!(thread_name(), "clockworker-pool-0");
    // The worker's executor has the queues, with their weights.
    let executor = Handle::<&str>::current();
    assert_eq!(executor.keys(), ["fg", "bg"]);
    let weights: Vec<u32> = executor.stats().queues.iter().map(|q| q.weight).collect();
    assert_eq!(weights, [8, 1]);
    // Each worker hosts a tokio current-thread runtime.
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
}

#[clockworker::test(workers = 2, queues(fg = 8, bg = 1))]
async fn spawn_reaches_the_executor_of_worker_0() {
    // By handle (bound on the worker), by key, and onto the body's queue.
    let by_handle = spawn!(bg, async { thread_name() });
    let by_key = spawn!("fg", async { 40 });
    let inherited = spawn!(async { 2 });
    assert_eq!(by_handle.await.unwrap(), "clockworker-pool-0");
    assert_eq!(by_key.await.unwrap() + inherited.await.unwrap(), 42);
    let stats = Handle::<&str>::current().stats();
    // The body is the first queue's: `spawn!(future)` went there.
    assert_eq!(stats.queues[0].completed, 2);
    assert_eq!(stats.queues[1].completed, 1);
}

#[clockworker::test(workers = 3, stealing(main))]
async fn without_queues_a_pool_has_one_queue_named_main() {
    assert!(thread_name().starts_with("clockworker-pool-"));
    let executor = Handle::<&str>::current();
    assert_eq!(executor.keys(), ["main"]);
    assert_eq!(spawn!("main", async { 7 }).await.unwrap(), 7);
}

#[clockworker::test(
    workers = 2,
    queues(Queue::Background = 1, Queue::Foreground = 4),
    stealing(Queue::Background)
)]
async fn the_typed_form_builds_the_pool_in_declaration_order() {
    let executor = Handle::<Queue>::current();
    assert_eq!(executor.keys(), Queue::ALL);
    let weights: Vec<u32> = executor.stats().queues.iter().map(|q| q.weight).collect();
    assert_eq!(weights, [4, 1]);
    let sum = spawn!(Queue::Background, async { 20 }).await.unwrap()
        + spawn!(Queue::Foreground, async { 1 }).await.unwrap();
    assert_eq!(sum, 21);
    // The body runs on the first queue in declaration order.
    let own = spawn!(async {}).await;
    assert!(own.is_ok());
    assert_eq!(
        executor.queue_stats(Queue::Foreground).unwrap().completed,
        2
    );
}

#[clockworker::test(workers = 2)]
async fn the_body_may_hold_values_that_are_not_send() {
    let shared = Rc::new(5);
    let copy = shared.clone();
    let task = spawn!(async move { *copy + 1 });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(task.await.unwrap() + *shared, 11);
}

#[clockworker::test(workers = 2, time_slice = "50us", host_yield_interval = "1ms")]
async fn the_tunables_apply_to_every_worker() {
    // Timers work on the worker's host.
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(start.elapsed() >= Duration::from_millis(5));
}

// ----- stealing -----------------------------------------------------------

/// Spawns 64 `Send` tasks of 200 µs of blocking work each onto `bg`
/// through a spawner, and returns the threads they ran on.
async fn spread_over_the_pool() -> Vec<String> {
    let bg = Handle::<&str>::current().spawner("bg").unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let seen = seen.clone();
            spawn!(bg, async move {
                std::thread::sleep(Duration::from_micros(200));
                seen.lock().unwrap().push(thread_name());
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    seen.lock().unwrap().clone()
}

#[clockworker::test(workers = 2, queues(fg = 1, bg = 1), stealing(bg))]
async fn a_pool_with_stealing_queues_runs_every_task() {
    let seen = spread_over_the_pool().await;
    assert_eq!(seen.len(), 64);
    assert!(
        seen.iter()
            .all(|name| name.starts_with("clockworker-pool-"))
    );
    // A `!Send` task on a stealing queue stays on its worker.
    let local = Rc::new(());
    let stays = spawn!(bg, async move { (thread_name(), Rc::strong_count(&local)) });
    assert_eq!(stays.await.unwrap(), ("clockworker-pool-0".to_owned(), 1));
}

/// What `stealing(...)` is for: worker 1 takes queued tasks off worker 0
/// (the body, woken by its first child, sits at the back of the queue and
/// cannot move; the shed skips it).
#[clockworker::test(workers = 2, queues(fg = 1, bg = 1), stealing(bg))]
async fn stealing_lets_the_other_worker_take_spawned_tasks() {
    let seen = spread_over_the_pool().await;
    assert!(
        seen.iter().any(|name| name == "clockworker-pool-1"),
        "no task ran on worker 1: {seen:?}"
    );
}

// ----- return values ----------------------------------------------------------

/// The input of `double_on_a_pool`: a static, as the body runs on another
/// thread than its caller.
static INPUT: Mutex<&str> = Mutex::new("");

#[clockworker::main(workers = 2, queues(parse = 1))]
async fn double_on_a_pool() -> Result<u32, ParseIntError> {
    let input = *INPUT.lock().unwrap();
    let parsed = spawn!(parse, async move { input.parse::<u32>() }).await;
    let number = parsed.expect("the parsing task completes")?;
    Ok(number * 2)
}

#[test]
fn main_on_a_pool_returns_the_body_s_value_to_the_calling_thread() {
    *INPUT.lock().unwrap() = "21";
    assert_eq!(double_on_a_pool(), Ok(42));
    *INPUT.lock().unwrap() = "twenty-one";
    assert!(double_on_a_pool().is_err());
}

#[clockworker::test(workers = 2)]
async fn a_pool_test_may_return_a_result() -> Result<(), Box<dyn Error + Send + Sync>> {
    let number: u32 = spawn!(async { "7".parse::<u32>() }).await??;
    assert_eq!(number, 7);
    Ok(())
}

// ----- panics -----------------------------------------------------------------

#[clockworker::test(workers = 2)]
#[should_panic(expected = "boom in the body")]
async fn a_panic_of_the_body_fails_the_test() {
    panic!("boom in the body");
}

#[clockworker::test(workers = 2, queues(fg = 1, bg = 1))]
#[should_panic(expected = "boom in a task")]
async fn by_default_a_task_panic_fails_the_test() {
    let _ = spawn!(bg, async { panic!("boom in a task") }).await;
    // The pool stops: the body never gets here.
    std::future::pending::<()>().await;
}

#[derive(Debug, PartialEq)]
struct Payload(u32);

#[clockworker::main(workers = 2)]
async fn panics_with_a_payload() {
    std::panic::panic_any(Payload(7));
}

#[test]
fn the_body_s_panic_reaches_the_calling_thread_with_its_payload() {
    let payload = catch_unwind(panics_with_a_payload).unwrap_err();
    assert_eq!(payload.downcast_ref::<Payload>(), Some(&Payload(7)));
}

#[clockworker::test(workers = 2, panic = "catch")]
async fn with_panic_catch_a_task_panic_is_its_join_error() {
    let error = spawn!(async { panic!("caught") }).await.unwrap_err();
    assert!(error.is_panic());
    // The worker carries on.
    assert_eq!(spawn!(async { 1 }).await.unwrap(), 1);
}

// ----- shutdown -----------------------------------------------------------------

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct CountDrop;

impl Drop for CountDrop {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[clockworker::main(workers = 2)]
async fn leaves_a_task_running() -> usize {
    let _forever = spawn!(async {
        let _guard = CountDrop;
        std::future::pending::<()>().await;
    });
    spawn!(async {}).await.unwrap();
    Handle::<&str>::current().stats().live_tasks
}

#[test]
fn tasks_left_running_are_cancelled_when_the_body_returns() {
    let before = DROPPED.load(Ordering::Relaxed);
    assert!(leaves_a_task_running() >= 1);
    assert_eq!(DROPPED.load(Ordering::Relaxed), before + 1);
}
