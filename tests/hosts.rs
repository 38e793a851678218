//! The executor inside different host runtimes, and what it owes its host:
//! regular yields (so timers and IO run) and a tokio budget that its many
//! tasks do not share.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, yield_maybe, yield_now};
use common::spin;

fn two_queues() -> Executor<&'static str> {
    ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue("bg", 1)
        .build()
        .unwrap()
}

/// Spawns a fan of tasks on both queues, some of which wait on each other,
/// and returns the sum of their outputs (always 1 + 2 + ... + 20 = 210).
async fn workload(executor: &Executor<&'static str>) -> u32 {
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let mut handles = Vec::new();
    for i in 1..=10u32 {
        let inner = bg.spawn(async move {
            yield_now().await;
            i
        });
        handles.push(fg.spawn(async move { inner.await.unwrap() }));
        handles.push(bg.spawn(async move {
            yield_maybe().await;
            10 + i
        }));
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

#[test]
fn runs_under_tokio_current_thread_with_local_set() {
    let runtime = common::tokio_runtime();
    let local = tokio::task::LocalSet::new();
    let executor = two_queues();
    let sum = local.block_on(&runtime, async {
        executor
            .run_until(async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                workload(&executor).await
            })
            .await
    });
    assert_eq!(sum, 210);
}

#[test]
fn runs_under_plain_tokio_block_on() {
    let runtime = common::tokio_runtime();
    let executor = two_queues();
    let sum = runtime.block_on(executor.run_until(workload(&executor)));
    assert_eq!(sum, 210);
}

#[test]
fn runs_under_tokio_multi_thread_block_on() {
    // The executor stays on the thread that calls `block_on`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let executor = two_queues();
    let sum = runtime.block_on(executor.run_until(async {
        let timer = tokio::spawn(tokio::time::sleep(Duration::from_millis(2)));
        timer.await.unwrap();
        workload(&executor).await
    }));
    assert_eq!(sum, 210);
}

#[test]
fn runs_under_smol() {
    let executor = two_queues();
    let bg = executor.queue("bg").unwrap();
    let sum = smol::block_on(executor.run_until(async {
        // A smol timer inside a clockworker task.
        let timed = bg.spawn(async {
            smol::Timer::after(Duration::from_millis(2)).await;
            1
        });
        workload(&executor).await + timed.await.unwrap()
    }));
    assert_eq!(sum, 211);
}

#[test]
fn runs_under_futures_lite_block_on() {
    let executor = two_queues();
    let sum = futures_lite::future::block_on(executor.run_until(workload(&executor)));
    assert_eq!(sum, 210);
}

#[test]
fn runs_on_its_own() {
    let executor = two_queues();
    let sum = executor.block_on(workload(&executor));
    assert_eq!(sum, 210);
}

#[test]
fn tokio_timers_fire_on_time_while_a_queue_stays_busy() {
    let _serial = common::serial();
    let runtime = common::tokio_runtime();
    let executor = two_queues();
    let bg = executor.queue("bg").unwrap();
    let fg = executor.queue("fg").unwrap();
    let lateness = runtime.block_on(executor.run_until(async {
        // Background tasks that never stop: 50 µs of CPU per poll.
        for _ in 0..4 {
            bg.spawn(async {
                loop {
                    spin(Duration::from_micros(50));
                    yield_maybe().await;
                }
            });
        }
        // A foreground task sleeping in a loop, and the run_until future
        // itself sleeping: both must wake on time.
        let sleeper = fg.spawn(async {
            let mut worst = Duration::ZERO;
            for _ in 0..20 {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                worst = worst.max(start.elapsed() - Duration::from_millis(5));
            }
            worst
        });
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let main_late = start.elapsed() - Duration::from_millis(50);
        (main_late, sleeper.await.unwrap())
    }));
    let (main_late, task_late) = lateness;
    // tokio's timer has millisecond resolution; the executor yields to it
    // every 500 µs. Without the yields the busy background would delay the
    // timers for ever; the slack is for a loaded 2-core machine (8 ms was
    // once exceeded while the whole suite ran).
    assert!(
        main_late < Duration::from_millis(25),
        "main late by {main_late:?}"
    );
    assert!(
        task_late < Duration::from_millis(25),
        "task late by {task_late:?}"
    );
    assert!(executor.stats().host_yields > 10);
}

#[test]
fn tokio_budget_is_not_shared_by_all_tasks() {
    let runtime = common::tokio_runtime();
    let executor = two_queues();
    let fg = executor.queue("fg").unwrap();
    let starved = Rc::new(Cell::new(0));
    let ran = Rc::new(Cell::new(0));
    runtime.block_on(executor.run_until(async {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let (starved, ran) = (starved.clone(), ran.clone());
                fg.spawn(async move {
                    // Ten budget units per task: 2,000 in all, far above
                    // tokio's per-task budget of 128.
                    for _ in 0..10 {
                        tokio::task::coop::consume_budget().await;
                    }
                    if !tokio::task::coop::has_budget_remaining() {
                        starved.set(starved.get() + 1);
                    }
                    ran.set(ran.get() + 1);
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }));
    assert_eq!(ran.get(), 200);
    assert_eq!(starved.get(), 0, "tasks found tokio's budget exhausted");
}

#[test]
fn remote_wakes_reach_an_idle_executor_inside_tokio() {
    let runtime = common::tokio_runtime();
    let executor = two_queues();
    let spawner = executor.spawner("fg").unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let producer = std::thread::spawn({
        let count = count.clone();
        move || {
            for i in 0..100 {
                std::thread::sleep(Duration::from_micros(200));
                let count = count.clone();
                tx.send(spawner.spawn(async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    i
                }))
                .unwrap();
            }
        }
    });
    let sum = runtime.block_on(executor.run_until(async {
        let mut sum = 0;
        while let Some(handle) = rx.recv().await {
            sum += handle.await.unwrap();
        }
        sum
    }));
    producer.join().unwrap();
    assert_eq!(sum, 4950);
    assert_eq!(count.load(Ordering::SeqCst), 100);
    assert!(executor.stats().idle_waits > 0);
}

#[test]
fn a_finished_runner_does_not_strand_another_one() {
    let runtime = common::tokio_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let executor = two_queues();
        let fg = executor.queue("fg").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let task = fg.spawn(async move { rx.await.unwrap() });
        // Runner A goes idle, waiting for a wake-up from another thread.
        let runner_a = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run_until(task).await }
        });
        tokio::task::yield_now().await;
        // Runner B, on another tokio task, runs and finishes.
        let runner_b = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run_until(async { 5 }).await }
        });
        assert_eq!(runner_b.await.unwrap(), 5);
        // The remote wake-up must still reach runner A.
        std::thread::spawn(move || tx.send(7).unwrap())
            .join()
            .unwrap();
        let out = tokio::time::timeout(Duration::from_secs(5), runner_a)
            .await
            .expect("runner A was never woken")
            .unwrap();
        assert_eq!(out.unwrap(), 7);
    });
}

