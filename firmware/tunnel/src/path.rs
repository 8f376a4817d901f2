//! One WAN path as the sender sees it: round-trip time, one-way delay trend,
//! loss, delivery rate, a pacer, and the liveness state machine
//! probing -> up -> degraded -> down -> probing.
//!
//! Everything is learnt from the peer's per-path reports (see
//! [`crate::control::PathReport`]), which each side sends on every path at least
//! every [`HEARTBEAT`]: a report echoes the send stamp of the last packet the peer
//! got on that path (round-trip time), counts what arrived (loss, forward
//! liveness), and carries the peer's measured receive rate and minimum one-way
//! delay (rate and queue build-up). Receiving anything at all on the path proves
//! its reverse direction alive.
//!
//! # Rate
//! The pacing rate follows BBR's model: the bottleneck bandwidth is the windowed
//! maximum of the receive-rate samples; the pacer sends at that rate times a gain
//! that starts high to find the rate (startup), then cycles 1.25, 0.75, 1, ... to
//! keep probing without building a queue (the 1.25 and 0.75 phases last a
//! minimum round trip, at most 80 ms, so an up-probe adds at most a
//! [`QUEUE_TARGET`] of WAN queue). A one-way delay rising more than
//! [`QUEUE_TARGET`] above its minimum means a queue is building in the WAN: if we
//! built it (the pacer was backlogged, or we sent more than arrived) the
//! estimate is cut to what is actually arriving; if not (cross traffic, jitter)
//! only the pacer eases off. Nobody types in a link's speed; a configured cap
//! only limits it.
//!
//! # Liveness
//! A path is declared down when nothing arrives on it, or the peer reports nothing
//! new from it, for `max(3 x srtt, 150 ms)`. It comes back as soon as something
//! arrives again, and is used again after [`UP_AFTER`] reports showing progress.
//! Before that it is suspect ([`Path::suspect`]) and gets no new traffic: after
//! ~90 ms of silence when idle, or when data went unanswered for a round trip
//! and a report interval when loaded.
//!
//! # Scheduling inputs
//! [`Path::arrival`] is when a packet handed over now would arrive (pacer
//! backlog, serialisation, half the minimum RTT); the connection ranks paths by
//! it (a degraded path's counts double) and keeps TCP within
//! [`tcp_spread_limit`] of the fastest path.

use core::time::Duration;

use crate::control::PathReport;
use crate::filter::{ClockDelta, Windowed};
use crate::time::Instant;

/// Reports (heartbeats) go out on an idle path at least this often.
pub const HEARTBEAT: Duration = Duration::from_millis(50);
/// Reports go out this often on a path that carried traffic.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(20);
/// Slack for the peer's timers and ours in [`Path::suspect`].
pub const SUSPECT_MARGIN: Duration = Duration::from_millis(5);
/// The shortest time without a sign of life that declares a path down.
pub const MIN_DOWN_AFTER: Duration = Duration::from_millis(150);
/// Reports showing progress needed to bring a probing path up.
pub const UP_AFTER: u32 = 3;
/// Queueing delay in the WAN above which the rate estimate is cut.
pub const QUEUE_TARGET: Duration = Duration::from_millis(20);
/// WAN queueing delay above which the pacer starts easing off.
pub const QUEUE_EASE: Duration = Duration::from_millis(5);
/// Queueing delay over [`QUEUE_EASE`] that halves the pacing rate.
pub const QUEUE_EASE_SPAN: Duration = Duration::from_millis(60);
/// Most the pacer may be behind (queued in braid) before the path counts as full.
pub const MAX_BACKLOG: Duration = Duration::from_millis(15);
/// Most the pacer may be behind for a bulk packet while the connection is in
/// its drop grace: the round trip after it dropped one, in which the sender
/// cannot yet have slowed down (see `Connection::send`). A TCP packet's limit
/// ([`tcp_backlog`]) grows by as much, `GRACE_BACKLOG - MAX_BACKLOG`.
pub const GRACE_BACKLOG: Duration = Duration::from_millis(45);
/// Most [`tcp_backlog`] gives: 0.43 of a 370 ms round trip, which is what
/// cubic needs to keep the paths busy through a window cut (see there); a
/// geostationary satellite beside DSL has 315 ms. It was [`GRACE_BACKLOG`]
/// until 2026-12-03, which kept S3's and S4's flows (160 and 315 ms round
/// trips) under that rule. It bounds the pacers' memory too: S4 at full load
/// peaked at 7.2 MiB of router RSS, against 6.6 MiB at 45 ms.
pub const TCP_MAX_BACKLOG: Duration = Duration::from_millis(160);
/// Least extra one-way delay, over the fastest usable path's, that a TCP packet
/// of the aggregate class may be given by spilling onto a slower path (see
/// [`tcp_spread_limit`]): a geostationary satellite's 300 ms beside DSL, with
/// room to spare, and well under the reorder buffer's longest wait.
pub const TCP_SPREAD_FLOOR: Duration = Duration::from_millis(400);
/// Pacer backlog that marks a rate sample as taken while the path was full.
/// Two packets back to back are a backlog too, but a probe and a heartbeat
/// meeting are not a full path: counted as one, they let an idle path's
/// estimate drift down 15% per window until it was nothing (measured: a 20
/// Mbit/s DSL path at 0.12 Mbit/s after a minute of light use).
pub const SATURATED_BACKLOG: Duration = Duration::from_millis(5);
/// A path pads its up-probes only if its pacer was backlogged this recently.
pub const PAD_RECENT: Duration = Duration::from_millis(500);
/// Rate a new path starts from: 2 Mbit/s.
pub const INITIAL_RATE: u64 = 250_000;
/// Lowest rate estimate: 64 kbit/s.
pub const MIN_RATE: u64 = 8_000;
/// Window of the bandwidth max filter.
pub const BW_WINDOW: Duration = Duration::from_millis(1500);
/// Window of the minimum RTT and minimum one-way delay.
pub const MIN_WINDOW: Duration = Duration::from_secs(10);
/// Loss (per mille) above which an up path counts as degraded.
pub const DEGRADED_LOSS: u32 = 100;
/// Loss (per mille) below which a degraded path is up again.
pub const RECOVERED_LOSS: u32 = 30;

