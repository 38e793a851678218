//! Fairness between weighted queues, against the peers that have weighted
//! queues: the published clockworker 0.2.6 and glommio (task queues with
//! static shares, default settings; Linux only). One CPU-bound task per
//! queue (20 µs steps and each executor's cooperative yield: `yield_maybe`,
//! glommio's `yield_if_needed`) for 2 s per weight set; the error of each
//! queue's CPU share against its weight, and, at 99:1, how long the weight-1
//! queue waits for its first poll.
//!
//! Run with `cargo bench --bench fairness`; the table is printed and written
//! to `target/bench-results/fairness.md`.

mod support;

use std::cell::Cell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use support::spin;

const WINDOW: Duration = Duration::from_secs(2);
const STEP: Duration = Duration::from_micros(20);

/// What one run measured.
struct Run {
    /// CPU time each queue's task spent in its steps, measured by the task.
    used: Vec<Duration>,
    /// When the last queue's task first ran, after the start.
    last_queue_first_poll: Option<Duration>,
}

/// A CPU-bound loop that records its own CPU time and its first poll.
async fn burn<Y: std::future::Future<Output = ()>>(
    start: Instant,
    used: Rc<Cell<Duration>>,
    first: Rc<Cell<Option<Duration>>>,
    yield_maybe: impl Fn() -> Y,
) {
    first.set(Some(start.elapsed()));
    loop {
        let began = Instant::now();
        spin(STEP);
        used.set(used.get() + began.elapsed());
        yield_maybe().await;
    }
}

fn ours(weights: &[u32]) -> Run {
    let mut builder = clockworker::ExecutorBuilder::new();
    for (key, &weight) in weights.iter().enumerate() {
        builder = builder.with_queue(key, weight);
    }
    let executor = builder.build().expect("valid weights");
    let used: Vec<Rc<Cell<Duration>>> = weights.iter().map(|_| Rc::default()).collect();
    let first: Vec<Rc<Cell<Option<Duration>>>> = weights.iter().map(|_| Rc::default()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let start = Instant::now();
    for key in 0..weights.len() {
        let queue = executor.queue(key).expect("queue");
        queue.spawn(burn(
            start,
            used[key].clone(),
            first[key].clone(),
            clockworker::yield_maybe,
        ));
    }
    runtime.block_on(executor.run_until(async { tokio::time::sleep(WINDOW).await }));
    Run {
        used: used.iter().map(|u| u.get()).collect(),
        last_queue_first_poll: first.last().and_then(|f| f.get()),
    }
}

fn upstream(weights: &[u32]) -> Run {
    let mut builder = upstream::ExecutorBuilder::new();
    for (key, &weight) in weights.iter().enumerate() {
        builder = builder.with_queue(key, u64::from(weight));
    }
    let executor = builder.build().expect("valid weights");
    let used: Vec<Rc<Cell<Duration>>> = weights.iter().map(|_| Rc::default()).collect();
    let first: Vec<Rc<Cell<Option<Duration>>>> = weights.iter().map(|_| Rc::default()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    for key in 0..weights.len() {
        let queue = executor.queue(key).expect("queue");
        drop(queue.spawn(burn(
            start,
            used[key].clone(),
            first[key].clone(),
            upstream::yield_maybe,
        )));
    }
    local.block_on(
        &runtime,
        executor.run_until(async { tokio::time::sleep(WINDOW).await }),
    );
    Run {
        used: used.iter().map(|u| u.get()).collect(),
        last_queue_first_poll: first.last().and_then(|f| f.get()),
    }
}

#[cfg(target_os = "linux")]
fn glommio(weights: &[u32]) -> Run {
    use glommio::{Latency, Shares};
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor");
    let used: Vec<Rc<Cell<Duration>>> = weights.iter().map(|_| Rc::default()).collect();
    let first: Vec<Rc<Cell<Option<Duration>>>> = weights.iter().map(|_| Rc::default()).collect();
    executor.run(async {
        let start = Instant::now();
        for (key, &weight) in weights.iter().enumerate() {
            let queue = glommio::executor().create_task_queue(
                Shares::Static(weight as usize),
                Latency::NotImportant,
                &format!("queue {key}"),
            );
            glommio::spawn_local_into(
                burn(
                    start,
                    used[key].clone(),
                    first[key].clone(),
                    glommio::yield_if_needed,
                ),
                queue,
            )
            .expect("spawn")
            .detach();
        }
        glommio::timer::sleep(WINDOW).await;
    });
    Run {
        used: used.iter().map(|u| u.get()).collect(),
        last_queue_first_poll: first.last().and_then(|f| f.get()),
    }
}

/// Each queue's share and its relative error against the ideal.
fn errors(run: &Run, weights: &[u32]) -> Vec<(f64, f64)> {
    let total: f64 = run.used.iter().map(Duration::as_secs_f64).sum();
    let weight_total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    run.used
        .iter()
        .zip(weights)
        .map(|(used, &w)| {
            let share = used.as_secs_f64() / total;
            let ideal = f64::from(w) / weight_total;
            (share, (share - ideal).abs() / ideal)
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing: run only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| weights | executor | measured shares | worst share error | weight-1 queue's first poll |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|");
    for weights in [&[8, 1][..], &[1, 2, 4], &[99, 1]] {
        let mut runs = vec![
            ("clockworker", ours(weights)),
            ("clockworker 0.2.6", upstream(weights)),
        ];
        #[cfg(target_os = "linux")]
        runs.push(("glommio", glommio(weights)));
        for (name, run) in runs {
            let errors = errors(&run, weights);
            let shares: Vec<String> = errors.iter().map(|(s, _)| format!("{:.4}", s)).collect();
            let worst = errors.iter().map(|(_, e)| *e).fold(0.0, f64::max);
            let first = if weights == [99, 1] {
                run.last_queue_first_poll
                    .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
                    .unwrap_or_else(|| "never".into())
            } else {
                "–".into()
            };
            let _ = writeln!(
                out,
                "| {} | {name} | {} | {:.2}% | {first} |",
                weights
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(":"),
                shares.join(" / "),
                worst * 100.0
            );
        }
    }
    println!("{out}");
    let dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()) + "/bench-results";
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(format!("{dir}/fairness.md"), &out);
    }
}
