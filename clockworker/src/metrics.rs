//! The stats as metrics: a stable, documented set of counters and gauges
//! with Prometheus names.
//!
//! [`ExecutorStats::metrics`] and [`PoolStats::metrics`] flatten a stats
//! snapshot into [`Metric`]s: a name, a help text, a [kind](MetricKind),
//! labels (`queue`, and `worker` in a pool) and a value in base units
//! (seconds, never nanoseconds). No exporter is built in: hand the metrics
//! to the client of your monitoring system at each scrape.
//! `examples/prometheus.rs` serves them over HTTP with the `prometheus-client`
//! crate in forty lines.
//!
//! The names follow the Prometheus conventions: an application prefix
//! (`clockworker_`), the unit last (`_seconds`), `_total` at the end of
//! every counter and of no gauge. They are a stability promise: a name
//! keeps its meaning, kind and labels; metrics may be added in any
//! release; a name is removed or changed only in a major release. The
//! metrics come grouped by name (every queue's value of one metric, then
//! the next metric) in the order of the tables below, so that an exporter
//! writes each family once.
//!
//! Counters count from the executor's start and never go down. The queue
//! delay and host hold quantiles are gauges over the executor's whole life
//! (its histograms are never reset), not over the last scrape interval.
//!
//! # Per queue (label `queue`)
//!
//! The `queue` label is the queue's key as `Debug` shows it, without the
//! quotes of a string key: `fg` for the key `"fg"`, `Foreground` for
//! `Queue::Foreground`, `0` for `0` (the name task spans carry too, with
//! the `tracing` feature).
//!
//! | name | kind | from [`QueueStats`] |
//! |---|---|---|
//! | `clockworker_queue_weight` | gauge | `weight` |
//! | `clockworker_queue_polls_total` | counter | `polls` |
//! | `clockworker_queue_busy_seconds_total` | counter | `busy` |
//! | `clockworker_queue_tasks_spawned_total` | counter | `spawned` |
//! | `clockworker_queue_tasks_completed_total` | counter | `completed` |
//! | `clockworker_queue_tasks_cancelled_total` | counter | `cancelled` |
//! | `clockworker_queue_tasks_panicked_total` | counter | `panicked` |
//! | `clockworker_queue_tasks_runnable` | gauge | `runnable` |
//! | `clockworker_queue_slices_total` | counter | `slices` |
//! | `clockworker_queue_preemptions_total` | counter | `preemptions` |
//! | `clockworker_queue_lag_seconds` | gauge | `lag_nanos` (signed) |
//! | `clockworker_queue_groups` | gauge | `groups.len()` (live task groups) |
//! | `clockworker_queue_delay_samples_total` | counter | `queue_delay.samples` |
//! | `clockworker_queue_delay_mean_seconds` | gauge | `queue_delay.mean` |
//! | `clockworker_queue_delay_p50_seconds` | gauge | `queue_delay.p50` |
//! | `clockworker_queue_delay_p90_seconds` | gauge | `queue_delay.p90` |
//! | `clockworker_queue_delay_p99_seconds` | gauge | `queue_delay.p99` |
//! | `clockworker_queue_delay_p999_seconds` | gauge | `queue_delay.p999` |
//! | `clockworker_queue_delay_max_seconds` | gauge | `queue_delay.max` |
//! | `clockworker_queue_stalls_total` | counter | `stalls` |
//! | `clockworker_queue_longest_stall_seconds` | gauge | `longest_stall` |
//!
//! # Per executor (no label)
//!
//! | name | kind | from [`ExecutorStats`] |
//! |---|---|---|
//! | `clockworker_live_tasks` | gauge | `live_tasks` |
//! | `clockworker_host_yields_total` | counter | `host_yields` |
//! | `clockworker_idle_waits_total` | counter | `idle_waits` |
//! | `clockworker_remote_schedules_total` | counter | `remote_schedules` |
//! | `clockworker_host_hold_samples_total` | counter | `host_hold.samples` |
//! | `clockworker_host_hold_mean_seconds` | gauge | `host_hold.mean` |
//! | `clockworker_host_hold_p50_seconds` | gauge | `host_hold.p50` |
//! | `clockworker_host_hold_p90_seconds` | gauge | `host_hold.p90` |
//! | `clockworker_host_hold_p99_seconds` | gauge | `host_hold.p99` |
//! | `clockworker_host_hold_p999_seconds` | gauge | `host_hold.p999` |
//! | `clockworker_host_hold_max_seconds` | gauge | `host_hold.max` |
//! | `clockworker_stall_handler_panics_total` | counter | `stall_handler_panics` |
//!
//! # Per pool worker (label `worker`)
//!
//! [`PoolStats::metrics`] gives every metric above once per worker, with
//! the label `worker` (its index) added, and these:
//!
//! | name | kind | from [`WorkerStats`] |
//! |---|---|---|
//! | `clockworker_worker_tasks_placed_total` | counter | `placed` |
//! | `clockworker_worker_tasks_stolen_total` | counter | `stolen` |
//! | `clockworker_worker_tasks_stolen_from_total` | counter | `had_stolen` |
//! | `clockworker_worker_parks_total` | counter | `parks` |
//! | `clockworker_worker_wakeups_total` | counter | `wakeups` |
//! | `clockworker_worker_stopped` | gauge | `stopped` (1 or 0) |
//!
//! The pool's totals are sums over workers (in PromQL,
//! `sum without (worker) (clockworker_queue_polls_total)`); quantiles do
//! not add up, so take the largest (`max without (worker)`) for a bound.
//!
//! # Adding a metric
//!
//! One line in the rows of `queue_rows`, `executor_rows` or `worker_rows`
//! (in this file), and its line in the tables above: a unit test checks
//! that every metric is documented here and follows the naming rules.

