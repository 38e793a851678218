//! Scheduling between queues, measured: CPU shares as ratios over long
//! windows, the no-banked-credit rule, and wake-up latency. The tests run
//! one at a time (`common::serial`) and use tolerances that hold on a noisy
//! two-core machine.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, yield_maybe};
use common::{quantile, serial, spin};

/// CPU-bound loop: `step` of spinning per poll, adding the time it spent
/// to `used` (measured by the task itself, not by the executor).
async fn burn(step: Duration, used: Rc<Cell<Duration>>) {
    loop {
        let start = Instant::now();
        spin(step);
        used.set(used.get() + start.elapsed());
        yield_maybe().await;
    }
}

/// Runs one CPU-bound task per queue for `window` under tokio and returns
/// the CPU time each task measured.
fn measure_shares(weights: &[u32], window: Duration) -> (Vec<Duration>, Executor<usize>) {
    let mut builder = ExecutorBuilder::new();
    for (key, &weight) in weights.iter().enumerate() {
        builder = builder.with_queue(key, weight);
    }
    let executor = builder.build().unwrap();
    let used: Vec<_> = weights.iter().map(|_| Rc::new(Cell::default())).collect();
    for (key, used) in used.iter().enumerate() {
        let queue = executor.queue(key).unwrap();
        queue.spawn(burn(Duration::from_micros(20), used.clone()));
    }
    let runtime = common::tokio_runtime();
    runtime.block_on(executor.run_until(async { tokio::time::sleep(window).await }));
    (used.iter().map(|u| u.get()).collect(), executor)
}

fn assert_shares(used: &[Duration], weights: &[u32], tolerance: f64) {
    let total: f64 = used.iter().map(|d| d.as_secs_f64()).sum();
    let weight_total: u32 = weights.iter().sum();
    for (q, (u, &w)) in used.iter().zip(weights).enumerate() {
        let share = u.as_secs_f64() / total;
        let ideal = f64::from(w) / f64::from(weight_total);
        let error = (share - ideal).abs() / ideal;
        eprintln!(
            "weights {weights:?} queue {q}: share {share:.4}, ideal {ideal:.4}, error {:.2}%",
            error * 100.0
        );
        assert!(
            error < tolerance,
            "queue {q}: share {share:.4} vs ideal {ideal:.4} ({:.1}% off); used {used:?}",
            error * 100.0
        );
    }
}

#[test]
fn weights_8_to_1_split_cpu_8_to_1() {
    let _serial = serial();
    let weights = [8, 1];
    let (used, executor) = measure_shares(&weights, Duration::from_secs(1));
    assert_shares(&used, &weights, 0.10);
    // The executor's own accounting agrees.
    let busy: Vec<_> = executor.stats().queues.iter().map(|q| q.busy).collect();
    assert_shares(&busy, &weights, 0.10);
}

#[test]
fn weights_1_2_4_split_cpu_1_2_4() {
    let _serial = serial();
    let weights = [1, 2, 4];
    let (used, _) = measure_shares(&weights, Duration::from_secs(1));
    assert_shares(&used, &weights, 0.10);
}

