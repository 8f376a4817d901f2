//! The network-namespace lab shared by braidd's netns test and `ci/bench tunnel`:
//! a LAN host, a router with N WANs, a concentrator and a server, each in its own
//! namespace, joined by veth pairs; the WANs either direct or through the link
//! emulator (braid-linkem) in a namespace of its own. Plus the measuring tools
//! both need: a UDP probe that timestamps each packet (sender and receiver are
//! threads of this process, moved into their namespaces with setns, so they share
//! one monotonic clock and one-way delays are exact), a bulk TCP flow that records
//! when its bytes arrive (gaps, throughput over time), and iperf3 runs read from
//! their JSON.
//!
//! Everything created here is removed when the [`Lab`] is dropped, failed test or
//! not: processes by PID (SIGTERM, then SIGKILL after a deadline), namespaces by
//! name. Every loop is bounded in time.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Namespaces and processes of one run, removed on drop.
pub struct Lab {
    prefix: String,
    names: Vec<String>,
    children: Vec<Child>,
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// `tag` keeps concurrent labs apart (with this process's PID).
    pub fn new(tag: &str) -> Self {
        Lab {
            prefix: format!("b{}{}", tag, std::process::id() % 100_000),
            names: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new namespace with its loopback up.
    pub fn ns(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        // A namespace left by a killed earlier run with the same PID.
        let _ = Command::new("ip")
            .args(["netns", "del", &full])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &full]);
        self.names.push(full.clone());
        exec(&full, &["ip", "link", "set", "lo", "up"]);
        full
    }