#[test]
fn host_yields_continue_with_one_queue_of_tiny_polls() {
    // With a single active queue the clock is read only every few polls;
    // the host still gets its turns on time.
    let _serial = common::serial();
    let runtime = common::tokio_runtime();
    let executor = two_queues();
    let bg = executor.queue("bg").unwrap();
    let worst = runtime.block_on(executor.run_until(async {
        for _ in 0..4 {
            bg.spawn(async {
                loop {
                    yield_now().await;
                }
            });
        }
        let mut worst = Duration::ZERO;
        for _ in 0..10 {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
            worst = worst.max(start.elapsed() - Duration::from_millis(5));
        }
        worst
    }));
    assert!(worst < Duration::from_millis(8), "timer late by {worst:?}");
    let stats = executor.stats();
    assert!(stats.host_yields > 50, "{} host yields", stats.host_yields);
    assert!(stats.queues[1].polls > 10_000);
}

/// A `run_until` future that polls slowly (here: 50 µs per poll, longer
/// than the gap after which the executor hands its host a turn for IO)
/// and wakes itself in a loop must not keep a lighter queue from running
/// while a heavier one is idle: every host turn polls at least one task
/// before it hands control back for IO. (Found in debug builds, where a
/// `stats()` call in such a loop takes that long.)
#[test]
fn a_slow_self_waking_run_until_future_does_not_starve_a_lighter_queue() {
    for host in ["smol", "tokio"] {
        let executor = two_queues();
        let fg = executor.queue("fg").unwrap();
        let bg = executor.queue("bg").unwrap();
        let done = Rc::new(Cell::new(0));
        for queue in [&fg, &fg, &bg, &bg] {
            let done = done.clone();
            queue.spawn(async move {
                yield_now().await;
                yield_now().await;
                done.set(done.get() + 1);
            });
        }
        let started = Instant::now();
        let main = executor.run_until(async {
            while done.get() < 4 && started.elapsed() < Duration::from_secs(5) {
                spin(Duration::from_micros(50));
                yield_now().await;
            }
        });
        match host {
            "smol" => smol::block_on(main),
            _ => common::tokio_runtime().block_on(main),
        }
        assert_eq!(done.get(), 4, "{host}: the tasks did not all finish in 5 s");
    }
}
