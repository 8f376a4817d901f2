//! Network configuration over rtnetlink: interface addresses and state, routes
//! and policy-routing rules. Everything braidd installs, it records, and removes
//! on shutdown ([`Net::remove_installed`]).

use std::net::IpAddr;

use futures_util::TryStreamExt;
use rtnetlink::{Handle, IpVersion};

/// A route or rule braidd added, to remove on exit.
#[derive(Debug, Clone)]
enum Item {
    Route {
        dest: IpAddr,
        len: u8,
        table: u32,
        dev: u32,
        gateway: Option<IpAddr>,
    },
    Rule {
        mark: u32,
        table: u32,
        v6: bool,
    },
}

/// The netlink handle and what was installed through it.
pub struct Net {
    handle: Handle,
    installed: Vec<Item>,
}

fn err(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

impl Net {
    /// Opens a netlink connection, driven by a task on the current runtime.
    pub fn open() -> std::io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self {
            handle,
            installed: Vec::new(),
        })
    }

    /// The index of interface `name`.
    pub async fn index(&self, name: &str) -> std::io::Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(l.header.index),
            Ok(None) => Err(err(name, "no such interface")),
            Err(e) => Err(err(&format!("interface {name}"), e)),
        }
    }

    /// Sets an interface up with the given MTU.
    pub async fn up(&self, index: u32, mtu: u32) -> std::io::Result<()> {
        self.handle
            .link()
            .set(index)
            .mtu(mtu)
            .up()
            .execute()
            .await
            .map_err(|e| err("link set up", e))
    }

    /// Adds an address (existing ones are left alone).
    pub async fn add_address(&self, index: u32, addr: IpAddr, len: u8) -> std::io::Result<()> {
        match self.handle.address().add(index, addr, len).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("address {addr}/{len}"), e)),
        }
    }

    /// Adds a route to `dest/len` out of interface `dev` (via `gateway` if given)
    /// in routing table `table`.
    pub async fn add_route(
        &mut self,
        dest: IpAddr,
        len: u8,
        dev: u32,
        gateway: Option<IpAddr>,
        table: u32,
    ) -> std::io::Result<()> {
        let result = match (dest, gateway) {
            (IpAddr::V4(d), g) => {
                let mut r = self
                    .handle
                    .route()
                    .add()
                    .v4()
                    .destination_prefix(d, len)
                    .output_interface(dev)
                    .table_id(table);
                if let Some(IpAddr::V4(g)) = g {
                    r = r.gateway(g);
                }
                r.execute().await
            }
            (IpAddr::V6(d), g) => {
                let mut r = self
                    .handle
                    .route()
                    .add()
                    .v6()
                    .destination_prefix(d, len)
                    .output_interface(dev)
                    .table_id(table);
                if let Some(IpAddr::V6(g)) = g {
                    r = r.gateway(g);
                }
                r.execute().await
            }
        };
        match result {
            Ok(()) => {
                self.installed.push(Item::Route {
                    dest,
                    len,
                    table,
                    dev,
                    gateway,
                });
                Ok(())
            }
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("route {dest}/{len} table {table}"), e)),
        }
    }

    /// Adds a rule: packets with firewall mark `mark` use table `table`.
    pub async fn add_mark_rule(&mut self, mark: u32, table: u32, v6: bool) -> std::io::Result<()> {
        // Before the main table (32766), so a default route into the tunnel never
        // catches the tunnel's own datagrams; a priority per mark keeps them apart.
        let req = self
            .handle
            .rule()
            .add()
            .fw_mark(mark)
            .table_id(table)
            .priority(1000 + (mark & 0xff));
        let result = if v6 {
            req.v6().execute().await
        } else {
            req.v4().execute().await
        };
        match result {
            Ok(()) => {
                self.installed.push(Item::Rule { mark, table, v6 });
                Ok(())
            }
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("rule fwmark {mark} table {table}"), e)),
        }
    }

    /// Removes every route and rule this process added, newest first.
    pub async fn remove_installed(&mut self) {
        while let Some(item) = self.installed.pop() {
            let result = match &item {
                Item::Rule { mark, table, v6 } => {
                    let version = if *v6 { IpVersion::V6 } else { IpVersion::V4 };
                    let mut rules = self.handle.rule().get(version).execute();
                    let mut outcome = Ok(());
                    while let Ok(Some(rule)) = rules.try_next().await {
                        let matches = rule.attributes.iter().any(|a| matches!(a, netlink_packet_route::rule::RuleAttribute::FwMark(m) if m == mark))
                            && rule.attributes.iter().any(|a| matches!(a, netlink_packet_route::rule::RuleAttribute::Table(t) if t == table));
                        if matches {
                            outcome = self.handle.rule().del(rule).execute().await;
                            break;
                        }
                    }
                    outcome
                }
                Item::Route {
                    dest,
                    len,
                    table,
                    dev,
                    gateway,
                } => {
                    let mut msg = netlink_packet_route::route::RouteMessage::default();
                    let _ = (gateway, dev);
                    msg.header.destination_prefix_length = *len;
                    msg.header.table = if *table < 256 { *table as u8 } else { 252 };
                    msg.header.address_family = if dest.is_ipv4() {
                        netlink_packet_route::AddressFamily::Inet
                    } else {
                        netlink_packet_route::AddressFamily::Inet6
                    };
                    msg.attributes
                        .push(netlink_packet_route::route::RouteAttribute::Destination(
                            match dest {
                                IpAddr::V4(a) => {
                                    netlink_packet_route::route::RouteAddress::Inet(*a)
                                }
                                IpAddr::V6(a) => {
                                    netlink_packet_route::route::RouteAddress::Inet6(*a)
                                }
                            },
                        ));
                    msg.attributes
                        .push(netlink_packet_route::route::RouteAttribute::Table(*table));
                    self.handle.route().del(msg).execute().await
                }
            };
            if let Err(e) = result {
                log::warn!("cannot remove {item:?}: {e}");
            }
        }
    }
}

/// Opens the TUN device `name`, brings it up with `mtu` and gives it
/// `address`: the start both modes share. Returns the netlink handle (which
/// remembers what it installed), the device and its interface index.
pub async fn open_tun(
    name: &str,
    address: (std::net::IpAddr, u8),
    mtu: u32,
) -> std::io::Result<(Net, std::sync::Arc<crate::tun::Tun>, u32)> {
    let net = Net::open()?;
    let tun = std::sync::Arc::new(crate::tun::Tun::open(name)?);
    let index = net.index(name).await?;
    net.up(index, mtu).await?;
    net.add_address(index, address.0, address.1).await?;
    Ok((net, tun, index))
}
