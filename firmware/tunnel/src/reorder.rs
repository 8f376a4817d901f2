//! The receiver's reorder buffer: puts the packets of each flow of one traffic
//! class back in order, drops duplicates (the second copy of a redundant
//! packet) and late packets, and never holds a flow for longer than its
//! release timeout.
//!
//! # Per-flow order
//! Every packet names its flow's previous packet (`pred`, a distance back in
//! the class's sequence, see [`crate::wire::InnerRepr`]) and waits only for that
//! one: a packet whose predecessor was delivered or given up on, or that has
//! none, leaves at once. One flow's packet on a slow path (a bulk TCP flow
//! spilling onto a satellite) then holds that flow alone, not every packet of
//! the class behind it. A sender that names `seq - 1` every time gets the
//! class's sequence order. Holes no packet waits for cost nothing; they are
//! given up on when the sequence moves a capacity past them.
//!
//! # Bound
//! A buffer holds at most its capacity in packets (a ring indexed by sequence
//! number), allocated as they arrive and freed as they leave: at most
//! `capacity x MTU` bytes. The aggregate class uses [`CAPACITY`] = 2048 (3 MiB at
//! 1500 bytes; what 300 ms of delay spread at 50 Mbit/s needs, since packets
//! carried by a satellite path arrive that much after later packets carried by
//! DSL); the redundant class, low-rate by nature, 256. A packet more than the
//! capacity ahead of the oldest unresolved one forces the head forward (what was
//! missing counts as lost), so memory never grows beyond the bound. What it
//! releases of the aggregate class then waits in [`crate::release`], which has
//! its own bound. Beside the packets, a queue of when each waiting packet came
//! (16 bytes an entry, under two capacities: 64 KiB for [`CAPACITY`]) finds
//! the oldest one without a scan.
//!
//! # Timeout
//! A packet whose predecessor is missing waits at most `timeout` from its
//! arrival; then the missing packet its flow waits for is given up on, with
//! every hole before it (the flow's own older packets are among them, and
//! the timeout covers the paths' delay spread, so anything sent before it is
//! lost or very late), and the flow moves on. The timeout adapts in
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
//! repair ([`Sent::Repair`]) that arrives too late is dropped like any
//! late packet, but teaches nothing about lateness: it was late by design.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;
use crate::wire::{MAX_PRED, SEQ_MASK};

/// Packets the aggregate class's buffer holds at most.
pub const CAPACITY: usize = 2048;

/// The largest buffer: a predecessor a capacity or more back is behind the
/// head (the ring never spans more than its capacity), so reading it as
/// "none" is right; but a sender names none past [`MAX_PRED`], so a larger
/// ring would let a packet pass one it should wait for.
pub const MAX_CAPACITY: usize = MAX_PRED as usize + 1;
const _: () = assert!(CAPACITY <= MAX_CAPACITY && MAX_CAPACITY.is_power_of_two());
/// Shortest release timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(2);
/// Longest release timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(700);

/// Counters of a reorder buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Packets delivered.
    pub delivered: u64,
    /// Packets that arrived before their flow's previous packet and waited.
    pub reordered: u64,
    /// Second copies (and replays of delivered sequence numbers) dropped.
    pub duplicates: u64,
    /// Packets that arrived after their place was skipped.
    pub late: u64,
    /// Sequence numbers given up on (on timeout or overflow).
    pub skipped: u64,
    /// Holes filled by a repair (a packet the peer sent again).
    pub repaired: u64,
}

struct Slot {
    seq: u32,
    /// The flow's previous packet, which this one waits for.
    pred: u32,
    arrived: Instant,
    packet: Vec<u8>,
}

/// What the buffer knows of one sequence number at or after the head.
enum Entry {
    /// Nothing has arrived.
    Empty,
    /// Arrived, waiting for its flow's previous packet.
    Held(Slot),
    /// Delivered ahead of the head.
    Done(u32),
    /// Given up on ahead of the head.
    Skipped(u32),
}

/// How a packet came to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Its first transmission.
    First,
    /// Again, because the receiver reported it missing. One that comes too
    /// late is dropped like any late packet, but teaches nothing about
    /// lateness: it was late by design.
    Repair,
    /// A copy: the second copy of a redundant-class packet, or a padding copy
    /// of a recent one. A copy behind the head is a duplicate even where the
    /// buffer no longer remembers its place (padding on a satellite comes
    /// 300 ms after its original), and teaches nothing about lateness either.
    Copy,
}

