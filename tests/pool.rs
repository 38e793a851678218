//! The thread-per-core pool (`clockworker::Pool`), as a user meets it:
//! fairness and no starvation on every worker, spawns from many threads,
//! `spawn_on` and `!Send` futures, stealing, parking, shutdown in all its
//! forms, panics, pinning, build errors, drops, several pools at once and
//! pools used from other executors.
//!
//! Every test counts what happened (tasks run, drops, wake-ups, where each
//! task ran, values); the few timing checks are ratios or quantiles with
//! generous bands, so that a loaded two-core machine does not fail them.
//! Each test body runs under a watchdog ([`isolated`]): a lost task or a
//! hung shutdown fails the test instead of stalling the run.

mod common;

use std::any::Any;
use std::future::pending;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::sched::LeastAttainedService;
use clockworker::{
    BuildError, ExecutorBuilder, Handle, JoinError, JoinHandle, Placement, Pool, PoolReport,
    yield_now,
};
use common::{Probe, serial, spin};

// ----- helpers --------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Q {
    Fg,
    Bg,
}

/// How long a test body may run before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Panic messages of the tests' own panics start with this; the panic hook
/// installed by [`quiet_panics`] keeps them off stderr.
const QUIET: &str = "pool-test:";

/// A pool with `Fg` (weight 8) and `Bg` (weight 1).
fn pool(workers: usize) -> Pool<Q> {
    Pool::builder()
        .workers(workers)
        .with_queue(Q::Fg, 8)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap()
}

/// Runs `test` on a thread of its own and fails if it does not finish
/// within [`LIMIT`] (the hung thread is left behind).
fn isolated(test: impl FnOnce() + Send + 'static) {
    isolated_within(LIMIT, test)
}

/// [`isolated`], with another limit.
fn isolated_within(limit: Duration, test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => thread.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = thread.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {limit:?}: something hangs")
        }
    }
}

/// Waits until `done()` holds, checking every millisecond; fails after
/// `limit`.
#[track_caller]
fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Blocks on `future` on this thread (no pool needed).
fn wait<F: std::future::Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}

/// Keeps the tests' own panics (messages starting with [`QUIET`]) off
/// stderr; any other panic is reported as usual.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if message(info.payload()).is_some_and(|m| m.starts_with(QUIET)) {
                return;
            }
            default(info);
        }));
    });
}

fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// The calling thread's name.
fn thread_name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_string()
}

/// Records, when dropped, its id and the name of the thread it was dropped
/// on.
struct Guard {
    id: usize,
    log: DropLog,
}

type DropLog = Arc<Mutex<Vec<(usize, String)>>>;

impl Drop for Guard {
    fn drop(&mut self) {
        self.log.lock().unwrap().push((self.id, thread_name()));
    }
}

/// Asserts that ids `0..count` were each dropped exactly once; returns the
/// thread each was dropped on.
#[track_caller]
fn dropped_once(log: &DropLog, count: usize) -> Vec<String> {
    let log = log.lock().unwrap();
    let mut threads: Vec<Option<String>> = vec![None; count];
    for (id, thread) in log.iter() {
        assert!(*id < count, "unknown id {id}");
        assert!(
            threads[*id].replace(thread.clone()).is_none(),
            "future {id} dropped twice"
        );
    }
    threads
        .into_iter()
        .enumerate()
        .map(|(id, thread)| thread.unwrap_or_else(|| panic!("future {id} never dropped")))
        .collect()
}

/// Blocks the threads that call [`Gate::wait`] until [`Gate::open`].
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Gate {
    fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Blocks every worker of `pool` (its thread, inside a task's poll) until
/// the gate opens; returns the gate tasks' handles once all of them wait.
fn block_workers(pool: &Pool<Q>, gate: &Arc<Gate>) -> Vec<JoinHandle<()>> {
    let handles: Vec<_> = (0..pool.workers())
        .map(|worker| {
            let gate = gate.clone();
            pool.spawn_on(worker, Q::Fg, move || async move { gate.wait() })
        })
        .collect();
    eventually(Duration::from_secs(10), "every worker blocked", || {
        gate.waiting.load(Ordering::SeqCst) == pool.workers()
    });
    handles
}

/// Spawns no-op probes until one comes back cancelled (the shutdown began
/// refusing spawns); returns the handles of the probes that were accepted.
fn until_refused(pool: &Pool<Q>) -> Vec<JoinHandle<()>> {
    let mut accepted = Vec::new();
    let start = Instant::now();
    loop {
        let probe = pool.spawn(Q::Fg, async {});
        if probe.is_finished() {
            assert!(wait(probe).unwrap_err().is_cancelled());
            return accepted;
        }
        accepted.push(probe);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no shutdown began"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// `pool.stats()` once the workers have had time to go idle.
///
/// A stats request that reaches a worker while it is on its way to sleep
/// is lost, and every later one with it (see
/// [`stats_requests_back_to_back_are_all_answered`]): the tests about
/// other things ask only after a pause, so that they do not trip on it.
fn quiet_stats(pool: &Pool<Q>) -> clockworker::PoolStats<Q> {
    thread::sleep(Duration::from_millis(10));
    pool.stats()
}

/// Burns `chunk` of CPU, counts it, yields; until `stop`.
async fn burn(chunk: Duration, chunks: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        spin(chunk);
        chunks.fetch_add(1, Ordering::Relaxed);
        yield_now().await;
    }
}

/// The CPUs the calling thread may run on.
#[cfg(target_os = "linux")]
fn affinity() -> Vec<usize> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
    (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

/// How many threads of this process have a name starting with `prefix`.
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}

/// Waits until no thread of this process has a name starting with one of
/// `prefixes`. A joined thread can still be listed for a moment: `join`
/// returns when the thread's id is released, a little before the kernel
/// takes its `/proc` entry away.
#[cfg(target_os = "linux")]
#[track_caller]
fn gone(prefixes: &[&str]) {
    eventually(Duration::from_secs(5), "threads left behind", || {
        prefixes.iter().all(|prefix| threads_named(prefix) == 0)
    });
}

/// The scheduler state of thread `tid` of this process (`R` running, `S`
/// sleeping, ...).
#[cfg(target_os = "linux")]
fn thread_state(tid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
}

/// The calling thread's kernel id (0 where there is no `/proc`).
fn tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system, in clock ticks) of thread `tid`.
#[cfg(target_os = "linux")]
fn cpu_ticks(tid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime the 14th, stime the 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

// ----- fairness and starvation -------------------------------------------

/// Both workers saturated with `Fg` (weight 8) and `Bg` (weight 1)
/// CPU-bound tasks: on each worker the two queues' busy time splits about
/// 8:1.
#[test]
fn each_saturated_worker_splits_cpu_8_to_1() {
    let _serial = serial();
    isolated(|| {
        let pool = pool(2);
        let stop = Arc::new(AtomicBool::new(false));
        // chunks[worker][queue]
        let chunks: Vec<Vec<Arc<AtomicU64>>> = (0..2)
            .map(|_| (0..2).map(|_| Arc::default()).collect())
            .collect();
        for (worker, counts) in chunks.iter().enumerate() {
            for (queue, key) in [Q::Fg, Q::Bg].into_iter().enumerate() {
                for _ in 0..4 {
                    let (count, stop) = (counts[queue].clone(), stop.clone());
                    pool.spawn_on(worker, key, move || {
                        burn(Duration::from_micros(50), count, stop)
                    });
                }
            }
        }
        eventually(Duration::from_secs(10), "every queue runs", || {
            chunks
                .iter()
                .flatten()
                .all(|c| c.load(Ordering::Relaxed) > 0)
        });
        thread::sleep(Duration::from_millis(100));
        // 900 ms, in three windows (printed). On a loaded machine a long
        // preemption of a worker's thread in the middle of a poll charges
        // that poll's queue for the whole stall, which can skew a single
        // window either way; the scheduler pays it back in the next ones,
        // so the check is on the whole span.
        let mut snapshots = vec![pool.stats()];
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(300));
            snapshots.push(pool.stats());
        }
        stop.store(true, Ordering::Relaxed);
        let report = pool.shutdown_blocking();
        assert!(report.finished());
        assert_eq!(report.cancelled() + report.panicked(), 0, "{report:?}");
        for worker in 0..2 {
            let busy = |stats: &clockworker::PoolStats<Q>, key: Q| {
                stats.workers[worker].executor.queue(key).unwrap().busy
            };
            for pair in snapshots.windows(2) {
                let fg = (busy(&pair[1], Q::Fg) - busy(&pair[0], Q::Fg)).as_secs_f64();
                let bg = (busy(&pair[1], Q::Bg) - busy(&pair[0], Q::Bg)).as_secs_f64();
                assert!(bg > 0.0, "worker {worker}: Bg got no CPU in a window");
                eprintln!(
                    "worker {worker}: fg {fg:.4}s bg {bg:.4}s ratio {:.2}",
                    fg / bg
                );
            }
            let (first, last) = (&snapshots[0], &snapshots[snapshots.len() - 1]);
            let fg = (busy(last, Q::Fg) - busy(first, Q::Fg)).as_secs_f64();
            let bg = (busy(last, Q::Bg) - busy(first, Q::Bg)).as_secs_f64();
            let ratio = fg / bg;
            eprintln!("worker {worker}: over all windows, ratio {ratio:.2}");
            assert!(
                (5.0..=13.0).contains(&ratio),
                "worker {worker}: Fg:Bg busy time {ratio:.2}, not about 8 ({fg:.4}s vs {bg:.4}s)"
            );
        }
    });
}

/// While `Fg` saturates both workers, `Bg` (weight 1) tasks on every worker
/// still run to completion, and `Fg` keeps running meanwhile.
#[test]
fn a_weight_1_queue_is_not_starved_on_any_worker() {
    let _serial = serial();
    isolated(|| {
        let pool = Arc::new(pool(2));
        let stop = Arc::new(AtomicBool::new(false));
        let fg: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::default()).collect();
        for (worker, count) in fg.iter().enumerate() {
            for _ in 0..8 {
                let (count, stop) = (count.clone(), stop.clone());
                pool.spawn_on(worker, Q::Fg, move || {
                    burn(Duration::from_micros(50), count, stop)
                });
            }
        }
        eventually(Duration::from_secs(10), "Fg runs on both workers", || {
            fg.iter().all(|c| c.load(Ordering::Relaxed) > 0)
        });
        let fg_before: Vec<u64> = fg.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        // Finite Bg work on each worker: 40 chunks of 50µs per task.
        let bg: Vec<_> = (0..2)
            .flat_map(|worker| (0..2).map(move |_| worker))
            .map(|worker| {
                let p = pool.clone();
                pool.spawn_on(worker, Q::Bg, move || async move {
                    let mut ran_on = Vec::new();
                    for _ in 0..40 {
                        spin(Duration::from_micros(50));
                        ran_on.push(p.current_worker());
                        yield_now().await;
                    }
                    ran_on
                })
            })
            .collect();
        for (i, handle) in bg.into_iter().enumerate() {
            let ran_on = pool.block_on(handle).unwrap();
            assert_eq!(ran_on, vec![Some(i / 2); 40], "Bg task {i}");
        }
        for (worker, count) in fg.iter().enumerate() {
            assert!(
                count.load(Ordering::Relaxed) > fg_before[worker],
                "worker {worker}: Fg stopped while Bg ran"
            );
        }
        stop.store(true, Ordering::Relaxed);
        let report = pool.shutdown_blocking();
        // 16 burners and 4 Bg tasks, each a spawn_on shell and its task.
        assert_eq!(report.completed(), 2 * (16 + 4), "{report:?}");
    });
}

