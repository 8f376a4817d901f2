//! `braid run --board X`: boots a built board in QEMU with its serial console on
//! the terminal, N emulated WAN NICs and one LAN NIC.
//!
//! Each WAN is its own QEMU user-mode network (10.0.<2+i>.0/24, so each has its
//! own gateway, as real uplinks do); the LAN is an isolated user-mode network
//! (192.168.1.0/24, `restrict=on`) until braidd serves it. The machine never
//! reboots (`-no-reboot`): a reboot, a power-off or a panic (`panic=1`) ends QEMU.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

use crate::board::{Board, PowerOff, QemuKernel};
use crate::pipeline::names;
use crate::toolchain::{which, MissingTool};

/// How to boot.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Emulated WAN NICs.
    pub wans: u8,
    /// Append `braid.poweroff`: braidd powers off after its banner.
    pub poweroff: bool,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
}

/// MAC address of WAN `i` (locally administered, QEMU's 52:54:00 prefix).
pub fn wan_mac(i: u8) -> String {
    format!("52:54:00:b0:00:{:02x}", 0x10 + i)
}

/// MAC address of the LAN NIC.
pub const LAN_MAC: &str = "52:54:00:b0:00:01";

/// The QEMU command line for `board`, whose images are in `dir`.
pub fn command(board: &Board, dir: &Path, opts: &RunOptions) -> Result<Command> {
    let q = board.qemu().with_context(|| {
        format!(
            "{} is a real board, not a QEMU machine: flash it instead",
            board.name
        )
    })?;
    let qemu = which(&q.system).ok_or_else(|| MissingTool {
        tool: q.system.clone(),
        looked: "looked on PATH".into(),
        role: "emulates this board",
        package: format!("the Debian package {}", q.package),
    })?;
    let kernel = match q.kernel {
        QemuKernel::Vmlinux => dir.join(names::initramfs_elf(&board.name)),
        QemuKernel::Image | QemuKernel::Artifact => dir.join(names::initramfs(&board.name)),
    };
    if !kernel.is_file() {
        bail!(
            "{} is missing: run `braid build --board {}` first",
            kernel.display(),
            board.name
        );
    }
    let mut cmdline = vec![board.kernel.cmdline.clone(), "panic=1".into()];
    if opts.poweroff {
        cmdline.push(match q.poweroff {
            PowerOff::PowerOff => crate::pipeline::POWEROFF_ARG.to_string(),
            PowerOff::Reboot => format!("{}=reboot", crate::pipeline::POWEROFF_ARG),
        });
    }
    cmdline.extend(opts.append.iter().cloned());

    let mut cmd = Command::new(qemu);
    cmd.arg("-M").arg(&q.machine);
    if let Some(cpu) = &q.cpu {
        cmd.arg("-cpu").arg(cpu);
    }
    cmd.arg("-m").arg(format!("{}M", q.memory >> 20));
    // No display, and no VGA card either: Malta adds a Cirrus card by default,
    // whose option ROM (vgabios-cirrus.bin, Debian's seabios package) a
    // machine installed without recommended packages lacks, and QEMU then
    // refuses to start. The console is the serial port.
    cmd.args(["-nographic", "-vga", "none", "-no-reboot"]);
    cmd.arg("-kernel").arg(&kernel);
    cmd.arg("-append").arg(cmdline.join(" "));
    for i in 0..opts.wans {
        cmd.arg("-netdev")
            .arg(format!("user,id=wan{i},net=10.0.{}.0/24", 2 + u16::from(i)));
        cmd.arg("-device")
            .arg(format!("{},netdev=wan{i},mac={}", q.nic, wan_mac(i)));
    }
    cmd.arg("-netdev")
        .arg("user,id=lan,net=192.168.1.0/24,restrict=on");
    cmd.arg("-device")
        .arg(format!("{},netdev=lan,mac={LAN_MAC}", q.nic));
    cmd.args(&q.args);
    Ok(cmd)
}
