//! Adversarial tests of the newest features: `Handle`, same-thread
//! ("resident") wakes between runs, IO hand-offs and the macros' duration
//! options. Every wait is bounded.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use clockworker::sched::{ReadyTask, TaskScheduler};
use clockworker::{Executor, ExecutorBuilder, Handle, JoinError, spawn, yield_now};
use common::{Probe, one_queue, serial, spin, tokio_runtime};

// ----- helpers -------------------------------------------------------------

/// A slot a parked future leaves its waker in.
type Slot = Rc<RefCell<Option<Waker>>>;

/// Pending until `go` is set; leaves its waker in `slot` at every poll and
/// counts its polls.
struct Gate {
    go: Rc<Cell<bool>>,
    slot: Slot,
    polls: Rc<Cell<usize>>,
}

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        if self.go.get() {
            return Poll::Ready(());
        }
        *self.slot.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Pending forever, leaving its waker in `slot`; counts its polls.
fn parked(slot: Slot, polls: Rc<Cell<usize>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        *slot.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// Polls `future` once with a no-op waker.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

fn two_queues() -> Executor<&'static str> {
    ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap()
}

// ----- 1. Handle -----------------------------------------------------------

#[test]
fn a_handle_outliving_its_executor_answers_and_cancels_new_spawns() {
    let executor = two_queues();
    let fg = executor.queue("fg").unwrap();
    executor.block_on(async { fg.spawn(async { 1 }).await.unwrap() });
    let handle = executor.handle();
    let clone = handle.clone();
    assert!(!handle.is_closed());
    drop(executor);
    assert!(handle.is_closed() && clone.is_closed());
    assert_eq!(handle.keys(), ["fg", "bg"]);
    assert_eq!(handle.queue_stats("fg").unwrap().completed, 1);
    assert_eq!(handle.stats().live_tasks, 0);

    // A local spawn: dropped at once, never polled, Cancelled.
    let probe = Probe::default();
    let mut local = handle.queue("bg").unwrap().spawn(probe.wrap(async { 7 }));
    assert_eq!((probe.polls(), probe.drops()), (0, 1));
    assert!(matches!(
        poll_once(&mut local),
        Poll::Ready(Err(JoinError::Cancelled))
    ));

    // A remote spawn, from another thread: same.
    let spawner = handle.spawner("fg").unwrap();
    let probe = Probe::default();
    let p = probe.clone();
    let mut remote = std::thread::spawn(move || spawner.spawn(p.wrap(async { 8 })))
        .join()
        .unwrap();
    assert_eq!((probe.polls(), probe.drops()), (0, 1));
    assert!(matches!(
        poll_once(&mut remote),
        Poll::Ready(Err(JoinError::Cancelled))
    ));
    assert!(handle.queue("nope").is_err());
}

thread_local! {
    static STORED: RefCell<Option<Handle<u8>>> = const { RefCell::new(None) };
}

#[test]
fn a_handle_kept_in_a_thread_local_outlives_the_executor_and_the_thread_exits_cleanly() {
    let done = std::thread::spawn(|| {
        let executor = one_queue(true);
        let q = executor.queue(0).unwrap();
        executor.block_on(async {
            let h = Handle::<u8>::current();
            STORED.with(|s| *s.borrow_mut() = Some(h));
            q.spawn(async {}).await.unwrap();
        });
        let probe = Probe::default();
        let slot: Slot = Default::default();
        let handle = q.spawn(probe.wrap(parked(slot.clone(), Default::default())));
        executor.block_on(async { yield_now().await });
        drop(executor);
        assert_eq!(probe.drops(), 1);
        assert!(matches!(
            futures_lite::future::block_on(handle),
            Err(JoinError::Cancelled)
        ));
        STORED.with(|s| {
            let s = s.borrow();
            let h = s.as_ref().unwrap();
            assert!(h.is_closed());
            assert_eq!(h.stats().live_tasks, 0);
        });
        // Waking the cancelled task from the thread (its executor gone).
        if let Some(w) = slot.borrow_mut().take() {
            w.wake();
        }
        assert_eq!(probe.drops(), 1);
        true
    })
    .join()
    .unwrap();
    assert!(done);
}

