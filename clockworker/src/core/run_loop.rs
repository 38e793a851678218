//! The run loop: picks the next task (the running queue's, or a new turn's),
//! polls it through the poll protocol (see `task.rs`), and keeps the books
//! after the poll (the registry, the counters, the group table, the queue's
//! scheduler, a panic to propagate). It owns no state of its own.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use async_task::Runnable;

use super::{Core, Exit, LocalQueue};
use crate::sched::PollOutcome;
use crate::shared::{CALL, INTERRUPT, MAIN, REMOTE, SHED, TIMER};
use crate::stats::bump;
use crate::task::{self, Header, Outcome, Signal, TaskId};

/// A woken `run_until` future is polled at the end of the running turn, or
/// after this many task polls, whichever comes first: promptly enough for
/// an orchestrating future, without a round trip through it per task (a
/// future that awaits many join handles in turn is woken once per task).
const MAIN_BATCH: u32 = 64;

/// What the run loop does next.
enum Next<'a> {
    /// A task, and the queue it counts in (its own; see `next_task`).
    Task(Runnable<Header>, &'a LocalQueue),
    /// The running queue ran dry and its turn ended.
    RanDry,
    /// The host gets control before the next turn starts (see
    /// `Turn::hand_off_first` and `Turn::hand_off_after_dry`).
    HostFirst,
    /// Nothing is runnable.
    Idle,
}

impl Core {
    /// Polls tasks until nothing is runnable, the host's turn comes, a woken
    /// `run_until` future is due (at the end of the running turn, or after
    /// `MAIN_BATCH` polls, and always after at least one poll, so tasks make
    /// progress however often it is woken), or a task panic must propagate.
    pub(crate) fn run_tasks(&self) -> Exit {
        self.turn.start_loop();
        if let Some(watch) = &self.watch {
            watch.enter_loop();
        }
        let exit = self.run_loop();
        if let Some(watch) = &self.watch {
            watch.leave_loop();
        }
        self.turn.settle();
        exit
    }

    fn run_loop(&self) -> Exit {
        let host_deadline = self.turn.host_deadline();
        let watch = self.watch.as_ref();
        let mut polls: u32 = 0;
        loop {
            let attention = self.shared.attention();
            if attention != 0 {
                if attention & REMOTE != 0 {
                    self.drain_injected();
                }
                if attention & TIMER != 0 {
                    // The deadline check below fires what is due.
                    self.shared.clear(TIMER);
                }
                if attention & INTERRUPT != 0 {
                    self.shared.clear(INTERRUPT);
                    return Exit::MainWoken;
                }
                if attention & (SHED | CALL) != 0 {
                    if attention & CALL != 0 {
                        self.run_calls();
                    }
                    if attention & SHED != 0 {
                        self.shed();
                    }
                }
                if attention & MAIN != 0
                    && polls > 0
                    && (polls >= MAIN_BATCH || self.turn.is_over())
                {
                    return Exit::MainWoken;
                }
            }

            if self.turn.now() >= self.shared.next_deadline() {
                self.fire_timers();
            }

            // `queue`: the queue the task was spawned on (see `next_task`).
            let (runnable, queue) = match self.next_task() {
                Next::Task(runnable, queue) => (runnable, queue),
                Next::RanDry => continue,
                Next::HostFirst => return Exit::HostYield,
                Next::Idle => return Exit::Idle,
            };
            let header = runnable.metadata();
            let id = header.id;
            // Grouped tasks and custom schedulers need this poll's own CPU
            // time and hear about it; queues that use neither skip it all.
            let tracked = queue.may_track.get() && self.track_start(queue, header);
            let start = self.turn.now();
            let request = if header.aborted.load(Ordering::Acquire) {
                // The task future drops the user's future and completes as
                // `Cancelled`.
                Signal::Abort
            } else {
                let woken_at = header.woken_at.load(Ordering::Relaxed);
                queue
                    .counters
                    .queue_delay
                    .record(start.saturating_sub(woken_at));
                Signal::Poll
            };

            polls += 1;
            self.poll.begin(id);
            if let Some(watch) = watch {
                watch.begin(id, header.queue, header.group(), header.label, start);
            }
            task::request(request);
            // The task future catches panics of the user's future; this
            // catches anything else (a panicking waker of the join handle).
            let escaped = std::panic::catch_unwind(AssertUnwindSafe(|| runnable.run())).err();
            let aborted_during_poll = self.poll.end();
            // The stall watchdog needs every poll's own duration.
            let sampled = self.turn.poll_ended(tracked || watch.is_some());
            if let Some(watch) = watch
                && let Some(overrun) = watch.end(self.turn.now())
            {
                self.note_stall(overrun);
            }

            let answer = task::answer();
            if tracked {
                let finished = answer.finished_as().is_some();
                self.track_end(queue, id, start, finished);
            }
            let counters = &queue.counters;
            let mut panicked = false;
            if answer == Signal::Pending || answer == Signal::PendingFirst {
                // The common case first: the task is pending.
                bump(&counters.polls);
                if answer == Signal::PendingFirst
                    && let Some(waker) = task::take_parked_waker()
                {
                    self.registry.park(id, waker);
                }
                if aborted_during_poll {
                    // Parked now: wake it so that it sees the abort.
                    self.wake_for_abort(id);
                }
            } else if let Some((outcome, parked)) = answer.finished_as() {
                self.registry.retire(id, parked);
                if request == Signal::Poll {
                    bump(&counters.polls);
                }
                match outcome {
                    Outcome::Completed => bump(&counters.completed),
                    Outcome::Cancelled => bump(&counters.cancelled),
                    Outcome::Panicked => {
                        bump(&counters.panicked);
                        panicked = true;
                    }
                }
            } else {
                // No task future ran: the task had already closed.
                self.registry.retire(id, true);
            }
            if (panicked || escaped.is_some())
                && let Some(payload) = self.propagating(escaped)
            {
                return Exit::Panicked(payload);
            }

            if sampled && (self.turn.now() >= host_deadline || self.turn.hand_off_between_polls()) {
                return Exit::HostYield;
            }
        }
    }

