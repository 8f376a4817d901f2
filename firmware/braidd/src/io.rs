//! The pieces both modes share: a monotonic clock for the core, randomness from
//! the kernel, UDP sockets, and the task that feeds datagrams and TUN packets to
//! the single-threaded state machine.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use braid_tunnel::time::Instant;
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
    /// A datagram on socket `socket` from `from`.
    Datagram { from: SocketAddr, data: Vec<u8> },
    /// An IP packet from the TUN device.
    Packet(Vec<u8>),
}

/// Spawns a task that reads `socket` forever into `tx`.
pub fn read_socket(index: usize, socket: Arc<UdpSocket>, tx: mpsc::Sender<Input>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; BUF];
        loop {
            match socket.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let input = Input::Datagram {
                        from,
                        data: buf[..n].to_vec(),
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
    fn tun_mtu_fills_a_1500_byte_wan() {
        // The figures README.md documents.
        assert_eq!(tun_mtu(false), 1435);
        assert_eq!(tun_mtu(true), 1415);
        assert_eq!(tcp_mtu(false), 1456);
        assert_eq!(tcp_mtu(true), 1436);
    }
}
