//! The executor running on this thread, if any.
//!
//! While `run_until`/`block_on` polls, the thread-local `CURRENT` holds the
//! executor's core. Wakers use it to push a task straight into its local
//! queue when they fire on the executor's own thread during a run;
//! [`Handle::current`](crate::Handle::current), `spawn!` and
//! [`yield_maybe`](crate::yield_maybe) use it to find the running executor.
//! Runs of different executors nest (a task of one may `block_on` another);
//! the innermost is current, and the outer one is current again when the
//! inner run's poll returns.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use async_task::{Runnable, ScheduleInfo};

use crate::core::Core;
use crate::shared::Shared;
use crate::task::{Header, TaskId};

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The executors built on this thread. A wake on this thread of one of
    /// their tasks while that executor is not current (fired by the host's
    /// IO driver between two polls of `run_until`, say) goes straight into
    /// its local queue rather than through the cross-thread injector.
    static RESIDENTS: RefCell<Vec<Weak<Core>>> = const { RefCell::new(Vec::new()) };
}

/// Records that `core` lives on this thread (it is `!Send`: it never moves).
pub(crate) fn make_resident(core: &Rc<Core>) {
    let _ = RESIDENTS.try_with(|residents| {
        let mut residents = residents.borrow_mut();
        residents.retain(|resident| resident.strong_count() > 0);
        residents.push(Rc::downgrade(core));
    });
}

/// The executor built on this thread whose shared state is `shared`, if
/// any.
fn resident(shared: &Arc<Shared>) -> Option<Rc<Core>> {
    RESIDENTS
        .try_with(|residents| {
            let residents = residents.try_borrow().ok()?;
            residents
                .iter()
                .filter_map(Weak::upgrade)
                .find(|core| Arc::ptr_eq(&core.shared, shared))
        })
        .ok()
        .flatten()
}

/// Makes `core` the current executor until the guard drops.
///
/// # Panics
///
/// Panics if `core` is already running on this thread (a nested
/// `run_until`/`block_on` of the same executor).
pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
    assert!(
        !core.poll.enter_run(),
        "clockworker: `run_until`/`block_on` was called from inside a task or future \
         that the same executor is running; an executor cannot run inside itself"
    );
    let previous = CURRENT.with(|current| current.replace(Some(core.clone())));
    EnterGuard {
        core: core.clone(),
        previous,
    }
}

/// Restores the previous current executor (also when unwinding).
pub(crate) struct EnterGuard {
    core: Rc<Core>,
    previous: Option<Rc<Core>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Ignore failure during thread-local destruction.
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
        self.core.poll.exit_run();
    }
}

/// The executor running on this thread, if any. A clone, so that no borrow
/// of the thread-local is held while the caller runs code that may start a
/// run of another executor.
pub(crate) fn current() -> Option<Rc<Core>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Whether this thread is polling a task of the executor whose shared
/// state is `shared` (a closed executor still takes its own tasks'
/// children).
pub(crate) fn in_own_task(shared: &Arc<Shared>) -> bool {
    current().is_some_and(|core| Arc::ptr_eq(&core.shared, shared) && core.poll.in_task())
}

/// The schedule function of every task: where a woken task goes. It is a
/// plain function (zero-sized) and finds the executor through the header.
pub(crate) fn schedule(runnable: Runnable<Header>, _info: ScheduleInfo) {
    let mut runnable = Some(runnable);
    let _ = CURRENT.try_with(|current| {
        if let Some(core) = current.borrow().as_ref()
            && let Some(local) = runnable.take_if(|r| r.metadata().belongs_to(&core.shared))
        {
            core.enqueue_woken(local);
        }
    });
    let Some(runnable) = runnable else {
        return;
    };
    // On the executor's own thread, between its runs: straight into its
    // queue, no lock (when the queue can be reached right now).
    let resting = resident(&runnable.metadata().home());
    let runnable = match resting {
        Some(core) => match core.enqueue_resting(runnable) {
            Ok(()) => return,
            Err(runnable) => Some(runnable),
        },
        None => Some(runnable),
    };
    if let Some(runnable) = runnable {
        // The task may complete (and be freed) as soon as it is injected:
        // hold the executor's shared state independently of it.
        let shared: Arc<Shared> = runnable.metadata().home().into_owned();
        if let Err(runnable) = shared.inject(runnable) {
            // Its executor is gone; a `Send` task is dropped here.
            crate::task::drop_orphan(runnable);
        }
    }
}

/// Makes sure an aborted task is polled soon, so that its executor sees the
/// abort: directly when called on the executor's own thread while it runs,
/// through its shared state otherwise.
pub(crate) fn request_abort(shared: &Arc<Shared>, id: TaskId) {
    match current() {
        Some(core) if Arc::ptr_eq(&core.shared, shared) => core.wake_for_abort(id),
        _ => shared.request_abort(id),
    }
}
