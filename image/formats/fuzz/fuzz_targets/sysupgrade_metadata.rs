//! Sysupgrade images from untrusted sources: reading the fwtool trailer never
//! panics, and an image braid writes always reads back.
#![no_main]

use braid_formats::sysupgrade;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sysupgrade::read_metadata(data);
    let mut image = data.to_vec();
    let json = br#"{"metadata_version":"1.1","compat_version":"1.0","supported_devices":["x"],"version":{"dist":"braid","version":"0","revision":"r","target":"t","board":"b"}}"#;
    sysupgrade::append_metadata(&mut image, json).expect("append");
    let (meta, len) = sysupgrade::read_metadata(&image).expect("read back");
    assert_eq!(len, data.len());
    assert_eq!(meta.supported_devices, ["x"]);
});
