//! IO readiness reaches the scheduler promptly: while a heavier queue waits
//! on a socket and a lighter queue saturates the thread, the host (tokio,
//! smol) gets control back at turn boundaries, so the heavier queue's
//! socket is read after about one background step, not after the whole
//! host-yield interval. Counted in background steps, not in time.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clockworker::{Executor, ExecutorBuilder, yield_maybe};
use common::{serial, spin};

/// Background steps are this long; the host-yield interval is a hundred
/// of them, so that waiting for it would show as ~100 steps.
const STEP: Duration = Duration::from_micros(100);
const HOST_YIELD: Duration = Duration::from_millis(10);
const REQUESTS: usize = 60;

fn executor() -> Executor<&'static str> {
    ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_host_yield_interval(HOST_YIELD)
        .build()
        .unwrap()
}

/// Four background tasks that step forever, counting their steps.
fn saturate(executor: &Executor<&'static str>, steps: &Arc<AtomicU64>) {
    let bg = executor.queue("bg").unwrap();
    for _ in 0..4 {
        let steps = steps.clone();
        bg.spawn(async move {
            loop {
                spin(STEP);
                steps.fetch_add(1, Ordering::SeqCst);
                yield_maybe().await;
            }
        });
    }
}

/// A client on another thread: sends one byte, waits for the echo, lets the
/// background run a few steps, `REQUESTS` times. Returns the background
/// step count at each send.
fn client(
    address: std::net::SocketAddr,
    steps: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut byte = [0u8];
        let mut behind = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            // Let the background run a few steps between requests, so that
            // each request finds the executor busy.
            let resume = steps.load(Ordering::SeqCst) + 5;
            while steps.load(Ordering::SeqCst) < resume {
                std::thread::yield_now();
            }
            behind.push(steps.load(Ordering::SeqCst));
            stream.write_all(b"x").unwrap();
            stream.read_exact(&mut byte).unwrap();
        }
        behind
    })
}

/// The median number of background steps between a send (the client's
/// count) and the server task's read of it (the server's count): how long
/// the request waited unseen, in background steps. Counted where the events
/// happen, so a client thread the OS is slow to wake does not count.
fn median_behind(sent: &[u64], read: &[u64]) -> u64 {
    assert_eq!(sent.len(), read.len());
    let mut behind: Vec<u64> = sent.iter().zip(read).map(|(s, r)| r - s).collect();
    behind.sort_unstable();
    behind[behind.len() / 2]
}

#[test]
fn on_tokio_a_heavier_queues_socket_is_read_within_a_few_background_steps() {
    let _serial = serial();
    let executor = executor();
    let steps = Arc::new(AtomicU64::new(0));
    saturate(&executor, &steps);
    let runtime = common::tokio_runtime();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let client = client(address, steps.clone());
    let fg = executor.queue("fg").unwrap();
    let read = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sent = runtime.block_on(executor.run_until(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (mut socket, _) = listener.accept().await.unwrap();
        let (read, steps) = (read.clone(), steps.clone());
        fg.spawn(async move {
            let mut byte = [0u8];
            while socket.read_exact(&mut byte).await.is_ok() {
                read.borrow_mut().push(steps.load(Ordering::SeqCst));
                if socket.write_all(&byte).await.is_err() {
                    break;
                }
            }
        });
        tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap()
    }));
    let read = read.borrow();
    let median = median_behind(&sent, &read);
    // The socket's wakes come from tokio's driver on this thread: none goes
    // through the cross-thread injector.
    let remote = executor.stats().remote_schedules;
    assert!(remote < REQUESTS as u64 / 4, "{remote} remote schedules");
    // Waiting for the host-yield interval would be ~100 steps.
    assert!(
        median <= 4,
        "median {median} background steps behind: {sent:?} / {read:?}"
    );
}

