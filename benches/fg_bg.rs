//! Foreground latency under background load — the headline of the published
//! clockworker. A generator thread (pinned to its own core) sends 1,000
//! foreground requests per second; each is 1–3 steps of 100–500 µs of CPU
//! with a yield between steps. Eight background tasks saturate the core
//! with 100–500 µs CPU steps and a yield. Every executor runs pinned to one
//! core. Fixed RNG seeds: every configuration sees the same requests.
//!
//! Configurations: tokio fg-only, tokio fg+bg (one `LocalSet`), two tokio
//! runtimes (fg and bg) on one core, clockworker 0.2.6 fg+bg (weights 99:1,
//! as its own benchmark used), glommio fg+bg (task queues with shares 99:1,
//! the foreground marked `Latency::Matters(1 ms)`; Linux only),
//! clockworker fg-only, clockworker fg+bg (weights 99:1).
//!
//! The generator sleeps until just before each send and spins the rest; if
//! the operating system holds its thread up, the requests it owes go out
//! in a burst, which shows as queueing in every configuration. The table
//! counts such late sends per configuration, so a disturbed run is visible.
//!
//! Run with `cargo bench --bench fg_bg`: prints a table (queue delay and
//! total latency percentiles, background throughput) and the bar checks,
//! and writes `target/bench-results/fg_bg.md` and `fg_bg.svg`.

mod support;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{percentile, spin, tail};
use tokio::sync::mpsc;

const REQUESTS: u64 = 5_000;
const RATE_PER_SECOND: u64 = 1_000;
const BACKGROUND_TASKS: u64 = 8;
const WARM_UP: usize = 100;
const REQUEST_SEED: u64 = 0xC0FFEE;
const BACKGROUND_SEED: u64 = 0xBAC4;

/// A foreground request: when it was sent, and its CPU steps.
struct Request {
    sent: Instant,
    steps: Vec<Duration>,
}

#[derive(Clone, Copy)]
struct Sample {
    queue_delay: Duration,
    total: Duration,
    /// The request's CPU work.
    work: Duration,
}

/// Shared by the background tasks of one run.
#[derive(Default)]
struct Background {
    stop: AtomicBool,
    steps: AtomicU64,
    busy_nanos: AtomicU64,
    /// Every background poll's duration.
    polls: std::sync::Mutex<Vec<Duration>>,
}

fn core(index: usize) -> Option<core_affinity::CoreId> {
    core_affinity::get_core_ids().and_then(|ids| ids.get(index % ids.len()).copied())
}

fn pin(index: usize) {
    if let Some(id) = core(index) {
        core_affinity::set_for_current(id);
    }
}

/// What the background did while the generator was sending: the window in
/// which every configuration faces the same offered load.
struct Window {
    duration: Duration,
    background_steps: u64,
    background_busy: Duration,
    /// Sends more than 0.5 ms behind schedule (the generator's thread was
    /// held up by the operating system; the requests it owed then arrive
    /// in a burst), and the worst lateness.
    late_sends: u64,
    max_lateness: Duration,
}

