//! Foreground and background work on one thread: the CPU split between
//! weighted queues, and foreground latency while the background saturates the
//! core, next to a plain tokio `LocalSet` running the same load.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, QueueHandle, QueueKey, spawn, yield_maybe};
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

const REQUESTS: u32 = 1_000;

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

/// A client on another thread: one request every millisecond, each carrying
/// the time it was sent.
fn client() -> mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        for i in 1..=REQUESTS {
            let due = start + Duration::from_millis(u64::from(i));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Receives requests and spawns a 100 µs handler for each through `spawn`;
/// returns every request's latency (sent to handled).
async fn serve<H: Future<Output = ()> + 'static>(
    mut requests: mpsc::UnboundedReceiver<Instant>,
    spawn: impl Fn(std::pin::Pin<Box<dyn Future<Output = ()>>>) -> H,
) -> Vec<Duration> {
    let latencies = Rc::new(RefCell::new(Vec::new()));
    let mut handlers = Vec::new();
    while let Some(sent) = requests.recv().await {
        let latencies = latencies.clone();
        handlers.push(spawn(Box::pin(async move {
            work(Duration::from_micros(100));
            latencies.borrow_mut().push(sent.elapsed());
        })));
    }
    for handler in handlers {
        handler.await;
    }
    latencies.take()
}

fn build() -> (Executor<Queue>, QueueHandle<Queue>, QueueHandle<Queue>) {
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("valid queue configuration");
    let fg = executor.queue(Queue::Foreground).expect("configured");
    let bg = executor.queue(Queue::Background).expect("configured");
    (executor, fg, bg)
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

#[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1))]
async fn main() {
    let executor = clockworker::Handle::<Queue>::current();
    // 1. Both queues saturated for one second: the CPU splits 8:1.
    let mut batches = Vec::new();
    for _ in 0..4 {
        batches.push(spawn!(Queue::Foreground, background_batches()));
        batches.push(spawn!(Queue::Background, background_batches()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let shares = executor.stats().cpu_shares();
    println!("1. Both queues busy for 1 s (weights 8:1)");
    println!(
        "   CPU share: foreground {:.1}%, background {:.1}% (ideal 88.9% / 11.1%)\n",
        shares[Queue::Foreground.index()] * 100.0,
        shares[Queue::Background.index()] * 100.0
    );
    // Stop the endless tasks (an aborted task's future is dropped before
    // its handle resolves).
    for batch in &batches {
        batch.abort();
    }
    for batch in batches {
        let _cancelled = batch.await;
    }

    // 2. Needs a runtime of its own (and one for the LocalSet baseline):
    //    run it on a blocking thread.
    tokio::task::spawn_blocking(requests_under_load)
        .await
        .expect("phase 2");
}

/// 2. A client thread sends 1,000 requests/s while four background tasks
///    saturate the core: once on clockworker, once on a tokio LocalSet (a
///    single FIFO queue).
fn requests_under_load() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let (executor, fg, bg) = build();
    for _ in 0..4 {
        bg.spawn(background_batches());
    }
    let handlers = fg.clone();
    let dispatcher = fg.spawn(serve(client(), move |handler| {
        let handle = handlers.spawn(handler);
        async move { handle.await.expect("handler") }
    }));
    let ours = runtime
        .block_on(executor.run_until(dispatcher))
        .expect("dispatcher");

    let local = tokio::task::LocalSet::new();
    let fifo = local.block_on(&runtime, async {
        let background: Vec<_> = (0..4)
            .map(|_| tokio::task::spawn_local(background_batches()))
            .collect();
        let dispatcher = tokio::task::spawn_local(serve(client(), |handler| {
            let handle = tokio::task::spawn_local(handler);
            async move { handle.await.expect("handler") }
        }));
        let latencies = dispatcher.await.expect("dispatcher");
        for task in background {
            task.abort();
        }
        latencies
    });

    let stats = executor.stats();
    println!(
        "2. 1,000 requests/s from another thread (100 µs of CPU each) over 4 saturating background tasks"
    );
    for (name, mut samples) in [("clockworker 8:1", ours), ("tokio LocalSet", fifo)] {
        println!(
            "   {name:<16} latency p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  ({} requests)",
            percentile(&mut samples, 0.50),
            percentile(&mut samples, 0.99),
            percentile(&mut samples, 1.0),
            samples.len()
        );
    }
    let fg_stats = &stats.queues[0];
    println!(
        "   clockworker foreground queue delay (wake to poll): p50 {:?}, p99 {:?}",
        fg_stats.queue_delay.p50, fg_stats.queue_delay.p99
    );
    println!(
        "   CPU share: foreground {:.1}%, background {:.1}% (the background gets what the \
         foreground leaves)\n",
        stats.cpu_shares()[0] * 100.0,
        stats.cpu_shares()[1] * 100.0
    );
    println!("Executor stats:\n{stats}");
}
