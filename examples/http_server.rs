//! A hyper HTTP/1 server on clockworker inside tokio next to CPU-bound background work, measured by a built-in load generator.
//!
//! The server runs `executor.run_until(..)` inside a tokio current-thread
//! runtime (IO and timers enabled), so connections use tokio's sockets while
//! clockworker decides which queue runs. A load generator on other threads
//! opens a few keep-alive connections with plain blocking `std` sockets and
//! sends `RATE` requests per second on a fixed schedule for `SECONDS`
//! seconds; latency counts from each request's scheduled send time to the
//! last byte of its response.
//!
//! ```text
//! cargo run --release --example http_server
//! cargo run --release --example http_server -- --host-yield-us 0 --port 8080
//! ```
//!
//! `--host-yield-us` sets [`ExecutorBuilder::with_host_yield_interval`]:
//! while tasks stay runnable, clockworker hands control back to tokio (whose
//! IO driver then learns which sockets are readable) at least that often.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clockworker::{ExecutorBuilder, QueueHandle, yield_maybe};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

// The client's side of HTTP/1, shared with `benches/http.rs`.
#[path = "support/http_wire.rs"]
mod http_wire;
use http_wire::response_length;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

/// Requests per second the load generator offers.
const RATE: u64 = 1_000;
/// How long it offers them.
const SECONDS: u64 = 3;
/// Keep-alive connections it spreads them over (one thread each).
const CONNECTIONS: u64 = 4;
/// CPU work per request.
const REQUEST_WORK: Duration = Duration::from_micros(30);
/// Background tasks, and the CPU work of each of their steps.
const BACKGROUND_TASKS: usize = 4;
const BACKGROUND_STEP: Duration = Duration::from_micros(100);
const BODY: &[u8] = b"hello from the foreground queue\n";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Busy-waits: stands in for real CPU work.
fn work(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Spawns hyper's own tasks onto a clockworker queue.
///
/// An HTTP/1 server needs no executor from hyper: each connection is one
/// future, and the accept loop below spawns it (through this adapter, to
/// show it at work). HTTP/2 servers
/// (`hyper::server::conn::http2::Builder::new(executor)`), `hyper_util`'s
/// protocol-detecting `server::conn::auto::Builder` and hyper's HTTP/2
/// client spawn a task per stream or per connection through the executor
/// they are given. Hand them a `QueueExecutor` and those tasks run on the
/// queue, under its weight; hand them a tokio executor and they run as
/// tokio tasks, next to (not inside) clockworker's scheduling. The futures
/// need not be `Send`: the queue runs them on the executor's thread, so
/// this also serves `!Send` services (what hyper's docs call a local
/// executor).
#[derive(Debug)]
struct QueueExecutor<K>(QueueHandle<K>);

// hyper's HTTP/2 builders clone their executor; `QueueHandle<K>` is `Clone`
// for `K: Copy`, which a derive would not say.
impl<K: Copy> Clone for QueueExecutor<K> {
    fn clone(&self) -> Self {
        QueueExecutor(self.0.clone())
    }
}

impl<K, F> hyper::rt::Executor<F> for QueueExecutor<K>
where
    K: Copy + 'static,
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        // Detached: hyper tracks its tasks through their own channels.
        drop(self.0.spawn(future));
    }
}

/// The request handler: a little CPU work, then a small body.
async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    work(REQUEST_WORK);
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Accepts connections and serves each as a task on the foreground queue.
async fn accept_loop(listener: tokio::net::TcpListener, executor: QueueExecutor<Queue>) {
    use hyper::rt::Executor as _;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        // Responses are single small writes: send them now.
        let _ = stream.set_nodelay(true);
        executor.execute(async move {
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
            if let Err(error) = served {
                eprintln!("connection failed: {error}");
            }
        });
    }
}

/// CPU-bound background work: steps with a preemption point between them,
/// until `stop` is set.
async fn background(iterations: Rc<Cell<u64>>, stop: Rc<Cell<bool>>) {
    while !stop.get() {
        work(BACKGROUND_STEP);
        iterations.set(iterations.get() + 1);
        yield_maybe().await;
    }
}

