//! A deterministic simulator: a router and a concentrator (the real sans-IO
//! `Connection` and `Endpoint`) joined by simulated WAN links under a virtual
//! clock, seeded, like quinn-proto's `Pair` or smoltcp's netsim.
//!
//! Each path has a link per direction with a rate (serialisation), a one-way
//! delay, jitter that never reorders, random loss, a tail-drop queue, and a cut
//! switch. Traffic generators put numbered packets in at the router; sinks record
//! what comes out at the concentrator, and when.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::time::Duration;

use braid_tunnel::connection::{Class, Connection, Event};
use braid_tunnel::endpoint::{Endpoint, Incoming};
use braid_tunnel::path::PathConfig;
use braid_tunnel::time::Instant;

/// A small seeded PRNG (xorshift64*), so the simulation depends on nothing else.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        b
    }
}

/// One direction of one path.
#[derive(Debug, Clone, Copy)]
pub struct LinkSpec {
    pub rate_bps: u64,
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// Tail-drop queue, in bytes.
    pub queue: usize,
}

impl LinkSpec {
    pub fn new(mbps: f64, delay_ms: f64) -> Self {
        let rate_bps = (mbps * 1e6) as u64;
        Self {
            rate_bps,
            delay: Duration::from_micros((delay_ms * 1000.0) as u64),
            jitter: Duration::ZERO,
            loss: 0.0,
            // About 50 ms of queue, as a DSL or LTE modem buffers.
            queue: ((rate_bps / 8) as usize / 20).max(15_000),
        }
    }
    pub fn jitter_ms(mut self, j: f64) -> Self {
        self.jitter = Duration::from_micros((j * 1000.0) as u64);
        self
    }
    pub fn loss(mut self, l: f64) -> Self {
        self.loss = l;
        self
    }
}

pub struct Link {
    pub spec: LinkSpec,
    pub up: bool,
    queue: VecDeque<(u64, Vec<u8>)>,
    busy_until: u64,
    last_deliver: u64,
    rng: Rng,
    pub dropped_queue: u64,
    pub dropped_loss: u64,
    pub dropped_cut: u64,
    pub carried_bytes: u64,
    /// Largest queue seen, in microseconds of serialisation.
    pub max_backlog_us: u64,
    /// Largest number of packets handed over at one instant.
    pub max_burst: u32,
    burst: (u64, u32),
}

impl Link {
    pub fn new(spec: LinkSpec, seed: u64) -> Self {
        Self {
            spec,
            up: true,
            queue: VecDeque::new(),
            busy_until: 0,
            last_deliver: 0,
            rng: Rng::new(seed),
            dropped_queue: 0,
            dropped_loss: 0,
            dropped_cut: 0,
            carried_bytes: 0,
            max_backlog_us: 0,
            max_burst: 0,
            burst: (u64::MAX, 0),
        }
    }

    pub fn send(&mut self, now: u64, data: Vec<u8>) {
        if !self.up {
            self.dropped_cut += 1;
            return;
        }
        if self.spec.loss > 0.0 && self.rng.unit() < self.spec.loss {
            self.dropped_loss += 1;
            return;
        }
        if self.burst.0 == now {
            self.burst.1 += 1;
        } else {
            self.burst = (now, 1);
        }
        self.max_burst = self.max_burst.max(self.burst.1);
        let backlog_us = self.busy_until.saturating_sub(now);
        self.max_backlog_us = self.max_backlog_us.max(backlog_us);
        let backlog_bytes = backlog_us * self.spec.rate_bps / 8 / 1_000_000;
        if backlog_bytes as usize + data.len() > self.spec.queue {
            self.dropped_queue += 1;
            return;
        }
        let start = self.busy_until.max(now);
        self.busy_until = start + data.len() as u64 * 8 * 1_000_000 / self.spec.rate_bps;
        let jitter = if self.spec.jitter.is_zero() {
            0
        } else {
            (self.rng.unit() * self.spec.jitter.as_micros() as f64) as u64
        };
        let at =
            (self.busy_until + self.spec.delay.as_micros() as u64 + jitter).max(self.last_deliver);
        self.last_deliver = at;
        self.carried_bytes += data.len() as u64;
        self.queue.push_back((at, data));
    }

    pub fn next(&self) -> Option<u64> {
        self.queue.front().map(|(t, _)| *t)
    }

