//! The receiver's reorder buffer: puts the packets of one traffic class back in
//! sequence order, drops duplicates (the second copy of a redundant packet) and
//! late packets, and never holds the flow for longer than its release timeout.
//!
//! # Bound
//! A buffer holds at most its capacity in packets (a ring indexed by sequence
//! number), allocated as they arrive and freed as they leave: at most
//! `capacity x MTU` bytes. The aggregate class uses [`CAPACITY`] = 2048 (3 MiB at
//! 1500 bytes; what 300 ms of delay spread at 50 Mbit/s needs, since packets
//! carried by a satellite path arrive that much after later packets carried by
//! DSL); the redundant class, low-rate by nature, 256. A packet more than the
//! capacity ahead of the next expected one forces the head forward (what was
//! missing counts as lost), so memory never grows beyond the bound. What it
//! releases of the aggregate class then waits in [`crate::release`], which has
//! its own bound.
//!
//! # Timeout
//! When the next expected packet is missing, the packets behind it wait at most
//! `timeout` (from the arrival of the oldest waiting one). The timeout adapts in
//! two ways, and is the larger of:
//! * the current one-way-delay spread between the paths in use, plus their
//!   jitter, which the connection measures and sets with [`Reorder::set_floor`]: a
//!   packet sent on the slow path can be that much behind one sent later on the
//!   fast path;
//! * twice a smoothed "lateness" (how long holes really took to fill), plus 2 ms,
//!   doubled each time a packet arrives after its hole was given up on.
//!
//! It is clamped to [2 ms, 700 ms] (a satellite path has 600 ms of one-way delay). With the earliest-arrival scheduler, holes
//! usually fill within a millisecond or two, so a lost packet costs little.
//!
//! # Repair
//! When the connection has asked the peer to send lost packets again, it calls
//! [`Reorder::hold`]: holes wait until then for the repair, even past their
//! timeout (still at most [`MAX_TIMEOUT`] from the oldest waiting packet). A
//! repair ([`Reorder::push_repair`]) that arrives too late is dropped like any
//! late packet, but teaches nothing about lateness: it was late by design.

use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;

/// Packets the aggregate class's buffer holds at most.
pub const CAPACITY: usize = 2048;
/// Shortest release timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(2);
/// Longest release timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(700);

/// Counters of a reorder buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Packets delivered in order.
    pub delivered: u64,
    /// Packets that arrived ahead of a hole and waited.
    pub reordered: u64,
    /// Second copies (and replays of delivered sequence numbers) dropped.
    pub duplicates: u64,
    /// Packets that arrived after their place was skipped.
    pub late: u64,
    /// Sequence numbers given up on (holes skipped on timeout or overflow).
    pub skipped: u64,
    /// Holes filled by a repair (a packet the peer sent again).
    pub repaired: u64,
}

struct Slot {
    seq: u32,
    arrived: Instant,
    packet: Vec<u8>,
}

/// One class's reorder buffer.
pub struct Reorder {
    /// Next sequence number to deliver; `None` until the first packet.
    next: Option<u32>,
    slots: Vec<Option<Slot>>,
    held: usize,
    /// Sequence numbers delivered or skipped recently, to tell duplicates from
    /// late packets: bit i of `seen` is `next - 1 - i`.
    seen: u128,
    lateness_us: u64,
    floor: Duration,
    /// Holes wait for a requested repair until then.
    hold_until: Option<Instant>,
    stats: ReorderStats,
}

