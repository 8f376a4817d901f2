//! Sealing then opening returns the plaintext on every path; a replay and any
//! single flipped bit are refused.
#![no_main]

use braid_tunnel::crypto::{OpeningKey, SealingKey};
use braid_tunnel::wire::{INNER_HEADER_LEN, OVERHEAD, TRANSPORT_HEADER_LEN};
use braid_tunnel::MAX_PATHS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, u16, Vec<u8>)| {
    let (path, flip, plain) = input;
    let path = path % MAX_PATHS as u8;
    let mut tx = SealingKey::new([9; 32], 42);
    let mut rx = OpeningKey::new([9; 32], 42);
    let mut buf = vec![0u8; plain.len() + OVERHEAD - INNER_HEADER_LEN];
    buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + plain.len()].copy_from_slice(&plain);
    let len = tx.seal(path, &mut buf, plain.len()).expect("seal");
    assert_eq!(len, buf.len());
    let sealed = buf.clone();

    let mut flipped = sealed.clone();
    let bit = usize::from(flip) % (flipped.len() * 8);
    flipped[bit / 8] ^= 1 << (bit % 8);
    assert!(rx.open(&mut flipped).is_err(), "flipped bit {bit} accepted");

    let opened = rx.open(&mut buf).expect("open");
    assert_eq!(opened.plaintext, &plain[..]);
    assert_eq!(opened.path, path);
    let mut again = sealed;
    assert!(rx.open(&mut again).is_err(), "replay accepted");
});
