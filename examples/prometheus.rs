//! Serves the executor's metrics at `/metrics` in the Prometheus text format
//! (encoded with `prometheus-client`) while a foreground/background workload
//! runs on clockworker.
//!
//! ```sh
//! cargo run --example prometheus                            # fetches its own /metrics once, prints it, exits
//! cargo run --example prometheus -- --serve 127.0.0.1:9898  # serves until stopped: curl 127.0.0.1:9898/metrics
//! ```
//!
//! The HTTP server is a task of the foreground queue: at each scrape it
//! takes a stats snapshot of the executor it runs on
//! (`Handle::current().stats()`), flattens it into metrics with
//! `ExecutorStats::metrics` (stable names, see `clockworker::metrics`) and
//! encodes them. A pool would use `pool.stats().metrics()`, whose metrics
//! carry a `worker` label.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, Handle, yield_maybe};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let serve = match args.next().as_deref() {
        None => None,
        Some("--serve") => Some(args.next().unwrap_or_else(|| "127.0.0.1:9898".into())),
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: prometheus [--serve ADDRESS]");
            std::process::exit(2);
        }
    };

    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("two queues with non-zero weights");
    let fg = executor.queue(Queue::Foreground).expect("configured");
    let bg = executor.queue(Queue::Background).expect("configured");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    runtime.block_on(executor.run_until(async {
        // The workload: two CPU-bound background tasks that never stop, and
        // a foreground "request" of 50 µs every millisecond.
        for _ in 0..2 {
            bg.spawn(async {
                loop {
                    spin(Duration::from_micros(100));
                    yield_maybe().await;
                }
            });
        }
        fg.spawn(async {
            let mut tick = clockworker::time::interval(Duration::from_millis(1));
            loop {
                tick.tick().await;
                clockworker::spawn!(async { spin(Duration::from_micros(50)) });
            }
        });

        let listener = TcpListener::bind(serve.as_deref().unwrap_or("127.0.0.1:0")).await?;
        let address = listener.local_addr()?;
        eprintln!("serving http://{address}/metrics");
        // The server: a task per connection, on the foreground queue.
        fg.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                clockworker::spawn!(async move {
                    let metrics = || Handle::<Queue>::current().stats().metrics();
                    if let Err(error) = prometheus::serve(stream, metrics).await {
                        eprintln!("serving a scrape: {error}");
                    }
                });
            }
        });

        match serve {
            Some(_) => std::future::pending().await,
            None => scrape_once(address).await,
        }
    }))
}

/// Lets the workload run for half a second, then fetches `/metrics` from
/// the server, as Prometheus would, and prints the response's body.
async fn scrape_once(address: SocketAddr) -> std::io::Result<()> {
    clockworker::time::sleep(Duration::from_millis(500)).await;
    let response = prometheus::fetch(address, "/metrics").await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(std::io::Error::other(format!("scrape failed: {head}")));
    }
    print!("{body}");
    Ok(())
}

/// Busy-waits for `duration`: a stand-in for real CPU work.
fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}
