//! Live weights (`set_weight`): CPU shares follow a change made while every
//! queue stays busy, in both directions, under tokio, smol and the
//! executor's own `block_on`, and on every worker of a pool; a change made
//! from inside a task; the errors for bad input; the stats.
//!
//! Shares are ratios of CPU time over windows of 400 ms of busy work, with
//! a ±25% tolerance that holds on a loaded two-core machine; the
//! timing-sensitive tests run one at a time (`common::serial`).

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clockworker::{
    Executor, ExecutorBuilder, Handle, MAX_WEIGHT, Pool, PoolHandle, WeightError, yield_maybe,
};
use common::{serial, spin};

/// How long each measured window lasts.
const WINDOW: Duration = Duration::from_millis(400);

/// How far a measured ratio of CPU times may be from the ratio of weights.
const TOLERANCE: f64 = 0.25;

/// CPU-bound loop: `step` of spinning per poll, adding the time it spent
/// to `used` (measured by the task itself, not by the executor).
async fn burn(used: Rc<Cell<Duration>>) {
    loop {
        let start = Instant::now();
        spin(Duration::from_micros(20));
        used.set(used.get() + start.elapsed());
        yield_maybe().await;
    }
}

/// Asserts that CPU times `(a, b)` split as weights `(wa, wb)` do, within
/// [`TOLERANCE`].
fn assert_ratio(what: &str, (a, b): (Duration, Duration), (wa, wb): (u32, u32)) {
    let measured = a.as_secs_f64() / b.as_secs_f64();
    let target = f64::from(wa) / f64::from(wb);
    let error = measured / target - 1.0;
    eprintln!(
        "{what}: weights {wa}:{wb}, CPU {a:?} : {b:?} = {measured:.3} (target {target:.3}, {:+.1}%)",
        error * 100.0
    );
    assert!(
        error.abs() < TOLERANCE,
        "{what}: weights {wa}:{wb} but CPU {a:?} : {b:?} = {measured:.3}, {:+.1}% off",
        error * 100.0
    );
}

/// Two queues, `a` and `b`, at 8:1, each with one CPU-bound task.
fn busy_pair() -> (Executor<&'static str>, [Rc<Cell<Duration>>; 2]) {
    let executor = ExecutorBuilder::new()
        .with_queue("a", 8)
        .with_queue("b", 1)
        .build()
        .unwrap();
    let used = [Rc::new(Cell::default()), Rc::new(Cell::default())];
    for (key, used) in ["a", "b"].into_iter().zip(&used) {
        executor.queue(key).unwrap().spawn(burn(used.clone()));
    }
    (executor, used)
}

/// The weight sets the flip test goes through: 8:1 (as built), then 1:8
/// and back to 8:1, each applied while both queues are busy.
const FLIPS: [(u32, u32); 3] = [(8, 1), (1, 8), (8, 1)];

/// CPU time per queue in one window: measured by the tasks, and by the
/// executor (its `busy` stats).
struct Window {
    weights: (u32, u32),
    tasks: (Duration, Duration),
    executor: (Duration, Duration),
}

/// The `run_until`/`block_on` future of the flip test: for each weight set,
/// applies it (from outside any task, while a queue's turn may be in
/// progress) and measures the window that follows. `sleep` is the host's
/// timer.
async fn flip_while_busy<S, F>(
    executor: &Executor<&'static str>,
    used: &[Rc<Cell<Duration>>; 2],
    sleep: S,
) -> Vec<Window>
where
    S: Fn(Duration) -> F,
    F: Future,
{
    let busy = || {
        let stats = executor.stats();
        let busy = |key| stats.queue(key).unwrap().busy;
        (busy("a"), busy("b"))
    };
    // Let both tasks start.
    sleep(Duration::from_millis(20)).await;
    let mut windows = Vec::new();
    for (wa, wb) in FLIPS {
        executor.set_weight("a", wa).unwrap();
        executor.set_weight("b", wb).unwrap();
        let (tasks_before, executor_before) = ((used[0].get(), used[1].get()), busy());
        sleep(WINDOW).await;
        let (tasks_after, executor_after) = ((used[0].get(), used[1].get()), busy());
        windows.push(Window {
            weights: (wa, wb),
            tasks: (
                tasks_after.0 - tasks_before.0,
                tasks_after.1 - tasks_before.1,
            ),
            executor: (
                executor_after.0 - executor_before.0,
                executor_after.1 - executor_before.1,
            ),
        });
    }
    windows
}

