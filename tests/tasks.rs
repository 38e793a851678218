//! Task lifecycle: ordering, abort, detach, panics, executor drop, remote
//! wake-ups, stats.

mod common;

use std::cell::RefCell;
use std::future::{Future, pending};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use clockworker::{Executor, ExecutorBuilder, JoinError, JoinHandle, yield_now};
use common::{Probe, one_queue, spin};

fn single() -> Executor<u8> {
    one_queue(false)
}

fn catching() -> Executor<u8> {
    one_queue(true)
}

/// A future that is pending until `flag` is set, and wakes nobody: it is
/// polled again only if something else wakes its task.
struct WaitFlag(Arc<AtomicBool>);

impl Future for WaitFlag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn tasks_of_a_queue_run_in_fifo_order() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let log = log.clone();
            queue.spawn(async move { log.borrow_mut().push(i) })
        })
        .collect();
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(*log.borrow(), (0..100).collect::<Vec<_>>());
}

#[test]
fn yielding_tasks_take_turns() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            queue.spawn(async move {
                for round in 0..3 {
                    log.borrow_mut().push(format!("{name}{round}"));
                    yield_now().await;
                }
            })
        })
        .collect();
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(
        *log.borrow(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[test]
fn abort_before_first_poll_drops_the_future_unpolled() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let probe = Probe::default();
    let handle = queue.spawn(probe.wrap(async { 1 }));
    handle.abort();
    let result = executor.block_on(handle);
    assert!(matches!(result, Err(JoinError::Cancelled)));
    assert_eq!(probe.polls(), 0);
    assert_eq!(probe.drops(), 1);
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.spawned, stats.cancelled, stats.completed), (1, 1, 0));
    assert_eq!(stats.polls, 0);
}

#[test]
fn abort_of_a_parked_task_drops_it_without_its_wake_up() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let probe = Probe::default();
    // The flag is never set and nothing wakes the task again.
    let never = Arc::new(AtomicBool::new(false));
    let handle = queue.spawn(probe.wrap(WaitFlag(never)));
    let probe_in = probe.clone();
    executor.block_on(async move {
        yield_now().await; // let the task run once and park
        assert_eq!(probe_in.polls(), 1);
        assert_eq!(probe_in.drops(), 0);
        handle.abort();
        let result = handle.await;
        // The future was dropped before the handle resolved.
        assert_eq!(probe_in.drops(), 1);
        assert!(result.unwrap_err().is_cancelled());
    });
    assert_eq!(probe.polls(), 1);
}

#[test]
fn abort_from_another_thread_while_the_executor_is_idle() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let probe = Probe::default();
    let handle = queue.spawn(probe.wrap(pending::<()>()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let probe_in = probe.clone();
    executor.block_on(async move {
        yield_now().await;
        assert_eq!(probe_in.polls(), 1);
        // This thread parks in `block_on` (nothing is runnable) until the
        // abort's wake-up reaches it.
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            handle.abort();
            let result = futures_lite::future::block_on(handle);
            tx.send(result.unwrap_err().is_cancelled()).unwrap();
        });
        assert!(rx.await.unwrap());
        thread.join().unwrap();
    });
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert!(executor.stats().idle_waits >= 1);
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let handle = queue.spawn(async { 5 });
    executor.block_on(async {
        yield_now().await;
        assert!(handle.is_finished());
        handle.abort();
        handle.abort();
        assert_eq!(handle.await.unwrap(), 5);
    });
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.completed, stats.cancelled), (1, 0));
}

