//! braidd's configuration: one TOML file for both modes, read into raw structs
//! that reject unknown fields, then validated into [`Config`]. Every error names
//! the file and the field, and says what would be valid.
//!
//! ```toml
//! mode = "router"                      # or "concentrator"
//!
//! [router]
//! private_key = "..."                  # base64, `braidd genkey`
//! concentrator = "203.0.113.7:4500"
//! concentrator_public_key = "..."      # `braidd pubkey < concentrator.key`
//! psk = "..."                          # optional, shared with the concentrator
//! address = "10.77.0.2/24"             # this router's tunnel address
//!
//! [[router.wan]]
//! name = "dsl"
//! device = "eth1"                      # the socket is bound to it
//! cap_mbit = 18.0                      # optional upper bound
//! backup = false                       # true: used only when the others are down
//!
//! [concentrator]
//! private_key = "..."
//! listen = "0.0.0.0:4500"
//! address = "10.77.0.1/24"
//! nat_interface = "eth0"               # optional: braidd installs NAT with nft
//!
//! [[concentrator.peer]]
//! name = "home"
//! public_key = "..."
//! address = "10.77.0.2"
//!
//! [classes]                            # optional
//! redundant_ports = [5060]             # UDP/TCP ports sent on two paths
//! interactive_ports = [53, 3478]       # queued ahead of bulk
//! ```

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Router or concentrator.
    pub mode: Mode,
    /// Traffic classification.
    pub classes: Classes,
    /// Control socket path.
    pub control_socket: PathBuf,
    /// Name of the TUN device.
    pub tun: String,
}

/// What this braidd is.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The box at the customer's.
    Router(Router),
    /// The server that owns the public address.
    Concentrator(Concentrator),
}

/// Router settings.
#[derive(Debug, Clone)]
pub struct Router {
    /// Our X25519 private key.
    pub private_key: [u8; 32],
    /// The concentrator's address.
    pub concentrator: SocketAddr,
    /// The concentrator's public key.
    pub concentrator_public_key: [u8; 32],
    /// Pre-shared key (zeros: none).
    pub psk: [u8; 32],
    /// Tunnel address and prefix length.
    pub address: (IpAddr, u8),
    /// WAN links, in path-id order.
    pub wans: Vec<Wan>,
    /// Route everything not local through the tunnel (a default route on TUN).
    pub default_route: bool,
}

/// One WAN.
#[derive(Debug, Clone, PartialEq)]
pub struct Wan {
    /// Name, for logs and status.
    pub name: String,
    /// Network device the socket is bound to.
    pub device: String,
    /// Rate cap, bits per second.
    pub cap_bps: Option<u64>,
    /// Used only when every primary WAN is down.
    pub backup: bool,
    /// Next hop toward the internet on this WAN: braidd routes the WAN's socket
    /// through it (a routing table and fwmark rule per WAN). Without one, the
    /// socket's device binding alone picks the way out.
    pub gateway: Option<IpAddr>,
}

/// Concentrator settings.
#[derive(Debug, Clone)]
pub struct Concentrator {
    /// Our X25519 private key.
    pub private_key: [u8; 32],
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Tunnel address and prefix length.
    pub address: (IpAddr, u8),
    /// Interface to masquerade tunnel traffic behind (none: NAT is set up by hand).
    pub nat_interface: Option<String>,
    /// The routers served.
    pub peers: Vec<Peer>,
}

/// A router the concentrator serves.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Name, for logs.
    pub name: String,
    /// Its public key.
    pub public_key: [u8; 32],
    /// Pre-shared key (zeros: none).
    pub psk: [u8; 32],
    /// Its tunnel address.
    pub address: IpAddr,
    /// Prefixes behind it (its LAN), routed to it through the tunnel.
    pub routes: Vec<(IpAddr, u8)>,
}

