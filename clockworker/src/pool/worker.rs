//! One worker of a pool: an OS thread running one executor on its host
//! until the pool tells it to stop.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Poll, Waker};

use super::builder::WorkerConfig;
use super::stats::WorkerReport;
use crate::core::{Core, Hooks};
use crate::error::{BuildError, TaskPanic};
use crate::shared::Shared;
use crate::spawner::Spawner;
use crate::stats::ExecutorStats;
use crate::sync::AtomicWaker;
use crate::sync::atomic::{AtomicU8, Ordering};

/// [`Control::mode`]: run.
pub(crate) const RUNNING: u8 = 0;
/// [`Control::mode`]: finish every task, then stop.
pub(crate) const DRAIN: u8 = 1;
/// [`Control::mode`]: stop now, cancelling every task. The modes are bit
/// sets (`RUNNING` ⊂ `DRAIN` ⊂ `CANCEL`), so that a request is one
/// `fetch_or` and a mode only goes up.
pub(crate) const CANCEL: u8 = 3;

thread_local! {
    /// The pool and index of the worker this thread is.
    static WORKER: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
    /// The pool (its `PoolShared<K>`) this thread is a worker of.
    static POOL: RefCell<Option<Arc<dyn Any + Send + Sync>>> = const { RefCell::new(None) };
}

/// The pool this thread is a worker of, if any.
pub(crate) fn current_pool() -> Option<Arc<dyn Any + Send + Sync>> {
    POOL.try_with(|pool| pool.borrow().clone()).ok().flatten()
}

/// The index of this thread's worker, if this thread is a worker of pool
/// `pool`.
pub(crate) fn current_worker(pool: usize) -> Option<usize> {
    match WORKER.try_with(Cell::get).ok().flatten() {
        Some((id, index)) if id == pool => Some(index),
        _ => None,
    }
}

/// How the pool tells a worker to stop: the mode only goes up
/// (`RUNNING` → `DRAIN` → `CANCEL`); the waker is the worker's `run_until`
/// future's.
///
/// The same protocol as the doorbell's (and modelled with loom in
/// `loom_tests`): the pool sets the mode, then wakes the registered waker;
/// the worker registers its waker, then reads the mode. Either the read
/// sees the new mode or the wake finds the new waker.
#[derive(Debug)]
pub(crate) struct Control {
    mode: AtomicU8,
    waker: AtomicWaker,
}

impl Control {
    pub(crate) fn new() -> Control {
        Control {
            mode: AtomicU8::new(RUNNING),
            waker: AtomicWaker::new(),
        }
    }

