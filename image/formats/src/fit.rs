//! U-Boot's Flattened Image Tree: a device tree blob whose nodes carry the images
//! (U-Boot doc/usage/fit/source_file_format.rst). braid writes one kernel, an
//! optional device tree and an optional ramdisk, each with a CRC-32 hash node,
//! and one configuration that names them; what `mkimage -f` would write from an
//! .its file, without needing dtc or mkimage at build time.

use vm_fdt::FdtWriter;

use crate::crc32;

/// A FIT's contents.
#[derive(Debug, Clone)]
pub struct Fit<'a> {
    /// Top-level description.
    pub description: String,
    /// Creation time: SOURCE_DATE_EPOCH.
    pub timestamp: u32,
    /// FIT architecture name: the kernel's ARCH (`mips`, `powerpc`, `arm`, `arm64`).
    pub arch: String,
    /// The kernel payload (possibly compressed).
    pub kernel: &'a [u8],
    /// `none`, `gzip` or `lzma`.
    pub compression: String,
    /// Load address.
    pub load: u32,
    /// Entry point.
    pub entry: u32,
    /// A flattened device tree for the kernel.
    pub fdt: Option<&'a [u8]>,
    /// An initrd.
    pub ramdisk: Option<&'a [u8]>,
}

/// The FIT could not be written.
#[derive(Debug, thiserror::Error)]
#[error("FIT: {0}")]
pub struct FitError(String);

/// Writes the FIT blob.
pub fn write(fit: &Fit<'_>) -> Result<Vec<u8>, FitError> {
    let e = |e: vm_fdt::Error| FitError(e.to_string());
    let mut w = FdtWriter::new().map_err(e)?;
    let root = w.begin_node("").map_err(e)?;
    w.property_string("description", &fit.description)
        .map_err(e)?;
    w.property_u32("timestamp", fit.timestamp).map_err(e)?;
    w.property_u32("#address-cells", 1).map_err(e)?;

    let images = w.begin_node("images").map_err(e)?;
    image(
        &mut w,
        "kernel-1",
        "Linux kernel",
        "kernel",
        fit.kernel,
        fit,
        Some(&fit.compression),
        true,
    )?;
    if let Some(fdt) = fit.fdt {
        image(
            &mut w,
            "fdt-1",
            "Flattened device tree",
            "flat_dt",
            fdt,
            fit,
            Some("none"),
            false,
        )?;
    }
    if let Some(rd) = fit.ramdisk {
        image(
            &mut w,
            "ramdisk-1",
            "Root file system",
            "ramdisk",
            rd,
            fit,
            Some("none"),
            false,
        )?;
    }
    w.end_node(images).map_err(e)?;

    let configs = w.begin_node("configurations").map_err(e)?;
    w.property_string("default", "config-1").map_err(e)?;
    let config = w.begin_node("config-1").map_err(e)?;
    w.property_string("description", &fit.description)
        .map_err(e)?;
    w.property_string("kernel", "kernel-1").map_err(e)?;
    if fit.fdt.is_some() {
        w.property_string("fdt", "fdt-1").map_err(e)?;
    }
    if fit.ramdisk.is_some() {
        w.property_string("ramdisk", "ramdisk-1").map_err(e)?;
    }
    w.end_node(config).map_err(e)?;
    w.end_node(configs).map_err(e)?;
    w.end_node(root).map_err(e)?;
    w.finish().map_err(e)
}

#[allow(clippy::too_many_arguments)]
fn image(
    w: &mut FdtWriter,
    node: &str,
    description: &str,
    kind: &str,
    data: &[u8],
    fit: &Fit<'_>,
    compression: Option<&str>,
    addresses: bool,
) -> Result<(), FitError> {
    let e = |e: vm_fdt::Error| FitError(e.to_string());
    let n = w.begin_node(node).map_err(e)?;
    w.property_string("description", description).map_err(e)?;
    w.property("data", data).map_err(e)?;
    w.property_string("type", kind).map_err(e)?;
    w.property_string("arch", &fit.arch).map_err(e)?;
    w.property_string("os", "linux").map_err(e)?;
    w.property_string("compression", compression.unwrap_or("none"))
        .map_err(e)?;
    if addresses {
        w.property_u32("load", fit.load).map_err(e)?;
        w.property_u32("entry", fit.entry).map_err(e)?;
    }
    let h = w.begin_node("hash-1").map_err(e)?;
    w.property_string("algo", "crc32").map_err(e)?;
    w.property_u32("value", crc32(data)).map_err(e)?;
    w.end_node(h).map_err(e)?;
    w.end_node(n).map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(kernel: &'a [u8], fdt: &'a [u8]) -> Fit<'a> {
        Fit {
            description: "braid tplink-tl-wdr4900-v1".into(),
            timestamp: 1_700_000_000,
            arch: "powerpc".into(),
            kernel,
            compression: "gzip".into(),
            load: 0,
            entry: 0,
            fdt: Some(fdt),
            ramdisk: None,
        }
    }

    #[test]
    fn is_a_device_tree_and_reproducible() {
        let (k, d) = (vec![1u8; 5000], vec![2u8; 300]);
        let blob = write(&sample(&k, &d)).unwrap();
        assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
        assert_eq!(blob, write(&sample(&k, &d)).unwrap());
        assert!(
            blob.windows(5000).any(|w| w == &k[..]),
            "kernel stored inline"
        );
    }

    /// mkimage -l and dumpimage -l read the FIT, print our images, and verify the
    /// CRC-32 hashes; dumpimage extracts the kernel byte for byte.
    #[test]
    fn u_boot_tools_accept_it() {
        let (k, d) = (b"kernel bytes".repeat(400), vec![0xd0u8; 64]);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.itb");
        std::fs::write(&f, write(&sample(&k, &d)).unwrap()).unwrap();
        for tool in ["mkimage", "dumpimage"] {
            let out = std::process::Command::new(tool)
                .arg("-l")
                .arg(&f)
                .output()
                .unwrap_or_else(|e| panic!("{tool} runs (u-boot-tools): {e}"));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{tool}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains("FIT description: braid tplink-tl-wdr4900-v1"),
                "{text}"
            );
            assert!(text.contains("Type:         Kernel Image"), "{text}");
            assert!(text.contains("Architecture: PowerPC"), "{text}");
            assert!(text.contains("Compression:  gzip compressed"), "{text}");
            assert!(text.contains("Load Address: 0x00000000"), "{text}");
            assert!(text.contains("Type:         Flat Device Tree"), "{text}");
            assert!(
                text.contains(&format!("Hash value:   {:08x}", crc32(&k))),
                "{text}"
            );
            assert!(text.contains("Default Configuration: 'config-1'"), "{text}");
        }
        let out_file = dir.path().join("kernel.out");
        let st = std::process::Command::new("dumpimage")
            .args(["-T", "flat_dt", "-p", "0", "-o"])
            .arg(&out_file)
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read(&out_file).unwrap(), k);
    }
}