    /// A veth pair `a_if` in `a` and `b_if` in `b`, both up, without addresses.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        let tmp_a = format!("{}{a_if}", self.prefix);
        let tmp_b = format!("{}{b_if}", self.prefix);
        sh(&[
            "ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
        ]);
        sh(&["ip", "link", "set", &tmp_a, "netns", a, "name", a_if]);
        sh(&["ip", "link", "set", &tmp_b, "netns", b, "name", b_if]);
        exec(a, &["ip", "link", "set", a_if, "up"]);
        exec(b, &["ip", "link", "set", b_if, "up"]);
    }

    /// A veth pair with an address on each end.
    pub fn link(&self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        self.veth(a, a_if, b, b_if);
        exec(a, &["ip", "addr", "add", a_addr, "dev", a_if]);
        exec(b, &["ip", "addr", "add", b_addr, "dev", b_if]);
    }

    /// Writes a file into the lab's temporary directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `args` in `ns` with stdout and stderr to the log `log`; returns its
    /// PID (`ip netns exec` execs the command, so it is the command's PID).
    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &str) -> u32 {
        let out = File::create(self.path(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Stops the process `pid` started by [`Lab::spawn`] and waits for it.
    pub fn stop(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let c = self.children.remove(i);
            terminate(c);
        }
    }

    /// Waits up to `deadline` for `pid` to exit by itself; true if it did.
    pub fn wait_exit(&mut self, pid: u32, deadline: Duration) -> bool {
        let Some(i) = self.children.iter().position(|c| c.id() == pid) else {
            return true;
        };
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(_)) = self.children[i].try_wait() {
                let _ = self.children.remove(i).wait();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

/// SIGTERM, up to 3 s to exit, then SIGKILL.
fn terminate(mut c: Child) {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.children.drain(..).rev() {
            terminate(c);
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs a command in the root namespace; panics with its stderr on failure.
pub fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs a command in `ns`; returns its stdout, panics with its output on failure.
pub fn exec(ns: &str, args: &[&str]) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{ns}: {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command in `ns`; true if it succeeded.
pub fn try_exec(ns: &str, args: &[&str]) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `check` every 20 ms until it holds (returns the time it took) or
/// `deadline` passes (returns None).
pub fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves the calling thread into the network namespace `ns`.
pub fn enter(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// Runs `f` on a new thread inside `ns`.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
}

// ---------------------------------------------------------------- topology

/// One WAN as the emulator shapes it, the same both ways.
#[derive(Clone, Debug, Default)]
pub struct Wan {
    pub rate_mbit: f64,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub loss_pct: f64,
}

impl Wan {
    pub fn new(rate_mbit: f64, delay_ms: f64) -> Self {
        Wan {
            rate_mbit,
            delay_ms,
            ..Wan::default()
        }
    }

    pub fn jitter(mut self, ms: f64) -> Self {
        self.jitter_ms = ms;
        self
    }

    pub fn loss(mut self, pct: f64) -> Self {
        self.loss_pct = pct;
        self
    }
}

pub const LAN_HOST: &str = "192.168.50.2";
pub const SERVER: &str = "198.51.100.2";
pub const CONC_PUBLIC: &str = "192.0.2.1";

/// The router's address on WAN `i`.
pub fn wan_router_addr(i: usize) -> String {
    format!("10.{}.0.2", i + 1)
}

/// The concentrator's address on WAN `i` (the router's gateway).
pub fn wan_conc_addr(i: usize) -> String {
    format!("10.{}.0.1", i + 1)
}

/// The lab's namespaces and daemons.
pub struct Topo {
    pub lab: Lab,
    pub lan: String,
    pub rtr: String,
    pub con: String,
    pub srv: String,
    /// The emulator's namespace and control socket, when the WANs are emulated.
    pub lem: Option<(String, PathBuf)>,
    pub wans: usize,
    pub router_pid: Option<u32>,
    pub conc_pid: Option<u32>,
    pub linkem_pid: Option<u32>,
}

fn offloads_off(ns: &str, dev: &str) {
    // veth segments and coalesces by default; the emulator must see wire-sized
    // frames, and so must the TCP stacks measured through it.
    exec(
        ns,
        &[
            "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
        ],
    );
}

impl Topo {
    /// Builds the namespaces, links and routes. With `linkem` (path to the
    /// braid-linkem binary), WAN `i` runs rtr `wan{i}` <-> lem `w{i}r` | linkem |
    /// lem `w{i}c` <-> con `c{i}`, shaped as `wans[i]`; without, rtr `wan{i}` <->
    /// con `c{i}` directly (the shapes are ignored). No braidd is started yet.
    pub fn build(tag: &str, wans: &[Wan], linkem: Option<&Path>) -> Topo {
        let mut lab = Lab::new(tag);
        let (lan, rtr, con, srv) = (lab.ns("lan"), lab.ns("rtr"), lab.ns("con"), lab.ns("srv"));
        lab.link(
            &lan,
            "eth0",
            "192.168.50.2/24",
            &rtr,
            "lan0",
            "192.168.50.1/24",
        );
        lab.link(
            &con,
            "s0",
            "198.51.100.1/24",
            &srv,
            "eth0",
            "198.51.100.2/24",
        );
        exec(&con, &["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]);
        exec(
            &lan,
            &["ip", "route", "add", "default", "via", "192.168.50.1"],
        );
        exec(
            &srv,
            &["ip", "route", "add", "default", "via", "198.51.100.1"],
        );
        for ns in [&rtr, &con] {
            exec(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        }
        let lem = linkem.map(|_| lab.ns("lem"));
        let mut lem_cfg = String::new();
        for (i, w) in wans.iter().enumerate() {
            let (r_if, c_if) = (format!("wan{i}"), format!("c{i}"));
            let (r_addr, c_addr) = (
                format!("{}/24", wan_router_addr(i)),
                format!("{}/24", wan_conc_addr(i)),
            );
            match &lem {
                None => lab.link(&rtr, &r_if, &r_addr, &con, &c_if, &c_addr),
                Some(lem) => {
                    let (lr, lc) = (format!("w{i}r"), format!("w{i}c"));
                    lab.veth(&rtr, &r_if, lem, &lr);
                    lab.veth(lem, &lc, &con, &c_if);
                    exec(&rtr, &["ip", "addr", "add", &r_addr, "dev", &r_if]);
                    exec(&con, &["ip", "addr", "add", &c_addr, "dev", &c_if]);
                    for (ns, dev) in [(&rtr, &r_if), (lem, &lr), (lem, &lc), (&con, &c_if)] {
                        offloads_off(ns, dev);
                    }
                    let dir = format!(
                        "rate = \"{}kbit\"\ndelay = \"{}us\"\njitter = \"{}us\"\nloss = \"{}%\"\n",
                        (w.rate_mbit * 1000.0).round() as u64,
                        (w.delay_ms * 1000.0).round() as u64,
                        (w.jitter_ms * 1000.0).round() as u64,
                        w.loss_pct
                    );
                    lem_cfg.push_str(&format!(
                        "[[path]]\nname = \"wan{i}\"\na = \"{lr}\"\nb = \"{lc}\"\n[path.up]\n{dir}[path.down]\n{dir}\n"
                    ));
                }
            }
        }
        // The LAN and server links are not shaped, but they carry the same
        // traffic: keep their frames wire-sized too.
        for (ns, dev) in [(&lan, "eth0"), (&rtr, "lan0"), (&con, "s0"), (&srv, "eth0")] {
            offloads_off(ns, dev);
        }
        let mut topo = Topo {
            lab,
            lan,
            rtr,
            con,
            srv,
            lem: None,
            wans: wans.len(),
            router_pid: None,
            conc_pid: None,
            linkem_pid: None,
        };
        if let (Some(lem), Some(bin)) = (lem, linkem) {
            let cfg = topo.lab.file("linkem.toml", &lem_cfg);
            let sock = topo.lab.path("linkem.sock");
            let pid = topo.lab.spawn(
                &lem,
                &[
                    bin.to_str().unwrap(),
                    "run",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--control",
                    sock.to_str().unwrap(),
                    "--seed",
                    "1",
                ],
                "linkem.log",
            );
            topo.linkem_pid = Some(pid);
            let ready = wait_until(Duration::from_secs(10), || {
                topo.lab.log("linkem.log").contains("linkem: ready")
            });
            assert!(
                ready.is_some(),
                "linkem not ready in 10 s:\n{}",
                topo.lab.log("linkem.log")
            );
            topo.lem = Some((lem, sock));
        }
        topo
    }

    /// Starts the concentrator and the router braidd (`bin`); `classes` is extra
    /// TOML for the `[classes]` table. Returns once a ping from the LAN crosses
    /// the tunnel, or panics with both logs after 10 s.
    pub fn start_braidd(&mut self, bin: &Path, classes: &str) {
        let (rk, ck) = (genkey(bin), genkey(bin));
        let mut wans = String::new();
        for i in 0..self.wans {
            wans.push_str(&format!(
                "[[router.wan]]\nname = \"wan{i}\"\ndevice = \"wan{i}\"\ngateway = \"{}\"\n",
                wan_conc_addr(i)
            ));
        }
        let classes = if classes.is_empty() {
            String::new()
        } else {
            format!("[classes]\n{classes}\n")
        };
        let rcfg = self.lab.file(
            "router.toml",
            &format!(
                "mode = \"router\"\ncontrol_socket = \"{}\"\n[router]\nprivate_key = \"{rk}\"\n\
                 concentrator = \"{CONC_PUBLIC}:4500\"\nconcentrator_public_key = \"{}\"\n\
                 address = \"10.77.0.2/24\"\ndefault_route = true\n{wans}{classes}",
                self.router_sock().display(),
                pubkey(bin, &ck)
            ),
        );
        let ccfg = self.lab.file(
            "conc.toml",
            &format!(
                "mode = \"concentrator\"\ncontrol_socket = \"{}\"\n[concentrator]\nprivate_key = \"{ck}\"\n\
                 listen = \"0.0.0.0:4500\"\naddress = \"10.77.0.1/24\"\n[[concentrator.peer]]\n\
                 name = \"home\"\npublic_key = \"{}\"\naddress = \"10.77.0.2\"\n\
                 routes = [\"192.168.50.0/24\"]\n{classes}",
                self.conc_sock().display(),
                pubkey(bin, &rk)
            ),
        );
        let b = bin.to_str().unwrap();
        let con = self.con.clone();
        self.conc_pid = Some(self.lab.spawn(
            &con,
            &[b, "run", "--config", ccfg.to_str().unwrap()],
            "conc.log",
        ));
        let rtr = self.rtr.clone();
        self.router_pid = Some(self.lab.spawn(
            &rtr,
            &[b, "run", "--config", rcfg.to_str().unwrap()],
            "router.log",
        ));
        let lan = self.lan.clone();
        let ok = wait_until(Duration::from_secs(10), || {
            try_exec(&lan, &["ping", "-c1", "-W1", SERVER])
        });
        assert!(
            ok.is_some(),
            "no ping through the tunnel in 10 s\n{}",
            self.logs()
        );
    }

    pub fn router_sock(&self) -> PathBuf {
        self.lab.path("router.sock")
    }

    pub fn conc_sock(&self) -> PathBuf {
        self.lab.path("conc.sock")
    }

    /// Both daemons' logs (and the emulator's), for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- router log\n{}\n--- concentrator log\n{}\n--- linkem log\n{}",
            self.lab.log("router.log"),
            self.lab.log("conc.log"),
            self.lab.log("linkem.log")
        )
    }

    /// Sends one command to the link emulator; panics on `error:`.
    pub fn linkem(&self, bin: &Path, cmd: &[&str]) -> String {
        let (_, sock) = self.lem.as_ref().expect("no link emulator in this lab");
        let o = Command::new(bin)
            .arg("ctl")
            .arg(sock)
            .args(cmd)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "linkem {cmd:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// Cuts or restores WAN `i` both ways: through the emulator if there is
    /// one, else by taking the concentrator's end of the veth down or up.
    pub fn set_wan(&self, linkem: Option<&Path>, i: usize, up: bool) {
        match linkem {
            Some(bin) => {
                let name = format!("wan{i}");
                self.linkem(bin, &[if up { "restore" } else { "cut" }, &name, "both"]);
            }
            None => {
                let dev = format!("c{i}");
                exec(
                    &self.con,
                    &["ip", "link", "set", &dev, if up { "up" } else { "down" }],
                );
            }
        }
    }

    /// Kernel MPTCP end to end between the router and the concentrator, for the
    /// baseline: one subflow endpoint per extra WAN on the router, limits on both
    /// ends, and a source-address routing table per WAN so each subflow leaves
    /// by its own WAN. Undone by [`Topo::mptcp_off`].
    pub fn mptcp_on(&self) {
        for ns in [&self.rtr, &self.con] {
            exec(ns, &["sysctl", "-qw", "net.mptcp.enabled=1"]);
            exec(
                ns,
                &[
                    "ip",
                    "mptcp",
                    "limits",
                    "set",
                    "subflow",
                    "8",
                    "add_addr_accepted",
                    "8",
                ],
            );
        }
        for i in 0..self.wans {
            let (addr, gw, dev, table) = (
                wan_router_addr(i),
                wan_conc_addr(i),
                format!("wan{i}"),
                (300 + i).to_string(),
            );
            exec(
                &self.rtr,
                &["ip", "rule", "add", "from", &addr, "table", &table],
            );
            exec(
                &self.rtr,
                &[
                    "ip", "route", "add", "default", "via", &gw, "dev", &dev, "table", &table,
                ],
            );
            if i > 0 {
                exec(
                    &self.rtr,
                    &[
                        "ip", "mptcp", "endpoint", "add", &addr, "dev", &dev, "subflow",
                    ],
                );
            }
        }
    }

    pub fn mptcp_off(&self) {
        exec(&self.rtr, &["ip", "mptcp", "endpoint", "flush"]);
        for i in 0..self.wans {
            let (addr, table) = (wan_router_addr(i), (300 + i).to_string());
            exec(
                &self.rtr,
                &["ip", "rule", "del", "from", &addr, "table", &table],
            );
            exec(&self.rtr, &["ip", "route", "flush", "table", &table]);
        }
    }

    /// Peak resident set (VmHWM) of the router braidd, in KiB.
    pub fn router_hwm_kib(&self) -> Option<u64> {
        let pid = self.router_pid?;
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

pub fn genkey(bin: &Path) -> String {
    let o = Command::new(bin).arg("genkey").output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

pub fn pubkey(bin: &Path, private: &str) -> String {
    let mut c = Command::new(bin)
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(private.as_bytes())
        .unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// `braidd status` of the daemon behind `sock`.
pub fn status(bin: &Path, sock: &Path) -> String {
    let o = Command::new(bin)
        .args(["status", "--socket"])
        .arg(sock)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of `key=` on the status line of path `name`.
pub fn path_field(status: &str, name: &str, key: &str) -> Option<String> {
    let line = status
        .lines()
        .find(|l| l.starts_with("path ") && l.contains(&format!(" name={name} ")))?;
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()).map(str::to_string))
}

/// The value of `key=` on the first status line starting with `line`.
pub fn line_field(status: &str, line: &str, key: &str) -> Option<u64> {
    let prefix = format!("{key}=");
    status
        .lines()
        .find(|l| l.starts_with(line))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------- UDP probe

/// The outcome of a UDP probe: for each packet sent, its one-way delay or None
/// if it never arrived.
#[derive(Debug, Clone)]
pub struct Probe {
    pub interval: Duration,
    pub owd: Vec<Option<Duration>>,
    /// Offset of each packet's send time from the probe's start.
    pub sent_at: Vec<Duration>,
}

impl Probe {
    pub fn lost(&self) -> usize {
        self.owd.iter().filter(|o| o.is_none()).count()
    }

    /// The longest run of consecutive lost packets, and when it began.
    pub fn longest_loss(&self) -> (usize, Option<Duration>) {
        let (mut best, mut at, mut run) = (0, None, 0);
        for (i, o) in self.owd.iter().enumerate() {
            if o.is_none() {
                run += 1;
                if run > best {
                    best = run;
                    at = Some(self.sent_at[i + 1 - run]);
                }
            } else {
                run = 0;
            }
        }
        (best, at)
    }

    /// The longest stretch of time covered by consecutive lost packets.
    pub fn longest_loss_time(&self) -> Duration {
        self.interval * self.longest_loss().0 as u32
    }

    /// The `q` quantile (0..=1) of the delays that arrived.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut d: Vec<Duration> = self.owd.iter().flatten().copied().collect();
        if d.is_empty() {
            return None;
        }
        d.sort();
        let i = ((d.len() - 1) as f64 * q).round() as usize;
        Some(d[i])
    }
}

/// Sends `pps` UDP packets per second of `size` bytes for `duration` from `src`
/// (namespace) to `dst_addr:port` received in `dst` (namespace); packets still
/// missing 2 s after the last was sent are lost.
pub fn probe(
    src: &str,
    dst: &str,
    dst_addr: &str,
    port: u16,
    pps: u32,
    size: usize,
    duration: Duration,
) -> Probe {
    let count = (duration.as_secs_f64() * f64::from(pps)).round() as usize;
    let interval = Duration::from_secs(1) / pps;
    let base = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel();
    let rx = in_ns(dst, move || {
        let sock = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got: Vec<Option<Duration>> = vec![None; count];
        let mut buf = [0u8; 2048];
        let mut last_sent_seen: Option<Instant> = None;
        let hard = Instant::now() + duration + Duration::from_secs(30);
        while Instant::now() < hard {
            if let Some(t) = last_sent_seen {
                if t.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            let Ok(n) = sock.recv(&mut buf) else {
                continue;
            };
            let now = base.elapsed();
            if n < 16 {
                continue;
            }
            let seq = u64::from_be_bytes(buf[0..8].try_into().unwrap()) as usize;
            let sent = Duration::from_nanos(u64::from_be_bytes(buf[8..16].try_into().unwrap()));
            if seq == usize::MAX {
                // The sender's end marker.
                last_sent_seen.get_or_insert_with(Instant::now);
                continue;
            }
            if let Some(slot) = got.get_mut(seq) {
                slot.get_or_insert(now.saturating_sub(sent));
            }
        }
        got
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("probe receiver bound");
    let dst_sock: SocketAddr = format!("{dst_addr}:{port}").parse().unwrap();
    let tx = in_ns(src, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        let mut buf = vec![0u8; size.max(16)];
        let start = Instant::now();
        let mut sent_at = Vec::with_capacity(count);
        for seq in 0..count {
            let due = start + interval * seq as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let t = base.elapsed();
            buf[0..8].copy_from_slice(&(seq as u64).to_be_bytes());
            buf[8..16].copy_from_slice(&(t.as_nanos() as u64).to_be_bytes());
            let _ = sock.send_to(&buf, dst_sock);
            sent_at.push(start.elapsed());
        }
        // End markers, a few in case some are lost.
        buf[0..8].copy_from_slice(&u64::MAX.to_be_bytes());
        for _ in 0..5 {
            let _ = sock.send_to(&buf, dst_sock);
            std::thread::sleep(Duration::from_millis(20));
        }
        sent_at
    });
    let sent_at = tx.join().unwrap();
    let owd = rx.join().unwrap();
    Probe {
        interval,
        owd,
        sent_at,
    }
}

// ---------------------------------------------------------------- bulk TCP

/// A bulk TCP transfer seen by its receiver.
#[derive(Debug, Clone)]
pub struct Bulk {
    /// Bytes received in each bin of `bin` after the connection was accepted.
    pub bins: Vec<u64>,
    pub bin: Duration,
    /// The longest time between two reads that returned data.
    pub max_gap: Duration,
    /// When (since accept) that gap began.
    pub max_gap_at: Duration,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// IPPROTO_MPTCP: the kernel's multipath TCP, with fallback to TCP.
const IPPROTO_MPTCP: i32 = 262;

fn stream_socket(mptcp: bool) -> socket2::Socket {
    let proto = if mptcp {
        socket2::Protocol::from(IPPROTO_MPTCP)
    } else {
        socket2::Protocol::TCP
    };
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(proto)).unwrap()
}

fn listener(port: u16, mptcp: bool) -> TcpListener {
    let s = stream_socket(mptcp);
    s.set_reuse_address(true).unwrap();
    let addr: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(4).unwrap();
    s.into()
}

fn connect(addr: SocketAddr, mptcp: bool) -> TcpStream {
    let s = stream_socket(mptcp);
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    s.into()
}

/// Runs one TCP (or MPTCP) connection from `src` to `dst_addr:port` (listening in `dst`)
/// that sends as fast as it can for `duration`. `during(elapsed)` is called by
/// the caller's thread about every 10 ms while it runs (to cut links on cue).
#[allow(clippy::too_many_arguments)]
pub fn bulk_tcp(
    src: &str,
    dst: &str,
    dst_addr: &str,
    port: u16,
    mptcp: bool,
    duration: Duration,
    bin: Duration,
    mut during: impl FnMut(Duration),
) -> Bulk {
    let (ready_tx, ready_rx) = mpsc::channel();
    let rx = in_ns(dst, move || {
        let l = listener(port, mptcp);
        ready_tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        let hard = start + duration + Duration::from_secs(30);
        let mut bins = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let (mut last, mut max_gap, mut max_gap_at, mut bytes) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u64);
        while Instant::now() < hard {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let t = start.elapsed();
                    if t - last > max_gap {
                        max_gap = t - last;
                        max_gap_at = last;
                    }
                    last = t;
                    bytes += n as u64;
                    let b = (t.as_nanos() / bin.as_nanos()) as usize;
                    if bins.len() <= b {
                        bins.resize(b + 1, 0);
                    }
                    bins[b] += n as u64;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        Bulk {
            bins,
            bin,
            max_gap,
            max_gap_at,
            bytes,
            elapsed: last,
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("bulk receiver listening");
    let addr: SocketAddr = format!("{dst_addr}:{port}").parse().unwrap();
    let tx = in_ns(src, move || {
        let mut s = connect(addr, mptcp);
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let buf = vec![0x5au8; 64 * 1024];
        let start = Instant::now();
        while start.elapsed() < duration {
            match s.write(&buf) {
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("bulk sender: {e}"),
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
    });
    let start = Instant::now();
    while !tx.is_finished() && start.elapsed() < duration + Duration::from_secs(35) {
        during(start.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    tx.join().unwrap();
    rx.join().unwrap()
}

// ---------------------------------------------------------------- iperf3

/// The figures we read from an iperf3 run's JSON.
#[derive(Debug, Clone, Default)]
pub struct Iperf {
    /// Receiver's goodput, bits per second.
    pub bps: f64,
    /// TCP: the sender's retransmissions.
    pub retransmits: u64,
    /// UDP: lost datagrams, and their percentage.
    pub lost_percent: f64,
    /// UDP: jitter in ms.
    pub jitter_ms: f64,
}

/// Runs an iperf3 server in `server_ns` and a client in `client_ns` toward
/// `addr`, with `client_args` (e.g. `-t 10 -O 2`, `-u -b 30M`); `wrap` prefixes
/// both commands (e.g. `mptcpize run`).
pub fn iperf3(
    lab: &mut Lab,
    server_ns: &str,
    client_ns: &str,
    addr: &str,
    port: u16,
    wrap: &[&str],
    client_args: &[&str],
) -> Iperf {
    let port_s = port.to_string();
    let mut sargs: Vec<&str> = wrap.to_vec();
    sargs.extend(["iperf3", "-s", "-1", "-p", &port_s]);
    let log = format!("iperf3-server-{port}.log");
    let pid = lab.spawn(server_ns, &sargs, &log);
    let listening = wait_until(Duration::from_secs(5), || {
        exec(server_ns, &["ss", "-Hltn", &format!("sport = :{port}")]).contains(&format!(":{port}"))
    });
    assert!(listening.is_some(), "iperf3 server: {}", lab.log(&log));
    let mut cargs: Vec<&str> = wrap.to_vec();
    cargs.extend(["iperf3", "-c", addr, "-p", &port_s, "-J"]);
    cargs.extend(client_args);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", client_ns]).args(&cargs);
    let o = cmd.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    lab.wait_exit(pid, Duration::from_secs(5));
    lab.stop(pid);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "iperf3 JSON ({e}): {out}{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    if let Some(err) = v.get("error") {
        panic!("iperf3 {cargs:?}: {err}");
    }
    let end = &v["end"];
    if client_args.contains(&"-u") {
        let sum = &end["sum"];
        Iperf {
            bps: sum["bits_per_second"].as_f64().unwrap_or(0.0)
                * (1.0 - sum["lost_percent"].as_f64().unwrap_or(0.0) / 100.0),
            retransmits: 0,
            lost_percent: sum["lost_percent"].as_f64().unwrap_or(0.0),
            jitter_ms: sum["jitter_ms"].as_f64().unwrap_or(0.0),
        }
    } else {
        Iperf {
            bps: end["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0),
            retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
            ..Iperf::default()
        }
    }
}

/// TCP segments sent and retransmitted so far in `ns` (/proc/net/snmp).
pub fn tcp_segments(ns: &str) -> (u64, u64) {
    let snmp = exec(ns, &["cat", "/proc/net/snmp"]);
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let get = |key: &str| -> u64 {
        let i = names.split_whitespace().position(|n| n == key).unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    };
    (get("OutSegs"), get("RetransSegs"))
}

/// TcpExt counters in `ns` (/proc/net/netstat): `keys` in order, 0 if absent.
pub fn tcp_ext(ns: &str, keys: &[&str]) -> Vec<u64> {
    let text = exec(ns, &["cat", "/proc/net/netstat"]);
    let mut ext = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (ext.next().unwrap_or(""), ext.next().unwrap_or(""));
    let names: Vec<&str> = names.split_whitespace().collect();
    let values: Vec<&str> = values.split_whitespace().collect();
    keys.iter()
        .map(|k| {
            names
                .iter()
                .position(|n| n == k)
                .and_then(|i| values.get(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

/// What the sender's kernel saw of reordering: (reorder events detected, by SACK,
/// Reno dupacks or timestamps; retransmissions the receiver reported as
/// duplicates with D-SACK, i.e. spurious ones).
pub const REORDER_KEYS: [&str; 4] = [
    "TCPSACKReorder",
    "TCPRenoReorder",
    "TCPTSReorder",
    "TCPDSACKRecv",
];

pub fn reorder_counters(ns: &str) -> (u64, u64) {
    let v = tcp_ext(ns, &REORDER_KEYS);
    (v[0] + v[1] + v[2], v[3])
}

// ---------------------------------------------------------------- repeated runs

/// Of several runs' figures, the run to report and the spread of all of them:
/// (index of the median, smallest, largest). With an even count the median is
/// the lower of the two middle figures, so the run's other figures are its own.
/// None without runs.
pub fn median_run(values: &[f64]) -> Option<(usize, f64, f64)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let (lo, hi) = (*order.first()?, *order.last()?);
    Some((order[(order.len() - 1) / 2], values[lo], values[hi]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_run_picks_the_middle_run_and_the_range() {
        // Here, not at the module's top: the bench builds this module too,
        // with cfg(test) under clippy but without its #[test] functions.
        use super::median_run;
        assert_eq!(median_run(&[]), None);
        assert_eq!(median_run(&[36.1]), Some((0, 36.1, 36.1)));
        assert_eq!(median_run(&[36.4, 35.2, 36.1]), Some((2, 35.2, 36.4)));
        // Even count: the lower middle run, not an average no run measured.
        assert_eq!(median_run(&[4.0, 1.0, 3.0, 2.0]), Some((3, 1.0, 4.0)));
        // Equal figures: one of them, whichever.
        assert_eq!(
            median_run(&[5.0, 5.0, 5.0]).map(|m| (m.1, m.2)),
            Some((5.0, 5.0))
        );
    }
}
