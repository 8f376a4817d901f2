//! The emulated link of one direction of one path, sans-IO: a plain struct driven
//! by the caller's clock (`now`, nanoseconds of CLOCK_MONOTONIC in the shell,
//! any monotonic count in tests). It reads no clock and does no I/O, so every
//! departure time it computes can be checked exactly in unit tests, and a late
//! wake-up of the process never changes a frame's schedule.
//!
//! The model, in the order a frame meets it:
//! 1. cut: while the link is cut, every arrival is dropped;
//! 2. loss: Bernoulli drop with probability `loss` (seeded RNG);
//! 3. bottleneck queue: a FIFO of frames waiting for the link; an arrival that
//!    would push the queued bytes (the frame being serialised does not count)
//!    over `limit` is tail-dropped;
//! 4. serialisation at `rate` bits/s over the whole frame: a frame starts at
//!    max(link free, its arrival) and finishes `len * 8 / rate` later;
//! 5. propagation: delivered at finish + delay + uniform jitter in
//!    [-jitter, +jitter] (total delay never below zero), and never before the
//!    previous frame's delivery (a single link does not reorder).
//!
//! Parameter changes take effect for frames that have not started serialising;
//! a cut also drops everything queued or in flight.
//!
//! Call pattern (the shell's loop): [`Direction::arrive`] for each received
//! frame, then [`Direction::poll`] until it returns `None` and send what it
//! returns, then sleep until [`Direction::next_deadline`] or the next arrival.

use std::collections::VecDeque;

use crate::units::{Limit, Nanos, NANOS_PER_SEC};

/// The default queue limit when none is configured: 50 ms at the current rate...
pub const DEFAULT_LIMIT_TIME: Nanos = 50_000_000;
/// ...but at least this many bytes, so a slow link still holds a few frames.
pub const DEFAULT_LIMIT_MIN_BYTES: u64 = 16 * 1024;

/// A frame the model can carry: all it needs is the length on the wire.
pub trait Frame {
    /// Bytes counted for serialisation: the whole Ethernet frame as the packet
    /// socket sees it (MAC header included, no preamble or FCS).
    fn wire_len(&self) -> usize;
}

impl Frame for Vec<u8> {
    fn wire_len(&self) -> usize {
        self.len()
    }
}

/// The emulation settings of one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Bottleneck rate in bits per second; 0 means unlimited (no serialisation).
    pub rate: u64,
    /// One-way propagation delay.
    pub delay: Nanos,
    /// Half-width of the uniform jitter added to `delay`.
    pub jitter: Nanos,
    /// Probability in [0, 1] that an arriving frame is lost.
    pub loss: f64,
    /// Queue limit; `None` is the default (50 ms at the rate, at least 16 KiB).
    pub limit: Option<Limit>,
}

impl Default for Params {
    /// No emulation at all: unlimited rate, no delay, no loss.
    fn default() -> Self {
        Params {
            rate: 0,
            delay: 0,
            jitter: 0,
            loss: 0.0,
            limit: None,
        }
    }
}

impl Params {
    /// The queue limit in bytes at the current rate.
    pub fn limit_bytes(&self) -> u64 {
        let at_rate = |t: Nanos| -> u64 {
            if self.rate == 0 {
                u64::MAX
            } else {
                let bytes = u128::from(self.rate) * u128::from(t) / (8 * u128::from(NANOS_PER_SEC));
                u64::try_from(bytes).unwrap_or(u64::MAX)
            }
        };
        match self.limit {
            None => at_rate(DEFAULT_LIMIT_TIME).max(DEFAULT_LIMIT_MIN_BYTES),
            Some(Limit::Time(t)) => at_rate(t),
            Some(Limit::Bytes(b)) => b,
        }
    }
}

/// Why a frame was dropped. The last two are decided by the shell, which
/// records them with [`Direction::count_drop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss.
    Loss,
    /// Tail drop: the queue was full.
    Queue,
    /// The link was cut (arrival, queued or in flight).
    Cut,
    /// Larger than the egress MTU allows (a GSO super-frame from a peer with
    /// TSO/GSO on), never entered the model.
    Oversize,
    /// The kernel refused to send it.
    SendError,
}

impl DropReason {
    /// Every reason, in the order of the stats table.
    pub const ALL: [DropReason; 5] = [
        DropReason::Loss,
        DropReason::Queue,
        DropReason::Cut,
        DropReason::Oversize,
        DropReason::SendError,
    ];