// ----- spawning --------------------------------------------------------

/// 100,000 `Send` tasks spawned from 8 threads at once each run exactly
/// once; the stats and the report count them all.
#[test]
fn spawns_from_8_threads_run_each_task_exactly_once() {
    let _serial = serial();
    isolated(|| {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 12_500;
        const TASKS: usize = THREADS * PER_THREAD;
        let pool = Arc::new(pool(2));
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..TASKS).map(|_| AtomicUsize::new(0)).collect());
        let start = Arc::new(Barrier::new(THREADS));
        let spawners: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, runs, start) = (pool.clone(), runs.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let handles: Vec<_> = (t * PER_THREAD..(t + 1) * PER_THREAD)
                        .map(|id| {
                            let runs = runs.clone();
                            let key = if id % 2 == 0 { Q::Fg } else { Q::Bg };
                            pool.spawn(key, async move {
                                runs[id].fetch_add(1, Ordering::Relaxed);
                                id
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for handle in handles {
                        sum += pool.block_on(handle).unwrap();
                    }
                    sum
                })
            })
            .collect();
        let sum: usize = spawners.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sum, TASKS * (TASKS - 1) / 2);
        let twice: Vec<_> = (0..TASKS)
            .filter(|&id| runs[id].load(Ordering::Relaxed) != 1)
            .collect();
        assert!(twice.is_empty(), "tasks not run exactly once: {twice:?}");
        let stats = quiet_stats(&pool);
        let placed: u64 = stats.workers.iter().map(|w| w.placed).sum();
        assert_eq!(placed, TASKS as u64);
        assert_eq!(stats.completed(), TASKS as u64);
        let fg = stats.queue(Q::Fg).unwrap();
        let bg = stats.queue(Q::Bg).unwrap();
        assert_eq!(
            (fg.spawned, bg.spawned),
            (TASKS as u64 / 2, TASKS as u64 / 2)
        );
        assert_eq!(
            (fg.completed, bg.completed),
            (TASKS as u64 / 2, TASKS as u64 / 2)
        );
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), TASKS as u64);
        assert_eq!(report.cancelled() + report.panicked(), 0);
        assert_eq!(
            report
                .workers
                .iter()
                .map(|w| w.completed)
                .collect::<Vec<_>>(),
            stats
                .workers
                .iter()
                .map(|w| w.executor.completed())
                .collect::<Vec<_>>()
        );
    });
}

/// `spawn_on` builds and runs a `!Send` future on the named worker: on its
/// thread, with `current_worker` naming it, for 1- and 2-worker pools.
#[test]
fn spawn_on_runs_a_non_send_future_on_the_named_worker() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Arc::new(
                Pool::builder()
                    .workers(workers)
                    .thread_name("pson")
                    .with_queue(Q::Fg, 8)
                    .with_queue(Q::Bg, 1)
                    .build()
                    .unwrap(),
            );
            assert_eq!(pool.workers(), workers);
            assert_eq!(pool.current_worker(), None);
            let handles: Vec<_> = (0..workers * 10)
                .map(|i| {
                    let p = pool.clone();
                    let key = if i % 2 == 0 { Q::Fg } else { Q::Bg };
                    pool.spawn_on(i % workers, key, move || {
                        let made_on = (thread_name(), thread::current().id());
                        let here = Rc::new(std::cell::Cell::new(0));
                        async move {
                            let mut seen = Vec::new();
                            for _ in 0..3 {
                                here.set(here.get() + 1);
                                seen.push((thread_name(), thread::current().id()));
                                yield_now().await;
                            }
                            (made_on, seen, p.current_worker(), here.get())
                        }
                    })
                })
                .collect();
            for (i, handle) in handles.into_iter().enumerate() {
                let (made_on, seen, worker, count) = pool.block_on(handle).unwrap();
                let name = format!("pson-{}", i % workers);
                assert_eq!(made_on.0, name, "task {i} made off its worker");
                assert!(
                    seen.iter().all(|s| *s == made_on),
                    "task {i} moved: {seen:?}"
                );
                assert_eq!(worker, Some(i % workers));
                assert_eq!(count, 3);
            }
            let report = pool.shutdown_blocking();
            assert_eq!(report.completed(), 2 * workers as u64 * 10);
        }
    });
}

/// `spawn_on` a worker out of range: the handle resolves to `Cancelled`,
/// the maker never runs and is dropped.
#[test]
fn spawn_on_a_worker_out_of_range_is_cancelled() {
    isolated(|| {
        let pool = pool(2);
        let made = Arc::new(AtomicBool::new(false));
        let probe = Probe::default();
        for worker in [2, 3, usize::MAX] {
            let (made, probe) = (made.clone(), probe.clone());
            let handle = pool.spawn_on(worker, Q::Fg, move || {
                made.store(true, Ordering::SeqCst);
                probe.wrap(async { 1 })
            });
            assert!(pool.block_on(handle).unwrap_err().is_cancelled());
        }
        assert!(!made.load(Ordering::SeqCst));
        assert_eq!(probe.polls(), 0);
        // The pool is unharmed.
        assert_eq!(
            pool.block_on(pool.spawn_on(1, Q::Fg, || async { 7 }))
                .unwrap(),
            7
        );
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), 2);
        assert_eq!(report.cancelled(), 0);
    });
}

/// Aborting handles: a parked `spawn_on` future is dropped on its own
/// worker, a parked `spawn` future once; both handles resolve `Cancelled`;
/// the stats count the aborts.
#[test]
fn aborted_handles_drop_their_futures_on_their_workers() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Pool::builder()
                .workers(workers)
                .thread_name("cwabort")
                .with_queue(Q::Fg, 8)
                .with_queue(Q::Bg, 1)
                .build()
                .unwrap();
            let log = DropLog::default();
            let pinned: Vec<_> = (0..workers)
                .map(|worker| {
                    let guard = Guard {
                        id: worker,
                        log: log.clone(),
                    };
                    pool.spawn_on(worker, Q::Bg, move || {
                        let rc = Rc::new(guard);
                        async move {
                            let _rc = rc;
                            pending::<()>().await
                        }
                    })
                })
                .collect();
            let guard = Guard {
                id: workers,
                log: log.clone(),
            };
            let spawned = pool.spawn(Q::Fg, async move {
                let _guard = guard;
                pending::<()>().await
            });
            eventually(Duration::from_secs(10), "the tasks parked", || {
                let stats = quiet_stats(&pool);
                stats
                    .workers
                    .iter()
                    .map(|w| w.executor.live_tasks)
                    .sum::<usize>()
                    == 2 * workers + 1
                    && stats.workers.iter().all(|w| w.executor.runnable() == 0)
            });
            for handle in pinned.iter().chain([&spawned]) {
                handle.abort();
            }
            for handle in pinned.into_iter().chain([spawned]) {
                assert!(pool.block_on(handle).unwrap_err().is_cancelled());
            }
            eventually(Duration::from_secs(10), "every future dropped", || {
                log.lock().unwrap().len() == workers + 1
            });
            let threads = dropped_once(&log, workers + 1);
            for (worker, thread) in threads.iter().enumerate().take(workers) {
                assert_eq!(*thread, format!("cwabort-{worker}"));
            }
            let stats = quiet_stats(&pool);
            // Each spawn_on shell and its task, and the spawned task.
            let cancelled: u64 = stats.workers.iter().map(|w| w.executor.cancelled()).sum();
            assert_eq!(cancelled, 2 * workers as u64 + 1);
            assert_eq!(
                stats
                    .workers
                    .iter()
                    .map(|w| w.executor.live_tasks)
                    .sum::<usize>(),
                0
            );
            pool.shutdown_blocking();
        }
    });
}

/// Unknown keys: `queue` names the pool's queues; `spawn` and `spawn_on`
/// give cancelled handles and drop the future unpolled.
#[test]
fn unknown_keys_are_reported_or_cancelled() {
    isolated(|| {
        let pool = Pool::builder()
            .workers(1)
            .with_queue("io", 2)
            .with_queue("cpu", 1)
            .build()
            .unwrap();
        assert_eq!(pool.keys(), ["io", "cpu"]);
        let error = pool.queue("gpu").unwrap_err();
        assert_eq!(error.key(), "\"gpu\"");
        assert_eq!(
            error.to_string(),
            "no queue with key \"gpu\"; the executor's queues are [\"io\", \"cpu\"]"
        );
        let probe = Probe::default();
        let spawned = pool.spawn("gpu", probe.wrap(async { 1 }));
        assert!(pool.block_on(spawned).unwrap_err().is_cancelled());
        let p = probe.clone();
        let on = pool.spawn_on(0, "gpu", move || p.wrap(async { 1 }));
        assert!(pool.block_on(on).unwrap_err().is_cancelled());
        assert_eq!(probe.polls(), 0);
        assert_eq!(probe.drops(), 1, "the spawned future is dropped");
        let cpu = pool.queue("cpu").unwrap();
        assert_eq!(cpu.key(), "cpu");
        assert_eq!(pool.block_on(cpu.spawn(async { 2 })).unwrap(), 2);
        assert_eq!(pool.block_on(cpu.spawn_on(0, || async { 3 })).unwrap(), 3);
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), 3);
    });
}