use std::fmt;
use std::time::Duration;

use crate::key::queue_name;
use crate::pool::{PoolStats, WorkerStats};
use crate::stats::{ExecutorStats, QueueStats};
use MetricKind::{Counter, Gauge};

/// Whether a [`Metric`] only goes up (a counter) or goes up and down (a
/// gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Counts from the executor's start; never goes down. Its name ends
    /// in `_total`.
    Counter,
    /// A value now (or, for a quantile, over the executor's life).
    Gauge,
}

impl MetricKind {
    /// `"counter"` or `"gauge"`, as the Prometheus text format's `# TYPE`
    /// line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of one metric (see [the module docs](self) for the names).
///
/// ```
/// use clockworker::metrics::MetricKind;
///
/// let executor = clockworker::ExecutorBuilder::new().with_queue("fg", 1).build().unwrap();
/// let fg = executor.queue("fg").unwrap();
/// executor.block_on(fg.spawn(async {})).unwrap();
///
/// let metrics = executor.stats().metrics();
/// let polls = metrics
///     .iter()
///     .find(|m| m.name == "clockworker_queue_polls_total")
///     .unwrap();
/// assert_eq!(polls.kind, MetricKind::Counter);
/// assert_eq!(polls.labels(), [("queue", "fg".to_string())]);
/// assert_eq!(polls.value, 1.0);
/// // For clients that add `_total` to counters themselves.
/// assert_eq!(polls.base_name(), "clockworker_queue_polls");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metric {
    /// Its Prometheus name, `_total` included for a counter.
    pub name: &'static str,
    /// One sentence saying what it measures.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The `queue` label: the queue's name, for a per-queue metric.
    pub queue: Option<String>,
    /// The `worker` label: the worker's index, for a pool's metric.
    pub worker: Option<usize>,
    /// The value, in base units (seconds for durations).
    pub value: f64,
}

impl Metric {
    fn new((name, kind, help, value): Row, queue: Option<&str>, worker: Option<usize>) -> Metric {
        Metric {
            name,
            help,
            kind,
            queue: queue.map(str::to_owned),
            worker,
            value,
        }
    }