const PROBE_GAINS: [u32; 8] = [125, 75, 100, 100, 100, 100, 100, 100];
/// Longest up-probe (and the drain after it): at 1.25 times the rate, it adds
/// at most a [`QUEUE_TARGET`] of WAN queue. BBR probes for a whole minimum
/// round trip, which on a 600 ms satellite path put 150 ms of queue into a
/// modem holding 50 (S4's: 450 packets lost per minute, each a loss that the
/// repair store, 200 ms deep at S4's rate, could no longer mend).
const PROBE_PHASE_MAX: Duration = Duration::from_millis(80);
/// Longest cruise phase (gain 1) of a probe cycle. BBR cruises six minimum
/// round trips between up-probes; a 600 ms satellite path then probed once in
/// 4.8 s, 25% at a time, and its estimate took 10 s to climb from 12 to 24
/// Mbit/s while a TCP flow waited on its pacer (S4). Six of these still leave
/// a path of 600 ms more than a round trip (760 ms) between up-probes, so each
/// probe's result is known before the next, and paths under 100 ms keep
/// BBR's cycle.
const CRUISE_PHASE_MAX: Duration = Duration::from_millis(100);

/// User settings for a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathConfig {
    /// Used only when no primary path is up.
    pub backup: bool,
    /// Upper bound of the sending rate, bytes per second.
    pub cap: Option<u64>,
}

/// Where a path is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathState {
    /// New, or back after being down: heartbeats only, until it proves itself.
    Probing,
    /// Carrying traffic.
    Up,
    /// Up, but losing many packets: used only when it is clearly the best.
    Degraded,
    /// Silent for too long: heartbeats only.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Startup {
        best: u64,
        flat_rounds: u8,
        round_end: Instant,
    },
    Drain {
        until: Instant,
    },
    ProbeBw {
        phase: u8,
        phase_end: Instant,
    },
}

/// What a path knows and decides.
#[derive(Debug, Clone)]
pub struct Path {
    /// Path id (index in the session's path table, carried on the wire).
    pub id: u8,
    /// User settings.
    pub config: PathConfig,
    state: PathState,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    /// Lowest RTT variation in [`MIN_WINDOW`]: the path's own jitter, which a
    /// queue's oscillation only adds to.
    rttvar_min: Windowed<false>,
    min_rtt: Windowed<false>,
    owd_min: Windowed<false>,
    owd_excess_us: u64,
    /// Orders the reported one-way delays (two clocks, unknown offset).
    owd_clock: ClockDelta,
    last_heard: Option<Instant>,
    last_progress: Option<Instant>,
    peer_packets: Option<u32>,
    good_reports: u32,
    loss_permille: u32,
    /// (peer's packet count, our sent counter) when loss was last measured.
    loss_base: Option<(u32, u64)>,
    btl_bw: u64,
    bw: Windowed<true>,
    /// The pacer had a real backlog ([`SATURATED_BACKLOG`]) since the last rate
    /// sample: the sample measures the path, not how much traffic happened to
    /// be offered (BBR's "app-limited").
    saturated: bool,
    saturated_round: bool,
    /// Bytes sent since the last rate sample, and since when.
    sample_sent: u64,
    sample_start: Option<Instant>,
    /// Bytes scheduled since `round_start` (startup's plateau test).
    round_bytes: u64,
    round_start: Option<Instant>,
    /// The previous report showed a queue too.
    queue_seen: bool,
    /// When the estimate was last cut for a queue.
    cut_at: Option<Instant>,
    /// Estimate at the start of the current up-probe phase.
    probe_start_bw: u64,
    /// Consecutive probe cycles whose up-probe found 20% more.
    room_cycles: u8,
    mode: Mode,
    next_send: Instant,
    /// When the first data packet went out that nothing has been heard back
    /// since (cleared by any packet from the peer).
    unanswered_since: Option<Instant>,
    last_report_tx: Option<Instant>,
    /// When the pacer last had a real backlog ([`SATURATED_BACKLOG`]).
    last_backlogged: Option<Instant>,
    /// Packets and bytes sent on this path.
    pub sent_packets: u64,
    /// Bytes sent on this path.
    pub sent_bytes: u64,
}

