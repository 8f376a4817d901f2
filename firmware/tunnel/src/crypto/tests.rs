//! Test vectors and properties of sealing, opening and the replay window.
//!
//! The sealed-packet vectors were computed independently with Python's
//! `cryptography` package (OpenSSL's ChaCha20-Poly1305), not with this crate; they
//! and RFC 8439's vector live in [`crate::selftest`], which `braidd` also runs.

use super::*;
use crate::wire::{InnerPacket, INNER_HEADER_LEN, OVERHEAD};

use crate::selftest::{
    INDEX, KEY, PLAIN, RFC8439_AAD, RFC8439_CIPHER, RFC8439_KEY, RFC8439_NONCE, RFC8439_PLAIN,
    RFC8439_TAG, SEALED_0,
};

/// PLAIN sealed on path 3 with counter 1 (Python `cryptography`, like SEALED_0).
const SEALED_1: [u8; 41] = [
    0x04, 0x03, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc9, 0x65, 0xb1, 0x2b,
    0xf4, 0x0c, 0x0b, 0x30, 0x0a, 0xe9, 0x14, 0xfe, 0x61, 0xe8, 0x3d, 0xa3, 0x21, 0x29, 0x39, 0xd2,
    0x14, 0xcb, 0x65, 0xaf, 0x9f, 0xf2, 0xbe, 0x29, 0x9f,
];

fn seal_plain(key: &mut SealingKey, path: u8) -> [u8; 41] {
    let mut buf = [0u8; 41];
    buf[12..25].copy_from_slice(&PLAIN);
    assert_eq!(key.seal(path, &mut buf, PLAIN.len()), Ok(41));
    buf
}

#[test]
fn rfc8439_aead_vector() {
    // RFC 8439 section 2.8.2: checks the primitive itself on this CPU's byte order.
    let aead = ChaCha20Poly1305::new(Key::from_slice(&RFC8439_KEY));
    let mut text = *RFC8439_PLAIN;
    let tag = aead
        .encrypt_in_place_detached(Nonce::from_slice(&RFC8439_NONCE), &RFC8439_AAD, &mut text)
        .unwrap();
    assert_eq!(text, RFC8439_CIPHER);
    assert_eq!(tag.as_slice(), RFC8439_TAG);
    aead.decrypt_in_place_detached(
        Nonce::from_slice(&RFC8439_NONCE),
        &RFC8439_AAD,
        &mut text,
        &tag,
    )
    .unwrap();
    assert_eq!(&text, RFC8439_PLAIN);
}

#[test]
fn nonce_layout() {
    assert_eq!(
        nonce(5, 0x0102_0304_0506_0708),
        [0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8]
    );
}

#[test]
fn seal_vectors_and_counter_increments() {
    let mut key = SealingKey::new(KEY, INDEX);
    assert_eq!(seal_plain(&mut key, 3), SEALED_0);
    assert_eq!(seal_plain(&mut key, 3), SEALED_1);
    assert_eq!(key.sent(3), 2);
    assert_eq!(key.sent(0), 0);
    assert_eq!(SEALED_0.len(), PLAIN.len() - INNER_HEADER_LEN + OVERHEAD);
}

#[test]
fn open_vectors() {
    let mut key = OpeningKey::new(KEY, INDEX);
    // Out of order within the window is fine.
    let mut p1 = SEALED_1;
    let o = key.open(&mut p1).unwrap();
    assert_eq!((o.path, o.counter, o.plaintext), (3, 1, &PLAIN[..]));
    let mut p0 = SEALED_0;
    let o = key.open(&mut p0).unwrap();
    assert_eq!((o.path, o.counter), (3, 0));
    let inner = InnerPacket::new_checked(o.plaintext).unwrap();
    assert_eq!((inner.pred(), inner.seq()), (0x112, 0x2_3344));
}

#[test]
fn replayed_packet_is_dropped() {
    let mut key = OpeningKey::new(KEY, INDEX);
    let mut p = SEALED_0;
    key.open(&mut p).unwrap();
    let mut p = SEALED_0;
    assert_eq!(
        key.open(&mut p),
        Err(OpenError::Replayed {
            path: 3,
            counter: 0
        })
    );
}

#[test]
fn every_modified_byte_is_detected_and_leaves_the_window_alone() {
    let mut key = OpeningKey::new(KEY, INDEX);
    for i in 0..SEALED_0.len() {
        for bit in [0x01u8, 0x80] {
            let mut p = SEALED_0;
            p[i] ^= bit;
            let err = key.open(&mut p).unwrap_err();
            match i {
                0 => assert!(matches!(err, OpenError::Malformed(WireError::WrongType(_)))),
                1 => assert!(matches!(
                    err,
                    OpenError::Malformed(WireError::BadPath(_)) | OpenError::Unauthentic
                )),
                2..=5 => assert!(matches!(err, OpenError::WrongSession(_))),
                _ => assert_eq!(err, OpenError::Unauthentic, "byte {i} bit {bit:#x}"),
            }
        }
    }
    // None of the failures consumed counter 0.
    let mut p = SEALED_0;
    assert!(key.open(&mut p).is_ok());
}

#[test]
fn truncated_packets_are_dropped() {
    let mut key = OpeningKey::new(KEY, INDEX);
    for len in 0..SEALED_0.len() {
        let mut p = SEALED_0;
        let err = key.open(&mut p[..len]).unwrap_err();
        if len < 28 {
            assert_eq!(
                err,
                OpenError::Malformed(WireError::Truncated { len, min: 28 })
            );
        } else {
            assert_eq!(err, OpenError::Unauthentic);
        }
    }
}