/// From inside a worker, `Pool::spawn`, `spawn!` and `Handle::current` all
/// stay on that worker (stealing off); `spawn_on` reaches the other one.
#[test]
fn spawns_from_inside_a_worker_stay_on_it() {
    isolated(|| {
        let pool = Arc::new(pool(2));
        for worker in 0..2 {
            let p = pool.clone();
            let outer = pool.spawn_on(worker, Q::Bg, move || async move {
                let mut handles = Vec::new();
                for i in 0..30 {
                    let q = p.clone();
                    let task = async move { q.current_worker() };
                    handles.push(match i % 3 {
                        0 => p.spawn(Q::Fg, task),
                        1 => clockworker::spawn!(Q::Fg, task),
                        _ => Handle::<Q>::current().queue(Q::Bg).unwrap().spawn(task),
                    });
                }
                let mut ran_on = Vec::new();
                for handle in handles {
                    ran_on.push(handle.await.unwrap());
                }
                let q = p.clone();
                let other = p
                    .spawn_on(1 - worker, Q::Fg, move || async move { q.current_worker() })
                    .await
                    .unwrap();
                (ran_on, other)
            });
            let (ran_on, other) = pool.block_on(outer).unwrap();
            assert_eq!(ran_on, vec![Some(worker); 30]);
            assert_eq!(other, Some(1 - worker));
        }
        assert_eq!(quiet_stats(&pool).stolen(), 0);
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), 2 * (2 + 30 + 2));
    });
}

// ----- stealing ----------------------------------------------------------

/// Where each of a flood's tasks ran.
struct Flood {
    /// `current_worker()` of each stealable task (`usize::MAX`: not yet).
    stealable: Arc<Vec<AtomicUsize>>,
    /// The thread name of each `!Send` task, at every poll.
    pinned: Arc<Mutex<Vec<String>>>,
    /// How many `!Send` tasks there were.
    pinned_tasks: usize,
}

const FLOOD: usize = 1000;

/// How a flood's stealable tasks are spawned, from a task on worker 0.
#[derive(Clone, Copy, Debug)]
enum FloodBy {
    /// Worker 0's own `Spawner` (`Handle::current().spawner(Bg)`).
    Spawner,
    /// `Pool::spawn` called on worker 0.
    PoolSpawn,
    /// `spawn!(Bg, ...)` on worker 0.
    SpawnMacro,
}

/// Lets every worker of a freshly built pool wake once and go idle again
/// (a stats request wakes each), so that the idle ones have offered to
/// steal: see [`stealing_right_after_build`] for why a test needs this.
fn settle(pool: &Pool<Q>) {
    thread::sleep(Duration::from_millis(20));
    pool.stats();
    thread::sleep(Duration::from_millis(20));
}

/// From a task on worker 0: spawns [`FLOOD`] `Send` tasks onto `Bg` (each
/// spins 100µs and records the worker it ran on), then, with `pin_last`,
/// one `!Send` `spawn_on(0)` task onto `Bg` (it runs twice 100µs, recording
/// its thread); waits until all have run.
fn flood_worker_0(pool: &Arc<Pool<Q>>, by: FloodBy, pin_last: bool) -> Flood {
    let pinned_tasks = usize::from(pin_last);
    let flood = Flood {
        stealable: Arc::new((0..FLOOD).map(|_| AtomicUsize::new(usize::MAX)).collect()),
        pinned: Arc::default(),
        pinned_tasks,
    };
    let (p, stealable, pinned) = (pool.clone(), flood.stealable.clone(), flood.pinned.clone());
    let spawner = pool.spawn_on(0, Q::Fg, move || async move {
        let pin = |p: &Pool<Q>| {
            let pinned = pinned.clone();
            p.spawn_on(0, Q::Bg, move || {
                let here = Rc::new(());
                async move {
                    for _ in 0..2 {
                        spin(Duration::from_micros(100));
                        pinned.lock().unwrap().push(thread_name());
                        yield_now().await;
                    }
                    drop(here);
                }
            })
        };
        let mut handles = Vec::new();
        let spawner = Handle::<Q>::current().spawner(Q::Bg).unwrap();
        for i in 0..FLOOD {
            let (q, stealable) = (p.clone(), stealable.clone());
            let task = async move {
                spin(Duration::from_micros(100));
                let worker = q.current_worker().unwrap();
                stealable[i].store(worker, Ordering::SeqCst);
            };
            handles.push(match by {
                FloodBy::Spawner => spawner.spawn(task),
                FloodBy::PoolSpawn => p.spawn(Q::Bg, task),
                FloodBy::SpawnMacro => clockworker::spawn!(Q::Bg, task),
            });
        }
        if pin_last {
            handles.push(pin(&p));
        }
        handles
    });
    let handles = pool.block_on(spawner).unwrap();
    assert_eq!(handles.len(), FLOOD + pinned_tasks);
    for handle in handles {
        pool.block_on(handle).unwrap();
    }
    flood
}

/// `spawn_on(0)` tasks onto the stealing queue `Bg`, 200 of them, while
/// worker 1 is idle (and has offered to steal): none moves.
fn pinned_tasks_stay(pool: &Arc<Pool<Q>>, name: &str) {
    let before = quiet_stats(pool);
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let p = pool.clone();
            pool.spawn_on(0, Q::Bg, move || {
                let made = thread_name();
                let here = Rc::new(());
                async move {
                    let mut seen = vec![made, thread_name()];
                    spin(Duration::from_micros(100));
                    yield_now().await;
                    seen.push(thread_name());
                    drop(here);
                    (seen, p.current_worker())
                }
            })
        })
        .collect();
    let worker_0 = format!("{name}-0");
    for handle in handles {
        let (seen, worker) = pool.block_on(handle).unwrap();
        assert!(
            seen.iter().all(|t| *t == worker_0),
            "a !Send task moved: {seen:?}"
        );
        assert_eq!(worker, Some(0));
    }
    let after = quiet_stats(pool);
    assert_eq!(after.stolen(), before.stolen(), "tasks moved");
    assert_eq!(
        after.workers[1].executor.completed(),
        before.workers[1].executor.completed()
    );
}

/// Checks a flood: every task ran once, `!Send` ones on worker 0, and the
/// stats' stolen/had-stolen counts match where tasks ended up. Returns how
/// many stealable tasks ran on worker 1.
fn check_flood(pool: &Pool<Q>, flood: &Flood, name: &str) -> usize {
    let ran_on: Vec<usize> = flood
        .stealable
        .iter()
        .map(|w| w.load(Ordering::SeqCst))
        .collect();
    assert!(
        ran_on.iter().all(|&w| w < 2),
        "a task did not run: {ran_on:?}"
    );
    let on_1 = ran_on.iter().filter(|&&w| w == 1).count();
    let pinned = flood.pinned.lock().unwrap();
    assert_eq!(pinned.len(), 2 * flood.pinned_tasks);
    let worker_0 = format!("{name}-0");
    assert!(
        pinned.iter().all(|t| *t == worker_0),
        "a !Send task moved: {pinned:?}"
    );
    thread::sleep(Duration::from_millis(20));
    let stats = pool.stats();
    let (w0, w1) = (&stats.workers[0], &stats.workers[1]);
    eprintln!("{stats}on worker 1: {on_1} of {FLOOD}");
    assert_eq!(w1.stolen, w0.had_stolen, "moved to 1 = moved off 0");
    assert_eq!(w0.stolen, w1.had_stolen, "moved to 0 = moved off 1");
    // Every stealable task was spawned on worker 0: the ones that ended on
    // worker 1 are those moved there less those moved back.
    assert_eq!(w1.stolen - w1.had_stolen, on_1 as u64, "{stats}");
    // Worker 1 ran only stolen tasks.
    assert_eq!(w1.executor.completed(), on_1 as u64);
    assert_eq!(w1.placed, 0);
    on_1
}

fn flood_pool(name: &str, stealing: bool) -> Arc<Pool<Q>> {
    let mut builder = Pool::builder()
        .workers(2)
        .thread_name(name)
        .with_queue(Q::Fg, 8)
        .with_queue(Q::Bg, 1);
    if stealing {
        builder = builder.with_stealing(Q::Bg);
    }
    Arc::new(builder.build().unwrap())
}

/// Worker 0 flooded (through its own spawner) while worker 1 is idle:
/// worker 1 steals a real share of the tasks; no `!Send` task moves.
#[test]
fn an_idle_worker_steals_a_share_of_a_flood() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("steal", true);
        settle(&pool);
        let flood = flood_worker_0(&pool, FloodBy::Spawner, false);
        let on_1 = check_flood(&pool, &flood, "steal");
        assert!(
            on_1 >= FLOOD / 10,
            "the idle worker ran only {on_1} of {FLOOD} tasks"
        );
        pinned_tasks_stay(&pool, "steal");
        let report = pool.shutdown_blocking();
        // The flooding task (a shell and its task), the flood, and the
        // pinned tasks (a shell and a task each).
        assert_eq!(report.completed(), (2 + FLOOD + 2 * 200) as u64);
    });
}

/// The same flood right after `build`, without [`settle`]. A worker offers
/// to steal only from its idle hook, which gives up while the pool has not
/// yet set `PoolShared::peers` (done in `Pool::start` once every worker
/// booted); a worker that went idle before that sleeps without an offer
/// until something wakes it. Without help this happens in about one run
/// in three; worker 0's start is slowed here (`on_worker_start`) so that
/// worker 1 always goes idle first.
#[test]
fn stealing_right_after_build() {
    let _serial = serial();
    isolated(|| {
        let pool = Arc::new(
            Pool::builder()
                .workers(2)
                .thread_name("stealnow")
                .with_queue(Q::Fg, 8)
                .with_queue(Q::Bg, 1)
                .with_stealing(Q::Bg)
                .on_worker_start(|index| {
                    if index == 0 {
                        thread::sleep(Duration::from_millis(50));
                    }
                })
                .build()
                .unwrap(),
        );
        let flood = flood_worker_0(&pool, FloodBy::Spawner, false);
        let on_1 = check_flood(&pool, &flood, "stealnow");
        assert!(
            on_1 >= FLOOD / 10,
            "the idle worker ran only {on_1} of {FLOOD} tasks"
        );
        pool.shutdown_blocking();
    });
}

/// One `!Send` task queued behind the flood (at the back of the queue):
/// the flood's tasks can still be stolen.
#[test]
fn an_unstealable_task_at_the_back_does_not_block_stealing() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("stealpin", true);
        settle(&pool);
        let flood = flood_worker_0(&pool, FloodBy::Spawner, true);
        let on_1 = check_flood(&pool, &flood, "stealpin");
        assert!(
            on_1 >= FLOOD / 10,
            "the idle worker ran only {on_1} of {FLOOD} tasks"
        );
        pool.shutdown_blocking();
    });
}

