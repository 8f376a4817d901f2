//! One tunnel session between a router and the concentrator, as a sans-IO state
//! machine in the style of quinn-proto's `Connection`.
//!
//! The caller owns the sockets, the TUN device and the clock, and drives it:
//!
//! * [`Connection::handle`] with every datagram that arrived (any path); it
//!   returns the path id the datagram authenticated for, so the caller can learn
//!   the peer's current address on that path (NAT rebinding);
//! * [`Connection::send`] with every IP packet from the LAN;
//! * [`Connection::poll_transmit`] until it returns `None`, sending each datagram
//!   on the path it names;
//! * [`Connection::poll_deliver`] until `None`, writing each IP packet to TUN
//!   (the aggregate class leaves paced, see [`crate::release`]: what waits is
//!   due at [`Connection::poll_timeout`]);
//! * [`Connection::handle_timeout`] when [`Connection::poll_timeout`] expires.
//!
//! Inside: the handshake and rekeying, per-path estimators and pacers
//! ([`crate::path`]), the earliest-arrival scheduler with per-class modes, per-path
//! reports (which are also the heartbeats), per-class reorder buffers that
//! restore each flow's order ([`crate::flow`]: every packet names its flow's
//! previous one), the paced release of what they put back in order, and loss
//! repair.
//!
//! # Loss repair
//! A WAN loses packets that no congestion explains (LTE's radio, a noisy DSL
//! line). Each such loss inside the tunnel would make a TCP flow through it
//! halve its window, though the tunnel's own pacer, not that loss, is the
//! flow's bottleneck. So the aggregate class repairs them: each path's counters
//! arrive in order, and a jump in them is a loss the receiver reports at once
//! ([`Control::Nack`], on its fastest path) while its reorder buffer holds the
//! hole for about a round trip of that path ([`REPAIR_MARGIN`]). The sender
//! keeps the last [`REPAIR_STORE`] data packets it sent and sends a reported
//! one again, ahead of bulk traffic, on its best path. Drops at the sender's
//! own full pacers are not losses on a path and are never repaired: they are
//! the congestion signal TCP needs.

mod rx;
mod session;

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::compress::{Compressor, Decompressor};
use crate::control::{Control, Nack, NackRange, PathReport, Report, MAX_ENCODED_LEN};
use crate::filter::ClockDelta;
use crate::handshake::{self, Initiation, LocalIdentity, RemoteIdentity, SessionKeys, Tai64n};
use crate::path::{tcp_backlog, tcp_spread_limit, Path, PathConfig, PathInfo, PathState};
use crate::release::{Release, ReleaseStats};
use crate::reorder::{Reorder, ReorderStats, Sent};
use crate::time::Instant;
use crate::wire::{
    InnerKind, InnerPacket, InnerRepr, MessageType, INNER_HEADER_LEN, MAX_PRED, SEQ_MASK, TAG_LEN,
    TRANSPORT_HEADER_LEN,
};
use crate::MAX_PATHS;
use rx::RxPath;
use session::Sessions;

/// A new handshake after this much time on one key (WireGuard REKEY_AFTER_TIME).
pub const REKEY_AFTER: Duration = Duration::from_secs(120);
/// A key is never used after this (WireGuard REJECT_AFTER_TIME).
pub const REJECT_AFTER: Duration = Duration::from_secs(180);
/// Handshake retransmission interval while a session exists (WireGuard
/// REKEY_TIMEOUT).
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshake retransmission interval while there is no session at all: each
/// retry goes out on the next path, so a dead first WAN costs one second.
pub const FIRST_HANDSHAKE_RETRY: Duration = Duration::from_secs(1);
/// Largest IP packet the tunnel carries.
pub const MAX_PACKET: usize = 1500;
/// Largest datagram the tunnel sends.
pub const MAX_DATAGRAM: usize = MAX_PACKET + crate::wire::OVERHEAD;
/// Packets queued for transmission on one path, at most (the pacer bounds the
/// backlog in time: for TCP, its round trip plus the spread to a farther
/// path, 330 ms on S4's DSL line beside a satellite; this bounds memory, 1.5
/// MiB a path). A path whose queue is full is not a candidate: the packet is
/// a pacer drop, before it takes a sequence number.
pub const MAX_QUEUED: usize = 1024;
/// A flow of the aggregate class that sends no faster than this, in bytes per
/// second (2 Mbit/s), and has nothing waiting in a pacer, is *sparse*: its
/// packets go ahead of the pacers' backlog, as the priority classes' do.
/// That is the acknowledgements of a download, a web request, an SSH
/// session, DNS over TCP: without it they waited behind a bulk upload's queue,
/// which a TCP flow may build up to its round trip (`path::tcp_backlog`) and
/// more on a nearer path (the delay spread to a farther one). It is
/// fq_codel's sparse-flow rule, with the pacers' booking in place of its
/// per-flow queues: a sparse packet still counts against its path's pacer.
pub const SPARSE_RATE: u64 = 250_000;
/// The burst a sparse flow may send at once, bytes (four full-size packets).
pub const SPARSE_BURST: u64 = 6_000;
/// A path counts toward the reorder buffers' delay spread for this long after
/// it last carried data. A TCP flow spills onto a far path (a satellite) only
/// when the near ones are full, which may be seconds apart: with 500 ms, the
/// first packet of each spill found the spread forgotten, its hole given up
/// 40 ms in, and itself dropped as late 250 ms after, a loss to TCP
/// (measured: S4 cubic, 3,897 late and 298 skipped per TCP run). A long
/// spread costs only the flow that has a hole, since each flow waits for its
/// own packets alone.
const SPREAD_ACTIVE: Duration = Duration::from_secs(10);
/// No packet of the flow was sent (in `Connection::flow_last`).
const NO_SEQ: u32 = u32::MAX;
/// Packets waiting for the session to be established, at most.
pub const MAX_STAGED: usize = 64;
/// Aggregate-class data packets kept after they left, for repair: about 200 ms
/// at 60 Mbit/s, at most 1.5 MiB; none older than [`REPAIR_MAX_AGE`], so an
/// idle session keeps nothing.
pub const REPAIR_STORE: usize = 1024;
/// A packet sent longer ago than this is not repaired: the receiver gave up.
pub const REPAIR_MAX_AGE: Duration = crate::reorder::MAX_TIMEOUT;
/// How much longer than the fastest path's round trip (smoothed, plus four
/// deviations) a hole waits for its repair: the peer's timers and queues.
pub const REPAIR_MARGIN: Duration = Duration::from_millis(10);
/// Counters one [`Nack`] may ask for, at most.
const MAX_REPAIRS_PER_NACK: u64 = 64;
/// Least time between two [`Control::Forget`]s: the peer's next packet of
/// each slot installs it again, so one report per round trip is enough.
const FORGET_INTERVAL: Duration = Duration::from_millis(10);

