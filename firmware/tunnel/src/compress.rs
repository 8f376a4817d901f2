//! TCP/IPv4 header compression for the aggregate class.
//!
//! A bulk TCP segment carries 40 bytes of IPv4 and TCP header, 52 with
//! timestamps, and most of them repeat in every segment of the flow. Each byte
//! of header is a byte less of payload per WAN packet, and braid's own 37 bytes
//! plus the outer UDP/IPv4 28 had already put a tunnelled TCP flow's ceiling at
//! 91.3% of a 1500-byte WAN's raw rate (plain TCP's is 95.6%). Compression
//! gives 21 to 25 of those bytes back: the TUN carries TCP segments 21 bytes
//! longer than other packets ([`MIN_GAIN`]), and the ceiling rises to 92.7%.
//!
//! The scheme is in the spirit of RFC 1144 and RFC 6846, made for a lossy,
//! reordering multipath link:
//!
//! * The addresses, ports, DSCP and TTL of a flow (its *context*) live in one
//!   of [`SLOTS`] slots, chosen by a hash of the addresses and ports. Every
//!   other field travels in every packet, absolute, never as a delta, so a lost
//!   or late packet never corrupts the next. Only the IPv4 version, header
//!   length, total length, header checksum, fragment fields and protocol, and
//!   the timestamp option's four fixed bytes are left out: all are rebuilt.
//! * The first packet of a context carries it inline ([`FORM_INSTALL`]),
//!   and is still 7 bytes shorter than the original (5 with an urgent
//!   pointer), so installing never makes a packet longer. A SYN always installs, so a flow whose first
//!   SYN was lost does not wait for a report of the miss. The receiver expands packets in sequence order
//!   (after the reorder buffer), so the install is always expanded before the
//!   packets that refer to it, unless it was lost for good.
//! * Every packet names its slot and an 8-bit hash of the context. A packet
//!   whose slot is empty or holds another context is a *miss*: it is dropped,
//!   never expanded with the wrong addresses, and the receiver tells the
//!   sender ([`crate::control::Control::Forget`]), which installs that slot
//!   again on its next packet. A context is also installed again every
//!   [`REFRESH`] packets, which bounds the damage of a hash collision
//!   between a lost install and the context it replaced.
//! * Packets of any other shape (IPv6, IP options, fragments, a nonzero
//!   urgent pointer without URG) pass through unchanged: they start with the
//!   IP version nibble 4 or 6, which no compressed form does.
//!
//! ```text
//!  byte  0        1       2                3        4        5..7   7..11 11..15 15..17 17..19
//!      +--------+-------+----------------+--------+--------+------+------+------+------+------+
//!      |form|slot| check | DF ECN TS 0000 | tcp 12 | tcp 13 |  id  | seq  | ack  | win  | csum |
//!      +--------+-------+----------------+--------+--------+------+------+------+------+------+
//!   then: the urgent pointer (2, only with URG); the context (14, only in an
//!   install); the TCP options, less NOP NOP 8 10 when TS is set; the payload.
//! ```
//!
//! `form` is the top three bits of byte 0: 000 refers to a context, 001
//! installs one. `tcp 12` and `tcp 13` are the TCP header's data offset,
//! reserved bits and flags, copied. The context is source and destination
//! address, source and destination port, DSCP and TTL. The TCP checksum is
//! carried as it was: the end host still checks the whole segment.

use alloc::vec::Vec;
use smoltcp::wire::{IpProtocol, Ipv4Packet};

/// Context slots per direction.
pub const SLOTS: usize = 32;
/// A context is installed again after this many packets that referred to it.
pub const REFRESH: u16 = 128;
/// Bytes every compressible TCP/IPv4 packet loses, at least (a segment
/// without timestamps: 40 header bytes become 19). With timestamps it is 25.
/// The exception is a segment with the urgent flag, whose pointer costs 2
/// bytes: one without timestamps at the full 1456 then leaves as 1437 and
/// the WAN socket fragments it. Nothing in use sends urgent data at full size.
pub const MIN_GAIN: usize = 21;

/// Form of a compressed packet that refers to an installed context.
pub const FORM_REFER: u8 = 0x00;
/// Form of a compressed packet that carries its context inline.
pub const FORM_INSTALL: u8 = 0x20;
const FORM_MASK: u8 = 0xe0;
const SLOT_MASK: u8 = 0x1f;