/// Sends one request on a keep-alive connection and reads its whole
/// response into `buffer`.
fn get(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<()> {
    stream.write_all(REQUEST)?;
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(length) = response_length(buffer)? {
            if buffer.len() == length {
                return Ok(());
            }
            if buffer.len() > length {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes after the response",
                ));
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Offers `RATE` requests/s for `SECONDS` over `CONNECTIONS` connections,
/// one thread each; connection `c` sends requests `c`, `c + CONNECTIONS`,
/// ... of the common schedule. Returns every latency, measured from the
/// scheduled send time (a response that is late delays the next send on its
/// connection, and that delay counts too).
fn load(address: SocketAddr) -> io::Result<Vec<Duration>> {
    let start = Instant::now() + Duration::from_millis(50);
    let give_up = start + Duration::from_secs(SECONDS + 5);
    let per_connection = RATE * SECONDS / CONNECTIONS;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|connection| {
            std::thread::spawn(move || -> io::Result<Vec<Duration>> {
                let mut stream = TcpStream::connect(address)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut buffer = Vec::new();
                let mut latencies = Vec::with_capacity(per_connection as usize);
                for k in 0..per_connection {
                    let index = k * CONNECTIONS + connection;
                    let due = start + Duration::from_nanos(index * 1_000_000_000 / RATE);
                    // Sleep until shortly before the send, spin the rest:
                    // a sleep alone wakes tens of microseconds late.
                    let early = due.saturating_duration_since(Instant::now());
                    if early > Duration::from_micros(200) {
                        std::thread::sleep(early - Duration::from_micros(150));
                    }
                    while Instant::now() < due {
                        std::hint::spin_loop();
                    }
                    if Instant::now() > give_up {
                        break;
                    }
                    get(&mut stream, &mut buffer)?;
                    latencies.push(due.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.join().expect("client thread")?);
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// `--port N` (default: any free port) and `--host-yield-us N` (default:
/// the executor's).
fn arguments() -> (u16, Option<Duration>) {
    let mut port = 0;
    let mut host_yield = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).expect("--port takes 0..=65535"),
            ("--host-yield-us", Some(v)) => host_yield = Some(Duration::from_micros(v)),
            _ => panic!("usage: http_server [--port N] [--host-yield-us N]"),
        }
    }
    (port, host_yield)
}

fn main() {
    let (port, host_yield) = arguments();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut builder = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1);
    if let Some(interval) = host_yield {
        builder = builder.with_host_yield_interval(interval);
    }
    let executor = builder.build().expect("valid queue configuration");
    let fg = executor.queue(Queue::Foreground).expect("configured");
    let bg = executor.queue(Queue::Background).expect("configured");

    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let address = listener.local_addr().expect("bound address");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    println!("serving on http://{address}");

    let iterations = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    let report = runtime.block_on(executor.run_until(async {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        fg.spawn(accept_loop(listener, QueueExecutor(fg.clone())));
        for _ in 0..BACKGROUND_TASKS {
            bg.spawn(background(iterations.clone(), stop.clone()));
        }
        // The load generator blocks: it reports back through a channel.
        let (done, finished) = tokio::sync::oneshot::channel();
        let before = (executor.stats(), iterations.get(), Instant::now());
        std::thread::spawn(move || {
            let _ = done.send(load(address));
        });
        let latencies = finished.await.expect("load generator");
        let after = (executor.stats(), iterations.get(), Instant::now());
        stop.set(true);
        (latencies, before, after)
    }));
    let (latencies, before, after) = report;
    let mut latencies = latencies.expect("load generator failed");
    latencies.sort();

    let busy = |stats: &clockworker::ExecutorStats<Queue>, queue| {
        stats.queue(queue).map_or(Duration::ZERO, |q| q.busy)
    };
    let foreground = busy(&after.0, Queue::Foreground) - busy(&before.0, Queue::Foreground);
    let background = busy(&after.0, Queue::Background) - busy(&before.0, Queue::Background);
    let window = after.2 - before.2;
    let total = (foreground + background)
        .as_secs_f64()
        .max(f64::MIN_POSITIVE);
    let host_yields = after.0.host_yields - before.0.host_yields;

    println!(
        "served {} requests in {:.2} s ({RATE} req/s offered over {CONNECTIONS} keep-alive connections)",
        latencies.len(),
        window.as_secs_f64()
    );
    if !latencies.is_empty() {
        println!(
            "latency (scheduled send to response read): p50 {}, p99 {}, max {}",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(percentile(&latencies, 1.0))
        );
    }
    println!(
        "CPU split of the executor's busy time: foreground {:.1}% ({:.0} ms), background {:.1}% ({:.0} ms); weights 8:1, and the background gets what the foreground leaves",
        foreground.as_secs_f64() / total * 100.0,
        foreground.as_secs_f64() * 1e3,
        background.as_secs_f64() / total * 100.0,
        background.as_secs_f64() * 1e3
    );
    println!(
        "background: {:.0} iterations/s ({BACKGROUND_TASKS} tasks, {} µs steps)",
        (after.1 - before.1) as f64 / window.as_secs_f64(),
        BACKGROUND_STEP.as_micros()
    );
    println!(
        "handed control back to tokio {:.0} times/s while tasks stayed runnable",
        host_yields as f64 / window.as_secs_f64()
    );
    // Dropping the executor drops the accept loop, the connections and the
    // background tasks.
    drop(executor);
}