/// A snapshot for diagnostics (control socket, console, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathInfo {
    /// Path id.
    pub id: u8,
    /// State.
    pub state: PathState,
    /// Smoothed RTT, microseconds.
    pub srtt_us: Option<u64>,
    /// Minimum RTT in the window, microseconds.
    pub min_rtt_us: Option<u64>,
    /// Queueing delay estimate (one-way delay above its minimum), microseconds.
    pub queue_us: u64,
    /// Loss, per mille.
    pub loss_permille: u32,
    /// Bottleneck bandwidth estimate, bytes per second.
    pub btl_bw: u64,
    /// Current pacing rate, bytes per second.
    pub pacing_rate: u64,
    /// Packets sent.
    pub sent_packets: u64,
    /// Rate-search phase: "startup", "drain" or "probe".
    pub mode: &'static str,
}

impl Path {
    /// A new path, probing.
    pub fn new(id: u8, config: PathConfig, now: Instant) -> Self {
        Self {
            id,
            config,
            state: PathState::Probing,
            srtt_us: None,
            rttvar_us: 0,
            rttvar_min: Windowed::new(),
            min_rtt: Windowed::new(),
            owd_min: Windowed::new(),
            owd_excess_us: 0,
            owd_clock: ClockDelta::default(),
            last_heard: None,
            last_progress: None,
            peer_packets: None,
            good_reports: 0,
            loss_permille: 0,
            loss_base: None,
            btl_bw: INITIAL_RATE,
            bw: Windowed::new(),
            saturated: false,
            saturated_round: false,
            sample_sent: 0,
            sample_start: None,
            round_bytes: 0,
            round_start: None,
            queue_seen: false,
            cut_at: None,
            probe_start_bw: 0,
            room_cycles: 0,
            mode: Mode::Startup {
                best: 0,
                flat_rounds: 0,
                round_end: now,
            },
            next_send: now,
            unanswered_since: None,
            last_report_tx: None,
            last_backlogged: None,
            sent_packets: 0,
            sent_bytes: 0,
        }
    }

    /// Current state.
    pub fn state(&self) -> PathState {
        self.state
    }

    /// Whether data may be scheduled on this path.
    pub fn usable(&self) -> bool {
        matches!(self.state, PathState::Up | PathState::Degraded)
    }

    /// Silent for longer than a healthy path ever is, though not yet for long
    /// enough to be declared down: new bulk goes elsewhere meanwhile. Either
    /// * nothing heard for a heartbeat interval, two report intervals and the
    ///   delay variation (an idle path), or
    /// * data went out and nothing came back within a round trip, a report
    ///   interval and the variation: a peer that receives data reports every
    ///   [`REPORT_INTERVAL`], so on a loaded path this catches a cut about 45 ms
    ///   sooner, and every millisecond less feeding the void is ~1.7 fewer
    ///   segments a TCP flow at 20 Mbit/s has to recover.
    pub fn suspect(&self, now: Instant) -> bool {
        let jitter = Duration::from_micros(4 * self.rttvar_us);
        let silent = |since: Option<Instant>, limit: Duration| {
            since.is_some_and(|t| now.saturating_since(t) > limit.min(self.down_after()))
        };
        silent(self.last_heard, HEARTBEAT + 2 * REPORT_INTERVAL + jitter)
            || silent(
                self.unanswered_since,
                self.srtt() + REPORT_INTERVAL + jitter + SUSPECT_MARGIN,
            )
    }

    fn srtt(&self) -> Duration {
        Duration::from_micros(self.srtt_us.unwrap_or(100_000))
    }

    fn min_rtt(&self) -> Duration {
        self.min_rtt
            .get()
            .map_or_else(|| self.srtt(), Duration::from_micros)
    }