    /// Its labels, as `(name, value)` pairs: `worker`, then `queue`, each
    /// if present.
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        let worker = self.worker.map(|worker| ("worker", worker.to_string()));
        let queue = self.queue.clone().map(|queue| ("queue", queue));
        worker.into_iter().chain(queue).collect()
    }

    /// The name without the `_total` of a counter: the family name that
    /// OpenMetrics clients (`prometheus-client`, for one) take, adding
    /// `_total` to the counter's samples themselves.
    pub fn base_name(&self) -> &'static str {
        match self.kind {
            MetricKind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            MetricKind::Gauge => self.name,
        }
    }
}

/// One metric of one snapshot: name, kind, help, value.
type Row = (&'static str, MetricKind, &'static str, f64);

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// The metrics of one queue.
#[rustfmt::skip]
fn queue_rows<K>(q: &QueueStats<K>) -> Vec<Row> {
    let delay = &q.queue_delay;
    vec![
        ("clockworker_queue_weight", Gauge, "The queue's weight.", q.weight as f64),
        ("clockworker_queue_polls_total", Counter, "Task polls run for the queue.", q.polls as f64),
        ("clockworker_queue_busy_seconds_total", Counter, "CPU time spent polling the queue's tasks.", seconds(q.busy)),
        ("clockworker_queue_tasks_spawned_total", Counter, "Tasks spawned onto the queue.", q.spawned as f64),
        ("clockworker_queue_tasks_completed_total", Counter, "Tasks of the queue that ran to completion.", q.completed as f64),
        ("clockworker_queue_tasks_cancelled_total", Counter, "Tasks of the queue aborted or dropped before they completed.", q.cancelled as f64),
        ("clockworker_queue_tasks_panicked_total", Counter, "Tasks of the queue whose poll or drop panicked.", q.panicked as f64),
        ("clockworker_queue_tasks_runnable", Gauge, "Tasks of the queue waiting to be polled.", q.runnable as f64),
        ("clockworker_queue_slices_total", Counter, "Times the scheduler picked the queue for a turn.", q.slices as f64),
        ("clockworker_queue_preemptions_total", Counter, "Times the queue woke with an earlier deadline than the running queue and preempted it.", q.preemptions as f64),
        ("clockworker_queue_lag_seconds", Gauge, "CPU time the queue is owed (positive) or has had in excess (negative) against its weighted share.", q.lag_nanos as f64 / 1e9),
        ("clockworker_queue_groups", Gauge, "Live task groups of the queue.", q.groups.len() as f64),
        ("clockworker_queue_delay_samples_total", Counter, "Queue delays recorded (one per poll).", delay.samples as f64),
        ("clockworker_queue_delay_mean_seconds", Gauge, "Mean time from a task becoming runnable to its poll.", seconds(delay.mean)),
        ("clockworker_queue_delay_p50_seconds", Gauge, "Median time from a task becoming runnable to its poll.", seconds(delay.p50)),
        ("clockworker_queue_delay_p90_seconds", Gauge, "90th percentile of the time from a task becoming runnable to its poll.", seconds(delay.p90)),
        ("clockworker_queue_delay_p99_seconds", Gauge, "99th percentile of the time from a task becoming runnable to its poll.", seconds(delay.p99)),
        ("clockworker_queue_delay_p999_seconds", Gauge, "99.9th percentile of the time from a task becoming runnable to its poll.", seconds(delay.p999)),
        ("clockworker_queue_delay_max_seconds", Gauge, "Longest time from a task becoming runnable to its poll.", seconds(delay.max)),
        ("clockworker_queue_stalls_total", Counter, "Polls of the queue's tasks that ran longer than the stall threshold.", q.stalls as f64),
        ("clockworker_queue_longest_stall_seconds", Gauge, "The longest of the queue's stalled polls.", seconds(q.longest_stall)),
    ]
}

