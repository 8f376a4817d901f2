//! Sorting LAN packets into traffic classes, and finding a packet's destination
//! (for the concentrator's routing), with smoltcp's checked packet views.
//!
//! * redundant: a configured port at either end (VoIP signalling and media
//!   ports a user names);
//! * interactive: DSCP EF or CS5-CS7 (what phones and games mark), a configured
//!   port, or a UDP packet no larger than `interactive_max_size` (VoIP, DNS,
//!   game updates are small, bulk transfers are not);
//! * aggregate: everything else.

use braid_tunnel::connection::Class;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use std::net::IpAddr;

use crate::config::Classes;

/// DSCP values treated as interactive: EF (46) and CS5 to CS7 (40, 48, 56).
const INTERACTIVE_DSCP: [u8; 4] = [46, 40, 48, 56];

struct Meta {
    dscp: u8,
    proto: IpProtocol,
    len: usize,
    ports: Option<(u16, u16)>,
    dst: IpAddr,
}

fn meta(packet: &[u8]) -> Option<Meta> {
    match packet.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(packet).ok()?;
            let proto = p.next_header();
            Some(Meta {
                dscp: p.dscp(),
                proto,
                len: usize::from(p.total_len()),
                ports: ports(proto, p.payload()),
                dst: IpAddr::V4(p.dst_addr()),
            })
        }
        6 => {
            let p = Ipv6Packet::new_checked(packet).ok()?;
            let proto = p.next_header();
            Some(Meta {
                dscp: p.traffic_class() >> 2,
                proto,
                len: packet.len(),
                ports: ports(proto, p.payload()),
                dst: IpAddr::V6(p.dst_addr()),
            })
        }
        _ => None,
    }
}

fn ports(proto: IpProtocol, payload: &[u8]) -> Option<(u16, u16)> {
    match proto {
        IpProtocol::Udp => UdpPacket::new_checked(payload)
            .ok()
            .map(|u| (u.src_port(), u.dst_port())),
        IpProtocol::Tcp => TcpPacket::new_checked(payload)
            .ok()
            .map(|t| (t.src_port(), t.dst_port())),
        _ => None,
    }
}

/// The class of an IP packet.
pub fn classify(packet: &[u8], c: &Classes) -> Class {
    let Some(m) = meta(packet) else {
        return Class::Aggregate;
    };
    let port_in = |list: &[u16]| {
        m.ports
            .is_some_and(|(a, b)| list.contains(&a) || list.contains(&b))
    };
    if port_in(&c.redundant_ports) {
        return Class::Redundant;
    }
    if INTERACTIVE_DSCP.contains(&m.dscp)
        || port_in(&c.interactive_ports)
        || (m.proto == IpProtocol::Udp && m.len <= c.interactive_max_size)
    {
        return Class::Interactive;
    }
    Class::Aggregate
}

/// The destination address of an IP packet.
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    meta(packet).map(|m| m.dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (20 bytes) with `dscp`, protocol, then ports, padded to `len`.
    fn v4(dscp: u8, proto: u8, sport: u16, dport: u16, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len.max(28)];
        p[0] = 0x45;
        p[1] = dscp << 2;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[192, 168, 1, 2]);
        p[16..20].copy_from_slice(&[198, 51, 100, 9]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        if proto == 17 {
            let udp = (p.len() - 20) as u16;
            p[24..26].copy_from_slice(&udp.to_be_bytes());
        } else if proto == 6 {
            p.resize(p.len().max(40), 0);
            let l = p.len() as u16;
            p[2..4].copy_from_slice(&l.to_be_bytes());
            p[32] = 5 << 4;
        }
        p
    }

    fn classes() -> Classes {
        Classes {
            redundant_ports: vec![5060],
            interactive_ports: vec![3478],
            interactive_max_size: 256,
        }
    }

    #[test]
    fn classes_by_port_dscp_and_size() {
        let c = classes();
        assert_eq!(classify(&v4(0, 17, 40000, 5060, 300), &c), Class::Redundant);
        assert_eq!(classify(&v4(0, 6, 5060, 40000, 1400), &c), Class::Redundant);
        assert_eq!(
            classify(&v4(46, 6, 1, 2, 1400), &c),
            Class::Interactive,
            "EF"
        );
        assert_eq!(classify(&v4(0, 17, 1, 3478, 1400), &c), Class::Interactive);
        assert_eq!(
            classify(&v4(0, 17, 1, 2, 200), &c),
            Class::Interactive,
            "small UDP"
        );
        assert_eq!(classify(&v4(0, 17, 1, 2, 1200), &c), Class::Aggregate);
        assert_eq!(
            classify(&v4(0, 6, 1, 2, 100), &c),
            Class::Aggregate,
            "small TCP is bulk"
        );
        assert_eq!(classify(&[0x45, 0, 0], &c), Class::Aggregate, "garbage");
        assert_eq!(
            destination(&v4(0, 17, 1, 2, 100)),
            Some("198.51.100.9".parse().unwrap())
        );
    }
}