#[test]
fn on_smol_a_heavier_queues_socket_is_read_within_a_few_background_steps() {
    let _serial = serial();
    let executor = executor();
    let steps = Arc::new(AtomicU64::new(0));
    saturate(&executor, &steps);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let client = client(address, steps.clone());
    let fg = executor.queue("fg").unwrap();
    let read = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sent = smol::block_on(executor.run_until(async {
        use smol::io::{AsyncReadExt, AsyncWriteExt};
        let listener = smol::net::TcpListener::try_from(listener).unwrap();
        let (mut socket, _) = listener.accept().await.unwrap();
        let (read, steps) = (read.clone(), steps.clone());
        fg.spawn(async move {
            let mut byte = [0u8];
            while socket.read_exact(&mut byte).await.is_ok() {
                read.borrow_mut().push(steps.load(Ordering::SeqCst));
                if socket.write_all(&byte).await.is_err() {
                    break;
                }
            }
        });
        smol::unblock(move || client.join().unwrap()).await
    }));
    let read = read.borrow();
    let median = median_behind(&sent, &read);
    assert!(
        median <= 4,
        "median {median} background steps behind: {sent:?} / {read:?}"
    );
}

/// How many times the executor handed control to its host while 4
/// background tasks ran `steps` steps of `STEP`, with `queues` configured.
fn host_yields_over(steps: u64, queues: &[(&'static str, u32)]) -> (u64, u64) {
    let mut builder = ExecutorBuilder::new().with_host_yield_interval(HOST_YIELD);
    for &(key, weight) in queues {
        builder = builder.with_queue(key, weight);
    }
    let executor = builder.build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    saturate(&executor, &done);
    let runtime = common::tokio_runtime();
    let counted = Rc::new(std::cell::Cell::new(0));
    runtime.block_on(executor.run_until(async {
        while done.load(Ordering::SeqCst) < steps {
            tokio::task::yield_now().await;
        }
        counted.set(done.load(Ordering::SeqCst));
    }));
    (executor.stats().host_yields, counted.get())
}

#[test]
fn the_host_gets_extra_turns_only_while_a_heavier_queue_is_idle() {
    let _serial = serial();
    // A heavier queue idle: the host gets control about once per slice
    // (every background step here, as a step outlasts the slice).
    let (with_idle_fg, steps) = host_yields_over(200, &[("fg", 8), ("bg", 1)]);
    assert!(
        with_idle_fg * 2 >= steps,
        "{with_idle_fg} host turns over {steps} background steps"
    );
    // No heavier queue: only the host-yield interval (10 ms = 100 steps)
    // hands control back, plus the wakes of the `run_until` future.
    let (bg_only, steps) = host_yields_over(200, &[("bg", 1)]);
    assert!(
        bg_only * 4 <= steps,
        "{bg_only} host turns over {steps} background steps"
    );
}

#[test]
fn block_on_has_no_host_to_hand_off_to() {
    let executor = executor();
    let steps = Arc::new(AtomicU64::new(0));
    saturate(&executor, &steps);
    executor.block_on(async {
        while steps.load(Ordering::SeqCst) < 50 {
            clockworker::yield_now().await;
        }
    });
    assert_eq!(executor.stats().host_yields, 0);
}

/// `tokio::task::spawn_local` inside a task of a `#[clockworker::main]` /
/// `#[clockworker::test]` body works (the host has a `LocalSet`); the task
/// runs beside the executor, not in a queue.
#[clockworker::test(queues(fg = 1))]
async fn tokio_spawn_local_works_inside_the_macros_host() {
    let inner = clockworker::spawn!(fg, async {
        tokio::task::spawn_local(async { 6 * 7 }).await.unwrap()
    });
    assert_eq!(inner.await.unwrap(), 42);
    let stats = clockworker::Handle::<&str>::current()
        .queue_stats("fg")
        .unwrap();
    assert_eq!(stats.spawned, 1, "the tokio task is not in a queue");
}

/// The stats say how long the executor kept its host waiting: with a
/// heavier queue idle, about a slice at a time, never the whole host-yield
/// interval (10 ms here); `block_on` has no host and records nothing.
#[test]
fn stats_show_how_long_the_host_was_held() {
    let _serial = serial();
    let executor = executor();
    let steps = Arc::new(AtomicU64::new(0));
    saturate(&executor, &steps);
    common::tokio_runtime().block_on(executor.run_until(async {
        while steps.load(Ordering::SeqCst) < 100 {
            tokio::task::yield_now().await;
        }
    }));
    let held = executor.stats().host_hold;
    assert!(held.samples >= 50, "{held:?}");
    // Each hold is about one 100 µs step (a step outlasts the slice); the
    // median must be far below the 10 ms host-yield interval even on a
    // loaded machine.
    assert!(held.p50 < HOST_YIELD / 4, "{held:?}");

    let no_host = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    no_host.block_on(clockworker::yield_now());
    assert_eq!(no_host.stats().host_hold.samples, 0);
}

// ----- wakes on the executor's own thread between its runs ------------------

/// A task woken on the executor's thread while the executor is not running
/// goes straight into its queue: no remote schedule, runnable at once.
#[test]
fn a_wake_on_the_executors_thread_between_runs_goes_straight_to_its_queue() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let waker = Rc::new(std::cell::RefCell::new(None::<std::task::Waker>));
    let woken = Rc::new(std::cell::Cell::new(false));
    let task = queue.spawn({
        let (waker, woken) = (waker.clone(), woken.clone());
        std::future::poll_fn(move |cx| {
            if woken.get() {
                return std::task::Poll::Ready(7);
            }
            *waker.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Pending
        })
    });
    executor.block_on(clockworker::yield_now());
    assert_eq!(executor.queue_stats(0).unwrap().runnable, 0, "parked");
    let remote_before = executor.stats().remote_schedules;
    woken.set(true);
    waker.borrow_mut().take().unwrap().wake();
    assert_eq!(executor.queue_stats(0).unwrap().runnable, 1);
    assert_eq!(executor.stats().remote_schedules, remote_before);
    assert_eq!(executor.block_on(task).unwrap(), 7);
}

/// A tokio task on the same thread wakes a clockworker task while the
/// executor waits idle in its host: the local wake must wake the host (a
/// lost wake-up would hang here until the timeout).
#[test]
fn a_local_wake_while_idle_in_the_host_wakes_the_host() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let runtime = common::tokio_runtime();
    let local = tokio::task::LocalSet::new();
    for round in 0..50u32 {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let task = queue.spawn(async move { rx.await.unwrap() });
        let got = runtime.block_on(local.run_until(executor.run_until(async {
            // Fired by tokio on this thread after the executor went idle.
            tokio::task::spawn_local(async move {
                tokio::task::yield_now().await;
                let _ = tx.send(round);
            });
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("a local wake was lost")
                .unwrap()
        })));
        assert_eq!(got, round);
    }
    assert_eq!(executor.stats().remote_schedules, 0);
}

