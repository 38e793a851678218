//! `clockworker::time`: sleeps, timeouts and intervals on every host (the
//! executor's own `block_on`, tokio, smol, futures-lite, outside any
//! executor, a pool's workers), cancellation, and idle executors with a far
//! timer not waking up.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clockworker::time::{self, Elapsed, MissedTickBehavior};
use clockworker::{ExecutorBuilder, Pool};
use common::{one_queue, tokio_runtime};

const MS: Duration = Duration::from_millis(1);

fn assert_send<T: Send>(_: &T) {}

/// Waits 20 ms on the executor (three ticks of a 5 ms interval, then a
/// 10 ms sleep), and returns how long it took.
async fn nap() -> Duration {
    let started = Instant::now();
    let mut ticks = time::interval(5 * MS);
    for _ in 0..3 {
        ticks.tick().await;
    }
    time::sleep(10 * MS).await;
    started.elapsed()
}

#[test]
fn timer_futures_are_send() {
    let sleep = time::sleep(MS);
    assert_send(&sleep);
    assert_send(&time::timeout(MS, async {}));
    assert_send(&time::interval(MS));
}

#[test]
fn sleeps_on_the_executor_s_own_block_on_without_spinning() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let took = executor.block_on(queue.spawn(nap())).unwrap();
    assert!(took >= 20 * MS, "woke after {took:?}");
    // The thread parked with the deadline: a handful of idle waits, not a
    // busy loop.
    let idle = executor.stats().idle_waits;
    assert!(idle <= 5, "{idle} idle waits for one 20 ms sleep");
}

#[test]
fn sleeps_inside_tokio() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let took = tokio_runtime()
        .block_on(executor.run_until(queue.spawn(nap())))
        .unwrap();
    assert!(took >= 20 * MS);
}

#[test]
fn sleeps_inside_smol_and_futures_lite() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let took = smol::block_on(executor.run_until(queue.spawn(nap()))).unwrap();
    assert!(took >= 20 * MS);
    let took = futures_lite::future::block_on(executor.run_until(queue.spawn(nap()))).unwrap();
    assert!(took >= 20 * MS);
}

#[test]
fn sleeps_outside_any_executor() {
    let took = futures_lite::future::block_on(nap());
    assert!(took >= 20 * MS);
    // And on a thread with no runtime at all, through `smol`.
    let took = std::thread::spawn(|| smol::block_on(nap())).join().unwrap();
    assert!(took >= 20 * MS);
}

#[test]
fn sleeps_on_a_pool_s_workers() {
    let pool = Pool::builder()
        .workers(2)
        .with_queue(0u8, 1)
        .build()
        .unwrap();
    let naps: Vec<_> = (0..2).map(|worker| pool.spawn_on(worker, 0, nap)).collect();
    for took in naps {
        assert!(pool.block_on(took).unwrap() >= 20 * MS);
    }
    assert_eq!(pool.shutdown_blocking().completed(), 4);
}

#[test]
fn timeouts() {
    let executor = one_queue(true);
    executor.block_on(async {
        let started = Instant::now();
        let never = std::future::pending::<()>();
        let elapsed: Elapsed = time::timeout(10 * MS, never).await.unwrap_err();
        assert_eq!(elapsed.to_string(), "deadline has elapsed");
        assert!(started.elapsed() >= 10 * MS);
        assert_eq!(
            time::timeout(Duration::from_secs(3600), async { 7 }).await,
            Ok(7)
        );
        let later = time::timeout_at(
            Instant::now() + 5 * MS,
            time::sleep(Duration::from_secs(3600)),
        );
        assert!(later.await.is_err());
    });
}

/// Timers fire in deadline order, each after its deadline, and every one
/// exactly once, with many outstanding at once.
#[test]
fn ten_thousand_sleeps_each_fire_once_after_their_deadline() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let early = Rc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..10_000u64)
        .map(|i| {
            let (fired, early) = (fired.clone(), early.clone());
            // Deadlines 0..20 ms, scattered.
            let at = start + Duration::from_micros((i * 7_919) % 20_000);
            queue.spawn(async move {
                time::sleep_until(at).await;
                if Instant::now() < at {
                    early.fetch_add(1, Ordering::Relaxed);
                }
                fired.borrow_mut().push(i);
            })
        })
        .collect();
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(early.load(Ordering::Relaxed), 0);
    let mut fired = fired.borrow().clone();
    assert_eq!(fired.len(), 10_000);
    fired.sort_unstable();
    fired.dedup();
    assert_eq!(fired.len(), 10_000);
}

/// Dropping a sleep cancels it: an aborted task's hour-long sleep leaves
/// nothing that wakes the executor.
#[test]
fn an_idle_executor_with_a_far_timer_does_not_wake_up() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let far = queue.spawn(time::sleep(Duration::from_secs(3600)));
    // Under its own block_on: one park until the 100 ms sleep ends.
    let before = executor.stats().idle_waits;
    executor.block_on(time::sleep(100 * MS));
    let idle = executor.stats().idle_waits - before;
    assert!(idle <= 3, "{idle} idle waits in 100 ms");
    // Under tokio (the timer thread's ring): the same.
    let before = executor.stats().idle_waits;
    tokio_runtime().block_on(executor.run_until(time::sleep(100 * MS)));
    let idle = executor.stats().idle_waits - before;
    assert!(idle <= 3, "{idle} idle waits in 100 ms under tokio");
    far.abort();
    executor.block_on(async {
        assert!(far.await.unwrap_err().is_cancelled());
    });
}

