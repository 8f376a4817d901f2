//! Router mode: the LAN's packets from TUN into the tunnel over every WAN, and
//! the tunnel's packets back out to TUN.
//!
//! Each WAN gets a UDP socket bound to its device and marked with its own
//! firewall mark; with a gateway configured, braidd adds a routing table per WAN
//! (default via that gateway) and a rule sending that mark to it. The tunnel's
//! own datagrams therefore always leave by their WAN, never into the TUN device,
//! even when the default route points into the tunnel.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use braid_tunnel::connection::{Connection, Event};
use braid_tunnel::path::PathConfig;
use tokio::sync::mpsc;

use crate::config::{Config, Router};
use crate::control::{Control, Status};
use crate::io::{
    random32, read_socket, read_tun, udp_socket, wall_clock, Clock, Input, RxLag, BUF,
};
use crate::net::{Net, Rule, MARK_RULES};
use crate::tun::Tun;

/// Firewall mark (and routing table) of WAN `i`: 0x6272 ("br") << 8 | i.
pub fn wan_mark(i: usize) -> u32 {
    0x0062_7200 | i as u32
}

/// Runs the router until `shutdown` resolves; removes what it installed.
pub async fn run(
    cfg: &Config,
    r: &Router,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let clock = Clock::start();
    let (mut net, tun, tun_index) =
        crate::net::open_tun(&cfg.tun, r.address, r.concentrator.is_ipv6()).await?;
    let result = serve(cfg, r, &clock, &mut net, tun, tun_index, shutdown).await;
    net.remove_installed().await;
    result
}

async fn serve(
    cfg: &Config,
    r: &Router,
    clock: &Clock,
    net: &mut Net,
    tun: Arc<Tun>,
    tun_index: u32,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let v6 = r.concentrator.is_ipv6();
    let any: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let (tx, mut rx) = mpsc::channel(2048);
    let mut sockets = Vec::new();
    for (i, wan) in r.wans.iter().enumerate() {
        let mark = wan_mark(i);
        if let Some(gw) = wan.gateway {
            let dev = net.index(&wan.device).await?;
            let default = if gw.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            };
            net.add_route(default, 0, dev, Some(gw), mark, None).await?;
            net.add_rule(Rule {
                priority: MARK_RULES + (mark & 0xff),
                table: mark,
                v6: gw.is_ipv6(),
                fw_mark: Some(mark),
                tcp: false,
                suppress_prefixlength: None,
            })
            .await?;
        }
        let s = Arc::new(udp_socket(any, Some(&wan.device), Some(mark))?);
        read_socket(i, s.clone(), *clock, tx.clone());
        sockets.push(s);
    }
    if r.default_route {
        let default = if r.address.0.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        net.route_into_tunnel(default, 0, tun_index, crate::io::tun_mtu(v6))
            .await?;
    }
    net.add_tcp_rules(r.default_route).await?;
    read_tun(tun.clone(), tx.clone());
    drop(tx);

    let mut conn =
        Connection::initiator(r.private_key, r.concentrator_public_key, r.psk, random32()?);
    let (secs, nanos) = wall_clock();
    conn.set_wall_clock(clock.now(), secs, nanos);
    for (i, w) in r.wans.iter().enumerate() {
        let config = PathConfig {
            backup: w.backup,
            cap: w.cap_bps.map(|b| b / 8),
        };
        conn.add_path(i as u8, config, clock.now());
    }
    let control = Control::bind(&cfg.control_socket)?;
    log::info!(
        "router: {} WAN(s) to {}, tunnel {} on {}",
        r.wans.len(),
        r.concentrator,
        r.address.0,
        cfg.tun
    );
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; BUF];
    let mut lag = RxLag::default();
    loop {
        let now = clock.now();
        while let Some(t) = conn.poll_transmit(now, &mut buf) {
            if let Some(s) = sockets.get(usize::from(t.path)) {
                if let Err(e) = s.try_send_to(&buf[..t.len], r.concentrator) {
                    log::debug!("{}: {e}", r.wans[usize::from(t.path)].name);
                }
            }
        }
        while let Some(p) = conn.poll_deliver(now) {
            tun.send(&p)?;
        }
        while let Some(e) = conn.poll_event() {
            match e {
                Event::Established => log::info!("session established with {}", r.concentrator),
                Event::PathUp(p) => log::info!("path {} up", r.wans[usize::from(p)].name),
                Event::PathDown(p) => log::warn!("path {} down", r.wans[usize::from(p)].name),
            }
        }
        let deadline = conn.poll_timeout().map_or_else(
            || clock.deadline(now) + std::time::Duration::from_secs(1),
            |t| clock.deadline(t),
        );
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Datagram { mut data, arrived, .. }) => {
                    let now = clock.now();
                    lag.record(now, arrived);
                    conn.handle_received(now, arrived, &mut data);
                }
                Some(Input::Packet(p)) => {
                    let class = crate::classify::classify(&p, &cfg.classes);
                    let _ = conn.send(clock.now(), class, &p);
                }
                None => return Err(io::Error::other("all readers stopped")),
            },
            () = tokio::time::sleep_until(deadline) => conn.handle_timeout(clock.now()),
            Some(stream) = control.accept() => {
                let names: Vec<String> = r.wans.iter().map(|w| w.name.clone()).collect();
                let mut status = Status::router(&conn, &names);
                status.0 += &lag.take_line();
                control.answer(stream, &status).await;
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}
