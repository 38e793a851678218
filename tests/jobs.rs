//! Jobs (work in progress): `every` and `at` under the paused test clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::jobs::{JobContext, Misfire, Overlap};
use clockworker::{ExecutorBuilder, time};

const SEC: Duration = Duration::from_secs(1);

fn executor() -> clockworker::Executor<&'static str> {
    ExecutorBuilder::new()
        .with_queue("jobs", 1)
        .build()
        .unwrap()
}

#[test]
fn every_never_drifts_over_1000_runs() {
    let executor = executor();
    let seen: Rc<RefCell<Vec<JobContext>>> = Rc::default();
    executor.block_on(async {
        time::pause().unwrap();
        let start = time::now();
        let log = seen.clone();
        let job = executor
            .job("jobs")
            .every(SEC)
            .start_at(start)
            .max_runs(1000)
            .spawn(move |ctx| {
                log.borrow_mut().push(ctx);
                async {}
            })
            .unwrap();
        time::sleep(SEC * 1001).await;
        assert_eq!(job.stats().runs, 1000);
        assert!(job.next_due().is_none());
        for (k, ctx) in seen.borrow().iter().enumerate() {
            assert_eq!(ctx.due, start + SEC * k as u32);
            assert_eq!(ctx.runs, k as u64);
        }
    });
}

#[test]
fn overlap_skip_with_runs_longer_than_the_period() {
    let executor = executor();
    executor.block_on(async {
        time::pause().unwrap();
        let job = executor
            .job("jobs")
            .every(SEC)
            .start_at(time::now())
            .overlap(Overlap::Skip)
            .spawn(|_| time::sleep(SEC * 5 / 2))
            .unwrap();
        // Due at 0..=9: runs start at 0, 3, 6, 9 (each lasts 2.5 s).
        time::sleep(SEC * 19 / 2).await;
        let stats = job.stats();
        job.cancel();
        job.cancel();
        assert_eq!(stats.runs, 4, "{stats:?}");
        assert_eq!(stats.overlaps_skipped, 6, "{stats:?}");
    });
}

#[test]
fn a_one_shot_in_the_past_runs_once_at_once_and_zero_period_is_an_error() {
    let executor = executor();
    let ran = Rc::new(RefCell::new(0));
    executor.block_on(async {
        let counter = ran.clone();
        let past = time::now() - SEC;
        let job = executor
            .at(
                "jobs",
                past,
                move |_| async move { *counter.borrow_mut() += 1 },
            )
            .unwrap();
        time::sleep(Duration::from_millis(5)).await;
        assert!(job.is_finished());
    });
    assert_eq!(*ran.borrow(), 1);
    assert!(
        executor
            .every("jobs", Duration::ZERO, |_| async {})
            .is_err()
    );
    assert!(executor.every("nope", SEC, |_| async {}).is_err());
}

#[test]
fn misfire_policies_after_a_ten_period_stall() {
    for (misfire, expected_runs) in [
        (Misfire::FireOnceNow, 2),
        (Misfire::Skip, 1),
        (Misfire::Burst { cap: 4 }, 5),
        (Misfire::Delay, 2),
    ] {
        let executor = executor();
        executor.block_on(async {
            time::pause().unwrap();
            let job = executor
                .job("jobs")
                .every(SEC)
                .start_at(time::now())
                .misfire(misfire)
                .overlap(Overlap::Allow)
                .spawn(|_| async {})
                .unwrap();
            clockworker::yield_now().await;
            clockworker::yield_now().await;
            // A stall of 10 periods: the clock jumps, nothing ran.
            time::advance(SEC * 10 + SEC / 2).unwrap();
            clockworker::yield_now().await;
            clockworker::yield_now().await;
            clockworker::yield_now().await;
            let stats = job.stats();
            job.cancel();
            assert_eq!(stats.runs, expected_runs, "{misfire:?}: {stats:?}");
        });
    }
}

/// Runs of 2.5 s every second over 9.5 s (due at 0..=9), per policy.
#[test]
fn overlap_policies_count_exactly() {
    for (overlap, runs, skipped) in [
        (Overlap::Allow, 10, 0),
        (Overlap::Replace, 10, 0),
        // 0 runs; 1 queues behind it; 2 is skipped (one waits already);
        // when 0 ends at 2.5, 1 starts and runs to 5.0; 3 queues, 4 skipped;
        // 3 runs 5.0–7.5; 5 queued at 5... see the count below.
        (Overlap::QueueOne, 5, 5),
    ] {
        let executor = executor();
        let finished = Rc::new(RefCell::new(0u32));
        executor.block_on(async {
            time::pause().unwrap();
            let done = finished.clone();
            let job = executor
                .job("jobs")
                .every(SEC)
                .start_at(time::now())
                .overlap(overlap)
                .spawn(move |_| {
                    let done = done.clone();
                    async move {
                        time::sleep(SEC * 5 / 2).await;
                        *done.borrow_mut() += 1;
                    }
                })
                .unwrap();
            time::sleep(SEC * 19 / 2).await;
            let stats = job.stats();
            job.cancel();
            assert_eq!(
                (stats.runs, stats.overlaps_skipped),
                (runs, skipped),
                "{overlap:?}: {stats:?}"
            );
        });
        if overlap == Overlap::Replace {
            // Each run was replaced before it finished, but the last.
            assert!(*finished.borrow() <= 1, "{overlap:?}");
        }
    }
}