    /// A round trip that is rarely exceeded: smoothed RTT plus four deviations
    /// (RFC 6298's RTO without its 1 s floor).
    pub fn rtt_bound(&self) -> Duration {
        self.srtt() + Duration::from_micros(4 * self.rttvar_us)
    }

    /// How long without a sign of life declares this path down.
    pub fn down_after(&self) -> Duration {
        (self.srtt() * 3).max(MIN_DOWN_AFTER)
    }

    fn gain(&self) -> u64 {
        match self.mode {
            Mode::Startup { .. } => 200,
            Mode::Drain { .. } => 50,
            Mode::ProbeBw { phase, .. } => {
                u64::from(PROBE_GAINS[usize::from(phase) % PROBE_GAINS.len()])
            }
        }
    }

    /// Sending rate now, bytes per second: the estimate times the phase's gain,
    /// eased off as the WAN queue grows beyond [`QUEUE_EASE`] (a proportional
    /// brake that keeps the standing queue small even when the estimate is a few
    /// per cent high, as a max filter over noisy samples tends to be).
    pub fn pacing_rate(&self) -> u64 {
        let excess = self
            .owd_excess_us
            .saturating_sub((QUEUE_EASE + self.jitter_allowance()).as_micros() as u64);
        let ease = 1000u64
            .saturating_sub(excess * 1000 / QUEUE_EASE_SPAN.as_micros() as u64)
            .max(500);
        let rate = (self.btl_bw * self.gain() / 100 * ease / 1000).max(MIN_RATE);
        self.config.cap.map_or(rate, |c| rate.min(c))
    }

    /// Time to serialise `size` bytes at the pacing rate.
    fn tx_time(&self, size: usize) -> Duration {
        Duration::from_micros(size as u64 * 1_000_000 / self.pacing_rate())
    }

    /// When a packet of `size` bytes handed over now would arrive at the peer, as
    /// a delay from now; `None` if the path is not usable, suspect, or its pacer
    /// is full.
    pub fn arrival(&self, now: Instant, size: usize) -> Option<Duration> {
        self.arrival_within(now, size, MAX_BACKLOG)
    }

    /// [`Path::arrival`] with the pacer full past `limit` instead of
    /// [`MAX_BACKLOG`].
    pub fn arrival_within(&self, now: Instant, size: usize, limit: Duration) -> Option<Duration> {
        if !self.usable() || self.suspect(now) {
            return None;
        }
        let backlog = self.next_send.saturating_since(now);
        if backlog > limit {
            return None;
        }
        Some(backlog + self.tx_time(size) + self.min_rtt() / 2)
    }

    /// Like [`Path::arrival`] for a packet that goes ahead of the pacer's backlog
    /// (only its own serialisation and the path's delay count).
    pub fn arrival_unloaded(&self, now: Instant, size: usize) -> Option<Duration> {
        (self.usable() && !self.suspect(now)).then(|| self.tx_time(size) + self.min_rtt() / 2)
    }

    /// An arrival time as the scheduler ranks it: a degraded (lossy) path's
    /// counts double, so it is used only when it is clearly the best.
    pub fn penalised(&self, arrival: Duration) -> Duration {
        if self.state == PathState::Degraded {
            arrival * 2
        } else {
            arrival
        }
    }

    /// Books `size` bytes on the pacer; returns when they may leave.
    pub fn schedule(&mut self, now: Instant, size: usize) -> Instant {
        if self.next_send > now {
            self.saturated_round = true;
        }
        if self.next_send > now + SATURATED_BACKLOG {
            self.saturated = true;
            self.last_backlogged = Some(now);
        }
        let at = self.next_send.max(now);
        self.next_send = at + self.tx_time(size);
        self.round_bytes += size as u64;
        at
    }

    /// Books `size` bytes that leave at once, ahead of the pacer's backlog;
    /// returns by how much that moves what was already booked (nothing if the
    /// pacer was idle).
    pub fn book_ahead(&mut self, now: Instant, size: usize) -> Duration {
        let backlogged = self.next_send > now;
        self.schedule(now, size);
        if backlogged {
            self.tx_time(size)
        } else {
            Duration::ZERO
        }
    }

    /// Records that a packet left on this path.
    pub fn on_sent(&mut self, now: Instant, size: usize, is_report: bool) {
        self.sent_packets += 1;
        self.sent_bytes += size as u64;
        self.sample_sent += size as u64;
        self.sample_start.get_or_insert(now);
        if is_report {
            self.last_report_tx = Some(now);
        } else {
            self.unanswered_since.get_or_insert(now);
        }
    }

