//! The concentrator's side: one UDP port, many routers.
//!
//! The endpoint owns the table of known routers (public key, pre-shared key) and
//! their connections, and routes each datagram: transport packets by receiver
//! index to their connection; handshake initiations through the cheap filters
//! first. An initiation from a stranger costs no state:
//!
//! 1. a wrong `mac1` (one keyed BLAKE2s) drops it;
//! 2. under load (more than [`Endpoint::load_limit`] initiations in a second), a
//!    missing or wrong `mac2` gets a stateless cookie reply instead of any
//!    Diffie-Hellman;
//! 3. only then are the two Diffie-Hellman operations done, and the result must be
//!    a known router with a timestamp newer than its last one, at most one
//!    initiation per 20 ms per router.
//!
//! Only a router in the table, with a fresh authenticated initiation, gets a
//! connection; a later initiation (rekey, router restart) gives that connection
//! new keys and keeps its paths.

extern crate alloc;

use alloc::vec::Vec;
use core::time::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::connection::Connection;
use crate::handshake::{self, CookieJar, LocalIdentity, Tai64n};
use crate::time::Instant;
use crate::wire::{MessageType, TransportPacket, TransportRepr};

/// Minimum time between two initiations accepted from one router (WireGuard:
/// INITIATIONS_PER_SECOND = 50).
pub const MIN_INIT_INTERVAL: Duration = Duration::from_millis(20);

/// A router the concentrator serves.
pub struct Peer {
    /// Its static public key.
    pub public: [u8; 32],
    /// The pre-shared key (zeros: none).
    pub psk: [u8; 32],
    last_timestamp: Tai64n,
    last_init: Option<Instant>,
    /// Its current connection.
    pub connection: Option<Connection>,
}

/// Counters of what the endpoint refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Initiations with a wrong mac1.
    pub bad_mac1: u64,
    /// Cookie replies sent (under load, without valid mac2).
    pub cookie_replies: u64,
    /// Initiations that failed to decrypt or used a weak key.
    pub bad_initiation: u64,
    /// Initiations from a key not in the table.
    pub unknown_peer: u64,
    /// Initiations with an old timestamp (replays) or too soon after the last.
    pub replayed: u64,
    /// Transport packets for no known session.
    pub unknown_session: u64,
    /// Sessions accepted.
    pub accepted: u64,
}

/// What the caller should do with a datagram's outcome.
#[derive(Debug)]
pub enum Incoming {
    /// It went to router `peer`'s connection; the packet authenticated for `path`
    /// (learn the source address for that path).
    Connection {
        /// Index in the peer table.
        peer: usize,
        /// Path it authenticated for, if it did.
        path: Option<u8>,
    },
    /// Send these bytes back to the datagram's source (a handshake response or a
    /// cookie reply).
    Reply(Vec<u8>),
    /// Nothing to do (dropped and counted).
    Dropped,
}

/// The concentrator's table of routers and sessions.
pub struct Endpoint {
    secret: [u8; 32],
    local: LocalIdentity,
    peers: Vec<Peer>,
    jar: CookieJar,
    window: (Instant, u32),
    /// Initiations per second above which mac2 (a cookie) is required.
    pub load_limit: u32,
    rng: ChaCha20Rng,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with private key `secret`; `seed` from the OS random source.
    pub fn new(secret: [u8; 32], seed: [u8; 32]) -> Self {
        Self {
            secret,
            local: LocalIdentity::new(secret),
            peers: Vec::new(),
            jar: CookieJar::new(),
            window: (Instant::ZERO, 0),
            load_limit: 64,
            rng: ChaCha20Rng::from_seed(seed),
            stats: EndpointStats::default(),
        }
    }

    /// Our public key (routers are configured with it).
    pub fn public(&self) -> [u8; 32] {
        self.local.public()
    }

    /// Adds a router; returns its index.
    pub fn add_peer(&mut self, public: [u8; 32], psk: [u8; 32]) -> usize {
        self.peers.push(Peer {
            public,
            psk,
            last_timestamp: Tai64n::default(),
            last_init: None,
            connection: None,
        });
        self.peers.len() - 1
    }

