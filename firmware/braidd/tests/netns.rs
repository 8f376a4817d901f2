//! braidd end to end in network namespaces: a LAN host, a router with two WANs,
//! a concentrator and a server, joined by veth pairs; the kernel's TUN and routing
//! do the rest. Checks that traffic from the LAN reaches the server through the
//! tunnel over both WANs, that a TCP transfer completes, and that cutting a WAN
//! keeps traffic flowing (failover) and restoring it brings the path back.
//!
//! Needs root (namespaces, TUN), iproute2, ping and iperf3; ignored by a plain
//! `cargo test`, run by ci/test. Everything it creates (namespaces by name,
//! processes by PID) is removed when the test ends, failed or not.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Namespaces of one test run, deleted by name on drop.
struct Lab {
    prefix: String,
    names: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let prefix = format!("b{}{}", tag, std::process::id() % 100_000);
        Lab {
            prefix,
            names: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn ns(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.prefix);
        sh(&["ip", "netns", "add", &full]);
        self.names.push(full.clone());
        exec(&full, &["ip", "link", "set", "lo", "up"]);
        full
    }

    /// A veth pair between two namespaces, with addresses.
    fn link(&self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        let tmp_a = format!("{}{a_if}", self.prefix);
        let tmp_b = format!("{}{b_if}", self.prefix);
        sh(&[
            "ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
        ]);
        sh(&["ip", "link", "set", &tmp_a, "netns", a, "name", a_if]);
        sh(&["ip", "link", "set", &tmp_b, "netns", b, "name", b_if]);
        exec(a, &["ip", "addr", "add", a_addr, "dev", a_if]);
        exec(b, &["ip", "addr", "add", b_addr, "dev", b_if]);
        exec(a, &["ip", "link", "set", a_if, "up"]);
        exec(b, &["ip", "link", "set", b_if, "up"]);
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn spawn(&mut self, ns: &str, args: &[&str], log: &str) {
        let out = std::fs::File::create(self.dir.path().join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = nix_kill(c.id());
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map(drop)
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn exec(ns: &str, args: &[&str]) -> String {
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

fn try_exec(ns: &str, args: &[&str]) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits until `check` holds, polling every 50 ms, at most `deadline`; on
/// failure the message carries both daemons' logs.
fn wait_for(
    lab: &Lab,
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what}: not within {deadline:?}\n--- router log\n{}\n--- concentrator log\n{}",
        lab.log("router.log"),
        lab.log("conc.log")
    );
}

fn braidd() -> &'static str {
    env!("CARGO_BIN_EXE_braidd")
}

fn key(k: &str) -> String {
    let out = Command::new(braidd())
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(k.as_bytes()).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

fn genkey() -> String {
    String::from_utf8(
        Command::new(braidd())
            .arg("genkey")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string()
}

struct Net {
    lab: Lab,
    lan: String,
    router: String,
    conc: String,
    server: String,
    router_sock: PathBuf,
}

/// Builds the topology and starts both braidds; returns once traffic flows.
fn setup(tag: &str) -> Net {
    let mut lab = Lab::new(tag);
    let (lan, router, conc, server) = (lab.ns("lan"), lab.ns("rtr"), lab.ns("con"), lab.ns("srv"));
    lab.link(
        &lan,
        "eth0",
        "192.168.50.2/24",
        &router,
        "lan0",
        "192.168.50.1/24",
    );
    lab.link(&router, "wan0", "10.1.0.2/24", &conc, "c0", "10.1.0.1/24");
    lab.link(&router, "wan1", "10.2.0.2/24", &conc, "c1", "10.2.0.1/24");
    lab.link(
        &conc,
        "s0",
        "198.51.100.1/24",
        &server,
        "eth0",
        "198.51.100.2/24",
    );
    exec(&conc, &["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]);
    exec(
        &lan,
        &["ip", "route", "add", "default", "via", "192.168.50.1"],
    );
    exec(
        &server,
        &["ip", "route", "add", "default", "via", "198.51.100.1"],
    );
    for ns in [&router, &conc] {
        exec(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }
    let (rk, ck) = (genkey(), genkey());
    let router_sock = lab.dir.path().join("router.sock");
    let rcfg = lab.file(
        "router.toml",
        &format!(
            "mode = \"router\"\ncontrol_socket = \"{}\"\n[router]\nprivate_key = \"{rk}\"\nconcentrator = \"192.0.2.1:4500\"\n\
             concentrator_public_key = \"{}\"\naddress = \"10.77.0.2/24\"\ndefault_route = true\n\
             [[router.wan]]\nname = \"wan0\"\ndevice = \"wan0\"\ngateway = \"10.1.0.1\"\n\
             [[router.wan]]\nname = \"wan1\"\ndevice = \"wan1\"\ngateway = \"10.2.0.1\"\n",
            router_sock.display(),
            key(&ck)
        ),
    );
    let ccfg = lab.file(
        "conc.toml",
        &format!(
            "mode = \"concentrator\"\ncontrol_socket = \"{}\"\n[concentrator]\nprivate_key = \"{ck}\"\nlisten = \"0.0.0.0:4500\"\n\
             address = \"10.77.0.1/24\"\n[[concentrator.peer]]\nname = \"home\"\npublic_key = \"{}\"\naddress = \"10.77.0.2\"\n\
             routes = [\"192.168.50.0/24\"]\n",
            lab.dir.path().join("conc.sock").display(),
            key(&rk)
        ),
    );
    lab.spawn(
        &conc,
        &[
            braidd(),
            "--log-level",
            "debug",
            "run",
            "--config",
            ccfg.to_str().unwrap(),
        ],
        "conc.log",
    );
    lab.spawn(
        &router,
        &[
            braidd(),
            "--log-level",
            "debug",
            "run",
            "--config",
            rcfg.to_str().unwrap(),
        ],
        "router.log",
    );
    let net = Net {
        lab,
        lan,
        router,
        conc,
        server,
        router_sock,
    };
    wait_for(
        &net.lab,
        "a ping from the LAN through the tunnel",
        Duration::from_secs(10),
        || try_exec(&net.lan, &["ping", "-c1", "-W1", "198.51.100.2"]),
    );
    net
}

fn status(sock: &Path) -> String {
    String::from_utf8_lossy(
        &Command::new(braidd())
            .args(["status", "--socket"])
            .arg(sock)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn path_state(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("state=").map(str::to_string))
        })
}

#[test]
#[ignore = "needs root and network namespaces; ci/test runs it"]
fn lan_traffic_crosses_the_tunnel_and_survives_a_cut_wan() {
    let n = setup("t");
    // Both paths come up.
    wait_for(&n.lab, "both paths up", Duration::from_secs(5), || {
        let s = status(&n.router_sock);
        path_state(&s, "wan0").as_deref() == Some("up")
            && path_state(&s, "wan1").as_deref() == Some("up")
    });
    // The LAN's traffic really goes through the tunnel: the server sees the LAN's
    // address (the concentrator routes it back by the peer's routes).
    let trace = exec(&n.lan, &["ping", "-c3", "-i0.2", "198.51.100.2"]);
    assert!(trace.contains("3 received"), "{trace}");

    // A TCP transfer.
    n.lab.children.len();
    let mut server = Command::new("ip")
        .args([
            "netns", "exec", &n.server, "iperf3", "-s", "-1", "-p", "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&n.lab, "iperf3 server", Duration::from_secs(5), || {
        try_exec(&n.server, &["sh", "-c", "ss -ltn | grep -q :5201"])
    });
    let out = exec(
        &n.lan,
        &[
            "iperf3",
            "-c",
            "198.51.100.2",
            "-p",
            "5201",
            "-t",
            "3",
            "-J",
        ],
    );
    let _ = server.wait();
    let sent: f64 = out
        .split("\"sum_received\":")
        .nth(1)
        .and_then(|s| s.split("\"bits_per_second\":").nth(1))
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim().parse().ok())
        .expect("iperf3 result");
    eprintln!("TCP through the tunnel over veth: {:.1} Mbit/s", sent / 1e6);
    let s = status(&n.router_sock);
    eprintln!("{s}");
    if sent < 5e6 {
        let conc = status(&n.lab.dir.path().join("conc.sock"));
        panic!(
            "{sent} bit/s\n{conc}\n{out}\n{}\n{}",
            n.lab.log("router.log"),
            n.lab.log("conc.log")
        );
    }

    // Cut wan0 (the concentrator's side, as a failed modem would): wan0 goes down,
    // traffic keeps flowing over wan1, then wan0 comes back when restored.
    exec(&n.conc, &["ip", "link", "set", "c0", "down"]);
    let down = wait_for(&n.lab, "wan0 declared down", Duration::from_secs(3), || {
        path_state(&status(&n.router_sock), "wan0").as_deref() == Some("down")
    });
    eprintln!("wan0 declared down {down:?} after the cut (plus polling)");
    let ping = exec(&n.lan, &["ping", "-c5", "-i0.2", "198.51.100.2"]);
    assert!(
        ping.contains("5 received"),
        "traffic over wan1 only: {ping}"
    );
    exec(&n.conc, &["ip", "link", "set", "c0", "up"]);
    let back = wait_for(&n.lab, "wan0 back up", Duration::from_secs(5), || {
        path_state(&status(&n.router_sock), "wan0").as_deref() == Some("up")
    });
    eprintln!("wan0 up again {back:?} after the restore");
    assert!(back < Duration::from_secs(2) + Duration::from_millis(500));
    let _ = (&n.router, n.lab.log("router.log"));
}
