//! Decrypted bytes are still the peer's: the inner header view and the control
//! decoder must never panic, and a decoded control message re-encodes to a value
//! that decodes back to itself.
#![no_main]

use braid_tunnel::control::{Control, MAX_ENCODED_LEN};
use braid_tunnel::wire::{InnerPacket, InnerRepr, INNER_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = InnerPacket::new_checked(data) {
        let repr = InnerRepr::parse(&p);
        let mut out = vec![0u8; data.len()];
        repr.emit(&mut out).expect("emit parsed header");
        assert_eq!(out[..INNER_HEADER_LEN], data[..INNER_HEADER_LEN]);
    }
    if let Ok(msg) = Control::decode(data) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let enc = msg.encode(&mut buf).expect("re-encode within bound");
        assert_eq!(Control::decode(enc).expect("decode re-encoded"), msg);
    }
});
