//! Memory after a burst: once a burst of tasks has finished and the
//! executor is idle, the heap it holds returns to about what it held before
//! the burst.
//!
//! The heap is measured with a counting global allocator (live bytes of the
//! whole test binary), which is why these tests have a binary of their own;
//! they run one at a time (`common::serial`), so that they do not count each
//! other's allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use clockworker::{Executor, ExecutorBuilder, QueueHandle, yield_now};
use common::serial;

/// Counts the bytes currently allocated, over every thread.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

const BURST: usize = 200_000;
/// What the executor may keep after a burst, over what it held before.
const SLACK: isize = 2 << 20;

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

// ----- a burst of local tasks that each park once ---------------------------

/// A gate that tasks wait at: each waiter registers its waker and returns
/// `Pending` (it does not wake itself) until the gate opens.
#[derive(Default)]
struct Gate {
    open: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Gate {
    fn wait(self: &Rc<Self>) -> GateWait {
        GateWait {
            gate: self.clone(),
            registered: false,
        }
    }

    fn parked(&self) -> usize {
        self.waiters.borrow().len()
    }

    fn open(&self) {
        self.open.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }
}

struct GateWait {
    gate: Rc<Gate>,
    registered: bool,
}

impl Future for GateWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.open.get() {
            return Poll::Ready(());
        }
        if !self.registered {
            self.registered = true;
            self.gate.waiters.borrow_mut().push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Spawns `n` tasks that each park once at a gate, then a task that opens
/// the gate once all `n` have parked, and runs them all to completion.
/// Spawns `n` detached tasks that each park once at `gate`; returns the
/// gate and the count of those that finished.
fn spawn_gated(queue: &QueueHandle<u8>, n: usize) -> (Rc<Gate>, Rc<Cell<usize>>) {
    let gate = Rc::new(Gate::default());
    let finished = Rc::new(Cell::new(0usize));
    for _ in 0..n {
        let (gate, finished) = (gate.clone(), finished.clone());
        // Detached: the handles would be the test's memory, not the
        // executor's.
        drop(queue.spawn(async move {
            gate.wait().await;
            finished.set(finished.get() + 1);
        }));
    }
    (gate, finished)
}

/// Runs the executor until `done()` holds.
fn run_until_done(executor: &Executor<u8>, done: impl Fn() -> bool) {
    executor.block_on(async {
        while !done() {
            yield_now().await;
        }
    });
}

fn local_burst(executor: &Executor<u8>, queue: &QueueHandle<u8>, n: usize) {
    let (gate, finished) = spawn_gated(queue, n);
    let opener = queue.spawn({
        let gate = gate.clone();
        async move {
            while gate.parked() < n {
                yield_now().await;
            }
            gate.open();
        }
    });
    executor.block_on(async {
        opener.await.unwrap();
        while finished.get() < n {
            yield_now().await;
        }
    });
    assert_eq!(finished.get(), n);
    assert!(gate.waiters.borrow().is_empty());
    assert_eq!(Rc::strong_count(&gate), 1, "a task still holds the gate");
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn the_heap_returns_to_its_size_after_a_burst_of_parked_tasks() {
    let _serial = serial();
    let executor: Executor<u8> = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    // Warm up: whatever the executor allocates once (its buffers' first
    // capacity, the clock, thread-locals) is part of "before".
    local_burst(&executor, &queue, 100);
    let before = live_bytes();

    local_burst(&executor, &queue, BURST);
    let after = live_bytes();

    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.completed, (BURST + 100 + 2) as u64);
    // Every task of the burst was polled twice: it parked once.
    assert!(stats.polls >= 2 * (BURST + 100) as u64, "{stats:?}");
    assert!(
        after - before < SLACK,
        "the idle executor holds {:.1} MiB more than before a burst of {BURST} parked tasks \
         ({:.1} MiB -> {:.1} MiB)",
        mib(after - before),
        mib(before),
        mib(after),
    );
    drop((queue, executor));
}

// ----- a burst of tasks spawned from another thread -------------------------

/// When the other thread spawns its burst.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    /// While the executor runs: tasks trickle in and run as they arrive.
    WhileRunning,
    /// Before the executor runs: the whole burst waits for it at once.
    BeforeRunning,
}

/// Spawns `n` tasks through a `Spawner` from another thread and runs the
/// executor until they have all finished. With `park`, each task parks once
/// (it registers and is woken later by a task spawned after the burst)
/// before it finishes.
fn remote_burst(executor: &Executor<u8>, n: usize, when: When, park: bool) {
    let spawner = executor.spawner(0).unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let waiters: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let done = Arc::new(tokio::sync::Notify::new());
    let thread = std::thread::spawn({
        let (finished, open, waiters, done) = (
            finished.clone(),
            open.clone(),
            waiters.clone(),
            done.clone(),
        );
        move || {
            for _ in 0..n {
                let (finished, open, waiters, done) = (
                    finished.clone(),
                    open.clone(),
                    waiters.clone(),
                    done.clone(),
                );
                // Detached: the handles would be the test's memory.
                drop(spawner.spawn(async move {
                    if park {
                        let mut registered = false;
                        std::future::poll_fn(|cx| {
                            if open.load(Ordering::SeqCst) {
                                return Poll::Ready(());
                            }
                            if !registered {
                                registered = true;
                                waiters.lock().unwrap().push(cx.waker().clone());
                            }
                            Poll::Pending
                        })
                        .await;
                    }
                    if finished.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        done.notify_one();
                    }
                }));
            }
            if park {
                drop(spawner.spawn(async move {
                    while waiters.lock().unwrap().len() < n {
                        yield_now().await;
                    }
                    open.store(true, Ordering::SeqCst);
                    let waiters = std::mem::take(&mut *waiters.lock().unwrap());
                    for waker in waiters {
                        waker.wake();
                    }
                }));
            }
        }
    });
    if when == When::BeforeRunning {
        thread.join().unwrap();
        executor.block_on(done.notified());
    } else {
        executor.block_on(done.notified());
        thread.join().unwrap();
    }
    assert_eq!(finished.load(Ordering::SeqCst), n);
    // Let the tasks that finished last be freed.
    executor.block_on(yield_now());
    assert_eq!(executor.stats().live_tasks, 0);
    assert!(waiters.lock().unwrap().is_empty());
}

