//! The pieces both modes share: a monotonic clock for the core, randomness from
//! the kernel, UDP sockets, and the task that feeds datagrams and TUN packets to
//! the single-threaded state machine.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use braid_tunnel::time::Instant;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::tun::Tun;

/// Largest datagram or packet read.
pub const BUF: usize = 2048;

/// Packets the kernel keeps on the TUN device for braidd to read (its
/// transmit queue; the kernel's default for TUN is 500). A LAN sender's
/// packets reach it in bursts of up to a window while braidd is inside a
/// write to the same device: the write that hands the sender an ack runs
/// the sender's TCP, and the forwarding of what it sends, before it returns.
/// After a hole is filled one ack covers hundreds of segments, and cubic
/// without fq sends the window it frees at once. Measured on S4 (cubic,
/// 2026-12-03, three 20 s runs): at 500, 889 packets dropped there, the
/// sender took them for congestion and cut its window two or three times in
/// a row; at 4096, none. Packets wait here only while braidd is behind.
pub const TUN_QUEUE_LEN: u32 = 4096;
/// MTU of the TUN device when the tunnel runs over IPv4: 1500 minus the
/// tunnel's overhead (37) and an IPv4 UDP header (28), so a full-size packet
/// fills a 1500-byte WAN exactly: 1435.
pub const TUN_MTU_V4: u32 = (1500 - braid_tunnel::wire::OVERHEAD - 28) as u32;
/// The same over IPv6, whose header is 20 bytes longer: 1415.
pub const TUN_MTU_V6: u32 = TUN_MTU_V4 - 20;

/// The TUN MTU for a tunnel whose outer packets are IPv6 or not.
pub fn tun_mtu(outer_v6: bool) -> u32 {
    if outer_v6 {
        TUN_MTU_V6
    } else {
        TUN_MTU_V4
    }
}

/// The MTU TCP/IPv4 gets into the tunnel: [`braid_tunnel::compress`] takes at
/// least 21 bytes off every such segment, so a segment this long still fills
/// the WAN packet exactly (1456 over IPv4, 1436 over IPv6). The TUN device
/// has this MTU; routes for other traffic carry [`tun_mtu`].
pub fn tcp_mtu(outer_v6: bool) -> u32 {
    tun_mtu(outer_v6) + braid_tunnel::compress::MIN_GAIN as u32
}

/// The core's clock: microseconds since braidd started.
#[derive(Clone, Copy)]
pub struct Clock(StdInstant);

impl Clock {
    /// Starts the clock.
    pub fn start() -> Self {
        Self(StdInstant::now())
    }
    /// Now, for the core.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
    /// A core instant as a tokio deadline.
    pub fn deadline(&self, t: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.0 + std::time::Duration::from_micros(t.as_micros()))
    }
}

/// 32 bytes from the kernel's random source.
pub fn random32() -> io::Result<[u8; 32]> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// The wall clock as (seconds, nanoseconds) since 1970.
pub fn wall_clock() -> (u64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// What the reader tasks hand to the main loop.
pub enum Input {
    /// A datagram from `from`, which reached the socket at `arrived`.
    Datagram {
        from: SocketAddr,
        data: Vec<u8>,
        arrived: Instant,
    },
    /// An IP packet from the TUN device.
    Packet(Vec<u8>),
}

/// Longer than this between a datagram's arrival and its turn in the main
/// loop counts as late in [`RxLag`].
pub const LATE: Duration = Duration::from_millis(5);

/// How long datagrams waited between reaching the socket and the main loop:
/// braidd's own latency, which the core would read as WAN queueing if it
/// timed datagrams when it got them (it is given the arrival instead). Shown
/// on the control socket, the worst since the last status.
#[derive(Debug, Default)]
pub struct RxLag {
    /// Datagrams that waited longer than [`LATE`].
    pub late: u64,
    /// The longest wait since the last [`RxLag::take_line`].
    pub max: Duration,
}

impl RxLag {
    /// Notes a datagram that arrived at `arrived` and is handled at `now`.
    pub fn record(&mut self, now: Instant, arrived: Instant) {
        let lag = now.saturating_since(arrived);
        if lag > LATE {
            self.late += 1;
        }
        self.max = self.max.max(lag);
    }

    /// The status line; starts the next interval's maximum.
    pub fn take_line(&mut self) -> String {
        let max = core::mem::take(&mut self.max);
        format!(
            "rx_lag max_ms={:.1} late={}\n",
            max.as_secs_f64() * 1000.0,
            self.late
        )
    }
}

/// Receives one datagram with the kernel's arrival time (SO_TIMESTAMPNS, set
/// by [`udp_socket`]), as the time since it on the wall clock: the kernel
/// stamps on the wall clock, the core runs on a monotonic one, and only the
/// difference crosses over. `cmsg` is the reader's buffer for the stamp.
fn recv_stamped(
    fd: RawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<(usize, SocketAddr, Option<Duration>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(cmsg), MsgFlags::empty())?;
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                })
        })
        .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
    let age = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            // time_t and long are 32 bits wide on 32-bit targets.
            #[allow(clippy::unnecessary_cast)]
            ControlMessageOwned::ScmTimestampns(t) => {
                stamp_age(t.tv_sec() as i64, t.tv_nsec() as i64)
            }
            _ => None,
        })
    });
    Ok((msg.bytes, from, age))
}

/// How long ago the kernel stamped a datagram at `sec`.`nsec` on the wall
/// clock. Seconds are compared modulo 2^32, so a 32-bit target's stamp past
/// 2038 still gives the right age; a stamp in the future (the wall clock
/// stepped back) or over a second old gives none.
fn stamp_age(sec: i64, nsec: i64) -> Option<Duration> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let secs = (now.as_secs() as u32).wrapping_sub(sec as u32);
    let age = (u64::from(secs) * 1_000_000_000 + u64::from(now.subsec_nanos()))
        .checked_sub(u64::try_from(nsec).ok()?)?;
    (age < 1_000_000_000).then(|| Duration::from_nanos(age))
}