#[test]
fn a_queue_that_slept_gets_its_share_not_the_whole_thread() {
    let _serial = serial();
    let executor = ExecutorBuilder::new()
        .with_queue("always", 1)
        .with_queue("sleeper", 1)
        .build()
        .unwrap();
    let always_used = Rc::new(Cell::new(Duration::ZERO));
    let sleeper_used = Rc::new(Cell::new(Duration::ZERO));
    let always = executor.queue("always").unwrap();
    let sleeper = executor.queue("sleeper").unwrap();
    let runtime = common::tokio_runtime();
    let (always_in_window, sleeper_in_window) = runtime.block_on(executor.run_until(async {
        always.spawn(burn(Duration::from_micros(20), always_used.clone()));
        // The sleeper queue is idle for 400 ms while the other one runs.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let always_before = always_used.get();
        sleeper.spawn(burn(Duration::from_micros(20), sleeper_used.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        (always_used.get() - always_before, sleeper_used.get())
    }));
    // Equal weights: about half each after the wake. A sleeper that banked
    // 400 ms of credit would have taken all 200 ms.
    let share =
        sleeper_in_window.as_secs_f64() / (sleeper_in_window + always_in_window).as_secs_f64();
    eprintln!("sleeper share after waking: {share:.4}");
    assert!(
        (0.4..0.6).contains(&share),
        "sleeper share {share:.3} ({sleeper_in_window:?} vs {always_in_window:?})"
    );
}

/// One run of the remote-wake latency measurement: returns the latencies
/// (send to poll) and, for each request, how many background polls started
/// in between.
fn remote_wake_run(requests: usize) -> (Vec<Duration>, Vec<u64>, u64) {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    // Background tasks hog the CPU in 50 µs steps, counting the steps they
    // start.
    let bg_steps = Arc::new(AtomicU64::new(0));
    for _ in 0..8 {
        let bg_steps = bg_steps.clone();
        bg.spawn(async move {
            loop {
                bg_steps.fetch_add(1, Ordering::SeqCst);
                spin(Duration::from_micros(50));
                yield_maybe().await;
            }
        });
    }
    // Each request carries its send time and the background step count at
    // send time.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, u64)>();
    let steps_in = bg_steps.clone();
    let observed = fg.spawn(async move {
        let mut latencies = Vec::with_capacity(requests);
        let mut bg_polls_between = Vec::with_capacity(requests);
        while let Some((sent, steps_at_send)) = rx.recv().await {
            latencies.push(sent.elapsed());
            bg_polls_between.push(steps_in.load(Ordering::SeqCst) - steps_at_send);
        }
        (latencies, bg_polls_between)
    });
    let sender = std::thread::spawn(move || {
        for _ in 0..requests {
            std::thread::sleep(Duration::from_millis(1));
            tx.send((Instant::now(), bg_steps.load(Ordering::SeqCst)))
                .unwrap();
        }
    });
    let (latencies, bg_polls) = executor.block_on(observed).unwrap();
    sender.join().unwrap();
    let preemptions = executor.queue_stats("fg").unwrap().preemptions;
    (latencies, bg_polls, preemptions)
}

#[test]
fn heavy_queue_woken_from_another_thread_starts_within_2ms_at_p99() {
    let _serial = serial();
    const REQUESTS: usize = 500;
    let mut best_p99 = Duration::MAX;
    for attempt in 1..=3 {
        let (mut latencies, mut bg_polls, preemptions) = remote_wake_run(REQUESTS);
        assert_eq!(latencies.len(), REQUESTS);
        assert!(preemptions > 0);
        let p50 = quantile(&mut latencies, 0.5);
        let p99 = quantile(&mut latencies, 0.99);
        let max = quantile(&mut latencies, 1.0);
        bg_polls.sort();
        let polls_p99 = bg_polls[REQUESTS * 99 / 100];
        let polls_max = bg_polls[REQUESTS - 1];
        eprintln!(
            "attempt {attempt}: remote wake to poll: p50 {p50:?}, p99 {p99:?}, max {max:?}; \
             background polls started in between: p99 {polls_p99}, max {polls_max}"
        );
        // Counted in background polls, which does not depend on how the OS
        // schedules this thread, this must hold every time: the poll running
        // when the wake lands may finish, and one more may start between
        // reading the counter and sending.
        assert!(polls_p99 <= 2, "background polls in between: {bg_polls:?}");
        best_p99 = best_p99.min(p99);
        if best_p99 < Duration::from_millis(2) {
            break;
        }
    }
    // In wall time, as the project promises. Another process hogging the
    // machine's two cores can delay this thread for milliseconds, so the
    // best of three runs counts.
    assert!(best_p99 < Duration::from_millis(2), "best p99 {best_p99:?}");
}

#[test]
fn light_queue_gets_its_first_slice_promptly_at_99_to_1() {
    let _serial = serial();
    let executor = ExecutorBuilder::new()
        .with_queue("heavy", 99)
        .with_queue("light", 1)
        .build()
        .unwrap();
    let heavy = executor.queue("heavy").unwrap();
    let light = executor.queue("light").unwrap();
    let start = Instant::now();
    let first_light_poll = executor.block_on(async {
        heavy.spawn(burn(Duration::from_micros(20), Rc::default()));
        light.spawn(async move { start.elapsed() }).await.unwrap()
    });
    eprintln!("99:1 light queue first poll after {first_light_poll:?}");
    // One heavy slice (100 µs by default) comes first; allow slack.
    assert!(
        first_light_poll < Duration::from_millis(5),
        "waited {first_light_poll:?}"
    );
}

#[test]
fn yield_maybe_yields_about_once_per_slice() {
    let _serial = serial();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_time_slice(Duration::from_micros(500))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let elapsed = executor.block_on(queue.spawn(async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            yield_maybe().await;
        }
        start.elapsed()
    }));
    let stats = executor.queue_stats(0).unwrap();
    // 100 ms in 500 µs slices: each `Pending` from yield_maybe is one more
    // poll, so about 200 polls, not millions and not one.
    assert!(
        (100..=400).contains(&stats.polls),
        "{} polls in {:?}",
        stats.polls,
        elapsed
    );
}

#[test]
fn a_queue_waking_during_tiny_polls_runs_next() {
    // Queue "busy" runs sub-microsecond polls, so while it is the only
    // active queue the executor reads the clock only every few polls. When
    // the busy task wakes a heavier queue's task, that task must still run
    // before the busy task's next poll.
    let executor = ExecutorBuilder::new()
        .with_queue("urgent", 8)
        .with_queue("busy", 1)
        .build()
        .unwrap();
    let urgent = executor.queue("urgent").unwrap();
    let busy = executor.queue("busy").unwrap();
    let busy_polls = Rc::new(Cell::new(0u64));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let observed = urgent.spawn({
        let busy_polls = busy_polls.clone();
        async move {
            let mut late = Vec::new();
            while let Some(at_wake) = rx.recv().await {
                late.push(busy_polls.get() - at_wake);
            }
            late
        }
    });
    busy.spawn({
        let busy_polls = busy_polls.clone();
        async move {
            for round in 1..=100_000u64 {
                busy_polls.set(round);
                if round % 1_000 == 0 {
                    tx.send(round).unwrap();
                }
                clockworker::yield_now().await;
            }
            drop(tx);
        }
    });
    let late = executor.block_on(observed).unwrap();
    assert_eq!(late.len(), 100);
    assert!(late.iter().all(|&polls| polls == 0), "{late:?}");
}