fn remote_case(when: When, park: bool, what: &str) {
    let _serial = serial();
    let executor: Executor<u8> = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    remote_burst(&executor, 100, when, park);
    let before = live_bytes();

    remote_burst(&executor, BURST, when, park);
    let after = live_bytes();

    let extra = if park { 2 } else { 0 };
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(
        (stats.spawned, stats.completed),
        ((BURST + 100 + extra) as u64, (BURST + 100 + extra) as u64)
    );
    assert!(
        after - before < SLACK,
        "the idle executor holds {:.1} MiB more than before a burst of {BURST} {what} \
         ({:.1} MiB -> {:.1} MiB)",
        mib(after - before),
        mib(before),
        mib(after),
    );
}

#[test]
fn the_heap_returns_to_its_size_after_a_burst_spawned_from_another_thread_before_the_run() {
    remote_case(
        When::BeforeRunning,
        false,
        "tasks spawned from another thread while the executor was not running",
    );
}

#[test]
fn the_heap_returns_to_its_size_after_a_burst_spawned_from_another_thread_during_the_run() {
    remote_case(
        When::WhileRunning,
        false,
        "tasks spawned from another thread while the executor ran",
    );
}

#[test]
fn the_heap_returns_to_its_size_after_a_burst_of_remote_tasks_that_park() {
    remote_case(
        When::WhileRunning,
        true,
        "tasks spawned from another thread that each parked once",
    );
}

/// Parks `n` tasks, then wakes them all on the executor's thread between
/// two runs (the path a host's IO driver takes): they go straight into the
/// queue's ring, which grows to `n`; then runs them to completion.
fn resting_burst(executor: &Executor<u8>, queue: &QueueHandle<u8>, n: usize) {
    let (gate, finished) = spawn_gated(queue, n);
    run_until_done(executor, || gate.parked() >= n);
    // No run in progress: every wake takes the resident path.
    let remote_before = executor.stats().remote_schedules;
    gate.open();
    assert_eq!(executor.stats().remote_schedules, remote_before);
    assert_eq!(executor.queue_stats(0).unwrap().runnable, n);
    run_until_done(executor, || finished.get() >= n);
    assert_eq!(finished.get(), n);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn the_heap_returns_to_its_size_after_a_burst_of_tasks_woken_between_runs() {
    let _serial = serial();
    let executor: Executor<u8> = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    resting_burst(&executor, &queue, 100);
    let before = live_bytes();

    resting_burst(&executor, &queue, BURST);
    let after = live_bytes();
    assert!(
        after - before < SLACK,
        "the idle executor holds {:.1} MiB more than before a burst of {BURST} tasks woken \
         between runs ({:.1} MiB -> {:.1} MiB)",
        mib(after - before),
        mib(before),
        mib(after),
    );
    drop((queue, executor));
}
