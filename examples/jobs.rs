//! Periodic jobs on a background queue beside foreground requests: a cron
//! job (every second, on the wall clock) and an interval job (every 300 ms)
//! on `Background` (weight 1), while `Foreground` (weight 8) serves a
//! request every 10 ms and two background tasks burn the rest of the CPU.
//! Prints when each job run was due, how late it started, and the
//! requests' latency.
//!
//! `cargo run --release --example jobs`

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::jobs::JobContext;
use clockworker::{ExecutorBuilder, time, yield_maybe};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

fn burn(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn main() {
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("valid queues");
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();
    let log: Rc<RefCell<Vec<(&str, JobContext)>>> = Rc::default();
    let started = Instant::now();

    let latencies = executor.block_on(async {
        // Background load that never stops: 200 µs of CPU per poll.
        for _ in 0..2 {
            bg.spawn(async {
                loop {
                    burn(Duration::from_micros(200));
                    yield_maybe().await;
                }
            });
        }
        let cron_log = log.clone();
        let cron = executor
            .handle()
            .cron(Queue::Background, "* * * * * *", "UTC", move |ctx| {
                cron_log.borrow_mut().push(("cron  ", ctx));
                async {}
            })
            .expect("a valid cron expression");
        let every_log = log.clone();
        let every = executor
            .every(Queue::Background, Duration::from_millis(300), move |ctx| {
                every_log.borrow_mut().push(("every ", ctx));
                async { burn(Duration::from_millis(1)) }
            })
            .expect("a non-zero period");
        // Foreground requests: 100 µs of work each, one every 10 ms.
        let mut latencies = Vec::new();
        let until = Instant::now() + Duration::from_millis(2_500);
        while Instant::now() < until {
            let sent = Instant::now();
            fg.spawn(async { burn(Duration::from_micros(100)) })
                .await
                .unwrap();
            latencies.push(sent.elapsed());
            time::sleep(Duration::from_millis(10)).await;
        }
        cron.cancel();
        every.cancel();
        latencies
    });

    println!("job runs (due relative to start, started how late):");
    for (name, ctx) in log.borrow().iter() {
        println!(
            "  {name} run {:>2}: due at {:>7.1} ms, started {:>6.0} µs late",
            ctx.runs,
            ctx.due.saturating_duration_since(started).as_secs_f64() * 1e3,
            ctx.started.saturating_duration_since(ctx.due).as_secs_f64() * 1e6,
        );
    }
    let mut sorted = latencies.clone();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "{} foreground requests: latency p50 {:?}, p99 {:?} (two background tasks saturate the thread)",
        sorted.len(),
        at(0.5),
        at(0.99)
    );
}
