//! Loom models of the cross-thread wake protocol: the injector and the
//! [`Doorbell`](crate::doorbell::Doorbell) in [`Shared`], and the
//! [`Parker`] under `Executor::block_on`; and of the stall watchdog's two
//! protocols (the beacon's sequence lock, the watchdog's sleep).
//!
//! Each model runs the crate's own code (its atomics, lock, waker slot and
//! thread parking come from loom through `crate::sync`) under every
//! interleaving loom can produce, and checks that no wake-up or spawn from
//! another thread is lost. Run them with
//!
//! ```text
//! RUSTFLAGS="--cfg clockworker_loom" cargo test -p clockworker --no-default-features --lib --release loom
//! ```
//!
//! (add `-- --nocapture` to see how many executions each model explored).
//!
//! The injected tasks are real tasks (`TaskSpec::build_send`, as a
//! `Spawner` builds them), never polled, told apart by their `TaskId`. Where
//! the run loop lives in `Core`, the model's executor repeats its steps in
//! the same order (see [`Executor`]); the steps themselves are `Shared`'s
//! methods.
//!
//! One thing is not modelled: `atomic-waker`'s `AtomicWaker`. Under loom the
//! waker slot is loom's own lock-based `AtomicWaker`, which has the same
//! contract (a wake racing a registration wakes the new waker).
//!
//! The park models never `join` a thread that may unpark the joiner: loom
//! 0.7 aborts when an unpark reaches a thread blocked in `join` (loom issue
//! 249), where std only makes the token available. They leave those threads
//! unjoined; loom still runs every thread to its end and reports a thread
//! left parked as a deadlock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use async_task::Runnable;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use crate::clock::Clock;
use crate::park::Parker;
use crate::shared::{CALL, Injected, REMOTE, SHED, Shared};
use crate::task::{Header, Placement, TaskId, TaskLabel, TaskSpec};

/// Runs `model` under loom and prints how many executions it explored
/// (`--nocapture` shows it). `LOOM_MAX_PREEMPTIONS` bounds the search as
/// usual; every model here is small enough to explore without a bound.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    loom::model::Builder::new().check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    println!(
        "{} executions explored",
        executions.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn new_shared() -> Arc<Shared> {
    Arc::new(Shared::new(Clock::get()))
}

/// A task of `shared`'s executor, built as every spawn path builds one
/// (`TaskSpec::build_send`), never polled; and its id.
fn new_task(shared: &Arc<Shared>, remote: bool) -> (Runnable<Header>, TaskId) {
    new_task_of(shared, remote, false)
}

/// [`new_task`], movable (spawned onto a sheddable queue) or not.
fn new_task_of(shared: &Arc<Shared>, remote: bool, movable: bool) -> (Runnable<Header>, TaskId) {
    let spec = TaskSpec {
        shared: shared.clone(),
        queue: 0,
        label: TaskLabel::caller(),
        now: 0,
        remote,
        placement: Placement::default(),
        propagate_panics: false,
        movable,
    };
    let (runnable, handle) = spec.build_send(async {});
    drop(handle);
    let id = runnable.metadata().id;
    (runnable, id)
}

/// A host's waker that counts its wake-ups, in a loom atomic.
#[derive(Default)]
struct Host {
    wakes: AtomicUsize,
}

impl Wake for Host {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::Release);
    }
}

/// The executor as `RunUntil::poll` and `Core::run_loop` drive it, with no
/// tasks of its own: what matters here is what it does with the injector
/// and the doorbell.
struct Executor {
    shared: Arc<Shared>,
    host: Arc<Host>,
    waker: Waker,
    /// Everything taken out of the injector, in order.
    drained: Vec<TaskId>,
}

impl Executor {
    fn new(shared: &Arc<Shared>) -> Executor {
        let host = Arc::new(Host::default());
        Executor {
            shared: shared.clone(),
            waker: Waker::from(host.clone()),
            host,
            drained: Vec::new(),
        }
    }