/// A task that already ran (parked, then woken) queued behind a flood on
/// worker 0, as any task woken by IO or a channel would be: the flood's
/// never-run tasks ahead of it can still be stolen. Worker 0 is held in a
/// poll while the flood and the wake arrive, so that the woken task is
/// queued last.
#[test]
fn a_woken_task_at_the_back_does_not_block_stealing() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("stealwkn", true);
        settle(&pool);
        let spawner = pool
            .block_on(pool.spawn_on(0, Q::Fg, || async {
                Handle::<Q>::current().spawner(Q::Bg).unwrap()
            }))
            .unwrap();
        let (wake, woken) = tokio::sync::oneshot::channel::<()>();
        let p = pool.clone();
        let sleeper = spawner.spawn(async move {
            let first = p.current_worker();
            woken.await.unwrap();
            (first, p.current_worker())
        });
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let held = pool.spawn_on(0, Q::Fg, move || async move { g.wait() });
        eventually(Duration::from_secs(10), "worker 0 held", || {
            gate.waiting.load(Ordering::SeqCst) == 1
        });
        let flood: Vec<_> = (0..FLOOD)
            .map(|_| {
                let p = pool.clone();
                spawner.spawn(async move {
                    spin(Duration::from_micros(100));
                    p.current_worker().unwrap()
                })
            })
            .collect();
        wake.send(()).unwrap();
        gate.open();
        pool.block_on(held).unwrap();
        let on_1 = flood
            .into_iter()
            .map(|h| pool.block_on(h).unwrap())
            .filter(|&w| w == 1)
            .count();
        assert_eq!(pool.block_on(sleeper).unwrap(), (Some(0), Some(0)));
        eprintln!("{}on worker 1: {on_1} of {FLOOD}", quiet_stats(&pool));
        assert!(
            on_1 >= FLOOD / 10,
            "the idle worker ran only {on_1} of {FLOOD} tasks"
        );
        pool.shutdown_blocking();
    });
}

/// As above, with the flood spawned by `Pool::spawn` on worker 0: the docs
/// say such tasks may be stolen.
#[test]
fn tasks_from_pool_spawn_on_a_worker_can_be_stolen() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("stealps", true);
        settle(&pool);
        let flood = flood_worker_0(&pool, FloodBy::PoolSpawn, false);
        let on_1 = check_flood(&pool, &flood, "stealps");
        assert!(
            on_1 >= FLOOD / 10,
            "the idle worker ran only {on_1} of {FLOOD} tasks spawned by Pool::spawn"
        );
        pool.shutdown_blocking();
    });
}

/// As above, with the flood spawned by `spawn!` on worker 0: `spawn!`
/// goes through the worker's executor, which takes `!Send` futures too and
/// so builds tasks that never move (as `PoolBuilder::with_stealing` says).
#[test]
fn tasks_from_spawn_macro_on_a_worker_stay_on_it() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("stealsm", true);
        settle(&pool);
        let flood = flood_worker_0(&pool, FloodBy::SpawnMacro, false);
        let on_1 = check_flood(&pool, &flood, "stealsm");
        assert_eq!(on_1, 0, "a task spawned by spawn! moved");
        pool.shutdown_blocking();
    });
}

/// Stealing off (the default): a flood on worker 0 stays there.
#[test]
fn without_stealing_no_task_moves() {
    let _serial = serial();
    isolated(|| {
        let pool = flood_pool("nosteal", false);
        settle(&pool);
        let flood = flood_worker_0(&pool, FloodBy::Spawner, false);
        let on_1 = check_flood(&pool, &flood, "nosteal");
        assert_eq!(on_1, 0);
        pinned_tasks_stay(&pool, "nosteal");
        thread::sleep(Duration::from_millis(20));
        let stats = pool.stats();
        assert_eq!(stats.stolen(), 0);
        assert!(stats.workers.iter().all(|w| w.had_stolen == 0));
        pool.shutdown_blocking();
    });
}

/// Stolen tasks park on channels; worker 0 finishes its own tasks and stops
/// (a draining shutdown); the stolen tasks, woken only then, complete on
/// the thief.
#[cfg(target_os = "linux")]
#[test]
fn a_stolen_task_woken_after_its_first_worker_stopped_completes() {
    let _serial = serial();
    isolated(|| {
        const TASKS: usize = 400;
        let pool = flood_pool("stolenw", true);
        settle(&pool);
        let first: Arc<Vec<AtomicUsize>> =
            Arc::new((0..TASKS).map(|_| AtomicUsize::new(usize::MAX)).collect());
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..TASKS)
            .map(|_| tokio::sync::oneshot::channel::<u32>())
            .unzip();
        let (p, f) = (pool.clone(), first.clone());
        let spawner = pool.spawn_on(0, Q::Fg, move || async move {
            let spawner = Handle::<Q>::current().spawner(Q::Bg).unwrap();
            receivers
                .into_iter()
                .enumerate()
                .map(|(i, rx)| {
                    let (p, f) = (p.clone(), f.clone());
                    spawner.spawn(async move {
                        spin(Duration::from_micros(200));
                        let before = p.current_worker().unwrap();
                        f[i].store(before, Ordering::SeqCst);
                        let value = rx.await.unwrap();
                        (before, p.current_worker().unwrap(), value)
                    })
                })
                .collect::<Vec<_>>()
        });
        let handles = pool.block_on(spawner).unwrap();
        eventually(Duration::from_secs(20), "every task parked", || {
            first.iter().all(|w| w.load(Ordering::SeqCst) != usize::MAX)
        });
        let on: Vec<usize> = first.iter().map(|w| w.load(Ordering::SeqCst)).collect();
        let stolen = on.iter().filter(|&&w| w == 1).count();
        eprintln!("{stolen} of {TASKS} tasks parked on worker 1");
        assert!(stolen > 0, "nothing was stolen");
        let mut senders: Vec<_> = senders.into_iter().map(Some).collect();
        let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
        // Worker 0's own tasks finish first.
        for i in (0..TASKS).filter(|&i| on[i] == 0) {
            senders[i].take().unwrap().send(i as u32).unwrap();
            let handle = handles[i].take().unwrap();
            assert_eq!(pool.block_on(handle).unwrap(), (0, 0, i as u32));
        }
        let p = pool.clone();
        let shutdown = thread::spawn(move || p.shutdown_blocking());
        eventually(Duration::from_secs(20), "worker 0 stopped", || {
            threads_named("stolenw-0") == 0
        });
        let stats = quiet_stats(&pool);
        assert!(stats.workers[0].stopped);
        assert!(!stats.workers[1].stopped, "worker 1 still has parked tasks");
        // Now wake the stolen ones.
        for i in (0..TASKS).filter(|&i| on[i] == 1) {
            senders[i].take().unwrap().send(i as u32).unwrap();
        }
        for i in (0..TASKS).filter(|&i| on[i] == 1) {
            let handle = handles[i].take().unwrap();
            assert_eq!(pool.block_on(handle).unwrap(), (1, 1, i as u32));
        }
        let report = shutdown.join().unwrap();
        assert!(report.finished());
        assert_eq!(report.completed(), (TASKS + 2) as u64, "{report:?}");
        assert_eq!(report.cancelled(), 0);
        assert_eq!(report.workers[1].completed, stolen as u64);
    });
}

// ----- parking and wake-up latency ---------------------------------------

/// An idle pool sleeps: over 500 ms no wake-ups, no parks, and (on Linux)
/// its worker threads use no CPU to speak of.
#[test]
fn idle_workers_park() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Arc::new(pool(workers));
            // Some work first, on every worker.
            let tids: Vec<_> = (0..workers)
                .map(|w| {
                    pool.spawn_on(w, Q::Fg, || async {
                        yield_now().await;
                        tid()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| pool.block_on(h).unwrap())
                .collect();
            let handles: Vec<_> = (0..100)
                .map(|i| pool.spawn(Q::Bg, async move { i }))
                .collect();
            for handle in handles {
                pool.block_on(handle).unwrap();
            }
            thread::sleep(Duration::from_millis(50));
            let before = pool.stats();
            #[cfg(target_os = "linux")]
            let cpu_before: Vec<u64> = tids.iter().map(|&t| cpu_ticks(t)).collect();
            thread::sleep(Duration::from_millis(500));
            let after = pool.stats();
            let wakeups = after.wakeups() - before.wakeups();
            let parks = after.parks() - before.parks();
            assert!(
                wakeups <= 2,
                "{workers} workers: {wakeups} wake-ups while idle"
            );
            assert!(parks <= 2, "{workers} workers: {parks} parks while idle");
            assert_eq!(after.completed(), before.completed());
            #[cfg(target_os = "linux")]
            for (w, &t) in tids.iter().enumerate() {
                let used = cpu_ticks(t) - cpu_before[w];
                // Clock ticks are 10 ms: a spinning worker would use ~50.
                assert!(used <= 5, "worker {w} used {used} ticks of CPU while idle");
            }
            #[cfg(not(target_os = "linux"))]
            let _ = tids;
            pool.shutdown_blocking();
        }
    });
}

