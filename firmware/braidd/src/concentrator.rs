//! Concentrator mode: one UDP port for every router; their tunnels end in one TUN
//! device, and the concentrator forwards (and, if configured, masquerades) their
//! traffic toward the internet.
//!
//! Datagrams go to the [`Endpoint`], which routes them by session index. Every
//! datagram that authenticates for a path teaches the concentrator that router's
//! current address for that path, so a path follows NAT rebinding on LTE at once.
//! Packets from TUN go to the router whose tunnel address or LAN prefix holds the
//! destination.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use braid_tunnel::endpoint::{Endpoint, Incoming};
use tokio::sync::mpsc;

use crate::config::{Concentrator, Config};
use crate::control::{Control, Status};
use crate::io::{random32, read_socket, read_tun, udp_socket, Clock, Input, RxLag, BUF};
use crate::tun::Tun;

/// Runs the concentrator until `shutdown` resolves; removes what it installed.
pub async fn run(
    cfg: &Config,
    c: &Concentrator,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let clock = Clock::start();
    // Routers may reach an IPv6 socket over IPv4 (mapped): size for the larger header.
    let v6 = c.listen.is_ipv6();
    let (mut net, tun, tun_index) = crate::net::open_tun(&cfg.tun, c.address, v6).await?;
    for p in &c.peers {
        for (dest, len) in &p.routes {
            net.route_into_tunnel(*dest, *len, tun_index, crate::io::tun_mtu(v6))
                .await?;
        }
    }
    net.add_tcp_rules(false).await?;
    let nat = c
        .nat_interface
        .as_deref()
        .map(|i| Nat::install(i, c.address))
        .transpose()?;
    let result = serve(cfg, c, &clock, tun, shutdown).await;
    drop(nat);
    net.remove_installed().await;
    result
}

/// The masquerading ruleset, installed with `nft` and deleted when dropped.
struct Nat;

impl Nat {
    fn install(interface: &str, tunnel: (IpAddr, u8)) -> io::Result<Self> {
        let family = if tunnel.0.is_ipv4() { "ip" } else { "ip6" };
        let rules = format!(
            "table {family} braid {{\n chain postrouting {{\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"{interface}\" masquerade\n }}\n}}\n"
        );
        run_nft(&rules)?;
        log::info!("NAT: masquerading toward {interface} (nft table {family} braid)");
        Ok(Nat)
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        let _ = run_nft("delete table ip braid\n");
    }
}

fn run_nft(script: &str) -> io::Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("nft: {e} (install nftables, or leave nat_interface out and set up NAT by hand)")))?;
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(script.as_bytes()))
        .transpose()?;
    let st = child.wait()?;
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("nft failed ({st})")))
    }
}

fn contains(prefix: (IpAddr, u8), a: IpAddr) -> bool {
    match (prefix.0, a) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let len = u32::from(prefix.1.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let len = u32::from(prefix.1.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

async fn serve(
    cfg: &Config,
    c: &Concentrator,
    clock: &Clock,
    tun: Arc<Tun>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let socket = Arc::new(udp_socket(c.listen, None, None)?);
    let (tx, mut rx) = mpsc::channel(4096);
    read_socket(0, socket.clone(), *clock, tx.clone());
    read_tun(tun.clone(), tx);
    let mut endpoint = Endpoint::new(c.private_key, random32()?);
    for p in &c.peers {
        endpoint.add_peer(p.public_key, p.psk);
    }
    // Where each router's path currently is (learnt from authenticated datagrams).
    let mut addrs: HashMap<(usize, u8), SocketAddr> = HashMap::new();
    let control = Control::bind(&cfg.control_socket)?;
    log::info!(
        "concentrator: listening on {}, {} router(s), tunnel {} on {}",
        c.listen,
        c.peers.len(),
        c.address.0,
        cfg.tun
    );
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; BUF];
    let mut lag = RxLag::default();
    loop {
        let now = clock.now();
        let mut next = None;
        for peer in 0..c.peers.len() {
            let Some(conn) = endpoint.connection(peer) else {
                continue;
            };
            while let Some(t) = conn.poll_transmit(now, &mut buf) {
                if let Some(to) = addrs.get(&(peer, t.path)) {
                    let _ = socket.try_send_to(&buf[..t.len], *to);
                }
            }
            while let Some(p) = conn.poll_deliver(now) {
                tun.send(&p)?;
            }
            while let Some(e) = conn.poll_event() {
                log::info!("{}: {e:?}", c.peers[peer].name);
            }
            if let Some(t) = conn.poll_timeout() {
                next = Some(next.map_or(t, |n: braid_tunnel::time::Instant| n.min(t)));
            }
        }
        let deadline = next.map_or_else(
            || clock.deadline(now) + std::time::Duration::from_secs(1),
            |t| clock.deadline(t),
        );
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Datagram { from, mut data, arrived }) => {
                    let source = source_bytes(from);
                    let now = clock.now();
                    lag.record(now, arrived);
                    match endpoint.handle_received(now, arrived, &source, &mut data) {
                        Incoming::Connection { peer, path: Some(path) }
                            if addrs.insert((peer, path), from) != Some(from) =>
                        {
                            log::info!("{}: path {path} at {from}", c.peers[peer].name);
                        }
                        Incoming::Reply(r) => {
                            let _ = socket.try_send_to(&r, from);
                        }
                        _ => {}
                    }
                }
                Some(Input::Packet(p)) => {
                    let Some(dst) = crate::classify::destination(&p) else { continue };
                    let Some(peer) = c.peers.iter().position(|x| x.address == dst || x.routes.iter().any(|r| contains(*r, dst))) else { continue };
                    let class = crate::classify::classify(&p, &cfg.classes);
                    if let Some(conn) = endpoint.connection(peer) {
                        let _ = conn.send(clock.now(), class, &p);
                    }
                }
                None => return Err(io::Error::other("all readers stopped")),
            },
            () = tokio::time::sleep_until(deadline) => {
                let now = clock.now();
                for peer in 0..c.peers.len() {
                    if let Some(conn) = endpoint.connection(peer) {
                        if conn.poll_timeout().is_some_and(|t| t <= now) {
                            conn.handle_timeout(now);
                        }
                    }
                }
            }
            Some(stream) = control.accept() => {
                let mut text = format!("concentrator peers={} sessions={} {:?}\n", c.peers.len(), endpoint.sessions(), endpoint.stats());
                for (i, p) in c.peers.iter().enumerate() {
                    if let Some(conn) = endpoint.connection(i) {
                        text += &Status::connection(conn, &[], &format!("peer {}", p.name));
                    }
                }
                text += &lag.take_line();
                control.answer(stream, &Status(text)).await;
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// A fixed encoding of a source address for cookies: family, address, port.
fn source_bytes(a: SocketAddr) -> Vec<u8> {
    let mut v = Vec::with_capacity(19);
    match a.ip() {
        IpAddr::V4(ip) => {
            v.push(4);
            v.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            v.push(6);
            v.extend_from_slice(&ip.octets());
        }
    }
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = ("192.168.1.0".parse().unwrap(), 24);
        assert!(contains(p, "192.168.1.77".parse().unwrap()));
        assert!(!contains(p, "192.168.2.1".parse().unwrap()));
        assert!(contains(
            ("0.0.0.0".parse().unwrap(), 0),
            "8.8.8.8".parse().unwrap()
        ));
        assert!(contains(
            ("fd00::".parse().unwrap(), 8),
            "fd12::1".parse().unwrap()
        ));
        assert!(!contains(p, "fd12::1".parse().unwrap()));
    }
}
