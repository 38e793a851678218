//! The quick form of `#[clockworker::main]`: queues declared by name, used
//! as handles in `main` and found by name anywhere else on the thread.

use std::time::{Duration, Instant};

use clockworker::{JoinHandle, spawn, yield_maybe};

/// Busy-waits: stands in for real CPU work.
fn work(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// A request handler, spawned onto the `fg` queue by name: no handle needs
/// to be passed down to it.
fn handle(request: u32) -> JoinHandle<u32> {
    spawn!("fg", async move {
        work(Duration::from_micros(100));
        request * 2
    })
}

#[clockworker::main(queues(fg = 8, bg = 1))]
async fn main() {
    let executor = clockworker::Handle::<&str>::current();
    // `bg` is the background queue's handle: an indexer that never stops.
    for _ in 0..2 {
        spawn!(bg, async {
            loop {
                work(Duration::from_micros(200));
                yield_maybe().await;
            }
        });
    }

    let started = Instant::now();
    let mut answers = Vec::new();
    for request in 1..=100 {
        answers.push(handle(request).await.expect("handler"));
    }
    println!(
        "100 requests answered in {:.1?} next to a busy background queue",
        started.elapsed()
    );
    println!("sum of answers: {}", answers.iter().sum::<u32>());

    let stats = executor.stats();
    for queue in &stats.queues {
        println!(
            "queue {:<4} weight {}  tasks done {:>3}  polls {:>5}",
            queue.key, queue.weight, queue.completed, queue.polls
        );
    }
}
