//! Operating an executor: the stall watchdog (reports while a poll is
//! still running, naming the spawn site), graceful close (`close`, `drain`,
//! `closed`) and `shutdown` with a deadline, under tokio, smol and the
//! executor's own `block_on`, and on a pool's workers.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clockworker::{
    BuildError, Executor, ExecutorBuilder, GroupId, Handle, JoinHandle, Pool, Stall, StallPhase,
    yield_now,
};
use common::{Probe, spin};

/// The hosts every test here runs under.
#[derive(Clone, Copy, Debug)]
enum Host {
    BlockOn,
    Tokio,
    Smol,
}

const HOSTS: [Host; 3] = [Host::BlockOn, Host::Tokio, Host::Smol];

/// Runs `executor` until `future` completes, under `host`.
fn run<K, T>(host: Host, executor: &Executor<K>, future: impl Future<Output = T>) -> T
where
    K: Copy + Eq + std::hash::Hash + std::fmt::Debug + 'static,
{
    match host {
        Host::BlockOn => executor.block_on(future),
        Host::Tokio => {
            let runtime = common::tokio_runtime();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, executor.run_until(future))
        }
        Host::Smol => smol::block_on(executor.run_until(future)),
    }
}

/// Polls `future` to completion under `host` (a future that drives the
/// executor itself: `drain`, `shutdown`).
fn drive<T>(host: Host, future: impl Future<Output = T>) -> T {
    match host {
        Host::BlockOn => futures_lite::future::block_on(future),
        Host::Tokio => {
            let runtime = common::tokio_runtime();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, future)
        }
        Host::Smol => smol::block_on(future),
    }
}

/// Stall reports, with whether the stalled poll had returned when each
/// was made.
#[derive(Clone, Default)]
struct Reports {
    seen: Arc<Mutex<Vec<(Stall, bool)>>>,
}

impl Reports {
    fn handler(&self, returned: Arc<AtomicBool>) -> impl Fn(&Stall) + Send + Sync + 'static {
        let seen = self.seen.clone();
        move |stall| {
            let returned = returned.load(Ordering::SeqCst);
            seen.lock().unwrap().push((stall.clone(), returned));
        }
    }

    fn take(&self) -> Vec<(Stall, bool)> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

