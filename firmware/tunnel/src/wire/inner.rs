//! The inner header, encrypted together with the packet it carries.
//!
//! ```text
//!  bit  7   6   5   4   3   2   1   0
//!     +-------+-------+-------+-------+-----------+----------+-------------+-----------
//!     | kind  | class |  0 0  | flags | pred (BE) | seq (BE) | tx_time (BE)| payload ...
//!     +-------+-------+-------+-------+-----------+----------+-------------+-----------
//!      \____________ 1 byte _________/   12 bits    20 bits        4
//! ```
//!
//! * `kind` (2 bits): [`InnerKind::Data`] (an IP packet follows) or
//!   [`InnerKind::Control`] (a postcard-encoded [`crate::control::Control`]
//!   follows); the other two values are refused.
//! * `class` (2 bits): the traffic class the sender put the packet in.
//! * two reserved bits, which must be zero.
//! * `flags` (2 bits): [`InnerRepr::FLAG_DUPLICATE`] marks the second copy of a
//!   packet of the redundant class, [`InnerRepr::FLAG_REPAIR`] a packet sent
//!   again because the peer reported its first transmission missing.
//! * `seq`: the class's data sequence number (20 bits, wrapping), which the
//!   receiver uses to restore order and drop duplicates across paths; zero for
//!   control packets.
//! * `pred`: how many sequence numbers back the previous packet of the same
//!   flow is (zero: none within [`MAX_PRED`]). The receiver restores each
//!   flow's order, not the class's: a packet waits only for its flow's
//!   predecessor, so one flow's packet on a slow path does not hold every
//!   other flow (see [`crate::reorder`]). The two share 32 bits: a 20-bit
//!   sequence wraps after a million packets, and a reorder buffer spans at most
//!   [`crate::reorder::CAPACITY`] of them. (Until 2026-12-03 all 32 bits were
//!   the sequence, and the receiver restored the class's order.)
//! * `tx_time`: the sender's clock in microseconds (wrapping every 71 minutes), from
//!   which the receiver follows each path's one-way delay trend.
//!
//! The first four fields share one byte: every byte of header is a byte less of
//! the inner MTU, and a byte less of each packet's payload (it was 4 bytes, one
//! per field, until 2026-12-03).
//!
//! It lives inside the AEAD so that an observer learns neither the order of packets
//! nor which are control packets.

use super::{be_u32, WireError};

mod field {
    use core::ops::RangeFrom;
    pub const BITS: usize = 0;
    /// `pred` (high 12 bits) and `seq` (low 20 bits).
    pub const SEQ: usize = 1;
    pub const TX_TIME: usize = 5;
    pub const PAYLOAD: RangeFrom<usize> = 9..;
}

const KIND_SHIFT: u8 = 6;
const CLASS_SHIFT: u8 = 4;
const CLASS_MASK: u8 = 0x03;
const RESERVED_BITS: u8 = 0x0c;
/// Bits of the sequence number.
pub const SEQ_BITS: u32 = 20;
/// The sequence numbers' mask: they wrap at `SEQ_MASK + 1`.
pub const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;
/// The farthest back a packet's flow predecessor can be named.
pub const MAX_PRED: u16 = (1 << (32 - SEQ_BITS)) - 1;

/// Length of the inner header.
pub const INNER_HEADER_LEN: usize = field::PAYLOAD.start;

/// What the inner packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InnerKind {
    /// An IP packet from the LAN (or toward it).
    Data = 0,
    /// A tunnel control message.
    Control = 1,
}