#[test]
fn wrong_key_fails() {
    let mut other = KEY;
    other[31] ^= 1;
    let mut key = OpeningKey::new(other, INDEX);
    let mut p = SEALED_0;
    assert_eq!(key.open(&mut p), Err(OpenError::Unauthentic));
}

#[test]
fn paths_have_independent_counters_and_windows() {
    let mut tx = SealingKey::new(KEY, INDEX);
    let mut rx = OpeningKey::new(KEY, INDEX);
    let mut far_ahead = Vec::new();
    for _ in 0..3000 {
        far_ahead.push(seal_plain(&mut tx, 0));
    }
    let late = seal_plain(&mut tx, 1);
    for mut p in far_ahead {
        rx.open(&mut p).unwrap();
    }
    // Path 1's first packet arrives after 3000 packets of path 0: still accepted.
    let mut p = late;
    let o = rx.open(&mut p).unwrap();
    assert_eq!((o.path, o.counter), (1, 0));
}

#[test]
fn sealing_stops_before_the_counter_limit() {
    let mut key = SealingKey::new(KEY, INDEX);
    key.counters[2] = REJECT_AFTER_MESSAGES - 1;
    let mut buf = [0u8; 44];
    assert_eq!(key.seal(2, &mut buf, 16), Ok(44));
    assert_eq!(key.seal(2, &mut buf, 16), Err(SealError::Exhausted));
    assert_eq!(key.seal(2, &mut buf, 16), Err(SealError::Exhausted));
    assert_eq!(key.sent(2), REJECT_AFTER_MESSAGES);
}

#[test]
fn seal_rejects_bad_arguments() {
    let mut key = SealingKey::new(KEY, INDEX);
    let mut buf = [0u8; 44];
    assert_eq!(
        key.seal(MAX_PATHS as u8, &mut buf, 16),
        Err(SealError::BadPath(8))
    );
    assert_eq!(key.seal(0, &mut buf, 17), Err(SealError::BufferTooSmall));
    assert_eq!(key.sent(0), 0, "a failed seal consumes no counter");
}

/// WireGuard's replay-counter self test (drivers/net/wireguard/selftest/counter.c),
/// with its window of 2048 - 64 bits, the same as ours.
#[test]
fn replay_window_wireguard_selftest() {
    let lim = REPLAY_WINDOW + 1;
    let mut w = ReplayWindow::new();
    let mut t = |n: u64, ok: bool| assert_eq!(w.commit(n), ok, "counter {n}");
    t(0, true);
    t(1, true);
    t(1, false);
    t(9, true);
    t(8, true);
    t(7, true);
    t(7, false);
    t(lim, true);
    t(lim - 1, true);
    t(lim - 1, false);
    t(lim - 2, true);
    t(2, true);
    t(2, false);
    t(lim + 16, true);
    t(3, false);
    t(lim + 16, false);
    t(lim * 4, true);
    t(lim * 4 - (lim - 1), true);
    t(10, false);
    t(lim * 4 - lim, false);
    t(lim * 4 - (lim + 1), false);
    t(lim * 4 - (lim - 2), true);
    t(lim * 4 + 1 - lim, false);
    t(0, false);
    t(REJECT_AFTER_MESSAGES, false);
    t(REJECT_AFTER_MESSAGES - 1, true);
    t(REJECT_AFTER_MESSAGES, false);
    t(REJECT_AFTER_MESSAGES - 1, false);
    t(REJECT_AFTER_MESSAGES - 2, true);
    t(REJECT_AFTER_MESSAGES + 1, false);
    t(REJECT_AFTER_MESSAGES + 2, false);
    t(REJECT_AFTER_MESSAGES - 2, false);
    t(REJECT_AFTER_MESSAGES - 3, true);
    t(0, false);

    let mut w = ReplayWindow::new();
    for i in 1..=REPLAY_WINDOW {
        assert!(w.commit(i));
    }
    assert!(w.commit(0));
    assert!(!w.commit(0));

    let mut w = ReplayWindow::new();
    for i in 2..=REPLAY_WINDOW + 1 {
        assert!(w.commit(i));
    }
    assert!(w.commit(1));
    assert!(!w.commit(0));

    let mut w = ReplayWindow::new();
    for i in (0..=REPLAY_WINDOW).rev() {
        assert!(w.commit(i));
    }

    let mut w = ReplayWindow::new();
    for i in (1..=REPLAY_WINDOW + 1).rev() {
        assert!(w.commit(i));
    }
    assert!(!w.commit(0));

    let mut w = ReplayWindow::new();
    for i in (1..=REPLAY_WINDOW).rev() {
        assert!(w.commit(i));
    }
    assert!(w.commit(REPLAY_WINDOW + 1));
    assert!(!w.commit(0));

    let mut w = ReplayWindow::new();
    for i in (1..=REPLAY_WINDOW).rev() {
        assert!(w.commit(i));
    }
    assert!(w.commit(0));
    assert!(w.commit(REPLAY_WINDOW + 1));
}

/// The bitmap agrees with an obvious model (a set of everything seen) on seeded
/// random walks that jump forward, fall back and repeat.
#[test]
fn replay_window_matches_model() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..50 {
        let mut w = ReplayWindow::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        for _ in 0..3000 {
            let r = rand();
            let n = match r % 4 {
                0 => top + r % 300,
                1 => top.saturating_sub(r % (REPLAY_WINDOW + 200)),
                2 => top + (r >> 8) % 5000,
                _ => top.saturating_sub(r % 8),
            };
            let expect = !seen.contains(&n) && n + REPLAY_WINDOW >= top;
            assert_eq!(w.check(n), expect, "check {n} top {top}");
            assert_eq!(w.commit(n), expect, "commit {n} top {top}");
            if expect {
                seen.insert(n);
                top = top.max(n);
            }
        }
    }
}