/// Waits (up to 5 s) until this process has `count` watchdog threads; a
/// new thread names itself once it runs, and an ended one leaves
/// `/proc` just after its `join` returns. Returns the last count seen.
fn await_watchdogs(count: usize) -> usize {
    let start = Instant::now();
    loop {
        let seen = watchdog_threads();
        if seen == count || start.elapsed() > Duration::from_secs(5) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The threads of this process named as a stall watchdog.
fn watchdog_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        // The kernel keeps the first 15 bytes of a thread's name.
        .filter(|name| name.trim_end() == "clockworker-wat")
        .count()
}

// ----- the stall watchdog ---------------------------------------------------------

/// One task that spins 50 ms in one poll, under `host`, with a 10 ms
/// threshold: reported while it runs (before the poll sets `returned`),
/// naming this file and the spawn line, and again when it ends.
fn stall_is_reported_while_running(host: Host) {
    let reports = Reports::default();
    let returned = Arc::new(AtomicBool::new(false));
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_stall_threshold(Duration::from_millis(10))
        .on_stall(reports.handler(returned.clone()))
        .build()
        .unwrap();
    let bg = executor.queue("bg").unwrap();
    let flag = returned.clone();
    let line = line!() + 1;
    let task = bg.spawn(async move {
        spin(Duration::from_millis(50));
        flag.store(true, Ordering::SeqCst);
    });
    run(host, &executor, task).unwrap();

    let reports = reports.take();
    let running: Vec<_> = reports
        .iter()
        .filter(|(stall, _)| stall.phase == StallPhase::Running)
        .collect();
    assert_eq!(
        running.len(),
        1,
        "{host:?}: one report while running: {reports:?}"
    );
    let (stall, returned_then) = running[0];
    assert!(
        !returned_then,
        "{host:?}: reported only after the poll returned"
    );
    assert_eq!(stall.spawn_site.file(), file!());
    assert_eq!(stall.spawn_site.line(), line);
    assert_eq!(stall.queue, "\"bg\"");
    assert_eq!(stall.queue_index, 1);
    assert_eq!(stall.group, None);
    assert!(
        stall.elapsed >= Duration::from_millis(10),
        "{:?}",
        stall.elapsed
    );
    assert!(
        stall.elapsed < Duration::from_millis(50),
        "{:?}",
        stall.elapsed
    );
    assert!(stall.to_string().contains("still running"), "{stall}");

    let ended: Vec<_> = reports
        .iter()
        .filter(|(stall, _)| stall.phase == StallPhase::Ended)
        .collect();
    assert_eq!(ended.len(), 1, "{host:?}: {reports:?}");
    let (end, returned_then) = ended[0];
    assert!(returned_then);
    assert_eq!(end.task, stall.task);
    assert_eq!(end.spawn_site, stall.spawn_site);
    assert!(
        end.elapsed >= Duration::from_millis(50),
        "{:?}",
        end.elapsed
    );

    let stats = executor.queue_stats("bg").unwrap();
    assert_eq!(stats.stalls, 1);
    assert!(stats.longest_stall >= Duration::from_millis(50));
    assert_eq!(executor.queue_stats("fg").unwrap().stalls, 0);
    assert_eq!(executor.stats().stall_handler_panics, 0);
}

#[test]
fn a_stall_is_reported_while_running_under_block_on() {
    let _serial = common::serial();
    stall_is_reported_while_running(Host::BlockOn);
}

#[test]
fn a_stall_is_reported_while_running_under_tokio() {
    let _serial = common::serial();
    stall_is_reported_while_running(Host::Tokio);
}

#[test]
fn a_stall_is_reported_while_running_under_smol() {
    let _serial = common::serial();
    stall_is_reported_while_running(Host::Smol);
}

#[test]
fn a_stall_names_the_group_and_the_task() {
    let _serial = common::serial();
    let reports = Reports::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("tenants", 1, clockworker::sched::WeightedGroups::new())
        .with_stall_threshold(Duration::from_millis(5))
        .on_stall(reports.handler(Arc::default()))
        .build()
        .unwrap();
    let tenant = executor.queue("tenants").unwrap().group(7);
    let task = tenant.spawn(async { spin(Duration::from_millis(20)) });
    let id = task.id();
    executor.block_on(task).unwrap();
    let reports = reports.take();
    assert!(!reports.is_empty());
    for (stall, _) in &reports {
        assert_eq!(stall.group, Some(GroupId::new(7)));
        assert_eq!(stall.task, id);
    }
}

#[test]
fn short_polls_are_never_reported() {
    let _serial = common::serial();
    let reports = Reports::default();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        // Far above any poll here, even on a loaded machine.
        .with_stall_threshold(Duration::from_millis(500))
        .on_stall(reports.handler(Arc::default()))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            queue.spawn(async {
                for _ in 0..100 {
                    yield_now().await;
                }
            })
        })
        .collect();
    executor.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(reports.take().is_empty());
    assert_eq!(executor.queue_stats(0).unwrap().stalls, 0);
    assert_eq!(executor.queue_stats(0).unwrap().polls, 100 * 101);
}

#[test]
fn a_panicking_stall_handler_is_caught_and_counted() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_stall_threshold(Duration::from_millis(5))
        .on_stall(|_| panic!("handler bug"))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let out = executor.block_on(queue.spawn(async {
        spin(Duration::from_millis(40));
        7
    }));
    assert_eq!(out.unwrap(), 7);
    // Once while running, once when it ended. The watchdog's own call may
    // still be unwinding (printing its panic) when the task is done.
    let start = Instant::now();
    while executor.stats().stall_handler_panics < 2 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(executor.stats().stall_handler_panics, 2);
    // The executor goes on working.
    assert_eq!(executor.block_on(queue.spawn(async { 8 })).unwrap(), 8);
}

