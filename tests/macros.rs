//! The macros at run time: what `#[clockworker::main]` / `#[clockworker::test]`
//! build, where `spawn!` puts tasks, what it records, and how it fails.
//! (What must not compile is in `tests/ui/`, driven by `compiletest.rs`.)

use std::any::Any;
use std::cell::Cell;
use std::error::Error;
use std::num::ParseIntError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, JoinHandle, QueueKey, spawn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

/// Explicit discriminants: `index` must still follow declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Tier {
    Gold = 7,
    Silver = 3,
    Bronze = 100,
}

/// A plain enum, as in the seed's examples: a key with no derive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Plain {
    Interactive,
    Batch,
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map(|message| (*message).to_owned())
            .unwrap_or_default(),
    }
}

// ----- #[derive(QueueKey)] ------------------------------------------------

#[test]
fn derive_counts_lists_indexes_and_names_variants_in_declaration_order() {
    assert_eq!(Tier::COUNT, 3);
    assert_eq!(Tier::ALL, [Tier::Gold, Tier::Silver, Tier::Bronze]);
    let indexes: Vec<usize> = Tier::ALL.iter().map(|tier| tier.index()).collect();
    assert_eq!(indexes, [0, 1, 2]);
    let names: Vec<&str> = Tier::ALL.iter().map(|tier| tier.name()).collect();
    assert_eq!(names, ["Gold", "Silver", "Bronze"]);
    // The discriminants themselves are left alone.
    assert_eq!(Tier::Bronze as usize, 100);
    assert_eq!(Queue::COUNT, 2);
    assert_eq!(Queue::Background.index(), 1);
}

#[test]
fn plain_enums_stay_keys_without_the_derive() {
    let executor = ExecutorBuilder::new()
        .with_queue(Plain::Interactive, 4)
        .with_queue(Plain::Batch, 1)
        .build()
        .unwrap();
    let interactive = executor.queue(Plain::Interactive).unwrap();
    let sum = executor.block_on(async {
        let by_key = spawn!(Plain::Batch, async { 20 });
        let by_handle = spawn!(interactive, async { 2 });
        by_key.await.unwrap() + by_handle.await.unwrap()
    });
    assert_eq!(sum, 22);
    assert_eq!(executor.queue_stats(Plain::Batch).unwrap().completed, 1);
    assert_eq!(
        executor.queue_stats(Plain::Interactive).unwrap().completed,
        1
    );
}

// ----- the typed form -------------------------------------------------------

#[clockworker::test(queues(Queue::Foreground = 8, Queue::Background = 1))]
async fn typed_form_builds_one_queue_per_variant_with_its_weight() {
    let executor = clockworker::Handle::<Queue>::current();
    assert_eq!(executor.keys(), Queue::ALL);
    let stats = executor.stats();
    for &key in Queue::ALL {
        assert_eq!(stats.queues[key.index()].key, key);
    }
    assert_eq!(stats.queues[Queue::Foreground.index()].weight, 8);
    assert_eq!(stats.queues[Queue::Background.index()].weight, 1);

    let a = spawn!(Queue::Background, async { 1 });
    let b = spawn!(Queue::Background, async { 2 });
    let c = spawn!(Queue::Foreground, async { 30 });
    assert_eq!(a.await.unwrap() + b.await.unwrap() + c.await.unwrap(), 33);
    assert_eq!(
        executor.queue_stats(Queue::Background).unwrap().completed,
        2
    );
    assert_eq!(
        executor.queue_stats(Queue::Foreground).unwrap().completed,
        1
    );
}

/// The variants may be listed in any order; the queues follow the enum.
#[clockworker::test(queues(Tier::Bronze = 1, Tier::Gold = 16, Tier::Silver = 4))]
async fn typed_form_orders_queues_by_declaration_whatever_the_listing() {
    let executor = clockworker::Handle::<Tier>::current();
    assert_eq!(executor.keys(), Tier::ALL);
    let weights: Vec<u32> = executor.stats().queues.iter().map(|q| q.weight).collect();
    assert_eq!(weights, [16, 4, 1]);
}