/// Sends the requests from a thread pinned to core 1, one per millisecond
/// on an absolute schedule, and measures the background over the window
/// from the first request to the last.
fn generator(
    background: Arc<Background>,
) -> (
    mpsc::UnboundedReceiver<Request>,
    std::thread::JoinHandle<Window>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let thread = std::thread::spawn(move || {
        pin(1);
        let snapshot = || {
            (
                Instant::now(),
                background.steps.load(Ordering::Relaxed),
                background.busy_nanos.load(Ordering::Relaxed),
            )
        };
        let mut first = None;
        let (mut late_sends, mut max_lateness) = (0, Duration::ZERO);
        let mut rng = fastrand::Rng::with_seed(REQUEST_SEED);
        let start = Instant::now() + Duration::from_millis(20);
        for i in 0..REQUESTS {
            let due = start + Duration::from_micros(i * 1_000_000 / RATE_PER_SECOND);
            while Instant::now() < due {
                let left = due.saturating_duration_since(Instant::now());
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
            let late = Instant::now().saturating_duration_since(due);
            max_lateness = max_lateness.max(late);
            if late > Duration::from_micros(500) {
                late_sends += 1;
            }
            let steps = (0..rng.u32(1..=3))
                .map(|_| Duration::from_micros(rng.u64(100..=500)))
                .collect();
            if first.is_none() {
                first = Some(snapshot());
            }
            if tx
                .send(Request {
                    sent: Instant::now(),
                    steps,
                })
                .is_err()
            {
                break;
            }
        }
        let (t0, steps0, busy0) = first.unwrap_or_else(snapshot);
        let (t1, steps1, busy1) = snapshot();
        Window {
            duration: t1 - t0,
            background_steps: steps1 - steps0,
            background_busy: Duration::from_nanos(busy1 - busy0),
            late_sends,
            max_lateness,
        }
    });
    (rx, thread)
}

/// Handles one request: its steps, with `yield_now` between them.
async fn handle<Y: Future<Output = ()>>(request: Request, yield_now: impl Fn() -> Y) -> Sample {
    let started = Instant::now();
    for (i, step) in request.steps.iter().enumerate() {
        if i > 0 {
            yield_now().await;
        }
        spin(*step);
    }
    Sample {
        queue_delay: started - request.sent,
        total: request.sent.elapsed(),
        work: request.steps.iter().sum(),
    }
}

/// One background task: 100–500 µs CPU steps and a yield, until stopped.
async fn background<Y: Future<Output = ()>>(
    state: Arc<Background>,
    seed: u64,
    yield_now: impl Fn() -> Y,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !state.stop.load(Ordering::Relaxed) {
        let step = Duration::from_micros(rng.u64(100..=500));
        let began = Instant::now();
        spin(step);
        let took = began.elapsed();
        state
            .busy_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        state
            .polls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(took);
        state.steps.fetch_add(1, Ordering::Relaxed);
        yield_now().await;
    }
}

/// Receives requests and hands each to `spawn`, which returns a future for
/// its sample; collects the samples.
async fn dispatch<H: Future<Output = Sample> + 'static>(
    mut requests: mpsc::UnboundedReceiver<Request>,
    spawn: impl Fn(Request) -> H,
) -> Vec<Sample> {
    let mut pending = Vec::new();
    while let Some(request) = requests.recv().await {
        pending.push(spawn(request));
    }
    let mut samples = Vec::with_capacity(pending.len());
    for handler in pending {
        samples.push(handler.await);
    }
    samples
}

/// What one configuration measured.
struct Outcome {
    name: &'static str,
    samples: Vec<Sample>,
    /// Background steps per second over the run (0 without background).
    background_rate: f64,
    /// Shares of the run's wall time spent in foreground and background
    /// work; the rest is the executors' overhead, idle time and time the
    /// operating system took.
    foreground_share: f64,
    background_share: f64,
    /// Background poll durations: the 99.9th percentile (the bar's "longest
    /// background poll", robust to a rare preemption by the operating
    /// system) and the maximum.
    background_poll_p999: Duration,
    background_poll_max: Duration,
    /// The generator's late sends and worst lateness (see [`Window`]).
    late_sends: u64,
    max_lateness: Duration,
}