/// Calls `Handle::current()` when dropped.
struct CurrentOnDrop(Rc<Cell<u8>>);
impl Drop for CurrentOnDrop {
    fn drop(&mut self) {
        self.0.set(1);
        let _ = Handle::<u8>::current(); // panics: no executor runs
        self.0.set(2);
    }
}

#[test]
fn handle_current_in_a_drop_during_executor_drop_is_caught_into_the_join_error() {
    let executor = one_queue(true);
    let q = executor.queue(0).unwrap();
    let reached = Rc::new(Cell::new(0));
    let guard = CurrentOnDrop(reached.clone());
    let slot: Slot = Default::default();
    let s = slot.clone();
    let handle = q.spawn(async move {
        let _guard = guard;
        parked(s, Default::default()).await
    });
    // A second task that never ran.
    let guard2 = CurrentOnDrop(Rc::new(Cell::new(0)));
    let unpolled = q.spawn(async move {
        let _guard = guard2;
    });
    executor.block_on(async {
        for _ in 0..3 {
            yield_now().await;
        }
    });
    drop(unpolled);
    let try_current_in_drop = Handle::<u8>::try_current();
    assert!(try_current_in_drop.unwrap_err().is_missing());
    drop(executor);
    assert_eq!(
        reached.get(),
        1,
        "the drop ran and panicked in Handle::current"
    );
    match futures_lite::future::block_on(handle) {
        Err(e) => assert!(e.is_panic() || e.is_cancelled(), "{e}"),
        Ok(()) => panic!("a dropped task cannot complete"),
    }
    drop(slot);
}

#[test]
fn handles_of_two_executors_on_one_thread_and_nested_block_on_see_the_innermost() {
    let outer = ExecutorBuilder::new().with_queue(1u8, 1).build().unwrap();
    let inner = ExecutorBuilder::new().with_queue("i", 1).build().unwrap();
    let outer_q = outer.queue(1).unwrap();
    let inner2 = inner.clone();
    let out = outer.block_on(outer_q.spawn(async move {
        assert!(
            Handle::<&str>::try_current()
                .unwrap_err()
                .is_wrong_key_type()
        );
        let got = inner2.block_on(async {
            // Inner is current; outer's key type is not.
            assert!(Handle::<u8>::try_current().unwrap_err().is_wrong_key_type());
            let h = Handle::<&str>::current();
            let a = spawn!("i", async { 20 }).await.unwrap();
            a + h.queue("i").unwrap().spawn(async { 1 }).await.unwrap()
        });
        // Back in outer.
        let b = spawn!(1u8, async { 21 }).await.unwrap();
        assert_eq!(Handle::<u8>::current().keys(), [1]);
        got + b
    }));
    assert_eq!(out.unwrap(), 42);
    assert_eq!(inner.queue_stats("i").unwrap().completed, 2);
    assert_eq!(outer.queue_stats(1).unwrap().completed, 2);
}

#[test]
fn spawn_by_key_in_nested_executors_with_the_same_key_type_goes_to_the_innermost() {
    let a = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let b = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 1)
        .build()
        .unwrap();
    let aq = a.queue(0).unwrap();
    let b2 = b.clone();
    a.block_on(aq.spawn(async move {
        b2.block_on(async {
            spawn!(1u8, async {}).await.unwrap();
            spawn!(0u8, async {}).await.unwrap();
        });
        spawn!(0u8, async {}).await.unwrap();
        // `1` is not a queue of `a`.
        let missing = std::panic::catch_unwind(|| drop(spawn!(1u8, async {})));
        assert!(missing.is_err());
    }))
    .unwrap();
    assert_eq!(a.queue_stats(0).unwrap().spawned, 2);
    assert_eq!(b.queue_stats(0).unwrap().spawned, 1);
    assert_eq!(b.queue_stats(1).unwrap().spawned, 1);
}

