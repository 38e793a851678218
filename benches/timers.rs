//! clockworker's timers (`clockworker::time`) against tokio's.
//!
//! Workloads:
//!
//! 1. `add+cancel`: 100,000 sleeps created, polled once (registered) and
//!    dropped (cancelled) inside one task (ns per timer); tokio's
//!    `tokio::time::sleep` on a current-thread runtime the same way.
//! 2. `10k sleeps`: 10,000 tasks each sleeping until the same deadline 5 ms
//!    ahead: how late the last one finishes (µs after the deadline), and the
//!    CPU time per timer.
//! 3. `interval lateness`: a 1 ms interval on a foreground queue (weight 8)
//!    while four background tasks (weight 1) saturate the thread in 50 µs
//!    polls; lateness (actual − due) p50 / p99 over 500 ticks. tokio: a
//!    `tokio::time::interval` task beside the same four background tasks on
//!    a current-thread runtime.
//! 4. `idle`: an executor whose only timer is due in an hour, run for one
//!    second under its own `block_on` and under tokio: how often it woke.
//! 5. `cron lateness`: a job every second (`* * * * * *`, wall clock) beside
//!    four saturating background tasks, for 5 s: how long after the full
//!    second each run started. clockworker: the job on the foreground
//!    queue (weight 8), the background on weight 1; tokio-cron-scheduler
//!    on a tokio current-thread runtime with the same background tasks.
//!
//! Run with `cargo bench --bench timers` (about 15 s).

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, time, yield_maybe};
use support::{median, spin};

const TIMERS: u32 = 100_000;

/// Polls `future` once with a no-op waker.
fn poll_once<F: Future>(future: F) {
    let mut future = pin!(future);
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn add_cancel_clockworker() -> f64 {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            executor.block_on(async {
                let start = Instant::now();
                for i in 0..TIMERS {
                    poll_once(time::sleep(Duration::from_millis(10 + u64::from(i % 1000))));
                }
                start.elapsed()
            })
        })
        .collect();
    median(&mut samples).as_nanos() as f64 / f64::from(TIMERS)
}

fn add_cancel_tokio() -> f64 {
    let runtime = tokio_rt();
    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            runtime.block_on(async {
                let start = Instant::now();
                for i in 0..TIMERS {
                    poll_once(tokio::time::sleep(Duration::from_millis(
                        10 + u64::from(i % 1000),
                    )));
                }
                start.elapsed()
            })
        })
        .collect();
    median(&mut samples).as_nanos() as f64 / f64::from(TIMERS)
}

/// (µs after the deadline when the last sleeper finished, CPU ns per timer).
fn many_sleeps_clockworker() -> (f64, f64) {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let cpu = cpu_now();
    let deadline = Instant::now() + Duration::from_millis(5);
    executor.block_on(async {
        let handles: Vec<_> = (0..10_000)
            .map(|_| queue.spawn(time::sleep_until(deadline)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let late = Instant::now().saturating_duration_since(deadline);
    let used = cpu_now().saturating_sub(cpu);
    (late.as_secs_f64() * 1e6, used.as_nanos() as f64 / 10_000.0)
}

fn many_sleeps_tokio() -> (f64, f64) {
    let runtime = tokio_rt();
    let cpu = cpu_now();
    let deadline = Instant::now() + Duration::from_millis(5);
    runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let handles: Vec<_> = (0..10_000)
                    .map(|_| tokio::task::spawn_local(tokio::time::sleep_until(deadline.into())))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            })
            .await;
    });
    let late = Instant::now().saturating_duration_since(deadline);
    let used = cpu_now().saturating_sub(cpu);
    (late.as_secs_f64() * 1e6, used.as_nanos() as f64 / 10_000.0)
}

/// The process's CPU time so far (zero where it cannot be read).
fn cpu_now() -> Duration {
    support::process_cpu().map_or(Duration::ZERO, |(cpu, _)| cpu)
}

/// A background task: 50 µs of CPU per poll, for ever.
async fn background() {
    loop {
        spin(Duration::from_micros(50));
        yield_maybe().await;
    }
}

const TICKS: usize = 500;

/// Lateness p50 / p99 (µs) of a 1 ms interval beside a saturating
/// background, on clockworker (fg weight 8, bg weight 1) under `host`.
fn interval_clockworker(on_tokio: bool) -> (f64, f64) {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let run = async {
        for _ in 0..4 {
            bg.spawn(background());
        }
        fg.spawn(async {
            let mut ticks = time::interval(Duration::from_millis(1));
            let mut late = Vec::with_capacity(TICKS);
            for _ in 0..TICKS {
                let due = ticks.tick().await;
                late.push(Instant::now().saturating_duration_since(due));
            }
            late
        })
        .await
        .unwrap()
    };
    let late = if on_tokio {
        tokio_rt().block_on(executor.run_until(run))
    } else {
        executor.block_on(run)
    };
    lateness(late)
}