    /// Asks the worker to go to `mode` (or stays in a higher one).
    pub(crate) fn request(&self, mode: u8) {
        self.mode.fetch_or(mode, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Registers the worker's waker, then reads the mode.
    pub(crate) fn register_and_read(&self, waker: &Waker) -> u8 {
        self.waker.register(waker);
        self.mode()
    }

    pub(crate) fn mode(&self) -> u8 {
        self.mode.load(Ordering::Acquire)
    }
}

/// What a worker hands the pool once it runs.
pub(crate) struct Boot<K> {
    pub(crate) shared: Arc<Shared>,
    /// One per queue.
    pub(crate) spawners: Vec<Spawner<K>>,
}

/// What a stopped worker leaves.
pub(crate) struct End<K> {
    pub(crate) report: WorkerReport,
    pub(crate) stats: ExecutorStats<K>,
}

/// The part of a pool its workers share.
pub(crate) struct PoolShared<K> {
    pub(crate) id: usize,
    pub(crate) config: WorkerConfig<K>,
    pub(crate) controls: Box<[Control]>,
    /// Every worker's shared state, once all have started (for stealing).
    pub(crate) peers: OnceLock<Box<[Arc<Shared>]>>,
    pub(crate) ends: Mutex<Ends<K>>,
    pub(crate) ended: Condvar,
    /// What `PoolHandle`s spawn with, once every worker has started.
    pub(crate) spawning: OnceLock<Arc<super::Spawning<K>>>,
}

pub(crate) struct Ends<K> {
    pub(crate) ends: Vec<Option<End<K>>>,
    /// `Pool::shutdown` futures waiting for the last worker.
    pub(crate) waiters: Vec<Waker>,
}

impl<K> PoolShared<K> {
    pub(crate) fn ends(&self) -> std::sync::MutexGuard<'_, Ends<K>> {
        self.ends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every worker to stop, in `mode`; to cancel, at its next poll
    /// boundary (`Shared::interrupt`), not at the end of its running turn.
    pub(crate) fn stop_all(&self, mode: u8) {
        for control in self.controls.iter() {
            control.request(mode);
        }
        if mode == CANCEL
            && let Some(peers) = self.peers.get()
        {
            for peer in peers.iter() {
                peer.interrupt();
            }
        }
    }

    fn finish(&self, index: usize, end: End<K>) {
        let waiters = {
            let mut ends = self.ends();
            ends.ends[index] = Some(end);
            std::mem::take(&mut ends.waiters)
        };
        self.ended.notify_all();
        for waker in waiters {
            waker.wake();
        }
    }
}

/// The worker's host: a tokio current-thread runtime with IO and timers,
/// and a `LocalSet` (so `tokio::task::spawn_local` works in tasks).
#[cfg(feature = "tokio")]
struct Host {
    runtime: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

#[cfg(feature = "tokio")]
impl Host {
    fn new() -> Result<Host, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot build its tokio runtime: {error}"))?;
        Ok(Host {
            runtime,
            local: tokio::task::LocalSet::new(),
        })
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(self.local.run_until(future))
    }

    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.runtime.enter();
        f()
    }
}

/// Without tokio: the executor's own `block_on`.
#[cfg(not(feature = "tokio"))]
struct Host;

#[cfg(not(feature = "tokio"))]
impl Host {
    fn new() -> Result<Host, String> {
        Ok(Host)
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        crate::run::block_on(future)
    }

    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// The body of worker `index`'s thread.
pub(crate) fn run<K>(
    index: usize,
    pool: Arc<PoolShared<K>>,
    cpus: Option<Vec<usize>>,
    boot: Sender<(usize, Result<Boot<K>, BuildError>)>,
) where
    K: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static,
{
    WORKER.set(Some((pool.id, index)));
    POOL.set(Some(pool.clone()));
    let started = start(index, &pool, cpus.as_deref());
    let (executor, host) = match started {
        Ok(started) => started,
        Err(error) => {
            let _ = boot.send((index, Err(error)));
            return;
        }
    };
    let handle = executor.handle();
    let core: Rc<Core> = handle.core().clone();
    let spawners = executor
        .keys()
        .iter()
        .map(|&key| handle.spawner(key))
        .collect::<Result<Vec<_>, _>>();
    let Ok(spawners) = spawners else {
        return;
    };
    let shared = core.shared().clone();
    let _ = boot.send((index, Ok(Boot { shared, spawners })));
    drop(boot);

    let control = &pool.controls[index];
    // The worker's place among its executor's drain waiters (the executor,
    // and the place with it, goes away when the worker stops).
    let mut drain_key = None;
    let until_stopped = std::future::poll_fn(|cx| {
        match control.register_and_read(cx.waker()) {
            RUNNING => Poll::Pending,
            DRAIN => {
                // The executor's own graceful close: spawns from outside its
                // tasks are refused (the pool refuses its own already), and
                // the worker stops once every task has finished.
                core.close();
                core.poll_drained(cx, &mut drain_key)
            }
            _ => Poll::Ready(()),
        }
    });
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        host.run(executor.run_until(until_stopped));
    }));
    let panic = ran.err().map(|payload| {
        // A task panic resumed out of the executor (propagate mode): the
        // whole pool stops.
        pool.stop_all(CANCEL);
        TaskPanic::message_of(payload.as_ref()).unwrap_or_else(|| "task panicked".to_string())
    });
    // Cancels whatever is left, inside the host (a future's drop may need
    // its runtime), on this thread (`!Send` futures).
    host.enter(|| drop(executor));
    let stats = handle.stats();
    drop(core);
    // The tokio runtime, with the `tokio` feature (without it, nothing).
    #[allow(clippy::drop_non_drop)]
    drop(host);
    let report = WorkerReport {
        worker: index,
        completed: stats.completed(),
        cancelled: stats.cancelled(),
        panicked: stats.panicked(),
        finished: true,
        panic,
    };
    pool.finish(index, End { report, stats });
}

/// Pins the thread, runs `on_worker_start`, builds the executor and host.
fn start<K>(
    index: usize,
    pool: &Arc<PoolShared<K>>,
    cpus: Option<&[usize]>,
) -> Result<(crate::Executor<K>, Host), BuildError>
where
    K: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static,
{
    let fail = |message: String| BuildError::WorkerStart {
        worker: index,
        message,
    };
    if let Some(cpus) = cpus {
        super::placement::pin_current(cpus)
            .map_err(|message| BuildError::Placement(format!("worker {index}: {message}")))?;
    }
    if let Some(hook) = &pool.config.on_worker_start {
        std::panic::catch_unwind(AssertUnwindSafe(|| hook(index))).map_err(|payload| {
            let message = TaskPanic::message_of(payload.as_ref())
                .unwrap_or_else(|| "a non-string panic".to_string());
            fail(format!("on_worker_start panicked: {message}"))
        })?;
    }
    let sheddable: Vec<bool> = pool.config.queues.iter().map(|q| q.stealing).collect();
    let on_idle = sheddable.contains(&true).then(|| {
        let pool = pool.clone();
        Box::new(move || offer_to_peers(&pool, index)) as Box<dyn Fn()>
    });
    let executor = pool
        .config
        .executor_builder()
        .with_hooks(Hooks {
            sheddable,
            on_idle,
            idle_spin: pool.config.spin_before_park,
        })
        .build()?;
    let host = Host::new().map_err(fail)?;
    Ok((executor, host))
}

/// The idle hook of a pool with stealing queues: this worker offers to take
/// tasks off every other worker (a flag each; no one is woken).
fn offer_to_peers<K>(pool: &PoolShared<K>, index: usize) {
    let Some(peers) = pool.peers.get() else {
        return;
    };
    let Some(me) = peers.get(index) else {
        return;
    };
    if pool.controls[index].mode() != RUNNING {
        return;
    }
    for (i, peer) in peers.iter().enumerate() {
        if i != index {
            peer.offer_thief(me);
        }
    }
}
