//! A user-written task scheduler: earliest deadline first, by a per-task
//! deadline given as the task's hint, on one queue of an executor.
//!
//! Requests with different latency budgets arrive at once; under FIFO they
//! run in arrival order and the tight ones miss their deadlines, under EDF
//! every request that can make its deadline does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::ExecutorBuilder;
use clockworker::sched::{ReadyTask, TaskScheduler};

/// Earliest deadline first: the hint is the task's deadline, in
/// microseconds since the start of the run. Ties go to the earlier arrival.
#[derive(Default)]
struct EarliestDeadlineFirst {
    ready: BTreeMap<(u64, u64), ReadyTask>,
    arrivals: u64,
}

impl TaskScheduler for EarliestDeadlineFirst {
    fn push(&mut self, task: ReadyTask) {
        self.arrivals += 1;
        self.ready.insert((task.hint(), self.arrivals), task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop_first().map(|(_, task)| task)
    }

    fn len(&self) -> usize {
        self.ready.len()
    }
}

/// Runs 40 requests (1 ms of work each, latency budgets from 5 to 45 ms,
/// arriving in a shuffled order) on one queue, and counts the deadlines met.
fn run(edf: bool) -> (usize, usize) {
    let builder = ExecutorBuilder::new();
    let builder = if edf {
        builder.with_queue_scheduler("requests", 1, EarliestDeadlineFirst::default())
    } else {
        builder.with_queue("requests", 1)
    };
    let executor = builder.build().expect("valid configuration");
    let requests = executor.queue("requests").expect("configured");
    let start = Instant::now();
    let met = Rc::new(RefCell::new(0));
    let handles: Vec<_> = (0..40u64)
        .map(|i| {
            // Budgets 5, 6, ... 44 ms, in a scrambled order.
            let budget = Duration::from_millis(5 + (i * 17) % 40);
            let deadline = start + budget;
            let hint = budget.as_micros() as u64;
            let met = met.clone();
            requests.spawn_with_hint(hint, async move {
                let work = Instant::now();
                while work.elapsed() < Duration::from_millis(1) {
                    std::hint::spin_loop();
                }
                if Instant::now() <= deadline {
                    *met.borrow_mut() += 1;
                }
            })
        })
        .collect();
    let total = handles.len();
    executor.block_on(async {
        for handle in handles {
            handle.await.expect("request");
        }
    });
    let met = *met.borrow();
    (met, total)
}

fn main() {
    let (fifo, total) = run(false);
    let (edf, _) = run(true);
    println!("40 requests of 1 ms each, budgets 5-44 ms, all arriving at once:");
    println!("  FIFO: {fifo}/{total} deadlines met");
    println!("  EDF:  {edf}/{total} deadlines met");
}
