//! What arrived on one path since the last report: the receiver's half of path
//! estimation, turned into a [`PathReport`] for the sender.

use core::time::Duration;

use crate::control::{NackRange, PathReport};
use crate::filter::{ClockDelta, Windowed};
use crate::time::Instant;

/// Window of the one-way-delay range used for the reorder timeout.
const SPREAD_WINDOW: Duration = Duration::from_secs(1);

/// A jump in a path's counters longer than this is a cut or a new key, not a
/// loss worth repairing.
const MAX_GAP: u64 = 64;

/// Reports a receive-rate sample spans: about 60 ms on a loaded path. One
/// report interval (20 ms) is too short: 1 ms of jitter at either end is a 10%
/// error, and the bandwidth max filter keeps the high ones.
const RATE_REPORTS: usize = 3;

/// Most reports a receive-rate sample may span (480 ms), on a jittery path.
const RATE_MARKS: usize = 24;

/// On a jittery path a rate sample spans at least this many times the
/// smoothed spread of one-way delays within a report interval (10 ms of
/// jitter either way spreads an interval by 6-8 ms: 240-320 ms), so that a
/// few percent of overspeed builds more queue than the jitter hides (10 times
/// let a 10% overspeed read 8% over the link, 30 times 4.8%, 40 times 3.3%).
/// A wired path's spread (under a millisecond, a few in an up-probe, smoothed
/// over eight intervals) keeps [`RATE_REPORTS`].
const JITTER_SPANS: u64 = 40;

/// A point of the receive-rate measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    at: Instant,
    stamp: u32,
    total: u64,
}

#[derive(Debug, Clone, Default)]
pub(super) struct RxPath {
    packets: u32,
    bytes: u32,
    highest_counter: u64,
    /// The counter of the newest packet, for gaps (losses) in the sequence.
    last_counter: Option<u64>,
    /// Send stamp of the last packet and when it arrived.
    last: Option<(u32, Instant)>,
    /// Smallest (arrival - send stamp) of the interval, on the two clocks.
    owd_min: Option<u32>,
    /// Largest of the interval.
    owd_max: Option<u32>,
    /// Smoothed spread (largest - smallest) of the intervals' one-way delays,
    /// µs: the path's jitter, as the rate sample sees it.
    spread_us: u32,
    /// Bytes of stamped packets so far.
    total_bytes: u64,
    /// The last stamped packet: arrival, send stamp, `total_bytes` with it.
    newest: Option<Mark>,
    /// The newest packet at each of the last [`RATE_MARKS`] reports, oldest
    /// first: the receive rate is measured from the one [`RATE_REPORTS`]
    /// back, or an older one on a jittery path.
    marks: heapless::Deque<Mark, RATE_MARKS>,
    since_report: bool,
    /// Recent one-way delays (on the two clocks): lowest and highest.
    owd_lo: Windowed<false>,
    owd_hi: Windowed<true>,
    /// When the last data packet (not a report) arrived.
    last_data: Option<Instant>,
}

impl RxPath {
    /// Records a packet. `clock` orders one-way delays; it is shared by all the
    /// paths of a connection so their delays compare (the spread between them).
    /// Returns the counters this packet shows missing: a path delivers in
    /// order, so a jump in its counters is a loss.
    pub fn on_packet(
        &mut self,
        now: Instant,
        counter: u64,
        len: usize,
        tx_stamp: u32,
        clock: &mut ClockDelta,
    ) -> Option<NackRange> {
        let gap = match self.last_counter {
            Some(last) if counter > last + 1 && counter - last - 1 <= MAX_GAP => Some(NackRange {
                first: last + 1,
                count: (counter - last - 1) as u16,
            }),
            _ => None,
        };
        // Older than the newest: reordered within the path (or a repair's
        // original, late). Far older: counters restarted under a new key.
        if self
            .last_counter
            .is_none_or(|last| counter > last || last - counter > MAX_GAP)
        {
            self.last_counter = Some(counter);
        }
        self.packets = self.packets.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(len as u32);
        self.highest_counter = self.highest_counter.max(counter);
        if tx_stamp != 0 {
            self.last = Some((tx_stamp, now));
            // The clocks differ by an unknown offset: only changes of this value
            // mean anything (queueing). Kept non-zero, as zero means "none".
            let owd = now.stamp().wrapping_sub(tx_stamp).max(1);
            let centred = clock.order(owd);
            self.owd_lo.push(now, centred, SPREAD_WINDOW);
            self.owd_hi.push(now, centred, SPREAD_WINDOW);
            self.owd_min = Some(self.owd_min.map_or(owd, |m| {
                if (owd.wrapping_sub(m) as i32) < 0 {
                    owd
                } else {
                    m
                }
            }));
            self.owd_max = Some(self.owd_max.map_or(owd, |m| {
                if (owd.wrapping_sub(m) as i32) > 0 {
                    owd
                } else {
                    m
                }
            }));
        }
        if tx_stamp != 0 {
            self.total_bytes += len as u64;
            self.newest = Some(Mark {
                at: now,
                stamp: tx_stamp,
                total: self.total_bytes,
            });
        }
        self.since_report = true;
        gap
    }

