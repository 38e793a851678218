//! Defects being fixed, as a user meets them: panics from a future's `Drop`
//! that outlive the operation that swallowed them, aborts whose drop panics,
//! schedulers that hand back another queue's or executor's task, group
//! weights that a later spawn resets, and an abort lost in `yield_maybe`.
//!
//! Every test counts what happened (polls, drops, completions, handles'
//! results, counters); none relies on how much work fits in a time slice.
//! The tests that touch thread-local state or could hang run on a thread of
//! their own ([`isolated`]), so that a stale panic payload can only come from
//! the test itself and a lost task fails the test instead of stalling it.

mod common;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, pending};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::time::Duration;

use clockworker::sched::{GroupId, ReadyTask, TaskScheduler, WeightedGroups};
use clockworker::{Executor, ExecutorBuilder, JoinError, JoinHandle, yield_maybe, yield_now};
use common::{Probe, one_queue, run_until};

// ----- helpers --------------------------------------------------------------

/// How long an isolated test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs `test` on a thread of its own: thread-local state starts fresh, and
/// a test that hangs (a lost task, a spinning loop) fails after [`LIMIT`].
fn isolated(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(()) => thread.join().unwrap(),
        // The test panicked (its sender was dropped while unwinding).
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = thread.join() {
                resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {LIMIT:?}: a task was lost or the executor spun")
        }
    }
}

/// The message of a panic payload (`panic!` with a literal or a format).
fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// Panics with its message when dropped (unless the thread is already
/// unwinding, so that a failing assertion never turns into an abort).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            std::panic::panic_any(self.0);
        }
    }
}

/// A future that parks forever (nothing wakes it) and panics with `message`
/// when it is dropped, polled or not.
fn parks_then_panics_on_drop(message: &'static str) -> impl Future<Output = ()> + Send {
    let guard = PanicOnDrop(message);
    async move {
        let _guard = guard;
        pending::<()>().await
    }
}

/// A future that completes at once and panics with `message` if it is
/// dropped before it ran.
fn panics_on_drop(message: &'static str) -> impl Future<Output = ()> + Send {
    let guard = PanicOnDrop(message);
    async move {
        std::mem::forget(guard);
    }
}

/// Asserts that a handle's result is the panic with `expected` as message.
#[track_caller]
fn assert_panicked<T: std::fmt::Debug>(result: Result<T, JoinError>, expected: &str, what: &str) {
    match result {
        Err(JoinError::Panic(panic)) => {
            assert_eq!(panic.message(), Some(expected), "{what}: {panic:?}")
        }
        other => panic!("{what}: expected Err(JoinError::Panic({expected:?})), got {other:?}"),
    }
}

fn propagating() -> Executor<u8> {
    one_queue(false)
}

fn catching() -> Executor<u8> {
    one_queue(true)
}

/// A hint that makes [`DropsHinted`] drop the task it is given.
const DROP: u64 = 999;

/// FIFO, except that it drops (instead of keeping) every task whose hint is
/// [`DROP`]: such a task is handed back to its executor, which cancels it.
#[derive(Default)]
struct DropsHinted {
    ready: VecDeque<ReadyTask>,
}

impl TaskScheduler for DropsHinted {
    fn push(&mut self, task: ReadyTask) {
        if task.hint() == DROP {
            drop(task);
        } else {
            self.ready.push_back(task);
        }
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop_front()
    }
    fn len(&self) -> usize {
        self.ready.len()
    }
}

/// A fresh executor in the default (propagate) mode on this thread runs
/// tasks, some completing and some aborted (parked or not yet polled), and
/// `block_on` returns normally: no panic swallowed earlier resurfaces.
fn a_fresh_executor_runs_normally(earlier: &str) {
    let executor = propagating();
    let queue = executor.queue(0).unwrap();
    let completed = Rc::new(Cell::new(0));
    let finishing: Vec<_> = (0..3)
        .map(|_| {
            let completed = completed.clone();
            queue.spawn(async move {
                yield_now().await;
                completed.set(completed.get() + 1);
            })
        })
        .collect();
    let parked = Probe::default();
    let aborted: Vec<_> = (0..3)
        .map(|_| queue.spawn(parked.wrap(pending::<()>())))
        .collect();
    let unpolled = queue.spawn(async {});
    unpolled.abort();
    let run = catch_unwind(AssertUnwindSafe(|| {
        executor.block_on(async {
            for _ in 0..10_000 {
                if parked.polls() == 3 {
                    break;
                }
                yield_now().await;
            }
            for handle in &aborted {
                handle.abort();
            }
            let mut results = Vec::new();
            for handle in aborted.into_iter().chain([unpolled]) {
                results.push(handle.await);
            }
            for handle in finishing {
                handle.await.unwrap();
            }
            results
        })
    }));
    let results = match run {
        Ok(results) => results,
        Err(payload) => panic!(
            "a panic swallowed {earlier} resurfaced out of an unrelated executor's block_on: {:?}",
            message(&*payload)
        ),
    };
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(JoinError::Cancelled))),
        "{results:?}"
    );
    assert_eq!((completed.get(), parked.polls(), parked.drops()), (3, 3, 3));
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(
        (stats.completed, stats.cancelled, stats.panicked),
        (3, 4, 0),
        "{stats:?}"
    );
}