fn finish(
    name: &'static str,
    samples: Vec<Sample>,
    background: &Background,
    window: Window,
) -> Outcome {
    background.stop.store(true, Ordering::Relaxed);
    let polls = background
        .polls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (polls_p999, polls_max) = tail(polls);
    let seconds = window.duration.as_secs_f64();
    // Every request is sent inside the window; its work is counted there.
    let foreground_work: Duration = samples.iter().map(|s| s.work).sum();
    Outcome {
        name,
        foreground_share: foreground_work.as_secs_f64() / seconds,
        background_share: window.background_busy.as_secs_f64() / seconds,
        samples,
        background_rate: window.background_steps as f64 / seconds,
        background_poll_p999: polls_p999,
        background_poll_max: polls_max,
        late_sends: window.late_sends,
        max_lateness: window.max_lateness,
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// tokio current-thread + LocalSet, with or without background tasks.
fn run_tokio(name: &'static str, with_background: bool) -> Outcome {
    std::thread::spawn(move || {
        pin(0);
        let runtime = tokio_runtime();
        let local = tokio::task::LocalSet::new();
        let state = Arc::new(Background::default());
        let (requests, generator) = generator(state.clone());
        let samples = local.block_on(&runtime, async {
            if with_background {
                for i in 0..BACKGROUND_TASKS {
                    tokio::task::spawn_local(background(
                        state.clone(),
                        BACKGROUND_SEED + i,
                        tokio::task::yield_now,
                    ));
                }
            }
            // The dispatcher is an ordinary task, as on every executor here.
            let dispatcher = tokio::task::spawn_local(dispatch(requests, |request| {
                let handle = tokio::task::spawn_local(handle(request, tokio::task::yield_now));
                async move { handle.await.expect("request") }
            }));
            dispatcher.await.expect("dispatcher")
        });
        let window = generator.join().expect("generator");
        finish(name, samples, &state, window)
    })
    .join()
    .expect("run")
}

/// Foreground and background in two tokio runtimes whose threads share one
/// core: the operating system schedules between them.
fn run_two_runtimes() -> Outcome {
    let state = Arc::new(Background::default());
    let bg_thread = std::thread::spawn({
        let state = state.clone();
        move || {
            pin(0);
            let runtime = tokio_runtime();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async {
                let tasks: Vec<_> = (0..BACKGROUND_TASKS)
                    .map(|i| {
                        tokio::task::spawn_local(background(
                            state.clone(),
                            BACKGROUND_SEED + i,
                            tokio::task::yield_now,
                        ))
                    })
                    .collect();
                for task in tasks {
                    let _ = task.await;
                }
            });
        }
    });
    let (samples, window) = std::thread::spawn({
        let state = state.clone();
        move || {
            pin(0);
            let runtime = tokio_runtime();
            let local = tokio::task::LocalSet::new();
            let (requests, generator) = generator(state);
            let samples = local.block_on(&runtime, async {
                // The dispatcher is an ordinary task, as on every executor here.
                let dispatcher = tokio::task::spawn_local(dispatch(requests, |request| {
                    let handle = tokio::task::spawn_local(handle(request, tokio::task::yield_now));
                    async move { handle.await.expect("request") }
                }));
                dispatcher.await.expect("dispatcher")
            });
            (samples, generator.join().expect("generator"))
        }
    })
    .join()
    .expect("foreground runtime");
    let outcome = finish("two tokio runtimes, one core", samples, &state, window);
    bg_thread.join().expect("background runtime");
    outcome
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

fn run_ours(name: &'static str, with_background: bool) -> Outcome {
    std::thread::spawn(move || {
        pin(0);
        let runtime = tokio_runtime();
        let executor = clockworker::ExecutorBuilder::new()
            .with_queue(Queue::Foreground, 99)
            .with_queue(Queue::Background, 1)
            .build()
            .expect("valid queues");
        let fg = executor.queue(Queue::Foreground).expect("queue");
        let bg = executor.queue(Queue::Background).expect("queue");
        let state = Arc::new(Background::default());
        if with_background {
            for i in 0..BACKGROUND_TASKS {
                bg.spawn(background(
                    state.clone(),
                    BACKGROUND_SEED + i,
                    clockworker::yield_now,
                ));
            }
        }
        let (requests, generator) = generator(state.clone());
        let handlers = fg.clone();
        let dispatcher = fg.spawn(dispatch(requests, move |request| {
            let handle = handlers.spawn(handle(request, clockworker::yield_now));
            async move { handle.await.expect("request") }
        }));
        let samples = runtime
            .block_on(executor.run_until(dispatcher))
            .expect("dispatcher");
        let window = generator.join().expect("generator");
        finish(name, samples, &state, window)
    })
    .join()
    .expect("run")
}

fn run_upstream() -> Outcome {
    std::thread::spawn(|| {
        pin(0);
        let runtime = tokio_runtime();
        let local = tokio::task::LocalSet::new();
        let executor = upstream::ExecutorBuilder::new()
            .with_queue(Queue::Foreground, 99)
            .with_queue(Queue::Background, 1)
            .build()
            .expect("valid queues");
        let fg = executor.queue(Queue::Foreground).expect("queue");
        let bg = executor.queue(Queue::Background).expect("queue");
        let state = Arc::new(Background::default());
        for i in 0..BACKGROUND_TASKS {
            drop(bg.spawn(background(
                state.clone(),
                BACKGROUND_SEED + i,
                tokio::task::yield_now,
            )));
        }
        let (requests, generator) = generator(state.clone());
        let handlers = executor.queue(Queue::Foreground).expect("queue");
        let dispatcher = fg.spawn(dispatch(requests, move |request| {
            let handle = handlers.spawn(handle(request, tokio::task::yield_now));
            async move { handle.await.expect("request") }
        }));
        let samples = local
            .block_on(&runtime, executor.run_until(dispatcher))
            .expect("dispatcher");
        let window = generator.join().expect("generator");
        finish("clockworker 0.2.6 fg+bg (99:1)", samples, &state, window)
    })
    .join()
    .expect("run")
}

#[cfg(target_os = "linux")]
async fn glommio_yield() {
    glommio::executor().yield_now().await;
}

#[cfg(target_os = "linux")]
fn run_glommio() -> Outcome {
    use glommio::{Latency, Shares};
    std::thread::spawn(|| {
        pin(0);
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("glommio executor");
        executor.run(async {
            let fg = glommio::executor().create_task_queue(
                Shares::Static(99),
                Latency::Matters(Duration::from_millis(1)),
                "fg",
            );
            let bg = glommio::executor().create_task_queue(
                Shares::Static(1),
                Latency::NotImportant,
                "bg",
            );
            let state = Arc::new(Background::default());
            for i in 0..BACKGROUND_TASKS {
                glommio::spawn_local_into(
                    background(state.clone(), BACKGROUND_SEED + i, glommio_yield),
                    bg,
                )
                .expect("spawn")
                .detach();
            }
            let (requests, generator) = generator(state.clone());
            let dispatcher = glommio::spawn_local_into(
                dispatch(requests, move |request| {
                    glommio::spawn_local_into(handle(request, glommio_yield), fg).expect("spawn")
                }),
                fg,
            )
            .expect("spawn");
            let samples = dispatcher.await;
            let window = generator.join().expect("generator");
            finish("glommio fg+bg (99:1)", samples, &state, window)
        })
    })
    .join()
    .expect("run")
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

const QUANTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

fn sorted(outcome: &Outcome, pick: impl Fn(&Sample) -> Duration) -> Vec<Duration> {
    let mut values: Vec<Duration> = outcome.samples.iter().skip(WARM_UP).map(pick).collect();
    values.sort();
    values
}

/// Draws total latency by percentile, one line per configuration.
fn plot(outcomes: &[Outcome], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    // x: "nines" (0 = p0, 1 = p90, 2 = p99, 3 = p99.9); y: latency (ms, log).
    let points: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| {
            let values = sorted(o, |s| s.total);
            (0..=300)
                .map(|i| {
                    let nines = f64::from(i) / 100.0;
                    let q = 1.0 - 10f64.powf(-nines);
                    (nines, percentile(&values, q).as_secs_f64() * 1e3)
                })
                .collect()
        })
        .collect();
    let y_max = points.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.3;
    let y_min = points
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .max(0.05)
        * 0.8;

    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Foreground request latency under background load (1,000 req/s)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..3f64, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("total latency (ms)")
        .x_labels(4)
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "p0".into(),
            1 => "p90".into(),
            2 => "p99".into(),
            _ => "p99.9".into(),
        })
        .draw()?;
    let color_of = |name: &str| match name {
        n if n.starts_with("tokio fg-only") => RGBColor(110, 110, 110),
        n if n.starts_with("tokio fg+bg") => RGBColor(200, 60, 40),
        n if n.starts_with("two tokio") => RGBColor(230, 150, 30),
        n if n.starts_with("clockworker 0.2.6") => RGBColor(140, 90, 180),
        n if n.starts_with("glommio") => RGBColor(60, 130, 200),
        n if n.starts_with("clockworker fg-only") => RGBColor(130, 200, 130),
        _ => RGBColor(0, 110, 40),
    };
    for (outcome, line) in outcomes.iter().zip(points) {
        let color = color_of(outcome.name);
        let width = if outcome.name.starts_with("clockworker fg+bg") {
            3
        } else {
            2
        };
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(width)))?
            .label(outcome.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // `FG_BG_ONLY=<substring>` runs only the matching configurations.
    let only = std::env::var("FG_BG_ONLY").unwrap_or_default();
    type Configuration = (&'static str, fn() -> Outcome);
    let mut configurations: Vec<Configuration> = vec![
        ("tokio fg-only", || run_tokio("tokio fg-only", false)),
        ("tokio fg+bg", || run_tokio("tokio fg+bg", true)),
        ("two tokio runtimes, one core", run_two_runtimes),
        ("clockworker 0.2.6 fg+bg (99:1)", run_upstream),
        ("clockworker fg-only", || {
            run_ours("clockworker fg-only", false)
        }),
        ("clockworker fg+bg (99:1)", || {
            run_ours("clockworker fg+bg (99:1)", true)
        }),
    ];
    #[cfg(target_os = "linux")]
    configurations.insert(4, ("glommio fg+bg (99:1)", run_glommio));
    let outcomes: Vec<Outcome> = configurations
        .iter()
        .filter(|(name, _)| name.contains(only.as_str()))
        .map(|(_, run)| run())
        .collect();
    if outcomes.len() < configurations.len() {
        for o in &outcomes {
            let totals = sorted(o, |s| s.total);
            let delays = sorted(o, |s| s.queue_delay);
            println!(
                "{}: delay p50 {} p99 {} ms; total p50 {} p99 {} ms; bg {:.0}/s; \
                 longest bg poll {} ms; time: fg {:.1}% bg {:.1}% other {:.1}%; \
                 late sends {} (worst {} ms)",
                o.name,
                ms(percentile(&delays, 0.5)),
                ms(percentile(&delays, 0.99)),
                ms(percentile(&totals, 0.5)),
                ms(percentile(&totals, 0.99)),
                o.background_rate,
                ms(o.background_poll_max),
                o.foreground_share * 100.0,
                o.background_share * 100.0,
                (1.0 - o.foreground_share - o.background_share) * 100.0,
                o.late_sends,
                ms(o.max_lateness)
            );
        }
        return;
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| configuration | queue delay p50 / p90 / p99 / p99.9 (ms) | total latency p50 / p90 / p99 / p99.9 (ms) | background steps/s | generator sends > 0.5 ms late (worst, ms) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for o in &outcomes {
        let delays = sorted(o, |s| s.queue_delay);
        let totals = sorted(o, |s| s.total);
        let show = |v: &[Duration]| {
            QUANTILES
                .iter()
                .map(|(q, _)| ms(percentile(v, *q)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let rate = if o.background_rate > 0.0 {
            format!("{:.0}", o.background_rate)
        } else {
            "–".into()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {rate} | {} ({}) |",
            o.name,
            show(&delays),
            show(&totals),
            o.late_sends,
            ms(o.max_lateness)
        );
    }

    // The bars of issue 5.
    let find = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.name == name)
            .expect("configuration ran")
    };
    let tokio_fg = find("tokio fg-only");
    let tokio_both = find("tokio fg+bg");
    let ours = find("clockworker fg+bg (99:1)");
    let longest_poll = ours.background_poll_p999;
    let p99 = |o: &Outcome, pick: fn(&Sample) -> Duration| percentile(&sorted(o, pick), 0.99);
    let ours_total = p99(ours, |s| s.total);
    let ours_delay = p99(ours, |s| s.queue_delay);
    let total_bar = p99(tokio_fg, |s| s.total) + longest_poll;
    let throughput = ours.background_rate / tokio_both.background_rate;
    let _ = writeln!(
        out,
        "\nLongest background poll in the clockworker run: {} ms at the 99.9th percentile \
         (the bars below use this), {} ms at most (a poll the operating system preempted).\n",
        ms(longest_poll),
        ms(ours.background_poll_max)
    );
    let verdict = |ok: bool| if ok { "meets" } else { "misses" };
    let _ = writeln!(
        out,
        "- foreground p99 total latency {} ms vs bar {} ms (tokio fg-only p99 + longest background poll): {}",
        ms(ours_total),
        ms(total_bar),
        verdict(ours_total <= total_bar)
    );
    let _ = writeln!(
        out,
        "- foreground p99 queue delay {} ms vs bar {} ms (longest background poll): {}",
        ms(ours_delay),
        ms(longest_poll),
        verdict(ours_delay <= longest_poll)
    );
    let _ = writeln!(
        out,
        "- background throughput {:.1}% of tokio fg+bg (bar 95%): {}",
        throughput * 100.0,
        verdict(throughput >= 0.95)
    );
    println!("{out}");

    let dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()) + "/bench-results";
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(format!("{dir}/fg_bg.md"), &out);
        if let Err(err) = plot(&outcomes, &format!("{dir}/fg_bg.svg")) {
            eprintln!("plot failed: {err}");
        }
    }
}