/// The executor's own metrics.
#[rustfmt::skip]
fn executor_rows<K>(stats: &ExecutorStats<K>) -> Vec<Row> {
    let hold = &stats.host_hold;
    vec![
        ("clockworker_live_tasks", Gauge, "Tasks spawned and not yet finished.", stats.live_tasks as f64),
        ("clockworker_host_yields_total", Counter, "Times the executor handed control back to its host while work was runnable.", stats.host_yields as f64),
        ("clockworker_idle_waits_total", Counter, "Times the executor had nothing to run and waited for a wake-up.", stats.idle_waits as f64),
        ("clockworker_remote_schedules_total", Counter, "Spawns and wake-ups that reached the executor from other threads or from outside its run.", stats.remote_schedules as f64),
        ("clockworker_host_hold_samples_total", Counter, "Polls of run_until futures measured for host hold.", hold.samples as f64),
        ("clockworker_host_hold_mean_seconds", Gauge, "Mean time a poll of a run_until future kept its host waiting.", seconds(hold.mean)),
        ("clockworker_host_hold_p50_seconds", Gauge, "Median time a poll of a run_until future kept its host waiting.", seconds(hold.p50)),
        ("clockworker_host_hold_p90_seconds", Gauge, "90th percentile of the time a poll of a run_until future kept its host waiting.", seconds(hold.p90)),
        ("clockworker_host_hold_p99_seconds", Gauge, "99th percentile of the time a poll of a run_until future kept its host waiting.", seconds(hold.p99)),
        ("clockworker_host_hold_p999_seconds", Gauge, "99.9th percentile of the time a poll of a run_until future kept its host waiting.", seconds(hold.p999)),
        ("clockworker_host_hold_max_seconds", Gauge, "Longest time a poll of a run_until future kept its host waiting.", seconds(hold.max)),
        ("clockworker_stall_handler_panics_total", Counter, "Calls of the stall handler that panicked.", stats.stall_handler_panics as f64),
    ]
}

/// A pool worker's own metrics.
#[rustfmt::skip]
fn worker_rows<K>(worker: &WorkerStats<K>) -> Vec<Row> {
    vec![
        ("clockworker_worker_tasks_placed_total", Counter, "Tasks the pool placed on the worker.", worker.placed as f64),
        ("clockworker_worker_tasks_stolen_total", Counter, "Tasks the worker took from busy workers while idle.", worker.stolen as f64),
        ("clockworker_worker_tasks_stolen_from_total", Counter, "Tasks other workers took from this one.", worker.had_stolen as f64),
        ("clockworker_worker_parks_total", Counter, "Times the worker went idle and parked.", worker.parks as f64),
        ("clockworker_worker_wakeups_total", Counter, "Times a spawn or wake from another thread woke the idle worker.", worker.wakeups as f64),
        ("clockworker_worker_stopped", Gauge, "1 once the worker has stopped, else 0.", if worker.stopped { 1.0 } else { 0.0 }),
    ]
}

/// Pushes an executor's metrics onto `out`, labelled with `worker`.
fn push_executor<K: fmt::Debug>(
    stats: &ExecutorStats<K>,
    worker: Option<usize>,
    out: &mut Vec<Metric>,
) {
    for queue in &stats.queues {
        let name = queue_name(&queue.key);
        out.extend(
            queue_rows(queue)
                .into_iter()
                .map(|row| Metric::new(row, Some(&name), worker)),
        );
    }
    out.extend(
        executor_rows(stats)
            .into_iter()
            .map(|row| Metric::new(row, None, worker)),
    );
}

/// Reorders `metrics` so that each name's values are together, names in
/// the order they first appear, values in their order.
fn grouped_by_name(metrics: Vec<Metric>) -> Vec<Metric> {
    let mut names: Vec<&'static str> = Vec::new();
    for metric in &metrics {
        if !names.contains(&metric.name) {
            names.push(metric.name);
        }
    }
    let mut grouped = Vec::with_capacity(metrics.len());
    for name in names {
        grouped.extend(metrics.iter().filter(|m| m.name == name).cloned());
    }
    grouped
}

