//! Foreground and background work on one thread: the CPU split between
//! weighted queues, and foreground latency while the background saturates the
//! core, next to a plain tokio `LocalSet` running the same load.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, yield_maybe};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

/// Busy-waits: stands in for real CPU work.
fn work(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Background work: endless 200 µs batches.
async fn background_batches() {
    loop {
        work(Duration::from_micros(200));
        yield_maybe().await;
    }
}

/// One foreground request: 100 µs of CPU. Returns its latency.
async fn request(arrived: Instant) -> Duration {
    work(Duration::from_micros(100));
    arrived.elapsed()
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("valid queue configuration");
    let fg = executor.queue(Queue::Foreground).expect("configured");
    let bg = executor.queue(Queue::Background).expect("configured");

    // 1. Both queues saturated for one second: the CPU splits 8:1.
    let handles: Vec<_> = (0..4)
        .flat_map(|_| {
            [
                fg.spawn(background_batches()),
                bg.spawn(background_batches()),
            ]
        })
        .collect();
    runtime
        .block_on(executor.run_until(async { tokio::time::sleep(Duration::from_secs(1)).await }));
    for handle in &handles {
        handle.abort();
    }
    let stats = executor.stats();
    let shares = stats.cpu_shares();
    println!("1. Both queues busy for 1 s (weights 8:1)");
    println!(
        "   CPU share: foreground {:.1}%, background {:.1}% (ideal 88.9% / 11.1%)\n",
        shares[0] * 100.0,
        shares[1] * 100.0
    );
    drop((handles, fg, bg, executor));

    // 2. Requests arrive at 1,000/s while four background tasks saturate
    //    the core. Same load on a fresh executor and on a tokio LocalSet
    //    (one FIFO queue). A request is dated by its scheduled tick, so
    //    timer lateness counts too.
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("valid queue configuration");
    let fg = executor.queue(Queue::Foreground).expect("configured");
    let bg = executor.queue(Queue::Background).expect("configured");
    let ours = {
        let latencies = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..4 {
            bg.spawn(background_batches());
        }
        runtime.block_on(executor.run_until(async {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for _ in 0..1_000 {
                let arrived = tick.tick().await.into_std();
                let latencies = latencies.clone();
                fg.spawn(async move {
                    let latency = request(arrived).await;
                    latencies.borrow_mut().push(latency);
                });
            }
        }));
        latencies.take()
    };
    let fifo = {
        let latencies = Rc::new(RefCell::new(Vec::new()));
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let background: Vec<_> = (0..4)
                .map(|_| tokio::task::spawn_local(background_batches()))
                .collect();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            for _ in 0..1_000 {
                let arrived = tick.tick().await.into_std();
                let latencies = latencies.clone();
                tokio::task::spawn_local(async move {
                    let latency = request(arrived).await;
                    latencies.borrow_mut().push(latency);
                });
            }
            for task in background {
                task.abort();
            }
        });
        latencies.take()
    };

    let stats = executor.stats();
    let (fg_stats, bg_stats) = (&stats.queues[0], &stats.queues[1]);
    println!("2. 1,000 foreground requests/s (100 µs each) over 4 saturating background tasks");
    for (name, mut samples) in [("clockworker 8:1", ours), ("tokio LocalSet", fifo)] {
        println!(
            "   {name:<16} request latency p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  ({} requests)",
            percentile(&mut samples, 0.50),
            percentile(&mut samples, 0.99),
            percentile(&mut samples, 1.0),
            samples.len()
        );
    }
    println!(
        "   clockworker foreground queue delay (wake to poll): p50 {:?}, p99 {:?}",
        fg_stats.queue_delay.p50, fg_stats.queue_delay.p99
    );
    println!(
        "   CPU share: foreground {:.1}%, background {:.1}% (the background gets all the \
         foreground leaves)\n",
        stats.cpu_shares()[0] * 100.0,
        stats.cpu_shares()[1] * 100.0
    );
    let _ = bg_stats;
    println!("Executor stats:\n{stats}");
}
