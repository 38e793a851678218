//! Cron schedules (the `cron` feature): an expression in a named IANA time
//! zone, evaluated by `croner` on the wall clock. The parser's and the zone
//! database's types stay inside this file: the public API takes strings and
//! reports [`JobError`]s.

use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::JobError;

/// A parsed cron schedule in a time zone.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    cron: Cron,
    zone: Tz,
}

impl CronSchedule {
    /// Parses `expr` (5 fields, or 6 with seconds first) for zone `zone`.
    pub(crate) fn new(expr: &str, zone: &str) -> Result<CronSchedule, JobError> {
        let zone = Tz::from_str(zone).map_err(|_| JobError::UnknownZone(zone.to_string()))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|error| JobError::Cron {
                expr: expr.to_string(),
                message: error.to_string(),
            })?;
        Ok(CronSchedule { cron, zone })
    }

    /// The first due time strictly after `after` (wall clock).
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after: DateTime<Utc> = after.into();
        let local = after.with_timezone(&self.zone);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The due times of `expr` in New York from `from` (local, naive) for
    /// `hours`, as local times "YYYY-MM-DD HH:MM (offset)".
    fn dues(expr: &str, from: (i32, u32, u32), hours: i64) -> Vec<String> {
        let schedule = CronSchedule::new(expr, "America/New_York").unwrap();
        let zone: Tz = "America/New_York".parse().unwrap();
        let start = zone
            .with_ymd_and_hms(from.0, from.1, from.2, 0, 0, 0)
            .single()
            .unwrap();
        let end: SystemTime = (start + chrono::Duration::hours(hours))
            .with_timezone(&Utc)
            .into();
        let mut at: SystemTime = start.with_timezone(&Utc).into();
        let mut out = Vec::new();
        while let Some(next) = schedule.next_after(at) {
            if next >= end {
                break;
            }
            let local: DateTime<Utc> = next.into();
            out.push(
                local
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M %z")
                    .to_string(),
            );
            at = next;
        }
        out
    }

    #[test]
    fn spring_forward_2026_03_08() {
        // 02:30 does not exist that night: a fixed-time job runs once, at
        // the first valid minute after the gap (03:00 EDT: croner's
        // documented rule, OCPS and Vixie cron's), never twice.
        assert_eq!(
            dues("30 2 * * *", (2026, 3, 7), 72),
            [
                "2026-03-07 02:30 -0500",
                "2026-03-08 03:00 -0400",
                "2026-03-09 02:30 -0400"
            ]
        );
        // 01:30 exists once: unaffected.
        assert_eq!(
            dues("30 1 * * *", (2026, 3, 7), 72),
            [
                "2026-03-07 01:30 -0500",
                "2026-03-08 01:30 -0500",
                "2026-03-09 01:30 -0400"
            ]
        );
        // Every 15 minutes: the lost hour has no runs; 23 hours of them
        // (less the midnight it starts from).
        let quarter = dues("*/15 * * * *", (2026, 3, 8), 23);
        assert_eq!(quarter.len(), 23 * 4 - 1, "{quarter:?}");
        let mut unique = quarter.clone();
        unique.dedup();
        assert_eq!(unique.len(), quarter.len());
    }

    #[test]
    fn fall_back_2026_11_01() {
        // 01:30 happens twice that night: the job runs once.
        let dues_130 = dues("30 1 * * *", (2026, 10, 31), 72);
        assert_eq!(
            dues_130
                .iter()
                .filter(|d| d.starts_with("2026-11-01"))
                .count(),
            1,
            "{dues_130:?}"
        );
        // 02:30 exists once.
        assert_eq!(
            dues("30 2 * * *", (2026, 10, 31), 72),
            [
                "2026-10-31 02:30 -0400",
                "2026-11-01 02:30 -0500",
                "2026-11-02 02:30 -0500"
            ]
        );
        // Every 15 minutes across the repeated hour: each pass of the hour
        // runs (croner's rule for interval jobs), 25 hours of runs in that
        // day (less the midnight it starts from), and no instant twice (the
        // offset tells the passes apart).
        let quarter = dues("*/15 * * * *", (2026, 11, 1), 25);
        assert_eq!(quarter.len(), 25 * 4 - 1, "{quarter:?}");
        let mut unique = quarter.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), quarter.len(), "{quarter:?}");
    }

    #[test]
    fn bad_expressions_and_zones_are_errors() {
        assert!(matches!(
            CronSchedule::new("61 * * * *", "UTC"),
            Err(JobError::Cron { .. })
        ));
        assert_eq!(
            CronSchedule::new("* * * * *", "Mars/Olympus").unwrap_err(),
            JobError::UnknownZone("Mars/Olympus".to_string())
        );
    }
}