impl<K: fmt::Debug> ExecutorStats<K> {
    /// The snapshot as metrics: every queue's, labelled `queue`, then the
    /// executor's own, grouped by name (see [`metrics`](crate::metrics)
    /// for the names, which are stable).
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = Vec::new();
        push_executor(self, None, &mut metrics);
        grouped_by_name(metrics)
    }
}

impl<K: fmt::Debug> PoolStats<K> {
    /// The snapshot as metrics: each worker's executor metrics and its own,
    /// labelled `worker`, grouped by name (see [`metrics`](crate::metrics)).
    ///
    /// ```
    /// let pool = clockworker::Pool::builder().workers(2).with_queue("q", 1).build().unwrap();
    /// pool.block_on(pool.spawn("q", async {})).unwrap();
    /// let metrics = pool.stats().metrics();
    /// let spawned: f64 = metrics
    ///     .iter()
    ///     .filter(|m| m.name == "clockworker_queue_tasks_spawned_total")
    ///     .map(|m| m.value)
    ///     .sum();
    /// assert_eq!(spawned, 1.0);
    /// assert!(metrics.iter().all(|m| m.worker.is_some()));
    /// pool.shutdown_blocking();
    /// ```
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = Vec::new();
        for worker in &self.workers {
            push_executor(&worker.executor, Some(worker.worker), &mut metrics);
            metrics.extend(
                worker_rows(worker)
                    .into_iter()
                    .map(|row| Metric::new(row, None, Some(worker.worker))),
            );
        }
        grouped_by_name(metrics)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{ExecutorBuilder, Pool, yield_now};