/// The path of `paths` whose `arrival` (`None`: it cannot take the packet)
/// ranks first, penalised by its state ([`Path::penalised`]); on a tie any
/// other than `avoid`. Backup paths count only while no primary is `live`.
fn first_arrival<'a>(
    paths: impl Iterator<Item = &'a Path> + Clone,
    live: impl Fn(&Path) -> bool,
    arrival: impl Fn(&Path) -> Option<Duration>,
    avoid: u8,
) -> Option<u8> {
    let any_primary = paths.clone().any(|p| live(p) && !p.config.backup);
    paths
        .filter(|p| !(p.config.backup && any_primary))
        .filter_map(|p| Some((p.penalised(arrival(p)?), p.id == avoid, p.id)))
        .min()
        .map(|(_, _, id)| id)
}

/// Whether an IP packet is TCP (IPv4 protocol or IPv6 next header 6; an IPv6
/// packet with extension headers before TCP counts as not TCP).
fn is_tcp(packet: &[u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(9) == Some(&6),
        Some(6) => packet.get(6) == Some(&6),
        _ => false,
    }
}

/// How a traffic class is carried. Each class has its own sequence space and
/// reorder buffer, so one class never waits for another's missing packets;
/// within a class, a packet waits only for its own flow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Spread over the primary paths by earliest expected arrival (the default).
    Aggregate = 0,
    /// Sent on the two best paths; the receiver drops the second copy (VoIP,
    /// games that cannot afford a single loss). Queued ahead of bulk traffic.
    Redundant = 1,
    /// Latency-sensitive (DSCP EF, small UDP packets): earliest-arrival path,
    /// queued ahead of bulk traffic so it never waits behind the pacer's backlog.
    Interactive = 2,
}

impl Class {
    fn priority(self) -> bool {
        !matches!(self, Class::Aggregate)
    }
}

/// Number of traffic classes.
pub const CLASSES: usize = 3;

/// Which side of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The router: starts handshakes.
    Initiator,
    /// The concentrator: answers them.
    Responder,
}

/// Something the caller may want to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A session key was established (first, or after a rekey).
    Established,
    /// A path became usable.
    PathUp(u8),
    /// A path was declared down.
    PathDown(u8),
}

/// Counters of everything refused or dropped, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that authenticated.
    pub rx_ok: u64,
    /// Replayed or too old.
    pub rx_replayed: u64,
    /// Failed authentication (modified, truncated, wrong key).
    pub rx_unauthentic: u64,
    /// Not a valid packet at all.
    pub rx_malformed: u64,
    /// Addressed to no session of ours.
    pub rx_unknown_session: u64,
    /// IP packets sent into the tunnel.
    pub tx_packets: u64,
    /// IP packets dropped: no usable path, or every pacer full.
    pub tx_dropped: u64,
    /// IP packets dropped because they were larger than [`MAX_PACKET`].
    pub tx_too_large: u64,
    /// Handshake messages sent.
    pub handshakes_sent: u64,
    /// Losses reported to the peer (one [`Control::Nack`] each).
    pub nacks_sent: u64,
    /// Packets sent again because the peer reported them missing.
    pub repairs_sent: u64,
    /// Aggregate-class packets of sparse flows sent ahead of the pacers'
    /// backlog (see [`SPARSE_RATE`]).
    pub sparse_sent: u64,
    /// Copies of recent packets that filled an up-probe (see
    /// [`crate::path::Path::wants_padding`]).
    pub padding_sent: u64,
    /// Data packets moved, before they left, from the queue of a path that
    /// fell silent to another path (see `Connection::reroute`).
    pub rerouted: u64,
    /// TCP/IPv4 packets sent with a compressed header ([`crate::compress`]).
    pub compressed: u64,
    /// Header bytes compression saved.
    pub compress_saved: u64,
    /// Received compressed packets dropped: their context was missing.
    pub context_misses: u64,
    /// Received compressed packets dropped as malformed.
    pub expand_malformed: u64,
}

struct Queued {
    /// When it may leave: for bulk, its pacer slot as booked, to be moved by
    /// what went ahead of it since (see [`Connection::due`]).
    at: Instant,
    /// The path's [`Connection::ahead`] when `at` was booked.
    ahead_base: Duration,
    data: Vec<u8>,
    is_report: bool,
    is_nack: bool,
    priority: bool,
    /// (class, seq, pred) of a data packet.
    seq: Option<(u8, u32, u16)>,
}

impl Queued {
    /// An IP packet (or a copy of one), not a report.
    fn is_data(&self) -> bool {
        !self.is_report && !self.is_nack
    }
}

/// One flow bucket's credit toward being sparse ([`SPARSE_RATE`]).
#[derive(Debug, Clone, Copy, Default)]
struct Sparse {
    /// Bytes the flow may still send ahead of the pacers.
    credit: u64,
    /// When `credit` was last brought up to date.
    refilled: Instant,
    /// Until when a packet of the flow waits in a pacer.
    queued_until: Instant,
}

impl Sparse {
    /// Whether a packet of `size` bytes of this flow is sparse at `now`; if
    /// so, it is charged.
    fn take(&mut self, now: Instant, size: usize) -> bool {
        let us = now.saturating_since(self.refilled).as_micros() as u64;
        self.credit = (self.credit + us.min(1_000_000) * SPARSE_RATE / 1_000_000).min(SPARSE_BURST);
        self.refilled = now;
        let size = size as u64;
        let sparse = now >= self.queued_until && self.credit >= size;
        if sparse {
            self.credit -= size;
        }
        sparse
    }
}

/// A data packet that left, kept for repair.
struct Stored {
    path: u8,
    counter: u64,
    at: Instant,
    class: u8,
    seq: u32,
    pred: u16,
    payload: Vec<u8>,
}

impl Stored {
    /// The inner header of a copy sent again (a repair or a padding copy).
    fn resent(&self, flags: u8) -> InnerRepr {
        InnerRepr {
            kind: InnerKind::Data,
            flags,
            class: self.class,
            seq: self.seq,
            pred: self.pred,
            tx_time: 0,
        }
    }
}

/// How a packet is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Paced.
    Bulk,
    /// At once, ahead of bulk; counted by the pacer.
    Priority,
    /// At once, ahead of bulk; not counted (a few dozen bytes).
    Report,
    /// Like a report, but it neither resets the path's report timer nor
    /// expects an answer: a loss report must not delay the path's next
    /// report (measured: NACKs standing in for reports starved a lossy path's
    /// pacer of rate and queue samples, and its WAN queue drops tripled).
    Nack,
}

/// Why `send` refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Larger than [`MAX_PACKET`].
    TooLarge,
    /// No usable path, or every path's pacer is full: dropped (TCP backs off).
    Dropped,
}

/// A datagram to send: on `path`, `len` bytes of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Path id.
    pub path: u8,
    /// Bytes written.
    pub len: usize,
}

/// Where in-order packets go: expanded (header compression), then to the LAN
/// at once (priority classes) or through the paced release (aggregate).
struct Outbox {
    /// In-order packets of the priority classes, for the LAN at once.
    delivered: VecDeque<Vec<u8>>,
    /// In-order packets of the aggregate class, paced toward the LAN.
    release: Release,
    decompressor: Decompressor,
}