// ----- 2. same-thread wakes between runs ----------------------------------

#[test]
fn a_task_woken_between_runs_on_its_thread_runs_once_in_the_next_run() {
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let (go, slot, polls) = (
        Rc::new(Cell::new(false)),
        Slot::default(),
        Rc::new(Cell::new(0)),
    );
    let h = q.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    executor.block_on(async { yield_now().await });
    assert_eq!(polls.get(), 1);
    go.set(true);
    // Woken three times while idle: one poll.
    let w = slot.borrow_mut().take().unwrap();
    w.wake_by_ref();
    w.wake_by_ref();
    w.wake();
    assert_eq!(executor.queue_stats(0).unwrap().runnable, 1);
    assert_eq!(
        executor.stats().remote_schedules,
        0,
        "a same-thread wake is local"
    );
    executor.block_on(h).unwrap();
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_flood_of_100k_same_thread_wakes_between_runs_is_counted_exactly() {
    const TASKS: usize = 1_000;
    const ROUNDS: usize = 100;
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let polls = Rc::new(Cell::new(0usize));
    let slots: Vec<Slot> = (0..TASKS).map(|_| Slot::default()).collect();
    let go = Rc::new(Cell::new(false));
    let handles: Vec<_> = slots
        .iter()
        .map(|slot| {
            q.spawn(Gate {
                go: go.clone(),
                slot: slot.clone(),
                polls: polls.clone(),
            })
        })
        .collect();
    assert!(common::run_until(&executor, || polls.get() == TASKS));
    for round in 1..=ROUNDS {
        for slot in &slots {
            slot.borrow_mut().take().unwrap().wake();
        }
        assert_eq!(executor.queue_stats(0).unwrap().runnable, TASKS);
        assert!(common::run_until(&executor, || polls.get() == TASKS * (round + 1)));
        assert_eq!(polls.get(), TASKS * (round + 1));
    }
    go.set(true);
    for slot in &slots {
        slot.borrow_mut().take().unwrap().wake();
    }
    executor.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.polls as usize, TASKS * (ROUNDS + 2));
    assert_eq!(stats.completed as usize, TASKS);
    assert_eq!(executor.stats().live_tasks, 0);
    assert_eq!(executor.stats().remote_schedules, 0);
}

#[test]
fn a_wake_after_the_executor_was_dropped_resolves_cancelled_and_drops_once() {
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let probe = Probe::default();
    let slot = Slot::default();
    let h = q.spawn(probe.wrap(parked(slot.clone(), Default::default())));
    executor.block_on(async { yield_now().await });
    let waker = slot.borrow_mut().take().unwrap();
    drop(executor);
    assert_eq!(probe.drops(), 1);
    waker.wake_by_ref();
    let w2 = waker.clone();
    std::thread::spawn(move || w2.wake()).join().unwrap();
    waker.wake();
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert!(matches!(
        futures_lite::future::block_on(h),
        Err(JoinError::Cancelled)
    ));
}

#[test]
fn a_task_of_an_idle_executor_woken_by_another_executors_task_runs() {
    // B runs; A is idle inside the same tokio LocalSet.
    let a = one_queue(false);
    let b = one_queue(false);
    let (go, slot, polls) = (
        Rc::new(Cell::new(false)),
        Slot::default(),
        Rc::new(Cell::new(0)),
    );
    let ha = a.queue(0).unwrap().spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    let bq = b.queue(0).unwrap();
    let rt = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async {
        let a2 = a.clone();
        let a_run = tokio::task::spawn_local(async move { a2.run_until(ha).await });
        // Let A park its task and go idle.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(polls.get(), 1);
        let (go2, slot2) = (go.clone(), slot.clone());
        b.run_until(bq.spawn(async move {
            go2.set(true);
            slot2.borrow_mut().take().unwrap().wake();
        }))
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), a_run).await
    });
    let joined = result.expect("A never woke up").unwrap();
    assert!(joined.is_ok());
    assert_eq!(polls.get(), 2);
}