    /// Whether the rate search is probing upwards (start-up, or the 1.25 phase
    /// of a cycle) on a path whose pacer was backlogged within [`PAD_RECENT`]
    /// (traffic wanted more than it gave): then the connection fills an idle
    /// pacer with copies of recent packets, so the probe measures the path and
    /// not how much traffic happened to spill onto it. A path that carries
    /// light traffic is never padded.
    pub fn wants_padding(&self, now: Instant) -> bool {
        let probing_up = match self.mode {
            Mode::Startup { .. } => true,
            Mode::ProbeBw { phase, .. } => {
                PROBE_GAINS[usize::from(phase) % PROBE_GAINS.len()] > 100
            }
            Mode::Drain { .. } => false,
        };
        probing_up
            && self.usable()
            && !self.suspect(now)
            && self
                .last_backlogged
                .is_some_and(|t| now.saturating_since(t) < PAD_RECENT)
    }

    /// When the pacer is free for the next packet.
    pub fn pacer_free_at(&self) -> Instant {
        self.next_send
    }

    /// Records that a loss report left on this path: counted, but it neither
    /// stands for a report nor waits for an answer.
    pub fn on_sent_nack(&mut self, size: usize) {
        self.sent_packets += 1;
        self.sent_bytes += size as u64;
        self.sample_sent += size as u64;
    }

    /// Records that an authenticated packet arrived on this path.
    pub fn on_received(&mut self, now: Instant) {
        self.last_heard = Some(now);
        self.unanswered_since = None;
        if self.state == PathState::Down {
            self.state = PathState::Probing;
            self.good_reports = 0;
            self.last_progress = Some(now);
        }
    }

    /// Learns from the peer's report about this path. `sent_until` is how many
    /// packets this side had sent on the path when the reported counter left.
    pub fn on_report(&mut self, now: Instant, r: &PathReport) {
        // Round trip: now - echoed stamp - time the peer held it.
        if r.echo_tx_time != 0 {
            let rtt = now
                .stamp()
                .wrapping_sub(r.echo_tx_time)
                .wrapping_sub(r.hold_us);
            if rtt < 10_000_000 {
                self.on_rtt_sample(now, u64::from(rtt.max(1)));
            }
        }
        // Forward liveness and loss.
        let progressed = self.peer_packets != Some(r.packets);
        if progressed {
            self.last_progress = Some(now);
            if self.state == PathState::Probing {
                self.good_reports += 1;
                if self.good_reports >= UP_AFTER {
                    self.state = PathState::Up;
                }
            }
        }
        let sent_until = r.highest_counter + 1;
        match self.loss_base {
            Some((got0, sent0)) => {
                let got = u64::from(r.packets.wrapping_sub(got0));
                let sent = sent_until.saturating_sub(sent0);
                if sent >= 20 {
                    let lost = sent.saturating_sub(got) * 1000 / sent;
                    self.loss_permille = ((u64::from(self.loss_permille) * 7 + lost) / 8) as u32;
                    self.loss_base = Some((r.packets, sent_until));
                }
            }
            None => self.loss_base = Some((r.packets, sent_until)),
        }
        self.peer_packets = Some(r.packets);
        match self.state {
            PathState::Up if self.loss_permille > DEGRADED_LOSS => self.state = PathState::Degraded,
            PathState::Degraded if self.loss_permille < RECOVERED_LOSS => {
                self.state = PathState::Up
            }
            _ => {}
        }
        // One-way delay: queue building up in the WAN.
        if r.owd_min_us != 0 {
            let owd = self.owd_clock.order(r.owd_min_us);
            self.owd_min.push(now, owd, MIN_WINDOW);
            let base = self.owd_min.get().unwrap_or(owd);
            let excess = owd.saturating_sub(base);
            self.owd_excess_us = (self.owd_excess_us * 3 + excess) / 4;
        }
        self.on_rate_sample(now, u64::from(r.rx_rate_kbps) * 125);
    }

    fn on_rtt_sample(&mut self, now: Instant, rtt_us: u64) {
        // RFC 6298 section 2.
        match self.srtt_us {
            None => {
                self.srtt_us = Some(rtt_us);
                self.rttvar_us = rtt_us / 2;
            }
            Some(srtt) => {
                self.rttvar_us = (3 * self.rttvar_us + srtt.abs_diff(rtt_us)) / 4;
                self.srtt_us = Some((7 * srtt + rtt_us) / 8);
            }
        }
        self.min_rtt.push(now, rtt_us, MIN_WINDOW);
        self.rttvar_min.push(now, self.rttvar_us, MIN_WINDOW);
    }

