//! braidd as PID 1: the whole userland of the router.
//!
//! The kernel starts `/init` (initramfs) or `/sbin/init` (flash root), both braidd.
//! It mounts the kernel file systems, prints a banner on the console that says
//! what runs where and whether MPTCP is usable, then runs the daemon. PID 1 must
//! never exit (the kernel panics), so every path ends in the daemon loop, a power
//! off or a reboot.
//!
//! The kernel command line can ask for `braid.poweroff`: power off right after the
//! banner (or `braid.poweroff=reboot`: restart, for machines such as QEMU's ppce500
//! that have no power-off; with QEMU's -no-reboot that ends QEMU too). Boot tests
//! and benchmarks use it to get a clean end.

use std::io::Write;
use std::time::Duration;

/// Kernel command-line word that asks braidd to power off after the banner.
pub const POWEROFF_ARG: &str = "braid.poweroff";

/// Protocol number of MPTCP (include/uapi/linux/in.h, IPPROTO_MPTCP).
const IPPROTO_MPTCP: i32 = 262;

/// Runs the PID 1 sequence; never returns.
pub fn main(version: &str) -> ! {
    mount_kernel_filesystems();
    let banner = Banner::collect(version);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.render().as_bytes());
    let _ = out.flush();
    drop(out);
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    match requested_end(&cmdline) {
        Some(End::PowerOff) => {
            println!("braidd: powering off ({POWEROFF_ARG} on the kernel command line)");
            power_off();
        }
        Some(End::Reboot) => {
            println!("braidd: powering off by restarting ({POWEROFF_ARG}=reboot on the kernel command line)");
            reboot();
        }
        None => {}
    }
    let code = crate::run(std::path::Path::new(crate::DEFAULT_CONFIG));
    log::error!("the daemon stopped ({code:?}); rebooting in 5 s");
    std::thread::sleep(Duration::from_secs(5));
    reboot();
}

/// How the command line asks braidd to end after the banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `braid.poweroff`: power off.
    PowerOff,
    /// `braid.poweroff=reboot`: restart (the machine cannot power off).
    Reboot,
}

/// Finds [`POWEROFF_ARG`] (as a whole word, or `=reboot`) on the command line.
pub fn requested_end(cmdline: &str) -> Option<End> {
    cmdline
        .split_whitespace()
        .find_map(|w| match w.strip_prefix(POWEROFF_ARG)? {
            "" => Some(End::PowerOff),
            "=reboot" => Some(End::Reboot),
            _ => None,
        })
}

fn mount_kernel_filesystems() {
    use nix::mount::{mount, MsFlags};
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mounts: [(&str, &str, MsFlags, Option<&str>); 5] = [
        ("proc", "/proc", nodev, None),
        ("sysfs", "/sys", nodev, None),
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755")),
        (
            "tmpfs",
            "/tmp",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        (
            "tmpfs",
            "/run",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
    ];
    for (fstype, target, flags, data) in mounts {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(Some(fstype), target, Some(fstype), flags, data) {
            // EBUSY: already mounted (devtmpfs with DEVTMPFS_MOUNT on a flash root).
            if e != nix::errno::Errno::EBUSY {
                log::warn!("cannot mount {fstype} on {target}: {e}");
            }
        }
    }
}

/// What the boot banner reports.
#[derive(Debug)]
pub struct Banner {
    version: String,
    board: String,
    kernel: String,
    mptcp_enabled: String,
    mptcp_socket: Result<(), String>,
    interfaces: Vec<String>,
    uptime: Option<f64>,
}

impl Banner {
    fn collect(version: &str) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        interfaces.sort();
        Self {
            version: version.to_string(),
            board: read("/etc/braid/board").unwrap_or_else(|_| "unknown board".into()),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|e| format!("? ({e})")),
            mptcp_enabled: read("/proc/sys/net/mptcp/enabled")
                .unwrap_or_else(|e| format!("unavailable ({e})")),
            mptcp_socket: mptcp_socket(),
            interfaces,
            uptime: read("/proc/uptime")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok()),
        }
    }

    /// The banner text, one fact per line, in a fixed format tests can read.
    fn render(&self) -> String {
        let uptime = self.uptime.map_or("?".to_string(), |u| format!("{u:.2}"));
        format!(
            "braidd {} on {}\n\
             braidd: kernel {}\n\
             braidd: net.mptcp.enabled = {}\n\
             braidd: MPTCP socket: {}\n\
             braidd: interfaces: {}\n\
             braidd: ready {uptime} s after kernel start\n",
            self.version,
            self.board,
            self.kernel,
            self.mptcp_enabled,
            match &self.mptcp_socket {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAILED ({e})"),
            },
            self.interfaces.join(" "),
        )
    }
}

/// Opens (and closes) an MPTCP socket: proves the kernel speaks MPTCP.
fn mptcp_socket() -> Result<(), String> {
    socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::from(IPPROTO_MPTCP)),
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

fn power_off() -> ! {
    use nix::sys::reboot::{reboot as sys_reboot, RebootMode};
    nix::unistd::sync();
    let e = sys_reboot(RebootMode::RB_POWER_OFF);
    // Machines without a power-off method fall back to a restart, which QEMU's
    // -no-reboot turns into an exit.
    log::warn!("power off failed ({e:?}); restarting instead");
    let _ = sys_reboot(RebootMode::RB_AUTOBOOT);
    halt_forever()
}

fn reboot() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    halt_forever()
}

fn halt_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poweroff_is_a_whole_word() {
        assert_eq!(
            requested_end("console=ttyS0 braid.poweroff panic=1"),
            Some(End::PowerOff)
        );
        assert_eq!(requested_end("braid.poweroff"), Some(End::PowerOff));
        assert_eq!(requested_end("braid.poweroff=reboot"), Some(End::Reboot));
        assert_eq!(requested_end("console=ttyS0 braid.poweroffx"), None);
        assert_eq!(requested_end("braid.poweroff=now"), None);
        assert_eq!(requested_end(""), None);
    }

    #[test]
    fn banner_format() {
        let b = Banner {
            version: "0.1.0 (mipsel-unknown-linux-musl, release)".into(),
            board: "qemu-malta-le".into(),
            kernel: "6.1.192".into(),
            mptcp_enabled: "1".into(),
            mptcp_socket: Ok(()),
            interfaces: vec!["eth0".into(), "lo".into()],
            uptime: Some(0.523),
        };
        assert_eq!(
            b.render(),
            "braidd 0.1.0 (mipsel-unknown-linux-musl, release) on qemu-malta-le\n\
             braidd: kernel 6.1.192\n\
             braidd: net.mptcp.enabled = 1\n\
             braidd: MPTCP socket: ok\n\
             braidd: interfaces: eth0 lo\n\
             braidd: ready 0.52 s after kernel start\n"
        );
    }

    /// The host kernel (Linux with MPTCP, as on every machine braid is tested on)
    /// accepts the same socket call braidd makes at boot.
    #[test]
    fn mptcp_socket_opens_on_the_host() {
        assert_eq!(mptcp_socket(), Ok(()));
    }
}
