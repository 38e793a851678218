//! Per-queue task schedulers and task groups.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::sched::{
    Attribution, GroupId, LeastAttainedService, Lifo, PollOutcome, ReadyTask, TaskScheduler,
    WeightedGroups,
};
use clockworker::{BuildError, ExecutorBuilder, JoinHandle, spawn, yield_now};
use common::{serial, spin};

type Log = Rc<RefCell<Vec<&'static str>>>;

#[test]
fn least_attained_service_lets_short_tasks_overtake_a_long_one() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("work", 1, LeastAttainedService::new())
        .build()
        .unwrap();
    let work = executor.queue("work").unwrap();
    let finished = Rc::new(RefCell::new(Vec::new()));
    // The long task is spawned first and is runnable the whole time: 100
    // steps of 200 µs.
    let long = work.spawn({
        let finished = finished.clone();
        async move {
            for _ in 0..100 {
                spin(Duration::from_micros(200));
                yield_now().await;
            }
            finished.borrow_mut().push(usize::MAX);
        }
    });
    let shorts: Vec<JoinHandle<()>> = (0..100)
        .map(|i| {
            let finished = finished.clone();
            work.spawn(async move {
                spin(Duration::from_micros(20));
                finished.borrow_mut().push(i);
            })
        })
        .collect();
    executor.block_on(async {
        for short in shorts {
            short.await.unwrap();
        }
        long.await.unwrap();
    });
    let finished = finished.borrow();
    assert_eq!(finished.len(), 101);
    // Every short task finished before the long one, which still finished.
    assert_eq!(finished.last(), Some(&usize::MAX));
    assert_eq!(
        executor.queue_stats("work").unwrap().completed,
        101,
        "{finished:?}"
    );
}