/// Serial-number comparison (RFC 1982): is `a` before `b`?
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Default for Reorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Reorder {
    /// An empty buffer of [`CAPACITY`] packets.
    pub fn new() -> Self {
        Self::with_capacity(CAPACITY)
    }

    /// An empty buffer holding at most `capacity` packets (its slot table is
    /// allocated here; packets as they arrive).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            next: None,
            slots: (0..capacity.max(2)).map(|_| None).collect(),
            held: 0,
            seen: 0,
            lateness_us: 0,
            floor: Duration::ZERO,
            hold_until: None,
            stats: ReorderStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Packets waiting.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The current release timeout.
    pub fn timeout(&self) -> Duration {
        let learnt = Duration::from_micros(2 * self.lateness_us) + MIN_TIMEOUT;
        learnt.max(self.floor).clamp(MIN_TIMEOUT, MAX_TIMEOUT)
    }

    /// Sets the delay spread (plus jitter) of the paths in use: no hole is given
    /// up on sooner.
    pub fn set_floor(&mut self, floor: Duration) {
        self.floor = floor;
    }

    /// Holes wait until `until` for a repair (clamped to [`MAX_TIMEOUT`] from now).
    pub fn hold(&mut self, now: Instant, until: Instant) {
        let until = until.min(now + MAX_TIMEOUT);
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
    }

    /// Takes in a packet with sequence number `seq`. In-order packets, and any
    /// waiting ones they unblock, go to `deliver` at once.
    pub fn push(&mut self, now: Instant, seq: u32, packet: &[u8], deliver: &mut impl FnMut(&[u8])) {
        self.insert(now, seq, packet, false, deliver);
    }

    /// Like [`Reorder::push`] for a repair: a packet sent again because its
    /// first copy was reported missing.
    pub fn push_repair(
        &mut self,
        now: Instant,
        seq: u32,
        packet: &[u8],
        deliver: &mut impl FnMut(&[u8]),
    ) {
        self.insert(now, seq, packet, true, deliver);
    }

    fn insert(
        &mut self,
        now: Instant,
        seq: u32,
        packet: &[u8],
        repair: bool,
        deliver: &mut impl FnMut(&[u8]),
    ) {
        let next = *self.next.get_or_insert(seq);
        if before(seq, next) {
            let age = next.wrapping_sub(seq) - 1;
            if age < 128 && self.seen & (1u128 << age) != 0 {
                self.stats.duplicates += 1;
            } else if repair {
                self.stats.late += 1;
            } else {
                self.stats.late += 1;
                // We gave up too early: wait longer from now on.
                self.lateness_us =
                    (self.lateness_us * 2).clamp(1_000, MAX_TIMEOUT.as_micros() as u64);
            }
            return;
        }
        let cap = self.slots.len();
        let ahead = seq.wrapping_sub(next) as usize;
        if ahead >= cap {
            // Too far ahead: give up on the oldest missing packets to make room.
            let target = seq.wrapping_sub(cap as u32 - 1);
            while self.next.is_some_and(|n| before(n, target)) {
                self.advance(deliver);
            }
        }
        let idx = seq as usize % cap;
        if self.slots[idx].as_ref().is_some_and(|s| s.seq == seq) {
            self.stats.duplicates += 1;
            return;
        }
        if repair {
            self.stats.repaired += 1;
        } else if Some(seq) != self.next {
            self.stats.reordered += 1;
        }
        self.slots[idx] = Some(Slot {
            seq,
            arrived: now,
            packet: packet.to_vec(),
        });
        self.held += 1;
        // A packet filling the head hole: learn how late holes fill.
        if Some(seq) == self.next && self.held > 1 && !repair {
            if let Some(oldest) = self.oldest_waiting() {
                let waited = now.saturating_since(oldest).as_micros() as u64;
                self.lateness_us = (self.lateness_us * 7 + waited) / 8;
            }
        }
        self.release(deliver);
    }

    fn oldest_waiting(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|s| s.arrived).min()
    }

    /// Delivers the head and everything in sequence after it.
    fn release(&mut self, deliver: &mut impl FnMut(&[u8])) {
        while self.deliver_head(deliver) {}
    }

    /// Moves the head one forward: delivers it if present, else counts it skipped.
    fn advance(&mut self, deliver: &mut impl FnMut(&[u8])) {
        if self.next.is_some() && !self.deliver_head(deliver) {
            self.stats.skipped += 1;
            self.mark_seen(false);
        }
    }

    /// Delivers the head packet and moves past it, if it is here; false if it
    /// is missing (or there is no head yet).
    fn deliver_head(&mut self, deliver: &mut impl FnMut(&[u8])) -> bool {
        let Some(n) = self.next else { return false };
        let idx = n as usize % self.slots.len();
        match self.slots[idx].take() {
            Some(slot) if slot.seq == n => {
                self.held -= 1;
                self.stats.delivered += 1;
                deliver(&slot.packet);
                self.mark_seen(true);
                true
            }
            other => {
                self.slots[idx] = other;
                false
            }
        }
    }

    fn mark_seen(&mut self, delivered: bool) {
        self.seen = (self.seen << 1) | u128::from(delivered);
        self.next = self.next.map(|n| n.wrapping_add(1));
    }

    /// When the oldest waiting packet's timeout expires, if any wait.
    pub fn deadline(&self) -> Option<Instant> {
        let oldest = self.oldest_waiting().filter(|_| self.held > 0)?;
        let timeout = oldest + self.timeout();
        Some(match self.hold_until {
            Some(h) => timeout.max(h.min(oldest + MAX_TIMEOUT)),
            None => timeout,
        })
    }

    /// Skips holes whose waiting packets have timed out, delivering what follows.
    pub fn on_timeout(&mut self, now: Instant, deliver: &mut impl FnMut(&[u8])) {
        let mut guard = 0;
        while self.deadline().is_some_and(|d| d <= now) && guard < self.slots.len() {
            guard += 1;
            // Skip up to the oldest waiting packet, then release what is in order.
            self.advance(deliver);
            self.release(deliver);
        }
    }
}

#[cfg(test)]
mod tests;
