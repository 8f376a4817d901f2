//! Wire formats of the tunnel, as checked views over byte buffers.
//!
//! Every UDP datagram of the tunnel starts with a one-byte message type. Handshake
//! messages (types 1-3) travel in the clear and are defined with the handshake;
//! everything after the handshake is a [`TransportPacket`]: a 12-byte clear header,
//! then the AEAD ciphertext of an [`InnerPacket`], then the 16-byte Poly1305 tag.
//!
//! ```text
//!  UDP payload
//!  +------+------+----------------+----------------+------------------+-----+
//!  | type | path | receiver index |    counter     | inner (sealed)   | tag |
//!  |  1   |  1   |    4 (BE)      |    6 (BE)      |  9 + payload     | 16  |
//!  +------+------+----------------+----------------+------------------+-----+
//!  \_______________ authenticated (AAD) __________/ \__ encrypted __/
//! ```
//!
//! The overhead per tunnelled packet is therefore fixed: [`OVERHEAD`] = 37 bytes, plus
//! the outer UDP and IP headers (28 bytes for IPv4, 48 for IPv6). It was 44 until
//! 2026-12-03: a 64-bit counter, two reserved bytes, and a byte for each of the
//! inner header's kind, flags, class and reserved field. Every byte is one more
//! of payload in each full-size packet: 7 bytes are 0.5% of a 1500-byte WAN.
//!
//! As in smoltcp, a view is built with `new_checked`, which verifies the length once;
//! after that no accessor can panic. A `Repr` parses and emits the header fields.

mod inner;
mod transport;

pub use inner::{
    InnerKind, InnerPacket, InnerRepr, INNER_HEADER_LEN, MAX_PRED, SEQ_BITS, SEQ_MASK,
};
pub use transport::{TransportPacket, TransportRepr, MAX_COUNTER, TRANSPORT_HEADER_LEN};

use core::fmt;

/// Length of the Poly1305 authentication tag that ends every transport packet.
pub const TAG_LEN: usize = 16;

/// Bytes the tunnel adds to each packet it carries, not counting outer UDP/IP.
pub const OVERHEAD: usize = TRANSPORT_HEADER_LEN + INNER_HEADER_LEN + TAG_LEN;

/// The first byte of every tunnel datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// First handshake message, initiator to responder.
    HandshakeInit = 1,
    /// Second handshake message, responder to initiator.
    HandshakeResponse = 2,
    /// Cookie reply sent instead of a response when the responder is under load.
    CookieReply = 3,
    /// Sealed data or control packet of an established session.
    Transport = 4,
}

impl MessageType {
    /// Reads the message type of a datagram, or `None` for an empty or unknown one.
    pub fn of(datagram: &[u8]) -> Option<Self> {
        match datagram.first()? {
            1 => Some(Self::HandshakeInit),
            2 => Some(Self::HandshakeResponse),
            3 => Some(Self::CookieReply),
            4 => Some(Self::Transport),
            _ => None,
        }
    }
}

/// Why a buffer is not a valid packet of the expected format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the fixed part of the format.
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed at least.
        min: usize,
    },
    /// The message type byte is not the one this view reads.
    WrongType(u8),
    /// A reserved field is not zero (a newer protocol version, or garbage).
    Reserved,
    /// The path id is not below [`crate::MAX_PATHS`].
    BadPath(u8),
    /// The inner packet kind is unknown.
    BadKind(u8),
    /// A traffic class that the inner header's two bits cannot hold.
    BadClass(u8),
    /// A counter that the transport header's 48 bits cannot hold.
    BadCounter(u64),
    /// The output buffer cannot hold what is being emitted.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len, min } => {
                write!(f, "truncated: {len} bytes, need at least {min}")
            }
            Self::WrongType(t) => write!(f, "unexpected message type {t}"),
            Self::Reserved => f.write_str("reserved field is not zero"),
            Self::BadPath(p) => write!(f, "path id {p} is not below {}", crate::MAX_PATHS),
            Self::BadKind(k) => write!(f, "unknown inner packet kind {k}"),
            Self::BadClass(c) => write!(f, "traffic class {c} is not below 4"),
            Self::BadCounter(c) => write!(f, "counter {c} does not fit in 48 bits"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

/// Reads a big-endian `u32` at `at`; the caller has checked the length.
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_demux() {
        assert_eq!(MessageType::of(&[]), None);
        assert_eq!(MessageType::of(&[0]), None);
        assert_eq!(MessageType::of(&[1, 9]), Some(MessageType::HandshakeInit));
        assert_eq!(MessageType::of(&[2]), Some(MessageType::HandshakeResponse));
        assert_eq!(MessageType::of(&[3]), Some(MessageType::CookieReply));
        assert_eq!(MessageType::of(&[4]), Some(MessageType::Transport));
        assert_eq!(MessageType::of(&[5]), None);
        assert_eq!(MessageType::of(&[0xff]), None);
    }

    #[test]
    fn overhead_is_documented_value() {
        assert_eq!(OVERHEAD, 37);
    }

    #[test]
    fn big_endian_readers() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        assert_eq!(be_u32(&b, 0), 0x0102_0304);
        assert_eq!(be_u32(&b, 4), 0x0506_0708);
    }
}
