//! The handshake and session machinery on both sides, driven by the fuzzer: a
//! router and a concentrator exchange real datagrams, which the input may drop,
//! corrupt, replay or replace with its own bytes, interleaved with time steps,
//! data and timeouts. Neither side may panic, and the concentrator may never
//! hold state for anyone but its one known router (1 peer, at most 1 session).
//!
//! Input bytes whose length is an initiation's (or a response's) get a valid
//! mac1 for the receiver, so the fuzzer reaches the Noise decryption behind it
//! rather than stopping at the cheap MAC check.
#![no_main]

use braid_tunnel::connection::{Class, Connection};
use braid_tunnel::endpoint::{Endpoint, Incoming};
use braid_tunnel::handshake::{self, primitives, LocalIdentity, INIT_LEN, RESPONSE_LEN};
use braid_tunnel::path::PathConfig;
use braid_tunnel::time::Instant;
use libfuzzer_sys::fuzz_target;

const CONC_SECRET: [u8; 32] = [1; 32];
const ROUTER_SECRET: [u8; 32] = [2; 32];

fn fix_mac1(msg: &mut [u8], receiver_public: &[u8; 32]) {
    let key = primitives::hash(&[handshake::LABEL_MAC1, receiver_public]);
    // mac1's offsets (WireGuard's layout): 116 in an initiation, 60 in a response.
    let at = match msg.len() {
        INIT_LEN => 116,
        RESPONSE_LEN => 60,
        _ => return,
    };
    let mac = primitives::mac(&key, &[&msg[..at]]);
    msg[at..at + 16].copy_from_slice(&mac);
}

fuzz_target!(|data: &[u8]| {
    let mut conc = Endpoint::new(CONC_SECRET, [3; 32]);
    conc.load_limit = u32::from(data.first().copied().unwrap_or(0) % 8);
    let router_public = LocalIdentity::new(ROUTER_SECRET).public();
    conc.add_peer(router_public, [0; 32]);
    let conc_public = conc.public();
    let mut router = Connection::initiator(ROUTER_SECRET, conc_public, [0; 32], [4; 32]);
    router.set_wall_clock(Instant::ZERO, 1_700_000_000, 0);
    router.add_path(0, PathConfig::default(), Instant::ZERO);
    router.add_path(1, PathConfig::default(), Instant::ZERO);

    let mut now = 0u64;
    let mut buf = [0u8; 2048];
    // Datagrams in flight each way, the last few kept for replays.
    let mut to_conc: Vec<Vec<u8>> = Vec::new();
    let mut to_router: Vec<Vec<u8>> = Vec::new();
    let mut input = data.get(1..).unwrap_or_default();
    let mut steps = 0;
    while let Some((&op, rest)) = input.split_first() {
        steps += 1;
        if steps > 256 {
            break;
        }
        input = rest;
        let t = Instant::from_micros(now);
        match op % 8 {
            // Time passes (up to ~2.5 s), timers fire.
            0 => {
                now += u64::from(op >> 3) * 80_000 + 1;
                let t = Instant::from_micros(now);
                if router.poll_timeout().is_some_and(|d| d <= t) {
                    router.handle_timeout(t);
                }
                if let Some(c) = conc.connection(0) {
                    if c.poll_timeout().is_some_and(|d| d <= t) {
                        c.handle_timeout(t);
                    }
                }
            }
            // Both sides transmit what they have.
            1 => {
                while let Some(tx) = router.poll_transmit(t, &mut buf) {
                    to_conc.push(buf[..tx.len].to_vec());
                    if to_conc.len() > 64 {
                        to_conc.remove(0);
                    }
                }
                if let Some(c) = conc.connection(0) {
                    while let Some(tx) = c.poll_transmit(t, &mut buf) {
                        to_router.push(buf[..tx.len].to_vec());
                        if to_router.len() > 64 {
                            to_router.remove(0);
                        }
                    }
                }
            }
            // Deliver (or replay) a datagram to the concentrator, maybe corrupted.
            2 | 3 => {
                let Some((&sel, rest)) = input.split_first() else {
                    break;
                };
                input = rest;
                if to_conc.is_empty() {
                    continue;
                }
                let mut d = to_conc[usize::from(sel) % to_conc.len()].clone();
                if op % 8 == 3 {
                    let Some((&pos, rest)) = input.split_first() else {
                        break;
                    };
                    input = rest;
                    let i = usize::from(pos) % d.len().max(1);
                    if let Some(b) = d.get_mut(i) {
                        *b ^= 1 << (pos % 8);
                    }
                }
                if let Incoming::Reply(r) = conc.handle(t, &[sel % 4], &mut d) {
                    to_router.push(r);
                }
            }
            // Deliver (or replay) a datagram to the router.
            4 => {
                let Some((&sel, rest)) = input.split_first() else {
                    break;
                };
                input = rest;
                if to_router.is_empty() {
                    continue;
                }
                let mut d = to_router[usize::from(sel) % to_router.len()].clone();
                router.handle(t, &mut d);
            }
            // Raw fuzzer bytes to either side.
            5 | 6 => {
                let Some((&len, rest)) = input.split_first() else {
                    break;
                };
                let len = (usize::from(len) * 2).min(rest.len());
                let (bytes, rest) = rest.split_at(len);
                input = rest;
                let mut d = bytes.to_vec();
                if op % 8 == 5 {
                    fix_mac1(&mut d, &conc_public);
                    if let Incoming::Reply(r) = conc.handle(t, &[9], &mut d) {
                        to_router.push(r);
                    }
                } else {
                    fix_mac1(&mut d, &router_public);
                    router.handle(t, &mut d);
                }
            }
            // Data from the LAN.
            _ => {
                let class = match op >> 6 {
                    0 => Class::Redundant,
                    1 => Class::Interactive,
                    _ => Class::Aggregate,
                };
                let _ = router.send(t, class, &[0x45; 60]);
            }
        }
        while router.poll_deliver(t).is_some() {}
        while router.poll_event().is_some() {}
        if let Some(c) = conc.connection(0) {
            while c.poll_deliver(t).is_some() {}
            while c.poll_event().is_some() {}
        }
        assert_eq!(conc.peers().len(), 1, "peer table grew");
        assert!(conc.sessions() <= 1, "sessions for an unknown peer");
    }
});