#[test]
fn a_zero_stall_threshold_is_a_build_error() {
    let _serial = common::serial();
    let error = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_stall_threshold(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildError::StallWatchdog(_)), "{error:?}");
    assert!(error.to_string().contains("zero"), "{error}");
    let error = Pool::builder()
        .workers(1)
        .with_queue(0, 1)
        .with_stall_threshold(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildError::StallWatchdog(_)), "{error:?}");
}

/// The voluntary context switches (sleeps) of this process's watchdog
/// threads so far.
fn watchdog_sleeps() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if name.trim_end() != "clockworker-wat" {
                return None;
            }
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            let line = status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

#[test]
#[cfg(target_os = "linux")]
fn the_watchdog_sleeps_while_the_executor_is_idle() {
    let _serial = common::serial();
    let before = watchdog_threads();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_stall_threshold(Duration::from_millis(1))
        .build()
        .unwrap();
    assert_eq!(await_watchdogs(before + 1), before + 1);
    let queue = executor.queue(0).unwrap();
    // Busy for a moment, so that the watchdog looks, then idle for 300 ms
    // (parked in `block_on`, waiting for a timer).
    executor.block_on(queue.spawn(yield_now())).unwrap();
    let start = watchdog_sleeps();
    executor.block_on(clockworker::time::sleep(Duration::from_millis(300)));
    let slept = watchdog_sleeps() - start;
    // Looking every millisecond would be about 300 sleeps; once the
    // executor is idle it sleeps until the run loop starts again.
    assert!(
        slept < 30,
        "the watchdog woke {slept} times in 300 ms of idleness"
    );
}

#[test]
fn a_huge_stall_threshold_never_reports() {
    let _serial = common::serial();
    let reports = Reports::default();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_stall_threshold(Duration::MAX)
        .on_stall(reports.handler(Arc::default()))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    executor
        .block_on(queue.spawn(async { spin(Duration::from_millis(20)) }))
        .unwrap();
    assert!(reports.take().is_empty());
    assert_eq!(executor.queue_stats(0).unwrap().stalls, 0);
}

#[test]
fn the_watchdog_thread_ends_with_the_executor() {
    let _serial = common::serial();
    let before = watchdog_threads();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_stall_threshold(Duration::from_millis(1))
        .build()
        .unwrap();
    if cfg!(target_os = "linux") {
        assert_eq!(await_watchdogs(before + 1), before + 1);
    }
    let handle = executor.handle();
    executor
        .block_on(executor.queue(0).unwrap().spawn(yield_now()))
        .unwrap();
    drop(executor);
    // A handle that outlives the executor does not keep the thread.
    assert_eq!(await_watchdogs(before), before);
    assert!(handle.is_closed());
}

#[test]
fn without_a_threshold_there_is_no_watchdog() {
    let _serial = common::serial();
    let before = watchdog_threads();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    executor
        .block_on(queue.spawn(async { spin(Duration::from_millis(5)) }))
        .unwrap();
    assert_eq!(watchdog_threads(), before);
    assert_eq!(executor.queue_stats(0).unwrap().stalls, 0);
}

#[test]
fn a_stall_on_a_pool_worker_names_the_worker_thread() {
    let _serial = common::serial();
    let reports = Reports::default();
    let returned = Arc::new(AtomicBool::new(false));
    let pool = Pool::builder()
        .workers(2)
        .with_queue("bg", 1)
        .with_stall_threshold(Duration::from_millis(10))
        .on_stall(reports.handler(returned.clone()))
        .build()
        .unwrap();
    let flag = returned.clone();
    let line = line!() + 1;
    let task = pool.spawn_on(1, "bg", move || async move {
        spin(Duration::from_millis(50));
        flag.store(true, Ordering::SeqCst);
    });
    pool.block_on(task).unwrap();
    let reports = reports.take();
    let (stall, returned_then) = reports
        .iter()
        .find(|(stall, _)| stall.phase == StallPhase::Running)
        .expect("a report while running");
    assert!(!returned_then);
    assert_eq!(stall.thread.as_deref(), Some("clockworker-pool-1"));
    assert_eq!(stall.spawn_site.file(), file!());
    // `spawn_on` runs the closure's future inside a small shell task
    // spawned at the same call.
    assert_eq!(stall.spawn_site.line(), line);
    let stats = pool.stats();
    assert_eq!(stats.workers[1].executor.queues[0].stalls, 1);
    assert_eq!(stats.workers[0].executor.queues[0].stalls, 0);
    pool.shutdown_blocking();
}