fn check_windows(host: &str, executor: &Executor<&'static str>, windows: &[Window]) {
    assert_eq!(windows.len(), FLIPS.len());
    for (i, window) in windows.iter().enumerate() {
        let what = format!("{host}, window {i}");
        assert_ratio(&format!("{what} (tasks)"), window.tasks, window.weights);
        assert_ratio(
            &format!("{what} (executor)"),
            window.executor,
            window.weights,
        );
    }
    let stats = executor.stats();
    let last = FLIPS[FLIPS.len() - 1];
    assert_eq!(stats.queue("a").unwrap().weight, last.0);
    assert_eq!(stats.queue("b").unwrap().weight, last.1);
}

#[test]
fn shares_follow_a_flip_while_busy_under_tokio() {
    let _serial = serial();
    let (executor, used) = busy_pair();
    let runtime = common::tokio_runtime();
    let windows =
        runtime.block_on(executor.run_until(flip_while_busy(&executor, &used, tokio::time::sleep)));
    check_windows("tokio", &executor, &windows);
}

#[test]
fn shares_follow_a_flip_while_busy_under_smol() {
    let _serial = serial();
    let (executor, used) = busy_pair();
    let windows =
        smol::block_on(executor.run_until(flip_while_busy(&executor, &used, smol::Timer::after)));
    check_windows("smol", &executor, &windows);
}

#[test]
fn shares_follow_a_flip_while_busy_under_its_own_block_on() {
    let _serial = serial();
    let (executor, used) = busy_pair();
    let windows = executor.block_on(flip_while_busy(&executor, &used, clockworker::time::sleep));
    check_windows("block_on", &executor, &windows);
}

#[test]
fn a_task_can_flip_the_weights_of_its_own_and_another_queue() {
    let _serial = serial();
    let (executor, used) = busy_pair();
    // A task of queue `a` (the heavy one) makes it the light one, from
    // inside its poll, in the middle of its queue's turn.
    let control = executor.queue("a").unwrap().spawn({
        let used = used.clone();
        async move {
            clockworker::time::sleep(Duration::from_millis(20)).await;
            let handle = Handle::<&str>::current();
            let before = (used[0].get(), used[1].get());
            clockworker::time::sleep(WINDOW).await;
            let at_8_1 = (used[0].get() - before.0, used[1].get() - before.1);
            handle.set_weight("a", 1).unwrap();
            handle.set_weight("b", 8).unwrap();
            assert_eq!(handle.queue_stats("a").unwrap().weight, 1);
            assert_eq!(handle.queue_stats("b").unwrap().weight, 8);
            let before = (used[0].get(), used[1].get());
            clockworker::time::sleep(WINDOW).await;
            let at_1_8 = (used[0].get() - before.0, used[1].get() - before.1);
            (at_8_1, at_1_8)
        }
    });
    let (at_8_1, at_1_8) = executor.block_on(control).unwrap();
    assert_ratio("from a task, before", at_8_1, (8, 1));
    assert_ratio("from a task, after", at_1_8, (1, 8));
}

#[test]
fn a_weight_change_ends_the_running_turn_at_the_next_poll_boundary() {
    // One queue, a slice of a second: `yield_maybe` never yields on its
    // own here. A change of weight ends the turn, so the next
    // `yield_maybe` yields (one more poll); setting the same weight
    // changes nothing (no poll).
    let executor = ExecutorBuilder::new()
        .with_queue("only", 4)
        .with_time_slice(Duration::from_secs(1))
        .build()
        .unwrap();
    let only = executor.queue("only").unwrap();
    let task = only.spawn(async {
        let only = Handle::<&str>::current().queue("only").unwrap();
        for _ in 0..100 {
            only.set_weight(4).unwrap();
            yield_maybe().await;
        }
        let polls_with_same = Handle::<&str>::current().queue_stats("only").unwrap().polls;
        for round in 0..100 {
            only.set_weight(if round % 2 == 0 { 5 } else { 6 }).unwrap();
            yield_maybe().await;
        }
        polls_with_same
    });
    let polls_with_same = executor.block_on(task).unwrap();
    // The stats count finished polls: the one in progress is not in yet.
    assert_eq!(polls_with_same, 0, "setting the same weight ended a turn");
    let stats = executor.queue_stats("only").unwrap();
    assert_eq!(stats.polls, 101, "each change ends the turn: one poll each");
    assert_eq!(stats.weight, 6);
}