// ----- A. a swallowed panic never outlives the operation that swallowed it --

#[test]
fn a_drop_panic_at_executor_drop_does_not_resurface_in_another_executor() {
    isolated(|| {
        let first = propagating();
        let queue = first.queue(0).unwrap();
        let probe = Probe::default();
        let parked =
            queue.spawn(probe.wrap(parks_then_panics_on_drop("dropped with its executor")));
        let unpolled = queue.spawn(panics_on_drop("dropped unpolled with its executor"));
        assert!(run_until(&first, || probe.polls() == 1));
        drop(queue);
        drop(first);
        assert_eq!((probe.polls(), probe.drops()), (1, 1));
        assert!(parked.is_finished() && unpolled.is_finished());
        a_fresh_executor_runs_normally("when an executor was dropped");
    });
}

#[test]
fn a_drop_panic_when_spawning_onto_a_dropped_executor_does_not_resurface() {
    isolated(|| {
        let first = propagating();
        let spawner = first.spawner(0).unwrap();
        drop(first);
        let probe = Probe::default();
        let handle = spawner.spawn(probe.wrap(panics_on_drop("spawned onto a dropped executor")));
        assert_eq!((probe.polls(), probe.drops()), (0, 1));
        assert!(handle.is_finished());
        a_fresh_executor_runs_normally("by a spawn onto a dropped executor");
    });
}

#[test]
fn a_drop_panic_of_a_task_its_scheduler_dropped_does_not_resurface() {
    isolated(|| {
        let first = ExecutorBuilder::new()
            .with_queue_scheduler(0u8, 1, DropsHinted::default())
            .build()
            .unwrap();
        let queue = first.queue(0).unwrap();
        let probe = Probe::default();
        let dropped =
            queue.spawn_with_hint(DROP, probe.wrap(panics_on_drop("dropped by its scheduler")));
        let kept = queue.spawn(async { 1 });
        // The task was cancelled inside this run: the run may resume its
        // panic (propagate mode), but the panic must not outlive it.
        let run = catch_unwind(AssertUnwindSafe(|| {
            run_until(&first, || dropped.is_finished() && kept.is_finished())
        }));
        match run {
            Ok(finished) => assert!(finished, "the dropped task's handle never resolved"),
            Err(payload) => assert_eq!(message(&*payload), Some("dropped by its scheduler")),
        }
        assert_eq!((probe.polls(), probe.drops()), (0, 1));
        a_fresh_executor_runs_normally("when a scheduler dropped a task");
    });
}

fn a_drop_panic_at_executor_drop_reaches_the_task_handle(catch: bool) {
    isolated(move || {
        let executor = one_queue(catch);
        let queue = executor.queue(0).unwrap();
        let probe = Probe::default();
        let parked = queue.spawn(probe.wrap(parks_then_panics_on_drop("parked, dropped")));
        assert!(run_until(&executor, || probe.polls() == 1));
        let unpolled = queue.spawn(panics_on_drop("unpolled, dropped"));
        drop(executor);
        assert_eq!(probe.drops(), 1);
        let mode = if catch {
            "catch mode"
        } else {
            "propagate mode"
        };
        assert_panicked(
            futures_lite::future::block_on(parked),
            "parked, dropped",
            &format!("a parked task dropped with its executor ({mode})"),
        );
        assert_panicked(
            futures_lite::future::block_on(unpolled),
            "unpolled, dropped",
            &format!("an unpolled task dropped with its executor ({mode})"),
        );
    });
}

#[test]
fn a_drop_panic_at_executor_drop_reaches_the_task_handle_in_propagate_mode() {
    a_drop_panic_at_executor_drop_reaches_the_task_handle(false);
}

#[test]
fn a_drop_panic_at_executor_drop_reaches_the_task_handle_in_catch_mode() {
    a_drop_panic_at_executor_drop_reaches_the_task_handle(true);
}