/// Spawns a task that reads `socket` forever into `tx`, each datagram with
/// the time it reached the socket on `clock`.
pub fn read_socket(index: usize, socket: Arc<UdpSocket>, clock: Clock, tx: mpsc::Sender<Input>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; BUF];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let fd = socket.as_raw_fd();
        loop {
            let got = socket
                .async_io(Interest::READABLE, || recv_stamped(fd, &mut buf, &mut cmsg))
                .await;
            match got {
                Ok((n, from, age)) => {
                    let input = Input::Datagram {
                        from,
                        data: buf[..n].to_vec(),
                        arrived: clock.now() - age.unwrap_or_default(),
                    };
                    if tx.send(input).await.is_err() {
                        break;
                    }
                }
                Err(e) => log::debug!("socket {index}: {e}"),
            }
        }
    });
}

/// Spawns a task that reads the TUN device forever into `tx`.
pub fn read_tun(tun: Arc<Tun>, tx: mpsc::Sender<Input>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; BUF];
        loop {
            match tun.recv(&mut buf).await {
                Ok(n) => {
                    if tx.send(Input::Packet(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    log::error!("{}: {e}", tun.name);
                    break;
                }
            }
        }
    });
}

/// A UDP socket for the tunnel. With `device`, it is bound to that interface
/// (SO_BINDTODEVICE) and marked with `mark`, so its packets leave by that WAN
/// and never through the tunnel itself.
pub fn udp_socket(
    bind: SocketAddr,
    device: Option<&str>,
    mark: Option<u32>,
) -> io::Result<UdpSocket> {
    let domain = if bind.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_nonblocking(true)?;
    if let Some(d) = device {
        s.bind_device(Some(d.as_bytes()))
            .map_err(|e| io::Error::new(e.kind(), format!("bind to device {d}: {e}")))?;
    }
    if let Some(m) = mark {
        s.set_mark(m)?;
    }
    // The kernel's arrival stamp on every datagram (see `recv_stamped`).
    if let Err(e) =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
    {
        log::warn!("SO_TIMESTAMPNS: {e}");
    }
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&bind.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind {bind}: {e}")))?;
    UdpSocket::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_stamp_gives_the_time_since_it() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let then = now - Duration::from_millis(30);
        let age = stamp_age(then.as_secs() as i64, i64::from(then.subsec_nanos())).unwrap();
        assert!(age >= Duration::from_millis(30), "{age:?}");
        assert!(age < Duration::from_millis(530), "{age:?}");
        // 32-bit seconds (a 32-bit target's timespec past 2038) compare the same.
        let age = stamp_age(
            i64::from(then.as_secs() as i32),
            i64::from(then.subsec_nanos()),
        );
        assert!(age.is_some_and(|a| a >= Duration::from_millis(30)));
        // The wall clock stepped back, or a stale stamp: no age.
        let future = now + Duration::from_secs(5);
        assert_eq!(stamp_age(future.as_secs() as i64, 0), None);
        assert_eq!(stamp_age(now.as_secs() as i64 - 3, 0), None);
        assert_eq!(stamp_age(now.as_secs() as i64, -1), None);
    }

    #[test]
    fn datagrams_carry_their_arrival_time() {
        // A datagram that sat in the socket for 40 ms is stamped when it
        // arrived, not when it was read.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let on = nix::sys::socket::sockopt::ReceiveTimestampns;
        nix::sys::socket::setsockopt(&rx, on, &true).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (mut buf, mut cmsg) = ([0u8; 64], nix::cmsg_space!(nix::sys::time::TimeSpec));
        // The kernel turns arrival stamping on for the whole system a moment
        // after the first socket asks (a deferred static-key flip); until
        // then a datagram is stamped when it is read. Wait until one that
        // waited 5 ms shows it (at most 200 tries).
        let active = (0..200).any(|_| {
            tx.send_to(b"probe", rx.local_addr().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let (_, _, age) = recv_stamped(rx.as_raw_fd(), &mut buf, &mut cmsg).unwrap();
            age.is_some_and(|a| a >= Duration::from_millis(5))
        });
        assert!(active, "the kernel never stamped a datagram at its arrival");
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let waited = StdInstant::now();
        std::thread::sleep(Duration::from_millis(40));
        let (n, from, age) = recv_stamped(rx.as_raw_fd(), &mut buf, &mut cmsg).unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], tx.local_addr().unwrap()));
        let age = age.expect("a kernel timestamp");
        assert!(age >= Duration::from_millis(40), "{age:?}");
        assert!(
            age <= waited.elapsed() + Duration::from_millis(1),
            "{age:?}"
        );
    }

    #[test]
    fn rx_lag_keeps_the_worst_since_the_last_status() {
        let mut lag = RxLag::default();
        let t = Instant::from_micros(1_000_000);
        lag.record(t, t - Duration::from_millis(2));
        lag.record(t, t - Duration::from_millis(12));
        assert_eq!(lag.take_line(), "rx_lag max_ms=12.0 late=1\n");
        lag.record(t, t);
        assert_eq!(lag.take_line(), "rx_lag max_ms=0.0 late=1\n");
    }

    #[test]
    fn tun_mtu_fills_a_1500_byte_wan() {
        // The figures README.md documents.
        assert_eq!(tun_mtu(false), 1435);
        assert_eq!(tun_mtu(true), 1415);
        assert_eq!(tcp_mtu(false), 1456);
        assert_eq!(tcp_mtu(true), 1436);
    }
}
