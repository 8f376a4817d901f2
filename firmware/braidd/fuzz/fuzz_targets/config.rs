//! braidd's configuration file: any text must either load or give an error that
//! names the file, never panic. braidd is a binary crate, so its config module
//! is compiled in here by path, exactly as the daemon uses it.
#![no_main]
#![allow(dead_code)]

#[path = "../../src/config.rs"]
mod config;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/etc/braid/braidd.toml");
    match config::Config::parse(file, text) {
        Ok(c) => {
            // What loads once loads the same way again.
            let again = config::Config::parse(file, text).expect("parse is deterministic");
            assert_eq!(format!("{c:?}"), format!("{again:?}"));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("/etc/braid/braidd.toml: "), "{msg}");
        }
    }
});