// ----- the quick form -------------------------------------------------------

/// Spawns by name from code that is not in the `main` body.
fn spawn_on_fg_by_name() -> JoinHandle<&'static str> {
    spawn!("fg", async { "by name" })
}

#[clockworker::test(queues(fg = 8, bg = 1))]
async fn quick_form_binds_each_name_to_its_queue() {
    let executor = clockworker::Handle::<&str>::current();
    assert_eq!(executor.keys(), ["fg", "bg"]);
    assert_eq!((fg.key(), bg.key()), ("fg", "bg"));
    assert_eq!(executor.queue_stats("fg").unwrap().weight, 8);
    assert_eq!(executor.queue_stats("bg").unwrap().weight, 1);

    let on_bg = spawn!(bg, async { "by handle" });
    let on_fg = spawn_on_fg_by_name();
    assert_eq!(on_bg.await.unwrap(), "by handle");
    assert_eq!(on_fg.await.unwrap(), "by name");
    assert_eq!(executor.queue_stats("bg").unwrap().completed, 1);
    assert_eq!(executor.queue_stats("fg").unwrap().completed, 1);
}

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn spawn_without_a_queue_inherits_the_queue_of_the_spawning_task() {
    let executor = clockworker::Handle::<&str>::current();
    // Outside any task: the first queue.
    assert_eq!(spawn!(async { 1 }).await.unwrap(), 1);
    assert_eq!(executor.queue_stats("fg").unwrap().completed, 1);

    // A task on `bg` and its descendants all run on `bg`.
    let parent = spawn!(bg, async {
        let child = spawn!(async { spawn!(async { 3 }).await.unwrap() });
        child.await.unwrap()
    });
    assert_eq!(parent.await.unwrap(), 3);
    assert_eq!(executor.queue_stats("bg").unwrap().completed, 3);
    assert_eq!(executor.queue_stats("fg").unwrap().completed, 1);
}

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn spawn_onto_a_spawner_from_another_thread() {
    let executor = clockworker::Handle::<&str>::current();
    let spawner = executor.spawner("bg").unwrap();
    let handle = std::thread::spawn(move || spawn!(spawner, async { std::thread::current().id() }))
        .join()
        .unwrap();
    // The task ran on the executor's thread, on `bg`.
    assert_eq!(handle.await.unwrap(), std::thread::current().id());
    assert_eq!(executor.queue_stats("bg").unwrap().completed, 1);
}

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn spawn_takes_a_trailing_comma() {
    let executor = clockworker::Handle::<&str>::current();
    let a = spawn!(bg, async { 1 },);
    let b = spawn!(async { 2 },);
    assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
    assert_eq!(executor.queue_stats("bg").unwrap().completed, 1);
    assert_eq!(executor.queue_stats("fg").unwrap().completed, 1);
}

// ----- no queues ------------------------------------------------------------

#[clockworker::test]
async fn without_queues_there_is_one_queue_named_main() {
    let executor = clockworker::Handle::<&str>::current();
    assert_eq!(executor.keys(), ["main"]);
    assert_eq!(spawn!(async { 1 }).await.unwrap(), 1);
    assert_eq!(spawn!("main", async { 2 }).await.unwrap(), 2);
    assert_eq!(executor.queue_stats("main").unwrap().completed, 2);
}

// ----- labels ---------------------------------------------------------------

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn spawn_records_its_call_site_as_the_label() {
    let line = line!() + 1;
    let by_handle = spawn!(bg, async { 1 });
    assert_eq!(by_handle.label().file(), file!());
    assert_eq!(by_handle.label().line(), line);
    assert_eq!(by_handle.label().to_string(), format!("{}:{line}", file!()));
    let debug = format!("{by_handle:?}");
    assert!(
        debug.contains(&format!("label: {}:{line}", file!())),
        "{debug}"
    );

    // A call spread over several lines is labelled with its first.
    let line = line!() + 1;
    let by_name = spawn!("fg", async { 2 });
    let line_current = line!() + 1;
    let current = spawn!(async { 3 });
    assert_eq!(by_name.label().line(), line);
    assert_eq!(current.label().line(), line_current);
    assert_eq!(
        by_handle.await.unwrap() + by_name.await.unwrap() + current.await.unwrap(),
        6
    );
}