    pub fn pop_due(&mut self, now: u64) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            self.queue.pop_front().map(|(_, d)| d)
        } else {
            None
        }
    }

    /// Cuts the link: everything in flight on it is lost too.
    pub fn cut(&mut self) {
        self.up = false;
        self.dropped_cut += self.queue.len() as u64;
        self.queue.clear();
    }
}

/// A packet as the sinks see it: flow, sequence, send time.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub flow: u8,
    pub seq: u32,
    pub sent_us: u64,
    pub recv_us: u64,
    pub len: usize,
}

/// A constant-rate source of packets.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: u8,
    pub class: Class,
    pub size: usize,
    pub interval_us: u64,
    pub start_us: u64,
    pub stop_us: u64,
    pub next_us: u64,
    pub seq: u32,
    pub refused: u64,
    /// IPv4 protocol number written in the header (17, UDP, unless set).
    pub proto: u8,
}

impl Flow {
    pub fn cbr(
        id: u8,
        class: Class,
        mbps: f64,
        size: usize,
        start: Duration,
        stop: Duration,
    ) -> Self {
        let interval_us = ((size * 8) as f64 / mbps).max(1.0) as u64;
        Self {
            id,
            class,
            size,
            interval_us,
            start_us: start.as_micros() as u64,
            stop_us: stop.as_micros() as u64,
            next_us: start.as_micros() as u64,
            seq: 0,
            refused: 0,
            proto: 17,
        }
    }

    /// The same flow with packets marked as TCP (the scheduler treats TCP
    /// differently; the sim still sends at a constant rate).
    pub fn tcp(mut self) -> Self {
        self.proto = 6;
        self
    }

    /// 50 packets per second of 160 bytes: a VoIP-like latency probe.
    pub fn probe(id: u8, class: Class, start: Duration, stop: Duration) -> Self {
        let mut f = Self::cbr(id, class, 0.0, 160, start, stop);
        f.interval_us = 20_000;
        f
    }

    fn packet(&self, now: u64) -> Vec<u8> {
        self.packet_at(self.seq, now)
    }

    /// Packet `seq` of the flow, sent at `now`: what the far end must
    /// receive, byte for byte.
    pub fn packet_at(&self, seq: u32, now: u64) -> Vec<u8> {
        // A minimal IPv4 header (version/IHL, total length, protocol), a
        // 20-byte transport header whose ports name the flow (for TCP, a data
        // offset of 5: a real flow's shape, which header compression keeps
        // in one context), then our fields.
        let mut p = vec![0u8; self.size.max(AT + 13)];
        p[0] = 0x45;
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[9] = self.proto;
        p[20..22].copy_from_slice(&[0xc0, self.id]);
        p[22..24].copy_from_slice(&443u16.to_be_bytes());
        p[32] = 5 << 4;
        p[AT] = self.id;
        p[AT + 1..AT + 5].copy_from_slice(&seq.to_be_bytes());
        p[AT + 5..AT + 13].copy_from_slice(&now.to_be_bytes());
        // A valid header checksum, as every real sender writes (header
        // compression rebuilds it).
        let sum = p[..20]
            .chunks(2)
            .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        p
    }
}

/// Where the sim's own fields start in its packets.
const AT: usize = 40;

pub fn parse_arrival(p: &[u8], now: u64) -> Arrival {
    Arrival {
        flow: p[AT],
        seq: u32::from_be_bytes(p[AT + 1..AT + 5].try_into().unwrap()),
        sent_us: u64::from_be_bytes(p[AT + 5..AT + 13].try_into().unwrap()),
        recv_us: now,
        len: p.len(),
    }
}

/// A scripted change to a path.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Cut(usize),
    Restore(usize),
    Rate(usize, u64),
}

pub struct Sim {
    pub now: u64,
    pub router: Connection,
    pub conc: Endpoint,
    pub up: Vec<Link>,
    pub down: Vec<Link>,
    pub flows: Vec<Flow>,
    pub script: Vec<(u64, Action)>,
    pub arrivals: Vec<Arrival>,
    pub router_events: Vec<(u64, Event)>,
    /// The concentrator's monotonic clock runs this far ahead of the router's,
    /// as two hosts' clocks do: its 32-bit stamps read 15 ms behind the
    /// router's, so one-way delays measured upstream straddle zero and wrap.
    pub conc_clock_offset: u64,
    /// A concentrator that is sometimes too busy to read its socket.
    pub conc_busy: Option<Busy>,
    /// Datagrams that reached the busy concentrator's socket: (arrival, path,
    /// datagram).
    conc_backlog: VecDeque<(u64, usize, Vec<u8>)>,
    buf: Vec<u8>,
}