#[test]
fn bad_weights_and_keys_are_errors_not_panics() {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let handle = executor.handle();
    let bg = executor.queue("bg").unwrap();

    let zero = handle.set_weight("bg", 0).unwrap_err();
    assert_eq!(
        zero,
        WeightError::Zero {
            key: "\"bg\"".into()
        }
    );
    assert!(zero.is_invalid_weight() && !zero.is_unknown_queue());
    assert_eq!(
        zero.to_string(),
        "cannot give queue \"bg\" weight 0; weights must be at least 1"
    );

    let large = executor.set_weight("fg", MAX_WEIGHT + 1).unwrap_err();
    assert_eq!(
        large,
        WeightError::TooLarge {
            key: "\"fg\"".into(),
            weight: MAX_WEIGHT + 1,
            max: MAX_WEIGHT
        }
    );
    assert_eq!(
        large.to_string(),
        format!(
            "cannot give queue \"fg\" weight {}; weights must be at most {MAX_WEIGHT}",
            MAX_WEIGHT + 1
        )
    );
    assert!(matches!(
        bg.set_weight(u32::MAX),
        Err(WeightError::TooLarge { .. })
    ));
    assert!(matches!(bg.set_weight(0), Err(WeightError::Zero { .. })));

    let unknown = handle.set_weight("nope", 2).unwrap_err();
    assert!(unknown.is_unknown_queue());
    assert_eq!(
        unknown.to_string(),
        "no queue with key \"nope\"; the executor's queues are [\"fg\", \"bg\"]"
    );
    let WeightError::UnknownQueue(inner) = &unknown else {
        unreachable!()
    };
    assert_eq!(inner.key(), "\"nope\"");
    assert!(std::error::Error::source(&unknown).is_some());

    // Nothing changed; the extremes of the range are fine.
    assert_eq!(executor.queue_stats("bg").unwrap().weight, 1);
    handle.set_weight("bg", MAX_WEIGHT).unwrap();
    bg.set_weight(1).unwrap();
    assert_eq!(executor.queue_stats("bg").unwrap().weight, 1);

    // The executor dropped: its handles say so.
    drop(executor);
    assert_eq!(handle.set_weight("bg", 2), Err(WeightError::ExecutorGone));
    assert_eq!(bg.set_weight(2), Err(WeightError::ExecutorGone));
    assert!(bg.set_weight(2).unwrap_err().is_executor_gone());
    // Bad input is still reported as such.
    assert!(handle.set_weight("bg", 0).unwrap_err().is_invalid_weight());
    assert!(handle.set_weight("nope", 2).unwrap_err().is_unknown_queue());
    assert_eq!(handle.stats().queue("bg").unwrap().weight, 1);
}

#[test]
fn stats_show_the_new_weight_at_once_and_it_holds_across_runs() {
    let executor = ExecutorBuilder::new()
        .with_queue(1u8, 3)
        .with_queue(2u8, 5)
        .build()
        .unwrap();
    executor.set_weight(1, 7).unwrap();
    assert_eq!(executor.queue_stats(1).unwrap().weight, 7);
    assert_eq!(executor.queue_stats(2).unwrap().weight, 5);
    // Queued work runs with the new weight; the weight stays.
    let one = executor.queue(1).unwrap();
    let out = executor.block_on(one.spawn(async {
        Handle::<u8>::current().set_weight(2, 9).unwrap();
        1
    }));
    assert_eq!(out.unwrap(), 1);
    let weights: Vec<u32> = executor.stats().queues.iter().map(|q| q.weight).collect();
    assert_eq!(weights, [7, 9]);
    assert!(executor.stats().to_string().contains('9'));
}

/// A pool with two workers, queues `a` (8) and `b` (1), for the pool tests.
fn pool_pair() -> Pool<&'static str> {
    Pool::builder()
        .workers(2)
        .with_queue("a", 8)
        .with_queue("b", 1)
        .build()
        .unwrap()
}

fn pool_weights(pool: &Pool<&'static str>) -> Vec<(u32, u32)> {
    pool.stats()
        .workers
        .iter()
        .map(|worker| {
            let weight = |key| worker.executor.queue(key).unwrap().weight;
            (weight("a"), weight("b"))
        })
        .collect()
}

