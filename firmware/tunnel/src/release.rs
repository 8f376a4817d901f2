//! Paced release of the aggregate class toward the LAN.
//!
//! When a hole in the sequence fills, the reorder buffer hands over everything
//! that waited behind it at once. Behind a packet carried by a slow path that is
//! the slow path's whole delay spread of fast-path traffic: in the simulator, on
//! 50 Mbit/s at 10 ms + 5 Mbit/s at 150 ms, runs of up to 689 packets (900 KB) in
//! one instant. Written to TUN in one go, such a run overflows the receiving
//! socket (208 KB by default) before its reader is even scheduled, and Wi-Fi or
//! a slower LAN behind the router drops it the same way. The packets were not
//! lost in the tunnel, yet the application never sees them.
//!
//! So the aggregate class leaves through a token bucket of [`BURST`] bytes:
//! * every packet that arrives from the network adds twice its length, so
//!   traffic that is not held back (the usual case) leaves at once, and a held
//!   run drains at twice the rate the class comes in at, in about as long as it
//!   was held, while new arrivals keep flowing;
//! * time adds the queue's length over [`DRAIN`] per [`DRAIN`] (at least
//!   [`MIN_RATE`]), which bounds the delay a large run adds and empties the
//!   queue when arrivals stop.
//!
//! Only runs are paced: a packet that did not wait in the reorder buffer, of a
//! flow ([`crate::flow`]) with nothing in the queue, leaves at once, so one
//! flow's held run does not hold the others either (the reorder buffer
//! already kept them apart). A flow with packets queued queues behind them.
//!
//! The interactive and redundant classes do not go through it: they are small
//! and must not wait behind bulk traffic.
//!
//! # Bound
//! Once [`MAX_QUEUED`] packets wait, packets leave regardless of the bucket, so
//! after each round of `Connection::poll_deliver` at most that many wait. The
//! packets come out of the reorder buffer, so the aggregate class holds at most
//! [`crate::reorder::CAPACITY`] + [`MAX_QUEUED`] packets in both together
//! (4.5 MiB at 1500 bytes; the most seen in the simulator's S3 and S4 at 85%
//! load is 990 waiting here).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::flow::{bucket, BUCKETS};
use crate::time::Instant;

/// Bytes released at once before pacing starts (16 full-size packets).
pub const BURST: u64 = 16 * 1500;
/// A queued run drains at least this fast: its length over this time.
pub const DRAIN: Duration = Duration::from_millis(50);
/// The slowest the queue drains, bytes per second (10 Mbit/s).
pub const MIN_RATE: u64 = 1_250_000;
/// Packets that may wait; beyond this they are released at once.
pub const MAX_QUEUED: usize = 1024;
/// A packet that waited this long counts as paced.
pub const PACED_WAIT: Duration = Duration::from_millis(1);
/// Each arriving byte lets this many leave.
const ARRIVAL_CREDIT: i64 = 2;
/// Tokens are counted in millionths of a byte, so that time adds them without
/// rounding.
const UNIT: i64 = 1_000_000;

/// Counters of the release pacer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseStats {
    /// Packets released [`PACED_WAIT`] or more after they were queued: held
    /// back by the bucket (a caller's own loop takes microseconds).
    pub paced: u64,
    /// The most packets waiting at once.
    pub max_queued: u64,
}

/// The token bucket and queue of one class's in-order packets.
#[derive(Debug)]
pub struct Release {
    /// Packets, when they were queued, and their flow buckets.
    queue: VecDeque<(Instant, Vec<u8>, u8)>,
    /// Packets that leave at once, ahead of `queue` (see the module doc).
    express: VecDeque<Vec<u8>>,
    /// Packets of each flow bucket in `queue`.
    waiting: [u16; BUCKETS],
    queued_bytes: u64,
    /// Millionths of bytes that may leave now; negative after a packet larger
    /// than what was left (the next one waits for the debt).
    tokens: i64,
    /// When `tokens` was last brought up to date.
    refilled: Option<Instant>,
    stats: ReleaseStats,
}

impl Default for Release {
    fn default() -> Self {
        Self::new()
    }
}

impl Release {
    /// An empty queue with a full bucket.
    pub fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            express: VecDeque::new(),
            waiting: [0; BUCKETS],
            queued_bytes: 0,
            tokens: BURST as i64 * UNIT,
            refilled: None,
            stats: ReleaseStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ReleaseStats {
        self.stats
    }

    /// Packets waiting.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.express.len()
    }

    /// Credits a packet of `len` bytes arriving from the network (before the
    /// reorder buffer).
    pub fn on_arrival(&mut self, len: usize) {
        self.add(ARRIVAL_CREDIT * len as i64 * UNIT);
    }

    /// Queues an in-order packet for the LAN; `waited`: it was held in the
    /// reorder buffer.
    pub fn push(&mut self, now: Instant, packet: Vec<u8>, waited: bool) {
        let b = bucket(&packet);
        if !waited && self.waiting[b] == 0 {
            self.express.push_back(packet);
            return;
        }
        self.waiting[b] += 1;
        self.queued_bytes += packet.len() as u64;
        self.queue.push_back((now, packet, b as u8));
        self.stats.max_queued = self.stats.max_queued.max(self.queue.len() as u64);
    }

    fn add(&mut self, tokens: i64) {
        self.tokens = self.tokens.saturating_add(tokens).min(BURST as i64 * UNIT);
    }

    /// What time adds to the bucket, bytes per second.
    fn rate(&self) -> u64 {
        let drain = self.queued_bytes * 1_000_000 / DRAIN.as_micros() as u64;
        drain.max(MIN_RATE)
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.refilled {
            let us = now.saturating_since(last).as_micros().min(1_000_000) as i64;
            self.add(self.rate() as i64 * us);
        }
        self.refilled = Some(now);
    }

    /// The next packet, if the bucket lets it leave at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.refill(now);
        if let Some(p) = self.express.pop_front() {
            self.tokens -= p.len() as i64 * UNIT;
            return Some(p);
        }
        if self.queue.is_empty() || (self.tokens <= 0 && self.queue.len() <= MAX_QUEUED) {
            return None;
        }
        let (queued, p, b) = self.queue.pop_front()?;
        self.waiting[usize::from(b)] -= 1;
        self.queued_bytes -= p.len() as u64;
        if now.saturating_since(queued) >= PACED_WAIT {
            self.stats.paced += 1;
        }
        self.tokens -= p.len() as i64 * UNIT;
        Some(p)
    }

    /// When [`Release::pop`] will give a packet without new arrivals, if one
    /// waits for the bucket.
    pub fn next_release(&self) -> Option<Instant> {
        if self.queue.is_empty() && self.express.is_empty() {
            return None;
        }
        let last = self.refilled?;
        if self.tokens > 0 || !self.express.is_empty() {
            return Some(last);
        }
        let debt = self.tokens.unsigned_abs() + 1;
        let us = debt.div_ceil(self.rate());
        Some(last + Duration::from_micros(us))
    }
}

#[cfg(test)]
mod tests;
