//! What arrived on one path since the last report: the receiver's half of path
//! estimation, turned into a [`PathReport`] for the sender.

use core::time::Duration;

use crate::control::PathReport;
use crate::filter::{ClockDelta, Windowed};
use crate::time::Instant;

/// Window of the one-way-delay range used for the reorder timeout.
const SPREAD_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default)]
pub(super) struct RxPath {
    packets: u32,
    bytes: u32,
    highest_counter: u64,
    /// Send stamp of the last packet and when it arrived.
    last: Option<(u32, Instant)>,
    /// Smallest (arrival - send stamp) of the interval, on the two clocks.
    owd_min: Option<u32>,
    /// The rate interval: its first packet (arrival, send stamp), its last
    /// one, and the bytes that arrived after the first.
    interval_first: Option<(Instant, u32)>,
    interval_last: Option<(Instant, u32)>,
    interval_bytes: u64,
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
    pub fn on_packet(
        &mut self,
        now: Instant,
        counter: u64,
        len: usize,
        tx_stamp: u32,
        clock: &mut ClockDelta,
    ) {
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
        }
        if tx_stamp != 0 {
            if self.interval_first.is_none() {
                self.interval_first = Some((now, tx_stamp));
            } else {
                self.interval_bytes += len as u64;
                self.interval_last = Some((now, tx_stamp));
            }
        }
        self.since_report = true;
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

    /// The report for `path`, closing the measurement interval if it yields a
    /// rate.
    ///
    /// The receive rate is the bytes that arrived after the interval's first
    /// packet over the time from it to the last one, and that time is at least
    /// the time between their send stamps. Arrival times alone overestimate:
    /// packets that waited in the socket while this side was busy are read in
    /// one batch, as if the link had delivered them faster than it can (measured:
    /// 20 Mbit/s links read as 23-25 Mbit/s on a loaded 2-core machine, and the
    /// bandwidth max filter kept those samples, so the pacer overfilled the WAN
    /// queue and drained it in turn). Bytes over the time since the previous
    /// report have the same flaw at the interval's edges. Bounded by the send
    /// spacing, a sample is at most what the sender sent at, and a link that
    /// spreads packets out still shows its own rate.
    pub fn report(&mut self, now: Instant, path: u8) -> PathReport {
        let rate_kbps = match (self.interval_first, self.interval_last) {
            (Some((rx0, tx0)), Some((rx1, tx1))) => {
                let rx_span = rx1.saturating_since(rx0).as_micros() as u64;
                let tx_span = u64::from(tx1.wrapping_sub(tx0)).min(1 << 31);
                let us = rx_span.max(tx_span);
                if us >= 5_000 {
                    (self.interval_bytes * 8 * 1000 / us).max(1) as u32
                } else {
                    0
                }
            }
            _ => 0,
        };
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
        if rate_kbps != 0 {
            // The next interval starts at this one's last packet.
            self.interval_first = self.interval_last.take();
            self.interval_bytes = 0;
        }
        self.owd_min = None;
        self.since_report = false;
        r
    }
}