#[cfg(all(test, not(clockworker_loom)))]
mod job_tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use crate::{ExecutorBuilder, time};

    /// A cron job every second, under the paused clock: ten runs, one
    /// second apart, and a cancel stops it.
    #[test]
    fn a_cron_job_runs_on_its_due_times() {
        let executor = ExecutorBuilder::new()
            .with_queue("jobs", 1)
            .build()
            .unwrap();
        let dues = Rc::new(RefCell::new(Vec::new()));
        executor.block_on(async {
            time::pause().unwrap();
            let log = dues.clone();
            let job = executor
                .job("jobs")
                .cron("* * * * * *", "Europe/Paris")
                .max_runs(10)
                .spawn(move |ctx| {
                    log.borrow_mut().push(ctx.due);
                    async {}
                })
                .unwrap();
            time::sleep(Duration::from_secs(12)).await;
            assert_eq!(job.stats().runs, 10);
            assert!(job.next_due().is_none());
        });
        let dues = dues.borrow();
        for pair in dues.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap > Duration::from_millis(999) && gap < Duration::from_millis(1001),
                "{gap:?}"
            );
        }
        assert!(
            executor
                .handle()
                .cron("jobs", "* * *", "UTC", |_| async {})
                .is_err()
        );
    }

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// Sleeps until `minutes` before the next top of the hour on the
    /// paused wall clock.
    async fn until_before_the_hour(minutes: u64) {
        let hourly = super::CronSchedule::new("0 * * * *", "UTC").unwrap();
        let now = time::wall_now();
        let next = hourly.next_after(now).unwrap();
        let ahead = next.duration_since(now).unwrap();
        if ahead > MIN * minutes as u32 {
            time::sleep(ahead - MIN * minutes as u32).await;
        } else {
            time::sleep(ahead + HOUR - MIN * minutes as u32).await;
        }
    }

    /// The wall clock jumps 2 h 30 min forward a minute before a due time:
    /// the due times it passed count as missed, the job catches up once
    /// (fire-once-now) within a capped re-check, then keeps its schedule.
    #[test]
    fn a_forward_jump_of_two_and_a_half_hours() {
        let executor = ExecutorBuilder::new()
            .with_queue("jobs", 1)
            .build()
            .unwrap();
        executor.block_on(async {
            time::pause().unwrap();
            until_before_the_hour(5).await;
            let job = executor
                .handle()
                .cron("jobs", "0 * * * *", "UTC", |_| async {})
                .unwrap();
            time::sleep(MIN * 4).await;
            assert_eq!(job.stats().runs, 0);
            // The wall clock now reads 2 h 29 min past the due time D: D,
            // D + 1 h and D + 2 h have passed.
            assert!(time::jump_wall_clock(HOUR * 2 + MIN * 30, true).unwrap());
            time::sleep(MIN + MIN / 2).await;
            let stats = job.stats();
            assert_eq!((stats.runs, stats.misses), (1, 2), "{stats:?}");
            // The next due time is D + 3 h, about half an hour away.
            let next = job.next_due().unwrap();
            assert!(next > time::now() && next - time::now() <= MIN * 30);
            time::sleep(MIN * 31).await;
            let stats = job.stats();
            assert_eq!((stats.runs, stats.misses), (2, 2), "{stats:?}");
            job.cancel();
        });
    }

    /// The wall clock goes back an hour right after a run: the same due
    /// time never runs twice; the next run comes at the next top of the
    /// hour on the (now earlier) wall clock.
    #[test]
    fn a_backward_jump_of_one_hour() {
        let executor = ExecutorBuilder::new()
            .with_queue("jobs", 1)
            .build()
            .unwrap();
        executor.block_on(async {
            time::pause().unwrap();
            until_before_the_hour(2).await;
            let job = executor
                .handle()
                .cron("jobs", "0 * * * *", "UTC", |_| async {})
                .unwrap();
            time::sleep(MIN * 3).await;
            assert_eq!(job.stats().runs, 1);
            assert!(time::jump_wall_clock(HOUR, false).unwrap());
            // The wall clock reads 59 minutes before the hour that ran:
            // nothing runs for the next 1 h 55 min of monotonic time...
            time::sleep(HOUR + MIN * 55).await;
            assert_eq!(job.stats().runs, 1, "a due time ran twice");
            // ...and the next top of the hour runs once.
            time::sleep(MIN * 10).await;
            assert_eq!(job.stats().runs, 2);
            job.cancel();
        });
    }

    /// An idle executor whose only job is due in about an hour wakes only
    /// for the capped re-checks (one a minute, at most).
    #[test]
    fn a_far_job_wakes_only_for_capped_rechecks() {
        let executor = ExecutorBuilder::new()
            .with_queue("jobs", 1)
            .build()
            .unwrap();
        executor.block_on(async {
            time::pause().unwrap();
            until_before_the_hour(60).await;
            let job = executor
                .handle()
                .cron("jobs", "0 * * * *", "UTC", |_| async {})
                .unwrap();
            let before = crate::Handle::<&str>::current().stats().idle_waits;
            time::sleep(MIN * 30).await;
            let idle = crate::Handle::<&str>::current().stats().idle_waits - before;
            assert!(idle <= 32, "{idle} wake-ups in 30 minutes");
            job.cancel();
        });
    }
}
