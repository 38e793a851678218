//! Executor overhead against peers (criterion): spawn, yield, ping-pong,
//! queue selection, per-queue task schedulers and queue lookup. Run with
//! `cargo bench --bench executors`; after the criterion output it prints a
//! summary table (ns per operation, and clockworker's ratio to tokio and to
//! the fastest peer) and writes it to `target/bench-results/executors.md`.

mod support;

use std::cell::Cell;
use std::fmt::Write as _;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use support::*;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// Runs `setup` (if given) then `workload` on every peer, as
/// `group/<peer id>`.
macro_rules! on_every_peer {
    ($group:expr, |$peer:ident, $iters:ident| $workload:expr) => {
        on_every_peer!($group, |$peer| {}, |$iters| $workload)
    };
    ($group:expr, |$peer:ident| $setup:block, |$iters:ident| $workload:expr) => {{
        let group: &mut BenchmarkGroup<'_, WallTime> = $group;
        {
            let $peer = Ours::new();
            $setup;
            group.bench_function("clockworker", |b| b.iter_custom(|$iters| $workload));
        }
        {
            let $peer = Ours::watched();
            $setup;
            group.bench_function("clockworker-watchdog", |b| {
                b.iter_custom(|$iters| $workload)
            });
        }
        {
            let $peer = Tokio::new();
            $setup;
            group.bench_function("tokio", |b| b.iter_custom(|$iters| $workload));
        }
        {
            let $peer = AsyncExecutor::new();
            $setup;
            group.bench_function("async-executor", |b| b.iter_custom(|$iters| $workload));
        }
        {
            let $peer = Upstream::new();
            $setup;
            group.bench_function("upstream", |b| b.iter_custom(|$iters| $workload));
        }
        #[cfg(target_os = "linux")]
        {
            let $peer = Glommio::new();
            $setup;
            group.bench_function("glommio", |b| b.iter_custom(|$iters| $workload));
        }
    }};
}

/// async-task alone (see `AsyncTaskFloor`): the floor of the single-thread
/// workloads, beside the peers in the same group.
fn floor(group: &mut BenchmarkGroup<'_, WallTime>, workload: fn(&AsyncTaskFloor, u64) -> Duration) {
    let peer = AsyncTaskFloor;
    group.bench_function("async-task", |b| {
        b.iter_custom(|iters| workload(&peer, iters))
    });
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");
    configure(&mut group);
    on_every_peer!(&mut group, |peer, iters| spawn_join(&peer, iters));
    floor(&mut group, spawn_join);
    group.finish();

    for (live, name) in [
        (1_000, "spawn_live_1k"),
        (100_000, "spawn_live_100k"),
        (1_000_000, "spawn_live_1m"),
    ] {
        let mut group = c.benchmark_group(name);
        configure(&mut group);
        on_every_peer!(&mut group, |peer| { park_tasks(&peer, live) }, |iters| {
            spawn_join(&peer, iters)
        });
        group.finish();
    }
}

fn yields(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_one_task");
    configure(&mut group);
    on_every_peer!(&mut group, |peer, iters| yield_one(&peer, iters));
    floor(&mut group, yield_one);
    group.finish();

    let mut group = c.benchmark_group("yield_1000_tasks");
    configure(&mut group);
    on_every_peer!(&mut group, |peer, iters| {
        // At least one yield per task; scale the time back to `iters`.
        let each = (iters / 1_000).max(1);
        let elapsed = yield_many(&peer, 1_000, each * 1_000);
        elapsed.mul_f64(iters as f64 / (each * 1_000) as f64)
    });
    floor(&mut group, |peer, iters| {
        let each = (iters / 1_000).max(1);
        let elapsed = yield_many(peer, 1_000, each * 1_000);
        elapsed.mul_f64(iters as f64 / (each * 1_000) as f64)
    });
    group.finish();
}

fn ping_pongs(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong");
    configure(&mut group);
    on_every_peer!(&mut group, |peer, iters| ping_pong(&peer, iters));
    floor(&mut group, ping_pong);
    group.finish();

    let mut group = c.benchmark_group("ping_pong_remote");
    configure(&mut group);
    on_every_peer!(&mut group, |peer, iters| remote_ping_pong(&peer, iters));
    group.finish();
}

