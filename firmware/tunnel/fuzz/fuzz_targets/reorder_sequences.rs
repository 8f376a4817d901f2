//! Sequence numbers and flow predecessors come from the peer (authenticated,
//! but a peer can be buggy or hostile): whatever it sends, the reorder buffer
//! never panics, never holds more than its capacity, never delivers one
//! sequence number twice, and holds nothing once every timeout has run out.
#![no_main]

use braid_tunnel::reorder::{Reorder, Sent, MAX_TIMEOUT};
use braid_tunnel::time::Instant;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

const CAPACITY: usize = 64;

fuzz_target!(|data: &[u8]| {
    let mut r = Reorder::with_capacity(CAPACITY);
    let mut delivered = Vec::new();
    let mut now = 0u64;
    for op in data.chunks_exact(7) {
        now += u64::from(op[0]) * 100;
        let at = Instant::from_micros(now);
        // Within 16 bits, so that no jump wraps the 20-bit sequence space
        // (which would make an old number new again: a peer can always
        // resend a packet under a new number, so that is no attack).
        let seq = u32::from(u16::from_be_bytes([op[1], op[2]]));
        let pred = u16::from_be_bytes([op[3], op[4]]) & 0x0fff;
        let mut sink = |p: &[u8], _: bool| delivered.push(p.to_vec());
        match op[0] % 8 {
            0 => r.on_timeout(at, &mut sink),
            1 => r.push(at, seq, pred, Sent::Repair, &seq.to_be_bytes(), &mut sink),
            3 => r.push(at, seq, pred, Sent::Copy, &seq.to_be_bytes(), &mut sink),
            2 => r.hold(at, Instant::from_micros(now + u64::from(op[5]) * 1000)),
            _ => r.push(at, seq, pred, Sent::First, &seq.to_be_bytes(), &mut sink),
        }
        assert!(r.held() <= CAPACITY);
    }
    let end = Instant::from_micros(now) + MAX_TIMEOUT + MAX_TIMEOUT;
    r.on_timeout(end, &mut |p: &[u8], _: bool| delivered.push(p.to_vec()));
    assert_eq!(r.held(), 0, "nothing held after every timeout");
    assert_eq!(r.deadline(), None);
    let unique: HashSet<_> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "delivered twice");
    assert_eq!(r.stats().delivered as usize, delivered.len());
});