impl Outbox {
    /// Where a reorder buffer of `class` puts the packets it releases.
    fn deliverer(&mut self, class: usize, now: Instant) -> impl FnMut(&[u8], bool) + '_ {
        move |p: &[u8], waited: bool| {
            // In sequence order, as compression requires; a packet whose
            // context is missing is dropped (and reported by `forget_missed`).
            let Ok(p) = self.decompressor.expand(p) else {
                return;
            };
            if class == Class::Aggregate as usize {
                self.release.push(now, p, waited);
            } else {
                self.delivered.push_back(p);
            }
        }
    }
}

/// The session state machine.
pub struct Connection {
    role: Role,
    local: LocalIdentity,
    remote: RemoteIdentity,
    sessions: Sessions,
    pending: Option<(Initiation, Instant, u8)>,
    cookie: Option<([u8; 16], Instant)>,
    last_timestamp: Tai64n,
    wall_clock: (Instant, u64, u32),
    last_sent_timestamp: Tai64n,
    next_index: u32,
    paths: [Option<Path>; MAX_PATHS],
    rx: [RxPath; MAX_PATHS],
    /// Orders the one-way delays the rx paths measure.
    rx_clock: ClockDelta,
    /// The latest arrival time [`Connection::handle_received`] was given:
    /// arrival times never go backwards.
    last_arrival: Instant,
    queues: [VecDeque<Queued>; MAX_PATHS],
    /// Per path, the transmission time of every packet sent ahead of the
    /// pacer's backlog so far (priority packets, repairs): each moves the bulk
    /// packets already booked behind it by that much, so the WAN never gets
    /// more than the pacing rate. Without it a burst of repairs went out on
    /// top of a full pacer's schedule (bench S4: 73 in 0.27 s, after a modem
    /// overflow), and the WAN queue grew by as much.
    ahead: [Duration; MAX_PATHS],
    /// Data packets that left recently, oldest first (loss repair).
    store: VecDeque<Stored>,
    /// When to consider padding each path's up-probe next.
    pad_at: [Option<Instant>; MAX_PATHS],
    /// Until when bulk packets may fill the pacers GRACE_BACKLOG -
    /// MAX_BACKLOG past their limit: a round trip after a bulk packet was
    /// dropped (see `send`).
    drop_grace: Instant,
    staged: VecDeque<(Class, Vec<u8>)>,
    seq: [u32; CLASSES],
    /// Per class and flow bucket ([`crate::flow`]), the sequence number of
    /// the last packet sent, or [`NO_SEQ`].
    flow_last: [[u32; crate::flow::BUCKETS]; CLASSES],
    /// Per flow bucket of the aggregate class, what decides whether it is
    /// sparse (see [`SPARSE_RATE`]).
    sparse: [Sparse; crate::flow::BUCKETS],
    reorder: [Reorder; CLASSES],
    /// Where the reorder buffers' in-order packets go.
    out: Outbox,
    /// Header compression of the aggregate class's TCP/IPv4 packets.
    compressor: Compressor,
    /// When the next [`Control::Forget`] may go (one per `FORGET_INTERVAL`).
    forget_at: Instant,
    events: VecDeque<Event>,
    stats: Stats,
    path_rr: u8,
    rng: ChaCha20Rng,
}

impl Connection {
    /// A session that will start its own handshake (router side). `seed` must come
    /// from the operating system's random source: it seeds the ephemeral keys and
    /// session indexes.
    pub fn initiator(
        local_secret: [u8; 32],
        remote_public: [u8; 32],
        psk: [u8; 32],
        seed: [u8; 32],
    ) -> Self {
        Self::new(Role::Initiator, local_secret, remote_public, psk, seed)
    }

    fn new(
        role: Role,
        local_secret: [u8; 32],
        remote_public: [u8; 32],
        psk: [u8; 32],
        seed: [u8; 32],
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let index_seed = rng.next_u32();
        Self {
            role,
            local: LocalIdentity::new(local_secret),
            remote: RemoteIdentity::new(remote_public, psk),
            sessions: Sessions::default(),
            pending: None,
            cookie: None,
            last_timestamp: Tai64n::default(),
            wall_clock: (Instant::ZERO, 0, 0),
            last_sent_timestamp: Tai64n::default(),
            next_index: index_seed,
            paths: Default::default(),
            rx: Default::default(),
            rx_clock: ClockDelta::default(),
            last_arrival: Instant::ZERO,
            queues: Default::default(),
            ahead: [Duration::ZERO; MAX_PATHS],
            store: VecDeque::new(),
            pad_at: [None; MAX_PATHS],
            drop_grace: Instant::ZERO,
            staged: VecDeque::new(),
            seq: [0; CLASSES],
            flow_last: [[NO_SEQ; crate::flow::BUCKETS]; CLASSES],
            sparse: [Sparse::default(); crate::flow::BUCKETS],
            reorder: [
                Reorder::new(),
                Reorder::with_capacity(256),
                Reorder::with_capacity(256),
            ],
            out: Outbox {
                delivered: VecDeque::new(),
                release: Release::new(),
                decompressor: Decompressor::new(),
            },
            compressor: Compressor::new(),
            forget_at: Instant::ZERO,
            events: VecDeque::new(),
            stats: Stats::default(),
            path_rr: 0,
            rng,
        }
    }