/// How packets are sorted into traffic classes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classes {
    /// TCP/UDP ports (either end) of the redundant class.
    pub redundant_ports: Vec<u16>,
    /// TCP/UDP ports (either end) of the interactive class.
    pub interactive_ports: Vec<u16>,
    /// UDP packets up to this size are interactive too (VoIP, DNS, games).
    pub interactive_max_size: usize,
}

/// A configuration error: the file, the field, and what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The field (dotted), or empty for a parse error that carries its position.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: field `{}`: {}",
                self.file.display(),
                self.field,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: String,
    tun: Option<String>,
    control_socket: Option<String>,
    router: Option<RawRouter>,
    concentrator: Option<RawConcentrator>,
    classes: Option<RawClasses>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    private_key: String,
    concentrator: String,
    concentrator_public_key: String,
    psk: Option<String>,
    address: String,
    #[serde(default)]
    default_route: bool,
    #[serde(default)]
    wan: Vec<RawWan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWan {
    name: String,
    device: String,
    cap_mbit: Option<f64>,
    #[serde(default)]
    backup: bool,
    gateway: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConcentrator {
    private_key: String,
    listen: String,
    address: String,
    nat_interface: Option<String>,
    #[serde(default)]
    peer: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    name: String,
    public_key: String,
    psk: Option<String>,
    address: String,
    #[serde(default)]
    routes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClasses {
    #[serde(default)]
    redundant_ports: Vec<u16>,
    #[serde(default)]
    interactive_ports: Vec<u16>,
    interactive_max_size: Option<usize>,
}

/// Decodes a base64 X25519 key (44 characters, as `wg genkey` prints).
pub fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| {
            "not base64; a key is 44 characters of base64, as `braidd genkey` prints".to_string()
        })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "{} bytes after decoding; a key is 32 bytes (44 base64 characters)",
            b.len()
        )
    })
}