// ----- close and drain ------------------------------------------------------------

/// A task that spawns two children, each of which spawns two more, down
/// to `depth`, yielding between spawns; counts every task that ran.
async fn tree(handle: Handle<&'static str>, depth: u32, ran: Rc<Cell<u32>>) {
    ran.set(ran.get() + 1);
    if depth == 0 {
        return;
    }
    let queue = handle.queue("bg").unwrap();
    let mut children = Vec::new();
    for _ in 0..2 {
        yield_now().await;
        let child: std::pin::Pin<Box<dyn Future<Output = ()>>> =
            Box::pin(tree(handle.clone(), depth - 1, ran.clone()));
        children.push(queue.spawn(child));
    }
    for child in children {
        child.await.unwrap();
    }
}

/// Close with tasks still to spawn children, then drain: every child
/// runs, every spawn from outside after the close is cancelled.
fn close_then_drain(host: Host) {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let handle = executor.handle();
    let bg = executor.queue("bg").unwrap();
    let ran = Rc::new(Cell::new(0));
    let roots: Vec<JoinHandle<()>> = (0..3)
        .map(|_| bg.spawn(tree(handle.clone(), 4, ran.clone())))
        .collect();
    let spawner = executor.spawner("bg").unwrap();
    // Closed before any tree has started: all their children are spawned
    // while the executor drains.
    executor.close();
    assert_eq!(ran.get(), 0);
    assert!(handle.is_closed());
    assert!(spawner.is_closed());
    let late_local = bg.spawn(async {});
    let late_remote = std::thread::spawn(move || spawner.spawn(async {}))
        .join()
        .unwrap();
    drive(host, executor.drain());
    // 3 trees of depth 4: 3 × 31 tasks, all of them ran.
    assert_eq!(ran.get(), 3 * 31);
    for root in roots {
        assert!(root.is_finished());
    }
    let stats = executor.stats();
    assert_eq!(stats.live_tasks, 0);
    assert_eq!(stats.completed(), 3 * 31);
    assert!(
        futures_lite::future::block_on(late_local)
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        futures_lite::future::block_on(late_remote)
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn close_then_drain_finishes_every_child_under_block_on() {
    let _serial = common::serial();
    close_then_drain(Host::BlockOn);
}

#[test]
fn close_then_drain_finishes_every_child_under_tokio() {
    let _serial = common::serial();
    close_then_drain(Host::Tokio);
}

#[test]
fn close_then_drain_finishes_every_child_under_smol() {
    let _serial = common::serial();
    close_then_drain(Host::Smol);
}

#[test]
fn closing_twice_or_after_drop_does_nothing() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let handle = executor.handle();
    assert!(!handle.is_closed());
    handle.close();
    handle.close();
    executor.close();
    assert!(handle.is_closed());
    drop(executor);
    handle.close();
    assert!(handle.is_closed());
    // Draining a dropped executor is immediate.
    futures_lite::future::block_on(handle.drain());
}

#[test]
fn spawns_from_other_threads_that_arrived_before_the_close_still_run() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let spawner = executor.spawner(0).unwrap();
    let early = std::thread::spawn(move || spawner.spawn(async { 5 }))
        .join()
        .unwrap();
    executor.close();
    futures_lite::future::block_on(executor.drain());
    assert_eq!(futures_lite::future::block_on(early).unwrap(), 5);
}