/// A read/write view of a decrypted inner packet.
#[derive(Debug, Clone)]
pub struct InnerPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> InnerPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks it, so that no accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Verifies length, kind and reserved bits.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < INNER_HEADER_LEN {
            return Err(WireError::Truncated {
                len: b.len(),
                min: INNER_HEADER_LEN,
            });
        }
        let kind = b[field::BITS] >> KIND_SHIFT;
        if kind > InnerKind::Control as u8 {
            return Err(WireError::BadKind(kind));
        }
        if b[field::BITS] & RESERVED_BITS != 0 {
            return Err(WireError::Reserved);
        }
        Ok(())
    }

    /// What the packet carries.
    pub fn kind(&self) -> InnerKind {
        if self.buffer.as_ref()[field::BITS] >> KIND_SHIFT == InnerKind::Control as u8 {
            InnerKind::Control
        } else {
            InnerKind::Data
        }
    }

    /// Flag bits.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::BITS] & InnerRepr::FLAGS_KNOWN
    }

    /// Traffic class.
    pub fn class(&self) -> u8 {
        (self.buffer.as_ref()[field::BITS] >> CLASS_SHIFT) & CLASS_MASK
    }

    /// Data sequence number (20 bits).
    pub fn seq(&self) -> u32 {
        be_u32(self.buffer.as_ref(), field::SEQ) & SEQ_MASK
    }

    /// How far back the previous packet of the same flow is (0: none).
    pub fn pred(&self) -> u16 {
        (be_u32(self.buffer.as_ref(), field::SEQ) >> SEQ_BITS) as u16
    }

    /// Sender's clock at transmission, in microseconds (wrapping).
    pub fn tx_time(&self) -> u32 {
        be_u32(self.buffer.as_ref(), field::TX_TIME)
    }

    /// The carried IP packet or control message.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> InnerPacket<T> {
    /// Stamps the packet with the sender's clock as it leaves.
    pub fn set_tx_time(&mut self, tx_time: u32) {
        self.buffer.as_mut()[field::TX_TIME..field::TX_TIME + 4]
            .copy_from_slice(&tx_time.to_be_bytes());
    }
}

/// The fields of an inner header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerRepr {
    /// What follows the header.
    pub kind: InnerKind,
    /// Flag bits ([`Self::FLAG_DUPLICATE`]).
    pub flags: u8,
    /// Traffic class index (0-3).
    pub class: u8,
    /// Data sequence number (zero for control), at most [`SEQ_MASK`].
    pub seq: u32,
    /// How many sequence numbers back the flow's previous packet is (0:
    /// none), at most [`MAX_PRED`].
    pub pred: u16,
    /// Sender's clock in microseconds (wrapping).
    pub tx_time: u32,
}

impl InnerRepr {
    /// This packet is the second copy of a redundant-class packet.
    pub const FLAG_DUPLICATE: u8 = 0x01;
    /// This packet is sent again: the peer reported the first one missing.
    pub const FLAG_REPAIR: u8 = 0x02;
    /// All flag bits this version understands.
    pub const FLAGS_KNOWN: u8 = Self::FLAG_DUPLICATE | Self::FLAG_REPAIR;