/// `queues` queues with one always-yielding task each and a zero time slice,
/// so that the scheduler picks a queue before every poll: ns per poll.
fn selection_run(queues: u8, iters: u64) -> Duration {
    let mut builder = clockworker::ExecutorBuilder::new().with_time_slice(Duration::ZERO);
    for key in 0..queues {
        builder = builder.with_queue(key, 1 + u32::from(key % 3));
    }
    let executor = builder.build().expect("valid configuration");
    let polls = Rc::new(Cell::new(0u64));
    let handles: Vec<_> = (0..queues)
        .map(|key| {
            let polls = polls.clone();
            executor.queue(key).expect("queue").spawn(async move {
                while polls.get() < iters {
                    polls.set(polls.get() + 1);
                    yield_once().await;
                }
            })
        })
        .collect();
    let start = Instant::now();
    executor.block_on(async {
        for handle in handles {
            handle.await.expect("task");
        }
    });
    start.elapsed()
}

fn selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_selection");
    configure(&mut group);
    for queues in [1u8, 2, 8, 64] {
        group.bench_function(format!("clockworker/{queues}"), |b| {
            b.iter_custom(|iters| selection_run(queues, iters))
        });
    }
    group.finish();
}

/// 1,000 tasks on one queue, each yielding `iters / 1000` times, spawned
/// round-robin into `groups` task groups (none if 0): ns per poll under the
/// queue's task scheduler.
fn scheduler_run(builder: clockworker::ExecutorBuilder<u8>, groups: u64, iters: u64) -> Duration {
    const TASKS: u64 = 1_000;
    let executor = builder.build().expect("valid configuration");
    let queue = executor.queue(0).expect("queue 0");
    let each = (iters / TASKS).max(1);
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let task = async move {
                for _ in 0..each {
                    yield_once().await;
                }
            };
            if groups == 0 {
                queue.spawn(task)
            } else {
                queue.group(i % groups).spawn(task)
            }
        })
        .collect();
    let start = Instant::now();
    executor.block_on(async {
        for handle in handles {
            handle.await.expect("task");
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (each * TASKS) as f64)
}

/// The per-poll cost of each built-in task scheduler against the default
/// FIFO fast path, with and without task groups.
fn schedulers(c: &mut Criterion) {
    use clockworker::ExecutorBuilder;
    use clockworker::sched::{Attribution, LeastAttainedService, Lifo, WeightedGroups};
    let mut group = c.benchmark_group("task_scheduler");
    configure(&mut group);
    type Case = (&'static str, fn() -> ExecutorBuilder<u8>, u64);
    let cases: [Case; 7] = [
        ("fifo", || ExecutorBuilder::new().with_queue(0, 1), 0),
        (
            "fifo_10_groups",
            || ExecutorBuilder::new().with_queue(0, 1),
            10,
        ),
        (
            "lifo",
            || ExecutorBuilder::new().with_queue_scheduler(0, 1, Lifo::new()),
            0,
        ),
        (
            "las_task",
            || ExecutorBuilder::new().with_queue_scheduler(0, 1, LeastAttainedService::new()),
            0,
        ),
        (
            "las_group_10_groups",
            || {
                ExecutorBuilder::new().with_queue_scheduler(
                    0,
                    1,
                    LeastAttainedService::with(Attribution::Group, Duration::from_millis(50)),
                )
            },
            10,
        ),
        (
            "weighted_groups_10",
            || ExecutorBuilder::new().with_queue_scheduler(0, 1, WeightedGroups::new()),
            10,
        ),
        (
            "weighted_groups_1000",
            || ExecutorBuilder::new().with_queue_scheduler(0, 1, WeightedGroups::new()),
            1_000,
        ),
    ];
    for (name, builder, groups) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| scheduler_run(builder(), groups, iters))
        });
    }
    group.finish();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
    Maintenance,
    Io,
}

const ENUM_KEYS: [Queue; 4] = [
    Queue::Foreground,
    Queue::Background,
    Queue::Maintenance,
    Queue::Io,
];
const STR_KEYS: [&str; 4] = ["foreground", "background", "maintenance", "io"];

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_lookup");
    configure(&mut group);

    macro_rules! bench_lookup {
        ($name:expr, $builder:path, $keys:expr) => {{
            let mut builder = <$builder>::new();
            for (i, key) in $keys.iter().enumerate() {
                builder = builder.with_queue(*key, (1 + i).try_into().expect("small weight"));
            }
            let executor = builder.build().expect("valid configuration");
            let keys = $keys;
            group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters {
                        let key = black_box(keys[(i % 4) as usize]);
                        black_box(executor.queue(key).expect("known key"));
                    }
                    start.elapsed()
                })
            });
        }};
    }
    bench_lookup!(
        "clockworker/enum",
        clockworker::ExecutorBuilder<Queue>,
        ENUM_KEYS
    );
    bench_lookup!(
        "clockworker/u32",
        clockworker::ExecutorBuilder<u32>,
        [10u32, 20, 30, 40]
    );
    bench_lookup!(
        "clockworker/str",
        clockworker::ExecutorBuilder<&'static str>,
        STR_KEYS
    );
    {
        let mut builder = clockworker::ExecutorBuilder::new();
        for key in 0..64u32 {
            builder = builder.with_queue(key * 7, 1);
        }
        let executor = builder.build().expect("valid configuration");
        group.bench_function("clockworker/u32_of_64", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    let key = black_box((i % 64) as u32 * 7);
                    black_box(executor.queue(key).expect("known key"));
                }
                start.elapsed()
            })
        });
    }
    bench_lookup!("upstream/enum", upstream::ExecutorBuilder<Queue>, ENUM_KEYS);
    bench_lookup!(
        "upstream/u32",
        upstream::ExecutorBuilder<u32>,
        [10u32, 20, 30, 40]
    );
    bench_lookup!(
        "upstream/str",
        upstream::ExecutorBuilder<&'static str>,
        STR_KEYS
    );
    group.finish();
}

