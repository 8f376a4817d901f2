//! uImage headers from untrusted images: parsing never panics, and whatever parses
//! re-encodes to the same bytes.
#![no_main]

use braid_formats::uimage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, payload)) = uimage::parse(data) {
        let again = uimage::write(&header, payload).expect("a parsed header writes");
        assert_eq!(&again[..], &data[..again.len()]);
    }
});