    /// Reads the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &InnerPacket<T>) -> Self {
        Self {
            kind: p.kind(),
            flags: p.flags(),
            class: p.class(),
            seq: p.seq(),
            pred: p.pred(),
            tx_time: p.tx_time(),
        }
    }

    /// Writes the header into the first [`INNER_HEADER_LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if self.flags & !Self::FLAGS_KNOWN != 0 {
            return Err(WireError::Reserved);
        }
        if self.class > CLASS_MASK {
            return Err(WireError::BadClass(self.class));
        }
        if self.seq > SEQ_MASK || self.pred > MAX_PRED {
            return Err(WireError::Reserved);
        }
        let h = buf
            .get_mut(..INNER_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        h[field::BITS] = (self.kind as u8) << KIND_SHIFT | self.class << CLASS_SHIFT | self.flags;
        let word = u32::from(self.pred) << SEQ_BITS | self.seq;
        h[field::SEQ..field::SEQ + 4].copy_from_slice(&word.to_be_bytes());
        h[field::TX_TIME..field::TX_TIME + 4].copy_from_slice(&self.tx_time.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duplicate data packet of class 2, seq 0x23344 whose flow's previous
    /// packet was 0x112 before it, sent at 0x55667788 µs, carrying the first 4
    /// bytes of an IPv4 header.
    const VECTOR: [u8; 13] = [
        0x21, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x45, 0x00, 0x00, 0x54,
    ];
    const REPR: InnerRepr = InnerRepr {
        kind: InnerKind::Data,
        flags: InnerRepr::FLAG_DUPLICATE,
        class: 2,
        seq: 0x2_3344,
        pred: 0x112,
        tx_time: 0x5566_7788,
    };

    #[test]
    fn parse_vector() {
        let p = InnerPacket::new_checked(&VECTOR[..]).unwrap();
        assert_eq!(InnerRepr::parse(&p), REPR);
        assert_eq!(p.payload(), &[0x45, 0x00, 0x00, 0x54]);
    }

    #[test]
    fn emit_vector() {
        let mut buf = [0u8; 13];
        REPR.emit(&mut buf).unwrap();
        buf[9..].copy_from_slice(&[0x45, 0x00, 0x00, 0x54]);
        assert_eq!(buf, VECTOR);
    }

    #[test]
    fn control_kind_vector() {
        let v = [0x40u8, 0, 0, 0, 0, 0, 0, 0, 9];
        let p = InnerPacket::new_checked(&v[..]).unwrap();
        assert_eq!(p.kind(), InnerKind::Control);
        assert_eq!((p.class(), p.flags()), (0, 0));
        assert_eq!(p.tx_time(), 9);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn every_field_round_trips() {
        for kind in [InnerKind::Data, InnerKind::Control] {
            for class in 0..=3 {
                for flags in 0..=InnerRepr::FLAGS_KNOWN {
                    let r = InnerRepr {
                        kind,
                        flags,
                        class,
                        ..REPR
                    };
                    let mut buf = [0u8; INNER_HEADER_LEN];
                    r.emit(&mut buf).unwrap();
                    let p = InnerPacket::new_checked(&buf[..]).unwrap();
                    assert_eq!(InnerRepr::parse(&p), r);
                }
            }
        }
    }

    #[test]
    fn seq_and_pred_share_a_word_and_are_bounded() {
        let r = InnerRepr {
            seq: SEQ_MASK,
            pred: MAX_PRED,
            ..REPR
        };
        let mut buf = [0u8; INNER_HEADER_LEN];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[1..5], [0xff; 4]);
        let p = InnerPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.seq(), p.pred()), (SEQ_MASK, MAX_PRED));
        let too_far = InnerRepr {
            seq: SEQ_MASK + 1,
            ..REPR
        };
        assert_eq!(too_far.emit(&mut buf), Err(WireError::Reserved));
        let too_back = InnerRepr {
            pred: MAX_PRED + 1,
            ..REPR
        };
        assert_eq!(too_back.emit(&mut buf), Err(WireError::Reserved));
    }

    #[test]
    fn stamps_tx_time_in_place() {
        let mut v = VECTOR;
        InnerPacket::new_unchecked(&mut v[..]).set_tx_time(0x0102_0304);
        let p = InnerPacket::new_checked(&v[..]).unwrap();
        assert_eq!(p.tx_time(), 0x0102_0304);
        assert_eq!(p.seq(), REPR.seq);
        assert_eq!(p.payload(), &VECTOR[9..]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            InnerPacket::new_checked(&VECTOR[..8]).unwrap_err(),
            WireError::Truncated { len: 8, min: 9 }
        );
        for kind in [2u8, 3] {
            let mut v = VECTOR;
            v[0] = v[0] & 0x3f | kind << 6;
            assert_eq!(
                InnerPacket::new_checked(&v[..]).unwrap_err(),
                WireError::BadKind(kind)
            );
        }
        for bit in [0x04u8, 0x08] {
            let mut v = VECTOR;
            v[0] |= bit;
            assert_eq!(
                InnerPacket::new_checked(&v[..]).unwrap_err(),
                WireError::Reserved
            );
        }
        let bad = InnerRepr {
            flags: 0x04,
            ..REPR
        };
        assert_eq!(bad.emit(&mut [0; 9]), Err(WireError::Reserved));
        let bad = InnerRepr { class: 4, ..REPR };
        assert_eq!(bad.emit(&mut [0; 9]), Err(WireError::BadClass(4)));
        assert_eq!(REPR.emit(&mut [0; 8]), Err(WireError::BufferTooSmall));
    }
}
