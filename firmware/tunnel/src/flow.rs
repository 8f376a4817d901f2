//! Which flow an IP packet belongs to, so that the receiver can restore each
//! flow's order instead of the whole class's ([`crate::reorder`]).
//!
//! A flow is hashed into one of [`BUCKETS`] buckets; packets of one bucket
//! form a chain (each names the previous one, see [`crate::wire::InnerRepr`]),
//! and flows sharing a bucket are simply kept in order with each other.
//!
//! * TCP over IPv4 hashes exactly as [`crate::compress`] picks its context slot
//!   (FNV-1a of addresses and ports, modulo [`crate::compress::SLOTS`]): every
//!   packet that installs or refers to a slot is in that slot's chain, so the
//!   receiver still expands them in the order they were compressed.
//! * Everything else (UDP, ICMP, IPv6, fragments) hashes its protocol,
//!   addresses and, when the packet has them, ports into the other half. A
//!   fragment has no ports: the fragments of a datagram stay together, though
//!   not with the flow's unfragmented packets (UDP promises no order).

use crate::compress::{fnv, SLOTS};

/// Chains per traffic class.
pub const BUCKETS: usize = 2 * SLOTS;

/// The bucket of an IP packet (bucket [`SLOTS`] for anything unparseable).
pub fn bucket(packet: &[u8]) -> usize {
    match packet.first().map(|b| b >> 4) {
        Some(4) => v4(packet),
        Some(6) => v6(packet),
        _ => None,
    }
    .unwrap_or(SLOTS)
}

fn v4(p: &[u8]) -> Option<usize> {
    let ihl = usize::from(p.first()? & 0x0f) * 4;
    let proto = *p.get(9)?;
    let fragment = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x3fff != 0;
    let addrs = p.get(12..20)?;
    let ports = p.get(ihl..ihl + 4).filter(|_| ihl >= 20 && !fragment);
    if proto == 6 {
        if let Some(ports) = ports {
            let mut key = [0u8; 12];
            key[..8].copy_from_slice(addrs);
            key[8..].copy_from_slice(ports);
            return Some(fnv(&key) as usize % SLOTS);
        }
    }
    Some(other(proto, addrs, ports.filter(|_| proto == 17)))
}

fn v6(p: &[u8]) -> Option<usize> {
    let proto = *p.get(6)?;
    let addrs = p.get(8..40)?;
    let ports = p.get(40..44).filter(|_| proto == 6 || proto == 17);
    Some(other(proto, addrs, ports))
}

/// A bucket of the second half, from protocol, addresses and ports.
fn other(proto: u8, addrs: &[u8], ports: Option<&[u8]>) -> usize {
    let mut key = [0u8; 37];
    key[0] = proto;
    key[1..1 + addrs.len()].copy_from_slice(addrs);
    let mut len = 1 + addrs.len();
    if let Some(ports) = ports {
        key[len..len + 4].copy_from_slice(ports);
        len += 4;
    }
    SLOTS + fnv(&key[..len]) as usize % SLOTS
}

#[cfg(test)]
mod tests;
