//! Attacks on a running tunnel: replayed, modified and truncated packets; a
//! handshake under a wrong key; an unauthenticated handshake flood at 10,000
//! packets per second against the concentrator.

#![allow(clippy::unwrap_used)]

mod sim;

use std::time::Duration;

use braid_tunnel::connection::{Class, Connection};
use braid_tunnel::endpoint::{Endpoint, Incoming};
use braid_tunnel::handshake::{self, LocalIdentity, RemoteIdentity, Tai64n};
use braid_tunnel::time::Instant;
use sim::{LinkSpec, Rng, Sim};

fn established() -> Sim {
    let mut s = Sim::symmetric(41, &[LinkSpec::new(10.0, 10.0), LinkSpec::new(10.0, 20.0)]);
    s.run_until(Duration::from_millis(800));
    assert!(s.router.is_established());
    s
}

/// One sealed data datagram from the router, taken before it reaches a link.
fn capture(s: &mut Sim) -> Vec<u8> {
    let now = Instant::from_micros(s.now);
    let mut pkt = vec![0u8; 200];
    pkt[0] = 0x45;
    s.router.send(now, Class::Interactive, &pkt).unwrap();
    let mut buf = vec![0u8; 2048];
    loop {
        let t = s.router.poll_transmit(now, &mut buf).expect("a datagram");
        // Skip reports: keep the data packet (the largest).
        if t.len > 200 {
            return buf[..t.len].to_vec();
        }
    }
}

fn deliver(s: &mut Sim, d: &[u8]) -> Incoming {
    let mut d = d.to_vec();
    s.conc
        .handle(Instant::from_micros(s.now), &[0, 0, 0, 1], &mut d)
}

#[test]
fn replayed_modified_and_truncated_packets_are_dropped_and_counted() {
    let mut s = established();
    let (d1, d2, d3) = (capture(&mut s), capture(&mut s), capture(&mut s));
    assert!(matches!(
        deliver(&mut s, &d1),
        Incoming::Connection { path: Some(_), .. }
    ));
    let before = s.conc.connection(0).unwrap().stats();

    assert!(
        matches!(
            deliver(&mut s, &d1),
            Incoming::Connection { path: None, .. }
        ),
        "replay"
    );
    let mut modified = d2.clone();
    modified[40] ^= 0x01;
    assert!(matches!(
        deliver(&mut s, &modified),
        Incoming::Connection { path: None, .. }
    ));
    let truncated = &d3[..d3.len() - 7];
    assert!(matches!(
        deliver(&mut s, truncated),
        Incoming::Connection { path: None, .. }
    ));
    // The originals of the modified and truncated copies still get through: a
    // forgery does not burn their counters.
    assert!(matches!(
        deliver(&mut s, &d2),
        Incoming::Connection { path: Some(_), .. }
    ));
    assert!(matches!(
        deliver(&mut s, &d3),
        Incoming::Connection { path: Some(_), .. }
    ));

    let after = s.conc.connection(0).unwrap().stats();
    assert_eq!(after.rx_replayed, before.rx_replayed + 1);
    assert_eq!(after.rx_unauthentic, before.rx_unauthentic + 2);
    assert_eq!(
        after.rx_ok,
        before.rx_ok + 2,
        "only the two originals were accepted"
    );
}