#[test]
fn closed_ends_a_long_lived_task_and_drain_completes() {
    let _serial = common::serial();
    for host in HOSTS {
        let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
        let handle = executor.handle();
        let queue = executor.queue(0).unwrap();
        let rounds = Rc::new(Cell::new(0));
        let counted = rounds.clone();
        let closed = handle.closed();
        let server = queue.spawn(async move {
            let mut closed = std::pin::pin!(closed);
            loop {
                // A unit of work, then a look at whether to stop.
                counted.set(counted.get() + 1);
                yield_now().await;
                if futures_lite::future::poll_once(closed.as_mut())
                    .await
                    .is_some()
                {
                    return "stopped";
                }
            }
        });
        run(host, &executor, async {
            while rounds.get() < 10 {
                yield_now().await;
            }
        });
        handle.close();
        drive(host, handle.drain());
        assert_eq!(
            futures_lite::future::block_on(server).unwrap(),
            "stopped",
            "{host:?}"
        );
    }
}

#[test]
fn a_periodic_job_stops_at_close_and_its_run_in_progress_finishes() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let runs = Rc::new(Cell::new(0u32));
    let finished = Rc::new(Cell::new(0u32));
    let (r, f) = (runs.clone(), finished.clone());
    let job = executor
        .every(0, Duration::from_millis(2), move |_| {
            let (r, f) = (r.clone(), f.clone());
            async move {
                r.set(r.get() + 1);
                clockworker::time::sleep(Duration::from_millis(5)).await;
                f.set(f.get() + 1);
            }
        })
        .unwrap();
    executor.block_on(async {
        while runs.get() < 3 {
            clockworker::time::sleep(Duration::from_millis(1)).await;
        }
    });
    executor.close();
    futures_lite::future::block_on(executor.drain());
    assert!(job.is_finished());
    assert_eq!(job.next_due(), None);
    // Every run that started also finished.
    assert_eq!(runs.get(), finished.get());
    let after = runs.get();
    futures_lite::future::block_on(executor.drain());
    assert_eq!(runs.get(), after);
}

#[test]
fn drain_from_a_task_waits_for_the_others() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let done = Rc::new(Cell::new(0));
    for i in 0..5 {
        let done = done.clone();
        queue.spawn(async move {
            for _ in 0..i * 3 {
                yield_now().await;
            }
            done.set(done.get() + 1);
        });
    }
    let handle = executor.handle();
    let seen = done.clone();
    let supervisor = queue.spawn(async move {
        handle.drain().await;
        seen.get()
    });
    assert_eq!(executor.block_on(supervisor).unwrap(), 5);
}

#[test]
fn drain_inside_run_until_only_waits() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let done = Rc::new(Cell::new(0));
    let handle = executor.handle();
    let count = done.clone();
    executor.block_on(async move {
        for _ in 0..10 {
            let count = count.clone();
            queue.spawn(async move {
                yield_now().await;
                count.set(count.get() + 1);
            });
        }
        handle.drain().await;
    });
    assert_eq!(done.get(), 10);
}

// ----- shutdown with a deadline ---------------------------------------------------------