// ----- panics ---------------------------------------------------------------

#[clockworker::test(queues(fg = 1, bg = 1), panic = "catch")]
async fn a_caught_panic_names_the_spawn_site() {
    let executor = clockworker::Handle::<&str>::current();
    let line = line!() + 1;
    let task = spawn!(bg, async { panic!("disk full") });
    let error = task.await.unwrap_err();
    assert!(error.is_panic());
    let message = error.to_string();
    assert!(
        message.contains(&format!("(spawned at {}:{line})", file!())),
        "{message}"
    );
    assert!(message.ends_with("panicked: disk full"), "{message}");
    assert_eq!(executor.queue_stats("bg").unwrap().panicked, 1);
    // The executor and its other tasks carry on.
    assert_eq!(spawn!(bg, async { 2 }).await.unwrap(), 2);
}

#[clockworker::test(queues(fg = 1, bg = 1))]
#[should_panic(expected = "disk full")]
async fn by_default_a_task_panic_panics_the_function() {
    // With `panic = "catch"` this would be an `Err` and the test would fail.
    let _ = spawn!(bg, async { panic!("disk full") }).await;
}

#[clockworker::test(panic = "propagate")]
#[should_panic(expected = "disk full")]
async fn panic_propagate_is_the_default_spelt_out() {
    let _ = spawn!(async { panic!("disk full") }).await;
}

#[test]
fn spawn_by_key_off_an_executor_thread_says_what_to_do() {
    let payload = catch_unwind(|| {
        drop(spawn!("bg", async {}));
    })
    .unwrap_err();
    let message = panic_message(payload);
    assert!(
        message.starts_with(
            "spawn!(\"bg\", ..) must be called on a thread that is running a clockworker executor"
        ),
        "{message}"
    );
    assert!(
        message.contains("spawn through a `QueueHandle` or a `Spawner`"),
        "{message}"
    );

    let payload = catch_unwind(|| {
        drop(spawn!(async {}));
    })
    .unwrap_err();
    assert!(
        panic_message(payload).starts_with("spawn!(future) must be called on a thread"),
        "spawn!(future) off an executor thread"
    );
}

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn spawn_by_an_unknown_key_panics_with_the_queue_names() {
    let payload = catch_unwind(AssertUnwindSafe(|| {
        drop(spawn!("io", async {}));
    }))
    .unwrap_err();
    assert_eq!(
        panic_message(payload),
        r#"spawn!("io", ..): no queue with key "io"; the executor's queues are ["fg", "bg"]"#
    );
    // A key of another type names no queue either.
    let payload = catch_unwind(AssertUnwindSafe(|| {
        drop(spawn!(Queue::Foreground, async {}));
    }))
    .unwrap_err();
    assert!(
        panic_message(payload).ends_with(r#"the executor's queues are ["fg", "bg"]"#),
        "a key of another type"
    );
}

// ----- return values and the host -------------------------------------------

thread_local! {
    static INPUT: Cell<&'static str> = const { Cell::new("") };
}

#[clockworker::main(queues(parse = 1))]
async fn double_the_input() -> Result<u32, ParseIntError> {
    let parsed = spawn!(parse, async { INPUT.get().parse::<u32>() }).await;
    let number = parsed.expect("the parsing task completes")?;
    Ok(number * 2)
}

#[test]
fn main_may_return_a_result_and_use_question_marks() {
    INPUT.set("21");
    assert_eq!(double_the_input(), Ok(42));
    INPUT.set("twenty-one");
    assert!(double_the_input().is_err());
}

#[clockworker::test]
async fn a_test_may_return_a_result() -> Result<(), Box<dyn Error>> {
    let number: u32 = spawn!(async { "7".parse::<u32>() }).await??;
    assert_eq!(number, 7);
    Ok(())
}

#[clockworker::test(queues(fg = 1, bg = 1))]
async fn the_host_is_a_tokio_current_thread_runtime_with_io_and_timers() {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);

    // Timers, from a task.
    let slept = spawn!(bg, async {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        start.elapsed()
    });
    assert!(slept.await.unwrap() >= Duration::from_millis(5));

    // IO: a UDP socket on the loopback interface sends to itself.
    let echoed = spawn!(fg, async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket
            .send_to(b"ping", socket.local_addr().unwrap())
            .await
            .unwrap();
        let mut buffer = [0; 4];
        let (len, _) = socket.recv_from(&mut buffer).await.unwrap();
        buffer[..len].to_vec()
    });
    assert_eq!(echoed.await.unwrap(), b"ping");
}