/// Workers that spin before parking (`spin_before_park`) pass messages
/// back and forth (every one arrives, in order), and still sleep once idle:
/// no wake-ups, no parks and no CPU to speak of over 500 ms.
#[test]
fn spinning_workers_pass_messages_and_still_sleep_when_idle() {
    let _serial = serial();
    isolated(|| {
        let pool = Pool::builder()
            .workers(2)
            .with_queue(Q::Fg, 1)
            .spin_before_park(Duration::from_micros(50))
            .build()
            .unwrap();
        const ROUND_TRIPS: u32 = 500;
        let (to_echo, mut echo_in) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let (to_caller, mut caller_in) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let echo = pool.spawn_on(1, Q::Fg, move || async move {
            let tid = tid();
            while let Some(n) = echo_in.recv().await {
                to_caller.send(n + 1).unwrap();
            }
            tid
        });
        let caller = pool.spawn_on(0, Q::Fg, move || async move {
            let tid = tid();
            for n in 0..ROUND_TRIPS {
                to_echo.send(n * 2).unwrap();
                assert_eq!(caller_in.recv().await, Some(n * 2 + 1));
            }
            tid
        });
        let tids = [pool.block_on(caller).unwrap(), pool.block_on(echo).unwrap()];
        thread::sleep(Duration::from_millis(50));
        let before = pool.stats();
        #[cfg(target_os = "linux")]
        let cpu_before: Vec<u64> = tids.iter().map(|&t| cpu_ticks(t)).collect();
        thread::sleep(Duration::from_millis(500));
        let after = pool.stats();
        assert!(after.wakeups() - before.wakeups() <= 2);
        assert!(after.parks() - before.parks() <= 2);
        #[cfg(target_os = "linux")]
        for (w, &t) in tids.iter().enumerate() {
            let used = cpu_ticks(t) - cpu_before[w];
            assert!(used <= 5, "worker {w} used {used} ticks of CPU while idle");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = tids;
        assert_eq!(pool.shutdown_blocking().completed(), 4);
    });
}

/// Spawns into a parked pool start promptly: of 200 spawns a few ms apart,
/// at least 90% start within 5 ms, and none is lost.
#[test]
fn a_spawn_into_a_parked_pool_starts_promptly() {
    let _serial = serial();
    isolated(|| {
        const SPAWNS: usize = 200;
        let pool = pool(2);
        thread::sleep(Duration::from_millis(20));
        let before = pool.stats();
        let mut handles = Vec::with_capacity(SPAWNS);
        for i in 0..SPAWNS {
            let spawned = Instant::now();
            let key = if i % 2 == 0 { Q::Fg } else { Q::Bg };
            handles.push(pool.spawn(key, async move { spawned.elapsed() }));
            thread::sleep(Duration::from_millis(2));
        }
        let mut latencies: Vec<Duration> = handles
            .into_iter()
            .map(|h| pool.block_on(h).unwrap())
            .collect();
        let prompt = latencies
            .iter()
            .filter(|&&l| l <= Duration::from_millis(5))
            .count();
        let p50 = common::quantile(&mut latencies, 0.5);
        let p99 = common::quantile(&mut latencies, 0.99);
        eprintln!("{prompt} of {SPAWNS} within 5 ms; p50 {p50:?}, p99 {p99:?}");
        assert!(
            prompt * 10 >= SPAWNS * 9,
            "only {prompt} of {SPAWNS} spawns started within 5 ms (p50 {p50:?}, p99 {p99:?})"
        );
        let after = quiet_stats(&pool);
        let wakeups = after.wakeups() - before.wakeups();
        // At most one ring per spawn, and the parked pool had to be woken.
        assert!((1..=SPAWNS as u64).contains(&wakeups), "{wakeups} wake-ups");
        assert_eq!(after.completed() - before.completed(), SPAWNS as u64);
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), SPAWNS as u64);
    });
}

// ----- shutdown ----------------------------------------------------------

/// A graceful shutdown runs every queued task (10,000, queued behind
/// blocked workers when it begins) and reports them; spawns after it
/// began are cancelled.
#[test]
fn graceful_shutdown_drains_every_queued_task() {
    isolated(|| {
        const TASKS: usize = 10_000;
        for workers in [1, 2] {
            let pool = Arc::new(pool(workers));
            let gate = Arc::new(Gate::default());
            let gates = block_workers(&pool, &gate);
            let ran = Arc::new(AtomicUsize::new(0));
            let log = DropLog::default();
            let handles: Vec<_> = (0..TASKS)
                .map(|id| {
                    let (ran, guard) = (
                        ran.clone(),
                        Guard {
                            id,
                            log: log.clone(),
                        },
                    );
                    pool.spawn(if id % 3 == 0 { Q::Bg } else { Q::Fg }, async move {
                        let _guard = guard;
                        yield_now().await;
                        ran.fetch_add(1, Ordering::SeqCst);
                        id
                    })
                })
                .collect();
            assert_eq!(ran.load(Ordering::SeqCst), 0, "the workers are blocked");
            let p = pool.clone();
            let shutdown = thread::spawn(move || p.shutdown_blocking());
            let probes = until_refused(&pool);
            gate.open();
            let report = shutdown.join().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), TASKS);
            dropped_once(&log, TASKS);
            for (id, handle) in handles.into_iter().enumerate() {
                assert_eq!(wait(handle).unwrap(), id);
            }
            for handle in gates {
                wait(handle).unwrap();
            }
            let accepted = probes.len();
            for probe in probes {
                wait(probe).unwrap();
            }
            assert!(report.finished());
            // The tasks, the probes accepted before the shutdown, and the
            // gates (a shell and its task each).
            assert_eq!(
                report.completed(),
                (TASKS + accepted + 2 * workers) as u64,
                "{workers} workers: {report:?}"
            );
            assert_eq!(report.cancelled() + report.panicked(), 0);
            assert_eq!(pool.shutdown_blocking(), report, "a second shutdown");
        }
    });
}

/// While a graceful shutdown drains, tasks may still spawn children onto
/// their own worker (`spawn!`, a queue handle), and those run too;
/// `Pool::spawn`, even from a worker, is cancelled.
#[test]
fn children_spawned_while_draining_run() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Arc::new(pool(workers));
            let gate = Arc::new(Gate::default());
            let gates = block_workers(&pool, &gate);
            let children = Arc::new(AtomicUsize::new(0));
            let parents: Vec<_> = (0..100)
                .map(|i| {
                    let (p, children) = (pool.clone(), children.clone());
                    pool.spawn(Q::Bg, async move {
                        let c = children.clone();
                        let child = clockworker::spawn!(Q::Fg, async move {
                            yield_now().await;
                            c.fetch_add(1, Ordering::SeqCst);
                            i
                        });
                        let c = children.clone();
                        let grandchild =
                            Handle::<Q>::current()
                                .queue(Q::Bg)
                                .unwrap()
                                .spawn(async move {
                                    c.fetch_add(1, Ordering::SeqCst);
                                });
                        let refused = p.spawn(Q::Fg, async { 0 }).await;
                        let value = child.await.unwrap();
                        grandchild.await.unwrap();
                        (value, refused.map_err(|e| e.is_cancelled()))
                    })
                })
                .collect();
            let p = pool.clone();
            let shutdown = thread::spawn(move || p.shutdown_blocking());
            let probes = until_refused(&pool);
            gate.open();
            let report = shutdown.join().unwrap();
            for (i, handle) in parents.into_iter().enumerate() {
                assert_eq!(wait(handle).unwrap(), (i, Err(true)), "parent {i}");
            }
            for handle in gates {
                wait(handle).unwrap();
            }
            assert_eq!(children.load(Ordering::SeqCst), 200);
            assert!(report.finished());
            assert_eq!(
                report.completed(),
                (100 + 200 + probes.len() + 2 * workers) as u64,
                "{report:?}"
            );
            for probe in probes {
                wait(probe).unwrap();
            }
        }
    });
}

/// `shutdown_now` cancels queued and parked tasks: every handle resolves
/// (cancelled, or done if it ran first), every future is dropped exactly
/// once, `!Send` ones on their own worker.
#[cfg(target_os = "linux")]
#[test]
fn shutdown_now_cancels_and_drops_every_future_once() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Arc::new(pool(workers));
            let log = DropLog::default();
            let mut id = 0;
            let mut next = || {
                id += 1;
                Guard {
                    id: id - 1,
                    log: log.clone(),
                }
            };
            // Parked forever: Send ones by spawn, !Send ones on each worker.
            let mut parked = Vec::new();
            let mut pinned = Vec::new();
            for _ in 0..50 {
                let guard = next();
                parked.push(pool.spawn(Q::Bg, async move {
                    let _guard = guard;
                    pending::<()>().await
                }));
            }
            for worker in 0..workers {
                for _ in 0..20 {
                    let guard = next();
                    let gid = guard.id;
                    pinned.push((
                        gid,
                        worker,
                        pool.spawn_on(worker, Q::Fg, move || {
                            let rc = Rc::new(guard);
                            async move {
                                let _rc = rc;
                                pending::<()>().await
                            }
                        }),
                    ));
                }
            }
            eventually(Duration::from_secs(10), "parked tasks ran", || {
                let stats = quiet_stats(&pool);
                stats.workers.iter().all(|w| w.executor.runnable() == 0)
                    && stats.completed() == 0
                    && stats
                        .workers
                        .iter()
                        .map(|w| w.executor.live_tasks)
                        .sum::<usize>()
                        == 50 + 2 * 20 * workers
            });
            // Queued behind blocked workers: never polled.
            let gate = Arc::new(Gate::default());
            let gates = block_workers(&pool, &gate);
            let probe = Probe::default();
            let queued: Vec<_> = (0..1000)
                .map(|_| {
                    let guard = next();
                    pool.spawn(Q::Fg, probe.wrap(async move { drop(guard) }))
                })
                .collect();
            let total = id;
            let p = pool.clone();
            let (tid_tx, tid_rx) = mpsc::channel();
            let shutdown = thread::spawn(move || {
                tid_tx.send(tid()).unwrap();
                p.shutdown_now()
            });
            let late = until_refused(&pool);
            // Open the gates only once `shutdown_now` has told every worker
            // to cancel: its thread then sleeps, waiting for them.
            let shutdown_tid = tid_rx.recv().unwrap();
            eventually(Duration::from_secs(10), "shutdown_now waits", || {
                thread_state(shutdown_tid) == 'S'
            });
            gate.open();
            let report = shutdown.join().unwrap();
            let threads = dropped_once(&log, total);
            for (gid, worker, handle) in pinned {
                assert!(wait(handle).unwrap_err().is_cancelled());
                assert_eq!(
                    threads[gid],
                    format!("clockworker-pool-{worker}"),
                    "!Send future {gid}"
                );
            }
            for handle in parked {
                assert!(wait(handle).unwrap_err().is_cancelled());
            }
            let mut cancelled = 0;
            for handle in queued {
                match wait(handle) {
                    Ok(()) => {}
                    Err(error) => {
                        assert!(error.is_cancelled());
                        cancelled += 1;
                    }
                }
            }
            for handle in gates.into_iter().chain(late) {
                let _ = wait(handle);
            }
            eprintln!("{workers} workers: {cancelled} of 1000 queued tasks cancelled; {report:?}");
            assert_eq!(probe.drops(), 1000);
            assert_eq!(probe.polls(), 1000 - cancelled, "polled = not cancelled");
            // A worker stops at its next look at the stop request: after
            // at most a batch of polls (see
            // `shutdown_now_polls_no_queued_task`).
            assert!(
                cancelled >= 1000 - 100 * workers,
                "only {cancelled} of 1000 queued tasks cancelled"
            );
            assert!(report.finished());
            // The queued tasks at least (the parked ones should count too:
            // see `shutdown_reports_parked_tasks_as_cancelled`).
            assert!(report.cancelled() >= cancelled as u64, "{report:?}");
        }
    });
}