/// A host that stops reading its socket for `length` at the start of every
/// `every` (as a single-threaded daemon does while a write to its TUN device
/// runs the receiver's TCP): datagrams wait in the socket, and are handled when it is done,
/// with their arrival time if `stamped` (the kernel's receive timestamp)
/// or as if they arrived then.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    pub every: Duration,
    pub length: Duration,
    pub stamped: bool,
}

impl Busy {
    fn at(&self, now: u64) -> bool {
        now % (self.every.as_micros() as u64) < self.length.as_micros() as u64
    }

    /// The next start or end of a busy spell after `now`.
    fn next_edge(&self, now: u64) -> u64 {
        let (every, length) = (
            self.every.as_micros() as u64,
            self.length.as_micros() as u64,
        );
        let start = now - now % every;
        if now < start + length {
            start + length
        } else {
            start + every
        }
    }
}

/// See [`Sim::conc_clock_offset`].
pub const CONC_CLOCK_OFFSET: u64 = (1 << 32) - 15_000;

impl Sim {
    /// A router with one path per link pair, and a concentrator that knows it.
    pub fn new(seed: u64, links: &[(LinkSpec, LinkSpec)], configs: &[PathConfig]) -> Self {
        let mut rng = Rng::new(seed);
        let (router_key, conc_key) = (rng.bytes32(), rng.bytes32());
        let mut conc = Endpoint::new(conc_key, rng.bytes32());
        let router_public = braid_tunnel::handshake::LocalIdentity::new(router_key).public();
        conc.add_peer(router_public, [0; 32]);
        let mut router = Connection::initiator(router_key, conc.public(), [0; 32], rng.bytes32());
        router.set_wall_clock(Instant::ZERO, 1_700_000_000, 0);
        for (i, _) in links.iter().enumerate() {
            router.add_path(
                i as u8,
                configs.get(i).copied().unwrap_or_default(),
                Instant::ZERO,
            );
        }
        Self {
            now: 0,
            router,
            conc,
            up: links
                .iter()
                .enumerate()
                .map(|(i, l)| Link::new(l.0, seed ^ (i as u64 * 77 + 1)))
                .collect(),
            down: links
                .iter()
                .enumerate()
                .map(|(i, l)| Link::new(l.1, seed ^ (i as u64 * 77 + 2)))
                .collect(),
            flows: Vec::new(),
            script: Vec::new(),
            arrivals: Vec::new(),
            router_events: Vec::new(),
            conc_clock_offset: CONC_CLOCK_OFFSET,
            conc_busy: None,
            conc_backlog: VecDeque::new(),
            buf: vec![0u8; 2048],
        }
    }

    /// Symmetric links.
    pub fn symmetric(seed: u64, links: &[LinkSpec]) -> Self {
        let pairs: Vec<_> = links.iter().map(|l| (*l, *l)).collect();
        Self::new(seed, &pairs, &[])
    }

    pub fn at(&mut self, t: Duration, a: Action) {
        self.script.push((t.as_micros() as u64, a));
        self.script.sort_by_key(|(t, _)| *t);
    }

    /// The concentrator's clock at simulation time `now` (microseconds).
    pub fn conc_instant(&self, now: u64) -> Instant {
        Instant::from_micros(now + self.conc_clock_offset)
    }

    /// Runs until `end`.
    pub fn run_until(&mut self, end: Duration) {
        let end = end.as_micros() as u64;
        let mut guard = 0u64;
        while self.now <= end {
            guard += 1;
            assert!(
                guard < 50_000_000,
                "simulation does not progress at {} us",
                self.now
            );
            self.step();
            let next = self.next_time().unwrap_or(end + 1).max(self.now + 1);
            if next > end {
                self.now = end + 1;
                break;
            }
            self.now = next;
        }
    }

