//! Control messages exchanged inside an established tunnel session.
//!
//! They travel as the payload of an inner packet of kind
//! [`InnerKind::Control`](crate::wire::InnerKind::Control), encoded with postcard
//! (varint integers, so the encoding is the same on every CPU and small: a report
//! is 12-40 bytes). Lists are `heapless` vectors bounded by [`MAX_PATHS`], so decoding
//! never allocates and every message fits in [`MAX_ENCODED_LEN`] bytes.

use core::fmt;
use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::MAX_PATHS;

/// Upper bound of an encoded control message (checked by a test against the largest
/// message that can be built).
pub const MAX_ENCODED_LEN: usize = 384;

/// A control message.
// Reports dominate; a control message lives briefly on the stack and is never
// boxed so the core needs no allocator for it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// What the sender saw on each path since its previous report. Each side sends
    /// one on every path at least every [`crate::path::HEARTBEAT`], on the path it
    /// describes, so it doubles as the path's heartbeat and RTT probe.
    Report(Report),
    /// The sender is closing the session; the peer may drop its state at once.
    Close,
    /// Transport counters that never arrived on a path (a gap in its counter
    /// sequence): the peer sends the data they carried again, on its best path,
    /// while the reorder buffer here holds the hole (see
    /// [`crate::connection`]'s loss repair).
    Nack(Nack),
    /// Header-compression slots (bit `i` for slot `i`) whose context the
    /// sender of this message lacks: the peer installs them again with their
    /// next packet (see [`crate::compress`]).
    Forget(u32),
}

/// Ranges a [`Nack`] lists at most.
pub const MAX_NACK_RANGES: usize = 8;

/// Missing transport counters of one path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Nack {
    /// The path the packets were sent on.
    pub path: u8,
    /// The missing counters.
    pub ranges: Vec<NackRange, MAX_NACK_RANGES>,
}

/// `count` consecutive counters from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NackRange {
    /// First missing counter.
    pub first: u64,
    /// How many are missing.
    pub count: u16,
}

/// Per-path statistics (one entry, for the path the report travels on).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// One entry per described path.
    pub paths: Vec<PathReport, MAX_PATHS>,
}

/// What arrived on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathReport {
    /// Path id.
    pub path: u8,
    /// Packets received on this path (wrapping counter).
    pub packets: u32,
    /// Bytes received on this path (wrapping counter).
    pub bytes: u32,
    /// Highest transport counter accepted on this path: with `packets`, the loss.
    pub highest_counter: u64,
    /// Smallest one-way delay sample of the interval, in microseconds, on the two
    /// clocks (only its changes matter: a rise is a queue building up).
    pub owd_min_us: u32,
    /// Send stamp of the last packet received on this path (zero: none yet).
    pub echo_tx_time: u32,
    /// Microseconds between that packet's arrival and this report: subtracted
    /// from the round trip.
    pub hold_us: u32,
    /// Receive rate on this path over the interval, kbit/s.
    pub rx_rate_kbps: u32,
}

/// Why a control message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// The bytes are not a valid message (bad tag, truncated, oversized list).
    Malformed,
    /// A valid message followed by extra bytes.
    TrailingBytes(usize),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("buffer too small for control message"),
            Self::Malformed => f.write_str("malformed control message"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the control message"),
        }
    }
}

impl Control {
    /// Encodes into `buf`, returning the encoded bytes.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], ControlError> {
        postcard::to_slice(self, buf).map_err(|_| ControlError::BufferTooSmall)
    }

    /// Decodes one message that must fill `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        let (msg, rest) = postcard::take_from_bytes(bytes).map_err(|_| ControlError::Malformed)?;
        if !rest.is_empty() {
            return Err(ControlError::TrailingBytes(rest.len()));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(msg: &Control, expected: &[u8]) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let enc = msg.encode(&mut buf).unwrap();
        assert_eq!(enc, expected, "{msg:?}");
        assert_eq!(&Control::decode(expected).unwrap(), msg);
    }

    #[test]
    fn vectors() {
        roundtrip(&Control::Close, &[0x01]);
        let mut paths = Vec::new();
        paths
            .push(PathReport {
                path: 1,
                packets: 1000,
                bytes: 1_400_000,
                highest_counter: u64::from(u32::MAX) + 1,
                owd_min_us: 10_000,
                echo_tx_time: 0x1234_5678,
                hold_us: 150,
                rx_rate_kbps: 20_000,
            })
            .unwrap();
        roundtrip(
            &Control::Report(Report { paths }),
            &[
                0x00, 0x01, 0x01, 0xe8, 0x07, 0xc0, 0xb9, 0x55, 0x80, 0x80, 0x80, 0x80, 0x10, 0x90,
                0x4e, 0xf8, 0xac, 0xd1, 0x91, 0x01, 0x96, 0x01, 0xa0, 0x9c, 0x01,
            ],
        );
    }

    #[test]
    fn nack_vector() {
        let mut ranges = Vec::new();
        ranges
            .push(NackRange {
                first: 300,
                count: 2,
            })
            .unwrap();
        roundtrip(
            &Control::Nack(Nack { path: 3, ranges }),
            &[0x02, 0x03, 0x01, 0xac, 0x02, 0x02],
        );
    }

    #[test]
    fn largest_message_fits_bound() {
        let full = PathReport {
            path: u8::MAX,
            packets: u32::MAX,
            bytes: u32::MAX,
            highest_counter: u64::MAX,
            owd_min_us: u32::MAX,
            echo_tx_time: u32::MAX,
            hold_us: u32::MAX,
            rx_rate_kbps: u32::MAX,
        };
        let mut paths = Vec::new();
        for _ in 0..MAX_PATHS {
            paths.push(full).unwrap();
        }
        let mut buf = [0u8; 1024];
        let len = Control::Report(Report { paths })
            .encode(&mut buf)
            .unwrap()
            .len();
        assert!(len <= MAX_ENCODED_LEN, "{len}");
        let mut ranges = Vec::new();
        for _ in 0..MAX_NACK_RANGES {
            ranges
                .push(NackRange {
                    first: u64::MAX,
                    count: u16::MAX,
                })
                .unwrap();
        }
        let nack = Control::Nack(Nack {
            path: u8::MAX,
            ranges,
        });
        let len = nack.encode(&mut buf).unwrap().len();
        assert!(len <= MAX_ENCODED_LEN, "{len}");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Control::decode(&[]), Err(ControlError::Malformed));
        assert_eq!(Control::decode(&[0x09]), Err(ControlError::Malformed));
        assert_eq!(Control::decode(&[0x00]), Err(ControlError::Malformed));
        assert_eq!(
            Control::decode(&[0x01, 0x00]),
            Err(ControlError::TrailingBytes(1))
        );
        // A report claiming more paths than MAX_PATHS.
        assert_eq!(Control::decode(&[0x00, 0x09]), Err(ControlError::Malformed));
        let mut small = [0u8; 2];
        let mut paths = Vec::new();
        paths.push(PathReport::default()).unwrap();
        assert_eq!(
            Control::Report(Report { paths }).encode(&mut small),
            Err(ControlError::BufferTooSmall)
        );
    }
}
