//! The raw Linux calls linkem needs and nix does not wrap: AF_PACKET sockets
//! bound to one interface (with the virtio-net header, promiscuous membership,
//! no echo of our own transmissions), batched receive and send with
//! recvmmsg/sendmmsg, the interface flag and MTU ioctls, and real-time
//! scheduling of the calling thread. This is the only
//! module with `unsafe`; everything above it sees safe types.
//!
//! Why the virtio-net header (PACKET_VNET_HDR): a frame sent by a process in
//! the peer namespace through a veth usually still awaits its TCP/UDP checksum
//! (CHECKSUM_PARTIAL: the veth offloads it). A packet socket reads such a frame
//! with the checksum field unfinished; sent out as-is it would be dropped by the
//! receiver as corrupt. The header carries "checksum needed at offset X" in and
//! out, so the kernel finishes or trusts the checksum exactly as it would have,
//! at no cost to linkem. It also flags GSO super-frames, which linkem drops.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, ClockId};

use crate::model::Frame;
use crate::units::Nanos;

/// Turns on kernel receive stamps (SO_TIMESTAMPNS) on a socket, for
/// [`recv_stamped`].
pub fn enable_rx_stamps(sock: &impl AsFd) -> io::Result<()> {
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)
}

/// Reads one datagram into `buf`: its length and when it arrived on [`now`]'s
/// clock, by [`stamp_to_monotonic`]: a reader that was not scheduled at once
/// does not count its own lateness.
pub fn recv_stamped(
    sock: &impl AsRawFd,
    buf: &mut [u8],
    offset: i64,
) -> io::Result<(usize, Nanos)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )?;
    let read = now();
    let stamp = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
            _ => None,
        })
    });
    let real = stamp.and_then(|ts| u64::try_from(ts.tv_sec() * 1_000_000_000 + ts.tv_nsec()).ok());
    Ok((msg.bytes, stamp_to_monotonic(real, offset, read)))
}

/// Longest a kernel receive stamp may lie before the read: older means the
/// real-time clock was stepped (a frame cannot wait that long unread).
pub const MAX_STAMP_AGE: Nanos = 1_000_000_000;

/// When a frame or datagram arrived on [`now`]'s clock: its kernel receive
/// stamp (real time in ns, converted with `offset`, see [`realtime_offset`])
/// if it has one, so that a late read does not delay it; else `read`, when it
/// was read. Never after `read`, nor older than [`MAX_STAMP_AGE`].
pub fn stamp_to_monotonic(stamp: Option<u64>, offset: i64, read: Nanos) -> Nanos {
    let Some(stamp) = stamp else {
        return read;
    };
    let mono = u64::try_from(stamp as i64 - offset).unwrap_or(0);
    mono.clamp(read.saturating_sub(MAX_STAMP_AGE), read)
}