#[test]
fn two_executors_wake_each_others_tasks_during_nested_runs() {
    let a = one_queue(false);
    let b = one_queue(false);
    let a_slot = Slot::default();
    let a_go = Rc::new(Cell::new(false));
    let a_polls = Rc::new(Cell::new(0));
    let a_task = a.queue(0).unwrap().spawn(Gate {
        go: a_go.clone(),
        slot: a_slot.clone(),
        polls: a_polls.clone(),
    });
    let bq = b.queue(0).unwrap();
    let b2 = b.clone();
    let aq = a.queue(0).unwrap();
    let (a_go2, a_slot2) = (a_go.clone(), a_slot.clone());
    let out = a.block_on(aq.spawn(async move {
        // Let a_task park.
        yield_now().await;
        yield_now().await;
        // Inside a nested run of B, B's task wakes a parked task of A (A is
        // running, but not current).
        let b_slot = Slot::default();
        let b_go = Rc::new(Cell::new(false));
        let b_polls = Rc::new(Cell::new(0));
        let b_task = bq.spawn(Gate {
            go: b_go.clone(),
            slot: b_slot.clone(),
            polls: b_polls.clone(),
        });
        b2.block_on(bq.spawn(async move {
            a_go2.set(true);
            a_slot2.borrow_mut().take().unwrap().wake();
        }))
        .unwrap();
        // Back in A: wake B's parked task (B not running at all), then run B.
        yield_now().await;
        b_go.set(true);
        b_slot.borrow_mut().take().unwrap().wake();
        b2.block_on(b_task).unwrap();
        b_polls.get()
    }));
    assert_eq!(out.unwrap(), 2);
    a.block_on(a_task).unwrap();
    assert_eq!(a_polls.get(), 2);
    assert_eq!(a.stats().live_tasks, 0);
    assert_eq!(b.stats().live_tasks, 0);
}

/// FIFO that wakes whatever waker is in `slot` at every push and pop.
struct WakingScheduler {
    tasks: std::collections::VecDeque<ReadyTask>,
    slot: Slot,
    wakes: Rc<Cell<usize>>,
    on_push: bool,
    on_pop: bool,
}

impl WakingScheduler {
    fn fire(&self) {
        if let Some(w) = self.slot.borrow_mut().take() {
            self.wakes.set(self.wakes.get() + 1);
            w.wake();
        }
    }
}

impl TaskScheduler for WakingScheduler {
    fn push(&mut self, task: ReadyTask) {
        self.tasks.push_back(task);
        if self.on_push {
            self.fire();
        }
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        let t = self.tasks.pop_front();
        if self.on_pop {
            self.fire();
        }
        t
    }
    fn len(&self) -> usize {
        self.tasks.len()
    }
}

fn waking_executor(
    slot: &Slot,
    wakes: &Rc<Cell<usize>>,
    on_push: bool,
    on_pop: bool,
) -> Executor<u8> {
    ExecutorBuilder::new()
        .with_queue_scheduler(
            0u8,
            1,
            WakingScheduler {
                tasks: Default::default(),
                slot: slot.clone(),
                wakes: wakes.clone(),
                on_push,
                on_pop,
            },
        )
        .with_queue(1u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap()
}

#[test]
fn a_wake_of_another_queues_task_from_a_custom_schedulers_push_runs_it_once() {
    let (slot, wakes) = (Slot::default(), Rc::new(Cell::new(0)));
    let executor = waking_executor(&slot, &wakes, true, false);
    let other = executor.queue(1).unwrap();
    let (go, polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let parked_task = other.spawn(Gate {
        go: go.clone(),
        slot: Slot::default(),
        polls: polls.clone(),
    });
    drop(parked_task);
    // The gate's slot is separate; park a task of queue 1 whose waker the
    // scheduler of queue 0 fires.
    let polls1 = Rc::new(Cell::new(0));
    let h1 = other.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls1.clone(),
    });
    let q0 = executor.queue(0).unwrap();
    let ok = executor.block_on(async {
        yield_now().await;
        go.set(true);
        // During the run: the spawn pushes into queue 0, whose scheduler
        // wakes queue 1's task.
        q0.spawn(async {}).await.unwrap();
        h1.await.is_ok()
    });
    assert!(ok);
    assert_eq!(polls1.get(), 2);
    assert!(wakes.get() >= 1);
}