    /// A snapshot with something in every field: two queues, a group, a
    /// panic, an abort, a live task, a remote spawn.
    fn busy_stats() -> ExecutorStats<&'static str> {
        let executor = ExecutorBuilder::new()
            .with_queue("fg", 8)
            .with_queue("bg", 1)
            .with_panic_on_task_panic(false)
            .build()
            .unwrap();
        let fg = executor.queue("fg").unwrap();
        let bg = executor.queue("bg").unwrap();
        let spawner = executor.spawner("bg").unwrap();
        executor.block_on(async {
            let grouped = fg.group(3).spawn(async { yield_now().await });
            let panicking = bg.spawn(async { panic!("counted") });
            let parked = bg.spawn(std::future::pending::<()>());
            let remote = std::thread::spawn(move || spawner.spawn(async {}))
                .join()
                .unwrap();
            yield_now().await;
            parked.abort();
            grouped.await.unwrap();
            assert!(panicking.await.unwrap_err().is_panic());
            assert!(parked.await.unwrap_err().is_cancelled());
            remote.await.unwrap();
        });
        // Alive, in a group, and runnable when the snapshot is taken.
        let _live = fg.group(9).spawn(async {});
        executor.stats()
    }

    fn value(metrics: &[Metric], name: &str, queue: Option<&str>) -> f64 {
        let found: Vec<&Metric> = metrics
            .iter()
            .filter(|m| m.name == name && m.queue.as_deref() == queue)
            .collect();
        assert_eq!(found.len(), 1, "{name} {queue:?}");
        found[0].value
    }

    #[test]
    fn values_are_the_stats() {
        let stats = busy_stats();
        let metrics = stats.metrics();
        for q in &stats.queues {
            let queue = Some(q.key);
            let d = &q.queue_delay;
            let expected = [
                ("clockworker_queue_weight", q.weight as f64),
                ("clockworker_queue_polls_total", q.polls as f64),
                ("clockworker_queue_busy_seconds_total", q.busy.as_secs_f64()),
                ("clockworker_queue_tasks_spawned_total", q.spawned as f64),
                (
                    "clockworker_queue_tasks_completed_total",
                    q.completed as f64,
                ),
                (
                    "clockworker_queue_tasks_cancelled_total",
                    q.cancelled as f64,
                ),
                ("clockworker_queue_tasks_panicked_total", q.panicked as f64),
                ("clockworker_queue_tasks_runnable", q.runnable as f64),
                ("clockworker_queue_slices_total", q.slices as f64),
                ("clockworker_queue_preemptions_total", q.preemptions as f64),
                ("clockworker_queue_lag_seconds", q.lag_nanos as f64 * 1e-9),
                ("clockworker_queue_groups", q.groups.len() as f64),
                ("clockworker_queue_delay_samples_total", d.samples as f64),
                ("clockworker_queue_delay_mean_seconds", d.mean.as_secs_f64()),
                ("clockworker_queue_delay_p50_seconds", d.p50.as_secs_f64()),
                ("clockworker_queue_delay_p90_seconds", d.p90.as_secs_f64()),
                ("clockworker_queue_delay_p99_seconds", d.p99.as_secs_f64()),
                ("clockworker_queue_delay_p999_seconds", d.p999.as_secs_f64()),
                ("clockworker_queue_delay_max_seconds", d.max.as_secs_f64()),
                ("clockworker_queue_stalls_total", q.stalls as f64),
                (
                    "clockworker_queue_longest_stall_seconds",
                    q.longest_stall.as_secs_f64(),
                ),
            ];
            for (name, want) in expected {
                let got = value(&metrics, name, queue);
                assert!(
                    (got - want).abs() <= want.abs() * 1e-12,
                    "{name}: {got} != {want}"
                );
            }
        }
        let h = &stats.host_hold;
        for (name, want) in [
            ("clockworker_live_tasks", stats.live_tasks as f64),
            ("clockworker_host_yields_total", stats.host_yields as f64),
            ("clockworker_idle_waits_total", stats.idle_waits as f64),
            (
                "clockworker_remote_schedules_total",
                stats.remote_schedules as f64,
            ),
            ("clockworker_host_hold_samples_total", h.samples as f64),
            ("clockworker_host_hold_mean_seconds", h.mean.as_secs_f64()),
            ("clockworker_host_hold_p50_seconds", h.p50.as_secs_f64()),
            ("clockworker_host_hold_p90_seconds", h.p90.as_secs_f64()),
            ("clockworker_host_hold_p99_seconds", h.p99.as_secs_f64()),
            ("clockworker_host_hold_p999_seconds", h.p999.as_secs_f64()),
            ("clockworker_host_hold_max_seconds", h.max.as_secs_f64()),
            (
                "clockworker_stall_handler_panics_total",
                stats.stall_handler_panics as f64,
            ),
        ] {
            assert_eq!(value(&metrics, name, None), want, "{name}");
        }
        // The workload left a mark in the counters the mapping reads.
        let fg = Some("fg");
        let bg = Some("bg");
        assert_eq!(
            value(&metrics, "clockworker_queue_tasks_panicked_total", bg),
            1.0
        );
        assert_eq!(
            value(&metrics, "clockworker_queue_tasks_cancelled_total", bg),
            1.0
        );
        assert_eq!(value(&metrics, "clockworker_queue_tasks_runnable", fg), 1.0);
        assert_eq!(value(&metrics, "clockworker_queue_groups", fg), 1.0);
        assert_eq!(value(&metrics, "clockworker_live_tasks", None), 1.0);
        assert!(value(&metrics, "clockworker_remote_schedules_total", None) >= 1.0);
        assert!(value(&metrics, "clockworker_queue_busy_seconds_total", fg) > 0.0);
    }

    /// Every metric of an executor and of a pool's worker.
    fn every_metric() -> Vec<Metric> {
        let pool = Pool::builder()
            .workers(2)
            .with_queue("q", 1)
            .build()
            .unwrap();
        pool.block_on(pool.spawn("q", async {})).unwrap();
        let mut metrics = pool.stats().metrics();
        pool.shutdown_blocking();
        metrics.extend(busy_stats().metrics());
        metrics
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        for metric in every_metric() {
            let name = metric.name;
            assert!(name.starts_with("clockworker_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                name.ends_with("_total"),
                metric.kind == MetricKind::Counter,
                "{name}: counters, and only counters, end in _total"
            );
            assert!(
                !name.contains("nanos") && !name.contains("_ms"),
                "{name}: base units"
            );
            assert!(
                metric.help.ends_with('.') && metric.help.len() > 10,
                "{name}: {}",
                metric.help
            );
            assert!(metric.value.is_finite(), "{name}");
        }
    }

    #[test]
    fn one_value_per_name_and_labels_grouped_by_name() {
        for metrics in [busy_stats().metrics(), {
            let pool = Pool::builder()
                .workers(3)
                .with_queue("a", 1)
                .with_queue("b", 2)
                .build()
                .unwrap();
            let stats = pool.stats();
            pool.shutdown_blocking();
            stats.metrics()
        }] {
            let mut seen = HashSet::new();
            for metric in &metrics {
                assert!(
                    seen.insert((metric.name, metric.labels())),
                    "{metric:?} twice"
                );
            }
            // Each name's values are contiguous, and a name means one kind
            // and one help text.
            let mut finished: HashSet<&str> = HashSet::new();
            for pair in metrics.windows(2) {
                if pair[0].name != pair[1].name {
                    assert!(finished.insert(pair[0].name), "{} split", pair[0].name);
                    assert!(!finished.contains(pair[1].name), "{} split", pair[1].name);
                } else {
                    assert_eq!((pair[0].kind, pair[0].help), (pair[1].kind, pair[1].help));
                }
            }
        }
    }

    #[test]
    fn every_metric_is_documented_and_every_documented_one_exists() {
        let source = include_str!("metrics.rs");
        let metrics = every_metric();
        let names: HashSet<&str> = metrics.iter().map(|m| m.name).collect();
        for metric in &metrics {
            let row = format!("//! | `{}` | {} |", metric.name, metric.kind);
            assert!(source.contains(&row), "no row `{row}` in the module docs");
        }
        let documented: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `clockworker_"))
            .map(|rest| &rest[..rest.find('`').unwrap()])
            .collect();
        assert_eq!(documented.len(), names.len(), "{documented:?}");
        for name in documented {
            assert!(
                names.contains(format!("clockworker_{name}").as_str()),
                "{name}"
            );
        }
    }

    #[test]
    fn pool_metrics_carry_the_worker() {
        let pool = Pool::builder()
            .workers(2)
            .with_queue("fg", 2)
            .with_queue("bg", 1)
            .build()
            .unwrap();
        let task = pool.spawn_on(1, "bg", || async { 5 });
        assert_eq!(pool.block_on(task).unwrap(), 5);
        let stats = pool.stats();
        pool.shutdown_blocking();
        let metrics = stats.metrics();
        assert!(metrics.iter().all(|m| m.worker.is_some()));
        let spawned = |worker: usize, queue: &str| {
            metrics
                .iter()
                .find(|m| {
                    m.name == "clockworker_queue_tasks_spawned_total"
                        && m.worker == Some(worker)
                        && m.queue.as_deref() == Some(queue)
                })
                .unwrap()
                .value
        };
        // `spawn_on` runs two tasks on its worker: the shell and the future.
        assert_eq!(spawned(1, "bg"), 2.0);
        assert_eq!(spawned(0, "bg"), 0.0);
        assert_eq!(spawned(0, "fg"), 0.0);
        let placed: Vec<(Option<usize>, f64)> = metrics
            .iter()
            .filter(|m| m.name == "clockworker_worker_tasks_placed_total")
            .map(|m| (m.worker, m.value))
            .collect();
        assert_eq!(placed, [(Some(0), 0.0), (Some(1), 1.0)]);
        let labels = metrics
            .iter()
            .find(|m| m.name == "clockworker_queue_polls_total")
            .unwrap()
            .labels();
        assert_eq!(
            labels,
            [("worker", "0".to_string()), ("queue", "fg".to_string())]
        );
    }
}
