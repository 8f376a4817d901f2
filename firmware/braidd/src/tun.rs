//! The TUN device: IP packets between the kernel's routing and the tunnel.
//!
//! Opening one takes the `TUNSETIFF` ioctl, which has no safe wrapper, and tokio
//! registers raw descriptors only through an `unsafe` call: this module is the
//! only place braidd uses `unsafe`, for those two calls on values it owns.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

nix::ioctl_write_ptr_bad!(tunsetiff, libc::TUNSETIFF, libc::ifreq);

/// An open TUN device (no packet information header: every read is one IP packet).
pub struct Tun {
    fd: AsyncFd<File>,
    /// Its interface name.
    pub name: String,
}

impl Tun {
    /// Creates (or attaches to) TUN device `name`. Needs CAP_NET_ADMIN.
    pub fn open(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name `{name}`"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("/dev/net/tun: {e} (is CONFIG_TUN built in, and are we root?)"),
                )
            })?;
        let mut req: libc::ifreq = unsafe_zeroed_ifreq();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        use std::os::fd::AsRawFd;
        // SAFETY: `req` is a valid, initialised ifreq that lives across the call,
        // and the descriptor is an open /dev/net/tun.
        unsafe { tunsetiff(file.as_raw_fd(), &req) }
            .map_err(|e| io::Error::other(format!("TUNSETIFF {name}: {e}")))?;
        // SAFETY: the File owns its descriptor, which stays open and unchanged for
        // as long as the AsyncFd (its only owner) lives.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self {
            fd,
            name: name.to_string(),
        })
    }

    /// Reads one packet.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| f.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes one packet; drops it if the device queue is full (the kernel would
    /// drop it too).
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        match self.fd.get_ref().write(packet) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn unsafe_zeroed_ifreq() -> libc::ifreq {
    // SAFETY: ifreq is a plain C struct (arrays and a union of integers and
    // pointers) for which all-zero bytes is a valid value.
    unsafe { std::mem::zeroed() }
}