const BIT_DF: u8 = 0x80;
const ECN_SHIFT: u8 = 5;
const BIT_TS: u8 = 0x10;
const BITS_RESERVED: u8 = 0x0f;

/// Bytes of the fixed part of a compressed header.
const FIXED: usize = 19;
/// Bytes of an inline context.
const CONTEXT: usize = 14;
/// NOP, NOP, kind 8, length 10: the layout of the timestamp option every
/// mainstream stack sends.
const TS_PREFIX: [u8; 4] = [1, 1, 8, 10];
const TCP_FLAG_URG: u8 = 0x20;
const TCP_FLAG_SYN: u8 = 0x02;

/// What stays the same over a flow's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Context {
    src: [u8; 4],
    dst: [u8; 4],
    ports: [u8; 4],
    dscp: u8,
    ttl: u8,
}

impl Context {
    fn bytes(&self) -> [u8; CONTEXT] {
        let mut b = [0u8; CONTEXT];
        b[..4].copy_from_slice(&self.src);
        b[4..8].copy_from_slice(&self.dst);
        b[8..12].copy_from_slice(&self.ports);
        b[12] = self.dscp;
        b[13] = self.ttl;
        b
    }

    fn from_bytes(b: &[u8]) -> Self {
        let mut c = Self {
            src: [0; 4],
            dst: [0; 4],
            ports: [0; 4],
            dscp: b[12] & 0x3f,
            ttl: b[13],
        };
        c.src.copy_from_slice(&b[..4]);
        c.dst.copy_from_slice(&b[4..8]);
        c.ports.copy_from_slice(&b[8..12]);
        c
    }

    /// The slot of the flow (addresses and ports only, so that a change of
    /// TTL or DSCP re-installs the same slot).
    fn slot(&self) -> u8 {
        (fnv(&self.bytes()[..12]) % SLOTS as u32) as u8
    }

    /// The 8-bit check every packet carries.
    fn check(&self) -> u8 {
        let h = fnv(&self.bytes());
        (h ^ h >> 8 ^ h >> 16 ^ h >> 24) as u8
    }
}

/// FNV-1a, 32 bits: a fixed, portable hash (the same on every CPU and run).
pub(crate) fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A TCP/IPv4 packet of the shape this scheme compresses, read.
struct Shape<'a> {
    context: Context,
    /// DF, ECN and TS bits of byte 2.
    bits: u8,
    ip_id: [u8; 2],
    /// TCP header bytes 4..18: seq, ack, data offset, flags, window, checksum.
    tcp: &'a [u8],
    urgent: Option<[u8; 2]>,
    /// Options, less the timestamp prefix when TS is set.
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Shape<'a> {
    /// Reads `packet`, or `None` if it is not IPv4 + TCP without IP options,
    /// unfragmented, with a consistent length and a zero urgent pointer
    /// outside URG.
    fn of(packet: &'a [u8]) -> Option<Self> {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        if ip.version() != 4
            || ip.header_len() != 20
            || usize::from(ip.total_len()) != packet.len()
            || ip.more_frags()
            || ip.frag_offset() != 0
            || packet[6] & 0x80 != 0
            || ip.next_header() != IpProtocol::Tcp
        {
            return None;
        }
        let tcp = &packet[20..];
        let offset = usize::from(*tcp.get(12)? >> 4) * 4;
        if offset < 20 || tcp.len() < offset {
            return None;
        }
        let urg = tcp[13] & TCP_FLAG_URG != 0;
        let urgent = [tcp[18], tcp[19]];
        if !urg && urgent != [0, 0] {
            return None;
        }
        let mut options = &tcp[20..offset];
        let mut bits = if ip.dont_frag() { BIT_DF } else { 0 };
        bits |= (ip.ecn() & 3) << ECN_SHIFT;
        if options.len() >= 12 && options[..4] == TS_PREFIX {
            bits |= BIT_TS;
            options = &options[4..];
        }
        let mut context = Context {
            src: [0; 4],
            dst: [0; 4],
            ports: [0; 4],
            dscp: ip.dscp(),
            ttl: ip.hop_limit(),
        };
        context.src.copy_from_slice(&packet[12..16]);
        context.dst.copy_from_slice(&packet[16..20]);
        context.ports.copy_from_slice(&tcp[..4]);
        Some(Self {
            context,
            bits,
            ip_id: [packet[4], packet[5]],
            tcp: &tcp[4..18],
            urgent: urg.then_some(urgent),
            options,
            payload: &tcp[offset..],
        })
    }
}

