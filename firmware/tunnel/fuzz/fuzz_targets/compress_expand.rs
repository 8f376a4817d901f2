//! Compressed headers come from the peer: `Decompressor::expand` must never
//! panic on any bytes, and what it rebuilds is a consistent IPv4 packet. Any
//! packet the compressor accepts comes back byte for byte (less the IPv4
//! header checksum, which is rebuilt), both when it installs its context and
//! when it refers to it, and is at least 7 and 21 bytes shorter on the way
//! (5 and 19 with an urgent pointer).
#![no_main]

use braid_tunnel::compress::{Compressor, Decompressor};
use libfuzzer_sys::fuzz_target;

/// `p` with its IPv4 header checksum recomputed.
fn with_checksum(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    p[10..12].copy_from_slice(&[0, 0]);
    let mut sum: u32 = p[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes, into a fresh decompressor and into one that holds
    // the contexts of the input read as a packet.
    let mut d = Decompressor::new();
    let mut c = Compressor::new();
    let mut out = vec![0u8; data.len()];
    let compressed = c.compress(data, &mut out);
    if let Some(n) = compressed {
        let _ = d.expand(&out[..n]);
    }
    for _ in 0..2 {
        if let Ok(p) = d.expand(data) {
            if data.first().is_some_and(|b| matches!(b >> 4, 4 | 6)) {
                assert_eq!(p, data);
            } else {
                assert_eq!(p[0], 0x45);
                assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
                assert_eq!(with_checksum(&p), p);
            }
        }
    }
    // The round trip.
    if let Some(n) = compressed {
        let want = with_checksum(data);
        // An urgent pointer costs 2 bytes.
        let urgent = if data[33] & 0x20 != 0 { 2 } else { 0 };
        assert!(n + 7 - urgent <= data.len());
        let mut d = Decompressor::new();
        assert_eq!(d.expand(&out[..n]).expect("install expands"), want);
        let n = c.compress(data, &mut out).expect("compressible again");
        // A SYN installs again.
        assert!(n + 21 - urgent <= data.len() || data[33] & 0x02 != 0);
        assert_eq!(d.expand(&out[..n]).expect("refer expands"), want);
    }
});
