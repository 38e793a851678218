//! `#[clockworker::main(workers = N)]`: the same queues on a pool of worker
//! threads. The body runs on worker 0 (and may hold `!Send` values); its
//! `spawn!`s run there too; its output comes back to the main thread.

use std::error::Error;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{Handle, spawn, yield_maybe};

/// Busy-waits: stands in for real CPU work.
fn work(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn thread() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

#[clockworker::main(workers = 2, queues(fg = 8, bg = 1))]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // Not `Send`: fine in the body, which never leaves worker 0.
    let requests = Rc::new(100u32);
    println!("body on {}", thread());

    // A background loop that never ends: the pool cancels it when the body
    // returns.
    spawn!(bg, async {
        loop {
            work(Duration::from_micros(200));
            yield_maybe().await;
        }
    });

    let started = Instant::now();
    let mut sum = 0;
    for request in 1..=*requests {
        sum += spawn!(fg, async move {
            work(Duration::from_micros(100));
            request * 2
        })
        .await?;
    }
    println!(
        "{requests} requests answered on {} in {:.1?} next to a busy background queue; \
         sum of answers {sum}",
        thread(),
        started.elapsed()
    );

    let stats = Handle::<&str>::current().stats();
    for queue in &stats.queues {
        println!(
            "worker 0, queue {:<4} weight {}  tasks done {:>3}  polls {:>5}",
            queue.key, queue.weight, queue.completed, queue.polls
        );
    }
    Ok(())
}