    /// One poll by the host: `RunUntil::poll` takes the waker out, runs the
    /// loop (a poll boundary: if `REMOTE` is set, drain), and on
    /// `Exit::Idle` registers and re-checks, looping again on a set bit.
    fn host_poll(&mut self) {
        self.shared.unregister_host();
        loop {
            if self.shared.attention() & REMOTE != 0 {
                self.drain_injected();
            }
            // Nothing to run: `Exit::Idle`.
            if self.shared.register_host(&self.waker) & REMOTE == 0 {
                return;
            }
        }
    }

    /// `Core::drain_injected`: `take_injected` clears the bit, then takes.
    fn drain_injected(&mut self) {
        let mut batch = Injected::default();
        self.shared.take_injected(&mut batch);
        self.drained
            .extend(batch.tasks.iter().map(|runnable| runnable.metadata().id));
    }

    /// The host polls again for each wake-up, until none is pending: the
    /// other threads are done.
    fn settle(&mut self) {
        while self.host.wakes.swap(0, Ordering::Acquire) > 0 {
            self.host_poll();
        }
    }

    /// The executor is asleep with no wake-up pending: nothing may be left
    /// behind for it, announced or not.
    fn assert_nothing_left_behind(&self) {
        if self.host.wakes.load(Ordering::Acquire) > 0 {
            return;
        }
        assert_eq!(
            self.shared.attention() & REMOTE,
            0,
            "the executor sleeps with REMOTE set and no wake-up pending",
        );
        let mut batch = Injected::default();
        self.shared.take_injected(&mut batch);
        assert!(
            batch.tasks.is_empty(),
            "lost wake-up: the executor sleeps, {} task(s) wait in the injector",
            batch.tasks.len(),
        );
    }
}

/// The executor goes idle (register, re-check) while another thread wakes
/// one of its tasks: either the re-check sees `REMOTE` or the host is
/// woken, and the task is drained exactly once.
#[test]
fn loom_idle_executor_and_remote_wake() {
    check(|| {
        let shared = new_shared();
        let (runnable, id) = new_task(&shared, false);
        let remote = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject(runnable).is_ok())
        };

        let mut executor = Executor::new(&shared);
        executor.host_poll();
        let saw_it = executor.drained.contains(&id);
        remote.join().unwrap();

        executor.assert_nothing_left_behind();
        let wakes = executor.host.wakes.load(Ordering::Acquire);
        assert!(saw_it || wakes > 0, "neither the re-check nor a wake-up");
        assert!(
            wakes <= 1,
            "only the thread that set the bit wakes the host"
        );
        executor.settle();
        executor.assert_nothing_left_behind();
        assert_eq!(executor.drained, [id]);
    });
}

/// The run loop (clear `REMOTE`, then drain; register and re-check when
/// idle) against two threads that inject at once, one a wake and one a
/// spawn: each task is drained exactly once, and the executor never sleeps
/// with a task in the injector and no wake-up coming.
#[test]
fn loom_run_loop_and_two_injecting_threads() {
    check(|| {
        let shared = new_shared();
        let (woken, woken_id) = new_task(&shared, false);
        let (spawned, spawned_id) = new_task(&shared, true);
        let waker_thread = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject(woken).is_ok())
        };
        let spawner_thread = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject_new(spawned).is_ok())
        };

        let mut executor = Executor::new(&shared);
        executor.host_poll();
        waker_thread.join().unwrap();
        assert!(spawner_thread.join().unwrap(), "the executor is open");

        executor.assert_nothing_left_behind();
        executor.settle();
        executor.assert_nothing_left_behind();
        let mut drained = executor.drained.clone();
        drained.sort();
        let mut expected = vec![woken_id, spawned_id];
        expected.sort();
        assert_eq!(drained, expected, "each task drained exactly once");
    });
}

