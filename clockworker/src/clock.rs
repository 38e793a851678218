//! The executor's clock.
//!
//! Every poll boundary reads the clock once, so the read must be cheap. The
//! executor works in raw ticks of a calibrated TSC clock (`quanta`), about
//! half the cost of `Instant::now()` on a virtual machine, and converts to
//! nanoseconds only at the edges (configuration and stats). Where the CPU has
//! no invariant TSC, `quanta` falls back to the OS monotonic clock and ticks
//! are nanoseconds.

use std::sync::OnceLock;
use std::time::Duration;

/// A cheap monotonic clock that counts raw ticks.
#[derive(Clone)]
pub(crate) struct Clock {
    inner: quanta::Clock,
    /// Ticks in one second, measured once at start-up.
    ticks_per_second: f64,
}

impl Clock {
    /// The process-wide clock; calibration runs once, on first use.
    pub(crate) fn get() -> Clock {
        Self::global().clone()
    }

    /// The process-wide clock, by reference.
    pub(crate) fn global() -> &'static Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let inner = quanta::Clock::new();
            // Scale is linear: convert a large tick count once and invert.
            let probe: u64 = 1 << 40;
            let nanos = inner.delta_as_nanos(0, probe).max(1);
            let ticks_per_second = probe as f64 * 1e9 / nanos as f64;
            Clock {
                inner,
                ticks_per_second,
            }
        })
    }

    /// The current time in raw ticks.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.inner.raw()
    }

    /// The `Instant` at which this clock will read `ticks` (now, if that
    /// reading is past).
    pub(crate) fn instant_of(&self, ticks: u64) -> std::time::Instant {
        let now = std::time::Instant::now();
        let ahead = ticks.saturating_sub(self.now());
        now.checked_add(self.to_duration(ahead)).unwrap_or(now)
    }

    /// The clock reading at `instant` (now, if it is past; saturating far
    /// in the future).
    pub(crate) fn ticks_of(&self, instant: std::time::Instant) -> u64 {
        let ahead = instant.saturating_duration_since(std::time::Instant::now());
        self.now().saturating_add(self.to_ticks(ahead))
    }

    /// Converts a tick count to a duration.
    pub(crate) fn to_duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos(self.inner.delta_as_nanos(0, ticks))
    }

    /// Converts a duration to a tick count (saturating).
    pub(crate) fn to_ticks(&self, duration: Duration) -> u64 {
        let ticks = duration.as_secs_f64() * self.ticks_per_second;
        if ticks >= u64::MAX as f64 {
            u64::MAX
        } else {
            ticks as u64
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("ticks_per_second", &self.ticks_per_second)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let clock = Clock::get();
        for micros in [0u64, 1, 50, 1_000, 1_000_000] {
            let d = Duration::from_micros(micros);
            let back = clock.to_duration(clock.to_ticks(d));
            let err = back.as_nanos().abs_diff(d.as_nanos());
            assert!(err <= 2 + d.as_nanos() / 1_000_000, "{d:?} -> {back:?}");
        }
    }

    #[test]
    fn ticks_advance_with_real_time() {
        let clock = Clock::get();
        let start_tick = clock.now();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(20) {}
        let ticks = clock.now() - start_tick;
        let measured = clock.to_duration(ticks);
        let real = start.elapsed();
        let ratio = measured.as_secs_f64() / real.as_secs_f64();
        assert!((0.8..1.2).contains(&ratio), "ratio {ratio}");
    }
}
