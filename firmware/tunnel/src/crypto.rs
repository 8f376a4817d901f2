//! Sealing and opening transport packets: ChaCha20-Poly1305 with nonces that never
//! repeat under one key, and an RFC 6479 anti-replay window per path.
//!
//! # Nonce scheme
//! The 96-bit nonce is `[0, 0, 0, path] ++ counter.to_be_bytes()`, where `counter` is
//! a per-path, per-direction 48-bit counter (the transport header's field) owned by
//! the [`SealingKey`]. A nonce can
//! never repeat under one key because:
//! * each direction of a session has its own key (the handshake derives two), and the
//!   key material is moved into a `SealingKey`, which is neither `Clone` nor `Copy`;
//! * the counter is private, starts at zero and only ever increments; sealing fails
//!   with [`SealError::Exhausted`] instead of wrapping at [`REJECT_AFTER_MESSAGES`];
//! * the path id is part of the nonce, so the per-path counters cannot collide.
//!
//! Counting per path rather than per session is what makes multipath work with a
//! small window: packets on one path arrive almost in order, while paths differ by
//! hundreds of milliseconds (thousands of packets). One shared counter would need a
//! replay window as large as the delay spread times the packet rate.
//!
//! # Anti-replay
//! [`ReplayWindow`] is the bitmap of RFC 6479 section 2 (as in WireGuard's
//! `counter_validate`): [`REPLAY_BLOCKS`] 64-bit words used as a ring, so advancing
//! the window zeroes whole words instead of shifting bits. A counter is accepted once,
//! and only if it is at most [`REPLAY_WINDOW`] behind the highest one accepted. The
//! check happens before decryption (cheap rejection), the update only after the tag
//! verified (a forged packet cannot move the window).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use core::fmt;

use crate::wire::{TransportPacket, TransportRepr, WireError, TAG_LEN, TRANSPORT_HEADER_LEN};
use crate::MAX_PATHS;

/// Length of a session key.
pub const KEY_LEN: usize = 32;

/// Counters at or above this value are never sealed nor accepted (as in WireGuard,
/// the window's size is kept below the top of the header's 48-bit field so that it
/// never wraps). A session rekeys long before: at 1 Mpps on one path this takes
/// nearly nine years.
pub const REJECT_AFTER_MESSAGES: u64 = crate::wire::MAX_COUNTER - (1 << 13);

/// Number of 64-bit words in a replay bitmap (a power of two).
pub const REPLAY_BLOCKS: usize = 32;

/// How far behind the highest accepted counter a packet may arrive and still be
/// accepted: 1984 packets, i.e. 0.4 s of one path at 50 Mbit/s of 1400-byte packets.
/// Per-path counters only need to absorb one path's own (tiny) reordering.
pub const REPLAY_WINDOW: u64 = (REPLAY_BLOCKS as u64 - 1) * 64;

/// Builds the AEAD nonce of a packet (see the [module docs](self)).
pub fn nonce(path: u8, counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3] = path;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The path id is not below [`MAX_PATHS`].
    BadPath(u8),
    /// The buffer cannot hold header, plaintext and tag.
    BufferTooSmall,
    /// This path's counter reached [`REJECT_AFTER_MESSAGES`]: the session must rekey.
    Exhausted,
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a well-formed transport packet.
    Malformed(WireError),
    /// Addressed to another session index.
    WrongSession(u32),
    /// A counter already accepted, too old for the window, or past the limit.
    Replayed {
        /// Sender's path id.
        path: u8,
        /// The counter that was refused.
        counter: u64,
    },
    /// The tag did not verify: modified, truncated, or sealed under another key.
    Unauthentic,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPath(p) => write!(f, "path id {p} is not below {MAX_PATHS}"),
            Self::BufferTooSmall => f.write_str("buffer too small for header, payload and tag"),
            Self::Exhausted => f.write_str("nonce counter exhausted: rekey required"),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed packet: {e}"),
            Self::WrongSession(i) => write!(f, "packet for another session index {i:#010x}"),
            Self::Replayed { path, counter } => {
                write!(f, "replayed or too old: path {path} counter {counter}")
            }
            Self::Unauthentic => f.write_str("authentication failed"),
        }
    }
}

/// The sending half of a session: one key, one counter per path.
pub struct SealingKey {
    aead: ChaCha20Poly1305,
    receiver_index: u32,
    counters: [u64; MAX_PATHS],
}

