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
        priority: u32,
        table: u32,
        v6: bool,
    },
}

/// A policy-routing rule: which packets look up which table, and in what order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Lower goes first; the main table's rule is 32766. Unique per family.
    pub priority: u32,
    /// The table looked up.
    pub table: u32,
    /// An IPv6 rule (else IPv4).
    pub v6: bool,
    /// Only packets with this firewall mark.
    pub fw_mark: Option<u32>,
    /// Only TCP packets.
    pub tcp: bool,
    /// Ignore routes of this prefix length or shorter (0: the default route).
    pub suppress_prefixlength: Option<u32>,
}

/// Priority of the rules for a WAN's mark (plus the WAN's index): before the
/// main table, so a default route into the tunnel never catches the tunnel's
/// own datagrams.
pub const MARK_RULES: u32 = 1000;
/// Priority of the rules that give TCP/IPv4 its own, larger MTU into the
/// tunnel: after the WAN marks (the MPTCP proxy's marked subflows are TCP
/// that must leave by their WAN), before the main table.
pub const TCP_RULES: u32 = 2000;
/// The routing table of TCP/IPv4 into the tunnel (`TCP_RULES`): "brt".
pub const TCP_TABLE: u32 = 0x0062_7274;

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

    /// Sets an interface up with the given MTU and transmit queue length (in
    /// packets; for a TUN device, how many the kernel keeps for us to read).
    pub async fn up(&self, index: u32, mtu: u32, queue_len: u32) -> std::io::Result<()> {
        use netlink_packet_route::link::LinkAttribute;
        let mut req = self.handle.link().set(index).mtu(mtu).up();
        req.message_mut()
            .attributes
            .push(LinkAttribute::TxQueueLen(queue_len));
        req.execute().await.map_err(|e| err("link set up", e))
    }

    /// Adds an address (existing ones are left alone), without the route to
    /// its subnet that the kernel would add: [`Net::route_into_tunnel`] adds
    /// that one with the right MTUs.
    pub async fn add_address(&self, index: u32, addr: IpAddr, len: u8) -> std::io::Result<()> {
        use netlink_packet_route::address::{AddressAttribute, AddressFlag};
        let mut req = self.handle.address().add(index, addr, len);
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(vec![AddressFlag::Noprefixroute]));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("address {addr}/{len}"), e)),
        }
    }

    /// Adds a route to `dest/len` out of interface `dev` (via `gateway` if given)
    /// in routing table `table`, with its own MTU if `mtu` is given (else the
    /// device's).
    pub async fn add_route(
        &mut self,
        dest: IpAddr,
        len: u8,
        dev: u32,
        gateway: Option<IpAddr>,
        table: u32,
        mtu: Option<u32>,
    ) -> std::io::Result<()> {
        use netlink_packet_route::route::{RouteAttribute, RouteMetric};
        let metrics = mtu.map(|m| RouteAttribute::Metrics(vec![RouteMetric::Mtu(m)]));
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
                r.message_mut().attributes.extend(metrics);
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
                r.message_mut().attributes.extend(metrics);
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

    /// Routes `dest/len` into the tunnel device `tun`: in the main table at
    /// `mtu`, and for IPv4 also in [`TCP_TABLE`] at the device's (larger) MTU,
    /// which [`Net::add_tcp_rules`] gives TCP.
    pub async fn route_into_tunnel(
        &mut self,
        dest: IpAddr,
        len: u8,
        tun: u32,
        mtu: u32,
    ) -> std::io::Result<()> {
        let dest = network(dest, len);
        self.add_route(dest, len, tun, None, 254, Some(mtu)).await?;
        if dest.is_ipv4() {
            self.add_route(dest, len, tun, None, TCP_TABLE, None)
                .await?;
        }
        Ok(())
    }

    /// Sends TCP/IPv4 to [`TCP_TABLE`]. With `default_route`, TCP first
    /// looks up the main table without its default route (so the LAN and the
    /// WANs' subnets keep their routes), then the tunnel's default.
    pub async fn add_tcp_rules(&mut self, default_route: bool) -> std::io::Result<()> {
        let rule = Rule {
            priority: TCP_RULES,
            table: 254,
            v6: false,
            fw_mark: None,
            tcp: true,
            suppress_prefixlength: Some(0),
        };
        if default_route {
            self.add_rule(rule).await?;
        }
        self.add_rule(Rule {
            priority: TCP_RULES + 1,
            table: TCP_TABLE,
            suppress_prefixlength: None,
            ..rule
        })
        .await
    }

    /// Adds a policy-routing rule.
    pub async fn add_rule(&mut self, rule: Rule) -> std::io::Result<()> {
        use netlink_packet_route::rule::{RuleAction, RuleAttribute};
        // The action must be said: the kernel answers a lookup that meets a
        // rule of action 0 ("none") with EINVAL. Until 2026-12-03 the WAN mark
        // rules had it; a socket bound to its WAN then fell back to treating
        // the concentrator as on-link, which works only when it is (as in
        // the lab), not behind a gateway.
        let mut req = self
            .handle
            .rule()
            .add()
            .action(RuleAction::ToTable)
            .table_id(rule.table)
            .priority(rule.priority);
        if let Some(mark) = rule.fw_mark {
            req = req.fw_mark(mark);
        }
        let attributes = &mut req.message_mut().attributes;
        if rule.tcp {
            attributes.push(RuleAttribute::IpProtocol(
                netlink_packet_route::IpProtocol::Tcp,
            ));
        }
        if let Some(len) = rule.suppress_prefixlength {
            attributes.push(RuleAttribute::SuppressPrefixLen(len));
        }
        let result = if rule.v6 {
            req.v6().execute().await
        } else {
            req.v4().execute().await
        };
        match result {
            Ok(()) => {
                self.installed.push(Item::Rule {
                    priority: rule.priority,
                    table: rule.table,
                    v6: rule.v6,
                });
                Ok(())
            }
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("{rule:?}"), e)),
        }
    }

    /// Removes every route and rule this process added, newest first.
    pub async fn remove_installed(&mut self) {
        while let Some(item) = self.installed.pop() {
            let result = match &item {
                Item::Rule {
                    priority,
                    table,
                    v6,
                } => {
                    let version = if *v6 { IpVersion::V6 } else { IpVersion::V4 };
                    let mut rules = self.handle.rule().get(version).execute();
                    let mut outcome = Ok(());
                    while let Ok(Some(rule)) = rules.try_next().await {
                        let matches = rule.attributes.iter().any(|a| matches!(a, netlink_packet_route::rule::RuleAttribute::Priority(p) if p == priority))
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

/// The network address of `addr/len` (host bits cleared).
pub fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// Opens the TUN device `name` and gives it `address`: the start both modes
/// share. TCP/IPv4 gets [`crate::io::tcp_mtu`], which is the device's MTU;
/// everything else [`crate::io::tun_mtu`], on the tunnel subnet's route and
/// every other route into the tunnel. Returns the netlink handle (which
/// remembers what it installed), the device and its interface index.
pub async fn open_tun(
    name: &str,
    address: (std::net::IpAddr, u8),
    outer_v6: bool,
) -> std::io::Result<(Net, std::sync::Arc<crate::tun::Tun>, u32)> {
    let mut net = Net::open()?;
    let tun = std::sync::Arc::new(crate::tun::Tun::open(name)?);
    let index = net.index(name).await?;
    net.up(
        index,
        crate::io::tcp_mtu(outer_v6),
        crate::io::TUN_QUEUE_LEN,
    )
    .await?;
    net.add_address(index, address.0, address.1).await?;
    let mtu = crate::io::tun_mtu(outer_v6);
    net.route_into_tunnel(address.0, address.1, index, mtu)
        .await?;
    Ok((net, tun, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_clears_host_bits() {
        let n = |a: &str, len| network(a.parse().unwrap(), len).to_string();
        assert_eq!(n("10.99.0.2", 24), "10.99.0.0");
        assert_eq!(n("10.99.0.2", 32), "10.99.0.2");
        assert_eq!(n("10.99.0.2", 0), "0.0.0.0");
        assert_eq!(n("fd00:99::2", 64), "fd00:99::");
        assert_eq!(n("fd00:99::2", 128), "fd00:99::2");
    }
}