    fn next_time(&mut self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut take = |x: Option<u64>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: u64| t.min(x)));
            }
        };
        take(self.router.poll_timeout().map(Instant::as_micros));
        let offset = self.conc_clock_offset;
        let busy = self.conc_busy.is_some_and(|b| b.at(self.now));
        if let Some(c) = self.conc.connection(0).filter(|_| !busy) {
            take(
                c.poll_timeout()
                    .map(|t| t.as_micros().saturating_sub(offset)),
            );
        }
        for l in self.up.iter().chain(self.down.iter()) {
            take(l.next());
        }
        for f in &self.flows {
            if f.next_us < f.stop_us {
                take(Some(f.next_us));
            }
        }
        take(self.script.first().map(|(t, _)| *t));
        if let Some(b) = self.conc_busy {
            take(Some(b.next_edge(self.now)));
        }
        t
    }

    fn step(&mut self) {
        let now = self.now;
        let inow = Instant::from_micros(now);
        let cnow = self.conc_instant(now);
        while self.script.first().is_some_and(|(t, _)| *t <= now) {
            let (_, a) = self.script.remove(0);
            match a {
                Action::Cut(p) => {
                    self.up[p].cut();
                    self.down[p].cut();
                }
                Action::Restore(p) => {
                    self.up[p].up = true;
                    self.down[p].up = true;
                }
                Action::Rate(p, bps) => {
                    self.up[p].spec.rate_bps = bps;
                    self.down[p].spec.rate_bps = bps;
                }
            }
        }
        // Deliveries.
        let busy = self.conc_busy.filter(|b| b.at(now));
        for p in 0..self.up.len() {
            while let Some(d) = self.up[p].pop_due(now) {
                self.conc_backlog.push_back((now, p, d));
            }
        }
        while busy.is_none() {
            let Some((at, p, mut d)) = self.conc_backlog.pop_front() else {
                break;
            };
            let source = [p as u8, 0, 0, 1];
            let incoming = match self.conc_busy {
                Some(b) if b.stamped => {
                    let arrived = self.conc_instant(at);
                    self.conc.handle_received(cnow, arrived, &source, &mut d)
                }
                _ => self.conc.handle(cnow, &source, &mut d),
            };
            if let Incoming::Reply(r) = incoming {
                self.down[p].send(now, r);
            }
        }
        for p in 0..self.up.len() {
            while let Some(mut d) = self.down[p].pop_due(now) {
                self.router.handle(inow, &mut d);
            }
        }
        // Timers.
        if self
            .router
            .poll_timeout()
            .is_some_and(|t| t.as_micros() <= now)
        {
            self.router.handle_timeout(inow);
        }
        if let Some(c) = self.conc.connection(0).filter(|_| busy.is_none()) {
            if c.poll_timeout().is_some_and(|t| t <= cnow) {
                c.handle_timeout(cnow);
            }
        }
        // Sources.
        for i in 0..self.flows.len() {
            while self.flows[i].next_us <= now && self.flows[i].next_us < self.flows[i].stop_us {
                let pkt = self.flows[i].packet(now);
                let class = self.flows[i].class;
                if self.router.send(inow, class, &pkt).is_err() {
                    self.flows[i].refused += 1;
                }
                self.flows[i].seq += 1;
                self.flows[i].next_us += self.flows[i].interval_us;
            }
        }
        // Transmissions.
        while let Some(t) = self.router.poll_transmit(inow, &mut self.buf) {
            let d = self.buf[..t.len].to_vec();
            self.up[usize::from(t.path)].send(now, d);
        }
        if let Some(c) = self.conc.connection(0).filter(|_| busy.is_none()) {
            let mut out = Vec::new();
            while let Some(t) = c.poll_transmit(cnow, &mut self.buf) {
                out.push((t.path, self.buf[..t.len].to_vec()));
            }
            for (p, d) in out {
                if let Some(l) = self.down.get_mut(usize::from(p)) {
                    l.send(now, d);
                }
            }
            while let Some(pkt) = c.poll_deliver(cnow) {
                let a = parse_arrival(&pkt, now);
                if let Some(f) = self.flows.iter().find(|f| f.id == a.flow) {
                    assert!(
                        pkt == f.packet_at(a.seq, a.sent_us),
                        "flow {} packet {} changed in the tunnel",
                        a.flow,
                        a.seq
                    );
                }
                self.arrivals.push(a);
            }
        }
        while let Some(e) = self.router.poll_event() {
            self.router_events.push((now, e));
        }
    }

    /// Arrivals of one flow.
    pub fn flow_arrivals(&self, flow: u8) -> Vec<Arrival> {
        self.arrivals
            .iter()
            .filter(|a| a.flow == flow)
            .copied()
            .collect()
    }

    /// Goodput of a flow over [from, to), in bit/s.
    pub fn goodput(&self, flow: u8, from: Duration, to: Duration) -> f64 {
        let (a, b) = (from.as_micros() as u64, to.as_micros() as u64);
        let bytes: usize = self
            .arrivals
            .iter()
            .filter(|x| x.flow == flow && x.recv_us >= a && x.recv_us < b)
            .map(|x| x.len)
            .sum();
        bytes as f64 * 8.0 / (to - from).as_secs_f64()
    }
}