/// Interval ticks never drift: tick k is due exactly start + k·period, and
/// a late task gets the missed ticks as its behavior says.
#[test]
fn intervals_do_not_drift_and_handle_missed_ticks() {
    let executor = one_queue(true);
    executor.block_on(async {
        let start = Instant::now();
        let period = 2 * MS;
        let mut ticks = time::interval_at(start, period);
        for k in 0..50u32 {
            assert_eq!(ticks.tick().await, start + period * k);
        }

        // Burst: after a stall of 10 periods, the missed ticks come at once.
        let mut burst = time::interval_at(Instant::now(), period);
        let first = burst.tick().await;
        std::thread::sleep(period * 10);
        for k in 1..=10u32 {
            assert_eq!(burst.tick().await, first + period * k);
        }

        // Skip: one late tick, then the next one on the original grid.
        let mut skip = time::interval_at(Instant::now(), period);
        skip.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let first = skip.tick().await;
        std::thread::sleep(period * 10);
        assert_eq!(skip.tick().await, first + period);
        let next = skip.tick().await;
        let offset = (next - first).as_nanos() % period.as_nanos();
        assert_eq!(offset, 0, "off the grid");
        assert!(next - first >= period * 10);

        // Delay: one late tick, then a period after it was taken.
        let mut delay = time::interval_at(Instant::now(), period);
        delay.set_missed_tick_behavior(MissedTickBehavior::Delay);
        delay.tick().await;
        std::thread::sleep(period * 10);
        delay.tick().await;
        let taken = Instant::now();
        let next = delay.tick().await;
        assert!(next >= taken + period - MS / 2);
    });
}

/// A sleep moved between executors (a `Send` future) registers with the
/// one it is polled on.
#[test]
fn a_sleep_follows_its_task_to_another_executor() {
    let first = one_queue(true);
    let second = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let mut sleep = Box::pin(time::sleep(30 * MS));
    first.block_on(async {
        // Registers on `first`, then stops waiting.
        let _ = time::timeout(MS, sleep.as_mut()).await;
    });
    let started = Instant::now();
    second.block_on(sleep);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Many threads sleeping outside any executor share the one timer thread.
#[test]
fn sleeps_from_many_threads_all_wake() {
    let woke = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let woke = woke.clone();
            std::thread::spawn(move || {
                futures_lite::future::block_on(time::sleep(MS * (5 + i)));
                woke.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(woke.load(Ordering::Relaxed), 8);
}

// ----- the test clock ---------------------------------------------------------

/// With the clock paused, 1,000 one-second ticks take no real time and
/// never drift: tick k is due exactly start + k seconds.
#[test]
fn a_paused_clock_runs_an_interval_1000_ticks_without_drift() {
    let executor = one_queue(true);
    let real = Instant::now();
    executor.block_on(async {
        time::pause().unwrap();
        let start = time::now();
        let mut ticks = time::interval(Duration::from_secs(1));
        for k in 0..1_000u32 {
            assert_eq!(ticks.tick().await, start + Duration::from_secs(1) * k);
        }
        assert!(time::now() - start >= Duration::from_secs(999));
    });
    assert!(
        real.elapsed() < Duration::from_secs(30),
        "took {:?}",
        real.elapsed()
    );
}

/// `advance` moves the paused clock and wakes exactly the timers it
/// passes; `resume` brings real time back.
#[test]
fn advance_wakes_the_timers_it_passes() {
    let executor = one_queue(true);
    let queue = executor.queue(0).unwrap();
    let woke = Rc::new(RefCell::new(Vec::new()));
    executor.block_on(async {
        time::pause().unwrap();
        for secs in [30u64, 10, 20] {
            let woke = woke.clone();
            queue.spawn(async move {
                time::sleep(Duration::from_secs(secs)).await;
                woke.borrow_mut().push(secs);
            });
        }
        // Something to run keeps the executor busy, so the clock does not
        // jump by itself while the test steps it.
        let (tx, rx) = async_channel();
        let keep_busy = queue.spawn(rx);
        clockworker::yield_now().await;
        assert!(woke.borrow().is_empty());
        assert!(time::advance(Duration::from_secs(15)).unwrap());
        clockworker::yield_now().await;
        clockworker::yield_now().await;
        assert_eq!(*woke.borrow(), [10]);
        assert!(time::advance(Duration::from_secs(10)).unwrap());
        clockworker::yield_now().await;
        clockworker::yield_now().await;
        assert_eq!(*woke.borrow(), [10, 20]);
        assert!(time::resume().unwrap());
        assert!(!time::resume().unwrap());
        assert!(!time::advance(MS).unwrap(), "advance on a running clock");
        tx.send(());
        keep_busy.await.unwrap();
    });
    assert!(time::pause().is_err(), "pause outside any executor");
}

/// A one-shot channel from std parts, so the test needs no extra crate.
fn async_channel() -> (OneShot, OneShotRx) {
    let shared = Arc::new(std::sync::Mutex::new((false, None::<std::task::Waker>)));
    (OneShot(shared.clone()), OneShotRx(shared))
}

struct OneShot(Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>);
struct OneShotRx(Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>);

impl OneShot {
    fn send(self, (): ()) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl std::future::Future for OneShotRx {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            std::task::Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    }
}