fn a_drop_panic_when_spawning_onto_a_dropped_executor_reaches_the_task_handle(catch: bool) {
    isolated(move || {
        let executor = one_queue(catch);
        let spawner = executor.spawner(0).unwrap();
        drop(executor);
        let handle = spawner.spawn(panics_on_drop("spawned too late"));
        let mode = if catch {
            "catch mode"
        } else {
            "propagate mode"
        };
        assert_panicked(
            futures_lite::future::block_on(handle),
            "spawned too late",
            &format!("a Spawner spawn onto a dropped executor ({mode})"),
        );
    });
}

#[test]
fn a_drop_panic_when_spawning_onto_a_dropped_executor_reaches_the_handle_in_propagate_mode() {
    a_drop_panic_when_spawning_onto_a_dropped_executor_reaches_the_task_handle(false);
}

#[test]
fn a_drop_panic_when_spawning_onto_a_dropped_executor_reaches_the_handle_in_catch_mode() {
    a_drop_panic_when_spawning_onto_a_dropped_executor_reaches_the_task_handle(true);
}

// ----- B. abort + drop panic -----------------------------------------------

#[test]
fn in_catch_mode_aborting_a_parked_task_whose_drop_panics_gives_its_handle_the_panic() {
    isolated(|| {
        let executor = catching();
        let queue = executor.queue(0).unwrap();
        let probe = Probe::default();
        let victim = queue.spawn(probe.wrap(parks_then_panics_on_drop("panicked while aborted")));
        let before = queue.spawn(async {
            yield_now().await;
            "before"
        });
        let (result, after) = executor.block_on(async {
            for _ in 0..10_000 {
                if probe.polls() == 1 {
                    break;
                }
                yield_now().await;
            }
            assert_eq!(probe.polls(), 1, "the task never ran");
            victim.abort();
            let result = victim.await;
            // The executor goes on running other tasks.
            let after = queue.spawn(async {
                yield_now().await;
                "after"
            });
            (result, after.await)
        });
        assert_eq!(probe.drops(), 1);
        assert_panicked(result, "panicked while aborted", "an aborted parked task");
        assert_eq!(after.unwrap(), "after");
        assert_eq!(futures_lite::future::block_on(before).unwrap(), "before");
        let stats = executor.queue_stats(0).unwrap();
        assert_eq!(
            (stats.completed, stats.panicked, stats.cancelled),
            (2, 1, 0),
            "the drop panic counts as panicked, not cancelled: {stats:?}"
        );
    });
}

#[test]
fn in_catch_mode_aborting_an_unpolled_task_whose_drop_panics_gives_its_handle_the_panic() {
    isolated(|| {
        let executor = catching();
        let queue = executor.queue(0).unwrap();
        let probe = Probe::default();
        let victim = queue.spawn(probe.wrap(panics_on_drop("dropped unpolled")));
        victim.abort();
        let other = queue.spawn(async { 7 });
        let (result, other) = executor.block_on(async { (victim.await, other.await) });
        assert_eq!((probe.polls(), probe.drops()), (0, 1));
        assert_panicked(
            result,
            "dropped unpolled",
            "a task aborted before its first poll",
        );
        assert_eq!(other.unwrap(), 7);
        let stats = executor.queue_stats(0).unwrap();
        assert_eq!(
            (stats.completed, stats.panicked, stats.cancelled),
            (1, 1, 0),
            "the drop panic counts as panicked, not cancelled: {stats:?}"
        );
    });
}

#[test]
fn in_propagate_mode_an_abort_whose_drop_panics_resumes_out_of_block_on_once() {
    isolated(|| {
        let executor = propagating();
        let queue = executor.queue(0).unwrap();
        let probe = Probe::default();
        let victim = queue.spawn(probe.wrap(parks_then_panics_on_drop("resumed from abort")));
        assert!(run_until(&executor, || probe.polls() == 1));
        let run = catch_unwind(AssertUnwindSafe(|| {
            executor.block_on(async {
                victim.abort();
                for _ in 0..10_000 {
                    if victim.is_finished() {
                        break;
                    }
                    yield_now().await;
                }
            })
        }));
        let payload = run.expect_err("the drop panic must resume out of block_on");
        assert_eq!(message(&*payload), Some("resumed from abort"));
        assert_eq!(probe.drops(), 1);
        assert!(victim.is_finished());
        // Resumed once: the next runs of this executor, aborts included, go
        // on normally.
        let parked = queue.spawn(pending::<()>());
        let result = executor.block_on(async {
            yield_now().await;
            parked.abort();
            let parked = parked.await;
            (parked, queue.spawn(async { 3 }).await)
        });
        assert!(result.0.unwrap_err().is_cancelled());
        assert_eq!(result.1.unwrap(), 3);
    });
}

