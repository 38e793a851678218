//! clockworker's metrics in the Prometheus text exposition format (through
//! `prometheus-client`), served over a bare HTTP/1.1 exchange on tokio.
//! Shared by `examples/prometheus.rs` and `tests/metrics.rs` (each includes
//! it with `#[path]`).

#![allow(dead_code)]

use std::io;

use clockworker::metrics::{Metric, MetricKind};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The content type of the Prometheus text format that
/// `prometheus_client::encoding::prometheus_text` writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape's metrics, as a `prometheus-client` collector: the registry
/// asks it to encode itself at each scrape.
#[derive(Debug)]
struct Snapshot(Vec<Metric>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // clockworker hands its metrics grouped by name: one family each.
        for family in self.0.chunk_by(|a, b| a.name == b.name) {
            let first = &family[0];
            let kind = match first.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
            };
            // `base_name`: the encoder adds a counter's `_total` itself.
            let mut samples =
                encoder.encode_descriptor(first.base_name(), first.help, None, kind)?;
            for metric in family {
                let labels = metric.labels();
                let sample = samples.encode_family(&labels)?;
                match metric.kind {
                    MetricKind::Counter => ConstCounter::new(metric.value).encode(sample)?,
                    MetricKind::Gauge => ConstGauge::new(metric.value).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

/// `metrics` in the Prometheus text format.
pub fn encode(metrics: Vec<Metric>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(metrics)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

/// Answers one HTTP/1.1 request on `stream` and closes it: `GET /metrics`
/// gets `metrics()` encoded, anything else a 404.
pub async fn serve(mut stream: TcpStream, metrics: impl FnOnce() -> Vec<Metric>) -> io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || request.len() > 16 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let request_line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) = if request_line.starts_with(b"GET /metrics ") {
        ("200 OK", CONTENT_TYPE, encode(metrics()))
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Fetches `http://{address}{path}` and returns the response, head and
/// body, whole (the server closes the connection after it).
pub async fn fetch(address: std::net::SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}