/// Shutdown with a deadline: what finishes in time completes, what is still
/// alive at the deadline (parked forever, busy forever, a child spawned
/// while draining that never ends) is cancelled: exactly those, each
/// future dropped once.
fn shutdown_cancels_what_is_left(host: Host) {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let quick = Probe::default();
    let stuck = Probe::default();
    let mut quick_handles = Vec::new();
    for i in 0..6u32 {
        quick_handles.push(fg.spawn(quick.wrap(async move {
            for _ in 0..i {
                yield_now().await;
            }
        })));
    }
    let mut stuck_handles = Vec::new();
    // Parked for good.
    stuck_handles.push(bg.spawn(stuck.wrap(std::future::pending::<()>())));
    // Busy for good.
    stuck_handles.push(bg.spawn(stuck.wrap(async {
        loop {
            yield_now().await;
        }
    })));
    // Spawns a child that never ends, during the drain.
    let child_probe = stuck.clone();
    let child_queue = bg.clone();
    stuck_handles.push(bg.spawn(stuck.wrap(async move {
        yield_now().await;
        let child = child_queue.spawn(child_probe.wrap(std::future::pending::<()>()));
        let _ = child.await;
    })));

    let started = Instant::now();
    let report = drive(host, executor.shutdown(Duration::from_millis(50)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(!report.drained);
    let fg_report = &report.queues[0];
    let bg_report = &report.queues[1];
    assert_eq!(fg_report.key, "fg");
    assert_eq!((fg_report.completed, fg_report.cut_off), (6, 0));
    // Three tasks and the child.
    assert_eq!((bg_report.completed, bg_report.cut_off), (0, 4), "{host:?}");
    assert_eq!(bg_report.cancelled, 4);
    assert_eq!(report.cut_off(), 4);
    assert_eq!(quick.drops(), 6);
    assert_eq!(
        stuck.drops(),
        4,
        "{host:?}: every stuck future dropped once"
    );
    for handle in stuck_handles {
        assert!(
            futures_lite::future::block_on(handle)
                .unwrap_err()
                .is_cancelled()
        );
    }
    for handle in quick_handles {
        futures_lite::future::block_on(handle).unwrap();
    }
    // Shut down for good; a second shutdown reports the same totals.
    assert!(executor.handle().is_closed());
    assert!(
        futures_lite::future::block_on(fg.spawn(async {}))
            .unwrap_err()
            .is_cancelled()
    );
    let again = futures_lite::future::block_on(executor.shutdown(Duration::from_millis(1)));
    assert!(again.drained);
    assert_eq!(again.cut_off(), 0);
    assert_eq!(again.cancelled(), 4);
}

#[test]
fn shutdown_cancels_exactly_what_is_left_under_block_on() {
    let _serial = common::serial();
    shutdown_cancels_what_is_left(Host::BlockOn);
}

#[test]
fn shutdown_cancels_exactly_what_is_left_under_tokio() {
    let _serial = common::serial();
    shutdown_cancels_what_is_left(Host::Tokio);
}

#[test]
fn shutdown_cancels_exactly_what_is_left_under_smol() {
    let _serial = common::serial();
    shutdown_cancels_what_is_left(Host::Smol);
}

#[test]
fn shutdown_that_drains_in_time_cancels_nothing() {
    let _serial = common::serial();
    for host in HOSTS {
        let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
        let queue = executor.queue(0).unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let count = count.clone();
            queue.spawn(async move {
                clockworker::time::sleep(Duration::from_millis(2)).await;
                count.fetch_add(1, Ordering::SeqCst);
            });
        }
        let report = drive(host, executor.shutdown(Duration::from_secs(30)));
        assert!(report.drained, "{host:?}");
        assert_eq!(report.completed(), 20);
        assert_eq!(report.cut_off(), 0);
        assert!(report.elapsed < Duration::from_secs(30));
        assert_eq!(count.load(Ordering::SeqCst), 20);
    }
}

#[test]
fn shutdown_inside_run_until_cancels_at_the_deadline() {
    let _serial = common::serial();
    let runtime = common::tokio_runtime();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let stuck = Probe::default();
    let handle = executor.handle();
    let task = queue.spawn(stuck.wrap(async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }));
    let report = runtime
        .block_on(executor.run_until(async { handle.shutdown(Duration::from_millis(20)).await }));
    assert_eq!(report.cut_off(), 1);
    assert_eq!(stuck.drops(), 1);
    assert!(
        futures_lite::future::block_on(task)
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn shutdown_with_a_zero_timeout_cancels_everything_at_once() {
    let _serial = common::serial();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let probe = Probe::default();
    let handles: Vec<_> = (0..10).map(|_| queue.spawn(probe.wrap(async {}))).collect();
    let report = futures_lite::future::block_on(executor.shutdown(Duration::ZERO));
    // None had run: a zero deadline leaves no time to.
    assert_eq!(report.cut_off() + report.completed(), 10);
    assert_eq!(probe.drops(), 10);
    for handle in handles {
        let _ = futures_lite::future::block_on(handle);
    }
}
