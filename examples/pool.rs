//! A foreground/background split on every core, with clockworker's
//! thread-per-core `Pool`: each worker runs a `Foreground` queue (weight 8)
//! and a `Background` queue (weight 1). Background tasks keep every worker
//! busy; a client thread sends a steady stream of foreground requests. After
//! two seconds the example prints how each worker's CPU time split between
//! the queues and the requests' latency, then shuts the pool down and
//! prints its report.
//!
//! Run with `cargo run --release --example pool`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clockworker::{Pool, QueueKey, yield_now};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

/// How long the load runs.
const RUN_FOR: Duration = Duration::from_secs(2);
/// Background tasks per worker, and the CPU time of each of their polls.
const BACKGROUND_PER_WORKER: usize = 2;
const BACKGROUND_POLL: Duration = Duration::from_micros(100);
/// Each request's CPU time, and how many a second reach each worker (on
/// average: the pool places each on the less loaded of two workers).
const REQUEST_WORK: Duration = Duration::from_micros(100);
const REQUESTS_PER_WORKER_PER_SECOND: u32 = 2_000;

/// Busy-waits: stands in for real CPU work.
fn work(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Background work: endless batches, with a yield after each, until
/// `stop`.
async fn background(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        work(BACKGROUND_POLL);
        yield_now().await;
    }
}

/// A foreground request spawned at `sent`: its start delay (spawn → first
/// poll) and its total latency (spawn → done).
async fn request(sent: Instant) -> (Duration, Duration) {
    let started = Instant::now();
    work(REQUEST_WORK);
    (started - sent, sent.elapsed())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

fn main() {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let pool = Pool::builder()
        .workers(workers)
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .thread_name("example-worker")
        .build()
        .expect("valid pool configuration");
    let rate = REQUESTS_PER_WORKER_PER_SECOND * workers as u32;
    println!(
        "clockworker Pool: {workers} workers, each with a Foreground queue (weight 8) and a \
         Background queue (weight 1)"
    );
    println!(
        "Background: {BACKGROUND_PER_WORKER} tasks on every worker, {} of CPU per poll, a yield \
         between polls",
        us(BACKGROUND_POLL)
    );
    println!(
        "Foreground: {rate} requests/s from a client thread, {} of CPU each\n",
        us(REQUEST_WORK)
    );

    // Saturate every worker.
    let stop = Arc::new(AtomicBool::new(false));
    for worker in 0..workers {
        for _ in 0..BACKGROUND_PER_WORKER {
            let stop = stop.clone();
            drop(pool.spawn_on(worker, Queue::Background, move || background(stop)));
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let before = pool.stats();

    // The client: requests on a fixed schedule, each spawned from this
    // thread (outside the pool) at its due time.
    let interval = Duration::from_secs(1) / rate;
    let began = Instant::now();
    let mut handles = Vec::new();
    let mut due = began;
    while due < began + RUN_FOR {
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if left > Duration::from_micros(200) {
                std::thread::sleep(left - Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
        }
        handles.push(pool.spawn(Queue::Foreground, request(Instant::now())));
        due += interval;
    }
    let samples: Vec<(Duration, Duration)> = pool.block_on(async {
        let mut samples = Vec::with_capacity(handles.len());
        for handle in handles {
            samples.push(handle.await.expect("request"));
        }
        samples
    });
    let elapsed = began.elapsed();
    let after = pool.stats();

    println!("CPU time of each worker's queues over the {}:", ms(elapsed));
    println!(
        "{:>6} {:>12} {:>12} {:>9} {:>9} {:>10} {:>10}   fg wake → poll p50 / p99",
        "worker", "foreground", "background", "fg share", "bg share", "fg polls", "bg polls"
    );
    for (then, now) in before.workers.iter().zip(&after.workers) {
        let queue = |stats: &clockworker::WorkerStats<Queue>, key: Queue| {
            stats.executor.queue(key).expect("configured queue").clone()
        };
        let (fg0, fg1) = (
            queue(then, Queue::Foreground),
            queue(now, Queue::Foreground),
        );
        let (bg0, bg1) = (
            queue(then, Queue::Background),
            queue(now, Queue::Background),
        );
        let fg = fg1.busy.saturating_sub(fg0.busy);
        let bg = bg1.busy.saturating_sub(bg0.busy);
        let total = (fg + bg).as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "{:>6} {:>12} {:>12} {:>8.1}% {:>8.1}% {:>10} {:>10}   {} / {}",
            now.worker,
            ms(fg),
            ms(bg),
            fg.as_secs_f64() / total * 100.0,
            bg.as_secs_f64() / total * 100.0,
            fg1.polls - fg0.polls,
            bg1.polls - bg0.polls,
            us(fg1.queue_delay.p50),
            us(fg1.queue_delay.p99),
        );
    }
    println!(
        "(the foreground takes what it needs, up to 8/9 of a worker; the background gets the rest)\n"
    );

    let mut starts: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let mut totals: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    starts.sort();
    totals.sort();
    println!("{} foreground requests:", samples.len());
    for (name, sorted) in [
        ("start delay (spawn → first poll)", &starts),
        ("latency     (spawn → done)", &totals),
    ] {
        println!(
            "  {name}: p50 {}, p99 {}, max {}",
            us(percentile(sorted, 0.5)),
            us(percentile(sorted, 0.99)),
            us(percentile(sorted, 1.0))
        );
    }
    println!(
        "  (a request waits for the background poll running when it arrives, at most {}, and \
         for requests ahead of it)\n",
        us(BACKGROUND_POLL)
    );

    println!("Pool stats:\n{after}");

    // Let the background tasks finish, then drain and stop the pool.
    stop.store(true, Ordering::Relaxed);
    let report = pool.shutdown_blocking();
    println!("Shutdown report:");
    for worker in &report.workers {
        println!(
            "  worker {}: {} completed, {} cancelled, {} panicked, {}",
            worker.worker,
            worker.completed,
            worker.cancelled,
            worker.panicked,
            if worker.finished {
                "stopped"
            } else {
                "still running"
            }
        );
    }
    println!(
        "  total: {} completed, {} cancelled, {} panicked; every worker stopped: {}",
        report.completed(),
        report.cancelled(),
        report.panicked(),
        report.finished()
    );
}