/// Counters of a [`Compressor`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressStats {
    /// Packets sent in a compressed form (installs included).
    pub compressed: u64,
    /// Of which carried their context inline.
    pub installs: u64,
    /// Header bytes saved in all.
    pub saved_bytes: u64,
}

/// The sender's side: which context each slot holds at the receiver, as far
/// as it knows.
#[derive(Debug, Clone)]
pub struct Compressor {
    slots: [Option<(Context, u16)>; SLOTS],
    /// Slot and saving of the last packet compressed, for [`Self::unsent`].
    last: Option<(u8, bool, u64)>,
    stats: CompressStats,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// No context installed.
    pub const fn new() -> Self {
        Self {
            slots: [None; SLOTS],
            last: None,
            stats: CompressStats {
                compressed: 0,
                installs: 0,
                saved_bytes: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CompressStats {
        self.stats
    }

    /// Compresses `packet` into `out`, if it has the shape this scheme
    /// compresses; returns the compressed length. `None` leaves `out` alone
    /// and the packet goes as it is. `out` needs `packet.len()` bytes.
    pub fn compress(&mut self, packet: &[u8], out: &mut [u8]) -> Option<usize> {
        let shape = Shape::of(packet)?;
        let slot = shape.context.slot();
        // A SYN always installs: if it is lost, its retransmission must not
        // refer to a context the receiver never got.
        let syn = shape.tcp[9] & TCP_FLAG_SYN != 0;
        let refer = match &mut self.slots[usize::from(slot)] {
            Some((c, uses)) if *c == shape.context && *uses < REFRESH && !syn => {
                *uses += 1;
                true
            }
            _ => false,
        };
        let len = emit(&shape, slot, !refer, out)?;
        if !refer {
            self.slots[usize::from(slot)] = Some((shape.context, 0));
            self.stats.installs += 1;
        }
        let saved = (packet.len() - len) as u64;
        self.stats.compressed += 1;
        self.stats.saved_bytes += saved;
        self.last = Some((slot, !refer, saved));
        Some(len)
    }

    /// The packet just compressed was dropped before it left: its slot is
    /// forgotten (it may have been an install), so the next packet installs
    /// it again rather than refer to a context the receiver never got.
    pub fn unsent(&mut self) {
        if let Some((slot, install, saved)) = self.last.take() {
            self.slots[usize::from(slot)] = None;
            self.stats.compressed -= 1;
            self.stats.installs -= u64::from(install);
            self.stats.saved_bytes -= saved;
        }
    }

    /// Forgets the contexts of the slots set in `mask` (the receiver lacks
    /// them): their next packets install them again.
    pub fn forget(&mut self, mask: u32) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if mask & 1 << i != 0 {
                *s = None;
            }
        }
    }
}

/// Writes the compressed form of `shape` into `out`.
fn emit(shape: &Shape<'_>, slot: u8, install: bool, out: &mut [u8]) -> Option<usize> {
    let len = FIXED
        + if shape.urgent.is_some() { 2 } else { 0 }
        + if install { CONTEXT } else { 0 }
        + shape.options.len()
        + shape.payload.len();
    let out = out.get_mut(..len)?;
    out[0] = if install { FORM_INSTALL } else { FORM_REFER } | slot;
    out[1] = shape.context.check();
    out[2] = shape.bits;
    out[3] = shape.tcp[8];
    out[4] = shape.tcp[9];
    out[5..7].copy_from_slice(&shape.ip_id);
    out[7..15].copy_from_slice(&shape.tcp[..8]);
    out[15..19].copy_from_slice(&shape.tcp[10..14]);
    let mut at = FIXED;
    let mut put = |b: &[u8]| {
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    if let Some(u) = shape.urgent {
        put(&u);
    }
    if install {
        put(&shape.context.bytes());
    }
    put(shape.options);
    put(shape.payload);
    Some(len)
}

/// Why a packet could not be expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpandError {
    /// It refers to a context this side does not hold (its slot is then
    /// reported by [`Decompressor::take_missed`]).
    Miss(u8),
    /// Not a valid packet of any form.
    Malformed,
}

/// Counters of a [`Decompressor`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpandStats {
    /// Compressed packets expanded (installs included).
    pub expanded: u64,
    /// Packets dropped because their context was missing or another.
    pub misses: u64,
    /// Packets dropped as malformed.
    pub malformed: u64,
}