/// No packet waits (in [`Reorder::waiter`]).
const NONE: u32 = u32::MAX;

/// One class's reorder buffer.
pub struct Reorder {
    /// The oldest sequence number neither delivered nor given up on; `None`
    /// until the first packet.
    next: Option<u32>,
    /// Indexed by sequence number modulo their count (a power of two).
    slots: Vec<Entry>,
    /// Indexed like `slots`: the held packet waiting for that sequence number
    /// (each packet is the predecessor of at most one other), or [`NONE`].
    waiter: Vec<u32>,
    held: usize,
    /// The held packets in the order they arrived, as (arrival, sequence
    /// number), with those released since still in it: the front is trimmed
    /// to a held one after every release, so the oldest waiting packet is
    /// found without a scan of the ring (one per packet received, through
    /// [`Reorder::deadline`], cost a scan of every slot each). It stays under
    /// twice the capacity without pruning: while its front packet waits, the
    /// head cannot pass it, so every packet held since has a sequence number
    /// in the window from the head at that time to a capacity past the front
    /// one (under two capacities), and each is held at most once.
    arrivals: VecDeque<(Instant, u32)>,
    /// Sequence numbers delivered or skipped recently, to tell duplicates from
    /// late packets: bit i of `seen` is `next - 1 - i`.
    seen: u128,
    lateness_us: u64,
    floor: Duration,
    /// Holes wait for a requested repair until then.
    hold_until: Option<Instant>,
    stats: ReorderStats,
}

/// Serial-number comparison (RFC 1982) on 20-bit sequence numbers: is `a`
/// before `b`?
fn before(a: u32, b: u32) -> bool {
    let d = b.wrapping_sub(a) & SEQ_MASK;
    d != 0 && d <= SEQ_MASK / 2
}

