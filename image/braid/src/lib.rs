//! The library behind the `braid` command: everything that turns data files
//! (targets/, later board/) into build actions, kept out of `main.rs` so that it can
//! be tested without spawning the CLI.
//!
//! * [`targets`]: loads and validates `targets/*.toml`, one file per CPU target.
//! * [`toolchain`]: finds the host tools a target needs (zig, qemu-user, rust-src)
//!   and composes the environment that makes cargo cross-compile for it.
//! * [`board`]: loads and validates `board/*.toml`, boards as data with inheritance.
//! * [`kconfig`]: config fragments, the check that Kconfig kept every requested
//!   symbol, and the reader that explains why it dropped one.
//! * [`size`]: sizes and addresses as written in data files.
//! * [`elf`]: checks that a built binary is static and for the right CPU.
//! * [`workspace`]: where the source tree, the cache and the output directory are.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod board;
pub mod daemon;
pub mod elf;
pub mod epoch;
pub mod images;
pub mod kconfig;
pub mod kernel;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod qemu;
pub mod rootfs;
pub mod size;
pub mod targets;
pub mod toolchain;
pub mod workspace;