    /// The column name in the stats table.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Queue => "queue",
            DropReason::Cut => "cut",
            DropReason::Oversize => "oversize",
            DropReason::SendError => "send-err",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What happened to an arriving frame.
#[derive(Debug, PartialEq)]
pub enum Verdict<T> {
    /// Queued or serialising; [`Direction::poll`] returns it when it is due.
    Accepted,
    /// Dropped; the frame is handed back so its buffer can be reused.
    Dropped(DropReason, T),
}

/// Lateness above which a delivery is counted in [`Stats::late_notable`]:
/// 1 ms, 5% of a 20 ms link delay.
pub const LATE_NOTABLE: Nanos = 1_000_000;

/// Counters of one direction since it was created.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Frames delivered (returned by `poll`).
    pub forwarded_frames: u64,
    /// Bytes delivered (wire length).
    pub forwarded_bytes: u64,
    /// Frames dropped, indexed like [`DropReason::ALL`].
    pub drops: [u64; 5],
    /// Frames that started serialisation (the population of the queue-delay stats).
    pub started_frames: u64,
    /// Sum of the queue delays (start of serialisation minus arrival).
    pub queue_delay_sum: u128,
    /// Largest queue delay seen.
    pub queue_delay_max: Nanos,
    /// Sum of the delivery lateness (`poll`'s `now` minus the frame's exact
    /// departure time): the error the shell's wake-ups add to the model.
    pub late_sum: u128,
    /// Largest delivery lateness seen.
    pub late_max: Nanos,
    /// Frames delivered more than [`LATE_NOTABLE`] after their departure time.
    pub late_notable: u64,
}

impl Stats {
    /// Frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Mean delivery lateness, 0 when nothing was delivered.
    pub fn late_mean(&self) -> Nanos {
        match self.forwarded_frames {
            0 => 0,
            n => u64::try_from(self.late_sum / u128::from(n)).unwrap_or(u64::MAX),
        }
    }

    /// Mean queue delay, 0 when nothing has started.
    pub fn queue_delay_mean(&self) -> Nanos {
        match self.started_frames {
            0 => 0,
            n => u64::try_from(self.queue_delay_sum / u128::from(n)).unwrap_or(u64::MAX),
        }
    }
}

struct Waiting<T> {
    arrival: Nanos,
    frame: T,
}

struct InFlight<T> {
    deliver: Nanos,
    frame: T,
}

/// One direction of one emulated link. See the module documentation.
pub struct Direction<T> {
    params: Params,
    limit_bytes: u64,
    rng: Rng,
    cut: bool,
    /// Frames waiting for the link, FIFO.
    queue: VecDeque<Waiting<T>>,
    queued_bytes: u64,
    /// When the frame being serialised (if any) finishes.
    link_free: Nanos,
    /// Delivery time of the last frame started: later frames are not delivered before.
    last_delivery: Nanos,
    /// Frames serialising or propagating, in delivery order.
    in_flight: VecDeque<InFlight<T>>,
    /// The latest `now` seen, so a caller's clock going backwards cannot
    /// reorder anything.
    latest: Nanos,
    stats: Stats,
}

impl<T: Frame> Direction<T> {
    /// A link with these settings; `seed` drives loss and jitter.
    pub fn new(params: Params, seed: u64) -> Self {
        Direction {
            limit_bytes: params.limit_bytes(),
            params,
            rng: Rng::new(seed),
            cut: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            link_free: 0,
            last_delivery: 0,
            in_flight: VecDeque::new(),
            latest: 0,
            stats: Stats::default(),
        }
    }

    /// A frame arrived at `now`. Call for each received frame, with `now` no
    /// earlier than in previous calls.
    pub fn arrive(&mut self, now: Nanos, frame: T) -> Verdict<T> {
        let now = self.advance(now);
        if self.cut {
            return self.reject(DropReason::Cut, frame);
        }
        if self.params.loss > 0.0 && self.rng.next_f64() < self.params.loss {
            return self.reject(DropReason::Loss, frame);
        }
        let len = frame.wire_len() as u64;
        if self.queue.is_empty() && self.link_free <= now {
            self.start(
                Waiting {
                    arrival: now,
                    frame,
                },
                now,
            );
        } else if self.queued_bytes.saturating_add(len) > self.limit_bytes {
            return self.reject(DropReason::Queue, frame);
        } else {
            self.queued_bytes += len;
            self.queue.push_back(Waiting {
                arrival: now,
                frame,
            });
        }
        Verdict::Accepted
    }

    /// The next frame due for delivery at `now`, if any. Call until it returns
    /// `None` whenever `now` reaches [`Direction::next_deadline`] (earlier calls
    /// are harmless).
    pub fn poll(&mut self, now: Nanos) -> Option<T> {
        let now = self.advance(now);
        if self.in_flight.front()?.deliver > now {
            return None;
        }
        let f = self.in_flight.pop_front()?;
        let late = now - f.deliver;
        self.stats.late_sum += u128::from(late);
        self.stats.late_max = self.stats.late_max.max(late);
        self.stats.late_notable += u64::from(late > LATE_NOTABLE);
        self.stats.forwarded_frames += 1;
        self.stats.forwarded_bytes += f.frame.wire_len() as u64;
        Some(f.frame)
    }