/// A `Spawner` spawns while the executor is dropped (`Core::shutdown`:
/// close, then drain): the spawn is either accepted and drained by the
/// shutdown, or refused and handed back; never both, never lost.
#[test]
fn loom_close_and_remote_spawn() {
    check(|| {
        let shared = new_shared();
        let (runnable, id) = new_task(&shared, true);
        let spawner = {
            let shared = shared.clone();
            thread::spawn(move || {
                shared
                    .inject_new(runnable)
                    .map_err(|refused| refused.metadata().id)
            })
        };

        shared.close();
        let mut batch = Injected::default();
        shared.take_injected(&mut batch);
        let shut_down: Vec<TaskId> = batch.tasks.iter().map(|r| r.metadata().id).collect();
        drop(batch);

        match spawner.join().unwrap() {
            Ok(()) => assert_eq!(shut_down, [id], "accepted, so drained by shutdown"),
            Err(refused) => {
                assert_eq!(refused, id);
                assert!(shut_down.is_empty(), "refused, yet drained too");
            }
        }
        assert!(shared.is_closed());
        let mut late = Injected::default();
        shared.take_injected(&mut late);
        assert!(late.tasks.is_empty(), "a spawn slipped in after the close");
    });
}

/// A future that, on its first poll, has `wanted` threads each bump a
/// counter and wake it; ready once all have.
struct Replies {
    wanted: usize,
    received: Arc<AtomicUsize>,
    asked: bool,
}

impl Replies {
    fn new(wanted: usize) -> Replies {
        Replies {
            wanted,
            received: Arc::new(AtomicUsize::new(0)),
            asked: false,
        }
    }
}

impl Future for Replies {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        if !self.asked {
            self.asked = true;
            for _ in 0..self.wanted {
                let received = self.received.clone();
                let waker = cx.waker().clone();
                // Not joined: see the module docs.
                thread::spawn(move || {
                    received.fetch_add(1, Ordering::Release);
                    waker.wake();
                });
            }
        }
        match self.received.load(Ordering::Acquire) {
            all if all == self.wanted => Poll::Ready(all),
            _ => Poll::Pending,
        }
    }
}

/// `block_on` parks while another thread replies and wakes it: the wake
/// is never slept through (loom reports a deadlock if the thread stays
/// parked).
#[test]
fn loom_block_on_and_one_reply() {
    check(|| {
        assert_eq!(crate::run::block_on(Replies::new(1)), 1);
    });
}

/// Two wakes race each other and the parking thread; the second may find
/// `notified` already set and skip the unpark. `block_on` still sees both
/// replies.
#[test]
fn loom_block_on_and_two_racing_replies() {
    check(|| {
        assert_eq!(crate::run::block_on(Replies::new(2)), 2);
    });
}

/// An unpark from elsewhere (the thread's token is shared with any other
/// code on it) does not make `park` return without a wake: it returns only
/// once the waker has run, and then sees what the waker wrote before it.
#[test]
fn loom_park_ignores_a_spurious_unpark() {
    check(|| {
        let parker = Parker::new();
        let replied = Arc::new(AtomicBool::new(false));
        // Neither thread is joined: see the module docs.
        let this_thread = thread::current();
        thread::spawn(move || this_thread.unpark());
        let waker = parker.waker();
        let replier_wrote = replied.clone();
        thread::spawn(move || {
            replier_wrote.store(true, Ordering::Relaxed);
            waker.wake();
        });

        parker.park();
        assert!(
            replied.load(Ordering::Relaxed),
            "park returned before the wake"
        );
    });
}

// ----- the pool's protocols --------------------------------------------------

