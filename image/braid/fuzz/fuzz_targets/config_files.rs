//! Target files, board files and kernel config fragments are parsed with errors,
//! never panics, whatever their bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = braid::targets::parse(Path::new("targets/fuzz.toml"), text);
    let _ = braid::board::parse_file(Path::new("board/fuzz.toml"), text);
    let _ = braid::kconfig::parse_fragment(Path::new("fuzz.config"), text);
    for line in text.lines() {
        let _ = braid::size::parse(line);
    }
});