#[test]
fn a_handshake_under_a_wrong_key_fails() {
    let mut rng = Rng::new(5);
    let (router_key, conc_key) = (rng.bytes32(), rng.bytes32());
    let mut conc = Endpoint::new(conc_key, rng.bytes32());
    conc.add_peer(LocalIdentity::new(router_key).public(), [0; 32]);
    let now = Instant::from_micros(1_000);
    let mut buf = vec![0u8; 2048];

    // The router has the wrong concentrator key: mac1 fails, nothing answers.
    let mut router = Connection::initiator(router_key, rng.bytes32(), [0; 32], rng.bytes32());
    router.add_path(0, Default::default(), now);
    let t = router.poll_transmit(now, &mut buf).unwrap();
    assert!(matches!(
        conc.handle(now, &[1], &mut buf[..t.len]),
        Incoming::Dropped
    ));
    assert_eq!(conc.stats().bad_mac1, 1);

    // A router the concentrator does not know: decrypts, then refused.
    let mut stranger = Connection::initiator(rng.bytes32(), conc.public(), [0; 32], rng.bytes32());
    stranger.add_path(0, Default::default(), now);
    let t = stranger.poll_transmit(now, &mut buf).unwrap();
    assert!(matches!(
        conc.handle(now, &[1], &mut buf[..t.len]),
        Incoming::Dropped
    ));
    assert_eq!(conc.stats().unknown_peer, 1);

    // The right router but another pre-shared key: the router refuses the response.
    let mut wrong_psk = Connection::initiator(router_key, conc.public(), [9; 32], rng.bytes32());
    wrong_psk.set_wall_clock(now, 1_700_000_000, 0);
    wrong_psk.add_path(0, Default::default(), now);
    let t = wrong_psk.poll_transmit(now, &mut buf).unwrap();
    let Incoming::Reply(mut response) = conc.handle(now, &[1], &mut buf[..t.len]) else {
        panic!("the concentrator answers (it cannot tell)");
    };
    wrong_psk.handle(now, &mut response);
    assert!(!wrong_psk.is_established());
    assert_eq!(wrong_psk.stats().rx_unauthentic, 1);
    assert_eq!(
        conc.sessions(),
        1,
        "the concentrator's half-session keys are never confirmed"
    );
}

/// 10,000 initiations per second for one second, of three kinds: random bytes,
/// a right mac1 over garbage, and real initiations from unknown keys. The
/// concentrator keeps serving its router and creates no state for any of them.
#[test]
fn handshake_flood_allocates_no_state() {
    let mut s = established();
    let peers = s.conc.peers().len();
    let sessions = s.conc.sessions();
    let conc_public = s.conc.public();
    let mut rng = Rng::new(77);
    let stranger = LocalIdentity::new(rng.bytes32());
    let conc_remote = RemoteIdentity::new(conc_public, [0; 32]);
    let mac1_key = handshake::primitives::hash(&[handshake::LABEL_MAC1, &conc_public]);
    let start = s.now;
    let mut replies = 0u32;
    for i in 0..10_000u64 {
        let now = s.conc_instant(start + i * 100);
        let mut msg = match i % 3 {
            0 => {
                let mut m = random_bytes(&mut rng, handshake::INIT_LEN);
                m[0] = 1;
                m[1..4].fill(0);
                m
            }
            1 => {
                let mut m = random_bytes(&mut rng, handshake::INIT_LEN);
                m[0] = 1;
                m[1..4].fill(0);
                let mac = handshake::primitives::mac(&mac1_key, &[&m[..116]]);
                m[116..132].copy_from_slice(&mac);
                m[132..148].fill(0);
                m
            }
            _ => {
                let mut r = rand_chacha::ChaCha20Rng::from_seed(rng.bytes32());
                let (_, m) = handshake::initiate(
                    &stranger,
                    &conc_remote,
                    i as u32,
                    Tai64n::from_unix(i, 0),
                    None,
                    &mut r,
                )
                .unwrap();
                m.to_vec()
            }
        };
        let source = (i as u32).to_be_bytes();
        if let Incoming::Reply(_) = s.conc.handle(now, &source, &mut msg) {
            replies += 1;
        }
    }
    let st = s.conc.stats();
    eprintln!("flood: {st:?}, {replies} cookie replies");
    assert_eq!(s.conc.peers().len(), peers);
    assert_eq!(s.conc.sessions(), sessions);
    assert!(st.bad_mac1 >= 3_333, "random bytes fail mac1: {st:?}");
    assert!(
        st.cookie_replies > 6_000,
        "under load, mac1-valid initiations get cookies: {st:?}"
    );
    assert_eq!(
        replies as u64, st.cookie_replies,
        "no handshake response to any of them"
    );
    assert_eq!(st.accepted, 1, "only the real router's session");
    // The real router still gets through.
    s.now = start + 1_000_000;
    s.run_until(Duration::from_micros(start + 3_000_000));
    assert!(s.router.is_established());
}

use rand_core::SeedableRng;

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}