/// A job may cancel itself, and add another job, from inside its run.
#[test]
fn a_job_cancels_itself_and_adds_a_job() {
    let executor = executor();
    let handle = executor.handle();
    let added_runs = Rc::new(RefCell::new(0u32));
    let slot: Rc<RefCell<Option<clockworker::jobs::JobHandle>>> = Rc::default();
    executor.block_on(async {
        time::pause().unwrap();
        let (me, added, handle2) = (slot.clone(), added_runs.clone(), handle.clone());
        let job = executor
            .job("jobs")
            .every(SEC)
            .start_at(time::now())
            .spawn(move |ctx| {
                if ctx.runs == 2 {
                    if let Some(job) = me.borrow().as_ref() {
                        job.cancel();
                    }
                    let added = added.clone();
                    let _ = handle2.every("jobs", SEC, move |_| {
                        *added.borrow_mut() += 1;
                        async {}
                    });
                }
                async {}
            })
            .unwrap();
        *slot.borrow_mut() = Some(job);
        time::sleep(SEC * 10).await;
        let job = slot.borrow_mut().take().unwrap();
        assert_eq!(job.stats().runs, 3);
        assert!(job.is_finished());
        assert!(job.next_due().is_none());
    });
    assert!(
        *added_runs.borrow() >= 6,
        "the added job ran {} times",
        added_runs.borrow()
    );
}

/// Cancel before the first run, during a run (the run finishes, no new
/// one starts), and twice.
#[test]
fn cancel_at_the_head_and_mid_run() {
    let executor = executor();
    let finished = Rc::new(RefCell::new(0u32));
    executor.block_on(async {
        time::pause().unwrap();
        let head = executor.every("jobs", SEC, |_| async {}).unwrap();
        head.cancel();
        let done = finished.clone();
        let busy = executor
            .job("jobs")
            .every(SEC * 10)
            .start_at(time::now())
            .spawn(move |_| {
                let done = done.clone();
                async move {
                    time::sleep(SEC * 3).await;
                    *done.borrow_mut() += 1;
                }
            })
            .unwrap();
        time::sleep(SEC).await;
        busy.cancel();
        busy.cancel();
        time::sleep(SEC * 60).await;
        assert_eq!(head.stats().runs, 0);
        assert_eq!(busy.stats().runs, 1);
        assert!(head.is_finished() && busy.is_finished());
    });
    assert_eq!(*finished.borrow(), 1, "the run in progress finished");
}

/// 10,000 one-shot jobs at scattered times, a pseudo-random half of them
/// cancelled: exactly the others run, each once.
#[test]
fn ten_thousand_jobs_with_random_cancels() {
    let executor = executor();
    let ran = Rc::new(RefCell::new(vec![0u8; 10_000]));
    executor.block_on(async {
        time::pause().unwrap();
        let start = time::now();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut cancelled = vec![false; 10_000];
        let jobs: Vec<_> = (0..10_000usize)
            .map(|i| {
                let ran = ran.clone();
                let at = start + Duration::from_millis(((i as u64) * 7_919) % 100_000);
                executor
                    .at("jobs", at, move |_| async move { ran.borrow_mut()[i] += 1 })
                    .unwrap()
            })
            .collect();
        for (i, job) in jobs.iter().enumerate() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(2) {
                job.cancel();
                cancelled[i] = true;
            }
        }
        time::sleep(SEC * 200).await;
        let ran = ran.borrow();
        for i in 0..10_000 {
            assert_eq!(ran[i], u8::from(!cancelled[i]), "job {i}");
        }
    });
}

/// A run that panics counts as a failed run; the job keeps its schedule
/// (the executor catches task panics here).
#[test]
fn a_panicking_run_keeps_the_schedule() {
    let executor = ExecutorBuilder::new()
        .with_queue("jobs", 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    executor.block_on(async {
        time::pause().unwrap();
        let job = executor
            .job("jobs")
            .every(SEC)
            .start_at(time::now())
            .spawn(|ctx| async move {
                if ctx.runs.is_multiple_of(2) {
                    panic!("run {} fails", ctx.runs);
                }
            })
            .unwrap();
        time::sleep(SEC * 9 + SEC / 2).await;
        assert_eq!(job.stats().runs, 10);
        job.cancel();
    });
    assert_eq!(executor.queue_stats("jobs").unwrap().panicked, 5);
}

/// `abort` stops the job and the run in progress; `cancel` lets it finish.
#[test]
fn abort_stops_the_run_in_progress() {
    let executor = executor();
    let finished = Rc::new(RefCell::new(0u32));
    executor.block_on(async {
        time::pause().unwrap();
        let done = finished.clone();
        let job = executor
            .job("jobs")
            .every(SEC * 10)
            .start_at(time::now())
            .spawn(move |_| {
                let done = done.clone();
                async move {
                    time::sleep(SEC * 3).await;
                    *done.borrow_mut() += 1;
                }
            })
            .unwrap();
        time::sleep(SEC).await;
        job.abort();
        time::sleep(SEC * 30).await;
        assert_eq!(job.stats().runs, 1);
        assert!(job.is_finished());
    });
    assert_eq!(*finished.borrow(), 0, "the aborted run finished");
}

/// Leaving `block_on` keeps a job scheduled (it runs again in the next
/// run); dropping the executor cancels it.
#[test]
fn jobs_outlive_a_run_and_die_with_the_executor() {
    let executor = executor();
    let runs = Rc::new(RefCell::new(0u32));
    let counter = runs.clone();
    let job = executor
        .every("jobs", Duration::from_millis(5), move |_| {
            *counter.borrow_mut() += 1;
            async {}
        })
        .unwrap();
    executor.block_on(time::sleep(Duration::from_millis(30)));
    let after_first = *runs.borrow();
    assert!(after_first >= 1);
    assert!(!job.is_finished());
    executor.block_on(time::sleep(Duration::from_millis(30)));
    assert!(
        *runs.borrow() > after_first,
        "the job ran again in the second run"
    );
    drop(executor);
    assert!(job.is_finished());
    assert_eq!(job.stats().runs, u64::from(*runs.borrow()));
}