#[test]
fn aborting_itself_cancels_at_the_next_poll_boundary() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let reached = Rc::new(AtomicUsize::new(0));
    let (slot_in, reached_in) = (slot.clone(), reached.clone());
    let handle = queue.spawn(async move {
        reached_in.fetch_add(1, Ordering::SeqCst);
        if let Some(me) = slot_in.borrow().as_ref() {
            me.abort();
        }
        yield_now().await;
        reached_in.fetch_add(1, Ordering::SeqCst);
    });
    // Keep a second way to observe the result: the task aborts itself
    // through the handle stored in `slot`.
    *slot.borrow_mut() = Some(handle);
    executor.block_on(async {
        let handle = loop {
            if let Some(h) = slot.borrow_mut().take_if(|h| h.is_finished()) {
                break h;
            }
            yield_now().await;
        };
        assert!(handle.await.unwrap_err().is_cancelled());
    });
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[test]
fn a_task_that_aborts_itself_in_its_first_poll_and_parks_is_cancelled() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let probe = Probe::default();
    let slot_in = slot.clone();
    let handle = queue.spawn(probe.wrap(async move {
        if let Some(me) = slot_in.borrow().as_ref() {
            me.abort();
        }
        // Parks on something that never wakes it.
        pending::<()>().await
    }));
    *slot.borrow_mut() = Some(handle);
    let probe_in = probe.clone();
    executor.block_on(async move {
        // A few turns are plenty; without the prompt abort this would wait
        // forever.
        for _ in 0..1_000 {
            if probe_in.drops() > 0 {
                break;
            }
            yield_now().await;
        }
        assert_eq!(probe_in.drops(), 1, "the aborted task was not dropped");
        let handle = slot.borrow_mut().take().unwrap();
        assert!(handle.is_finished());
        assert!(handle.await.unwrap_err().is_cancelled());
    });
    assert_eq!((probe.polls(), probe.drops()), (1, 1));
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn dropping_the_handle_detaches_the_task() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let done = Rc::new(AtomicBool::new(false));
    let done_in = done.clone();
    drop(queue.spawn(async move {
        yield_now().await;
        yield_now().await;
        done_in.store(true, Ordering::SeqCst);
    }));
    executor.block_on(async {
        while !done.load(Ordering::SeqCst) {
            yield_now().await;
        }
    });
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.completed, stats.polls), (1, 3));
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn a_task_panic_propagates_out_of_block_on_by_default() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    // A runtime value, so that the payload is a formatted `String`.
    let n = std::hint::black_box(7);
    let handle = queue.spawn(async move { panic!("boom {n}") });
    let caught = catch_unwind(AssertUnwindSafe(|| executor.block_on(handle)));
    let payload = caught.expect_err("the panic must propagate");
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom 7");
    // The executor still works afterwards.
    let again = executor.block_on(queue.spawn(async { 3 }));
    assert_eq!(again.unwrap(), 3);
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.panicked, stats.completed), (1, 1));
}

#[test]
fn a_propagated_panic_leaves_the_handle_with_the_message() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let handle = queue.spawn(async { panic!("static message") });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        executor.block_on(async { yield_now().await })
    }));
    assert_eq!(
        *caught.unwrap_err().downcast_ref::<&str>().unwrap(),
        "static message"
    );
    let err = futures_lite::future::block_on(handle).unwrap_err();
    match err {
        JoinError::Panic(panic) => assert_eq!(panic.message(), Some("static message")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn caught_panics_become_join_errors_and_others_go_on() {
    let executor = catching();
    let queue = executor.queue(0).unwrap();
    let n = std::hint::black_box(42);
    let bad = queue.spawn(async move {
        yield_now().await;
        panic!("task failed: {n}");
    });
    let good = queue.spawn(async {
        yield_now().await;
        yield_now().await;
        "fine"
    });
    let (bad, good) = executor.block_on(async { (bad.await, good.await) });
    assert_eq!(good.unwrap(), "fine");
    let err = bad.unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    let text = err.to_string();
    assert!(text.contains("panicked: task failed: 42"), "{text}");
    assert!(text.contains("tests/tasks.rs"), "{text}");
    let JoinError::Panic(panic) = err else {
        unreachable!()
    };
    assert_eq!(panic.to_string(), "task failed: 42");
    assert!(panic.label().unwrap().file().ends_with("tasks.rs"));
    let payload = panic.into_panic();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "task failed: 42");
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.panicked, stats.completed), (1, 1));
}

#[test]
fn join_error_is_a_send_sync_error() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<JoinError>();
    assert_error::<clockworker::TaskPanic>();
    assert_error::<clockworker::BuildError>();
    assert_error::<clockworker::UnknownQueue>();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<JoinHandle<u32>>();
    assert_send_sync::<clockworker::Spawner<&'static str>>();
}