#[test]
fn a_pools_set_weight_reaches_every_worker() {
    let pool = pool_pair();
    pool.set_weight("b", 5).unwrap();
    assert_eq!(pool_weights(&pool), [(8, 5), (8, 5)]);
    pool.handle().set_weight("a", 2).unwrap();
    assert_eq!(pool_weights(&pool), [(2, 5), (2, 5)]);
    assert_eq!(pool.stats().queue("a").unwrap().weight, 2);

    // From a task on a worker: that worker at once, the other through a
    // call; nothing waits on anything (no deadlock).
    let from_worker = pool.spawn_on(1, "a", || async {
        let pool = PoolHandle::<&str>::current();
        pool.set_weight("a", 3).unwrap();
        let mine = Handle::<&str>::current().queue_stats("a").unwrap().weight;
        let everywhere: Vec<u32> = pool
            .stats()
            .workers
            .iter()
            .map(|w| w.executor.queue("a").unwrap().weight)
            .collect();
        (mine, everywhere)
    });
    let (mine, everywhere) = pool.block_on(from_worker).unwrap();
    assert_eq!(mine, 3);
    assert_eq!(everywhere, [3, 3]);

    // Both workers calling at once, each reaching the other.
    let calls: Vec<_> = (0..2)
        .map(|worker| {
            pool.spawn_on(worker, "b", move || async move {
                let pool = PoolHandle::<&str>::current();
                for round in 0..50u32 {
                    pool.set_weight("b", 1 + (round + worker as u32) % 7)
                        .unwrap();
                    clockworker::yield_now().await;
                }
            })
        })
        .collect();
    for call in calls {
        pool.block_on(call).unwrap();
    }
    pool.set_weight("b", 4).unwrap();
    assert_eq!(pool_weights(&pool), [(3, 4), (3, 4)]);
}

#[test]
fn a_pool_refuses_bad_weights_and_says_when_it_is_gone() {
    let pool = pool_pair();
    let handle = pool.handle();
    assert!(matches!(
        pool.set_weight("b", 0),
        Err(WeightError::Zero { .. })
    ));
    assert!(matches!(
        handle.set_weight("b", MAX_WEIGHT + 1),
        Err(WeightError::TooLarge { weight, max: MAX_WEIGHT, .. }) if weight == MAX_WEIGHT + 1
    ));
    let unknown = handle.set_weight("c", 1).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "no queue with key \"c\"; the executor's queues are [\"a\", \"b\"]"
    );
    // Nothing changed anywhere.
    assert_eq!(pool_weights(&pool), [(8, 1), (8, 1)]);
    pool.shutdown_now();
    assert_eq!(pool.set_weight("b", 2), Err(WeightError::ExecutorGone));
    drop(pool);
    assert_eq!(handle.set_weight("b", 2), Err(WeightError::ExecutorGone));
}

#[test]
fn shares_follow_a_flip_on_every_worker_of_a_pool() {
    let _serial = serial();
    let pool = pool_pair();
    let stop = Arc::new(AtomicBool::new(false));
    // One CPU-bound task per queue on each worker.
    let mut tasks = Vec::new();
    for worker in 0..2 {
        for key in ["a", "b"] {
            let stop = stop.clone();
            tasks.push(pool.spawn_on(worker, key, move || async move {
                while !stop.load(Ordering::Relaxed) {
                    spin(Duration::from_micros(20));
                    yield_maybe().await;
                }
            }));
        }
    }
    let busy = |pool: &Pool<&'static str>| -> Vec<(Duration, Duration)> {
        pool.stats()
            .workers
            .iter()
            .map(|worker| {
                let busy = |key| worker.executor.queue(key).unwrap().busy;
                (busy("a"), busy("b"))
            })
            .collect()
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut windows = Vec::new();
    for (wa, wb) in FLIPS {
        pool.set_weight("a", wa).unwrap();
        pool.set_weight("b", wb).unwrap();
        let before = busy(&pool);
        std::thread::sleep(WINDOW);
        let after = busy(&pool);
        windows.push(((wa, wb), before, after));
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        pool.block_on(task).unwrap();
    }
    for (i, (weights, before, after)) in windows.into_iter().enumerate() {
        for worker in 0..2 {
            let used = (
                after[worker].0 - before[worker].0,
                after[worker].1 - before[worker].1,
            );
            assert_ratio(&format!("pool worker {worker}, window {i}"), used, weights);
        }
    }
    assert_eq!(pool_weights(&pool), [(8, 1), (8, 1)]);
}