/// A wake on the executor's thread from inside its own queue's scheduler
/// (between runs) cannot enter the busy queue: it goes through the
/// injector instead, and nothing is lost.
#[test]
fn a_wake_from_inside_the_queues_own_scheduler_is_injected() {
    use clockworker::sched::{ReadyTask, TaskScheduler};
    use std::collections::VecDeque;

    type Slot = Rc<std::cell::RefCell<Option<std::task::Waker>>>;
    struct WakesOnPush {
        ready: VecDeque<ReadyTask>,
        on_push: Slot,
    }
    impl TaskScheduler for WakesOnPush {
        fn push(&mut self, task: ReadyTask) {
            self.ready.push_back(task);
            if let Some(waker) = self.on_push.borrow_mut().take() {
                waker.wake();
            }
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.ready.pop_front()
        }
        fn len(&self) -> usize {
            self.ready.len()
        }
    }

    let slot: Slot = Rc::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            "q",
            1,
            WakesOnPush {
                ready: VecDeque::new(),
                on_push: slot.clone(),
            },
        )
        .build()
        .unwrap();
    let queue = executor.queue("q").unwrap();
    let released = Rc::new(std::cell::Cell::new(false));
    let parked = queue.spawn({
        let (slot, released) = (slot.clone(), released.clone());
        std::future::poll_fn(move |cx| {
            if released.get() {
                return std::task::Poll::Ready("released");
            }
            *slot.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Pending
        })
    });
    executor.block_on(clockworker::yield_now());
    released.set(true);
    // Outside any run: this spawn's push wakes the parked task from inside
    // the scheduler.
    let other = queue.spawn(async { "other" });
    assert!(executor.stats().remote_schedules >= 1);
    let (a, b) = executor.block_on(async { (parked.await, other.await) });
    assert_eq!((a.unwrap(), b.unwrap()), ("released", "other"));
}