#[test]
fn least_attained_service_does_not_starve_a_long_task() {
    // A steady stream of short tasks keeps arriving; the long task still
    // progresses thanks to the starvation guard.
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            "work",
            1,
            LeastAttainedService::with(Attribution::Task, Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let work = executor.queue("work").unwrap();
    let long_steps = Rc::new(Cell::new(0u32));
    let long = work.spawn({
        let long_steps = long_steps.clone();
        async move {
            for _ in 0..20 {
                spin(Duration::from_micros(100));
                long_steps.set(long_steps.get() + 1);
                yield_now().await;
            }
        }
    });
    let spawner = work.clone();
    executor.block_on(async move {
        // Keep at least 50 fresh short tasks runnable for 100 ms.
        let start = Instant::now();
        let mut shorts = VecDeque::new();
        while start.elapsed() < Duration::from_millis(100) {
            while shorts.len() < 50 {
                shorts.push_back(spawner.spawn(async { spin(Duration::from_micros(10)) }));
            }
            if let Some(short) = shorts.pop_front() {
                short.await.unwrap();
            }
        }
        for short in shorts {
            short.await.unwrap();
        }
    });
    assert!(
        long_steps.get() >= 5,
        "the long task made {} steps in 100 ms",
        long_steps.get()
    );
    executor.block_on(long).unwrap();
}

#[test]
fn least_attained_service_per_group_favours_light_groups() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            "work",
            1,
            LeastAttainedService::with(Attribution::Group, Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let work = executor.queue("work").unwrap();
    let heavy = work.group(1);
    let light = work.group(2);
    let log: Log = Rc::default();
    // A task that keeps the heavy group alive, so that the group's attained
    // service is remembered (a group's state goes with its last task).
    let keep = heavy.spawn(std::future::pending::<()>());
    // The heavy group has used CPU time already when the light group's
    // task arrives.
    let first = heavy.spawn({
        let log = log.clone();
        async move {
            spin(Duration::from_millis(2));
            log.borrow_mut().push("heavy 1");
        }
    });
    executor.block_on(first).unwrap();
    let second = heavy.spawn({
        let log = log.clone();
        async move { log.borrow_mut().push("heavy 2") }
    });
    let third = light.spawn({
        let log = log.clone();
        async move { log.borrow_mut().push("light") }
    });
    executor.block_on(async {
        second.await.unwrap();
        third.await.unwrap();
    });
    keep.abort();
    assert_eq!(*log.borrow(), ["heavy 1", "light", "heavy 2"]);
}

/// CPU time each group's tasks spent spinning, measured by the tasks.
fn group_shares(weight_b: u32) -> (Duration, Duration) {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("tenants", 1, WeightedGroups::new())
        .build()
        .unwrap();
    let tenants = executor.queue("tenants").unwrap();
    let a = tenants.group(1);
    let b = tenants.group(2).with_weight(weight_b).unwrap();
    let used_a = Rc::new(Cell::new(Duration::ZERO));
    let used_b = Rc::new(Cell::new(Duration::ZERO));
    let burn = |used: Rc<Cell<Duration>>| async move {
        loop {
            let start = Instant::now();
            spin(Duration::from_micros(20));
            used.set(used.get() + start.elapsed());
            yield_now().await;
        }
    };
    let mut handles = Vec::new();
    for _ in 0..100 {
        handles.push(a.spawn(burn(used_a.clone())));
    }
    handles.push(b.spawn(burn(used_b.clone())));
    let runtime = common::tokio_runtime();
    runtime.block_on(
        executor.run_until(async { tokio::time::sleep(Duration::from_millis(500)).await }),
    );
    let stats = executor.queue_stats("tenants").unwrap();
    assert_eq!(stats.groups.len(), 2);
    assert_eq!(stats.groups[0].live_tasks, 100);
    assert_eq!(stats.groups[1].live_tasks, 1);
    assert_eq!(stats.groups[1].weight, weight_b);
    (used_a.get(), used_b.get())
}

#[test]
fn weighted_groups_share_by_group_not_by_task_count() {
    let _serial = serial();
    let (a, b) = group_shares(1);
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    eprintln!("groups 1:1, 100 tasks vs 1: B/A = {ratio:.3}");
    assert!((0.9..1.1).contains(&ratio), "{a:?} vs {b:?}");
}

#[test]
fn weighted_groups_follow_group_weights() {
    let _serial = serial();
    let (a, b) = group_shares(2);
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    eprintln!("groups 1:2, 100 tasks vs 1: B/A = {ratio:.3}");
    assert!((1.8..2.2).contains(&ratio), "{a:?} vs {b:?}");
}

#[test]
fn children_stay_in_their_parents_group_and_groups_are_freed() {
    let executor = ExecutorBuilder::new()
        .with_queue("work", 1)
        .with_queue("other", 1)
        .build()
        .unwrap();
    let work = executor.queue("work").unwrap();
    let other = executor.queue("other").unwrap();
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let stats_of = executor.clone();
    let parent = work.group(7).with_weight(3).unwrap().spawn(async move {
        // Children through `spawn!` and through the queue handle both join
        // group 7; a task spawned onto another queue does not.
        let by_macro = spawn!(async { gate.await.unwrap() });
        let by_handle = stats_of
            .queue("work")
            .unwrap()
            .spawn(async { yield_now().await });
        let elsewhere = other.spawn(async {});
        let stats = stats_of.queue_stats("work").unwrap();
        let group = &stats.groups[0];
        let snapshot = (stats.groups.len(), group.id, group.weight, group.live_tasks);
        assert!(stats_of.queue_stats("other").unwrap().groups.is_empty());
        by_handle.await.unwrap();
        elsewhere.await.unwrap();
        (snapshot, by_macro)
    });
    let (snapshot, by_macro) = executor.block_on(parent).unwrap();
    assert_eq!(snapshot, (1, GroupId::new(7), 3, 3));
    // The child that waits on the gate keeps the group alive.
    let stats = executor.queue_stats("work").unwrap();
    assert_eq!(stats.groups.len(), 1);
    assert_eq!(stats.groups[0].live_tasks, 1);
    assert_eq!(stats.groups[0].spawned, 3);
    assert_eq!(stats.groups[0].finished, 2);
    release.send(()).unwrap();
    executor.block_on(by_macro).unwrap();
    // The last task ended: the group's state is gone.
    assert!(executor.queue_stats("work").unwrap().groups.is_empty());
}

#[test]
fn group_state_is_released_after_many_short_lived_groups() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("tenants", 1, WeightedGroups::new())
        .build()
        .unwrap();
    let tenants = executor.queue("tenants").unwrap();
    executor.block_on(async {
        for id in 0..1_000u64 {
            let group = tenants.group(id);
            let a = group.spawn(yield_now());
            let b = group.spawn(async {});
            a.await.unwrap();
            b.await.unwrap();
        }
    });
    let stats = executor.queue_stats("tenants").unwrap();
    assert_eq!(stats.groups.len(), 0);
    assert_eq!(stats.completed, 2_000);
}

#[test]
fn group_stats_count_cpu_time_and_tasks() {
    let executor = ExecutorBuilder::new()
        .with_queue("work", 1)
        .build()
        .unwrap();
    let work = executor.queue("work").unwrap();
    let busy = work.group(1);
    let idle = work.group(2);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let keep_busy_alive = busy.spawn(async move { rx.await.unwrap() });
    let keep_idle_alive = idle.spawn(std::future::pending::<()>());
    let spinner = busy.spawn(async {
        for _ in 0..10 {
            spin(Duration::from_micros(500));
            yield_now().await;
        }
    });
    executor.block_on(spinner).unwrap();
    let stats = executor.queue_stats("work").unwrap();
    let [busy_stats, idle_stats] = &stats.groups[..] else {
        panic!("{:?}", stats.groups)
    };
    assert!(
        busy_stats.busy >= Duration::from_millis(5),
        "{busy_stats:?}"
    );
    assert!(idle_stats.busy < Duration::from_millis(1), "{idle_stats:?}");
    assert_eq!((busy_stats.spawned, busy_stats.finished), (2, 1));
    assert_eq!((idle_stats.live_tasks, idle_stats.finished), (1, 0));
    tx.send(()).unwrap();
    executor.block_on(keep_busy_alive).unwrap();
    keep_idle_alive.abort();
    executor.block_on(keep_idle_alive).unwrap_err();
    assert!(executor.queue_stats("work").unwrap().groups.is_empty());
}