    /// The responder's side of a session, from a handshake initiation that the
    /// endpoint authenticated as coming from `remote_public`. Returns the
    /// connection and the response to send back where the initiation came from.
    /// Paths appear as the initiator's packets arrive on them.
    pub fn accept<R: RngCore + CryptoRng>(
        now: Instant,
        local_secret: [u8; 32],
        remote_public: [u8; 32],
        psk: [u8; 32],
        init: handshake::ReceivedInitiation,
        rng: &mut R,
    ) -> Result<(Self, [u8; handshake::RESPONSE_LEN]), handshake::HandshakeError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut c = Self::new(Role::Responder, local_secret, remote_public, psk, seed);
        c.last_timestamp = init.timestamp;
        let index = c.fresh_index();
        let (msg, keys) = handshake::respond(&c.local, &c.remote, init, index, None, &mut c.rng)?;
        c.sessions.install(keys, now);
        Ok((c, msg))
    }

    /// Answers a new initiation from the same peer on an existing connection
    /// (rekey, or the router restarted): new keys, same paths and estimates.
    pub fn accept_rekey<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        init: handshake::ReceivedInitiation,
        rng: &mut R,
    ) -> Result<[u8; handshake::RESPONSE_LEN], handshake::HandshakeError> {
        let _ = rng;
        self.last_timestamp = init.timestamp;
        let index = self.fresh_index();
        let (msg, keys) =
            handshake::respond(&self.local, &self.remote, init, index, None, &mut self.rng)?;
        self.sessions.install(keys, now);
        Ok(msg)
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Tells the connection the wall-clock time (seconds and nanoseconds since
    /// 1970) at monotonic instant `now`, for handshake timestamps: later ones
    /// are this plus the monotonic time elapsed. The router calls it at start
    /// (and may again when the clock is corrected).
    pub fn set_wall_clock(&mut self, now: Instant, secs: u64, nanos: u32) {
        self.wall_clock = (now, secs, nanos);
    }

    /// The next handshake timestamp: the wall clock now, and always later than the
    /// previous one (the responder refuses anything not newer).
    fn next_timestamp(&mut self, now: Instant) -> Tai64n {
        let (at, secs, nanos) = self.wall_clock;
        let elapsed = now.saturating_since(at);
        let total = Duration::new(secs, nanos) + elapsed;
        let mut t = Tai64n::from_unix(total.as_secs(), total.subsec_nanos());
        if t <= self.last_sent_timestamp {
            // Within the same 16.8 ms step (or a clock set backwards): one step on.
            let mut b = self.last_sent_timestamp.0;
            let n = u32::from_be_bytes([b[8], b[9], b[10], b[11]]).wrapping_add(1 << 24);
            if !((1 << 24)..1_000_000_000).contains(&n) {
                let sec = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) + 1;
                b[..8].copy_from_slice(&sec.to_be_bytes());
                b[8..].copy_from_slice(&0u32.to_be_bytes());
            } else {
                b[8..].copy_from_slice(&n.to_be_bytes());
            }
            t = Tai64n(b);
        }
        self.last_sent_timestamp = t;
        t
    }

    /// The last handshake timestamp accepted from the peer (replay protection).
    pub fn last_timestamp(&self) -> Tai64n {
        self.last_timestamp
    }

    /// Records an accepted timestamp (the endpoint checks monotonicity).
    pub fn set_last_timestamp(&mut self, t: Tai64n) {
        self.last_timestamp = t;
    }

    fn fresh_index(&mut self) -> u32 {
        // A simple permutation of the seed: distinct across rekeys of one session.
        self.next_index = self
            .next_index
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(0x7F4A_7C15)
            | 1;
        self.next_index
    }

    /// Indexes that address this connection (current and recent sessions).
    pub fn indexes(&self) -> impl Iterator<Item = u32> + '_ {
        self.sessions.indexes()
    }

    /// Adds a path (a WAN on the router; a path id the peer used, on the
    /// concentrator).
    pub fn add_path(&mut self, id: u8, config: PathConfig, now: Instant) {
        if let Some(slot) = self.paths.get_mut(usize::from(id)) {
            *slot = Some(Path::new(id, config, now));
            self.rx[usize::from(id)] = RxPath::default();
        }
    }

    fn ensure_path(&mut self, id: u8, now: Instant) {
        if self.paths.get(usize::from(id)).is_some_and(Option::is_none) {
            self.add_path(id, PathConfig::default(), now);
        }
    }

    /// Removes a path (its WAN went away) and drops what was queued on it.
    pub fn remove_path(&mut self, id: u8) {
        if let Some(slot) = self.paths.get_mut(usize::from(id)) {
            *slot = None;
            self.queues[usize::from(id)].clear();
        }
    }

    /// Snapshots of every path.
    pub fn paths(&self) -> impl Iterator<Item = PathInfo> + '_ {
        self.paths.iter().flatten().map(Path::info)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let (c, d) = (self.compressor.stats(), self.out.decompressor.stats());
        Stats {
            compressed: c.compressed,
            compress_saved: c.saved_bytes,
            context_misses: d.misses,
            expand_malformed: d.malformed,
            ..self.stats
        }
    }

    /// Reorder counters of a class.
    pub fn reorder_stats(&self, class: Class) -> ReorderStats {
        self.reorder[class as usize].stats()
    }

    /// Whether a session key is established.
    pub fn is_established(&self) -> bool {
        self.sessions.current().is_some()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Counters of the aggregate class's paced release toward the LAN.
    pub fn release_stats(&self) -> ReleaseStats {
        self.out.release.stats()
    }

    /// The next IP packet for the LAN at `now`, in order within its class, if
    /// any. Priority classes come first; the aggregate class is paced
    /// ([`crate::release`]), so `None` may leave packets waiting until
    /// [`Connection::poll_timeout`].
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.out
            .delivered
            .pop_front()
            .or_else(|| self.out.release.pop(now))
    }

    // --- Sending --------------------------------------------------------------

    /// Hands an IP packet from the LAN to the tunnel.
    pub fn send(&mut self, now: Instant, class: Class, packet: &[u8]) -> Result<(), SendError> {
        if packet.len() > MAX_PACKET {
            self.stats.tx_too_large += 1;
            return Err(SendError::TooLarge);
        }
        if !self.is_established() {
            if self.staged.len() >= MAX_STAGED {
                self.staged.pop_front();
            }
            self.staged.push_back((class, packet.to_vec()));
            return Ok(());
        }
        let tcp = is_tcp(packet);
        let flow = crate::flow::bucket(packet);
        let mut squeezed = [0u8; MAX_PACKET];
        let compressed = match class {
            Class::Aggregate => self.compressor.compress(packet, &mut squeezed),
            Class::Redundant | Class::Interactive => None,
        };
        let packet = compressed.map_or(packet, |n| &squeezed[..n]);
        let compressed = compressed.is_some();
        let size = packet.len() + crate::wire::OVERHEAD;
        let sparse = class == Class::Aggregate && self.sparse[flow].take(now, size);
        // (rank, path, expected arrival)
        let mut ranked: heapless::Vec<(Duration, u8, Duration), MAX_PATHS> = heapless::Vec::new();
        let any_primary = self
            .paths
            .iter()
            .flatten()
            .any(|p| p.usable() && !p.config.backup);
        let candidates = || {
            self.paths
                .iter()
                .flatten()
                .filter(move |p| !(p.config.backup && any_primary))
        };
        let bulk = class == Class::Aggregate;
        let mut limit = crate::path::MAX_BACKLOG;
        // A TCP packet of the aggregate class may use only the paths within
        // `tcp_spread_limit` of the fastest (a far one puts its delay on every
        // later packet of the flow): `latest` bounds their unloaded arrival.
        // Among those, a nearer path's pacer may hold the difference in delay
        // to the farthest one on top of `limit`: the flow's in-order delivery
        // waits for the far path's packets anyway, and without it the far path
        // was used only when the near ones overflowed, at the top of TCP's
        // sawtooth (S4's LTE path carried 68% of its rate). Light flows go
        // ahead of that queue (`SPARSE_RATE`). Other traffic may reach any
        // path, so the pacers stay at `limit` for it. TCP's own limit is its
        // unloaded round trip (`tcp_backlog`: the queue a loss-based sender
        // needs).
        // Each candidate with its unloaded arrival (`None`: not usable now).
        let unloaded: heapless::Vec<(&Path, Option<Duration>), MAX_PATHS> = candidates()
            .map(|p| (p, p.arrival_unloaded(now, size)))
            .collect();
        let arrivals = || unloaded.iter().filter_map(|&(_, a)| a);
        let mut latest = Duration::MAX;
        let mut farthest = None;
        if bulk && tcp {
            // The bound is on delay alone: a degraded path that is near in delay
            // stays available (it ranks lower), a far one does not.
            if let Some(fastest) = arrivals().min() {
                latest = fastest + crate::path::MAX_BACKLOG + tcp_spread_limit(fastest);
                farthest = arrivals().filter(|&a| a <= latest).max();
                if let Some(far) = farthest {
                    limit = limit.max(tcp_backlog(fastest, far));
                }
            }
        }
        if bulk && now < self.drop_grace {
            // On top of TCP's own limit too: where that was already
            // GRACE_BACKLOG (S1), the grace had no room left, and a
            // sender that probes past the pacers (bbr's 1.25 phase) lost
            // every packet of the overshoot (bbr, S1: 1.0-1.5% retransmitted
            // against 0.1-0.7%).
            limit += crate::path::GRACE_BACKLOG - crate::path::MAX_BACKLOG;
        }
        for &(p, own) in &unloaded {
            let Some(own) = own.filter(|&a| a <= latest) else {
                continue;
            };
            if self.queues[usize::from(p.id)].len() >= MAX_QUEUED {
                continue;
            }
            let arrival = if class.priority() || sparse {
                Some(own)
            } else {
                let spread = farthest.map_or(Duration::ZERO, |far| far.saturating_sub(own));
                p.arrival_within(now, size, limit + spread)
            };
            if let Some(a) = arrival {
                let _ = ranked.push((p.penalised(a), p.id, a));
            }
        }
        // It borrows the paths, which sending below changes.
        drop(unloaded);
        ranked.sort_unstable();
        let copies = match class {
            Class::Aggregate | Class::Interactive => 1,
            Class::Redundant => 2,
        };
        if ranked.is_empty() {
            self.stats.tx_dropped += 1;
            if compressed {
                self.compressor.unsent();
            }
            if bulk && now >= self.drop_grace {
                // One drop is the congestion signal; the sender (TCP, QUIC)
                // cannot react before it has seen the loss, a round trip
                // later. Dropping the rest of that round's overshoot too costs
                // retransmissions and no more slowing down (one reduction per
                // window), so the pacers take GRACE_BACKLOG - MAX_BACKLOG more
                // until then: at most one drop per round trip below that.
                let rtt = candidates()
                    .filter(|p| p.arrival_unloaded(now, size).is_some_and(|a| a <= latest))
                    .map(Path::rtt_bound)
                    .max()
                    .unwrap_or_default();
                self.drop_grace = now + rtt + crate::path::MAX_BACKLOG;
            }
            return Err(SendError::Dropped);
        }
        let seq = self.seq[class as usize];
        self.seq[class as usize] = seq.wrapping_add(1) & SEQ_MASK;
        let last = core::mem::replace(&mut self.flow_last[class as usize][flow], seq);
        // The flow's previous packet, as a distance back (0: none the
        // receiver could still be waiting for).
        let pred = match seq.wrapping_sub(last) & SEQ_MASK {
            d if last != NO_SEQ && d <= u32::from(MAX_PRED) => d as u16,
            _ => 0,
        };
        for (n, &(_, path, _)) in ranked.iter().take(copies).enumerate() {
            let repr = InnerRepr {
                kind: InnerKind::Data,
                flags: if n == 0 { 0 } else { InnerRepr::FLAG_DUPLICATE },
                class: class as u8,
                seq,
                pred,
                tx_time: 0,
            };
            let kind = if class.priority() || sparse {
                Kind::Priority
            } else {
                Kind::Bulk
            };
            let queued = self.enqueue(now, path, repr, packet, kind);
            if kind == Kind::Bulk {
                if let Some(p) = self.paths[usize::from(path)].as_ref() {
                    let f = &mut self.sparse[flow];
                    f.queued_until = f.queued_until.max(p.pacer_free_at());
                }
            } else if sparse && n == 0 {
                self.stats.sparse_sent += 1;
            }
            if !queued && compressed {
                // Its slot may have been installed by this packet.
                self.compressor.unsent();
            }
            self.arm_padding(now, path);
        }
        self.stats.tx_packets += 1;
        Ok(())
    }

    /// Queues an inner packet for `path`: bulk at its pacing time, priority
    /// packets and reports at once, ahead of bulk (priority packets still count
    /// against the pacer, so bulk yields to them). The send stamp is written and
    /// the packet sealed when it actually leaves. `false`: dropped (no such
    /// path, or its queue is full).
    fn enqueue(
        &mut self,
        now: Instant,
        path: u8,
        repr: InnerRepr,
        payload: &[u8],
        kind: Kind,
    ) -> bool {
        let Some(p) = self.paths[usize::from(path)].as_mut() else {
            return false;
        };
        let len = TRANSPORT_HEADER_LEN + INNER_HEADER_LEN + payload.len() + TAG_LEN;
        let at = match kind {
            Kind::Bulk => p.schedule(now, len),
            Kind::Priority => {
                self.ahead[usize::from(path)] += p.book_ahead(now, len);
                now
            }
            Kind::Report | Kind::Nack => now,
        };
        let ahead_base = self.ahead[usize::from(path)];
        let is_report = kind == Kind::Report;
        let is_nack = kind == Kind::Nack;
        let q = &mut self.queues[usize::from(path)];
        if q.len() >= MAX_QUEUED {
            self.stats.tx_dropped += 1;
            return false;
        }
        let mut data = Vec::with_capacity(len);
        data.resize(TRANSPORT_HEADER_LEN, 0);
        data.resize(TRANSPORT_HEADER_LEN + INNER_HEADER_LEN, 0);
        let _ = repr.emit(&mut data[TRANSPORT_HEADER_LEN..]);
        data.extend_from_slice(payload);
        data.resize(len, 0);
        let item = Queued {
            at,
            ahead_base,
            data,
            is_report,
            is_nack,
            priority: kind != Kind::Bulk,
            seq: (repr.kind == InnerKind::Data && repr.flags & InnerRepr::FLAG_DUPLICATE == 0)
                .then_some((repr.class, repr.seq, repr.pred)),
        };
        if kind == Kind::Bulk {
            q.push_back(item);
        } else {
            // After the other urgent packets, before any bulk.
            let pos = q.iter().position(|i| !i.priority).unwrap_or(q.len());
            q.insert(pos, item);
        }
        true
    }

    /// When `item`, queued for `path`, may leave: a bulk packet's booked slot
    /// moved by what went ahead of it since it was booked.
    fn due(&self, path: usize, item: &Queued) -> Instant {
        if item.priority {
            return item.at;
        }
        item.at + self.ahead[path].saturating_sub(item.ahead_base)
    }

    /// The next datagram to send now, written into `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.poll_handshake(now, buf) {
            return Some(t);
        }
        self.pad(now);
        for i in 0..MAX_PATHS {
            let silent = self.paths[i]
                .as_ref()
                .is_some_and(|p| !p.usable() || p.suspect(now));
            if silent && self.queues[i].iter().any(Queued::is_data) {
                self.reroute(now, i);
            }
        }
        // Among the paths with a packet due, the one due longest.
        let (path, _) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| Some((i, self.due(i, q.front()?))).filter(|&(_, at)| at <= now))
            .min_by_key(|&(_, at)| at)?;
        let item = self.queues[path].pop_front()?;
        let mut data = item.data;
        // Stamp the inner header with the departure time, then seal.
        InnerPacket::new_unchecked(&mut data[TRANSPORT_HEADER_LEN..]).set_tx_time(now.stamp());
        let plain_len = data.len() - TRANSPORT_HEADER_LEN - TAG_LEN;
        self.prune_store(now);
        if let (Some((class, seq, pred)), Some(key)) = (item.seq, self.sessions.current()) {
            if class == Class::Aggregate as u8 {
                if self.store.len() >= REPAIR_STORE {
                    self.store.pop_front();
                }
                self.store.push_back(Stored {
                    path: path as u8,
                    counter: key.sent(path as u8),
                    at: now,
                    class,
                    seq,
                    pred,
                    payload: data[TRANSPORT_HEADER_LEN + INNER_HEADER_LEN..]
                        [..plain_len - INNER_HEADER_LEN]
                        .to_vec(),
                });
            }
        }
        let sealed = self.sessions.seal(path as u8, &mut data, plain_len)?;
        let n = sealed.min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        if let Some(p) = self.paths[path].as_mut() {
            if item.is_nack {
                p.on_sent_nack(n);
            } else {
                p.on_sent(now, n, item.is_report);
            }
        }
        Some(Transmit {
            path: path as u8,
            len: n,
        })
    }

    /// Moves the data packets still queued for `from`, a path that fell silent
    /// (suspect or down), to the path where each now arrives first; copies
    /// (a redundant packet's second, padding) are dropped. Reports and loss
    /// reports stay: they are how the path proves itself alive again.
    ///
    /// Those packets have not left yet. Sent into a cut link they are lost,
    /// and nothing shows the peer the hole: no later packet comes on that
    /// path to reveal a gap in its counters, so the aggregate class waits out
    /// its reorder timeout and the sender retransmits. A TCP flow may keep
    /// its round trip and the delay spread in a nearer path's pacer
    /// (`tcp_backlog`), 60 ms of S2's DSL line.
    fn reroute(&mut self, now: Instant, from: usize) {
        let queue = core::mem::take(&mut self.queues[from]);
        fn others(paths: &[Option<Path>], from: usize) -> impl Iterator<Item = &Path> + Clone {
            paths
                .iter()
                .flatten()
                .filter(move |p| usize::from(p.id) != from)
        }
        let mut keep = VecDeque::new();
        for mut item in queue {
            if !item.is_data() {
                keep.push_back(item);
                continue;
            }
            if item.seq.is_none() {
                continue;
            }
            let len = item.data.len();
            let target = first_arrival(
                others(&self.paths, from),
                |p| p.usable() && !p.suspect(now),
                |p| p.arrival_within(now, len, Duration::MAX),
                u8::MAX,
            )
            .map(usize::from);
            let Some(to) = target.filter(|&to| self.queues[to].len() < MAX_QUEUED) else {
                self.stats.tx_dropped += 1;
                continue;
            };
            let Some(p) = self.paths[to].as_mut() else {
                continue;
            };
            let q = &mut self.queues[to];
            if item.priority {
                self.ahead[to] += p.book_ahead(now, len);
                item.at = now;
                let pos = q.iter().position(|i| !i.priority).unwrap_or(q.len());
                q.insert(pos, item);
            } else {
                item.at = p.schedule(now, len);
                item.ahead_base = self.ahead[to];
                q.push_back(item);
            }
            self.stats.rerouted += 1;
        }
        self.queues[from] = keep;
    }

    // --- Receiving ------------------------------------------------------------

    /// Takes in one datagram. Returns the path id it authenticated for.
    pub fn handle(&mut self, now: Instant, datagram: &mut [u8]) -> Option<u8> {
        self.handle_received(now, now, datagram)
    }

    /// [`Connection::handle`] for a datagram that arrived at `arrived`, before
    /// `now` (the kernel's receive timestamp). One-way delays, receive rates
    /// and round trips are measured from the arrival, so the time a datagram
    /// waited for a busy caller (braidd writing a long released chain to its
    /// TUN device, say) does not read as a WAN queue, which would cut the
    /// path's rate. An arrival later than `now`, or earlier than one given
    /// before, is clamped between them.
    pub fn handle_received(
        &mut self,
        now: Instant,
        arrived: Instant,
        datagram: &mut [u8],
    ) -> Option<u8> {
        let arrived = arrived.max(self.last_arrival).min(now);
        self.last_arrival = arrived;
        match MessageType::of(datagram) {
            Some(MessageType::Transport) => self.handle_transport(now, arrived, datagram),
            Some(MessageType::HandshakeResponse) => self.handle_response(now, datagram),
            Some(MessageType::CookieReply) => {
                if let Some((init, _, _)) = &self.pending {
                    if let Ok(c) =
                        handshake::receive_cookie_reply(&self.remote, &init.mac1, datagram)
                    {
                        self.cookie = Some((c, now));
                    }
                }
                None
            }
            // Initiations are for the endpoint (the responder's table of sessions).
            Some(MessageType::HandshakeInit) | None => {
                self.stats.rx_malformed += 1;
                None
            }
        }
    }

    fn handle_response(&mut self, now: Instant, msg: &[u8]) -> Option<u8> {
        let (init, _, path) = self.pending.as_ref()?;
        let path = *path;
        match handshake::receive_response(&self.local, &self.remote, init, msg) {
            Ok(keys) => {
                self.install(keys, now);
                self.pending = None;
                // Confirm the session to the responder at once: a report on every path.
                for id in 0..MAX_PATHS as u8 {
                    if self.paths[usize::from(id)].is_some() {
                        self.queue_report(now, id);
                    }
                }
                Some(path)
            }
            Err(_) => {
                self.stats.rx_unauthentic += 1;
                None
            }
        }
    }

    fn install(&mut self, keys: SessionKeys, now: Instant) {
        self.sessions.install(keys, now);
        self.events.push_back(Event::Established);
        while let Some((class, p)) = self.staged.pop_front() {
            let _ = self.send(now, class, &p);
        }
    }

    fn handle_transport(
        &mut self,
        now: Instant,
        arrived: Instant,
        datagram: &mut [u8],
    ) -> Option<u8> {
        let opened = match self.sessions.open(now, datagram) {
            Ok(o) => o,
            Err(e) => {
                match e {
                    crate::crypto::OpenError::Replayed { .. } => self.stats.rx_replayed += 1,
                    crate::crypto::OpenError::Unauthentic => self.stats.rx_unauthentic += 1,
                    crate::crypto::OpenError::Malformed(_) => self.stats.rx_malformed += 1,
                    crate::crypto::OpenError::WrongSession(_) => self.stats.rx_unknown_session += 1,
                }
                return None;
            }
        };
        self.stats.rx_ok += 1;
        let (path, counter, len) = opened;
        self.ensure_path(path, now);
        let plain = &datagram[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + len];
        let Ok(inner) = InnerPacket::new_checked(plain) else {
            self.stats.rx_malformed += 1;
            return Some(path);
        };
        let repr = InnerRepr::parse(&inner);
        let was_down = self.paths[usize::from(path)].as_ref().map(Path::state);
        if let Some(p) = self.paths[usize::from(path)].as_mut() {
            p.on_received(now);
        }
        let gap = self.rx[usize::from(path)].on_packet(
            arrived,
            counter,
            datagram.len(),
            repr.tx_time,
            &mut self.rx_clock,
        );
        match repr.kind {
            InnerKind::Data => {
                self.rx[usize::from(path)].on_data(now);
                let class = usize::from(repr.class).min(CLASSES - 1);
                if class == Class::Aggregate as usize {
                    self.out.release.on_arrival(inner.payload().len());
                }
                let mut deliver = self.out.deliverer(class, now);
                let sent = if repr.flags & InnerRepr::FLAG_REPAIR != 0 {
                    Sent::Repair
                } else if repr.flags & InnerRepr::FLAG_DUPLICATE != 0 {
                    Sent::Copy
                } else {
                    Sent::First
                };
                self.reorder[class].push(
                    now,
                    repr.seq,
                    repr.pred,
                    sent,
                    inner.payload(),
                    &mut deliver,
                );
            }
            InnerKind::Control => match Control::decode(inner.payload()) {
                Ok(Control::Report(r)) => {
                    for pr in &r.paths {
                        if let Some(p) = self
                            .paths
                            .get_mut(usize::from(pr.path))
                            .and_then(Option::as_mut)
                        {
                            p.on_report(arrived, pr);
                        }
                        self.arm_padding(now, pr.path);
                    }
                }
                Ok(Control::Nack(n)) => self.repair(now, &n),
                Ok(Control::Forget(mask)) => self.compressor.forget(mask),
                Ok(Control::Close) | Err(_) => {}
            },
        }
        if let Some(gap) = gap {
            self.request_repair(now, path, gap);
        }
        self.forget_missed(now);
        self.note_state_change(path, was_down);
        Some(path)
    }

    /// The fastest usable path (by unloaded arrival); on a tie, any other than
    /// `avoid` (a repair goes on the path that lost it only if no other is as
    /// fast: a slower one would arrive after the receiver gave up).
    fn best_path(&self, now: Instant, size: usize, avoid: u8) -> Option<u8> {
        first_arrival(
            self.paths.iter().flatten(),
            Path::usable,
            |p| p.arrival_unloaded(now, size),
            avoid,
        )
    }

    /// Reports counters missing on `path` to the peer and holds the aggregate
    /// class's holes for the repair.
    fn request_repair(&mut self, now: Instant, path: u8, gap: NackRange) {
        if !self.is_established() {
            return;
        }
        let mut ranges = heapless::Vec::new();
        let _ = ranges.push(gap);
        let via = self.best_path(now, 64, u8::MAX).unwrap_or(path);
        if !self.enqueue_control(now, via, &Control::Nack(Nack { path, ranges }), Kind::Nack) {
            return;
        }
        self.stats.nacks_sent += 1;
        let rtt = self
            .paths
            .iter()
            .flatten()
            .filter(|p| p.usable())
            .map(Path::rtt_bound)
            .min();
        if let Some(rtt) = rtt {
            let wait = rtt + crate::path::MAX_BACKLOG + REPAIR_MARGIN;
            self.reorder[Class::Aggregate as usize].hold(now, now + wait);
        }
    }

    /// Schedules a padding check for `path` when its pacer is free, if its
    /// rate search is probing upwards with LAN data about.
    fn arm_padding(&mut self, now: Instant, path: u8) {
        let Some(p) = self.paths.get(usize::from(path)).and_then(Option::as_ref) else {
            return;
        };
        if p.wants_padding(now) && self.pad_at[usize::from(path)].is_none() {
            self.pad_at[usize::from(path)] = Some(p.pacer_free_at().max(now));
        }
    }

    /// Fills the idle pacers of paths probing upwards with copies of the newest
    /// kept packet: the receiver drops them as duplicates, and the probe finds
    /// the path's rate. Without them a slower path only carries what faster
    /// ones leave over, a TCP flow's demand comes and goes with its window,
    /// and the probe rarely meets it: measured, S1's or S2's slower path
    /// stuck at half its rate for seconds. Each check either pads (and
    /// checks again when the pacer is free) or stops until data or a report
    /// arms it again, so it never spins.
    fn pad(&mut self, now: Instant) {
        for i in 0..MAX_PATHS {
            if self.pad_at[i].is_none_or(|t| t > now) {
                continue;
            }
            self.pad_at[i] = None;
            let Some(p) = self.paths[i].as_ref() else {
                continue;
            };
            if !p.wants_padding(now) {
                continue;
            }
            let later = p.pacer_free_at().max(now + Duration::from_micros(100));
            if !self.queues[i].is_empty() || p.pacer_free_at() > now {
                self.pad_at[i] = Some(later);
                continue;
            }
            let Some(last) = self.store.back() else {
                continue;
            };
            let repr = last.resent(InnerRepr::FLAG_DUPLICATE);
            let payload = last.payload.clone();
            self.enqueue(now, i as u8, repr, &payload, Kind::Bulk);
            self.stats.padding_sent += 1;
            if let Some(p) = self.paths[i].as_ref() {
                self.pad_at[i] = Some(p.pacer_free_at().max(now + Duration::from_micros(100)));
            }
        }
    }

    /// Forgets kept packets too old to repair.
    fn prune_store(&mut self, now: Instant) {
        while self
            .store
            .front()
            .is_some_and(|s| now.saturating_since(s.at) > REPAIR_MAX_AGE)
        {
            self.store.pop_front();
        }
    }

    /// Sends again what the peer reported missing, if it is still kept.
    fn repair(&mut self, now: Instant, nack: &Nack) {
        let mut budget = MAX_REPAIRS_PER_NACK;
        for r in &nack.ranges {
            for counter in r.first..r.first.saturating_add(u64::from(r.count)) {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let Some(i) = self
                    .store
                    .iter()
                    .position(|s| s.path == nack.path && s.counter == counter)
                else {
                    continue;
                };
                let Some(s) = self.store.remove(i) else {
                    continue;
                };
                if now.saturating_since(s.at) > REPAIR_MAX_AGE {
                    continue;
                }
                let size = s.payload.len() + crate::wire::OVERHEAD;
                let Some(via) = self.best_path(now, size, s.path) else {
                    continue;
                };
                let repr = s.resent(InnerRepr::FLAG_REPAIR);
                // Ahead of the path's backlog: the receiver holds the hole
                // for about a round trip of its fastest path, and a TCP flow
                // may keep tens of milliseconds queued in this pacer (see
                // `send`). Behind it, repairs arrived after their hole was
                // given up on, and the flow lost the packet after all (bench
                // S4, cubic: 1-2 holes skipped and 117-315 late packets per
                // run, against 0 and 3-11 ahead of it).
                self.enqueue(now, via, repr, &s.payload, Kind::Priority);
                self.stats.repairs_sent += 1;
            }
        }
    }

    fn note_state_change(&mut self, path: u8, before: Option<PathState>) {
        let after = self.paths[usize::from(path)].as_ref().map(Path::state);
        let usable = |s: Option<PathState>| matches!(s, Some(PathState::Up | PathState::Degraded));
        if !usable(before) && usable(after) {
            self.events.push_back(Event::PathUp(path));
        }
    }

    // --- Timers ---------------------------------------------------------------

    /// When [`Connection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for (i, q) in self.queues.iter().enumerate() {
            take(q.front().map(|item| self.due(i, item)));
        }
        for &t in &self.pad_at {
            take(t);
        }
        for r in &self.reorder {
            take(r.deadline());
        }
        take(self.out.release.next_release());
        if self.is_established() {
            for (i, p) in self.paths.iter().enumerate() {
                if let Some(p) = p {
                    take(
                        p.next_report(self.rx[i].received_since_report())
                            .or(Some(Instant::ZERO)),
                    );
                    take(p.liveness_deadline());
                }
            }
        }
        take(self.handshake_deadline());
        t
    }

    /// Runs what is due: liveness, reorder timeouts, reports, handshakes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sessions.expire(now);
        self.prune_store(now);
        for i in 0..MAX_PATHS {
            let went_down = self.paths[i]
                .as_mut()
                .is_some_and(|p| p.check_liveness(now));
            if went_down {
                self.events.push_back(Event::PathDown(i as u8));
            }
        }
        for (class, r) in self.reorder.iter_mut().enumerate() {
            let mut deliver = self.out.deliverer(class, now);
            r.on_timeout(now, &mut deliver);
        }
        self.forget_missed(now);
        self.update_reorder_floor(now);
        if self.is_established() {
            for id in 0..MAX_PATHS as u8 {
                let due = self.paths[usize::from(id)].as_ref().is_some_and(|p| {
                    p.report_due(now, self.rx[usize::from(id)].received_since_report())
                });
                if due {
                    self.queue_report(now, id);
                }
            }
        }
    }

    /// Tells the peer which compression contexts were missing here, at most
    /// once per `FORGET_INTERVAL` (until then the slots stay pending).
    fn forget_missed(&mut self, now: Instant) {
        if now < self.forget_at || !self.is_established() {
            return;
        }
        let mask = self.out.decompressor.take_missed();
        if mask == 0 {
            return;
        }
        let via = self.best_path(now, 64, u8::MAX);
        if let Some(via) = via {
            self.enqueue_control(now, via, &Control::Forget(mask), Kind::Nack);
        }
        self.forget_at = now + FORGET_INTERVAL;
    }

    /// Sets the reorder buffers' minimum timeout to the one-way-delay spread of the
    /// paths that carried data recently, plus 2 ms.
    fn update_reorder_floor(&mut self, now: Instant) {
        let ranges = self
            .rx
            .iter()
            .filter_map(|r| r.owd_range(now, SPREAD_ACTIVE));
        let (lo, hi) = ranges.fold((u64::MAX, 0), |(lo, hi), (l, h)| (lo.min(l), hi.max(h)));
        let floor = if hi >= lo {
            Duration::from_micros(hi - lo) + Duration::from_millis(2)
        } else {
            Duration::ZERO
        };
        for r in &mut self.reorder {
            r.set_floor(floor);
        }
    }

    /// Encodes a control message and queues it on `path`; false if it could not
    /// be encoded (never, for the messages this side builds).
    fn enqueue_control(&mut self, now: Instant, path: u8, msg: &Control, kind: Kind) -> bool {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let Ok(enc) = msg.encode(&mut buf) else {
            return false;
        };
        let enc = enc.to_vec();
        let repr = InnerRepr {
            kind: InnerKind::Control,
            flags: 0,
            class: 0,
            seq: 0,
            pred: 0,
            tx_time: 0,
        };
        self.enqueue(now, path, repr, &enc, kind);
        true
    }

    fn queue_report(&mut self, now: Instant, path: u8) {
        let entry: PathReport = self.rx[usize::from(path)].report(now, path);
        let mut paths = heapless::Vec::new();
        let _ = paths.push(entry);
        if !self.enqueue_control(now, path, &Control::Report(Report { paths }), Kind::Report) {
            return;
        }
        if let Some(p) = self.paths[usize::from(path)].as_mut() {
            // Count the report as sent now for the heartbeat timer, even if the
            // queue is drained a little later.
            p.on_sent(now, 0, true);
            p.sent_packets -= 1;
        }
    }

    // --- Handshakes -----------------------------------------------------------

    fn handshake_deadline(&self) -> Option<Instant> {
        if self.role != Role::Initiator || self.paths.iter().all(Option::is_none) {
            return None;
        }
        match (&self.pending, self.sessions.current_age_start()) {
            (Some((_, sent, _)), started) => Some(
                *sent
                    + if started.is_some() || self.is_established() {
                        REKEY_TIMEOUT
                    } else {
                        FIRST_HANDSHAKE_RETRY
                    },
            ),
            (None, None) => Some(Instant::ZERO),
            (None, Some(started)) => Some(started + REKEY_AFTER),
        }
    }

    fn poll_handshake(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.handshake_deadline().is_none_or(|d| d > now) {
            return None;
        }
        // Rotate over the paths, so a dead first WAN does not block the handshake.
        let ids: heapless::Vec<u8, MAX_PATHS> = (0..MAX_PATHS as u8)
            .filter(|&i| self.paths[usize::from(i)].is_some())
            .collect();
        let path = ids[usize::from(self.path_rr) % ids.len()];
        self.path_rr = self.path_rr.wrapping_add(1);
        let index = self.fresh_index();
        let ts = self.next_timestamp(now);
        let cookie = self
            .cookie
            .filter(|(_, t)| {
                now.saturating_since(*t).as_micros() < u128::from(handshake::COOKIE_VALID_US)
            })
            .map(|(c, _)| c);
        let (state, msg) = handshake::initiate(
            &self.local,
            &self.remote,
            index,
            ts,
            cookie.as_ref(),
            &mut self.rng,
        )
        .ok()?;
        self.pending = Some((state, now, path));
        self.stats.handshakes_sent += 1;
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        Some(Transmit { path, len: n })
    }
}

#[cfg(test)]
mod tests;