/// Reads criterion's mean estimate (ns per iteration) for `group/id`
/// (criterion stores an id `a/b` in a directory `a_b`).
fn estimate(group: &str, id: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let id = id.replace('/', "_");
    let path = format!("{target}/criterion/{group}/{id}/new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = json.find("\"mean\"")?;
    let point = json[mean..].find("\"point_estimate\":")? + mean + "\"point_estimate\":".len();
    let end = json[point..].find([',', '}'])? + point;
    json[point..end].trim().parse().ok()
}

/// What the `tracing` feature costs clockworker: spawn + join and yields
/// with no subscriber, with a subscriber that filters the task spans out
/// (`DEBUG`), and with one that takes them and does nothing with them (the
/// instrumentation's own cost, not a real subscriber's). Built only with
/// the suite's `tracing` feature (on by default); the groups above compare
/// against `--no-default-features`, where the feature is compiled out.
#[cfg(feature = "tracing")]
fn tracing_overhead(c: &mut Criterion) {
    use tracing::level_filters::LevelFilter;
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::with_default;
    use tracing::{Event, Metadata, Subscriber};

    /// Takes everything up to `max`, keeps nothing.
    struct Discard {
        max: LevelFilter,
        next: std::sync::atomic::AtomicU64,
    }
    impl Subscriber for Discard {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            self.max >= *metadata.level()
        }
        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(self.max)
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1 + self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    let subscriber = |max| Discard {
        max,
        next: Default::default(),
    };

    for (name, workload) in [
        (
            "tracing_spawn",
            spawn_join::<Ours> as fn(&Ours, u64) -> Duration,
        ),
        ("tracing_yield_one_task", yield_one::<Ours>),
    ] {
        let mut group = c.benchmark_group(name);
        configure(&mut group);
        let peer = Ours::new();
        group.bench_function("no_subscriber", |b| {
            b.iter_custom(|iters| workload(&peer, iters))
        });
        group.bench_function("filtered_out", |b| {
            b.iter_custom(|iters| {
                with_default(subscriber(LevelFilter::DEBUG), || workload(&peer, iters))
            })
        });
        group.bench_function("traced", |b| {
            b.iter_custom(|iters| {
                with_default(subscriber(LevelFilter::TRACE), || workload(&peer, iters))
            })
        });
        group.finish();
    }
}

#[cfg(not(feature = "tracing"))]
fn tracing_overhead(_: &mut Criterion) {}