#[test]
fn dropping_the_executor_drops_every_future_and_cancels_handles() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let parked = Probe::default();
    let unpolled = Probe::default();
    let mut handles = Vec::new();
    for _ in 0..10 {
        // Each parked task holds a queue handle: that must not keep the
        // executor (and so the task) alive.
        let queue_inside = queue.clone();
        handles.push(queue.spawn(parked.wrap(async move {
            let _keep = queue_inside;
            pending::<u32>().await
        })));
    }
    // Drive the executor until every task has been polled (and parked): the
    // run loop may hand back to this future after any task once its time
    // slice is over, so a single `yield_now` is not enough on a loaded
    // machine. Bounded, so that a lost task fails the assertion below.
    let polled = parked.clone();
    executor.block_on(async move {
        for _ in 0..10_000 {
            if polled.polls() >= 10 {
                break;
            }
            yield_now().await;
        }
    });
    assert_eq!(parked.polls(), 10);
    for _ in 0..5 {
        handles.push(queue.spawn(unpolled.wrap(async { 1u32 })));
    }
    assert_eq!(executor.stats().live_tasks, 15);
    drop(executor);
    assert_eq!(parked.drops(), 10);
    assert_eq!(unpolled.drops(), 5);
    assert_eq!(unpolled.polls(), 0);
    // Handles resolve at once, on any thread.
    std::thread::spawn(move || {
        for handle in handles {
            assert!(handle.is_finished());
            let result = futures_lite::future::block_on(handle);
            assert!(result.unwrap_err().is_cancelled());
        }
    })
    .join()
    .unwrap();
}

#[test]
fn spawning_after_the_executor_is_gone_cancels() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let spawner = executor.spawner(0).unwrap();
    drop(executor);
    let probe = Probe::default();
    let local = queue.spawn(probe.wrap(async { 1 }));
    let remote = std::thread::spawn({
        let probe = probe.clone();
        move || {
            assert!(spawner.is_closed());
            spawner.spawn(probe.wrap(async { 2 }))
        }
    })
    .join()
    .unwrap();
    assert!(
        futures_lite::future::block_on(local)
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        futures_lite::future::block_on(remote)
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!((probe.polls(), probe.drops()), (0, 2));
}

#[test]
fn twenty_thousand_tasks_woken_from_another_thread_all_finish() {
    const TASKS: usize = 20_000;
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let mut senders = Vec::with_capacity(TASKS);
    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let (tx, rx) = tokio::sync::oneshot::channel::<usize>();
        senders.push((i, tx));
        handles.push(queue.spawn(async move { rx.await.unwrap() * 2 }));
    }
    let stats_of = executor.clone();
    let total = executor.block_on(async move {
        // Let every task park on its channel.
        while stats_of.queue_stats(0).unwrap().polls < TASKS as u64 {
            yield_now().await;
        }
        let waker = std::thread::spawn(move || {
            for (i, tx) in senders {
                tx.send(i).unwrap();
            }
        });
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        waker.join().unwrap();
        total
    });
    assert_eq!(total, TASKS * (TASKS - 1));
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.completed, TASKS as u64);
    assert_eq!(stats.polls, 2 * TASKS as u64);
    assert!(executor.stats().remote_schedules >= 1);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn spawner_spawns_from_other_threads_and_wakes_the_executor() {
    let executor = single();
    let spawner = executor.spawner(0).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let spawner = spawner.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    tx.send(spawner.spawn(async move { t * 1000 + i })).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for thread in threads {
        thread.join().unwrap();
    }
    let handles: Vec<_> = rx.into_iter().collect();
    let sum = executor.block_on(async {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    });
    let expected: i32 = (0..4)
        .flat_map(|t| (0..250).map(move |i| t * 1000 + i))
        .sum();
    assert_eq!(sum, expected);
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.spawned, stats.completed), (1000, 1000));
}