    /// One-way delay above its minimum that this path's jitter alone explains,
    /// added to every queue threshold: four times the lowest RTT variation
    /// (nothing on a wired path). A jittery link delivers packets that come
    /// close together in bunches, so under load its one-way delay sits well
    /// above the minimum without any queue (measured: an LTE link with 10 ms of
    /// jitter read as a 7-13 ms queue, ended its start-up at 1.9 of 10 Mbit/s
    /// and never found the rest).
    fn jitter_allowance(&self) -> Duration {
        Duration::from_micros(4 * self.rttvar_min.get().unwrap_or(0))
    }

    fn on_rate_sample(&mut self, now: Instant, rate: u64) {
        let saturated = core::mem::take(&mut self.saturated);
        if rate == 0 {
            return;
        }
        // What we sent over about the same interval as the peer measured.
        let sent_rate = self.sample_start.map_or(0, |t| {
            let us = now.saturating_since(t).as_micros() as u64;
            if us >= 5_000 {
                self.sample_sent * 1_000_000 / us
            } else {
                0
            }
        });
        self.sample_sent = 0;
        self.sample_start = Some(now);
        // Startup ends as soon as a queue shows (HyStart's delay signal): doubling
        // one more round would overflow the modem's buffer.
        let limit = if matches!(self.mode, Mode::Startup { .. }) {
            2 * QUEUE_EASE
        } else {
            QUEUE_TARGET
        } + self.jitter_allowance();
        // Two reports in a row: one interval's delay can be a scheduling hiccup of
        // either end, not a queue.
        let over = Duration::from_micros(self.owd_excess_us) > limit;
        let queueing = over
            && (core::mem::replace(&mut self.queue_seen, over)
                || !matches!(self.mode, Mode::Startup { .. }));
        // A queue that grows while we send no faster than the path delivers is
        // not ours: cross traffic on the WAN, or jitter read as queueing. Cutting
        // the estimate would not drain it, and would leave the path starved
        // when our own traffic comes (measured: a DSL path that idled beside
        // another sender's TCP fell to 0.34 Mbit/s and took 4 s to climb back).
        // (Sending under a quarter of the estimate, heartbeats and a probe, is
        // never the cause: counted one packet at a time, they differ from what
        // the peer counted by more than 10% just by where the intervals cut.)
        // In startup the gain hides a small overdrive: sending 5% over the
        // link's rate on a path paced at twice it builds the queue slowly, and
        // nothing else ends startup then (see the plateau test below), so any
        // excess counts.
        let startup = matches!(self.mode, Mode::Startup { .. });
        let margin = if startup { 0 } else { rate / 10 };
        let ours = saturated || (sent_rate > rate + margin && sent_rate > self.btl_bw / 4);
        // A report shows what was sent a round trip before it (and the queue
        // estimate smooths over reports): a queue seen within a round of the
        // last cut is the one that cut was for, not a new one.
        let fresh = self
            .cut_at
            .is_none_or(|t| now.saturating_since(t) >= self.srtt() + 2 * REPORT_INTERVAL);
        if queueing && ours && fresh && !matches!(self.mode, Mode::Drain { .. }) {
            // The WAN queue is growing: we send faster than the link drains. While
            // a queue stands the link never idles, so what arrived is its rate,
            // whether or not we were sending flat out (a fixed 30% cut instead,
            // taken whenever an up-probe met a queue, left S1's paths at 14 of
            // 19.4 Mbit/s for seconds).
            let cut = rate.min(self.btl_bw);
            let cut = cut.max(self.btl_bw / 2).max(MIN_RATE);
            self.bw.reset();
            self.bw.push(now, cut, BW_WINDOW);
            self.btl_bw = cut;
            self.cut_at = Some(now);
            self.mode = Mode::Drain {
                until: now + self.min_rtt(),
            };
            return;
        }
        // A sample taken while little was offered says nothing about capacity
        // unless it is higher than what we believe. Even a "saturated" interval
        // may have had a backlog only briefly (the scheduler feeds this path only
        // when it is the earliest arrival), so a sample far below the estimate
        // is not trusted either: a link that really slowed down shows it by its
        // queue (the cut above) or its loss, and this lets the estimate drift
        // down by at most 15% per window otherwise.
        if rate >= self.btl_bw || (saturated && rate >= self.btl_bw * 85 / 100) {
            self.bw.push(now, rate, BW_WINDOW);
        }
        // An expired window keeps the last estimate instead of decaying to the
        // heartbeats' rate.
        let floor = if matches!(self.mode, Mode::Startup { .. }) {
            INITIAL_RATE
        } else {
            MIN_RATE
        };
        self.btl_bw = self.bw.get().unwrap_or(self.btl_bw).max(floor);
        let min_rtt = self.min_rtt().max(Duration::from_millis(10));
        self.mode = match self.mode {
            Mode::Startup {
                best,
                flat_rounds,
                round_end,
            } if now >= round_end => {
                // Only rounds that were not app-limited can show a plateau: the
                // pacer had a backlog, and what was offered filled most of what
                // it allowed (a flow that grows more slowly than startup, like
                // TCP behind a long reorder wait, must not end it).
                let us = self
                    .round_start
                    .map_or(0, |t| now.saturating_since(t).as_micros() as u64);
                let allowed = self.pacing_rate() * us / 1_000_000;
                let filled = self.round_bytes * 10 >= allowed * 7;
                // A round that was offered more than the estimate and did not
                // see it grow is a plateau too, however little of startup's
                // doubled allowance it used. Without this, a flow that asks
                // a little more than one path's rate kept that path in startup:
                // paced at twice its 19.4 Mbit/s for 6 s, it looked the
                // earliest arrival to the scheduler, which sent it everything
                // while its WAN queue grew and the other path idled (S1 under
                // cubic).
                let overfull = self.round_bytes * 100 >= self.btl_bw * us / 1_000_000 * 105;
                self.round_bytes = 0;
                self.round_start = Some(now);
                let saturated_round =
                    (core::mem::take(&mut self.saturated_round) && filled) || overfull;
                let (best, flat) = if self.btl_bw > best * 5 / 4 {
                    (self.btl_bw, 0)
                } else if saturated_round {
                    (best, flat_rounds + 1)
                } else {
                    (best, flat_rounds)
                };
                if flat >= 3 {
                    Mode::Drain {
                        until: now + min_rtt,
                    }
                } else {
                    Mode::Startup {
                        best,
                        flat_rounds: flat,
                        // A round: until a rate sample can reflect this round's
                        // sending (one trip there, one report back).
                        round_end: now + self.srtt() + 2 * REPORT_INTERVAL,
                    }
                }
            }
            Mode::Drain { until } if now >= until => Mode::ProbeBw {
                phase: 2,
                phase_end: now + min_rtt.min(CRUISE_PHASE_MAX),
            },
            Mode::ProbeBw { phase, phase_end } if now >= phase_end => {
                // An up-probe that found 20% more: the path has room we do not know
                // about (an estimate cut too far, a link that got faster). Search
                // exponentially again instead of 25% per cycle.
                let found_room = phase == 0
                    && self.probe_start_bw > 0
                    && self.btl_bw > self.probe_start_bw * 6 / 5;
                if phase == 0 {
                    self.room_cycles = if found_room { self.room_cycles + 1 } else { 0 };
                }
                if self.room_cycles >= 2 {
                    self.room_cycles = 0;
                    Mode::Startup {
                        best: self.btl_bw,
                        flat_rounds: 0,
                        round_end: now + self.srtt() + 2 * REPORT_INTERVAL,
                    }
                } else {
                    let next = (phase + 1) % PROBE_GAINS.len() as u8;
                    if next == 0 {
                        self.probe_start_bw = self.btl_bw;
                    }
                    let len = if PROBE_GAINS[usize::from(next)] == 100 {
                        min_rtt.min(CRUISE_PHASE_MAX)
                    } else {
                        min_rtt.min(PROBE_PHASE_MAX)
                    };
                    Mode::ProbeBw {
                        phase: next,
                        phase_end: now + len,
                    }
                }
            }
            m => m,
        };
    }