impl SealingKey {
    /// Takes ownership of a fresh key. `receiver_index` is the peer's index for this
    /// session, written into every packet.
    pub fn new(key: [u8; KEY_LEN], receiver_index: u32) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
            receiver_index,
            counters: [0; MAX_PATHS],
        }
    }

    /// Packets sealed so far on `path` (its next counter).
    pub fn sent(&self, path: u8) -> u64 {
        self.counters.get(usize::from(path)).copied().unwrap_or(0)
    }

    /// Seals one packet in place.
    ///
    /// The inner plaintext must already sit at
    /// `buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + plaintext_len]`; this writes
    /// the header in front, encrypts, appends the tag, and returns the datagram's
    /// length (`plaintext_len + OVERHEAD - INNER_HEADER_LEN`).
    pub fn seal(
        &mut self,
        path: u8,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SealError> {
        let slot = self
            .counters
            .get_mut(usize::from(path))
            .ok_or(SealError::BadPath(path))?;
        let total = TRANSPORT_HEADER_LEN + plaintext_len + TAG_LEN;
        if buf.len() < total {
            return Err(SealError::BufferTooSmall);
        }
        let counter = *slot;
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(SealError::Exhausted);
        }
        *slot += 1;
        let repr = TransportRepr {
            path,
            receiver_index: self.receiver_index,
            counter,
        };
        repr.emit(buf).map_err(|_| SealError::BadPath(path))?;
        let (header, rest) = buf.split_at_mut(TRANSPORT_HEADER_LEN);
        let (body, tag_out) = rest.split_at_mut(plaintext_len);
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce(path, counter)), header, body)
            .map_err(|_| SealError::BufferTooSmall)?;
        tag_out[..TAG_LEN].copy_from_slice(&tag);
        Ok(total)
    }
}

/// A packet that authenticated: where it came from, and its decrypted inner bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Sender's path id.
    pub path: u8,
    /// Its counter on that path.
    pub counter: u64,
    /// The decrypted inner packet (header and payload).
    pub plaintext: &'a [u8],
}

/// The receiving half of a session: one key, one replay window per path.
pub struct OpeningKey {
    aead: ChaCha20Poly1305,
    local_index: u32,
    windows: [ReplayWindow; MAX_PATHS],
}

impl OpeningKey {
    /// Takes ownership of a fresh key; `local_index` is the index this side chose.
    pub fn new(key: [u8; KEY_LEN], local_index: u32) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&key)),
            local_index,
            windows: [ReplayWindow::new(); MAX_PATHS],
        }
    }

    /// Checks, decrypts in place and authenticates one datagram.
    ///
    /// On success the replay window of the packet's path moves forward and the
    /// plaintext is returned; on any error nothing changes. A packet's bytes may have
    /// been overwritten when authentication fails.
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Result<Opened<'a>, OpenError> {
        let mut packet = TransportPacket::new_checked(datagram).map_err(OpenError::Malformed)?;
        let repr = TransportRepr::parse(&packet);
        if repr.receiver_index != self.local_index {
            return Err(OpenError::WrongSession(repr.receiver_index));
        }
        let window = &mut self.windows[usize::from(repr.path)];
        let replayed = OpenError::Replayed {
            path: repr.path,
            counter: repr.counter,
        };
        if !window.check(repr.counter) {
            return Err(replayed);
        }
        let (header, sealed) = packet.split_mut();
        let (body, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce(repr.path, repr.counter)),
                header,
                body,
                Tag::from_slice(tag),
            )
            .map_err(|_| OpenError::Unauthentic)?;
        if !window.commit(repr.counter) {
            return Err(replayed);
        }
        let datagram = packet.into_inner();
        let end = datagram.len() - TAG_LEN;
        Ok(Opened {
            path: repr.path,
            counter: repr.counter,
            plaintext: &datagram[TRANSPORT_HEADER_LEN..end],
        })
    }
}

/// RFC 6479 anti-replay bitmap for one path (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct ReplayWindow {
    /// Highest accepted counter plus one; zero before the first packet.
    next: u64,
    blocks: [u64; REPLAY_BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every counter below the limit is acceptable.
    pub const fn new() -> Self {
        Self {
            next: 0,
            blocks: [0; REPLAY_BLOCKS],
        }
    }

    /// Would `counter` be accepted? Does not change the window.
    pub fn check(&self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        let c = counter + 1;
        if c + REPLAY_WINDOW < self.next {
            return false;
        }
        if c > self.next {
            return true;
        }
        let (block, bit) = Self::position(c);
        self.blocks[block] & bit == 0
    }

    /// Accepts `counter` if [`check`](Self::check) allows it, marking it as seen.
    pub fn commit(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        let c = counter + 1;
        if c > self.next {
            let current = self.next / 64;
            let target = c / 64;
            let stale = (target - current).min(REPLAY_BLOCKS as u64);
            for i in 1..=stale {
                self.blocks[((current + i) % REPLAY_BLOCKS as u64) as usize] = 0;
            }
            self.next = c;
        }
        let (block, bit) = Self::position(c);
        self.blocks[block] |= bit;
        true
    }

    fn position(c: u64) -> (usize, u64) {
        (((c / 64) % REPLAY_BLOCKS as u64) as usize, 1u64 << (c % 64))
    }
}

#[cfg(test)]
mod tests;