#[test]
fn group_weights_are_checked() {
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let zero = queue.group(3).with_weight(0).unwrap_err();
    assert_eq!(
        zero,
        BuildError::ZeroWeight {
            key: "\"q\" group 3".into()
        }
    );
    assert!(matches!(
        queue.group(3).with_weight(u32::MAX),
        Err(BuildError::WeightTooLarge { .. })
    ));
    assert_eq!(queue.group(3).with_weight(5).unwrap().weight(), 5);
}

/// A scheduler that runs tasks in the order of their hints, recording
/// what it was told.
#[derive(Default)]
struct ByHint {
    ready: Vec<ReadyTask>,
    polled: Rc<RefCell<Vec<(u64, bool)>>>,
}

impl TaskScheduler for ByHint {
    fn push(&mut self, task: ReadyTask) {
        self.ready.push(task);
        self.ready
            .sort_by_key(|task| std::cmp::Reverse(task.hint()));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop()
    }

    fn len(&self) -> usize {
        self.ready.len()
    }

    fn polled(&mut self, outcome: &PollOutcome) {
        self.polled
            .borrow_mut()
            .push((outcome.hint, outcome.finished));
    }
}

#[test]
fn a_custom_scheduler_decides_the_order_and_hears_each_poll() {
    let polled = Rc::new(RefCell::new(Vec::new()));
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            "custom",
            1,
            ByHint {
                ready: Vec::new(),
                polled: polled.clone(),
            },
        )
        .build()
        .unwrap();
    let queue = executor.queue("custom").unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|hint| {
            let log = log.clone();
            queue.spawn_with_hint(hint, async move {
                log.borrow_mut().push(hint);
                yield_now().await;
                log.borrow_mut().push(hint + 1);
            })
        })
        .collect();
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    // Spawned 30, 10, 20; run by hint, the lowest first, each time.
    assert_eq!(*log.borrow(), [10, 11, 20, 21, 30, 31]);
    assert_eq!(
        *polled.borrow(),
        [
            (10, false),
            (10, true),
            (20, false),
            (20, true),
            (30, false),
            (30, true)
        ]
    );
    assert_eq!(
        executor.queue_stats("custom").unwrap().scheduler,
        std::any::type_name::<ByHint>()
    );
}

/// A broken scheduler that forgets every task it is given.
struct Forgetful;

impl TaskScheduler for Forgetful {
    fn push(&mut self, task: ReadyTask) {
        drop(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        None
    }
    fn len(&self) -> usize {
        0
    }
}

#[test]
fn a_task_dropped_by_a_scheduler_is_cancelled_not_lost() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("lossy", 1, Forgetful)
        .build()
        .unwrap();
    let queue = executor.queue("lossy").unwrap();
    let probe = common::Probe::default();
    let handle = queue.spawn(probe.wrap(async { 1 }));
    assert!(executor.block_on(handle).unwrap_err().is_cancelled());
    assert_eq!((probe.polls(), probe.drops()), (0, 1));
    let stats = executor.stats();
    assert_eq!(stats.live_tasks, 0);
    assert_eq!(stats.queues[0].cancelled, 1);
}

#[test]
fn lifo_runs_the_newest_first_and_the_oldest_within_its_bound() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("stack", 1, Lifo::with_bound(4))
        .build()
        .unwrap();
    let stack = executor.queue("stack").unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let log = log.clone();
            stack.spawn(async move { log.borrow_mut().push(i) })
        })
        .collect();
    executor.block_on(async {
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let log = log.borrow();
    // Newest first...
    assert_eq!(&log[..3], [7, 6, 5]);
    // ...and the oldest on the 4th pick at the latest.
    let oldest = log.iter().position(|&i| i == 0).unwrap();
    assert!(oldest < 4, "{log:?}");
    assert_eq!(log.len(), 8);
}

#[test]
fn fifo_given_explicitly_is_the_default_path() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("q", 1, clockworker::sched::Fifo::new())
        .build()
        .unwrap();
    assert_eq!(executor.queue_stats("q").unwrap().scheduler, "Fifo");
    let queue = executor.queue("q").unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..5)
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
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
}