/// Encodes a key as base64.
pub fn format_key(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Validates the text of a configuration file; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| err("", e.to_string().trim_end().to_string()))?;
        let key = |field: &str, s: &str| parse_key(s).map_err(|m| err(field, m));
        let opt_key =
            |field: &str, s: &Option<String>| s.as_deref().map_or(Ok([0; 32]), |s| key(field, s));
        let prefix = |field: &str, s: &str| parse_prefix(s).map_err(|m| err(field, m));
        let mode = match (raw.mode.as_str(), raw.router, raw.concentrator) {
            ("router", Some(r), None) => {
                if r.wan.is_empty() {
                    return Err(err(
                        "router.wan",
                        "no WAN: add at least one [[router.wan]] with name and device".into(),
                    ));
                }
                if r.wan.len() > braid_tunnel::MAX_PATHS {
                    return Err(err(
                        "router.wan",
                        format!("{} WANs; at most {}", r.wan.len(), braid_tunnel::MAX_PATHS),
                    ));
                }
                let mut wans = Vec::new();
                for (i, w) in r.wan.into_iter().enumerate() {
                    if w.name.is_empty() || w.device.is_empty() {
                        return Err(err(
                            &format!("router.wan[{i}]"),
                            "name and device must not be empty".into(),
                        ));
                    }
                    if wans.iter().any(|x: &Wan| x.name == w.name) {
                        return Err(err(
                            &format!("router.wan[{i}].name"),
                            format!("`{}` is used twice", w.name),
                        ));
                    }
                    let cap_bps = match w.cap_mbit {
                        Some(c) if !(0.064..=10_000.0).contains(&c) => {
                            return Err(err(
                                &format!("router.wan[{i}].cap_mbit"),
                                format!("{c}; valid caps are 0.064 to 10000 Mbit/s"),
                            ))
                        }
                        Some(c) => Some((c * 1e6) as u64),
                        None => None,
                    };
                    let gateway = w
                        .gateway
                        .as_deref()
                        .map(|g| {
                            g.parse().map_err(|_| {
                                err(
                                    &format!("router.wan[{i}].gateway"),
                                    format!("`{g}` is not an IP address"),
                                )
                            })
                        })
                        .transpose()?;
                    wans.push(Wan {
                        name: w.name,
                        device: w.device,
                        cap_bps,
                        backup: w.backup,
                        gateway,
                    });
                }
                if wans.iter().all(|w| w.backup) {
                    return Err(err(
                        "router.wan",
                        "every WAN is a backup; at least one must be primary".into(),
                    ));
                }
                Mode::Router(Router {
                    private_key: key("router.private_key", &r.private_key)?,
                    concentrator: r.concentrator.parse().map_err(|_| {
                        err(
                            "router.concentrator",
                            format!(
                                "`{}` is not an address:port like 203.0.113.7:4500",
                                r.concentrator
                            ),
                        )
                    })?,
                    concentrator_public_key: key(
                        "router.concentrator_public_key",
                        &r.concentrator_public_key,
                    )?,
                    psk: opt_key("router.psk", &r.psk)?,
                    address: prefix("router.address", &r.address)?,
                    default_route: r.default_route,
                    wans,
                })
            }
            ("concentrator", None, Some(c)) => {
                let mut peers = Vec::new();
                for (i, p) in c.peer.into_iter().enumerate() {
                    let public_key =
                        key(&format!("concentrator.peer[{i}].public_key"), &p.public_key)?;
                    if peers.iter().any(|x: &Peer| x.public_key == public_key) {
                        return Err(err(
                            &format!("concentrator.peer[{i}].public_key"),
                            "the same key is listed twice".into(),
                        ));
                    }
                    let routes = p
                        .routes
                        .iter()
                        .map(|r| prefix(&format!("concentrator.peer[{i}].routes"), r))
                        .collect::<Result<Vec<_>, _>>()?;
                    peers.push(Peer {
                        routes,
                        psk: opt_key(&format!("concentrator.peer[{i}].psk"), &p.psk)?,
                        address: p.address.parse().map_err(|_| {
                            err(
                                &format!("concentrator.peer[{i}].address"),
                                format!("`{}` is not an IP address", p.address),
                            )
                        })?,
                        name: p.name,
                        public_key,
                    });
                }
                Mode::Concentrator(Concentrator {
                    private_key: key("concentrator.private_key", &c.private_key)?,
                    listen: c.listen.parse().map_err(|_| {
                        err(
                            "concentrator.listen",
                            format!("`{}` is not an address:port like 0.0.0.0:4500", c.listen),
                        )
                    })?,
                    address: prefix("concentrator.address", &c.address)?,
                    nat_interface: c.nat_interface,
                    peers,
                })
            }
            ("router" | "concentrator", _, _) => {
                return Err(err(
                    "mode",
                    format!(
                        "`{}` needs its own section, [{}], and only that one",
                        raw.mode, raw.mode
                    ),
                ))
            }
            (other, _, _) => {
                return Err(err(
                    "mode",
                    format!("`{other}`; valid modes are \"router\" and \"concentrator\""),
                ))
            }
        };
        let classes = raw.classes.map_or(
            Classes {
                interactive_max_size: 256,
                ..Classes::default()
            },
            |c| Classes {
                redundant_ports: c.redundant_ports,
                interactive_ports: c.interactive_ports,
                interactive_max_size: c.interactive_max_size.unwrap_or(256),
            },
        );
        let tun = raw.tun.unwrap_or_else(|| "braid0".into());
        if tun.is_empty() || tun.len() > 15 || tun.contains('/') {
            return Err(err(
                "tun",
                format!("`{tun}`; an interface name is 1 to 15 characters without '/'"),
            ));
        }
        Ok(Config {
            mode,
            classes,
            control_socket: raw
                .control_socket
                .map_or_else(|| PathBuf::from("/run/braidd.sock"), PathBuf::from),
            tun,
        })
    }
}

/// Parses `10.77.0.2/24`.
fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("`{s}` is not an address with a prefix length, like 10.77.0.2/24");
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max || addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        return Err(bad());
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests;
