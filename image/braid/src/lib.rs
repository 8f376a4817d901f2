//! The library behind the `braid` command: everything that turns data files
//! (targets/, later board/) into build actions, kept out of `main.rs` so that it can
//! be tested without spawning the CLI.
//!
//! * [`targets`]: loads and validates `targets/*.toml`, one file per CPU target.
//! * [`toolchain`]: finds the host tools a target needs (zig, qemu-user, rust-src)
//!   and composes the environment that makes cargo cross-compile for it.
//! * [`elf`]: checks that a built binary is static and for the right CPU.
//! * [`workspace`]: where the source tree, the cache and the output directory are.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod elf;
pub mod targets;
pub mod toolchain;
pub mod workspace;
