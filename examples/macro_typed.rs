//! The typed form of `#[clockworker::main]`: an enum that derives
//! `QueueKey` names the queues, each variant with its weight.

use std::time::{Duration, Instant};

use clockworker::{QueueKey, spawn, yield_maybe};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Interactive,
    Batch,
    Maintenance,
}

/// Endless CPU-bound work in 100 µs steps.
async fn churn() {
    loop {
        let start = Instant::now();
        while start.elapsed() < Duration::from_micros(100) {
            std::hint::spin_loop();
        }
        yield_maybe().await;
    }
}

// Leaving a variant out, or giving one twice, is a compile error.
#[clockworker::main(queues(Queue::Interactive = 6, Queue::Batch = 3, Queue::Maintenance = 1))]
async fn main() {
    let executor = clockworker::Handle::<Queue>::current();
    for &queue in Queue::ALL {
        for _ in 0..2 {
            spawn!(queue, churn());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The queues follow the enum's declaration order: `queues[key.index()]`.
    let stats = executor.stats();
    let shares = stats.cpu_shares();
    for &queue in Queue::ALL {
        println!(
            "{:<12} weight {}  CPU share {:>5.1}%",
            queue.name(),
            stats.queues[queue.index()].weight,
            shares[queue.index()] * 100.0
        );
    }
}