    /// Records that the packet just recorded carried data.
    pub fn on_data(&mut self, now: Instant) {
        self.last_data = Some(now);
    }

    /// The (lowest, highest) recent one-way delay, if this path carried data in
    /// the last `active` time. Heartbeats do not count: a satellite path kept
    /// alive but carrying no data must not make every hole on the others wait
    /// out its delay.
    pub fn owd_range(&self, now: Instant, active: Duration) -> Option<(u64, u64)> {
        let recent = self
            .last_data
            .is_some_and(|t| now.saturating_since(t) < active);
        recent
            .then(|| Some((self.owd_lo.get()?, self.owd_hi.get()?)))
            .flatten()
    }

    pub fn received_since_report(&self) -> bool {
        self.since_report
    }

    /// The report for `path`.
    ///
    /// The receive rate is the bytes that arrived after the packet that was the
    /// newest [`RATE_REPORTS`] reports ago, over the time from it to the newest
    /// packet now, and that time is at least the time between their send
    /// stamps. Arrival times alone overestimate: packets that waited in the
    /// socket while this side was busy are read in one batch, as if the link had
    /// delivered them faster than it can (measured: 20 Mbit/s links read as
    /// 23-25 Mbit/s on a loaded 2-core machine, and the bandwidth max filter
    /// kept those samples, so the pacer overfilled the WAN queue and drained it
    /// in turn). Bounded by the send spacing, a sample is at most what the
    /// sender sent at, and a link that spreads packets out still shows its own
    /// rate.
    ///
    /// Jitter at the two ends of a sample can hide the queue a sender builds
    /// by sending faster than the link; the sample then reads the send rate,
    /// the bandwidth max filter keeps it, and the estimate confirms itself
    /// above the link (S4's LTE path, 10 Mbit/s with 10 ms of jitter:
    /// estimates of 10.4-11.1 against the 9.7 it carries, and its modem's
    /// queue overflowing every few seconds). So on a jittery path the sample
    /// reaches further back ([`JITTER_SPANS`]), until the queue it would hide
    /// outgrows the jitter. (Measuring the queue by the growth of each
    /// interval's smallest delay instead changed nothing: 10.33 against 10.34
    /// Mbit/s in the test below.)
    pub fn report(&mut self, now: Instant, path: u8) -> PathReport {
        if let (Some(lo), Some(hi)) = (self.owd_min, self.owd_max) {
            // Clamped: a clock step is not jitter.
            let spread = (hi.wrapping_sub(lo) as i32).clamp(0, 100_000) as u32;
            self.spread_us = (self.spread_us * 7 + spread) / 8;
        }
        let need = Duration::from_micros(u64::from(self.spread_us) * JITTER_SPANS);
        // The mark RATE_REPORTS back, or an older one as far as `need` asks.
        let from = self.newest.and_then(|to| {
            let mut back = self.marks.iter().rev().skip(RATE_REPORTS - 1);
            let first = back.next().or(self.marks.front()).copied();
            first.map(|first| {
                core::iter::once(first)
                    .chain(back.copied())
                    .find(|m| to.at.saturating_since(m.at) >= need)
                    .or(self.marks.front().copied())
                    .unwrap_or(first)
            })
        });
        let rate_kbps = match (from, self.newest) {
            (Some(from), Some(to)) => {
                let rx_span = to.at.saturating_since(from.at).as_micros() as u64;
                let tx_span = u64::from(to.stamp.wrapping_sub(from.stamp)).min(1 << 31);
                let us = rx_span.max(tx_span);
                if us >= 5_000 {
                    ((to.total - from.total) * 8 * 1000 / us).max(1) as u32
                } else {
                    0
                }
            }
            _ => 0,
        };
        if let Some(m) = self.newest {
            if self.marks.back() != Some(&m) {
                if self.marks.is_full() {
                    self.marks.pop_front();
                }
                let _ = self.marks.push_back(m);
            }
        }
        let (echo, hold) = self.last.map_or((0, 0), |(stamp, at)| {
            (stamp, now.saturating_since(at).as_micros() as u32)
        });
        let r = PathReport {
            path,
            packets: self.packets,
            bytes: self.bytes,
            highest_counter: self.highest_counter,
            owd_min_us: self.owd_min.unwrap_or(0),
            echo_tx_time: echo,
            hold_us: hold,
            rx_rate_kbps: rate_kbps,
        };
        self.owd_min = None;
        self.owd_max = None;
        self.since_report = false;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_micros(v * 1000)
    }

