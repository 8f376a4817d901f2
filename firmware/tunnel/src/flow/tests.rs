//! Buckets: TCP/IPv4 follows the compressor's slots, the rest stays apart.

use super::*;
use crate::compress::Compressor;
use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Packet, TcpPacket};

/// An IPv4 packet of protocol `proto` from 192.168.1.20 to 198.51.100.7 with
/// ports `sport`, `dport`, 100 bytes of payload and valid checksums.
fn v4(proto: u8, sport: u16, dport: u16) -> std::vec::Vec<u8> {
    let mut p = std::vec![0u8; 140];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&140u16.to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[192, 168, 1, 20]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = 0x10; // ACK
    Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
    if proto == 6 {
        let src = IpAddress::Ipv4(Ipv4Address::new(192, 168, 1, 20));
        let dst = IpAddress::Ipv4(Ipv4Address::new(198, 51, 100, 7));
        TcpPacket::new_unchecked(&mut p[20..]).fill_checksum(&src, &dst);
    }
    p
}

#[test]
fn tcp_v4_buckets_are_the_compressor_s_slots() {
    let mut c = Compressor::new();
    let mut out = [0u8; 140];
    let mut seen = [false; SLOTS];
    for sport in 40000..40200 {
        let p = v4(6, sport, 443);
        let n = c.compress(&p, &mut out).expect("compressible");
        assert!(n < p.len());
        let slot = usize::from(out[0] & 0x1f);
        assert_eq!(bucket(&p), slot, "port {sport}");
        seen[slot] = true;
    }
    assert!(seen.iter().all(|&s| s), "200 flows reach every slot");
}

#[test]
fn other_traffic_uses_the_other_half_by_flow() {
    let udp = v4(17, 5000, 53);
    assert!((SLOTS..BUCKETS).contains(&bucket(&udp)));
    assert_eq!(bucket(&udp), bucket(&v4(17, 5000, 53)), "stable");
    let spread: std::collections::BTreeSet<usize> =
        (5000..5100).map(|p| bucket(&v4(17, p, 53))).collect();
    assert!(spread.len() > SLOTS / 2, "flows spread: {}", spread.len());
    // The fragments of one datagram share a bucket, ports or not.
    let mut first = v4(17, 5000, 53);
    first[6] = 0x20; // MF
    let mut rest = v4(17, 1, 2);
    rest[6..8].copy_from_slice(&185u16.to_be_bytes());
    assert_eq!(bucket(&first), bucket(&rest));
    // A v6 packet is hashed too.
    let mut v6 = std::vec![0u8; 60];
    v6[0] = 0x60;
    v6[6] = 17;
    v6[40..44].copy_from_slice(&[0x13, 0x88, 0, 53]);
    assert!((SLOTS..BUCKETS).contains(&bucket(&v6)));
}

#[test]
fn anything_else_is_one_bucket_and_never_panics() {
    assert_eq!(bucket(&[]), SLOTS);
    assert_eq!(bucket(&[0x00, 1, 2, 3]), SLOTS);
    let p = v4(6, 1, 2);
    for n in 0..p.len() {
        assert!(bucket(&p[..n]) < BUCKETS);
    }
    let mut v6 = std::vec![0u8; 44];
    v6[0] = 0x60;
    for n in 0..v6.len() {
        assert!(bucket(&v6[..n]) < BUCKETS);
    }
}