/// `shutdown_timeout`: finished tasks complete, a never-finishing one is
/// cancelled after the timeout (its future dropped, its handle cancelled).
#[test]
fn shutdown_timeout_cancels_what_never_finishes() {
    isolated(|| {
        let pool = pool(2);
        let probe = Probe::default();
        let stuck = pool.spawn(Q::Bg, probe.wrap(pending::<()>()));
        let quick: Vec<_> = (0..20)
            .map(|i| {
                pool.spawn(Q::Fg, async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    i
                })
            })
            .collect();
        eventually(Duration::from_secs(10), "the stuck task ran", || {
            probe.polls() == 1
        });
        let start = Instant::now();
        let report = pool.shutdown_timeout(Duration::from_millis(200));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(190),
            "returned after {took:?}"
        );
        assert!(took < Duration::from_secs(10), "returned after {took:?}");
        assert!(pool.block_on(stuck).unwrap_err().is_cancelled());
        assert_eq!(probe.drops(), 1);
        for (i, handle) in quick.into_iter().enumerate() {
            assert_eq!(pool.block_on(handle).unwrap(), i);
        }
        assert!(report.finished());
        // (`report.cancelled()` misses the stuck task: see
        // `shutdown_reports_parked_tasks_as_cancelled`.)
        assert_eq!(report.completed(), 20, "{report:?}");
        assert_eq!(pool.shutdown_now(), report);
    });
}

/// Every shutdown after the first returns the first's report; spawns
/// after a shutdown are cancelled (futures dropped unpolled, makers never
/// run); stats still answer.
#[test]
fn shutdown_twice_gives_the_same_report_and_late_spawns_are_cancelled() {
    isolated(|| {
        let pool = pool(2);
        let handles: Vec<_> = (0..10u64)
            .map(|i| pool.spawn(Q::Fg, async move { i }))
            .collect();
        for handle in handles {
            pool.block_on(handle).unwrap();
        }
        let first = pool.shutdown_blocking();
        assert_eq!(first.completed(), 10);
        assert!(first.finished());
        assert_eq!(pool.shutdown_blocking(), first);
        assert_eq!(pool.shutdown_now(), first);
        assert_eq!(pool.shutdown_timeout(Duration::ZERO), first);
        assert_eq!(wait(pool.shutdown()), first);
        let probe = Probe::default();
        let late = pool.spawn(Q::Fg, probe.wrap(async { 1 }));
        assert!(wait(late).unwrap_err().is_cancelled());
        let made = Arc::new(AtomicBool::new(false));
        let m = made.clone();
        let late_on = pool.spawn_on(0, Q::Bg, move || {
            m.store(true, Ordering::SeqCst);
            async { 1 }
        });
        assert!(wait(late_on).unwrap_err().is_cancelled());
        let late_queue = pool.queue(Q::Bg).unwrap().spawn(probe.wrap(async { 2 }));
        assert!(wait(late_queue).unwrap_err().is_cancelled());
        assert_eq!((probe.polls(), probe.drops()), (0, 2));
        assert!(!made.load(Ordering::SeqCst));
        let stats = pool.stats();
        assert!(stats.workers.iter().all(|w| w.stopped));
        assert_eq!(stats.completed(), 10);
        assert_eq!(
            pool.stats().completed(),
            10,
            "stopped workers answer at once"
        );
        assert_eq!(pool.shutdown_now(), first);
    });
}

/// `shutdown().await` from other runtimes: a tokio runtime, and a task of a
/// single-thread executor; it waits for the pool's tasks (here, tokio
/// timers on the workers).
#[test]
fn async_shutdown_from_another_runtime() {
    isolated(|| {
        // From tokio.
        let two = pool(2);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let done = done.clone();
            two.spawn(Q::Fg, async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let report = common::tokio_runtime().block_on(two.shutdown());
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(report.completed(), 20);
        assert!(report.finished());

        // From a clockworker executor's task.
        let one = Arc::new(pool(1));
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let queue = executor.queue(0).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let done = done.clone();
            one.spawn(Q::Bg, async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let p = one.clone();
        let report = executor
            .block_on(queue.spawn(async move { p.shutdown().await }))
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(report.completed(), 20);
        assert_eq!(one.shutdown_blocking(), report);
    });
}

/// `shutdown_blocking` called from one of the pool's own workers starts
/// the shutdown and returns at once, unfinished; a shutdown from outside
/// then waits and reports everything.
#[test]
fn shutdown_from_inside_a_worker_returns_at_once() {
    isolated(|| {
        let pool = Arc::new(pool(2));
        let p = pool.clone();
        let inside = pool.spawn_on(1, Q::Fg, move || async move { p.shutdown_blocking() });
        let unfinished: PoolReport = pool.block_on(inside).unwrap();
        assert!(!unfinished.finished());
        assert_eq!(unfinished.completed(), 0);
        let late = pool.spawn(Q::Fg, async { 1 });
        assert!(pool.block_on(late).unwrap_err().is_cancelled());
        let report = pool.shutdown_blocking();
        assert!(report.finished());
        assert_eq!(report.completed(), 2);
    });
}

/// The last `Arc` of a pool dropped inside one of its own tasks: nothing
/// hangs, every other task's future is dropped once (a `!Send` one on its
/// worker), and the worker threads all end.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_pool_inside_a_worker_does_not_hang() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Arc::new(
                Pool::builder()
                    .workers(workers)
                    .thread_name("cwdropin")
                    .with_queue(Q::Fg, 8)
                    .with_queue(Q::Bg, 1)
                    .build()
                    .unwrap(),
            );
            let log = DropLog::default();
            let mut pinned = Vec::new();
            for id in 0..10 {
                let guard = Guard {
                    id,
                    log: log.clone(),
                };
                pinned.push(pool.spawn_on(id % workers, Q::Bg, move || {
                    let rc = Rc::new(guard);
                    async move {
                        let _rc = rc;
                        pending::<()>().await
                    }
                }));
            }
            let parked: Vec<_> = (10..30)
                .map(|id| {
                    let guard = Guard {
                        id,
                        log: log.clone(),
                    };
                    pool.spawn(Q::Fg, async move {
                        let _guard = guard;
                        pending::<()>().await
                    })
                })
                .collect();
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            let (dropped_tx, dropped_rx) = mpsc::channel();
            let p = pool.clone();
            let dropper = pool.spawn_on(workers - 1, Q::Fg, move || async move {
                released.await.unwrap();
                let worker = p.current_worker();
                drop(p);
                dropped_tx.send((worker, thread_name())).unwrap();
                "dropped"
            });
            drop(pool);
            release.send(()).unwrap();
            let (worker, on) = dropped_rx.recv_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(worker, Some(workers - 1));
            assert_eq!(on, format!("cwdropin-{}", workers - 1));
            // Every handle resolves.
            match wait(dropper) {
                Ok(value) => assert_eq!(value, "dropped"),
                Err(error) => assert!(error.is_cancelled()),
            }
            for handle in pinned.into_iter().chain(parked) {
                assert!(wait(handle).unwrap_err().is_cancelled());
            }
            eventually(Duration::from_secs(20), "every future dropped", || {
                log.lock().unwrap().len() >= 30
            });
            let threads = dropped_once(&log, 30);
            for (id, thread) in threads.iter().enumerate().take(10) {
                assert_eq!(
                    *thread,
                    format!("cwdropin-{}", id % workers),
                    "!Send future {id}"
                );
            }
            eventually(Duration::from_secs(20), "the worker threads end", || {
                threads_named("cwdropin") == 0
            });
        }
    });
}

/// Dropping the pool (no shutdown) from outside is `shutdown_now`: every
/// future dropped once, `!Send` ones on their worker, threads joined.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_pool_cancels_and_joins() {
    isolated(|| {
        for workers in [1, 2] {
            let pool = Pool::builder()
                .workers(workers)
                .thread_name("cwdrp")
                .with_queue(Q::Fg, 8)
                .with_queue(Q::Bg, 1)
                .build()
                .unwrap();
            let log = DropLog::default();
            let mut handles = Vec::new();
            for id in 0..40 {
                let guard = Guard {
                    id,
                    log: log.clone(),
                };
                handles.push(if id % 2 == 0 {
                    pool.spawn_on(id % workers, Q::Bg, move || {
                        let rc = Rc::new(guard);
                        async move {
                            let _rc = rc;
                            pending::<()>().await
                        }
                    })
                } else {
                    pool.spawn(Q::Fg, async move {
                        let _guard = guard;
                        pending::<()>().await
                    })
                });
            }
            eventually(Duration::from_secs(10), "every task ran", || {
                let stats = quiet_stats(&pool);
                stats.workers.iter().all(|w| w.executor.runnable() == 0)
                    && stats
                        .workers
                        .iter()
                        .map(|w| w.executor.live_tasks)
                        .sum::<usize>()
                        == 60
            });
            drop(pool);
            gone(&["cwdrp"]);
            let threads = dropped_once(&log, 40);
            for (id, thread) in threads.iter().enumerate().step_by(2) {
                assert_eq!(
                    *thread,
                    format!("cwdrp-{}", id % workers),
                    "!Send future {id}"
                );
            }
            for handle in handles {
                assert!(wait(handle).unwrap_err().is_cancelled());
            }
        }
    });
}

// ----- panics ------------------------------------------------------------

/// Panicking tasks (by `spawn` and `spawn_on`) give `JoinError::Panic` with
/// their message; the workers carry on and later spawns run on both.
#[test]
fn task_panics_leave_the_workers_running() {
    quiet_panics();
    isolated(|| {
        let pool = Arc::new(pool(2));
        let spawned: Vec<_> = (0..200)
            .map(|i| {
                pool.spawn(Q::Fg, async move {
                    if i % 2 == 0 {
                        yield_now().await;
                    }
                    if i < 1000 {
                        panic!("{QUIET} task {i}");
                    }
                    i
                })
            })
            .collect();
        let pinned: Vec<_> = (0..40)
            .map(|i| {
                pool.spawn_on(i % 2, Q::Bg, move || {
                    let rc = Rc::new(i);
                    async move {
                        if *rc < 1000 {
                            panic!("{QUIET} pinned {rc}");
                        }
                    }
                })
            })
            .collect();
        for (i, handle) in spawned.into_iter().enumerate() {
            match pool.block_on(handle) {
                Err(JoinError::Panic(panic)) => {
                    assert_eq!(panic.message(), Some(format!("{QUIET} task {i}").as_str()))
                }
                other => panic!("task {i}: {other:?}"),
            }
        }
        for (i, handle) in pinned.into_iter().enumerate() {
            match pool.block_on(handle) {
                Err(JoinError::Panic(panic)) => {
                    assert_eq!(
                        panic.message(),
                        Some(format!("{QUIET} pinned {i}").as_str())
                    )
                }
                other => panic!("pinned {i}: {other:?}"),
            }
        }
        assert_eq!(pool.workers(), 2);
        let stats = quiet_stats(&pool);
        assert!(stats.workers.iter().all(|w| !w.stopped));
        let panicked: u64 = stats.workers.iter().map(|w| w.executor.panicked()).sum();
        // The 40 spawn_on shells panic with their tasks' payloads.
        assert_eq!(panicked, 240);
        for worker in 0..2 {
            let p = pool.clone();
            let here = pool.spawn_on(worker, Q::Fg, move || async move { p.current_worker() });
            assert_eq!(pool.block_on(here).unwrap(), Some(worker));
        }
        let later: Vec<_> = (0..100)
            .map(|i| pool.spawn(Q::Bg, async move { i * 2 }))
            .collect();
        for (i, handle) in later.into_iter().enumerate() {
            assert_eq!(pool.block_on(handle).unwrap(), i * 2);
        }
        let report = pool.shutdown_blocking();
        assert_eq!(report.panicked(), 240);
        assert!(report.workers.iter().all(|w| w.panic.is_none()));
        assert_eq!(report.completed(), 40 + 2 * 2 + 100);
    });
}

