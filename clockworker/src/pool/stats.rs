//! What a pool reports: [`PoolStats`] (per worker, and summed per queue)
//! and, at shutdown, [`PoolReport`].

use std::fmt;
use std::time::Duration;

use crate::stats::ExecutorStats;

/// A snapshot of a pool (see [`Pool::stats`](crate::Pool::stats)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolStats<K> {
    /// One entry per worker, in index order.
    pub workers: Vec<WorkerStats<K>>,
}

/// One worker's part of [`PoolStats`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerStats<K> {
    /// The worker's index.
    pub worker: usize,
    /// Its executor's stats (per queue, and the executor's own). A task
    /// moved to another worker by stealing counts as spawned here and
    /// finishes there.
    pub executor: ExecutorStats<K>,
    /// Tasks the pool placed on this worker ([`Pool::spawn`](crate::Pool::spawn)
    /// and [`Pool::spawn_on`](crate::Pool::spawn_on)).
    pub placed: u64,
    /// Tasks this worker stole: took from busy workers while idle.
    pub stolen: u64,
    /// Tasks other workers stole from this one.
    pub had_stolen: u64,
    /// Times the worker went idle after running tasks, and parked (its
    /// thread asleep in its host until woken).
    pub parks: u64,
    /// Wake-ups from other threads: spawns and wakes that rang the
    /// worker's doorbell while it was idle (stats requests do not count;
    /// rings while it runs cost no wake-up and do not count either).
    pub wakeups: u64,
    /// The worker has stopped (after a shutdown); these are its final
    /// stats.
    pub stopped: bool,
}

impl<K> WorkerStats<K> {
    /// Tasks that finished on this worker: completed, cancelled or
    /// panicked.
    pub fn tasks_run(&self) -> u64 {
        self.executor.completed() + self.executor.cancelled() + self.executor.panicked()
    }
}

/// One queue summed over every worker (see [`PoolStats::queues`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueTotals<K> {
    /// The queue's key.
    pub key: K,
    /// Its weight (the same on every worker).
    pub weight: u32,
    /// Task polls.
    pub polls: u64,
    /// CPU time its tasks' polls took.
    pub busy: Duration,
    /// Tasks spawned onto it.
    pub spawned: u64,
    /// Tasks that completed.
    pub completed: u64,
    /// Tasks cancelled (aborted, or dropped at shutdown).
    pub cancelled: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks runnable when the snapshot was taken.
    pub runnable: usize,
}

impl<K: Copy + PartialEq> PoolStats<K> {
    /// Every queue, summed over the workers, in configuration order.
    pub fn queues(&self) -> Vec<QueueTotals<K>> {
        let Some(first) = self.workers.first() else {
            return Vec::new();
        };
        first
            .executor
            .queues
            .iter()
            .map(|queue| {
                let mut total = QueueTotals {
                    key: queue.key,
                    weight: queue.weight,
                    polls: 0,
                    busy: Duration::ZERO,
                    spawned: 0,
                    completed: 0,
                    cancelled: 0,
                    panicked: 0,
                    runnable: 0,
                };
                for worker in &self.workers {
                    if let Some(q) = worker.executor.queues.iter().find(|q| q.key == queue.key) {
                        total.polls += q.polls;
                        total.busy += q.busy;
                        total.spawned += q.spawned;
                        total.completed += q.completed;
                        total.cancelled += q.cancelled;
                        total.panicked += q.panicked;
                        total.runnable += q.runnable;
                    }
                }
                total
            })
            .collect()
    }

    /// One queue, summed over the workers; `None` for an unknown key.
    pub fn queue(&self, key: K) -> Option<QueueTotals<K>> {
        self.queues().into_iter().find(|queue| queue.key == key)
    }
}

impl<K> PoolStats<K> {
    /// Parks of every worker.
    pub fn parks(&self) -> u64 {
        self.workers.iter().map(|w| w.parks).sum()
    }

    /// Wake-ups of every worker.
    pub fn wakeups(&self) -> u64 {
        self.workers.iter().map(|w| w.wakeups).sum()
    }

    /// Tasks completed on every worker.
    pub fn completed(&self) -> u64 {
        self.workers.iter().map(|w| w.executor.completed()).sum()
    }

    /// Tasks moved by stealing.
    pub fn stolen(&self) -> u64 {
        self.workers.iter().map(|w| w.stolen).sum()
    }
}

impl<K: fmt::Debug> fmt::Display for PoolStats<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>6} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8} {:>8}",
            "worker", "polls", "completed", "placed", "stolen", "had_stolen", "parks", "wakeups"
        )?;
        for w in &self.workers {
            writeln!(
                f,
                "{:>6} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8} {:>8}",
                w.worker,
                w.executor.polls(),
                w.executor.completed(),
                w.placed,
                w.stolen,
                w.had_stolen,
                w.parks,
                w.wakeups
            )?;
        }
        Ok(())
    }
}

/// What a shutdown did (see [`Pool::shutdown`](crate::Pool::shutdown)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolReport {
    /// One entry per worker, in index order.
    pub workers: Vec<WorkerReport>,
}

/// One worker's part of a [`PoolReport`]: its tasks over the pool's life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker's index.
    pub worker: usize,
    /// Tasks that completed.
    pub completed: u64,
    /// Tasks cancelled: aborted, or dropped by the shutdown.
    pub cancelled: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// The worker has stopped and its thread was joined. `false` only when
    /// the shutdown was asked for from one of the pool's own workers, which
    /// cannot wait for the workers (itself included) to finish: the counts
    /// are then zero, and the workers stop on their own.
    pub finished: bool,
    /// With [`with_panic_on_task_panic(true)`](crate::PoolBuilder::with_panic_on_task_panic):
    /// the message of the task panic that stopped this worker (and the
    /// pool).
    pub panic: Option<String>,
}

impl PoolReport {
    /// Tasks completed on every worker.
    pub fn completed(&self) -> u64 {
        self.workers.iter().map(|w| w.completed).sum()
    }

    /// Tasks cancelled on every worker.
    pub fn cancelled(&self) -> u64 {
        self.workers.iter().map(|w| w.cancelled).sum()
    }

    /// Tasks that panicked on every worker.
    pub fn panicked(&self) -> u64 {
        self.workers.iter().map(|w| w.panicked).sum()
    }

    /// Every worker stopped and was joined.
    pub fn finished(&self) -> bool {
        self.workers.iter().all(|w| w.finished)
    }
}