    /// When [`Direction::poll`] next has something to do, if ever (without
    /// new arrivals).
    pub fn next_deadline(&self) -> Option<Nanos> {
        // Deliveries are in order, so the head of `in_flight` is due first, and
        // no queued frame can be delivered before it. With nothing in flight,
        // the queue's head must be started (jitter and rate fixed) when the
        // link frees.
        if let Some(f) = self.in_flight.front() {
            Some(f.deliver)
        } else {
            self.queue.front().map(|w| self.link_free.max(w.arrival))
        }
    }

    /// Cuts the link at `now`: every frame queued or in flight is dropped and
    /// handed back, and arrivals are dropped until [`Direction::restore`].
    pub fn cut(&mut self, now: Nanos) -> impl Iterator<Item = T> + '_ {
        let now = self.advance(now);
        self.cut = true;
        let n = (self.queue.len() + self.in_flight.len()) as u64;
        self.stats.drops[DropReason::Cut.index()] += n;
        self.queued_bytes = 0;
        // The frame being serialised is gone: the link is free again.
        self.link_free = now;
        self.last_delivery = now;
        self.queue
            .drain(..)
            .map(|w| w.frame)
            .chain(self.in_flight.drain(..).map(|f| f.frame))
    }

    /// Ends a cut: arrivals from `now` on are carried again.
    pub fn restore(&mut self, now: Nanos) {
        self.advance(now);
        self.cut = false;
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// New settings from `now` on; frames already serialising keep their
    /// schedule, queued ones use the new rate and delay when they start.
    pub fn set_params(&mut self, now: Nanos, params: Params) {
        self.advance(now);
        self.limit_bytes = params.limit_bytes();
        self.params = params;
    }

    /// The current settings.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Records a drop decided outside the model (oversize, send error).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.stats.drops[reason.index()] += 1;
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes waiting in the queue (not counting the frame being serialised).
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// The queue limit in bytes at the current rate.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    fn reject(&mut self, reason: DropReason, frame: T) -> Verdict<T> {
        self.stats.drops[reason.index()] += 1;
        Verdict::Dropped(reason, frame)
    }

    /// Starts every queued frame whose start time has come by `now`, at its
    /// exact start time (not at `now`), and returns the clamped `now`.
    fn advance(&mut self, now: Nanos) -> Nanos {
        let now = now.max(self.latest);
        self.latest = now;
        while let Some(w) = self.queue.front() {
            let start = self.link_free.max(w.arrival);
            if start > now {
                break;
            }
            if let Some(w) = self.queue.pop_front() {
                self.queued_bytes -= w.frame.wire_len() as u64;
                self.start(w, start);
            }
        }
        now
    }

    fn start(&mut self, w: Waiting<T>, start: Nanos) {
        let finish = start + serialisation(w.frame.wire_len(), self.params.rate);
        self.link_free = finish;
        let deliver = (finish + self.sample_delay()).max(self.last_delivery);
        self.last_delivery = deliver;
        let waited = start - w.arrival;
        self.stats.started_frames += 1;
        self.stats.queue_delay_sum += u128::from(waited);
        self.stats.queue_delay_max = self.stats.queue_delay_max.max(waited);
        self.in_flight.push_back(InFlight {
            deliver,
            frame: w.frame,
        });
    }

    fn sample_delay(&mut self) -> Nanos {
        let j = self.params.jitter;
        if j == 0 {
            return self.params.delay;
        }
        let offset = self.rng.below(2 * j + 1);
        (self.params.delay + offset).saturating_sub(j)
    }
}

/// Time to serialise `len` bytes at `rate` bits/s (0 = unlimited), in ns,
/// rounded to the nearest nanosecond.
pub fn serialisation(len: usize, rate: u64) -> Nanos {
    if rate == 0 {
        return 0;
    }
    let bits = len as u128 * 8 * u128::from(NANOS_PER_SEC);
    let r = u128::from(rate);
    u64::try_from((bits + r / 2) / r).unwrap_or(u64::MAX)
}

/// xoshiro256++ (Blackman and Vigna, <https://prng.di.unimi.it/>), seeded by
/// splitmix64: small, fast, and plenty for loss and jitter draws.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose sequence depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-64 * n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Mixes a base seed with a path index and direction so each direction has its
/// own independent sequence.
pub fn derive_seed(base: u64, path: usize, dir: usize) -> u64 {
    let mut r =
        Rng::new(base ^ ((path as u64) << 1 | dir as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64()
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