/// With `with_panic_on_task_panic(true)` the first task panic stops the
/// whole pool: the other workers' tasks are cancelled, the report carries
/// the panic's message, and later spawns are cancelled.
#[test]
fn panic_on_task_panic_stops_the_pool() {
    quiet_panics();
    isolated(|| {
        for culprit in [0, 1] {
            let pool = Pool::builder()
                .workers(2)
                .with_queue(Q::Fg, 8)
                .with_queue(Q::Bg, 1)
                .with_panic_on_task_panic(true)
                .build()
                .unwrap();
            let log = DropLog::default();
            let parked: Vec<_> = (0..2)
                .map(|worker| {
                    let guard = Guard {
                        id: worker,
                        log: log.clone(),
                    };
                    pool.spawn_on(worker, Q::Bg, move || {
                        let rc = Rc::new(guard);
                        async move {
                            let _rc = rc;
                            pending::<()>().await
                        }
                    })
                })
                .collect();
            eventually(Duration::from_secs(10), "parked tasks ran", || {
                quiet_stats(&pool)
                    .workers
                    .iter()
                    .all(|w| w.executor.live_tasks == 2)
            });
            let boom = pool.spawn_on(culprit, Q::Fg, || async {
                yield_now().await;
                panic!("{QUIET} boom");
            });
            eventually(Duration::from_secs(10), "the pool stops", || {
                quiet_stats(&pool).workers.iter().all(|w| w.stopped)
            });
            let boom = wait(boom).unwrap_err();
            assert!(boom.is_panic() || boom.is_cancelled(), "{boom:?}");
            for handle in parked {
                assert!(wait(handle).unwrap_err().is_cancelled());
            }
            let threads = dropped_once(&log, 2);
            assert_eq!(threads, ["clockworker-pool-0", "clockworker-pool-1"]);
            // The workers stopped, the pool did not shut down: a spawn is
            // cancelled, not lost.
            let late = pool.spawn(Q::Fg, async { 1 });
            assert!(wait(late).unwrap_err().is_cancelled());
            let report = pool.shutdown_blocking();
            assert!(report.finished());
            assert_eq!(
                report.workers[culprit].panic.as_deref(),
                Some(format!("{QUIET} boom").as_str()),
                "{report:?}"
            );
            assert!(report.workers[1 - culprit].panic.is_none(), "{report:?}");
            assert_eq!(pool.shutdown_now(), report);
        }
    });
}

// ----- placement and build errors --------------------------------------

/// Runs a task on every worker of a pool placed by `placement` and returns
/// each worker's CPU affinity, read on its own thread.
#[cfg(target_os = "linux")]
fn worker_affinities(workers: usize, placement: Placement) -> Vec<Vec<usize>> {
    let pool = Pool::builder()
        .workers(workers)
        .with_queue(Q::Fg, 1)
        .placement(placement)
        .build()
        .unwrap();
    let affinities = (0..workers)
        .map(|w| {
            pool.block_on(pool.spawn_on(w, Q::Fg, || async { affinity() }))
                .unwrap()
        })
        .collect();
    pool.shutdown_blocking();
    affinities
}

#[cfg(target_os = "linux")]
#[test]
fn placements_pin_each_worker_to_its_cpus() {
    isolated(|| {
        let allowed = affinity();
        eprintln!("this process may use CPUs {allowed:?}");
        let n = allowed.len();
        assert_eq!(
            worker_affinities(1, Placement::Unbound),
            vec![allowed.clone()]
        );
        assert_eq!(
            worker_affinities(1, Placement::MaxSpread),
            [vec![allowed[0]]]
        );
        assert_eq!(
            worker_affinities(1, Placement::Fenced(vec![allowed[n - 1]])),
            [vec![allowed[n - 1]]]
        );
        if n >= 2 {
            let (a, b) = (allowed[0], allowed[n / 2]);
            assert_eq!(
                worker_affinities(2, Placement::MaxSpread),
                [vec![a], vec![b]]
            );
            assert_eq!(
                worker_affinities(
                    2,
                    Placement::Custom(vec![vec![allowed[1]], vec![allowed[0]]])
                ),
                [vec![allowed[1]], vec![allowed[0]]]
            );
            let fence = vec![allowed[0], allowed[1]];
            assert_eq!(
                worker_affinities(2, Placement::Fenced(fence.clone())),
                [fence.clone(), fence]
            );
            assert_eq!(
                worker_affinities(2, Placement::Unbound),
                [allowed.clone(), allowed.clone()]
            );
        }
        // The test thread itself is not pinned by any of it.
        assert_eq!(affinity(), allowed);
    });
}

fn build_error(builder: clockworker::PoolBuilder<Q>) -> BuildError {
    builder.build().map(|_| ()).unwrap_err()
}

fn builder(workers: usize) -> clockworker::PoolBuilder<Q> {
    Pool::builder()
        .workers(workers)
        .with_queue(Q::Fg, 8)
        .with_queue(Q::Bg, 1)
}

#[cfg(target_os = "linux")]
#[test]
fn bad_placements_are_build_errors() {
    isolated(|| {
        let allowed = affinity();
        let placement = |workers: usize, placement: Placement| -> String {
            match build_error(builder(workers).placement(placement)) {
                BuildError::Placement(message) => message,
                other => panic!("expected BuildError::Placement, got {other:?}"),
            }
        };
        let empty = placement(1, Placement::Fenced(vec![]));
        assert_eq!(empty, "the CPU set is empty");
        let empty_custom = placement(2, Placement::Custom(vec![vec![allowed[0]], vec![]]));
        assert_eq!(empty_custom, "the CPU set of worker 1 is empty");
        let twice = placement(1, Placement::Fenced(vec![allowed[0], allowed[0]]));
        assert_eq!(
            twice,
            format!("CPU {} is listed twice in the CPU set", allowed[0])
        );
        let huge = placement(1, Placement::Fenced(vec![4096]));
        assert!(
            huge.starts_with("CPU 4096 in the CPU set does not exist or is not available"),
            "{huge}"
        );
        let huge_custom = placement(1, Placement::Custom(vec![vec![4096]]));
        assert!(
            huge_custom.contains("CPU 4096 in the CPU set of worker 0"),
            "{huge_custom}"
        );
        let spread = placement(allowed.len() + 1, Placement::MaxSpread);
        assert!(
            spread.contains(&format!("this process may use only {} CPUs", allowed.len())),
            "{spread}"
        );
        let sets = placement(2, Placement::Custom(vec![vec![allowed[0]]]));
        assert_eq!(
            sets,
            "Custom placement has 1 CPU sets for 2 workers; give one set per worker"
        );
        let display = BuildError::Placement(sets).to_string();
        assert!(
            display.starts_with("invalid placement: Custom placement"),
            "{display}"
        );
    });
}

#[test]
fn bad_pool_configurations_are_build_errors() {
    isolated(|| {
        let zero = build_error(builder(0));
        assert_eq!(zero, BuildError::ZeroWorkers);
        assert_eq!(
            zero.to_string(),
            "a pool needs at least one worker; `workers(0)` was given"
        );
        assert_eq!(
            build_error(Pool::builder().workers(1)),
            BuildError::NoQueues
        );
        assert_eq!(
            build_error(builder(1).with_queue(Q::Fg, 2)),
            BuildError::DuplicateQueue { key: "Fg".into() }
        );
        assert_eq!(
            build_error(Pool::builder().workers(1).with_queue(Q::Fg, 0)),
            BuildError::ZeroWeight { key: "Fg".into() }
        );
        let unknown = Pool::builder()
            .workers(1)
            .with_queue(Q::Fg, 1)
            .with_stealing(Q::Bg)
            .build()
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            unknown,
            BuildError::Stealing {
                key: "Bg".into(),
                reason: "no queue has this key".into()
            }
        );
        assert_eq!(
            unknown.to_string(),
            "queue Bg cannot be a stealing queue: no queue has this key"
        );
        let custom = Pool::builder()
            .workers(1)
            .with_queue(Q::Fg, 1)
            .with_queue_scheduler(Q::Bg, 1, LeastAttainedService::new)
            .with_stealing(Q::Bg)
            .build()
            .map(|_| ())
            .unwrap_err();
        match &custom {
            BuildError::Stealing { key, reason } => {
                assert_eq!(key, "Bg");
                assert!(reason.contains("custom scheduler"), "{reason}");
            }
            other => panic!("expected BuildError::Stealing, got {other:?}"),
        }
        assert!(
            custom
                .to_string()
                .starts_with("queue Bg cannot be a stealing queue")
        );
    });
}

/// `on_worker_start` panicking on one worker: `BuildError::WorkerStart`
/// naming it and the panic, and no thread of the pool is left running.
#[cfg(target_os = "linux")]
#[test]
fn a_panicking_worker_start_hook_is_a_build_error_and_leaves_no_threads() {
    quiet_panics();
    isolated(|| {
        for (workers, culprit) in [(1, 0), (2, 1), (3, 0)] {
            let started = Arc::new(AtomicUsize::new(0));
            let s = started.clone();
            let error = build_error(builder(workers).thread_name("cwstart").on_worker_start(
                move |index| {
                    s.fetch_add(1, Ordering::SeqCst);
                    if index == culprit {
                        panic!("{QUIET} no start for {index}");
                    }
                },
            ));
            match &error {
                BuildError::WorkerStart { worker, message } => {
                    assert_eq!(*worker, culprit);
                    assert_eq!(
                        message,
                        &format!("on_worker_start panicked: {QUIET} no start for {culprit}")
                    );
                }
                other => panic!("expected BuildError::WorkerStart, got {other:?}"),
            }
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("worker {culprit} failed to start"))
            );
            assert_eq!(
                started.load(Ordering::SeqCst),
                workers,
                "every worker ran the hook"
            );
            gone(&["cwstart"]);
        }
        // The hook runs once per worker, on the worker, with its index.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let pool = builder(2)
            .thread_name("cwhook")
            .on_worker_start(move |index| s.lock().unwrap().push((index, thread_name())))
            .build()
            .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(
            seen,
            [(0, "cwhook-0".to_string()), (1, "cwhook-1".to_string())]
        );
        pool.shutdown_blocking();
        gone(&["cwhook"]);
    });
}