    /// Whether a report (heartbeat) is due on this path; `received` says whether
    /// anything arrived on it since the last report.
    pub fn report_due(&self, now: Instant, received: bool) -> bool {
        let since = self
            .last_report_tx
            .map_or(Duration::MAX, |t| now.saturating_since(t));
        since >= HEARTBEAT || (received && since >= REPORT_INTERVAL)
    }

    /// When the next report is due at the latest.
    pub fn next_report(&self, received: bool) -> Option<Instant> {
        self.last_report_tx
            .map(|t| t + if received { REPORT_INTERVAL } else { HEARTBEAT })
    }

    /// Declares the path down when it has been silent too long; returns true when
    /// it just went down.
    pub fn check_liveness(&mut self, now: Instant) -> bool {
        if self.state == PathState::Down {
            return false;
        }
        let limit = self.down_after();
        let silent = |t: Option<Instant>| t.is_some_and(|t| now.saturating_since(t) > limit);
        let reverse_dead = silent(self.last_heard);
        let forward_dead = silent(self.last_progress);
        if reverse_dead || forward_dead {
            self.state = PathState::Down;
            self.good_reports = 0;
            // Restart the rate search from half the old estimate when it heals.
            self.btl_bw = (self.btl_bw / 2).max(INITIAL_RATE.min(self.btl_bw));
            self.bw.reset();
            self.mode = Mode::Startup {
                best: 0,
                flat_rounds: 0,
                round_end: now,
            };
            self.next_send = now;
            return true;
        }
        false
    }