    /// The next task to poll: from the running queue, starting a new turn
    /// when the last one is over. When the running queue runs dry, its turn
    /// ends and the loop gets a chance to hand a woken `run_until` future
    /// its turn before the next queue is picked.
    ///
    /// A custom scheduler can hand out a task that is not its queue's (one
    /// policy object shared by two queues, or by two executors). A task of
    /// another queue of this executor is run here and counted in its own
    /// queue; a task of another executor is handed back to that executor
    /// (as if woken there), or dropped as cancelled if that executor is
    /// gone. Either way the executor keeps its own books straight.
    #[inline]
    fn next_task(&self) -> Next<'_> {
        loop {
            let index = if self.turn.is_over() {
                self.turn.settle();
                self.end_turn();
                let Some(index) = self.turn.pick() else {
                    return Next::Idle;
                };
                bump(&self.queues[index].counters.slices);
                if self.turn.hand_off_first(index) {
                    return Next::HostFirst;
                }
                index
            } else {
                match self.turn.running() {
                    Some(index) => index,
                    None => return Next::Idle,
                }
            };
            let queue = &self.queues[index];
            let next = queue.tasks.borrow_mut().pop();
            let Some(runnable) = next else {
                // The running queue ran dry. Before it leaves the scheduler
                // (and lighter queues take over), the host may deliver IO
                // that keeps it busy: it then goes on with its turn, its
                // place kept.
                self.turn.settle();
                if self.turn.hand_off_before_dry(index) {
                    return Next::HostFirst;
                }
                self.end_turn();
                return Next::RanDry;
            };
            if queue.custom {
                let header = runnable.metadata();
                if !header.belongs_to(&self.shared) {
                    self.hand_back_foreign(runnable);
                    continue;
                }
                let own = &self.queues[header.queue as usize];
                return Next::Task(runnable, own);
            }
            return Next::Task(runnable, queue);
        }
    }

    /// A timer deadline passed: the timers wake their tasks (into the
    /// local queues: this runs on the executor's thread, in its run).
    #[cold]
    #[inline(never)]
    fn fire_timers(&self) {
        self.shared.fire_deadlines(self.turn.now());
    }

    /// Gives a task of another executor, found in one of our queues, back
    /// to its own executor.
    #[cold]
    #[inline(never)]
    pub(super) fn hand_back_foreign(&self, runnable: Runnable<Header>) {
        let owner = runnable.metadata().home().into_owned();
        runnable
            .metadata()
            .woken_at
            .store(owner.clock.now(), Ordering::Relaxed);
        if let Err(runnable) = owner.inject_new(runnable) {
            // Its executor is gone (its shutdown could not reach a task that
            // sat in our queue): cancel it here, so its handle resolves.
            task::drop_orphan(runnable);
        }
    }

    /// Charges the running queue for its turn and hands it back to the
    /// scheduler.
    #[inline]
    fn end_turn(&self) {
        let ended = self
            .turn
            .end(|index| !self.queues[index].tasks.borrow().is_empty());
        if let Some(ended) = ended {
            let busy = &self.queues[ended.queue].counters.busy;
            busy.set(busy.get() + ended.used);
        }
    }

    /// Before polling a task of a queue that may track polls: notes the
    /// task's group (for `spawn!` inheritance) and, if this poll needs its
    /// own CPU time, reads the clock now.
    #[inline(never)]
    fn track_start(&self, queue: &LocalQueue, header: &Header) -> bool {
        let group = header.group();
        self.poll.set_placement(group, header.hint());
        if !queue.custom && group.is_none() {
            return false;
        }
        self.turn.settle();
        true
    }

    /// After a tracked poll: charges it to the task's group and tells the
    /// queue's scheduler about it; a finished task leaves its group, and a
    /// group left empty is forgotten.
    #[inline(never)]
    fn track_end(&self, queue: &LocalQueue, task: TaskId, start: u64, finished: bool) {
        let (group, hint) = (self.poll.group(), self.poll.hint());
        let cpu = self.turn.now().saturating_sub(start);
        let mut gone = None;
        if let Some(group) = group {
            let mut groups = queue.groups.borrow_mut();
            groups.charge(group, cpu);
            if finished && groups.leave(group) {
                gone = Some(group);
            }
        }
        if queue.custom {
            let outcome = PollOutcome {
                task,
                group,
                hint,
                cpu: self.turn.clock().to_duration(cpu),
                finished,
            };
            let mut tasks = queue.tasks.borrow_mut();
            tasks.polled(&outcome);
            if let Some(group) = gone {
                tasks.group_gone(group);
            }
        }
    }

    /// A poll ran past the stall threshold: counted in its queue.
    #[cold]
    #[inline(never)]
    fn note_stall(&self, overrun: crate::stall::Overrun) {
        if let Some(queue) = self.queues.get(overrun.queue) {
            bump(&queue.counters.stalls);
            let longest = &queue.counters.longest_stall;
            longest.set(longest.get().max(overrun.elapsed));
        }
    }

    /// The panic payload to resume out of `run_until`, if panics propagate:
    /// the one the task future left, else `escaped`. Always takes the task
    /// future's payload, so none outlives the poll that made it.
    fn propagating(&self, escaped: Option<Box<dyn Any + Send>>) -> Option<Box<dyn Any + Send>> {
        let payload = task::take_propagating_panic().or(escaped);
        payload.filter(|_| self.propagate_panics)
    }
}