#[test]
fn a_wake_of_a_task_of_the_same_queue_from_a_custom_schedulers_push_during_a_run() {
    let (slot, wakes) = (Slot::default(), Rc::new(Cell::new(0)));
    let executor = waking_executor(&slot, &wakes, true, false);
    let q0 = executor.queue(0).unwrap();
    let (go, polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let h = q0.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        executor.block_on(async {
            yield_now().await; // the gate parks, its waker in `slot`
            go.set(true);
            // The push of this task wakes the gate: same queue, during a run.
            q0.spawn(async {}).await.unwrap();
            h.await.unwrap();
        })
    }));
    assert!(
        out.is_ok(),
        "a wake from a scheduler's push panicked the run"
    );
    assert_eq!(polls.get(), 2);
    assert_eq!(wakes.get(), 1);
}

#[test]
fn a_wake_of_a_task_of_the_same_queue_from_a_custom_schedulers_push_between_runs() {
    let (slot, wakes) = (Slot::default(), Rc::new(Cell::new(0)));
    let executor = waking_executor(&slot, &wakes, true, false);
    let q0 = executor.queue(0).unwrap();
    let (go, polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let h = q0.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    executor.block_on(async { yield_now().await });
    assert_eq!(polls.get(), 1);
    go.set(true);
    // Between runs: the spawn pushes, the push wakes the gate (the queue is
    // busy: it must go through the injector, not be lost).
    let h2 = q0.spawn(async {});
    assert_eq!(wakes.get(), 1);
    executor.block_on(async {
        h2.await.unwrap();
        h.await.unwrap();
    });
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_wake_of_a_task_of_the_same_queue_from_a_custom_schedulers_pop_during_a_run() {
    let (slot, wakes) = (Slot::default(), Rc::new(Cell::new(0)));
    let executor = waking_executor(&slot, &wakes, false, true);
    let q0 = executor.queue(0).unwrap();
    let (go, polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let h = q0.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    let go2 = go.clone();
    let other = q0.spawn(async move {
        go2.set(true);
        yield_now().await;
        yield_now().await;
    });
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        executor.block_on(async {
            // The gate parks at its first poll; the next pop (of `other`)
            // wakes it: same queue, during a run.
            other.await.unwrap();
            h.await.unwrap();
        })
    }));
    assert!(
        out.is_ok(),
        "a wake from a scheduler's pop panicked the run"
    );
    assert_eq!(polls.get(), 2);
    assert!(wakes.get() >= 1);
}

#[test]
fn stats_after_the_executor_is_dropped_count_the_tasks_dropped_at_shutdown_as_cancelled() {
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let parked_h = q.spawn(parked(Slot::default(), Default::default()));
    executor.block_on(async { yield_now().await });
    let queued_h = q.spawn(async {});
    let handle = executor.handle();
    drop(executor);
    assert!(matches!(
        futures_lite::future::block_on(parked_h),
        Err(JoinError::Cancelled)
    ));
    assert!(matches!(
        futures_lite::future::block_on(queued_h),
        Err(JoinError::Cancelled)
    ));
    let stats = handle.queue_stats(0).unwrap();
    assert_eq!(stats.spawned, 2);
    assert_eq!(
        (stats.completed, stats.cancelled),
        (0, 2),
        "the final counters account for both tasks: {stats:?}"
    );
}

