//! The clear header of a sealed transport packet.
//!
//! It carries exactly what the receiver needs before it can decrypt: which session
//! (`receiver_index`, chosen by the receiver during the handshake, as in WireGuard),
//! and the nonce, made of the sender's `path` id and that path's `counter`. The whole
//! header is the AEAD's associated data, so none of it can be altered in flight.

use super::{be_u32, MessageType, WireError, TAG_LEN};
use crate::MAX_PATHS;

/// Field offsets (RFC-style layout in the [module docs](super)).
mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const PATH: usize = 1;
    pub const RECEIVER: usize = 2;
    pub const COUNTER: Range<usize> = 6..12;
    pub const PAYLOAD: RangeFrom<usize> = 12..;
}

/// Largest counter the 48-bit field holds. A path's counter never gets there:
/// the session is rekeyed every two minutes, and sealing stops at
/// [`crate::crypto::REJECT_AFTER_MESSAGES`], below it (2^48 packets are over
/// a century of 1 Gbit/s in full-size packets, nine years of 1 Mpps).
pub const MAX_COUNTER: u64 = (1 << 48) - 1;

/// Length of the clear transport header.
pub const TRANSPORT_HEADER_LEN: usize = field::PAYLOAD.start;

/// A read/write view of a transport packet: header, ciphertext and tag.
#[derive(Debug, Clone)]
pub struct TransportPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TransportPacket<T> {
    /// Wraps a buffer without checking it. Accessors may panic until
    /// [`check`](Self::check) has passed; prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks length, type and path id, so that
    /// no accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Verifies that the buffer holds a well-formed transport packet.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        let min = TRANSPORT_HEADER_LEN + TAG_LEN;
        if b.len() < min {
            return Err(WireError::Truncated { len: b.len(), min });
        }
        if b[field::TYPE] != MessageType::Transport as u8 {
            return Err(WireError::WrongType(b[field::TYPE]));
        }
        if usize::from(b[field::PATH]) >= MAX_PATHS {
            return Err(WireError::BadPath(b[field::PATH]));
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The sender's path id, part of the nonce.
    pub fn path(&self) -> u8 {
        self.buffer.as_ref()[field::PATH]
    }

    /// The session index the receiver assigned during the handshake.
    pub fn receiver_index(&self) -> u32 {
        be_u32(self.buffer.as_ref(), field::RECEIVER)
    }

    /// The per-path packet counter, part of the nonce.
    pub fn counter(&self) -> u64 {
        let mut a = [0u8; 8];
        a[2..].copy_from_slice(&self.buffer.as_ref()[field::COUNTER]);
        u64::from_be_bytes(a)
    }

    /// The clear header, which is the AEAD's associated data.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..TRANSPORT_HEADER_LEN]
    }

    /// Ciphertext followed by the tag.
    pub fn sealed(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TransportPacket<T> {
    /// Splits the packet into its header (read-only) and its sealed part (mutable),
    /// for decrypting in place.
    pub fn split_mut(&mut self) -> (&[u8], &mut [u8]) {
        let (h, rest) = self.buffer.as_mut().split_at_mut(TRANSPORT_HEADER_LEN);
        (h, rest)
    }
}

/// The fields of a transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportRepr {
    /// Sender's path id (`< MAX_PATHS`).
    pub path: u8,
    /// Receiver's session index.
    pub receiver_index: u32,
    /// Per-path counter (nonce), at most [`MAX_COUNTER`].
    pub counter: u64,
}

impl TransportRepr {
    /// Reads the header fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &TransportPacket<T>) -> Self {
        Self {
            path: packet.path(),
            receiver_index: packet.receiver_index(),
            counter: packet.counter(),
        }
    }

    /// Writes the header into the first [`TRANSPORT_HEADER_LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if usize::from(self.path) >= MAX_PATHS {
            return Err(WireError::BadPath(self.path));
        }
        if self.counter > MAX_COUNTER {
            return Err(WireError::BadCounter(self.counter));
        }
        let h = buf
            .get_mut(..TRANSPORT_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        h[field::TYPE] = MessageType::Transport as u8;
        h[field::PATH] = self.path;
        h[field::RECEIVER..field::RECEIVER + 4].copy_from_slice(&self.receiver_index.to_be_bytes());
        h[field::COUNTER].copy_from_slice(&self.counter.to_be_bytes()[2..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of path 3, receiver 0xdeadbeef, counter 0x010203040506, then 16
    /// bytes standing in for an empty ciphertext's tag.
    const VECTOR: [u8; 28] = [
        0x04, 0x03, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xa0, 0xa1, 0xa2,
        0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    ];

    const REPR: TransportRepr = TransportRepr {
        path: 3,
        receiver_index: 0xdead_beef,
        counter: 0x0102_0304_0506,
    };

    #[test]
    fn parse_vector() {
        let p = TransportPacket::new_checked(&VECTOR[..]).unwrap();
        assert_eq!(TransportRepr::parse(&p), REPR);
        assert_eq!(p.header(), &VECTOR[..12]);
        assert_eq!(p.sealed(), &VECTOR[12..]);
    }

    #[test]
    fn emit_vector() {
        let mut buf = [0xffu8; 28];
        REPR.emit(&mut buf).unwrap();
        assert_eq!(buf[..12], VECTOR[..12]);
        assert_eq!(buf[12..], [0xff; 16], "emit writes only the header");
    }

    #[test]
    fn largest_counter_round_trips() {
        let r = TransportRepr {
            counter: MAX_COUNTER,
            ..REPR
        };
        let mut buf = [0u8; 28];
        r.emit(&mut buf).unwrap();
        let p = TransportPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.counter(), MAX_COUNTER);
    }

    #[test]
    fn rejects_malformed() {
        for len in 0..28 {
            assert_eq!(
                TransportPacket::new_checked(&VECTOR[..len]).unwrap_err(),
                WireError::Truncated { len, min: 28 }
            );
        }
        let mut v = VECTOR;
        v[0] = 1;
        assert_eq!(
            TransportPacket::new_checked(&v[..]).unwrap_err(),
            WireError::WrongType(1)
        );
        let mut v = VECTOR;
        v[1] = MAX_PATHS as u8;
        assert_eq!(
            TransportPacket::new_checked(&v[..]).unwrap_err(),
            WireError::BadPath(MAX_PATHS as u8)
        );
    }

    #[test]
    fn emit_rejects_bad_fields_and_short_buffer() {
        let bad = TransportRepr { path: 200, ..REPR };
        assert_eq!(bad.emit(&mut [0; 12]), Err(WireError::BadPath(200)));
        let bad = TransportRepr {
            counter: MAX_COUNTER + 1,
            ..REPR
        };
        assert_eq!(
            bad.emit(&mut [0; 12]),
            Err(WireError::BadCounter(MAX_COUNTER + 1))
        );
        assert_eq!(REPR.emit(&mut [0; 11]), Err(WireError::BufferTooSmall));
    }
}