/// A worker shutting down (`Shared::close`, then the shutdown's drain) while
/// a busy worker sheds a task to it (`Core::shed`: rewrite the task's home,
/// then `move_in`; on refusal, the home goes back and the task stays). The
/// task ends up in exactly one place: drained by the thief, with its home
/// there, or kept by the victim, with its home back; a wake after that goes
/// where the task is.
#[test]
fn loom_shed_to_a_closing_thief() {
    check(|| {
        let victim = new_shared();
        let thief = new_shared();
        let (runnable, id) = new_task_of(&victim, false, true);
        victim.offer_thief(&thief);

        let shedder = {
            let victim = victim.clone();
            thread::spawn(move || {
                // `Core::shed`, with one task to spare.
                let thief = victim.take_thieves().pop().expect("the offer stands");
                runnable.metadata().move_to(thief.clone());
                match thief.move_in(vec![runnable]) {
                    Ok(()) => None,
                    Err(mut back) => {
                        let runnable = back.pop().unwrap();
                        runnable.metadata().move_to(victim.clone());
                        Some(runnable)
                    }
                }
            })
        };
        // The thief's shutdown: close, then drain.
        thief.close();
        let mut batch = Injected::default();
        thief.take_injected(&mut batch);
        let kept = shedder.join().unwrap();

        let drained: Vec<TaskId> = batch.tasks.iter().map(|r| r.metadata().id).collect();
        match kept {
            Some(runnable) => {
                assert!(drained.is_empty(), "the task is in two places");
                assert!(runnable.metadata().belongs_to(&victim));
                // A wake now goes to the victim.
                assert!(victim.inject(runnable).is_ok());
            }
            None => {
                assert_eq!(drained, [id], "the task was lost");
                let runnable = &batch.tasks[0];
                assert!(runnable.metadata().belongs_to(&thief));
                assert!(!runnable.metadata().belongs_to(&victim));
            }
        }
    });
}

/// An idle worker's offer (`offer_thief`: store the thief, then flag
/// `SHED`) against the busy worker's poll boundary (read the bits; on
/// `SHED`, `take_thief`, which clears the bit first). The offer is never
/// lost: either the boundary took the thief, or the bit is still set with
/// the thief stored, for the next boundary.
#[test]
fn loom_offer_and_poll_boundary() {
    check(|| {
        let victim = new_shared();
        let thief = new_shared();
        let offering = {
            let (victim, thief) = (victim.clone(), thief.clone());
            thread::spawn(move || victim.offer_thief(&thief))
        };
        let took = if victim.attention() & SHED != 0 {
            victim.take_thieves().pop()
        } else {
            None
        };
        offering.join().unwrap();
        match took {
            Some(taken) => assert!(Arc::ptr_eq(&taken, &thief)),
            None => {
                assert_ne!(victim.attention() & SHED, 0, "the offer went unannounced");
                let taken = victim.take_thieves().pop().expect("the offer was lost");
                assert!(Arc::ptr_eq(&taken, &thief));
            }
        }
    });
}

/// The pool asks a worker to stop (`Control::request`: set the mode, then
/// wake) while the worker's `run_until` future goes to sleep
/// (`register_and_read`: register, then read the mode): either the worker
/// reads the new mode or its waker is woken.
#[test]
fn loom_stop_request_and_sleeping_worker() {
    use crate::pool::worker::{Control, DRAIN, RUNNING};
    check(|| {
        let control = Arc::new(Control::new());
        let host = Arc::new(Host::default());
        let pool = {
            let control = control.clone();
            thread::spawn(move || control.request(DRAIN))
        };
        let seen = control.register_and_read(&Waker::from(host.clone()));
        pool.join().unwrap();
        if seen == RUNNING {
            assert!(
                host.wakes.load(Ordering::Acquire) > 0,
                "the worker sleeps through the stop request"
            );
        }
        assert_eq!(control.mode(), DRAIN);
    });
}