#[test]
fn a_local_wake_wakes_an_idle_run_until_inside_smol_block_on() {
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let (go, slot, polls) = (
        Rc::new(Cell::new(false)),
        Slot::default(),
        Rc::new(Cell::new(0)),
    );
    let h = q.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    let fired = Rc::new(Cell::new(false));
    let fired2 = fired.clone();
    let waker_side = async move {
        smol::Timer::after(Duration::from_millis(20)).await;
        go.set(true);
        slot.borrow_mut().take().unwrap().wake();
        fired2.set(true);
        // Then never finish: only the executor may end the race.
        smol::Timer::after(Duration::from_secs(3600)).await;
        None
    };
    let watchdog = async {
        smol::Timer::after(Duration::from_secs(5)).await;
        None
    };
    let run = async { Some(executor.run_until(h).await) };
    let out = smol::block_on(futures_lite::future::or(
        run,
        futures_lite::future::or(waker_side, watchdog),
    ));
    assert!(fired.get());
    assert!(
        out.expect("the idle executor never saw the local wake")
            .is_ok()
    );
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_local_wake_wakes_an_idle_run_until_inside_a_tokio_local_set() {
    let executor = one_queue(false);
    let q = executor.queue(0).unwrap();
    let (go, slot, polls) = (
        Rc::new(Cell::new(false)),
        Slot::default(),
        Rc::new(Cell::new(0)),
    );
    let h = q.spawn(Gate {
        go: go.clone(),
        slot: slot.clone(),
        polls: polls.clone(),
    });
    let rt = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    let out = local.block_on(&rt, async {
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            go.set(true);
            slot.borrow_mut().take().unwrap().wake();
        });
        tokio::time::timeout(Duration::from_secs(5), executor.run_until(h)).await
    });
    assert!(
        out.expect("the idle executor never saw the local wake")
            .is_ok()
    );
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_wake_from_a_thread_local_destructor_at_thread_exit_does_not_abort() {
    struct WakeOnDrop(Option<Waker>, Arc<AtomicBool>);
    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            if let Some(w) = self.0.take() {
                w.wake();
            }
            self.1.store(true, Ordering::SeqCst);
        }
    }
    thread_local! {
        static LATE: RefCell<Option<WakeOnDrop>> = const { RefCell::new(None) };
        static EXEC: RefCell<Option<Executor<u8>>> = const { RefCell::new(None) };
    }
    let woke = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    for keep_executor in [false, true] {
        let (woke2, drops2) = (woke.clone(), drops.clone());
        woke.store(false, Ordering::SeqCst);
        std::thread::spawn(move || {
            struct CountDrop(Arc<AtomicUsize>);
            impl Drop for CountDrop {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let executor = one_queue(false);
            let q = executor.queue(0).unwrap();
            let slot = Slot::default();
            let counted = CountDrop(drops2);
            let s = slot.clone();
            let _detached = q.spawn(async move {
                let _c = counted;
                parked(s, Default::default()).await
            });
            executor.block_on(async { yield_now().await });
            let waker = slot.borrow_mut().take().unwrap();
            LATE.with(|l| *l.borrow_mut() = Some(WakeOnDrop(Some(waker), woke2)));
            if keep_executor {
                EXEC.with(|e| *e.borrow_mut() = Some(executor));
            }
        })
        .join()
        .unwrap();
        assert!(woke.load(Ordering::SeqCst));
    }
    // The task dropped without its executor kept: once. With the executor in
    // a thread-local: at most once (it may leak if the executor's slot is
    // destroyed first, but never twice).
    let d = drops.load(Ordering::SeqCst);
    assert!((1..=2).contains(&d), "drops: {d}");
}

// ----- 3. IO hand-offs -----------------------------------------------------

