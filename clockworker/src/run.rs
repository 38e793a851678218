//! Driving an executor: inside a host runtime (`run_until`) or on its own
//! (`block_on`).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

use crate::context;
use crate::core::{Core, Exit};
use crate::park::Parker;
use crate::shared::{LOCAL, MAIN, Shared, WAKE_BITS};

/// Wakes the future passed to `run_until`: flags it, gets the run loop's
/// attention, and wakes the host task that polls the `RunUntil`.
pub(crate) struct MainWake {
    woken: AtomicBool,
    shared: Arc<Shared>,
    host: AtomicWaker,
}

impl MainWake {
    /// Wakes the host task polling this runner, so that it polls again.
    pub(crate) fn wake_host(&self) {
        self.host.wake();
    }
}

impl Wake for MainWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.shared.notify(MAIN);
        self.host.wake();
    }
}

/// The `run_until`/`block_on` futures alive for one executor. Only one host
/// waker is registered for remote wake-ups at a time; when a runner ends,
/// the others are woken so that one of them registers again.
#[derive(Default)]
pub(crate) struct Runners {
    runners: std::cell::RefCell<slab::Slab<Arc<MainWake>>>,
}

impl Runners {
    fn add(&self, runner: Arc<MainWake>) -> usize {
        self.runners.borrow_mut().insert(runner)
    }

    /// Forgets a finished runner and wakes the others' hosts.
    fn remove(&self, runner: usize) {
        let others: Vec<Arc<MainWake>> = {
            let mut runners = self.runners.borrow_mut();
            runners.try_remove(runner);
            runners.iter().map(|(_, r)| r.clone()).collect()
        };
        for other in others {
            other.wake_host();
        }
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`Executor::run_until`](crate::Executor::run_until).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct RunUntil<'a, F> {
        core: &'a Rc<Core>,
        #[pin]
        future: F,
        main: Arc<MainWake>,
        main_waker: Waker,
        host_yield: bool,
        runner: usize,
    }

    impl<F> PinnedDrop for RunUntil<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            // Other runners of this executor may have had their host waker
            // replaced by ours: wake them so that they register again.
            this.core.runners.remove(this.runner);
        }
    }
}

impl<'a, F> RunUntil<'a, F> {
    pub(crate) fn new(core: &'a Rc<Core>, future: F, host_yield: bool) -> Self {
        let main = Arc::new(MainWake {
            // Poll the future first thing.
            woken: AtomicBool::new(true),
            shared: core.shared.clone(),
            host: AtomicWaker::new(),
        });
        RunUntil {
            core,
            future,
            main_waker: Waker::from(main.clone()),
            runner: core.runners.add(main.clone()),
            main,
            host_yield,
        }
    }
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let core: &Rc<Core> = self.core;
        let output = self.poll_run(cx);
        core.note_host_hold();
        output
    }
}

impl<F: Future> RunUntil<'_, F> {
    /// One poll: the `run_until` future when it is woken, and the tasks.
    fn poll_run(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let core: &Rc<Core> = this.core;
        let main = &*this.main;
        let enter = context::enter(core);
        // While we run, remote wakes need not wake the host, and local
        // wakes have done their job.
        core.shared.unregister_host();
        core.shared.set_idle(false);
        if core.shared.attention() & LOCAL != 0 {
            core.shared.clear(LOCAL);
        }
        main.host.take();
        core.turn.begin_host_turn(*this.host_yield);

        loop {
            if main.woken.swap(false, Ordering::AcqRel) {
                // The future is polled now: a `MAIN` bit left from its wake
                // would only make the loop stop for nothing (and, set,
                // spare the next wake its ring).
                if core.shared.attention() & MAIN != 0 {
                    core.shared.clear(MAIN);
                }
                let mut main_cx = Context::from_waker(this.main_waker);
                if let Poll::Ready(output) = this.future.as_mut().poll(&mut main_cx) {
                    // A burst that ends with the run gives its memory back.
                    core.trim();
                    return Poll::Ready(output);
                }
            }
            match run_tasks(core) {
                Exit::MainWoken => {
                    core.shared.clear(MAIN);
                    if core.turn.host_turn_over() {
                        core.note_host_yield();
                        yield_to_host(cx);
                        return Poll::Pending;
                    }
                }
                Exit::HostYield => {
                    core.trim();
                    core.note_host_yield();
                    yield_to_host(cx);
                    return Poll::Pending;
                }
                Exit::Idle => {
                    // Before the re-check below: nothing may run after it.
                    core.trim();
                    // A `LOCAL` bit left set would keep the next local wake
                    // from waking the host; the task it announced is in its
                    // queue, which the re-check below looks at.
                    if core.shared.attention() & LOCAL != 0 {
                        core.shared.clear(LOCAL);
                    }
                    // Registers, then re-checks, so no wake-up is lost.
                    // Local wakes happen on this thread: one that came
                    // before the re-check left a runnable task, one after
                    // it finds the bit clear and wakes the host.
                    let attention = core.shared.register_host(cx.waker());
                    main.host.register(cx.waker());
                    if attention & WAKE_BITS != 0
                        || main.woken.load(Ordering::Acquire)
                        || core.has_runnable()
                        || core.shared.arm_deadline()
                        || core.spin_for_work(|| main.woken.load(Ordering::Acquire))
                    {
                        continue;
                    }
                    core.note_idle_wait();
                    core.went_idle();
                    return Poll::Pending;
                }
                Exit::Panicked(payload) => {
                    drop(enter);
                    std::panic::resume_unwind(payload);
                }
            }
        }
    }
}