#[test]
fn pending_tasks_stay_for_the_next_run() {
    let executor = single();
    let queue = executor.queue(0).unwrap();
    let steps = Rc::new(AtomicUsize::new(0));
    let steps_in = steps.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<&str>();
    let handle = queue.spawn(async move {
        steps_in.fetch_add(1, Ordering::SeqCst);
        let word = rx.await.unwrap();
        steps_in.fetch_add(1, Ordering::SeqCst);
        word
    });
    executor.block_on(yield_now());
    assert_eq!(steps.load(Ordering::SeqCst), 1);
    assert!(!handle.is_finished());
    assert_eq!(executor.stats().live_tasks, 1);
    tx.send("done").unwrap();
    assert_eq!(executor.block_on(handle).unwrap(), "done");
    assert_eq!(steps.load(Ordering::SeqCst), 2);
}

#[test]
fn running_an_executor_inside_itself_panics_with_a_clear_message() {
    let executor = catching();
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let handle = queue.spawn(async move { inner.block_on(async {}) });
    let err = executor.block_on(handle).unwrap_err();
    let JoinError::Panic(panic) = err else {
        panic!("expected a panic, got {err:?}")
    };
    assert!(
        panic
            .message()
            .unwrap()
            .contains("cannot run inside itself"),
        "{panic}"
    );
}

#[test]
fn a_task_can_drive_another_executor() {
    let outer = single();
    let inner = single();
    let inner_queue = inner.queue(0).unwrap();
    let outer_queue = outer.queue(0).unwrap();
    let handle = outer_queue.spawn(async move {
        let inner_task = inner_queue.spawn(async { 20 });
        inner.block_on(inner_task).unwrap() + 1
    });
    assert_eq!(outer.block_on(handle).unwrap(), 21);
}

#[test]
fn tasks_spawned_by_the_run_until_future_are_dated_correctly() {
    // Spawned during the very first poll of the `block_on` future, before
    // the task loop has run once.
    let executor = single();
    let queue = executor.queue(0).unwrap();
    executor.block_on(async {
        spin(Duration::from_millis(2));
        queue.spawn(async {}).await.unwrap();
    });
    let delay = executor.queue_stats(0).unwrap().queue_delay;
    assert_eq!(delay.samples, 1);
    assert!(delay.max < Duration::from_millis(100), "{delay:?}");
}

#[test]
fn stats_add_up() {
    let executor = ExecutorBuilder::new()
        .with_queue("light", 1)
        .with_queue("heavy", 1)
        .build()
        .unwrap();
    let light = executor.queue("light").unwrap();
    let heavy = executor.queue("heavy").unwrap();
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(light.spawn(async {
            spin(Duration::from_micros(200));
            yield_now().await;
        }));
        handles.push(heavy.spawn(async {
            for _ in 0..4 {
                spin(Duration::from_micros(500));
                yield_now().await;
            }
        }));
    }
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let stats = executor.stats();
    assert_eq!(stats.spawned(), 10);
    assert_eq!(stats.completed(), 10);
    assert_eq!(stats.cancelled() + stats.panicked(), 0);
    assert_eq!(stats.runnable(), 0);
    assert_eq!(stats.live_tasks, 0);
    let [l, h] = &stats.queues[..] else {
        unreachable!()
    };
    assert_eq!((l.polls, h.polls), (10, 25));
    // 1 ms against 10 ms of spinning.
    assert!(l.busy >= Duration::from_millis(1), "{:?}", l.busy);
    assert!(h.busy >= Duration::from_millis(10), "{:?}", h.busy);
    assert!(h.busy > l.busy * 4, "{:?} vs {:?}", h.busy, l.busy);
    assert_eq!(l.queue_delay.samples, 10);
    assert_eq!(h.queue_delay.samples, 25);
    assert!(h.queue_delay.max >= h.queue_delay.p99);
    assert!(h.queue_delay.p99 >= h.queue_delay.p50);
    assert!(l.slices >= 1 && h.slices >= 1);
    let table = stats.to_string();
    assert!(table.contains("\"heavy\""), "{table}");
    assert!(table.lines().count() >= 4, "{table}");
}