fn cpu_hogs(executor: &Executor<&'static str>, stop: &Rc<Cell<bool>>) {
    for key in ["fg", "bg"] {
        let q = executor.queue(key).unwrap();
        for _ in 0..2 {
            let stop = stop.clone();
            q.spawn(async move {
                while !stop.get() {
                    spin(Duration::from_micros(20));
                    yield_now().await;
                }
            });
        }
    }
}

#[test]
fn under_tokio_current_thread_weights_8_to_1_hold_within_10_percent() {
    let _serial = serial();
    let executor = two_queues();
    let stop = Rc::new(Cell::new(false));
    cpu_hogs(&executor, &stop);
    let rt = tokio_runtime();
    let (fg0, bg0) = rt.block_on(executor.run_until(async {
        tokio::time::sleep(Duration::from_millis(100)).await; // warm up
        let h = Handle::<&str>::current();
        (
            h.queue_stats("fg").unwrap().busy,
            h.queue_stats("bg").unwrap().busy,
        )
    }));
    rt.block_on(executor.run_until(async { tokio::time::sleep(Duration::from_secs(1)).await }));
    stop.set(true);
    let fg = executor.queue_stats("fg").unwrap().busy - fg0;
    let bg = executor.queue_stats("bg").unwrap().busy - bg0;
    let share = fg.as_secs_f64() / (fg + bg).as_secs_f64();
    assert!(
        (share - 8.0 / 9.0).abs() <= 0.1 * 8.0 / 9.0,
        "fg share {share:.3} (fg {fg:?}, bg {bg:?})"
    );
    assert!(executor.stats().host_yields > 0);
    rt.block_on(executor.run_until(async {}));
}

#[test]
fn run_until_completes_promptly_when_its_future_is_ready_while_queues_are_busy() {
    let _serial = serial();
    let executor = two_queues();
    let stop = Rc::new(Cell::new(false));
    cpu_hogs(&executor, &stop);
    let rt = tokio_runtime();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let start = Instant::now();
        rt.block_on(executor.run_until(async { yield_now().await }));
        worst = worst.max(start.elapsed());
    }
    stop.set(true);
    assert!(
        worst < Duration::from_millis(50),
        "worst run_until of a ready future: {worst:?}"
    );
}

#[test]
fn tokio_timers_fire_on_time_while_queues_are_busy() {
    let _serial = serial();
    let executor = two_queues();
    let stop = Rc::new(Cell::new(false));
    cpu_hogs(&executor, &stop);
    let rt = tokio_runtime();
    let lates = rt.block_on(executor.run_until(async {
        let mut lates = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(2)).await;
            lates.push(start.elapsed().saturating_sub(Duration::from_millis(2)));
        }
        lates
    }));
    stop.set(true);
    let late = lates
        .iter()
        .filter(|l| **l > Duration::from_millis(10))
        .count();
    let worst = lates.iter().max().unwrap();
    assert!(
        late <= 5,
        "{late} of 50 sleeps over 10 ms late; worst {worst:?}"
    );
}

#[test]
fn run_until_under_a_multi_thread_tokio_block_on_works_and_hands_off() {
    let _serial = serial();
    let executor = two_queues();
    let stop = Rc::new(Cell::new(false));
    cpu_hogs(&executor, &stop);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let start = Instant::now();
    let out = rt.block_on(executor.run_until(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = fg.spawn(async { 41 }).await.unwrap();
        // A task spawned on tokio's workers, joined from the executor.
        n + tokio::spawn(async { 1 }).await.unwrap()
    }));
    stop.set(true);
    assert_eq!(out, 42);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(executor.stats().host_yields > 0);
}

