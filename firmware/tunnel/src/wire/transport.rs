//! The clear header of a sealed transport packet.
//!
//! It carries exactly what the receiver needs before it can decrypt: which session
//! (`receiver_index`, chosen by the receiver during the handshake, as in WireGuard),
//! and the nonce, made of the sender's `path` id and that path's `counter`. The whole
//! header is the AEAD's associated data, so none of it can be altered in flight.

use super::{be_u32, be_u64, MessageType, WireError, TAG_LEN};
use crate::MAX_PATHS;

/// Field offsets (RFC-style layout in the [module docs](super)).
mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const PATH: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const RECEIVER: usize = 4;
    pub const COUNTER: usize = 8;
    pub const PAYLOAD: RangeFrom<usize> = 16..;
}

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

    /// Wraps a buffer and checks length, type, reserved bits and path id, so that
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
        if b[field::RESERVED] != [0, 0] {
            return Err(WireError::Reserved);
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
        be_u64(self.buffer.as_ref(), field::COUNTER)
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
    /// Per-path counter (nonce).
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
        let h = buf
            .get_mut(..TRANSPORT_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        h[field::TYPE] = MessageType::Transport as u8;
        h[field::PATH] = self.path;
        h[field::RESERVED].fill(0);
        h[field::RECEIVER..field::RECEIVER + 4].copy_from_slice(&self.receiver_index.to_be_bytes());
        h[field::COUNTER..field::COUNTER + 8].copy_from_slice(&self.counter.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of path 3, receiver 0xdeadbeef, counter 0x0102030405060708, then 16
    /// bytes standing in for an empty ciphertext's tag.
    const VECTOR: [u8; 32] = [
        0x04, 0x03, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad,
        0xae, 0xaf,
    ];

    const REPR: TransportRepr = TransportRepr {
        path: 3,
        receiver_index: 0xdead_beef,
        counter: 0x0102_0304_0506_0708,
    };

    #[test]
    fn parse_vector() {
        let p = TransportPacket::new_checked(&VECTOR[..]).unwrap();
        assert_eq!(TransportRepr::parse(&p), REPR);
        assert_eq!(p.header(), &VECTOR[..16]);
        assert_eq!(p.sealed(), &VECTOR[16..]);
    }

    #[test]
    fn emit_vector() {
        let mut buf = [0xffu8; 32];
        REPR.emit(&mut buf).unwrap();
        assert_eq!(buf[..16], VECTOR[..16]);
        assert_eq!(buf[16..], [0xff; 16], "emit writes only the header");
    }

    #[test]
    fn rejects_malformed() {
        for len in 0..32 {
            assert_eq!(
                TransportPacket::new_checked(&VECTOR[..len]).unwrap_err(),
                WireError::Truncated { len, min: 32 }
            );
        }
        let mut v = VECTOR;
        v[0] = 1;
        assert_eq!(
            TransportPacket::new_checked(&v[..]).unwrap_err(),
            WireError::WrongType(1)
        );
        let mut v = VECTOR;
        v[3] = 1;
        assert_eq!(
            TransportPacket::new_checked(&v[..]).unwrap_err(),
            WireError::Reserved
        );
        let mut v = VECTOR;
        v[1] = MAX_PATHS as u8;
        assert_eq!(
            TransportPacket::new_checked(&v[..]).unwrap_err(),
            WireError::BadPath(MAX_PATHS as u8)
        );
    }

    #[test]
    fn emit_rejects_bad_path_and_short_buffer() {
        let bad = TransportRepr { path: 200, ..REPR };
        assert_eq!(bad.emit(&mut [0; 16]), Err(WireError::BadPath(200)));
        assert_eq!(REPR.emit(&mut [0; 15]), Err(WireError::BufferTooSmall));
    }
}