/// How far `b` is after `a`, modulo the sequence space.
fn after(a: u32, b: u32) -> u32 {
    b.wrapping_sub(a) & SEQ_MASK
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

    /// An empty buffer holding at most `capacity` packets, rounded up to a
    /// power of two and at most [`MAX_CAPACITY`] (its slot table is allocated
    /// here; packets as they arrive).
    pub fn with_capacity(capacity: usize) -> Self {
        let cap = capacity.clamp(2, MAX_CAPACITY).next_power_of_two();
        Self {
            next: None,
            slots: (0..cap).map(|_| Entry::Empty).collect(),
            waiter: alloc::vec![NONE; cap],
            held: 0,
            arrivals: VecDeque::new(),
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

    /// Takes in a packet with sequence number `seq` whose flow's previous
    /// packet is `pred` sequence numbers back (0: none), sent as `sent` says.
    /// It goes to `deliver` at once if that one was delivered or given up on,
    /// and so do any waiting packets it unblocks; `deliver`'s second argument
    /// says whether the packet waited here.
    pub fn push(
        &mut self,
        now: Instant,
        seq: u32,
        pred: u16,
        sent: Sent,
        packet: &[u8],
        deliver: &mut impl FnMut(&[u8], bool),
    ) {
        let repair = sent == Sent::Repair;
        let first = sent == Sent::First;
        let seq = seq & SEQ_MASK;
        let next = *self.next.get_or_insert(seq);
        if before(seq, next) {
            let age = after(seq, next) - 1;
            let remembered = age < 128;
            if (remembered && self.seen & (1u128 << age) != 0) || (!remembered && !first) {
                self.stats.duplicates += 1;
            } else {
                self.late(first);
            }
            return;
        }
        let cap = self.slots.len();
        if after(next, seq) as usize >= cap {
            // Too far ahead: give up on the oldest missing packets to make room.
            let target = seq.wrapping_sub(cap as u32 - 1) & SEQ_MASK;
            let mut guard = 0;
            while self.next.is_some_and(|n| before(n, target)) && guard < cap {
                guard += 1;
                self.advance(deliver);
            }
            // A capacity of steps empties the ring: the rest of a longer jump
            // was never seen.
            if let Some(n) = self.next.filter(|&n| before(n, target)) {
                self.stats.skipped += u64::from(after(n, target));
                self.seen = 0;
                self.next = Some(target);
            }
        }
        let idx = self.index(seq);
        match self.slots[idx] {
            Entry::Held(ref s) if s.seq == seq => return self.stats.duplicates += 1,
            Entry::Done(s) if s == seq => return self.stats.duplicates += 1,
            Entry::Skipped(s) if s == seq => return self.late(first),
            _ => {}
        }
        if repair {
            self.stats.repaired += 1;
        }
        // A packet some flow waits for: learn how late holes fill.
        if first {
            if let Some(waited) = self.waiting_for(seq).map(|s| s.arrived) {
                let waited = now.saturating_since(waited).as_micros() as u64;
                self.lateness_us = (self.lateness_us * 7 + waited) / 8;
            }
        }
        let pred = (pred != 0 && usize::from(pred) < cap)
            .then(|| seq.wrapping_sub(pred.into()) & SEQ_MASK);
        match pred.filter(|&p| !self.resolved(p)) {
            None => {
                self.stats.delivered += 1;
                deliver(packet, false);
                self.slots[idx] = Entry::Done(seq);
                self.release_after(seq, deliver);
            }
            Some(pred) => {
                if first {
                    self.stats.reordered += 1;
                }
                self.slots[idx] = Entry::Held(Slot {
                    seq,
                    pred,
                    arrived: now,
                    packet: packet.to_vec(),
                });
                let w = self.index(pred);
                self.waiter[w] = seq;
                self.held += 1;
                self.arrivals.push_back((now, seq));
            }
        }
    }

    fn index(&self, seq: u32) -> usize {
        seq as usize & (self.slots.len() - 1)
    }

    /// Is the packet that arrived at `arrived` as `seq` still held?
    fn is_held(&self, arrived: Instant, seq: u32) -> bool {
        matches!(&self.slots[self.index(seq)], Entry::Held(s) if s.seq == seq && s.arrived == arrived)
    }

    /// Drops released packets from the front of [`Reorder::arrivals`].
    fn trim_arrivals(&mut self) {
        while let Some(&(t, s)) = self.arrivals.front() {
            if self.is_held(t, s) {
                return;
            }
            self.arrivals.pop_front();
        }
    }

    /// Counts a packet that came after its place was given up on; a first
    /// transmission teaches that holes wait too little.
    fn late(&mut self, first: bool) {
        self.stats.late += 1;
        if first {
            // We gave up too early: wait longer from now on.
            self.lateness_us = (self.lateness_us * 2).clamp(1_000, MAX_TIMEOUT.as_micros() as u64);
        }
    }

    /// Was `seq` (at or after the head) delivered or given up on?
    fn resolved(&self, seq: u32) -> bool {
        let Some(next) = self.next else { return true };
        if before(seq, next) {
            return true;
        }
        match self.slots[self.index(seq)] {
            Entry::Done(s) | Entry::Skipped(s) => s == seq,
            Entry::Empty | Entry::Held(_) => false,
        }
    }

    /// The held packet waiting for `seq`, if any.
    fn waiting_for(&self, seq: u32) -> Option<&Slot> {
        let w = self.waiter[self.index(seq)];
        if w == NONE {
            return None;
        }
        match &self.slots[self.index(w)] {
            Entry::Held(s) if s.seq == w && s.pred == seq => Some(s),
            _ => None,
        }
    }

    /// `seq` was just delivered or given up on: delivers the chain of packets
    /// that waited for it, then moves the head past whatever is resolved.
    fn release_after(&mut self, seq: u32, deliver: &mut impl FnMut(&[u8], bool)) {
        let mut p = seq;
        for _ in 0..self.slots.len() {
            let Some(w) = self.waiting_for(p).map(|s| s.seq) else {
                break;
            };
            let pi = self.index(p);
            self.waiter[pi] = NONE;
            let wi = self.index(w);
            if let Entry::Held(s) = core::mem::replace(&mut self.slots[wi], Entry::Done(w)) {
                self.held -= 1;
                self.stats.delivered += 1;
                deliver(&s.packet, true);
            }
            p = w;
        }
        self.compact();
        self.trim_arrivals();
    }

    /// Moves the head past every delivered or skipped sequence number.
    fn compact(&mut self) {
        for _ in 0..self.slots.len() {
            let Some(n) = self.next else { return };
            let idx = self.index(n);
            let delivered = match self.slots[idx] {
                Entry::Done(s) if s == n => true,
                Entry::Skipped(s) if s == n => false,
                _ => return,
            };
            self.slots[idx] = Entry::Empty;
            self.waiter[idx] = NONE;
            self.seen = (self.seen << 1) | u128::from(delivered);
            self.next = Some(n.wrapping_add(1) & SEQ_MASK);
        }
    }

    /// Gives up on the missing `seq` and releases what waited for it.
    fn skip(&mut self, seq: u32, deliver: &mut impl FnMut(&[u8], bool)) {
        let idx = self.index(seq);
        if matches!(self.slots[idx], Entry::Empty) {
            self.stats.skipped += 1;
            self.slots[idx] = Entry::Skipped(seq);
            self.release_after(seq, deliver);
        }
    }

    /// Moves the head one forward, giving up on it if it is missing. A packet
    /// waiting at the head leaves: its predecessor is behind the head.
    fn advance(&mut self, deliver: &mut impl FnMut(&[u8], bool)) {
        let Some(n) = self.next else { return };
        match self.slots[self.index(n)] {
            Entry::Empty => self.skip(n, deliver),
            Entry::Held(_) => self.release_held(n, deliver),
            Entry::Done(_) | Entry::Skipped(_) => self.compact(),
        }
    }

    /// Delivers the waiting packet `seq`, whose predecessor is resolved
    /// though it was not released by it (a peer that named one predecessor
    /// for two packets), and what waited for it.
    fn release_held(&mut self, seq: u32, deliver: &mut impl FnMut(&[u8], bool)) {
        let idx = self.index(seq);
        if let Entry::Held(s) = core::mem::replace(&mut self.slots[idx], Entry::Done(seq)) {
            self.held -= 1;
            self.stats.delivered += 1;
            deliver(&s.packet, true);
        }
        self.release_after(seq, deliver);
    }

    /// The oldest waiting packet: its arrival, the packet its flow waits for
    /// (through any waiting predecessors), and the waiting packet that names
    /// it.
    fn oldest_waiting(&self) -> Option<(Instant, u32, u32)> {
        if self.held == 0 {
            return None;
        }
        let &(_, seq) = self.arrivals.front()?;
        let Entry::Held(oldest) = &self.slots[self.index(seq)] else {
            debug_assert!(false, "the front of arrivals is always held");
            return None;
        };
        let (mut blocked, mut missing) = (oldest.seq, oldest.pred);
        for _ in 0..self.slots.len() {
            match &self.slots[self.index(missing)] {
                Entry::Held(s) if s.seq == missing => (blocked, missing) = (s.seq, s.pred),
                _ => break,
            }
        }
        Some((oldest.arrived, missing, blocked))
    }

    /// When the oldest waiting packet's timeout expires, if any wait.
    pub fn deadline(&self) -> Option<Instant> {
        let (oldest, _, _) = self.oldest_waiting()?;
        let timeout = oldest + self.timeout();
        Some(match self.hold_until {
            Some(h) => timeout.max(h.min(oldest + MAX_TIMEOUT)),
            None => timeout,
        })
    }

    /// Gives up on the missing packets that timed-out packets wait for, and
    /// on every hole before them, delivering what they held.
    pub fn on_timeout(&mut self, now: Instant, deliver: &mut impl FnMut(&[u8], bool)) {
        let mut guard = 0;
        while self.deadline().is_some_and(|d| d <= now) && guard < self.slots.len() {
            guard += 1;
            let Some((_, missing, blocked)) = self.oldest_waiting() else {
                return;
            };
            if self.resolved(missing) {
                self.release_held(blocked, deliver);
                continue;
            }
            // Give up on every hole up to it: the flow's own older packets
            // (which it did not name) are among them, and any packet sent
            // before it would have come within the timeout, which covers
            // the paths' delay spread.
            let mut steps = 0;
            while self.next.is_some_and(|n| !before(missing, n)) && steps < self.slots.len() {
                steps += 1;
                self.advance(deliver);
            }
        }
    }
}

#[cfg(test)]
mod tests;
