//! The board file as written: every field optional, unknown fields rejected.
//!
//! Each file of an inheritance chain is parsed into this struct on its own, so an
//! unknown or mistyped field is reported with that file's name and line. The chain
//! is then merged (child over parent, table by table; arrays replace) and parsed
//! again, and [`super::validate`] turns the result into a [`super::Board`].

use serde::Deserialize;

use crate::size::Size;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBoard {
    /// Parent file, relative to board/, without `.toml` (e.g. `family/ath79`).
    pub inherit: Option<String>,
    /// A family file that is not a board by itself.
    #[serde(rename = "abstract")]
    pub is_abstract: Option<bool>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub target: Option<String>,
    pub compatible: Option<Vec<String>>,
    pub verified_on_hardware: Option<bool>,
    pub ram: Option<Size>,
    pub images: Option<Vec<String>>,
    pub kernel: Option<RawKernel>,
    pub flash: Option<RawFlash>,
    pub console: Option<RawConsole>,
    pub qemu: Option<RawQemu>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKernel {
    pub base: Option<String>,
    pub fragments: Option<Vec<String>>,
    pub config: Option<Vec<String>>,
    pub artifact: Option<String>,
    pub format: Option<String>,
    pub compression: Option<String>,
    pub load_addr: Option<Size>,
    pub entry: Option<RawEntry>,
    pub cmdline: Option<String>,
    pub dts: Option<String>,
    pub dtb: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawEntry {
    Addr(u64),
    Symbol(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlash {
    pub kind: Option<String>,
    pub size: Option<Size>,
    pub erase_block: Option<Size>,
    pub kernel_partition: Option<String>,
    pub rootfs_partition: Option<String>,
    pub partitions: Option<Vec<RawPartition>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartition {
    pub name: String,
    pub offset: Size,
    pub size: Size,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    pub device: Option<String>,
    pub baud: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQemu {
    pub system: Option<String>,
    pub package: Option<String>,
    pub machine: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<Size>,
    pub nic: Option<String>,
    pub kernel: Option<String>,
    pub poweroff: Option<String>,
    pub args: Option<Vec<String>>,
}