// ----- several pools, other executors, concurrent stats ------------------

/// Three pools at once: each keeps its own workers, tasks of one spawn onto
/// another and wait for the result, and `current_worker` only knows its
/// own pool's threads.
#[test]
fn several_pools_in_one_process() {
    isolated(|| {
        let pools: Vec<Arc<Pool<Q>>> = ["pa", "pb", "pc"]
            .into_iter()
            .map(|name| {
                Arc::new(
                    Pool::builder()
                        .workers(2)
                        .thread_name(name)
                        .with_queue(Q::Fg, 8)
                        .with_queue(Q::Bg, 1)
                        .build()
                        .unwrap(),
                )
            })
            .collect();
        let mut handles = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            for worker in 0..2 {
                let (me, other) = (pool.clone(), pools[(i + 1) % 3].clone());
                handles.push(pool.spawn_on(worker, Q::Fg, move || async move {
                    assert_eq!(me.current_worker(), Some(worker));
                    assert_eq!(other.current_worker(), None);
                    let here = thread_name();
                    let o = other.clone();
                    let there = other
                        .spawn(Q::Bg, async move { (thread_name(), o.current_worker()) })
                        .await
                        .unwrap();
                    (here, there)
                }));
            }
        }
        let names = ["pa", "pb", "pc"];
        for (n, handle) in handles.into_iter().enumerate() {
            let (i, worker) = (n / 2, n % 2);
            let (here, (there, there_worker)) = pools[0].block_on(handle).unwrap();
            assert_eq!(here, format!("{}-{worker}", names[i]));
            let other = names[(i + 1) % 3];
            let w = there_worker.expect("ran on the other pool's worker");
            assert_eq!(there, format!("{other}-{w}"));
        }
        for pool in &pools {
            let report = pool.shutdown_blocking();
            // Two spawn_on (shell and task) and two spawns from the
            // previous pool.
            assert_eq!(report.completed(), 6, "{report:?}");
        }
    });
}

/// A pool used from a task of a single-thread executor on another thread:
/// spawns, `spawn_on`, awaiting the handles (woken from the workers).
#[test]
fn a_pool_used_from_a_single_thread_executor() {
    isolated(|| {
        let pool = Arc::new(pool(2));
        let p = pool.clone();
        let result = thread::spawn(move || {
            let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
            let queue = executor.queue(0).unwrap();
            let local = Rc::new(5u64);
            let task = queue.spawn(async move {
                assert_eq!(p.current_worker(), None);
                let handles: Vec<_> = (0..200u64)
                    .map(|i| {
                        p.spawn(if i % 2 == 0 { Q::Fg } else { Q::Bg }, async move {
                            yield_now().await;
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                let q = p.clone();
                let on = p
                    .spawn_on(1, Q::Fg, move || {
                        let rc = Rc::new(1u64);
                        async move { (*rc, q.current_worker()) }
                    })
                    .await
                    .unwrap();
                (sum + *local, on)
            });
            let result = executor.block_on(task).unwrap();
            assert!(
                executor.stats().remote_schedules > 0,
                "woken from the workers"
            );
            result
        })
        .join()
        .unwrap();
        assert_eq!(result, (199 * 200 / 2 + 5, (1, Some(1))));
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), 202);
    });
}

/// `stats` called at the same moment from both workers (and from outside)
/// many times: no deadlock, and each snapshot covers both workers. The
/// workers meet at an async rendezvous before each round (yielding while
/// they wait, so that each can still answer the other's requests), and
/// once more at the end, after the outside thread stopped asking, so that
/// no request is in flight while a worker goes idle (see
/// [`stats_requests_back_to_back_are_all_answered`]).
#[test]
fn stats_from_two_workers_at_once_does_not_deadlock() {
    isolated(|| {
        const ROUNDS: usize = 50;
        let pool = Arc::new(pool(2));
        let arrived = Arc::new(AtomicUsize::new(0));
        let outside_done = Arc::new(AtomicBool::new(false));
        let askers: Vec<_> = (0..2)
            .map(|worker| {
                let (p, arrived) = (pool.clone(), arrived.clone());
                let outside_done = outside_done.clone();
                pool.spawn_on(worker, Q::Fg, move || async move {
                    let mut seen = 0;
                    for round in 1..=ROUNDS + 1 {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        while arrived.load(Ordering::SeqCst) < 2 * round {
                            yield_now().await;
                        }
                        if round > ROUNDS {
                            break;
                        }
                        let stats = p.stats();
                        assert_eq!(stats.workers.len(), 2);
                        assert!(stats.workers.iter().all(|w| !w.stopped));
                        // Its own snapshot counts its own task (a shell and
                        // the task).
                        assert!(stats.workers[worker].executor.live_tasks >= 2);
                        seen += 1;
                    }
                    while !outside_done.load(Ordering::SeqCst) {
                        yield_now().await;
                    }
                    seen
                })
            })
            .collect();
        let mut outside = 0;
        while arrived.load(Ordering::SeqCst) < 2 * (ROUNDS + 1) {
            assert_eq!(pool.stats().workers.len(), 2);
            outside += 1;
        }
        outside_done.store(true, Ordering::SeqCst);
        for handle in askers {
            assert_eq!(pool.block_on(handle).unwrap(), ROUNDS);
        }
        eprintln!("{outside} snapshots from outside meanwhile");
        assert!(outside > 0);
        let report = pool.shutdown_blocking();
        assert_eq!(report.completed(), 4);
    });
}

// ----- defects found by these tests ---------------------------------------

/// `stats` called again and again on an idle pool: every request is
/// answered. A request that arrives while a worker is on its way to sleep
/// (after its run loop's last look at the attention bits, before it
/// registers its host's waker) sets the `CALL` bit without waking anyone;
/// the re-check in `RunUntil::poll_run` (`Exit::Idle`) looks only at
/// `REMOTE`, so the worker sleeps with the request pending, and since the
/// bit stays set no later request rings either: `stats` waits forever
/// (until a spawn or a wake happens to reach that worker).
#[test]
fn stats_requests_back_to_back_are_all_answered() {
    isolated_within(Duration::from_secs(20), || {
        for workers in [1, 2] {
            let pool = pool(workers);
            for _ in 0..2000 {
                assert_eq!(pool.stats().workers.len(), workers);
            }
            pool.shutdown_blocking();
        }
    });
}

/// `shutdown_now` while a worker is busy in a poll, with 1,000 tasks queued
/// behind it (and 50 parked): the docs say the worker drops its tasks'
/// futures "after its current poll", so no queued task is polled. The
/// worker only looks at the stop request when its run loop returns to its
/// `run_until` future: at the end of the running turn, or after
/// `MAIN_BATCH` (64) polls; here 13 queued tasks run first (none without
/// the parked tasks: the long blocked poll then ends the turn at once).
#[cfg(target_os = "linux")]
#[test]
fn shutdown_now_polls_no_queued_task() {
    isolated(|| {
        let pool = Arc::new(pool(1));
        let parked: Vec<_> = (0..50)
            .map(|_| pool.spawn(Q::Bg, pending::<()>()))
            .collect();
        eventually(Duration::from_secs(10), "the tasks parked", || {
            let stats = quiet_stats(&pool);
            stats.workers[0].executor.live_tasks == 50 && stats.workers[0].executor.runnable() == 0
        });
        let gate = Arc::new(Gate::default());
        let gates = block_workers(&pool, &gate);
        let probe = Probe::default();
        let queued: Vec<_> = (0..1000)
            .map(|_| pool.spawn(Q::Fg, probe.wrap(async {})))
            .collect();
        let (tid_tx, tid_rx) = mpsc::channel();
        let p = pool.clone();
        let shutdown = thread::spawn(move || {
            tid_tx.send(tid()).unwrap();
            p.shutdown_now()
        });
        let shutdown_tid = tid_rx.recv().unwrap();
        eventually(Duration::from_secs(10), "shutdown_now waits", || {
            thread_state(shutdown_tid) == 'S'
        });
        gate.open();
        shutdown.join().unwrap();
        for handle in gates {
            let _ = wait(handle);
        }
        let ran = queued.into_iter().map(wait).filter(Result::is_ok).count();
        for handle in parked {
            assert!(wait(handle).unwrap_err().is_cancelled());
        }
        assert_eq!(probe.drops(), 1000);
        assert_eq!(
            (probe.polls(), ran),
            (0, 0),
            "queued tasks polled after shutdown_now"
        );
    });
}

/// Parked tasks dropped by a shutdown count as cancelled in the report (and
/// the final stats), as the docs of `WorkerReport::cancelled` and
/// `QueueStats::cancelled` say. `Send` tasks (every `Pool::spawn` from
/// outside, every `spawn_on` shell) are not counted: the shutdown wakes
/// them after closing the injector, which refuses them, and the waker
/// drops them as orphans, outside the executor's books.
#[test]
fn shutdown_reports_parked_tasks_as_cancelled() {
    isolated(|| {
        let pool = pool(1);
        let log = DropLog::default();
        let parked: Vec<_> = (0..10)
            .map(|id| {
                let guard = Guard {
                    id,
                    log: log.clone(),
                };
                pool.spawn(Q::Bg, async move {
                    let _guard = guard;
                    pending::<()>().await
                })
            })
            .collect();
        eventually(Duration::from_secs(10), "the tasks parked", || {
            let stats = quiet_stats(&pool);
            stats.workers[0].executor.live_tasks == 10 && stats.workers[0].executor.runnable() == 0
        });
        let report = pool.shutdown_now();
        dropped_once(&log, 10);
        for handle in parked {
            assert!(wait(handle).unwrap_err().is_cancelled());
        }
        assert_eq!(pool.stats().workers[0].executor.cancelled(), 10);
        assert_eq!(report.cancelled(), 10, "{report:?}");
    });
}
