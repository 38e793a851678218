//! The metrics in the Prometheus text format, as `examples/prometheus.rs`
//! serves them (the same encoder and HTTP exchange, included from
//! `examples/support/prometheus.rs`).

#[path = "../examples/support/prometheus.rs"]
mod prometheus;

use std::net::SocketAddr;

use clockworker::metrics::Metric;
use clockworker::{ExecutorBuilder, Pool, yield_now};

/// The value of the sample `series` (name and labels, as written) in
/// `text`, which must have exactly one.
fn sample(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "one sample {series} in:\n{text}");
    values[0]
}

/// Each metric is one family, described once with its kind and help.
fn assert_families(text: &str, metrics: &[Metric]) {
    for metric in metrics {
        for line in [
            format!("# TYPE {} {}\n", metric.name, metric.kind),
            format!("# HELP {} {}\n", metric.name, metric.help),
        ] {
            assert_eq!(text.matches(&line).count(), 1, "{line:?} in:\n{text}");
        }
    }
}

#[test]
fn the_exposition_has_every_metric_with_its_value() {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    executor.block_on(async {
        let a = fg.spawn(async { yield_now().await });
        let b = bg.group(4).spawn(async {});
        a.await.unwrap();
        b.await.unwrap();
    });
    let stats = executor.stats();
    let metrics = stats.metrics();
    let text = prometheus::encode(metrics.clone());
    assert_families(&text, &metrics);

    // Counters keep their `_total`; labels are the queue names.
    let fg_stats = stats.queue("fg").unwrap();
    assert_eq!(
        sample(&text, r#"clockworker_queue_polls_total{queue="fg"}"#),
        fg_stats.polls as f64
    );
    assert_eq!(fg_stats.polls, 2);
    assert_eq!(
        sample(
            &text,
            r#"clockworker_queue_tasks_completed_total{queue="bg"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"clockworker_queue_busy_seconds_total{queue="fg"}"#),
        fg_stats.busy.as_secs_f64()
    );
    assert_eq!(
        sample(&text, r#"clockworker_queue_delay_p99_seconds{queue="bg"}"#),
        stats.queue("bg").unwrap().queue_delay.p99.as_secs_f64()
    );
    assert_eq!(
        sample(&text, r#"clockworker_queue_weight{queue="fg"}"#),
        8.0
    );
    // Executor-wide: no labels.
    assert_eq!(sample(&text, "clockworker_live_tasks"), 0.0);
    assert_eq!(sample(&text, "clockworker_idle_waits_total"), 0.0);
    assert!(text.contains("# TYPE clockworker_queue_delay_max_seconds gauge\n"));
}

#[test]
fn a_pools_samples_carry_the_worker() {
    let pool = Pool::builder()
        .workers(2)
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    for worker in 0..2 {
        let task = pool.spawn_on(worker, "fg", || async {});
        pool.block_on(task).unwrap();
    }
    let stats = pool.stats();
    pool.shutdown_blocking();
    let metrics = stats.metrics();
    let text = prometheus::encode(metrics.clone());
    assert_families(&text, &metrics);
    for worker in 0..2 {
        // The `spawn_on` shell and the future it starts.
        let spawned =
            format!(r#"clockworker_queue_tasks_spawned_total{{worker="{worker}",queue="fg"}}"#);
        assert_eq!(sample(&text, &spawned), 2.0);
        let placed = format!(r#"clockworker_worker_tasks_placed_total{{worker="{worker}"}}"#);
        assert_eq!(sample(&text, &placed), 1.0);
        let stopped = format!(r#"clockworker_worker_stopped{{worker="{worker}"}}"#);
        assert_eq!(
            sample(&text, &stopped),
            0.0,
            "a snapshot from before the shutdown"
        );
    }
}

/// The example's HTTP exchange: a scrape from a clockworker task on tokio,
/// answered by another.
#[test]
fn served_over_http_on_clockworker_and_tokio() {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (metrics, missing) = runtime.block_on(executor.run_until(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let server = fg.spawn(async move {
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                let metrics = || clockworker::Handle::<&str>::current().stats().metrics();
                prometheus::serve(stream, metrics).await.unwrap();
            }
        });
        let metrics = prometheus::fetch(address, "/metrics").await.unwrap();
        let missing = prometheus::fetch(address, "/").await.unwrap();
        server.await.unwrap();
        (metrics, missing)
    }));

    let (head, body) = metrics.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("Content-Type: {}", prometheus::CONTENT_TYPE)));
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    // The server task itself is being polled: one spawned, none completed.
    assert_eq!(
        sample(body, r#"clockworker_queue_tasks_spawned_total{queue="fg"}"#),
        1.0
    );
    assert_eq!(
        sample(
            body,
            r#"clockworker_queue_tasks_completed_total{queue="fg"}"#
        ),
        0.0
    );
    assert_eq!(sample(body, "clockworker_live_tasks"), 1.0);
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
}