fn interval_tokio() -> (f64, f64) {
    let runtime = tokio_rt();
    let late = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                for _ in 0..4 {
                    tokio::task::spawn_local(async {
                        loop {
                            spin(Duration::from_micros(50));
                            tokio::task::yield_now().await;
                        }
                    });
                }
                tokio::task::spawn_local(async {
                    let mut ticks = tokio::time::interval(Duration::from_millis(1));
                    let mut late = Vec::with_capacity(TICKS);
                    for _ in 0..TICKS {
                        let due = ticks.tick().await.into_std();
                        late.push(Instant::now().saturating_duration_since(due));
                    }
                    late
                })
                .await
                .unwrap()
            })
            .await
    });
    lateness(late)
}

fn lateness(mut late: Vec<Duration>) -> (f64, f64) {
    late.sort_unstable();
    let at = |q: f64| support::percentile(&late, q).as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// Idle waits of an executor whose only timer is an hour away, over one
/// second, under its own `block_on` and under tokio.
fn idle_wakeups() -> (u64, u64) {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let far = queue.spawn(time::sleep(Duration::from_secs(3600)));
    let before = executor.stats().idle_waits;
    executor.block_on(time::sleep(Duration::from_secs(1)));
    let own = executor.stats().idle_waits - before;
    let before = executor.stats().idle_waits;
    tokio_rt().block_on(executor.run_until(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }));
    let tokio = executor.stats().idle_waits - before;
    far.abort();
    (own, tokio)
}

/// µs past the full second, now.
fn past_the_second() -> f64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    f64::from(since_epoch.subsec_nanos()) / 1e3
}

const CRON_FOR: Duration = Duration::from_secs(5);

fn cron_clockworker() -> Vec<f64> {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let bg = executor.queue("bg").unwrap();
    let late = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = late.clone();
    executor.block_on(async {
        for _ in 0..4 {
            bg.spawn(background());
        }
        let job = executor
            .handle()
            .cron("fg", "* * * * * *", "UTC", move |_| {
                log.borrow_mut().push(past_the_second());
                async {}
            })
            .expect("a valid expression");
        time::sleep(CRON_FOR).await;
        job.cancel();
    });
    late.take()
}

fn cron_tokio_cron_scheduler() -> Vec<f64> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let runtime = tokio_rt();
    let late = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = late.clone();
    runtime.block_on(async move {
        for _ in 0..4 {
            tokio::spawn(async {
                loop {
                    spin(Duration::from_micros(50));
                    tokio::task::yield_now().await;
                }
            });
        }
        let scheduler = JobScheduler::new().await.expect("a scheduler");
        let job = Job::new("* * * * * *", move |_, _| {
            log.lock().unwrap().push(past_the_second());
        })
        .expect("a valid expression");
        scheduler.add(job).await.expect("added");
        scheduler.start().await.expect("started");
        tokio::time::sleep(CRON_FOR).await;
    });
    runtime.shutdown_background();
    late.lock().unwrap().clone()
}

fn spread(mut late: Vec<f64>) -> String {
    if late.is_empty() {
        return "no runs".to_string();
    }
    late.sort_by(f64::total_cmp);
    format!(
        "{} runs, {:.0} µs late at best, {:.0} at worst",
        late.len(),
        late[0],
        late[late.len() - 1]
    )
}

fn main() {
    let started = Instant::now();
    println!("timers benchmark (2-core VM figures are in the README)");
    let (ours, theirs) = (add_cancel_clockworker(), add_cancel_tokio());
    println!(
        "add+cancel          clockworker {ours:7.1} ns/timer   tokio {theirs:7.1} ns/timer   ratio {:.2}",
        ours / theirs
    );
    let (late_ours, cpu_ours) = many_sleeps_clockworker();
    let (late_tokio, cpu_tokio) = many_sleeps_tokio();
    println!(
        "10k sleeps          clockworker last done {late_ours:7.0} µs late, {cpu_ours:6.0} ns CPU/timer   tokio {late_tokio:7.0} µs late, {cpu_tokio:6.0} ns CPU/timer"
    );
    let (p50, p99) = interval_clockworker(false);
    println!(
        "interval lateness   clockworker (own block_on, fg 8 : bg 1)  p50 {p50:7.0} µs  p99 {p99:7.0} µs"
    );
    let (p50, p99) = interval_clockworker(true);
    println!(
        "interval lateness   clockworker (in tokio, fg 8 : bg 1)      p50 {p50:7.0} µs  p99 {p99:7.0} µs"
    );
    let (p50, p99) = interval_tokio();
    println!(
        "interval lateness   tokio current-thread (same load)         p50 {p50:7.0} µs  p99 {p99:7.0} µs"
    );
    let (own, tokio) = idle_wakeups();
    println!(
        "idle, timer in 1 h  clockworker wake-ups in 1 s: {own} (own block_on), {tokio} (in tokio, incl. its own sleep's)"
    );
    println!(
        "cron every second  clockworker (fg 8 : bg 1)       {}",
        spread(cron_clockworker())
    );
    println!(
        "cron every second  tokio-cron-scheduler (same load) {}",
        spread(cron_tokio_cron_scheduler())
    );
    println!("(took {:.0} s)", started.elapsed().as_secs_f64());
}
