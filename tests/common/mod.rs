//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Busy-waits for `duration` of wall time.
pub fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Serializes the timing-sensitive tests of one test binary, so that they do
/// not compete with each other for the machine's cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts polls and drops of the future it wraps.
#[derive(Clone, Default)]
pub struct Probe {
    pub polls: Arc<AtomicUsize>,
    pub drops: Arc<AtomicUsize>,
}

impl Probe {
    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }

    /// Wraps `future` so that its polls and its drop are counted.
    pub fn wrap<F: Future>(&self, future: F) -> Probed<F> {
        Probed {
            future: Box::pin(future),
            probe: self.clone(),
        }
    }
}

pub struct Probed<F> {
    future: Pin<Box<F>>,
    probe: Probe,
}

impl<F: Future> Future for Probed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.probe.polls.fetch_add(1, Ordering::SeqCst);
        self.future.as_mut().poll(cx)
    }
}

impl<F> Drop for Probed<F> {
    fn drop(&mut self) {
        self.probe.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// The `q` quantile (0..=1) of `samples` (sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    assert!(!samples.is_empty());
    samples.sort();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// A tokio current-thread runtime with IO and timers.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An executor with one queue (key `0`), catching task panics or not.
pub fn one_queue(catch: bool) -> clockworker::Executor<u8> {
    clockworker::ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_panic_on_task_panic(!catch)
        .build()
        .unwrap()
}

/// Runs `executor` until `done()` holds, giving up after 10,000 rounds of
/// the `block_on` future (far more than any test needs). Returns whether
/// `done()` holds.
pub fn run_until<K>(executor: &clockworker::Executor<K>, done: impl Fn() -> bool) -> bool
where
    K: Copy + Eq + std::hash::Hash + std::fmt::Debug + 'static,
{
    executor.block_on(async {
        for _ in 0..10_000 {
            if done() {
                return true;
            }
            clockworker::yield_now().await;
        }
        done()
    })
}
