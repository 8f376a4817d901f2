//! Windowed minimum and maximum filters with fixed memory, for the path
//! estimators (minimum RTT, bottleneck bandwidth) and the receiver's delay spread.

use core::time::Duration;

use crate::time::Instant;

/// A windowed max (or min): the window is split into [`BUCKETS`] sub-windows that
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
}
