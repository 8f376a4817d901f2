//! Time as the core sees it: microseconds on a monotonic clock the caller owns.
//!
//! The core never reads a clock. The daemon passes `Instant`s taken from its own
//! monotonic clock; the simulator passes virtual ones. Microseconds are fine-grained
//! enough for pacing at hundreds of Mbit/s and last 584,000 years.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the caller's monotonic clock, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// From microseconds since the clock's origin.
    pub const fn from_micros(us: u64) -> Self {
        Self(us)
    }

    /// Microseconds since the clock's origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The wrapping 32-bit microsecond stamp carried in inner headers.
    pub fn stamp(self) -> u32 {
        self.0 as u32
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.as_micros() as u64))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.as_micros() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_micros(1_000);
        assert_eq!((t + Duration::from_millis(2)).as_micros(), 3_000);
        assert_eq!((t - Duration::from_secs(1)), Instant::ZERO);
        assert_eq!(
            t.saturating_since(Instant::from_micros(5_000)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_micros(5_000).saturating_since(t),
            Duration::from_millis(4)
        );
        assert_eq!(Instant::from_micros(u64::from(u32::MAX) + 5).stamp(), 4);
    }
}