/// A call (a stats request) sent while the worker closes: it runs exactly
/// once (taken by the worker before the close), or is refused or dropped
/// by the close, so its caller sees its channel close; never lost with the
/// caller waiting.
#[test]
fn loom_call_and_close() {
    check(|| {
        let shared = new_shared();
        let ran = Arc::new(AtomicUsize::new(0));
        let caller = {
            let (shared, ran) = (shared.clone(), ran.clone());
            thread::spawn(move || {
                let call = Box::new(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                shared.call(call).is_ok()
            })
        };
        // The worker: one poll boundary, then its shutdown closes.
        let mut taken = if shared.attention() & CALL != 0 {
            shared.take_calls()
        } else {
            Vec::new()
        };
        shared.close();
        let accepted = caller.join().unwrap();
        for call in taken.drain(..) {
            (call.0)();
        }
        let runs = ran.load(Ordering::Relaxed);
        assert!(runs <= 1);
        if accepted && runs == 0 {
            // Accepted before the close and not taken: the close dropped it
            // (the closure, and with it the caller's sender, is gone).
            assert!(shared.take_calls().is_empty());
        }
    });
}

/// Two busy executors that are each other's waiting thief, with nothing to
/// spare, put the offers back at the same time (`Core::shed` when no task
/// may move: `take_thieves`, then `keep_thieves`). Neither holds its own
/// injector's lock while it takes the other's, so they cannot deadlock
/// (loom reports a deadlock as a failure), and both offers stand after.
#[test]
fn loom_two_executors_keep_each_other_as_thieves() {
    check(|| {
        let a = new_shared();
        let b = new_shared();
        a.offer_thief(&b);
        b.offer_thief(&a);
        let other = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let thieves = b.take_thieves();
                b.keep_thieves(thieves);
                drop(a);
            })
        };
        let thieves = a.take_thieves();
        a.keep_thieves(thieves);
        other.join().unwrap();
        for (victim, thief) in [(&a, &b), (&b, &a)] {
            let kept = victim.take_thieves();
            assert_eq!(kept.len(), 1, "an offer was lost");
            assert!(Arc::ptr_eq(&kept[0], thief));
        }
    });
}

/// The stall watchdog's beacon (a sequence lock with one writer that never
/// waits): a reader racing a poll's start, its end and the next poll's
/// start never sees a mix of two polls' fields, and sees a poll in
/// progress only with that poll's sequence number.
#[test]
fn loom_beacon_snapshot_is_never_torn() {
    use crate::stall::{Beacon, Snapshot};
    check(|| {
        let beacon = Arc::new(Beacon::default());
        let poll = |n: u64| Snapshot {
            seq: 0,
            started: n,
            task: n,
            queue: n as u32,
            group: Some(crate::task::GroupId::new(n)),
            site: n as usize,
        };
        let writer = {
            let beacon = beacon.clone();
            thread::spawn(move || {
                beacon.publish(0, &poll(1));
                beacon.clear(0);
                beacon.publish(4, &poll(2));
            })
        };
        if let Some(seen) = beacon.snapshot() {
            let n = seen.task;
            assert!(n == 1 || n == 2, "{seen:?}");
            assert_eq!(
                (seen.started, seen.queue as u64, seen.site as u64),
                (n, n, n),
                "a torn snapshot: {seen:?}"
            );
            assert_eq!(seen.group.map(|g| g.as_u64()), Some(n));
            // The first poll runs at sequence 2, the second at 6.
            assert_eq!(seen.seq, 4 * n - 2);
        }
        writer.join().unwrap();
        let last = beacon.snapshot().expect("the second poll is in progress");
        assert_eq!(last.task, 2);
    });
}

/// The stall watchdog's sleep: it sleeps only while the run loop is out,
/// and a run loop that starts wakes a sleeping watchdog. Were a wake lost,
/// the watchdog would stay parked and loom would report a deadlock; a
/// watchdog that slept through a started loop fails the assertion.
#[test]
fn loom_watchdog_never_sleeps_through_a_running_loop() {
    use crate::stall::Doze;
    check(|| {
        let doze = Arc::new(Doze::default());
        let watchdog = {
            let doze = doze.clone();
            thread::spawn(move || {
                if doze.try_sleep() {
                    thread::park();
                    doze.woke();
                    // Woken: the loop has started (or a stale token from
                    // an earlier loop start, which a look would see).
                }
                doze.is_active()
            })
        };
        if doze.enter() {
            watchdog.thread().unpark();
        }
        // The watchdog's look comes after it slept or decided not to: the
        // run loop, which stays in, is active for it.
        assert!(watchdog.join().unwrap());
    });
}