impl<F> fmt::Debug for RunUntil<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntil")
            .field("core", self.core)
            .field("host_yield", &self.host_yield)
            .finish_non_exhaustive()
    }
}

/// Hands control back to the host with work still runnable: the host polls
/// the `run_until` future again soon, after it has run its own IO driver.
///
/// Under tokio, a plain self-wake puts the future back in tokio's run queue,
/// and tokio polls its IO driver only every `event_interval` (61) scheduler
/// ticks while tasks stay runnable: socket readiness would wait. Instead the
/// wake is *deferred* the way `tokio::task::yield_now` defers it: tokio
/// then polls its driver (without blocking) before it polls the future
/// again. Outside a tokio runtime `yield_now` falls back to a plain
/// self-wake, which is what every other host gets; async-io's `block_on`
/// (smol's) processes IO events on every self-wake anyway.
#[cfg(feature = "tokio")]
fn yield_to_host(cx: &mut Context<'_>) {
    let mut yielding = pin!(tokio::task::yield_now());
    if yielding.as_mut().poll(cx).is_ready() {
        // Not expected on a first poll; never leave the future unwoken.
        cx.waker().wake_by_ref();
    }
}

#[cfg(not(feature = "tokio"))]
fn yield_to_host(cx: &mut Context<'_>) {
    cx.waker().wake_by_ref();
}

/// Runs the task loop with tokio's cooperative budget lifted, so that many
/// tasks polled inside one tokio task do not share (and exhaust) its budget.
#[cfg(feature = "tokio")]
fn run_tasks(core: &Core) -> Exit {
    let mut exit = None;
    let unconstrained = tokio::task::coop::unconstrained(std::future::poll_fn(|_| {
        exit = Some(core.run_tasks());
        Poll::Ready(())
    }));
    let _ = pin!(unconstrained).poll(&mut Context::from_waker(Waker::noop()));
    exit.unwrap_or(Exit::Idle)
}

#[cfg(not(feature = "tokio"))]
fn run_tasks(core: &Core) -> Exit {
    core.run_tasks()
}

thread_local! {
    /// How many of the executor's own `block_on`s are polling their future
    /// on this thread right now (they nest).
    static IN_BLOCK_ON: Cell<u32> = const { Cell::new(0) };
    /// The earliest deadline (clock ticks) that something polled by the
    /// innermost `block_on` asked it to wake up at (`u64::MAX`: none).
    static PARK_DEADLINE: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// The hook of a park with a deadline: called while this thread's
/// `block_on` polls its future, asks it to wake up at `deadline` (clock
/// ticks) at the latest, even if nothing wakes its future. Returns `false`
/// (and does nothing) outside the executor's own `block_on`: the caller
/// must then arrange its wake-up some other way.
pub(crate) fn wake_block_on_at(deadline: u64) -> bool {
    if IN_BLOCK_ON.get() == 0 {
        return false;
    }
    PARK_DEADLINE.set(PARK_DEADLINE.get().min(deadline));
    true
}

/// Polls `future` on this thread, parking it while the future is pending
/// (until a deadline, if what it polled asked for one; see
/// [`wake_block_on_at`]).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let parker = Parker::new();
    let waker = parker.waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        let outer = PARK_DEADLINE.replace(u64::MAX);
        IN_BLOCK_ON.set(IN_BLOCK_ON.get() + 1);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            future.as_mut().poll(&mut cx)
        }));
        IN_BLOCK_ON.set(IN_BLOCK_ON.get() - 1);
        let deadline = PARK_DEADLINE.replace(outer);
        match polled {
            Ok(Poll::Ready(output)) => return output,
            Ok(Poll::Pending) => {}
            Err(payload) => std::panic::resume_unwind(payload),
        }
        if deadline == u64::MAX {
            parker.park();
        } else {
            parker.park_until(crate::clock::Clock::global().instant_of(deadline));
        }
    }
}
