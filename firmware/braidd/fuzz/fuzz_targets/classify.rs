//! Packets from the LAN are classified before they enter the tunnel: any bytes
//! must give a class (and a destination only for a well-formed IP header),
//! never a panic. The classifier is compiled in by path, as braidd uses it.
#![no_main]
#![allow(dead_code)]

#[path = "../../src/config.rs"]
mod config;
#[path = "../../src/classify.rs"]
mod classify;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let classes = config::Classes {
        redundant_ports: vec![5060, 3478],
        interactive_ports: vec![53, 123],
        interactive_max_size: 200,
    };
    let _ = classify::classify(data, &classes);
    if classify::destination(data).is_some() {
        assert!(data.len() >= 20, "a destination from a truncated header");
        assert!(matches!(data[0] >> 4, 4 | 6));
    }
});
