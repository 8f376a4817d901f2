//! Windowed minimum and maximum filters with fixed memory, for the path
//! estimators (minimum RTT, bottleneck bandwidth) and the receiver's delay spread.

use core::time::Duration;

use crate::time::Instant;

/// A windowed max (or min): the window is split into `BUCKETS` (8) sub-windows that
/// each keep their best sample, so memory is fixed and no sample that still
/// belongs to the window can be evicted by newer, worse ones.
#[derive(Debug, Clone, Copy)]
pub struct Windowed<const MAX: bool> {
    buckets: [(Instant, u64); BUCKETS],
    len: usize,
}

const BUCKETS: usize = 8;

impl<const MAX: bool> Default for Windowed<MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MAX: bool> Windowed<MAX> {
    /// An empty filter.
    pub const fn new() -> Self {
        Self {
            buckets: [(Instant::ZERO, 0); BUCKETS],
            len: 0,
        }
    }
    fn better(a: u64, b: u64) -> bool {
        if MAX {
            a >= b
        } else {
            a <= b
        }
    }
    /// Adds a sample taken at `now`, forgetting what left `window`.
    pub fn push(&mut self, now: Instant, v: u64, window: Duration) {
        let span = window / BUCKETS as u32;
        // Forget buckets that left the window.
        let mut kept = 0;
        for i in 0..self.len {
            if now.saturating_since(self.buckets[i].0) < window {
                self.buckets[kept] = self.buckets[i];
                kept += 1;
            }
        }
        self.len = kept;
        match self.len.checked_sub(1).map(|i| &mut self.buckets[i]) {
            Some(last) if now.saturating_since(last.0) < span => {
                if Self::better(v, last.1) {
                    last.1 = v;
                }
            }
            _ => {
                if self.len == BUCKETS {
                    self.buckets.copy_within(1.., 0);
                    self.len -= 1;
                }
                self.buckets[self.len] = (now, v);
                self.len += 1;
            }
        }
    }
    /// The best sample in the window.
    pub fn get(&self) -> Option<u64> {
        self.buckets[..self.len]
            .iter()
            .map(|b| b.1)
            .reduce(|a, b| if Self::better(a, b) { a } else { b })
    }
    /// Forgets everything.
    pub fn reset(&mut self) {
        self.len = 0;
    }
}

/// Puts one-way delays measured across two unsynchronised clocks in order.
///
/// A one-way delay here is (arrival stamp - send stamp) on two wrapping u32
/// microsecond clocks: the true delay plus the clocks' offset, which may be
/// anything (a router without a real-time clock, a few microseconds of error on
/// one host). Compared as plain numbers, a value just below zero reads as 71
/// minutes. Only differences between samples mean something, so each is placed
/// relative to the first one seen, in the middle of the u64 range the windowed
/// filters compare. A jump of more than 17 minutes (a clock stepped by NTP)
/// starts over from the new value.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClockDelta {
    base: Option<u32>,
}

const CLOCK_DELTA_MIDDLE: i64 = 1 << 31;
const CLOCK_DELTA_REBASE: i32 = 1 << 30;

impl ClockDelta {
    /// `delta` as an ordered number: equal deltas map to equal numbers, and a
    /// larger delay to a larger one.
    pub fn order(&mut self, delta: u32) -> u64 {
        let base = *self.base.get_or_insert(delta);
        let off = delta.wrapping_sub(base) as i32;
        if off.unsigned_abs() > CLOCK_DELTA_REBASE.unsigned_abs() {
            self.base = Some(delta);
            return CLOCK_DELTA_MIDDLE as u64;
        }
        (CLOCK_DELTA_MIDDLE + i64::from(off)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_micros(v * 1000)
    }

    #[test]
    fn keeps_the_best_of_the_window_even_under_a_rising_trend() {
        let mut min = Windowed::<false>::new();
        for i in 0..100 {
            min.push(ms(i * 10), 100 + i, Duration::from_secs(10));
        }
        assert_eq!(min.get(), Some(100), "the base survives 100 larger samples");
        // The first sub-window (1.25 s long, holding every sample above) expires
        // as a whole.
        min.push(ms(11_000), 500, Duration::from_secs(10));
        assert_eq!(min.get(), Some(500), "samples older than the window go");
    }

    #[test]
    fn max_follows_a_drop_after_the_window() {
        let mut max = Windowed::<true>::new();
        max.push(ms(0), 1000, Duration::from_millis(800));
        for t in (100..800).step_by(100) {
            max.push(ms(t), 10, Duration::from_millis(800));
        }
        assert_eq!(max.get(), Some(1000));
        max.push(ms(900), 10, Duration::from_millis(800));
        assert_eq!(max.get(), Some(10));
        max.reset();
        assert_eq!(max.get(), None);
    }

    #[test]
    fn clock_deltas_keep_their_order_across_the_wrap() {
        // Clocks a few microseconds apart: the first delay reads as "negative".
        let mut d = ClockDelta::default();
        let a = d.order(5u32.wrapping_neg());
        let b = d.order(3);
        let c = d.order(1000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(b - a, 8);
        assert_eq!(c - b, 997);
        // Any offset at all, including half the range.
        let mut d = ClockDelta::default();
        let a = d.order(0x7fff_fff0);
        let b = d.order(0x8000_0010);
        assert_eq!(b - a, 0x20);
        // A clock stepped by half an hour starts over rather than reading as a
        // queue.
        let base = d.order(0x8000_0010u32.wrapping_add(1_800_000_000));
        assert_eq!(base, 1 << 31);
        assert_eq!(
            d.order(0x8000_0010u32.wrapping_add(1_800_000_100)),
            (1 << 31) + 100
        );
    }
}