    #[test]
    fn a_jump_in_the_counters_is_reported_as_missing() {
        let (mut rx, mut clock) = (RxPath::default(), ClockDelta::default());
        assert_eq!(rx.on_packet(ms(0), 7, 100, 1, &mut clock), None, "first");
        assert_eq!(rx.on_packet(ms(1), 8, 100, 2, &mut clock), None);
        let gap = rx.on_packet(ms(2), 11, 100, 3, &mut clock);
        assert_eq!(gap, Some(NackRange { first: 9, count: 2 }));
        // One of them arrives late (reordered within the path): no new gap.
        assert_eq!(rx.on_packet(ms(3), 9, 100, 4, &mut clock), None);
        assert_eq!(rx.on_packet(ms(4), 12, 100, 5, &mut clock), None);
        // A cut's worth of counters is not repaired; nor is a restart under a
        // new key (counters from zero again).
        assert_eq!(rx.on_packet(ms(5), 12 + 1000, 100, 6, &mut clock), None);
        assert_eq!(rx.on_packet(ms(6), 0, 100, 7, &mut clock), None);
        let gap = rx.on_packet(ms(7), 2, 100, 8, &mut clock);
        assert_eq!(gap, Some(NackRange { first: 1, count: 1 }));
    }

    /// Packets a busy receiver reads in one batch arrive at the same instant:
    /// the rate is bounded by how far apart they were sent. (Bytes over the
    /// time between reports read this as 12 Mbit/s.)
    #[test]
    fn a_batch_read_at_once_counts_at_its_send_spacing() {
        let (mut rx, mut clock) = (RxPath::default(), ClockDelta::default());
        // 1000-byte packets sent 1 ms apart (8 Mbit/s): ten read as they came ...
        for i in 0..=10u64 {
            rx.on_packet(ms(i), i, 1000, 1_000 + i as u32 * 1000, &mut clock);
        }
        rx.report(ms(10), 0);
        // ... then fifteen in one batch, 10 ms later.
        for i in 11..=25u64 {
            rx.on_packet(ms(20), i, 1000, 1_000 + i as u32 * 1000, &mut clock);
        }
        let r = rx.report(ms(20), 0);
        assert_eq!(r.rx_rate_kbps, 8_000, "{r:?}");
    }

    /// The highest receive-rate sample of a sender 10% faster than its 10
    /// Mbit/s link, from 1 s to 3 s, with `jitter_us` of uniform jitter
    /// (half-width) after the link, no reordering, a report every 20 ms.
    fn highest_rate_sample(jitter_us: u64) -> u32 {
        let (mut rx, mut clock) = (RxPath::default(), ClockDelta::default());
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let (mut link_free, mut last_arrival, mut next_report) = (0u64, 0u64, 20_000u64);
        let mut highest = 0;
        for i in 0..3_300u64 {
            let sent = i * 909 + 1;
            // 1250 bytes: 1 ms on the link.
            link_free = link_free.max(sent) + 1_000;
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = seed % (2 * jitter_us + 1);
            let arrival = (link_free + 20_000 + jitter).max(last_arrival);
            last_arrival = arrival;
            while next_report <= arrival {
                let r = rx.report(Instant::from_micros(next_report), 0);
                if (1_000_000..3_000_000).contains(&next_report) {
                    if r.rx_rate_kbps > highest {
                        eprintln!(
                            "DEBUG {} {} spread {} marks {}",
                            next_report,
                            r.rx_rate_kbps,
                            rx.spread_us,
                            rx.marks.len()
                        );
                    }
                    highest = highest.max(r.rx_rate_kbps);
                }
                next_report += 20_000;
            }
            rx.on_packet(
                Instant::from_micros(arrival),
                i,
                1250,
                sent as u32,
                &mut clock,
            );
        }
        highest
    }

    /// Jitter at a sample's two ends hides the queue a too-fast sender builds:
    /// over 60 ms, 10 ms of jitter let samples read the send rate (11 Mbit/s)
    /// on a 10 Mbit/s link. Reaching back 40 times the delay spread, they stay
    /// within 5% of it; a steady link's samples are what it carries.
    #[test]
    fn jitter_does_not_hide_a_growing_queue_from_the_rate() {
        let steady = highest_rate_sample(0);
        assert!((9_900..=10_100).contains(&steady), "{steady} kbit/s");
        let jittery = highest_rate_sample(10_000);
        assert!(jittery <= 10_500, "{jittery} kbit/s");
    }
}