/// Now on CLOCK_MONOTONIC, in ns (shared by every network namespace, so test
/// tools can timestamp packets on the same clock).
pub fn now() -> Nanos {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap_or(TimeSpec::new(0, 0));
    (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC now, in ns: converts the kernel's
/// receive stamps (SO_TIMESTAMPNS, real time) to [`now`]'s clock. Read
/// between two monotonic reads, so the error is half a clock read.
pub fn realtime_offset() -> i64 {
    let m1 = now();
    let r = clock_gettime(ClockId::CLOCK_REALTIME).unwrap_or(TimeSpec::new(0, 0));
    let m2 = now();
    let real = r.tv_sec() * 1_000_000_000 + r.tv_nsec();
    real - (m1 / 2 + m2 / 2) as i64
}

/// Moves the calling thread to SCHED_FIFO at `priority` (1-99).
pub fn set_fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: sched_setscheduler only reads `param`; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bytes of `struct virtio_net_hdr` in front of every frame (include/uapi/linux/virtio_net.h).
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: meaningful on receive only, cleared before sending.
const VNET_F_DATA_VALID: u8 = 2;
/// Ethernet header: two MACs and the EtherType (IEEE 802.3).
pub const ETH_HLEN: usize = 14;
/// An 802.1Q tag, which the kernel allows on top of the MTU for raw sends.
pub const VLAN_HLEN: usize = 4;
/// Most frames one recvmmsg/sendmmsg call moves.
pub const MAX_BATCH: usize = 64;

/// Room for one SCM_TIMESTAMPNS control message (CMSG_SPACE of a timespec:
/// 32 bytes on 64-bit Linux), in u64s for its alignment.
const CMSG_WORDS: usize = 8;

/// One frame buffer: the virtio-net header, then the Ethernet frame.
pub struct Packet {
    buf: Box<[u8]>,
    len: usize,
    truncated: bool,
    /// When the kernel took the frame in (CLOCK_REALTIME, ns), if it said.
    stamp: Option<u64>,
}

impl Packet {
    /// An empty buffer that holds frames of up to `max_frame` bytes.
    pub fn with_capacity(max_frame: usize) -> Self {
        Packet {
            buf: vec![0; VNET_HDR_LEN + max_frame].into_boxed_slice(),
            len: 0,
            truncated: false,
            stamp: None,
        }
    }

    /// When the kernel received the frame (SO_TIMESTAMPNS: CLOCK_REALTIME, in
    /// ns), if the socket delivered a stamp: that is the frame's arrival on
    /// the wire, however late linkem read it.
    pub fn kernel_stamp(&self) -> Option<u64> {
        self.stamp
    }

    /// The Ethernet frame (its first bytes only, when truncated).
    pub fn frame(&self) -> &[u8] {
        &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + self.len.min(self.room())]
    }

    fn room(&self) -> usize {
        self.buf.len() - VNET_HDR_LEN
    }

    /// Whether the frame was longer than the buffer (and `len` is its real length).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The frame's length as received (also when truncated).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the kernel marked it as a GSO super-frame (TSO/UFO/GSO at the sender).
    pub fn is_gso(&self) -> bool {
        self.buf[1] != 0
    }
}

impl Frame for Packet {
    fn wire_len(&self) -> usize {
        self.len
    }
}

/// An AF_PACKET socket bound to one interface, set up for bridging.
pub struct PacketSocket {
    fd: OwnedFd,
    /// The interface name.
    pub ifname: String,
    /// The interface MTU when the socket was opened.
    pub mtu: usize,
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn last_err(what: &str, ifname: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{ifname}: {what}: {e}"))
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points at a live T and the length passed is its size; the
    // kernel copies it before returning.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The SCM_TIMESTAMPNS stamp in a received message's control data, in ns.
fn timestamp_ns(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by recvmmsg: msg_control/msg_controllen describe
    // a live buffer holding complete control messages (MSG_CTRUNC drops the
    // ones that do not fit), which is what the CMSG_* walkers expect.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside the buffer.
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET
            && h.cmsg_type == libc::SCM_TIMESTAMPNS
            && h.cmsg_len as usize >= std::mem::size_of::<libc::cmsghdr>() + 16
        {
            // SAFETY: the length check above: the data holds a timespec,
            // possibly unaligned.
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            let ns =
                u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?;
            return (ns != 0).then_some(ns);
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    None
}

/// A zeroed `ifreq` naming `ifname`.
fn ifreq(ifname: &str) -> libc::ifreq {
    // SAFETY: ifreq is a plain C struct (name array and a union of integers and
    // arrays) for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    req
}

fn ioctl(fd: &OwnedFd, req: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: the SIOC[GS]IF* requests used here read and write only within the
    // ifreq, which outlives the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, ifr as *mut libc::ifreq) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl PacketSocket {
    /// Opens a nonblocking packet socket on `ifname` (which must exist; the
    /// caller checked and named it), brings the interface up if it is down,
    /// makes it promiscuous for as long as the socket lives, and asks for the
    /// virtio-net header on every frame.
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Self> {
        // Protocol 0 at creation: the socket receives nothing until it is bound,
        // so no frame of another interface slips in before bind.
        // SAFETY: plain syscall with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(last_err("socket(AF_PACKET)", ifname));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
            .map_err(|e| io::Error::new(e.kind(), format!("{ifname}: PACKET_VNET_HDR: {e}")))?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one).map_err(|e| {
            io::Error::new(e.kind(), format!("{ifname}: PACKET_IGNORE_OUTGOING: {e}"))
        })?;
        // Kernel receive stamps: a frame's arrival time must not depend on
        // when linkem gets to read it. Not fatal: without them linkem stamps
        // frames when it reads them, as before.
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one);
        // veth has no qdisc; skipping the (noqueue) qdisc layer saves work.
        // Not fatal: older kernels lack it.
        let _ = setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one);
        // Big buffers absorb bursts (2x overload on several paths) between two
        // loop iterations; FORCE needs CAP_NET_ADMIN, the plain form is capped
        // by net.core.[rw]mem_max.
        let size: libc::c_int = 8 << 20;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
        }
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &size).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
        }

        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(last_err("bind", ifname));
        }

        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| io::Error::new(e.kind(), format!("{ifname}: promiscuous mode: {e}")))?;

        let mut req = ifreq(ifname);
        ioctl(&fd, libc::SIOCGIFFLAGS, &mut req)
            .map_err(|e| last_ioctl(e, "SIOCGIFFLAGS", ifname))?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        if flags & libc::IFF_UP as libc::c_short == 0 {
            req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
            ioctl(&fd, libc::SIOCSIFFLAGS, &mut req)
                .map_err(|e| last_ioctl(e, "set up", ifname))?;
        }
        let mut req = ifreq(ifname);
        ioctl(&fd, libc::SIOCGIFMTU, &mut req).map_err(|e| last_ioctl(e, "SIOCGIFMTU", ifname))?;
        // SAFETY: SIOCGIFMTU filled the mtu member of the union.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        Ok(PacketSocket {
            fd,
            ifname: ifname.to_owned(),
            mtu: usize::try_from(mtu).unwrap_or(1500),
        })
    }

    /// Receives up to `pkts.len()` (at most [`MAX_BATCH`]) frames into `pkts`
    /// without blocking; returns how many were filled (0 when none is waiting).
    pub fn recv_batch(&self, pkts: &mut [Packet]) -> io::Result<usize> {
        let n = pkts.len().min(MAX_BATCH);
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid
        // (null pointers, zero lengths) and every used entry is filled below.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut cmsgs = [[0u64; CMSG_WORDS]; MAX_BATCH];
        for i in 0..n {
            iovs[i].iov_base = pkts[i].buf.as_mut_ptr().cast();
            iovs[i].iov_len = pkts[i].buf.len();
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_control = cmsgs[i].as_mut_ptr().cast();
            hdrs[i].msg_hdr.msg_controllen = std::mem::size_of_val(&cmsgs[i]) as _;
        }
        // SAFETY: the first `n` headers point at `n` iovecs that point at
        // buffers of the stated lengths, and at control buffers of the stated
        // lengths, all alive and exclusively borrowed for the call; MSG_TRUNC
        // makes the kernel report real lengths.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let got = r as usize;
        for (p, h) in pkts.iter_mut().zip(&hdrs).take(got) {
            let total = (h.msg_len as usize).saturating_sub(VNET_HDR_LEN);
            p.len = total;
            p.truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || total > p.room();
            p.stamp = timestamp_ns(&h.msg_hdr);
        }
        Ok(got)
    }

    /// Sends `pkts` (at most [`MAX_BATCH`]) out of the interface, each with its
    /// virtio-net header; returns how many the kernel took, or the error of
    /// the first one it refused when it took none.
    pub fn send_batch(&self, pkts: &mut [Packet]) -> io::Result<usize> {
        let n = pkts.len().min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: as in recv_batch.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as in recv_batch.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            let p = &mut pkts[i];
            p.buf[0] &= !VNET_F_DATA_VALID;
            iovs[i].iov_base = p.buf.as_mut_ptr().cast();
            iovs[i].iov_len = VNET_HDR_LEN + p.len.min(p.room());
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `n` headers point at iovecs covering initialised
        // bytes of live buffers; the kernel only reads them.
        let r = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }
}

fn last_ioctl(e: io::Error, what: &str, ifname: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{ifname}: {what}: {e}"))
}

/// The index of interface `name`, or `None` if it does not exist here.
pub fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Names of the interfaces in this network namespace, for error messages.
pub fn if_names() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            let mut v: Vec<String> = d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_arrival_within_bounds() {
        let offset = 1_700_000_000_000_000_000;
        let read = 5_000_000_000;
        // Read 3 ms after the kernel stamped it: the arrival is the stamp.
        let stamp = (offset + read as i64 - 3_000_000) as u64;
        assert_eq!(
            stamp_to_monotonic(Some(stamp), offset, read),
            read - 3_000_000
        );
        // No stamp: when it was read.
        assert_eq!(stamp_to_monotonic(None, offset, read), read);
        // A stamp "after" the read (clock stepped forward): the read.
        assert_eq!(
            stamp_to_monotonic(Some(stamp + 10_000_000), offset, read),
            read
        );
        // A stamp from far before (clock stepped back): bounded.
        assert_eq!(
            stamp_to_monotonic(Some(stamp - 10_000_000_000), offset, read),
            read - MAX_STAMP_AGE
        );
    }
}