#[test]
fn host_yields_stay_zero_under_block_on_even_with_unequal_weights_and_tokio_calls() {
    let executor = two_queues();
    let stop = Rc::new(Cell::new(false));
    cpu_hogs(&executor, &stop);
    let start = Instant::now();
    executor.block_on(async {
        while start.elapsed() < Duration::from_millis(100) {
            yield_now().await;
        }
    });
    stop.set(true);
    executor.block_on(async {});
    let stats = executor.stats();
    assert_eq!(stats.host_yields, 0, "{stats}");
}

// ----- 4. macro duration options --------------------------------------------

async fn interleave() -> usize {
    let counter = Rc::new(Cell::new(0));
    let mut hs = Vec::new();
    for key in ["a", "b"] {
        let c = counter.clone();
        hs.push(spawn!(key, async move {
            for _ in 0..100 {
                c.set(c.get() + 1);
                yield_now().await;
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    counter.get()
}

#[clockworker::test(queues(a = 2, b = 1), time_slice = "0ns", host_yield_interval = "0ns")]
async fn macro_zero_slice_and_zero_host_yield_interval_still_run() {
    assert_eq!(interleave().await, 200);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[clockworker::test(queues(a = 2, b = 1), time_slice = "1s", host_yield_interval = "1s")]
async fn macro_one_second_slice_and_interval_still_run_and_timers_fire() {
    assert_eq!(interleave().await, 200);
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::time::sleep(Duration::from_millis(5)),
    )
    .await
    .unwrap();
}

#[clockworker::test(
    queues(a = 2, b = 1),
    time_slice = "18446744073709551615ns",
    host_yield_interval = "18446744073709551615ns"
)]
async fn macro_u64_max_nanosecond_durations_do_not_overflow() {
    assert_eq!(interleave().await, 200);
    let h = Handle::<&str>::current();
    assert_eq!(h.queue_stats("a").unwrap().completed, 1);
}

#[clockworker::test(
    queues(a = 1, b = 1),
    panic = "catch",
    time_slice = "0ns",
    host_yield_interval = "18446744073709551615ns"
)]
async fn macro_duration_options_combine_with_panic_catch() {
    let e = spawn!("b", async { panic!("boom") }).await.unwrap_err();
    assert!(e.is_panic());
    assert_eq!(interleave().await, 200);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
enum Lane {
    Fast,
    Slow,
}

#[clockworker::test(
    queues(Lane::Fast = 8, Lane::Slow = 1),
    panic = "catch",
    time_slice = "18446744073709551615ns",
    host_yield_interval = "0ns"
)]
async fn macro_duration_options_with_the_typed_form() {
    let e = spawn!(Lane::Slow, async { panic!("slow boom") })
        .await
        .unwrap_err();
    assert!(e.is_panic());
    let x = spawn!(Lane::Fast, async {
        yield_now().await;
        1
    })
    .await
    .unwrap();
    assert_eq!(x, 1);
    assert_eq!(
        Handle::<Lane>::current()
            .queue_stats(Lane::Slow)
            .unwrap()
            .panicked,
        1
    );
}

#[test]
fn builder_extreme_durations_on_block_on_and_run_until() {
    for d in [
        Duration::ZERO,
        Duration::from_nanos(u64::MAX),
        Duration::MAX,
    ] {
        let executor = ExecutorBuilder::new()
            .with_queue(0u8, 3)
            .with_queue(1u8, 1)
            .with_time_slice(d)
            .with_host_yield_interval(d)
            .build()
            .unwrap();
        let n = Rc::new(Cell::new(0));
        for k in [0u8, 1] {
            let n = n.clone();
            executor.queue(k).unwrap().spawn(async move {
                for _ in 0..50 {
                    n.set(n.get() + 1);
                    yield_now().await;
                }
            });
        }
        assert!(common::run_until(&executor, || n.get() == 100), "{d:?}");
        let rt = tokio_runtime();
        let q = executor.queue(1).unwrap();
        let out = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                executor.run_until(q.spawn(async { 5 })),
            )
            .await
        });
        assert_eq!(out.expect("timed out").unwrap(), 5, "{d:?}");
    }
}