fn summary(_: &mut Criterion) {
    const PEERS: [(&str, &str); 6] = [
        ("clockworker", "clockworker"),
        ("tokio", "tokio LocalSet"),
        ("async-executor", "async-executor"),
        ("upstream", "clockworker 0.2.6"),
        ("glommio", "glommio"),
        // The floor: async-task with a thread-local FIFO, nothing else.
        ("async-task", "async-task alone"),
    ];
    let rows = [
        ("spawn", "spawn + join, 200k tasks (ns/task)"),
        ("spawn_live_1k", "spawn + join, 1k live tasks"),
        ("spawn_live_100k", "spawn + join, 100k live tasks"),
        ("spawn_live_1m", "spawn + join, 1M live tasks"),
        ("yield_one_task", "yield, 1 task (ns/yield)"),
        ("yield_1000_tasks", "yield, 1,000 tasks (ns/yield)"),
        ("ping_pong", "ping-pong (ns/round trip)"),
        ("ping_pong_remote", "ping-pong, wake from a thread"),
    ];
    let mut out = String::new();
    let _ = write!(out, "| workload |");
    for (_, name) in PEERS {
        let _ = write!(out, " {name} |");
    }
    // The bar of issue 5 is set against tokio, async-executor and 0.2.6;
    // glommio (which needs its own io_uring reactor) is shown beside it.
    let _ = writeln!(
        out,
        " ours / tokio | ours / best of tokio, async-executor, 0.2.6 | ours / glommio | ours / async-task alone |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (group, label) in rows {
        let values: Vec<Option<f64>> = PEERS.iter().map(|(id, _)| estimate(group, id)).collect();
        let _ = write!(out, "| {label} |");
        for value in &values {
            match value {
                Some(v) => {
                    let _ = write!(out, " {v:.1} |");
                }
                None => out.push_str(" – |"),
            }
        }
        let ours = values[0];
        let tokio = values[1];
        let best_peer = values[1..4]
            .iter()
            .flatten()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let ratio = |other: Option<f64>| match (ours, other) {
            (Some(o), Some(t)) if t.is_finite() => format!("{:.2}", o / t),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            " {} | {} | {} | {} |",
            ratio(tokio),
            ratio(Some(best_peer)),
            ratio(values[4]),
            ratio(values[5])
        );
    }

    let _ = writeln!(
        out,
        "\n| workload | clockworker | with the stall watchdog on (10 ms) | on / off |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (group, label) in rows {
        let off = estimate(group, "clockworker");
        let on = estimate(group, "clockworker-watchdog");
        if let (Some(off), Some(on)) = (off, on) {
            let _ = writeln!(out, "| {label} | {off:.1} | {on:.1} | {:.2} |", on / off);
        }
    }

    let _ = writeln!(
        out,
        "\n| queues runnable | ns per poll (slice 0: one pick per poll) | vs 2 queues |"
    );
    let _ = writeln!(out, "|---:|---:|---:|");
    let two = estimate("queue_selection", "clockworker/2");
    for queues in [1, 2, 8, 64] {
        if let Some(v) = estimate("queue_selection", &format!("clockworker/{queues}")) {
            let ratio = two.map(|t| format!("{:.2}", v / t)).unwrap_or_default();
            let _ = writeln!(out, "| {queues} | {v:.1} | {ratio} |");
        }
    }

    let _ = writeln!(
        out,
        "\n| task scheduler (1,000 yielding tasks, one queue) | ns per poll | vs FIFO |"
    );
    let _ = writeln!(out, "|---|---:|---:|");
    let fifo = estimate("task_scheduler", "fifo");
    for (id, label) in [
        ("fifo", "FIFO (default)"),
        ("fifo_10_groups", "FIFO, tasks in 10 groups"),
        ("lifo", "Lifo"),
        ("las_task", "LeastAttainedService, per task"),
        (
            "las_group_10_groups",
            "LeastAttainedService, per group, 10 groups",
        ),
        ("weighted_groups_10", "WeightedGroups, 10 groups"),
        ("weighted_groups_1000", "WeightedGroups, 1,000 groups"),
    ] {
        if let Some(v) = estimate("task_scheduler", id) {
            let ratio = fifo.map(|f| format!("{:.2}", v / f)).unwrap_or_default();
            let _ = writeln!(out, "| {label} | {v:.1} | {ratio} |");
        }
    }

    let _ = writeln!(
        out,
        "\n| `executor.queue(key)` | clockworker (ns) | clockworker 0.2.6 (ns) |"
    );
    let _ = writeln!(out, "|---|---:|---:|");
    for (key, label) in [
        ("enum", "enum key, 4 queues"),
        ("u32", "u32 key, 4 queues"),
        ("str", "&str key, 4 queues"),
    ] {
        let ours = estimate("queue_lookup", &format!("clockworker/{key}"));
        let theirs = estimate("queue_lookup", &format!("upstream/{key}"));
        let show = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
        let _ = writeln!(out, "| {label} | {} | {} |", show(ours), show(theirs));
    }
    if let Some(v) = estimate("queue_lookup", "clockworker/u32_of_64") {
        let _ = writeln!(out, "| u32 key, 64 queues | {v:.1} | – |");
    }

    if estimate("tracing_spawn", "no_subscriber").is_some() {
        let _ = writeln!(
            out,
            "\n| `tracing` feature (on) | no subscriber | subscriber at DEBUG | subscriber takes the spans |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (group, label) in [
            ("tracing_spawn", "spawn + join (ns/task)"),
            ("tracing_yield_one_task", "yield, 1 task (ns/yield)"),
        ] {
            let show = |id: &str| {
                estimate(group, id).map_or_else(|| "–".to_string(), |v| format!("{v:.1}"))
            };
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} |",
                show("no_subscriber"),
                show("filtered_out"),
                show("traced")
            );
        }
    }

    println!("\n{out}");
    let dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()) + "/bench-results";
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(format!("{dir}/executors.md"), &out);
    }
}

criterion_group!(
    benches,
    spawn,
    yields,
    ping_pongs,
    selection,
    schedulers,
    lookup,
    tracing_overhead,
    summary
);
criterion_main!(benches);