// ----- C. a scheduler that hands back another queue's or executor's task ----

/// One policy object that several queues share: FIFO, or LIFO (the newest
/// task first, so that a task pushed by another queue or executor after
/// this queue's own is popped first).
#[derive(Clone, Default)]
struct SharedPolicy {
    ready: Rc<RefCell<VecDeque<ReadyTask>>>,
    lifo: bool,
}

impl SharedPolicy {
    fn lifo() -> SharedPolicy {
        SharedPolicy {
            lifo: true,
            ..SharedPolicy::default()
        }
    }

    fn held(&self) -> usize {
        self.ready.borrow().len()
    }
}

impl TaskScheduler for SharedPolicy {
    fn push(&mut self, task: ReadyTask) {
        self.ready.borrow_mut().push_back(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        let mut ready = self.ready.borrow_mut();
        if self.lifo {
            ready.pop_back()
        } else {
            ready.pop_front()
        }
    }
    fn len(&self) -> usize {
        self.ready.borrow().len()
    }
}

/// Counts how many times each of `n` tasks completed.
#[derive(Clone)]
struct Completions(Rc<RefCell<Vec<u32>>>);

impl Completions {
    fn new(n: usize) -> Completions {
        Completions(Rc::new(RefCell::new(vec![0; n])))
    }

    /// Task `i`: yields `yields` times, then counts its completion.
    fn task(&self, i: usize, yields: usize) -> impl Future<Output = usize> + 'static {
        let completions = self.clone();
        async move {
            for _ in 0..yields {
                yield_now().await;
            }
            completions.0.borrow_mut()[i] += 1;
            i
        }
    }

    fn assert_each_once(&self) {
        let counts = self.0.borrow();
        let wrong: Vec<_> = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 1)
            .collect();
        assert!(
            wrong.is_empty(),
            "(task, completions) not exactly once: {wrong:?}"
        );
    }
}

fn assert_outputs(handles: Vec<JoinHandle<usize>>, ids: impl IntoIterator<Item = usize>) {
    for (handle, id) in handles.into_iter().zip(ids) {
        assert!(handle.is_finished(), "task {id}'s handle never resolved");
        assert_eq!(futures_lite::future::block_on(handle).unwrap(), id);
    }
}