    /// When liveness must be checked next.
    pub fn liveness_deadline(&self) -> Option<Instant> {
        if self.state == PathState::Down {
            return None;
        }
        let limit = self.down_after();
        [self.last_heard, self.last_progress]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t + limit + Duration::from_micros(1))
    }

    /// A snapshot for diagnostics.
    pub fn info(&self) -> PathInfo {
        PathInfo {
            id: self.id,
            state: self.state,
            srtt_us: self.srtt_us,
            min_rtt_us: self.min_rtt.get(),
            queue_us: self.owd_excess_us,
            loss_permille: self.loss_permille,
            btl_bw: self.btl_bw,
            pacing_rate: self.pacing_rate(),
            sent_packets: self.sent_packets,
            mode: match self.mode {
                Mode::Startup { .. } => "startup",
                Mode::Drain { .. } => "drain",
                Mode::ProbeBw { .. } => "probe",
            },
        }
    }
}

/// How much later than on the fastest path (`fastest`, its unloaded arrival) a
/// TCP packet may arrive when the fast paths are full: `max(400 ms, 2 ×
/// fastest)`.
///
/// It was 50 ms until the receiver restored each flow's order rather than
/// the class's ([`crate::reorder`]): a bulk TCP flow spilling onto a
/// satellite then made every other flow of the class wait for it. Now only
/// the flow that spills waits (its round trip becomes the far path's), and
/// light flows go ahead of its queue (`connection::SPARSE_RATE`). Measured,
/// cubic, medians of 3, 20 s (2026-12-03): S3 (a 5 Mbit/s path at 150 ms
/// beside 50 Mbit/s at 10 ms) 44.8 became 48.9 Mbit/s, S4 (a 300 ms
/// satellite beside three terrestrial links) 30.1 became 33.9-36.3. (In
/// 2026-11, before the scheduler and repairs of today, one TCP got 16 Mbit/s
/// with the satellite and 27 without.) Past the limit a path is not worth
/// its delay: the reorder buffer waits [`crate::reorder::MAX_TIMEOUT`] at
/// most.
pub fn tcp_spread_limit(fastest: Duration) -> Duration {
    (fastest * 2).max(TCP_SPREAD_FLOOR)
}

/// Most the pacer may be behind for a TCP packet of the aggregate class, given
/// the unloaded arrivals on the fastest path and on the farthest one the flow
/// may use: the flow's unloaded round trip (data over the farthest, acks back
/// over the fastest), at least [`MAX_BACKLOG`] and at most [`TCP_MAX_BACKLOG`].
///
/// braid's pacers are the flow's bottleneck queue, and a loss-based sender
/// (cubic, the default of every client OS) cuts its window to 0.7 of what it
/// was when one drops a packet. The paths stay busy through the cut only if
/// the queue held at least 0.43 of the round trip the flow really sees (the
/// buffer-sizing rule). That round trip is longer than the unloaded one: a
/// jittery path's packets arrive late and the ones behind them wait in the
/// reorder buffer, and a repaired loss holds the flow for a round trip of
/// the fastest path. Measured, cubic, 20 s (2026-12-03):
/// * 15 ms against S1's 45 ms round trip ran the pipe dry after every drop
///   (one run each: S1 33.4 Mbit/s, S2 25.8);
/// * half the unloaded round trip (medians of 3): S1 34.6-35.8, S2
///   25.8-27.2, S4 25.2; S4's drops came at a window of 150-170 packets where
///   180 fill the links, and its LTE path (10 ms of jitter, 1% loss) carried
///   6-7 of its 10 Mbit/s;
/// * the whole unloaded round trip (medians of 3, same hour): S1 36.8, S2
///   27.3, S4 30.0;
/// * capped at 160 ms instead of 45 (medians of 3, same hour, with the far
///   paths in use): S3 49.2 became 49.6 Mbit/s (89.4 to 90.2% of the links),
///   S4 36.2 became 39.5 (60.3 to 65.8%); S4 retransmitted up to 0.5% of
///   its segments, all drops at full pacers, against 0.2%.
///
/// bbr sizes its window by the minimum round trip and neither gains nor
/// loses (S1 35.1 and 35.0 at 15 ms and at half). Latency-sensitive traffic
/// goes ahead of this queue, and other bulk traffic keeps [`MAX_BACKLOG`].
pub fn tcp_backlog(fastest: Duration, farthest: Duration) -> Duration {
    (fastest + farthest).clamp(MAX_BACKLOG, TCP_MAX_BACKLOG)
}

#[cfg(test)]
mod tests;
