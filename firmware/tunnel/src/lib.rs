//! The sans-IO core of braid's encrypted multipath UDP tunnel.
//!
//! Everything that is not TCP (and, before the MPTCP proxy is up, TCP too) crosses
//! the WAN links inside this tunnel. This crate holds the protocol logic and nothing
//! else: it opens no socket, reads no clock and spawns no task. Callers hand it byte
//! slices and, where time matters, the current instant; it hands back bytes to send
//! and decisions to act on. That keeps it deterministic, testable under a virtual
//! clock, and portable to every router CPU (`no_std`, no allocation).
//!
//! * [`wire`]: checked views of the packets on the wire (outer transport header,
//!   inner header), in the style of smoltcp's `wire` module.
//! * [`crypto`]: AEAD sealing and opening (ChaCha20-Poly1305) with per-path nonce
//!   counters that can never repeat under one key, and an RFC 6479 anti-replay window.
//! * [`control`]: the postcard-encoded control messages carried inside the tunnel.
//! * [`compress`]: TCP/IPv4 header compression, 21-25 bytes off each bulk segment.
//!
//! Byte order on the wire is network order (big-endian) throughout; every format has
//! byte-array test vectors that must pass identically on little- and big-endian CPUs.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

extern crate alloc;

pub mod compress;
pub mod connection;
pub mod control;
pub mod crypto;
pub mod endpoint;
pub mod filter;
pub mod flow;
pub mod handshake;
pub mod path;
pub mod release;
pub mod reorder;
mod selftest;
pub mod time;
pub mod wire;

pub use selftest::selftest;

/// Most paths (WAN links) one tunnel session bonds. Path ids are `0..MAX_PATHS`.
///
/// Eight covers every router we target (at most four or five WAN ports or modems)
/// with room for IPv4 and IPv6 variants of the same link.
pub const MAX_PATHS: usize = 8;
