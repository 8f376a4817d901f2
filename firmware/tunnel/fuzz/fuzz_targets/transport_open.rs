//! Any datagram from the network goes through `OpeningKey::open`: it must never
//! panic, and whatever it accepts must have the exact transport layout.
#![no_main]

use braid_tunnel::crypto::OpeningKey;
use braid_tunnel::wire::{TransportPacket, TAG_LEN, TRANSPORT_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TransportPacket::new_checked(data);
    let mut key = OpeningKey::new([7; 32], u32::from_be_bytes([0xde, 0xad, 0xbe, 0xef]));
    let mut buf = data.to_vec();
    if let Ok(opened) = key.open(&mut buf) {
        // Only possible if the fuzzer forged a Poly1305 tag: report it loudly.
        assert_eq!(
            opened.plaintext.len(),
            data.len() - TRANSPORT_HEADER_LEN - TAG_LEN
        );
        panic!("forged packet accepted");
    }
});