    /// The routers.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// A router's connection.
    pub fn connection(&mut self, peer: usize) -> Option<&mut Connection> {
        self.peers.get_mut(peer)?.connection.as_mut()
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Sessions currently established.
    pub fn sessions(&self) -> usize {
        self.peers.iter().filter(|p| p.connection.is_some()).count()
    }

    fn under_load(&mut self, now: Instant) -> bool {
        if now.saturating_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        self.window.1 > self.load_limit
    }

    /// Routes one datagram that arrived from `source` (the sender's address and
    /// port, in any fixed encoding: it keys cookies).
    pub fn handle(&mut self, now: Instant, source: &[u8], datagram: &mut [u8]) -> Incoming {
        self.handle_received(now, now, source, datagram)
    }

    /// [`Endpoint::handle`] for a datagram that reached the socket at
    /// `arrived` (see [`Connection::handle_received`]).
    pub fn handle_received(
        &mut self,
        now: Instant,
        arrived: Instant,
        source: &[u8],
        datagram: &mut [u8],
    ) -> Incoming {
        match MessageType::of(datagram) {
            Some(MessageType::Transport) => {
                let Ok(p) = TransportPacket::new_checked(&*datagram) else {
                    self.stats.unknown_session += 1;
                    return Incoming::Dropped;
                };
                let index = TransportRepr::parse(&p).receiver_index;
                let Some(peer) = self.peers.iter().position(|p| {
                    p.connection
                        .as_ref()
                        .is_some_and(|c| c.indexes().any(|i| i == index))
                }) else {
                    self.stats.unknown_session += 1;
                    return Incoming::Dropped;
                };
                let path = self.peers[peer]
                    .connection
                    .as_mut()
                    .and_then(|c| c.handle_received(now, arrived, datagram));
                Incoming::Connection { peer, path }
            }
            Some(MessageType::HandshakeInit) => self.handle_init(now, source, datagram),
            _ => {
                self.stats.bad_initiation += 1;
                Incoming::Dropped
            }
        }
    }

    fn handle_init(&mut self, now: Instant, source: &[u8], msg: &[u8]) -> Incoming {
        if !self.local.check_mac1(msg) {
            self.stats.bad_mac1 += 1;
            return Incoming::Dropped;
        }
        if self.under_load(now)
            && !self
                .jar
                .check_mac2(now.as_micros(), msg, source, &mut self.rng)
        {
            return match self
                .jar
                .reply(now.as_micros(), &self.local, msg, source, &mut self.rng)
            {
                Ok(r) => {
                    self.stats.cookie_replies += 1;
                    Incoming::Reply(r.to_vec())
                }
                Err(_) => Incoming::Dropped,
            };
        }
        let init = match handshake::receive_initiation(&self.local, msg) {
            Ok(i) => i,
            Err(_) => {
                self.stats.bad_initiation += 1;
                return Incoming::Dropped;
            }
        };
        let Some(idx) = self.peers.iter().position(|p| p.public == init.peer) else {
            self.stats.unknown_peer += 1;
            return Incoming::Dropped;
        };
        let peer = &self.peers[idx];
        let too_soon = peer
            .last_init
            .is_some_and(|t| now.saturating_since(t) < MIN_INIT_INTERVAL);
        if init.timestamp <= peer.last_timestamp || too_soon {
            self.stats.replayed += 1;
            return Incoming::Dropped;
        }
        let (public, psk, ts) = (peer.public, peer.psk, init.timestamp);
        if let Some(conn) = self.peers[idx].connection.as_mut() {
            return match conn.accept_rekey(now, init, &mut self.rng) {
                Ok(response) => {
                    let peer = &mut self.peers[idx];
                    peer.last_timestamp = ts;
                    peer.last_init = Some(now);
                    self.stats.accepted += 1;
                    Incoming::Reply(response.to_vec())
                }
                Err(_) => {
                    self.stats.bad_initiation += 1;
                    Incoming::Dropped
                }
            };
        }
        match Connection::accept(now, self.secret, public, psk, init, &mut self.rng) {
            Ok((conn, response)) => {
                let peer = &mut self.peers[idx];
                peer.last_timestamp = ts;
                peer.last_init = Some(now);
                peer.connection = Some(conn);
                self.stats.accepted += 1;
                Incoming::Reply(response.to_vec())
            }
            Err(_) => {
                self.stats.bad_initiation += 1;
                Incoming::Dropped
            }
        }
    }
}