#[test]
fn one_policy_shared_by_two_queues_keeps_each_queues_books() {
    isolated(|| {
        const N: usize = 40;
        let policy = SharedPolicy::default();
        let executor = ExecutorBuilder::new()
            .with_queue_scheduler("a", 1, policy.clone())
            .with_queue_scheduler("b", 1, policy.clone())
            .build()
            .unwrap();
        let a = executor.queue("a").unwrap();
        let b = executor.queue("b").unwrap();
        let group_a = a.group(1u64);
        let group_b = b.group(2u64).with_weight(3).unwrap();
        let completions = Completions::new(2 * N);
        let mut handles = Vec::new();
        for i in 0..N {
            // Task 2i on queue a, task 2i + 1 on queue b; every other one in
            // a group; some complete in one poll, some yield.
            let (ta, tb) = (
                completions.task(2 * i, i % 3),
                completions.task(2 * i + 1, i % 3),
            );
            if i % 2 == 0 {
                handles.push(group_a.spawn(ta));
                handles.push(group_b.spawn(tb));
            } else {
                handles.push(a.spawn(ta));
                handles.push(b.spawn(tb));
            }
        }
        let groups = |key| executor.queue_stats(key).unwrap().groups;
        let (ga, gb) = (groups("a"), groups("b"));
        assert_eq!(ga.len(), 1, "{ga:?}");
        assert_eq!(
            (ga[0].id, ga[0].weight, ga[0].live_tasks),
            (GroupId::new(1), 1, N / 2)
        );
        assert_eq!(gb.len(), 1, "{gb:?}");
        assert_eq!(
            (gb[0].id, gb[0].weight, gb[0].live_tasks),
            (GroupId::new(2), 3, N / 2)
        );

        let finished = run_until(&executor, || handles.iter().all(JoinHandle::is_finished));
        let unfinished = handles.iter().filter(|h| !h.is_finished()).count();
        assert!(finished, "{unfinished} of {} handles never resolved", 2 * N);
        assert_outputs(handles, 0..2 * N);
        completions.assert_each_once();
        let mut wrong = Vec::new();
        for key in ["a", "b"] {
            let stats = executor.queue_stats(key).unwrap();
            let counts = (
                stats.spawned,
                stats.completed,
                stats.cancelled,
                stats.panicked,
            );
            if counts != (N as u64, N as u64, 0, 0) {
                wrong.push(format!(
                    "queue {key:?}: (spawned, completed, cancelled, panicked) = {counts:?}, \
                     expected ({N}, {N}, 0, 0): a task counts in the queue it was spawned on"
                ));
            }
            if !stats.groups.is_empty() {
                wrong.push(format!(
                    "queue {key:?} still lists groups whose tasks all finished: {:?}",
                    stats.groups
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_eq!(executor.stats().live_tasks, 0);
        assert_eq!(policy.held(), 0);
    });
}

#[test]
fn one_policy_shared_by_two_executors_completes_every_task_once() {
    isolated(|| {
        const N: usize = 20;
        let policy = SharedPolicy::lifo();
        let build = || {
            ExecutorBuilder::new()
                .with_queue_scheduler(0u8, 1, policy.clone())
                .build()
                .unwrap()
        };
        let (x, y) = (build(), build());
        let (xq, yq) = (x.queue(0).unwrap(), y.queue(0).unwrap());
        let completions = Completions::new(2 * N);
        // Y's tasks 0..N, then X's tasks N..2N; some complete in one poll.
        let y_handles: Vec<_> = (0..N)
            .map(|i| yq.spawn(completions.task(i, i % 3)))
            .collect();
        let x_handles: Vec<_> = (N..2 * N)
            .map(|i| xq.spawn(completions.task(i, i % 3)))
            .collect();

        let y_run = catch_unwind(AssertUnwindSafe(|| {
            run_until(&y, || y_handles.iter().all(JoinHandle::is_finished))
        }));
        match y_run {
            Ok(finished) => assert!(finished, "Y's own tasks did not all finish in Y's run"),
            Err(payload) => panic!("Y's run panicked: {:?}", message(&*payload)),
        }
        let x_run = catch_unwind(AssertUnwindSafe(|| {
            run_until(&x, || x_handles.iter().all(JoinHandle::is_finished))
        }));
        match x_run {
            Ok(finished) => assert!(finished, "X's own tasks did not all finish in X's run"),
            Err(payload) => panic!("X's run panicked: {:?}", message(&*payload)),
        }
        assert_outputs(y_handles, 0..N);
        assert_outputs(x_handles, N..2 * N);
        completions.assert_each_once();
        for (name, executor) in [("X", &x), ("Y", &y)] {
            let stats = executor.queue_stats(0).unwrap();
            assert_eq!(
                (stats.spawned, stats.completed, stats.cancelled),
                (N as u64, N as u64, 0),
                "executor {name}: {stats:?}"
            );
            assert_eq!(executor.stats().live_tasks, 0, "executor {name}");
        }
    });
}

#[test]
fn a_task_that_another_executors_scheduler_popped_is_run_by_its_own_executor() {
    isolated(|| {
        let policy = SharedPolicy::lifo();
        let build = || {
            ExecutorBuilder::new()
                .with_queue_scheduler(0u8, 1, policy.clone())
                .build()
                .unwrap()
        };
        let (x, y) = (build(), build());
        let own = y.queue(0).unwrap().spawn(async { "y" });
        let probe = Probe::default();
        // Pushed after Y's task: Y's scheduler (LIFO) pops it first.
        let foreign = x.queue(0).unwrap().spawn(probe.wrap(async {
            yield_now().await;
            "x"
        }));
        let y_run = catch_unwind(AssertUnwindSafe(|| run_until(&y, || own.is_finished())));
        match y_run {
            Ok(finished) => assert!(finished, "Y's own task did not finish"),
            Err(payload) => panic!("Y's run panicked: {:?}", message(&*payload)),
        }
        assert_eq!(policy.held(), 0, "Y's scheduler did not pop X's task");
        assert_eq!(probe.polls(), 0, "X's task was polled by executor Y");
        assert!(
            run_until(&x, || foreign.is_finished()),
            "X's task never finished in X's run"
        );
        assert_eq!(futures_lite::future::block_on(foreign).unwrap(), "x");
        assert_eq!(futures_lite::future::block_on(own).unwrap(), "y");
        assert_eq!(probe.polls(), 2);
        let (xs, ys) = (x.queue_stats(0).unwrap(), y.queue_stats(0).unwrap());
        assert_eq!((xs.spawned, xs.completed), (1, 1), "{xs:?}");
        assert_eq!((ys.spawned, ys.completed), (1, 1), "{ys:?}");
    });
}

#[test]
fn a_task_that_another_executors_scheduler_popped_is_cancelled_when_its_executor_drops() {
    isolated(|| {
        let policy = SharedPolicy::lifo();
        let build = || {
            ExecutorBuilder::new()
                .with_queue_scheduler(0u8, 1, policy.clone())
                .build()
                .unwrap()
        };
        let (x, y) = (build(), build());
        let own = y.queue(0).unwrap().spawn(async { "y" });
        let probe = Probe::default();
        let foreign = x.queue(0).unwrap().spawn(probe.wrap(pending::<()>()));
        let y_run = catch_unwind(AssertUnwindSafe(|| run_until(&y, || own.is_finished())));
        match y_run {
            Ok(finished) => assert!(finished, "Y's own task did not finish"),
            Err(payload) => panic!("Y's run panicked: {:?}", message(&*payload)),
        }
        assert_eq!(policy.held(), 0, "Y's scheduler did not pop X's task");
        drop(x);
        assert!(
            foreign.is_finished(),
            "X's task, popped by Y's scheduler, was not cancelled when X was dropped"
        );
        assert!(
            futures_lite::future::block_on(foreign)
                .unwrap_err()
                .is_cancelled()
        );
        assert_eq!(probe.drops(), 1);
        assert_eq!(probe.polls(), 0, "X's task was polled by executor Y");
        assert_eq!(futures_lite::future::block_on(own).unwrap(), "y");
    });
}

#[test]
fn dropping_an_executor_leaves_another_executors_tasks_in_a_shared_policy_alone() {
    isolated(|| {
        let policy = SharedPolicy::default();
        let build = || {
            ExecutorBuilder::new()
                .with_queue_scheduler(0u8, 1, policy.clone())
                .build()
                .unwrap()
        };
        let (x, y) = (build(), build());
        let probe = Probe::default();
        let survivor = x.queue(0).unwrap().spawn(probe.wrap(async { 5 }));
        let doomed = y.queue(0).unwrap().spawn(pending::<()>());
        // Y's drop drops its own tasks; X's task sits in the same policy.
        drop(y);
        assert!(
            futures_lite::future::block_on(doomed)
                .unwrap_err()
                .is_cancelled()
        );
        assert!(
            !survivor.is_finished(),
            "X's task was cancelled when executor Y was dropped"
        );
        assert!(run_until(&x, || survivor.is_finished()));
        assert_eq!(futures_lite::future::block_on(survivor).unwrap(), 5);
        assert_eq!((probe.polls(), probe.drops()), (1, 1));
        let stats = x.queue_stats(0).unwrap();
        assert_eq!((stats.spawned, stats.completed, stats.cancelled), (1, 1, 0));
    });
}

// ----- F. a group keeps its weight until it is given another ----------------

/// A latch that tasks wait at (registering their wakers) until it opens.
#[derive(Clone, Default)]
struct Latch(Rc<(Cell<bool>, RefCell<Vec<Waker>>)>);

impl Latch {
    fn wait(&self) -> impl Future<Output = ()> + 'static {
        let latch = self.clone();
        std::future::poll_fn(move |cx| {
            if latch.0.0.get() {
                Poll::Ready(())
            } else {
                latch.0.1.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn open(&self) {
        self.0.0.set(true);
        let waiters = std::mem::take(&mut *self.0.1.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }
}

fn groups_executor() -> Executor<&'static str> {
    ExecutorBuilder::new()
        .with_queue_scheduler("tenants", 1, WeightedGroups::new())
        .build()
        .unwrap()
}

/// (id, weight, live tasks) of the queue's live groups.
fn group_weights(executor: &Executor<&'static str>) -> Vec<(u64, u32, usize)> {
    executor
        .queue_stats("tenants")
        .unwrap()
        .groups
        .iter()
        .map(|g| (g.id.as_u64(), g.weight, g.live_tasks))
        .collect()
}

/// Opens the latch and runs the executor until every handle has resolved;
/// the queue's groups are then gone.
fn release_all(executor: &Executor<&'static str>, latch: &Latch, handles: Vec<JoinHandle<()>>) {
    latch.open();
    assert!(run_until(executor, || handles
        .iter()
        .all(JoinHandle::is_finished)));
    for handle in handles {
        futures_lite::future::block_on(handle).unwrap();
    }
    assert_eq!(group_weights(executor), []);
}

#[test]
fn a_group_keeps_its_weight_when_spawned_into_without_one() {
    let executor = groups_executor();
    let tenants = executor.queue("tenants").unwrap();
    let latch = Latch::default();
    let mut handles = Vec::new();
    handles.push(
        tenants
            .group(7u64)
            .with_weight(4)
            .unwrap()
            .spawn(latch.wait()),
    );
    assert_eq!(group_weights(&executor), [(7, 4, 1)]);
    handles.push(tenants.group(7u64).spawn(latch.wait()));
    assert_eq!(
        group_weights(&executor),
        [(7, 4, 2)],
        "group(7).spawn(..) reset the weight that group 7 was given"
    );
    // Still so once both have run and parked.
    assert!(run_until(&executor, || executor
        .queue_stats("tenants")
        .unwrap()
        .polls
        == 2));
    assert_eq!(group_weights(&executor), [(7, 4, 2)]);
    release_all(&executor, &latch, handles);
}

#[test]
fn a_group_takes_a_new_weight_when_given_one_and_its_tasks_children_keep_it() {
    let executor = groups_executor();
    let tenants = executor.queue("tenants").unwrap();
    let latch = Latch::default();
    let mut handles = Vec::new();
    handles.push(
        tenants
            .group(7u64)
            .with_weight(4)
            .unwrap()
            .spawn(latch.wait()),
    );
    handles.push(
        tenants
            .group(7u64)
            .with_weight(2)
            .unwrap()
            .spawn(latch.wait()),
    );
    assert_eq!(
        group_weights(&executor),
        [(7, 2, 2)],
        "with_weight(2) changes the group's weight"
    );
    // A task of the group spawns a child onto its own queue: the child joins
    // the group and leaves its weight alone.
    let child: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    handles.push(tenants.group(7u64).with_weight(2).unwrap().spawn({
        let (tenants, latch, child) = (tenants.clone(), latch.clone(), child.clone());
        async move {
            *child.borrow_mut() = Some(tenants.spawn(latch.wait()));
            latch.wait().await
        }
    }));
    assert!(run_until(&executor, || child.borrow().is_some()));
    assert_eq!(
        group_weights(&executor),
        [(7, 2, 4)],
        "a child spawned by a task of group 7 joins group 7 and keeps its weight"
    );
    handles.push(child.borrow_mut().take().unwrap());
    release_all(&executor, &latch, handles);
}

#[test]
fn a_group_spawned_into_without_a_weight_keeps_its_weight_for_the_scheduler_too() {
    /// (group, group weight) of each task pushed.
    type Seen = Rc<RefCell<Vec<(Option<u64>, u32)>>>;
    /// FIFO that records the group and group weight of every task it is given.
    struct Recording {
        ready: VecDeque<ReadyTask>,
        seen: Seen,
    }
    impl TaskScheduler for Recording {
        fn push(&mut self, task: ReadyTask) {
            let group = task.group().map(GroupId::as_u64);
            self.seen.borrow_mut().push((group, task.group_weight()));
            self.ready.push_back(task);
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.ready.pop_front()
        }
        fn len(&self) -> usize {
            self.ready.len()
        }
    }
    let seen = Rc::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            "tenants",
            1,
            Recording {
                ready: VecDeque::new(),
                seen: Rc::clone(&seen),
            },
        )
        .build()
        .unwrap();
    let tenants = executor.queue("tenants").unwrap();
    let latch = Latch::default();
    let first = tenants
        .group(7u64)
        .with_weight(4)
        .unwrap()
        .spawn(latch.wait());
    let second = tenants.group(7u64).spawn(latch.wait());
    assert_eq!(
        *seen.borrow(),
        [(Some(7), 4), (Some(7), 4)],
        "ReadyTask::group_weight of a task spawned with group(7) after group 7 was given weight 4"
    );
    latch.open();
    assert!(run_until(&executor, || first.is_finished() && second.is_finished()));
}

// ----- G. an abort during `yield_maybe` -------------------------------------

/// A task aborts itself (through its own handle) in its first poll, before
/// it has ever returned `Pending`; then, while the executor has something to
/// drain from its injector (a task that the queue's scheduler dropped in
/// `push`), it passes a `yield_maybe` that does not yield (one queue, a
/// slice far from used up), and parks on a future that never wakes it. The
/// abort must still cancel it.
#[test]
fn a_task_that_aborts_itself_then_passes_yield_maybe_is_still_cancelled() {
    isolated(|| {
        let executor = ExecutorBuilder::new()
            .with_queue_scheduler(0u8, 1, DropsHinted::default())
            // The slice is never used up here: `yield_maybe` yields only if
            // the abort makes it.
            .with_time_slice(Duration::from_secs(1))
            .build()
            .unwrap();
        let queue = executor.queue(0).unwrap();
        let me: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let dropped: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        // Whether the code after `yield_maybe` ran, and whether the dropped
        // task had been drained (cancelled) by then.
        let after_yield: Rc<Cell<Option<bool>>> = Rc::default();
        let probe = Probe::default();
        let handle = queue.spawn(probe.wrap({
            let (me, dropped, after_yield, queue) = (
                me.clone(),
                dropped.clone(),
                after_yield.clone(),
                queue.clone(),
            );
            async move {
                me.borrow().as_ref().expect("the handle is stored").abort();
                // The scheduler drops this task in `push`: the executor gets
                // it back through its injector.
                *dropped.borrow_mut() = Some(queue.spawn_with_hint(DROP, async {}));
                yield_maybe().await;
                let drained = dropped.borrow().as_ref().unwrap().is_finished();
                after_yield.set(Some(drained));
                pending::<()>().await
            }
        }));
        *me.borrow_mut() = Some(handle);
        let finished = run_until(&executor, || me.borrow().as_ref().unwrap().is_finished());
        if let Some(drained) = after_yield.get() {
            // The scenario itself: `yield_maybe` found the injector to drain.
            assert!(
                drained,
                "test setup: yield_maybe did not drain the injector"
            );
        }
        assert!(
            finished,
            "the task aborted itself in its first poll but was never cancelled (the abort was lost)"
        );
        let handle = me.borrow_mut().take().unwrap();
        assert!(
            futures_lite::future::block_on(handle)
                .unwrap_err()
                .is_cancelled()
        );
        assert_eq!((probe.polls(), probe.drops()), (1, 1));
        let dropped = dropped.borrow_mut().take().unwrap();
        assert!(
            futures_lite::future::block_on(dropped)
                .unwrap_err()
                .is_cancelled()
        );
        let stats = executor.queue_stats(0).unwrap();
        assert_eq!(
            (stats.spawned, stats.cancelled, stats.completed),
            (2, 2, 0),
            "{stats:?}"
        );
        assert_eq!(executor.stats().live_tasks, 0);
    });
}

// ----- a remote wake racing the executor's drop -----------------------------

/// Parked `Send` tasks are woken from another thread, over and over, while
/// their executor is dropped. A wake that marks a task scheduled before the
/// shutdown's own wake and hands it over after the shutdown's last drain
/// must not strand the task: every future is dropped exactly once and every
/// handle resolves.
#[test]
fn remote_wakes_racing_the_executors_drop_strand_no_task() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const ROUNDS: usize = 1_000;
    const TASKS: usize = 32;
    for round in 0..ROUNDS {
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let spawner = executor.spawner(0).unwrap();
        let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
        let drops = Arc::new(AtomicUsize::new(0));
        let probe = Probe::default();
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let (wakers, drops) = (wakers.clone(), drops.clone());
                struct CountDrop(Arc<AtomicUsize>);
                impl Drop for CountDrop {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let guard = CountDrop(drops);
                spawner.spawn(probe.wrap(std::future::poll_fn(move |cx| {
                    let _keep = &guard;
                    wakers.lock().unwrap().push(cx.waker().clone());
                    Poll::<()>::Pending
                })))
            })
            .collect();
        assert!(run_until(&executor, || probe.polls() >= TASKS));
        let stop = Arc::new(AtomicBool::new(false));
        let batches = Arc::new(AtomicUsize::new(0));
        let waker_thread = {
            let (wakers, stop, batches) = (wakers.clone(), stop.clone(), batches.clone());
            std::thread::spawn(move || {
                let batch: Vec<Waker> = wakers.lock().unwrap().clone();
                batches.fetch_add(1, Ordering::SeqCst);
                // The first wake of each parked task schedules it; later
                // ones find it scheduled and do nothing, so the race is in
                // this first pass.
                for waker in &batch {
                    waker.wake_by_ref();
                }
                while !stop.load(Ordering::SeqCst) {
                    for waker in &batch {
                        waker.wake_by_ref();
                    }
                }
            })
        };
        // Drop the executor while the waker thread makes its first pass.
        while batches.load(Ordering::SeqCst) == 0 {
            std::hint::spin_loop();
        }
        drop(executor);
        stop.store(true, Ordering::SeqCst);
        waker_thread.join().unwrap();
        wakers.lock().unwrap().clear();
        assert_eq!(drops.load(Ordering::SeqCst), TASKS, "round {round}");
        let (done, results) = mpsc::channel();
        std::thread::spawn(move || {
            let results: Vec<_> = handles
                .into_iter()
                .map(futures_lite::future::block_on)
                .collect();
            let _ = done.send(results);
        });
        let results = results
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: a handle never resolved"));
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(JoinError::Cancelled)))
        );
    }
}