// ----- `crate = "..."` ------------------------------------------------------

/// Stands in for a renamed clockworker: counts the bodies it runs.
mod renamed {
    pub mod __private {
        use std::cell::Cell;
        use std::fmt::Debug;
        use std::future::Future;
        use std::hash::Hash;

        pub use clockworker::__private::*;

        thread_local! {
            pub static RUNS: Cell<u32> = const { Cell::new(0) };
        }

        pub fn run_main<K, F>(executor: &Executor<K>, future: F) -> F::Output
        where
            K: Copy + Eq + Hash + Debug + 'static,
            F: Future,
        {
            RUNS.set(RUNS.get() + 1);
            clockworker::__private::run_main(executor, future)
        }
    }

    /// A `QueueKey` of its own, to tell where the derive's impl went.
    pub mod keys {
        pub mod __private {
            pub trait QueueKey: Sized + 'static {
                const COUNT: usize;
                const ALL: &'static [Self];
                fn index(self) -> usize;
                fn name(self) -> &'static str;
            }
        }
    }
}

#[clockworker::main(queues(only = 1), crate = "renamed")]
async fn through_a_renamed_crate() -> u32 {
    spawn!(only, async { 7 }).await.unwrap()
}

#[test]
fn crate_option_names_the_path_the_expansion_uses() {
    let runs = renamed::__private::RUNS.get();
    assert_eq!(through_a_renamed_crate(), 7);
    assert_eq!(renamed::__private::RUNS.get(), runs + 1);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
#[clockworker(crate = "renamed::keys")]
enum Elsewhere {
    Left,
    Right,
}

#[test]
fn derive_crate_attribute_names_the_path_the_impl_uses() {
    use renamed::keys::__private::QueueKey as OtherQueueKey;
    // These resolve only if the impl is of the trait at that path.
    assert_eq!(<Elsewhere as OtherQueueKey>::COUNT, 2);
    assert_eq!(
        <Elsewhere as OtherQueueKey>::ALL,
        [Elsewhere::Left, Elsewhere::Right]
    );
    assert_eq!(Elsewhere::Right.index(), 1);
    assert_eq!(<Elsewhere as OtherQueueKey>::name(Elsewhere::Left), "Left");
}

// ----- the attribute on functions that are not `main` ----------------------

thread_local! {
    static BODIES_RUN: Cell<u32> = const { Cell::new(0) };
}

#[clockworker::main(queues(fg = 2, bg = 1))]
async fn count_a_run() -> (u64, u64) {
    let executor = clockworker::Handle::<&str>::current();
    BODIES_RUN.set(BODIES_RUN.get() + 1);
    spawn!(fg, async {}).await.unwrap();
    let stats = executor.stats();
    (stats.queues[0].completed, stats.queues[1].completed)
}

#[test]
fn each_call_builds_a_fresh_executor_and_runtime() {
    let before = BODIES_RUN.get();
    assert_eq!(count_a_run(), (1, 0));
    assert_eq!(count_a_run(), (1, 0));
    assert_eq!(BODIES_RUN.get(), before + 2);
}

// ----- `time_slice = "..."` and `host_yield_interval = "..."` ---------------

/// How many steps each busy task below takes.
const ROUNDS: u64 = 2_000;

/// A task that calls `yield_maybe` between steps: it yields only when its
/// queue's turn is over or the host is due.
async fn busy_steps() {
    for _ in 0..ROUNDS {
        clockworker::yield_maybe().await;
    }
}

/// Runs a busy task on each of `fg` and `bg` to the end and returns each
/// queue's `(slices, polls)`. With `together`, each task keeps stepping
/// until both have taken `ROUNDS` steps, so that both queues stay runnable
/// to the end (the scheduler has a choice at every turn); otherwise each
/// stops after its own `ROUNDS` steps.
async fn two_busy_queues(together: bool) -> [(u64, u64); 2] {
    let steps = Rc::new([Cell::new(0), Cell::new(0)]);
    let task = |me: usize| {
        let steps = Rc::clone(&steps);
        async move {
            let done = || {
                if together {
                    steps.iter().all(|taken| taken.get() >= ROUNDS)
                } else {
                    steps[me].get() >= ROUNDS
                }
            };
            while !done() {
                steps[me].set(steps[me].get() + 1);
                clockworker::yield_maybe().await;
            }
        }
    };
    let fg = spawn!("fg", task(0));
    let bg = spawn!("bg", task(1));
    fg.await.unwrap();
    bg.await.unwrap();
    let executor = clockworker::Handle::<&str>::current();
    ["fg", "bg"].map(|name| {
        let stats = executor.queue_stats(name).unwrap();
        (stats.slices, stats.polls)
    })
}

#[clockworker::test(queues(fg = 1, bg = 1), time_slice = "0us")]
async fn a_zero_time_slice_makes_every_step_a_turn_of_its_own() {
    let queues = two_busy_queues(true).await;
    for (name, (slices, polls)) in ["fg", "bg"].into_iter().zip(queues) {
        // Every turn is over as soon as it starts: every `yield_maybe`
        // yields...
        assert!(polls > ROUNDS, "{name}: {polls} polls");
        // ... and, while the other queue is runnable too, the scheduler
        // picks again before every poll (a margin of two for the last
        // steps, when one task may be done).
        assert!(
            slices >= polls / 2,
            "{name}: {slices} slices for {polls} polls"
        );
    }
}

#[clockworker::test(
    queues(fg = 1, bg = 1),
    time_slice = "1s",
    host_yield_interval = "3600s"
)]
async fn a_long_time_slice_runs_each_task_in_a_few_polls() {
    let queues = two_busy_queues(false).await;
    for (name, (slices, polls)) in ["fg", "bg"].into_iter().zip(queues) {
        // A turn lasts far longer than the task's steps and the host is
        // never due: `yield_maybe` does not yield (or seldom, on a loaded
        // machine), and each task runs its steps in a few turns.
        assert!(polls * 10 <= ROUNDS, "{name}: {polls} polls");
        assert!(slices <= polls, "{name}: {slices} slices for {polls} polls");
    }
}

/// Runs a task that calls `yield_maybe` between steps on the only queue, to
/// the end, and returns the queue's polls and the executor's host yields.
async fn one_busy_queue() -> (u64, u64) {
    spawn!(busy_steps()).await.unwrap();
    let stats = clockworker::Handle::<&str>::current().stats();
    (stats.queues[0].polls, stats.host_yields)
}

#[clockworker::test(host_yield_interval = "0us")]
async fn a_zero_host_yield_interval_hands_control_to_the_host_all_the_time() {
    let (polls, host_yields) = one_busy_queue().await;
    // The host is always due: every `yield_maybe` yields...
    assert!(polls > ROUNDS, "{polls} polls");
    // ... and the executor returns to tokio every few polls (whenever it
    // reads the clock), not once per 500 µs (the default).
    assert!(
        host_yields >= polls / 100,
        "{host_yields} host yields for {polls} polls"
    );
}

#[clockworker::test(host_yield_interval = "3600s")]
async fn an_hour_long_host_yield_interval_never_returns_to_the_host() {
    let (polls, host_yields) = one_busy_queue().await;
    assert!(polls > 0);
    // An hour does not pass here; a busy executor keeps the host waiting.
    assert_eq!(host_yields, 0, "{polls} polls");
}