/// The receiver's side: the contexts the sender installed.
#[derive(Debug, Clone)]
pub struct Decompressor {
    slots: [Option<Context>; SLOTS],
    missed: u32,
    stats: ExpandStats,
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// No context installed.
    pub const fn new() -> Self {
        Self {
            slots: [None; SLOTS],
            missed: 0,
            stats: ExpandStats {
                expanded: 0,
                misses: 0,
                malformed: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ExpandStats {
        self.stats
    }

    /// The slots that missed since the last call, as a bit mask (bit `i` for
    /// slot `i`), for a [`crate::control::Control::Forget`].
    pub fn take_missed(&mut self) -> u32 {
        core::mem::take(&mut self.missed)
    }

    /// The IP packet `inner` stands for. Packets that start with IP version 4
    /// or 6 are not compressed and come back as they are. Compressed ones must
    /// be expanded in the order they were compressed (sequence order).
    pub fn expand(&mut self, inner: &[u8]) -> Result<Vec<u8>, ExpandError> {
        if matches!(inner.first().map(|b| b >> 4), Some(4 | 6)) {
            return Ok(inner.to_vec());
        }
        let r = self.expand_compressed(inner);
        match r {
            Ok(_) => self.stats.expanded += 1,
            Err(ExpandError::Miss(slot)) => {
                self.missed |= 1 << slot;
                self.stats.misses += 1;
            }
            Err(ExpandError::Malformed) => self.stats.malformed += 1,
        }
        r
    }

    fn expand_compressed(&mut self, p: &[u8]) -> Result<Vec<u8>, ExpandError> {
        let bad = ExpandError::Malformed;
        let fixed = p.get(..FIXED).ok_or(bad)?;
        let install = match fixed[0] & FORM_MASK {
            FORM_REFER => false,
            FORM_INSTALL => true,
            _ => return Err(bad),
        };
        let slot = fixed[0] & SLOT_MASK;
        let bits = fixed[2];
        if bits & BITS_RESERVED != 0 {
            return Err(bad);
        }
        let offset = usize::from(fixed[3] >> 4) * 4;
        let ts = bits & BIT_TS != 0;
        if offset < 20 + if ts { 12 } else { 0 } {
            return Err(bad);
        }
        let mut rest = &p[FIXED..];
        let mut take = |n: usize| -> Result<&[u8], ExpandError> {
            let (a, b) = rest.split_at_checked(n).ok_or(bad)?;
            rest = b;
            Ok(a)
        };
        let urgent = if fixed[4] & TCP_FLAG_URG != 0 {
            take(2)?
        } else {
            &[0, 0][..]
        };
        let context = if install {
            let c = Context::from_bytes(take(CONTEXT)?);
            if c.check() != fixed[1] || c.slot() != slot {
                return Err(bad);
            }
            self.slots[usize::from(slot)] = Some(c);
            c
        } else {
            match self.slots[usize::from(slot)] {
                Some(c) if c.check() == fixed[1] => c,
                _ => return Err(ExpandError::Miss(slot)),
            }
        };
        let options = take(offset - 20 - if ts { 4 } else { 0 })?;
        let payload = rest;
        let total = 20 + offset + payload.len();
        let total_len = u16::try_from(total).map_err(|_| bad)?;
        let mut out = Vec::with_capacity(total);
        out.resize(20, 0);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut out[..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_dscp(context.dscp);
            ip.set_ecn(bits >> ECN_SHIFT & 3);
            ip.set_total_len(total_len);
            ip.set_ident(u16::from_be_bytes([fixed[5], fixed[6]]));
            ip.clear_flags();
            ip.set_dont_frag(bits & BIT_DF != 0);
            ip.set_frag_offset(0);
            ip.set_hop_limit(context.ttl);
            ip.set_next_header(IpProtocol::Tcp);
            out[12..16].copy_from_slice(&context.src);
            out[16..20].copy_from_slice(&context.dst);
            Ipv4Packet::new_unchecked(&mut out[..]).fill_checksum();
        }
        out.extend_from_slice(&context.ports);
        out.extend_from_slice(&fixed[7..15]);
        out.extend_from_slice(&fixed[3..5]);
        out.extend_from_slice(&fixed[15..19]);
        out.extend_from_slice(urgent);
        if ts {
            out.extend_from_slice(&TS_PREFIX);
        }
        out.extend_from_slice(options);
        out.extend_from_slice(payload);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
