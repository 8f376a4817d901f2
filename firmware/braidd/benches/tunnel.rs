//! `ci/bench tunnel`: braidd against the baselines on emulated WAN links.
//!
//! Namespaces LAN host -> router -> N WANs shaped by braid-linkem -> concentrator
//! -> server (tests/lab). Per scenario, first the baselines on the same links
//! without braidd: one TCP connection over each link alone (router to
//! concentrator), and kernel MPTCP end to end with one subflow per link. Then
//! braidd: iperf3 TCP and UDP from the LAN host to the server through the
//! tunnel, a 50 pps UDP probe idle and under the TCP load, TCP retransmissions
//! counted by the sender's kernel, the router braidd's peak RSS, and the
//! share of frames linkem sent over 1 ms late meanwhile (a machine too busy
//! to emulate the links shows there, not as a tunnel figure). The
//! failover scenario F runs a bulk TCP flow, an aggregate-class probe and a
//! redundant-class probe while the better link is cut for 10 s, for braidd and
//! for MPTCP, and writes a throughput-over-time SVG.
//!
//! Needs root. Binaries come from the environment (ci/bench sets them):
//! BRAIDD (default: this package's braidd), LINKEM (required), BENCH_SVG
//! (default firmware/failover.svg), BENCH_SECONDS (iperf3 run length, default
//! 10), BENCH_CC (TCP congestion control in every namespace, e.g. cubic,
//! added to the host's tcp_allowed_congestion_control if missing; default
//! the host's, printed in the heading: a single flow's figures depend
//! on it more than on anything braidd does), BENCH_COLD=1 (no 4 s UDP warm-up
//! before braidd's TCP run: measures the first flow after the handshake, with
//! every path's estimate still at its initial 2 Mbit/s), BENCH_REPEAT (1 to
//! 9, default 1: runs each TCP measurement of S1-S4 that many times on the
//! same namespaces and reports the median run, with the range of all; one
//! run's throughput moves by up to 3 Mbit/s with the machine's load).
//! Arguments select scenarios by name (S1 S2 S3 S4 F); none means all.

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/lab/mod.rs"]
mod lab;

use lab::{probe, wait_until, wan_conc_addr, Iperf, Probe, Topo, Wan, SERVER};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Scenario {
    name: &'static str,
    what: &'static str,
    wans: Vec<Wan>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "S1",
            what: "2 × 20 Mbit/s, 20 and 25 ms",
            wans: vec![Wan::new(20.0, 20.0), Wan::new(20.0, 25.0)],
        },
        Scenario {
            name: "S2",
            what: "20 Mbit/s 10 ms + 10 Mbit/s 30 ms, 1 ms jitter",
            wans: vec![
                Wan::new(20.0, 10.0).jitter(1.0),
                Wan::new(10.0, 30.0).jitter(1.0),
            ],
        },
        Scenario {
            name: "S3",
            what: "50 Mbit/s 10 ms + 5 Mbit/s 150 ms",
            wans: vec![Wan::new(50.0, 10.0), Wan::new(5.0, 150.0)],
        },
        Scenario {
            name: "S4",
            what: "20/15 ms + 10/40 ms j10 1% loss + 5/25 ms + 25/300 ms",
            wans: vec![
                Wan::new(20.0, 15.0),
                Wan::new(10.0, 40.0).jitter(10.0).loss(1.0),
                Wan::new(5.0, 25.0),
                Wan::new(25.0, 300.0),
            ],
        },
    ]
}

struct Env {
    braidd: PathBuf,
    linkem: PathBuf,
    svg: PathBuf,
    secs: u64,
    /// The TCP congestion control of every namespace (`BENCH_CC`), or `None`
    /// for the host's default, which new namespaces inherit.
    cc: Option<String>,
    /// How many times each TCP measurement runs (`BENCH_REPEAT`).
    repeat: usize,
}

impl Env {
    /// Builds the scenario's namespaces with the congestion control asked for.
    fn topo(&self, tag: &str, wans: &[Wan]) -> Topo {
        let topo = Topo::build(tag, wans, Some(&self.linkem));
        if let Some(cc) = &self.cc {
            for ns in [&topo.lan, &topo.rtr, &topo.con, &topo.srv] {
                let set = format!("net.ipv4.tcp_congestion_control={cc}");
                lab::exec(ns, &["sysctl", "-qw", &set]);
            }
        }
        topo
    }

    /// The congestion control the TCP runs use, as the LAN host reports it.
    fn cc_in_use(&self) -> String {
        self.cc.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
                .map_or_else(|_| "?".into(), |s| s.trim().to_string())
        })
    }
}

#[derive(Default)]
struct Row {
    name: &'static str,
    what: &'static str,
    rate_sum: f64,
    single: Vec<(f64, Spread)>,
    mptcp: Iperf,
    mptcp_spread: Spread,
    mptcp_retx: (u64, u64),
    tcp: Iperf,
    tcp_spread: Spread,
    tcp_retx: (u64, u64),
    /// Reorder events and spurious (D-SACKed) retransmissions the sender saw.
    tcp_reorder: (u64, u64),
    udp: Iperf,
    udp_offered: f64,
    idle: Option<Probe>,
    loaded: Option<Probe>,
    hwm_kib: Option<u64>,
    reorder: String,
    /// The concentrator's reorder and release counters after the UDP run.
    conc_reorder: String,
    /// Datagrams the server's kernel dropped for a full socket buffer during
    /// the UDP run: delivered by the tunnel, lost on the last hop.
    udp_rcvbuf_errors: u64,
    /// linkem frames sent over 1 ms after their time, and all frames it sent,
    /// during braidd's runs: how far the machine kept up with the emulation.
    lem_late: (u64, u64),
}

/// The bit rates of a measurement's runs: how many, the lowest and the highest.
#[derive(Default, Clone, Copy)]
struct Spread {
    n: usize,
    lo: f64,
    hi: f64,
}

/// Runs a measurement `n` times and keeps the run with the median bit rate
/// (`bps` of it), with the spread of all `n`.
fn median_of<T>(n: usize, mut run: impl FnMut() -> T, bps: impl Fn(&T) -> f64) -> (T, Spread) {
    let mut runs: Vec<T> = (0..n).map(|_| run()).collect();
    let rates: Vec<f64> = runs.iter().map(bps).collect();
    let (i, lo, hi) = lab::median_run(&rates).expect("BENCH_REPEAT is at least 1");
    (runs.swap_remove(i), Spread { n, lo, hi })
}

/// Sums `late_over_1ms` and `out_frames` over linkem's stats lines.
fn lem_lateness(stats: &str) -> (u64, u64) {
    let field = |l: &str, key: &str| -> u64 {
        l.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    stats
        .lines()
        .filter(|l| l.starts_with("path="))
        .fold((0, 0), |(late, all), l| {
            (
                late + field(l, "late_over_1ms="),
                all + field(l, "out_frames="),
            )
        })
}

/// The server's UDP `RcvbufErrors` counter (from /proc/net/snmp).
fn rcvbuf_errors(ns: &str) -> u64 {
    let snmp = lab::exec(ns, &["cat", "/proc/net/snmp"]);
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find_map(|(n, v)| (n == "RcvbufErrors").then(|| v.parse().ok()).flatten())
        .unwrap_or(0)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn iperf_tcp(
    topo: &mut Topo,
    server: &str,
    client: &str,
    addr: &str,
    wrap: &[&str],
    extra: &[&str],
    secs: u64,
) -> (Iperf, (u64, u64)) {
    let before = lab::tcp_segments(client);
    let t = secs.to_string();
    let mut args = vec!["-t", &t, "-O", "2"];
    args.extend(extra);
    let r = lab::iperf3(&mut topo.lab, server, client, addr, 5201, wrap, &args);
    let after = lab::tcp_segments(client);
    (r, (after.0 - before.0, after.1 - before.1))
}

/// iperf3 UDP from `client` to the server at `rate` (iperf3's -b syntax) in
/// 1300-byte datagrams, for `secs` after `omit` seconds left out.
fn iperf_udp(
    topo: &mut Topo,
    server: &str,
    client: &str,
    port: u16,
    rate: &str,
    secs: u64,
    omit: u64,
) -> Iperf {
    let (t, o) = (secs.to_string(), omit.to_string());
    let args = ["-u", "-b", rate, "-l", "1300", "-t", &t, "-O", &o];
    lab::iperf3(&mut topo.lab, server, client, SERVER, port, &[], &args)
}

/// Whether BENCH_TRACE asks for the tuning output.
fn tracing() -> bool {
    std::env::var_os("BENCH_TRACE").is_some()
}

/// What the trace reads: both daemons' control sockets, linkem's (when the
/// WANs are emulated) and the namespace of the TCP client.
#[derive(Clone)]
struct TraceAt {
    router: PathBuf,
    conc: PathBuf,
    lem: Option<PathBuf>,
    client: String,
}

/// With BENCH_TRACE: the router's path table, how many packets it dropped,
/// repaired and padded, how late the router and the concentrator handled
/// datagrams, what the emulated links carried and dropped at their queues,
/// and the TCP client's window and round trip, every 250 ms for `secs`, in a
/// thread of `sc`.
fn trace_paths<'s>(
    sc: &'s std::thread::Scope<'s, '_>,
    env: &Env,
    at: &TraceAt,
    secs: u64,
) -> Option<std::thread::ScopedJoinHandle<'s, ()>> {
    if !tracing() {
        return None;
    }
    let (bin, lem_bin, at) = (env.braidd.clone(), env.linkem.clone(), at.clone());
    let (sock, conc) = (at.router.clone(), at.conc.clone());
    Some(sc.spawn(move || {
        let start = Instant::now();
        let mut links = LinkTrace::default();
        while start.elapsed() < Duration::from_secs(secs) {
            let st = lab::status(&bin, &sock);
            let t = start.elapsed().as_secs_f64();
            for l in st.lines().filter(|l| l.starts_with("path ")) {
                eprintln!("{t:6.2} {l}");
            }
            let counters: Vec<&str> = st
                .split_whitespace()
                .filter(|w| {
                    ["tx_dropped=", "repairs_sent=", "padding_sent="]
                        .iter()
                        .any(|k| w.starts_with(k))
                })
                .collect();
            eprintln!("{t:6.2} {}", counters.join(" "));
            let lag = |st: &str| {
                st.lines()
                    .find(|l| l.starts_with("rx_lag "))
                    .unwrap_or("rx_lag ?")
                    .to_string()
            };
            let cst = lab::status(&bin, &conc);
            eprintln!("{t:6.2} router {} concentrator {}", lag(&st), lag(&cst));
            if let Some(sock) = &at.lem {
                let o = std::process::Command::new(&lem_bin)
                    .arg("ctl")
                    .arg(sock)
                    .arg("stats")
                    .output();
                if let Ok(o) = o {
                    eprintln!(
                        "{t:6.2} linkem {}",
                        links.sample(&String::from_utf8_lossy(&o.stdout))
                    );
                }
            }
            eprintln!("{t:6.2} client {}", tcp_window(&at.client));
            std::thread::sleep(Duration::from_millis(250));
        }
    }))
}

/// The TCP client's busiest connection as `ss -ti` shows it: window
/// (`cwnd`, `ssthresh`, in segments) and smoothed round trip, so a slow
/// ramp can be told apart from a path that does not carry what it is given.
fn tcp_window(ns: &str) -> String {
    let ss = lab::exec(ns, &["ss", "-tinH", "state", "established"]);
    let field = |l: &str, key: &str| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.split('/').next().unwrap_or(v).to_string())
    };
    ss.lines()
        .filter_map(|l| Some((field(l, "cwnd:")?.parse::<u64>().ok()?, l)))
        .max_by_key(|&(cwnd, _)| cwnd)
        .map_or("tcp -".into(), |(cwnd, l)| {
            let get = |k| field(l, k).unwrap_or_else(|| "-".into());
            format!(
                "tcp cwnd={cwnd} ssthresh={} rtt_ms={} retrans={}",
                get("ssthresh:"),
                get("rtt:"),
                get("retrans:")
            )
        })
}

/// linkem's per-direction counters between two trace samples: what each
/// emulated link delivered (Mbit/s over the interval) and how many frames its
/// queue dropped, so a WAN queue that overflows shows up at the moment it does.
#[derive(Default)]
struct LinkTrace {
    /// (path, dir) -> (out_bytes, drop_queue) at the previous sample.
    last: std::collections::BTreeMap<(String, String), (u64, u64)>,
    at: Option<Instant>,
}

impl LinkTrace {
    /// One line: `wan0/up 18.9M q+0 …` for every direction that carried or
    /// dropped anything since the last sample.
    fn sample(&mut self, stats: &str) -> String {
        let now = Instant::now();
        let secs = self.at.map_or(0.0, |a| now.duration_since(a).as_secs_f64());
        self.at = Some(now);
        let mut out = Vec::new();
        for l in stats.lines().filter(|l| l.starts_with("path=")) {
            let get = |key: &str| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key))
                    .unwrap_or("")
                    .to_string()
            };
            let num = |key: &str| get(key).parse::<u64>().unwrap_or(0);
            let key = (get("path="), get("dir="));
            let now_c = (num("out_bytes="), num("drop_queue="));
            let was = self.last.insert(key.clone(), now_c).unwrap_or(now_c);
            let (bytes, drops) = (now_c.0.saturating_sub(was.0), now_c.1.saturating_sub(was.1));
            if secs > 0.0 && (bytes > 0 || drops > 0) {
                let mbit = bytes as f64 * 8.0 / secs / 1e6;
                out.push(format!("{}/{} {mbit:.1}M q+{drops}", key.0, key.1));
            }
        }
        out.join(" ")
    }
}

fn run_scenario(env: &Env, s: &Scenario) -> Row {
    eprintln!("== {} ({})", s.name, s.what);
    let mut topo = env.topo("bench", &s.wans);
    let (rtr, con, lan, srv) = (
        topo.rtr.clone(),
        topo.con.clone(),
        topo.lan.clone(),
        topo.srv.clone(),
    );
    let mut row = Row {
        name: s.name,
        what: s.what,
        rate_sum: s.wans.iter().map(|w| w.rate_mbit).sum(),
        ..Row::default()
    };
    // Baselines: each link alone, then MPTCP over all of them. BENCH_BRAIDD_ONLY=1
    // skips them (tuning runs; the table's baseline columns then read 0).
    let baselines = std::env::var_os("BENCH_BRAIDD_ONLY").is_none();
    for i in (0..s.wans.len()).filter(|_| baselines) {
        let bind = lab::wan_router_addr(i);
        let (r, spread) = median_of(
            env.repeat,
            || {
                let (r, _) = iperf_tcp(
                    &mut topo,
                    &con,
                    &rtr,
                    &wan_conc_addr(i),
                    &[],
                    &["-B", &bind],
                    env.secs,
                );
                eprintln!(
                    "  single TCP over wan{i}: {:.2} Mbit/s, {} retransmits",
                    r.bps / 1e6,
                    r.retransmits
                );
                r
            },
            |r| r.bps,
        );
        row.single.push((r.bps, spread));
    }
    if baselines {
        topo.mptcp_on();
        let ((r, retx), spread) = median_of(
            env.repeat,
            || {
                let (r, retx) = iperf_tcp(
                    &mut topo,
                    &con,
                    &rtr,
                    &wan_conc_addr(0),
                    &["mptcpize", "run"],
                    &[],
                    env.secs,
                );
                eprintln!(
                    "  MPTCP: {:.2} Mbit/s, {}/{} segments retransmitted",
                    r.bps / 1e6,
                    retx.1,
                    retx.0
                );
                (r, retx)
            },
            |(r, _)| r.bps,
        );
        topo.mptcp_off();
        row.mptcp = r;
        row.mptcp_spread = spread;
        row.mptcp_retx = retx;
    }

    // braidd.
    let lem0 = lem_lateness(&topo.linkem(&env.linkem, &["stats"]));
    topo.start_braidd(&env.braidd, "redundant_ports = [5060]");
    let _ = wait_until(Duration::from_secs(5), || {
        let st = lab::status(&env.braidd, &topo.router_sock());
        (0..s.wans.len())
            .all(|i| lab::path_field(&st, &format!("wan{i}"), "state").as_deref() == Some("up"))
    });
    row.idle = Some(probe(
        &lan,
        &srv,
        SERVER,
        7000,
        50,
        160,
        Duration::from_secs(5),
    ));
    let secs = env.secs;
    let trace_at = TraceAt {
        router: topo.router_sock(),
        conc: topo.conc_sock(),
        lem: topo.lem.as_ref().map(|(_, s)| s.clone()),
        client: lan.clone(),
    };
    // A router in service has carried traffic on its paths, and a path keeps
    // its rate estimate while idle. Fresh from the handshake every path is at
    // 2 Mbit/s: the first TCP flow then meets braidd's pacers while both are
    // in slow start, and cubic's HyStart reads the backlog as congestion and
    // leaves slow start at a quarter of the pipe (S1: ssthresh 44 packets of
    // 164; 28.4 Mbit/s over 20 s against 34.8 warm). BENCH_COLD=1 measures
    // that first flow instead.
    if std::env::var_os("BENCH_COLD").is_none() {
        let b = format!("{:.1}M", row.rate_sum * 0.85);
        let w = iperf_udp(&mut topo, &srv, &lan, 5203, &b, 4, 0);
        eprintln!(
            "  warm-up: UDP at {b} for 4 s, {:.1} Mbit/s received",
            w.bps / 1e6
        );
    }
    // linkem's lateness is over braidd's runs; of the TCP runs, the median
    // one's only: every TCP run's adds to `lem_tcp_all`, all but the median's
    // come off below.
    let mut lem_tcp_all = (0, 0);
    let ((tcp, retx, reorder, loaded, lem_tcp), spread) = median_of(
        env.repeat,
        || {
            let stats_a = topo.linkem(&env.linkem, &["stats"]);
            if tracing() {
                eprintln!("--- before TCP: linkem\n{stats_a}");
                let conc = lab::status(&env.braidd, &topo.conc_sock());
                eprintln!("--- before TCP: concentrator\n{conc}");
            }
            let lem_a = lem_lateness(&stats_a);
            let ((tcp, retx, reorder), loaded) = std::thread::scope(|sc| {
                let lab = &mut topo.lab;
                let (lan2, srv2) = (lan.clone(), srv.clone());
                let h = sc.spawn(move || {
                    let before = lab::tcp_segments(&lan2);
                    let reo = lab::reorder_counters(&lan2);
                    let t = secs.to_string();
                    let r =
                        lab::iperf3(lab, &srv2, &lan2, SERVER, 5201, &[], &["-t", &t, "-O", "2"]);
                    let after = lab::tcp_segments(&lan2);
                    let reo2 = lab::reorder_counters(&lan2);
                    (
                        r,
                        (after.0 - before.0, after.1 - before.1),
                        (reo2.0 - reo.0, reo2.1 - reo.1),
                    )
                });
                let trace = trace_paths(sc, env, &trace_at, secs + 2);
                // The probe runs while the flow is past its start-up (-O 2 s) and
                // stops before its end.
                std::thread::sleep(Duration::from_secs(3));
                let p = probe(
                    &lan,
                    &srv,
                    SERVER,
                    7001,
                    50,
                    160,
                    Duration::from_secs(secs.saturating_sub(2).max(3)),
                );
                if let Some(t) = trace {
                    t.join().unwrap();
                }
                (h.join().unwrap(), p)
            });
            let lem_b = lem_lateness(&topo.linkem(&env.linkem, &["stats"]));
            let lem = (lem_b.0 - lem_a.0, lem_b.1 - lem_a.1);
            lem_tcp_all = (lem_tcp_all.0 + lem.0, lem_tcp_all.1 + lem.1);
            eprintln!(
                "  braidd TCP: {:.2} Mbit/s, {}/{} segments retransmitted",
                tcp.bps / 1e6,
                retx.1,
                retx.0
            );
            (tcp, retx, reorder, loaded, lem)
        },
        |(tcp, ..)| tcp.bps,
    );
    row.tcp = tcp;
    row.tcp_spread = spread;
    row.tcp_retx = retx;
    row.tcp_reorder = reorder;
    row.loaded = Some(loaded);
    if tracing() {
        // Counters as the TCP run left them (the UDP run below adds its own).
        eprintln!(
            "--- after TCP: linkem\n{}",
            topo.linkem(&env.linkem, &["stats"])
        );
        for (sock, what) in [
            (topo.router_sock(), "router"),
            (topo.conc_sock(), "concentrator"),
        ] {
            eprintln!("--- after TCP: {what}\n{}", lab::status(&env.braidd, &sock));
        }
    }
    row.udp_offered = row.rate_sum * 0.85;
    let b = format!("{:.1}M", row.udp_offered);
    let rcvbuf0 = rcvbuf_errors(&srv);
    // As long as the TCP run, and like it without its first 2 s: a path that
    // carried no TCP (S3's and S4's far ones) starts at 2 Mbit/s and needs a
    // few of its round trips to find its rate (S4's satellite: about 2.5 s).
    row.udp = std::thread::scope(|sc| {
        let trace = trace_paths(sc, env, &trace_at, env.secs + 2);
        let r = iperf_udp(&mut topo, &srv, &lan, 5202, &b, env.secs, 2);
        if let Some(t) = trace {
            t.join().unwrap();
        }
        r
    });
    row.udp_rcvbuf_errors = rcvbuf_errors(&srv).saturating_sub(rcvbuf0);
    eprintln!(
        "  braidd UDP at {b}: {:.2} Mbit/s received, {:.2}% lost ({} at the server's full socket)",
        row.udp.bps / 1e6,
        row.udp.lost_percent,
        row.udp_rcvbuf_errors
    );
    if tracing() {
        eprintln!("--- linkem\n{}", topo.linkem(&env.linkem, &["stats"]));
        let snmp = lab::exec(&srv, &["cat", "/proc/net/snmp"]);
        let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
        eprintln!("--- server UDP counters\n{}", udp.join("\n"));
        for (ns, what) in [(&rtr, "router"), (&con, "concentrator")] {
            eprintln!("--- {what} links\n{}", lab::exec(ns, &["ip", "-s", "link"]));
        }
    }
    let lem1 = lem_lateness(&topo.linkem(&env.linkem, &["stats"]));
    row.lem_late = (
        lem1.0 - lem0.0 - (lem_tcp_all.0 - lem_tcp.0),
        lem1.1 - lem0.1 - (lem_tcp_all.1 - lem_tcp.1),
    );
    row.hwm_kib = topo.router_hwm_kib();
    let st = lab::status(&env.braidd, &topo.router_sock());
    row.reorder = st
        .lines()
        .filter(|l| l.starts_with("reorder aggregate"))
        .collect();
    eprintln!("{st}");
    let cst = lab::status(&env.braidd, &topo.conc_sock());
    row.conc_reorder = cst
        .lines()
        .filter(|l| l.starts_with("reorder aggregate") || l.starts_with("release aggregate"))
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!("--- concentrator\n{cst}");
    row
}

fn pct(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}%", 100.0 * a / b)
    } else {
        "-".into()
    }
}

/// A bit rate in Mbit/s; of several runs (the median's) with their range, as
/// `36.1 (35.2–36.4, n=3)`.
fn mbit(bps: f64, s: Spread) -> String {
    let m = format!("{:.1}", bps / 1e6);
    if s.n > 1 {
        format!("{m} ({:.1}–{:.1}, n={})", s.lo / 1e6, s.hi / 1e6, s.n)
    } else {
        m
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| scenario | single TCP, best link | MPTCP end to end | braidd TCP | braidd ÷ link rates | braidd ÷ Σ single-TCP | retransmitted segments (MPTCP / braidd) | braidd: reorder events / spurious retransmits (D-SACK) | braidd UDP received (loss) | probe p95 idle → loaded (ms) | added p95 (ms) | router VmHWM | linkem frames > 1 ms late |");
    let _ = writeln!(
        t,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let (best, best_spread) = r.single.iter().copied().fold(
            (0.0, Spread::default()),
            |b, l| if l.0 > b.0 { l } else { b },
        );
        let sum_single: f64 = r.single.iter().map(|l| l.0).sum();
        let mut of_rates = pct(r.tcp.bps / 1e6, r.rate_sum);
        if r.tcp_spread.n > 1 {
            let (lo, hi) = (r.tcp_spread.lo / 1e6, r.tcp_spread.hi / 1e6);
            let _ = write!(
                of_rates,
                " ({}–{})",
                pct(lo, r.rate_sum),
                pct(hi, r.rate_sum)
            );
        }
        let (idle, loaded) = (
            r.idle.as_ref().and_then(|p| p.quantile(0.95)),
            r.loaded.as_ref().and_then(|p| p.quantile(0.95)),
        );
        let added = match (idle, loaded) {
            (Some(i), Some(l)) => format!("{:.1}", (l.as_secs_f64() - i.as_secs_f64()) * 1e3),
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "| {} ({}) | {} | {} ({}) | {} | {} | {} | {} / {} | {} / {} | {:.1} of {:.1} ({:.2}%) | {} → {} | {} | {} | {} |",
            r.name,
            r.what,
            mbit(best, best_spread),
            mbit(r.mptcp.bps, r.mptcp_spread),
            pct(r.mptcp.bps / 1e6, r.rate_sum),
            mbit(r.tcp.bps, r.tcp_spread),
            of_rates,
            pct(r.tcp.bps, sum_single),
            pct(r.mptcp_retx.1 as f64, r.mptcp_retx.0 as f64),
            pct(r.tcp_retx.1 as f64, r.tcp_retx.0 as f64),
            r.tcp_reorder.0,
            r.tcp_reorder.1,
            r.udp.bps / 1e6,
            r.udp_offered,
            r.udp.lost_percent,
            ms(idle),
            ms(loaded),
            added,
            r.hwm_kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            pct(r.lem_late.0 as f64, r.lem_late.1 as f64),
        );
    }
    t
}

// ---------------------------------------------------------------- failover

struct Failover {
    system: &'static str,
    bulk: lab::Bulk,
    aggregate: Probe,
    redundant: Option<Probe>,
    /// Time from the restore until wan0 carried data again (braidd only).
    back_in_use: Option<Duration>,
}

const CUT_AT: Duration = Duration::from_secs(10);
const RESTORE_AT: Duration = Duration::from_secs(20);
const F_LENGTH: Duration = Duration::from_secs(30);

/// Probe packets lost between the cut and the restore (plus the 1 s after).
fn lost_in_cut(p: &Probe, offset: Duration) -> usize {
    p.owd
        .iter()
        .zip(&p.sent_at)
        .filter(|(o, t)| {
            o.is_none()
                && **t + offset >= CUT_AT
                && **t + offset < RESTORE_AT + Duration::from_secs(1)
        })
        .count()
}

fn run_failover(env: &Env, braidd: bool) -> Failover {
    let s = &scenarios()[1];
    eprintln!("== F over S2, {}", if braidd { "braidd" } else { "MPTCP" });
    let mut topo = env.topo("fo", &s.wans);
    let (rtr, con, lan, srv) = (
        topo.rtr.clone(),
        topo.con.clone(),
        topo.lan.clone(),
        topo.srv.clone(),
    );
    let (src, dst, addr) = if braidd {
        topo.start_braidd(&env.braidd, "redundant_ports = [5060]");
        (lan.clone(), srv.clone(), SERVER.to_string())
    } else {
        topo.mptcp_on();
        (rtr.clone(), con.clone(), wan_conc_addr(0))
    };
    let _ = wait_until(Duration::from_secs(5), || {
        !braidd || {
            let st = lab::status(&env.braidd, &topo.router_sock());
            (0..2)
                .all(|i| lab::path_field(&st, &format!("wan{i}"), "state").as_deref() == Some("up"))
        }
    });
    let start = Instant::now();
    let probes = {
        let (src, dst, addr) = (src.clone(), dst.clone(), addr.clone());
        std::thread::spawn(move || {
            let agg = {
                let (src, dst, addr) = (src.clone(), dst.clone(), addr.clone());
                std::thread::spawn(move || probe(&src, &dst, &addr, 7000, 50, 160, F_LENGTH))
            };
            let red = if braidd {
                Some(probe(&src, &dst, &addr, 5060, 50, 160, F_LENGTH))
            } else {
                None
            };
            (agg.join().unwrap(), red)
        })
    };
    let offset = start.elapsed();
    let (mut cut, mut restored) = (false, None::<Instant>);
    let mut back_in_use = None;
    let mut last_poll = (Instant::now(), 0u64);
    let sock = topo.router_sock();
    let bulk = lab::bulk_tcp(
        &src,
        &dst,
        &addr,
        6000,
        !braidd,
        F_LENGTH,
        Duration::from_millis(100),
        |t| {
            if !cut && t >= CUT_AT {
                topo.set_wan(Some(&env.linkem), 0, false);
                cut = true;
            }
            if restored.is_none() && t >= RESTORE_AT {
                topo.set_wan(Some(&env.linkem), 0, true);
                restored = Some(Instant::now());
            }
            // After the restore: when did wan0 carry data again? Data means more
            // than 30 packets since the previous poll, 100 ms earlier (reports
            // and heartbeats are a few per 100 ms); the time is that poll's, an
            // upper bound.
            if let (true, Some(r), None) = (braidd, restored, back_in_use) {
                if last_poll.0.elapsed() >= Duration::from_millis(100) {
                    let st = lab::status(&env.braidd, &sock);
                    let sent: u64 = lab::path_field(&st, "wan0", "sent")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let now = Instant::now();
                    if last_poll.1 > 0 && last_poll.0 >= r && sent > last_poll.1 + 30 {
                        back_in_use = Some(now.duration_since(r));
                    }
                    last_poll = (now, sent);
                }
            }
        },
    );
    let (aggregate, redundant) = probes.join().unwrap();
    let _ = offset;
    if !braidd {
        topo.mptcp_off();
    } else {
        eprintln!("{}", lab::status(&env.braidd, &sock));
    }
    Failover {
        system: if braidd { "braidd" } else { "MPTCP end to end" },
        bulk,
        aggregate,
        redundant,
        back_in_use,
    }
}

fn failover_table(f: &[Failover]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| F: S2, wan0 (20 Mbit/s, 10 ms) cut at 10 s for 10 s | TCP longest gap (at) | TCP mean during cut | probe packets lost (longest run) | redundant-class probe lost during cut | wan0 back in use after restore |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
    for x in f {
        let b = &x.bulk;
        let bins_per_s = (1.0 / b.bin.as_secs_f64()) as usize;
        let cut_bins = &b.bins[(CUT_AT.as_secs() as usize * bins_per_s).min(b.bins.len())
            ..(RESTORE_AT.as_secs() as usize * bins_per_s).min(b.bins.len())];
        let during = cut_bins.iter().sum::<u64>() as f64 * 8.0 / 10.0 / 1e6;
        let (run, _) = x.aggregate.longest_loss();
        let _ = writeln!(
            t,
            "| {} | {:.0} ms ({:.1} s) | {:.1} Mbit/s | {} | {} | {} |",
            x.system,
            b.max_gap.as_secs_f64() * 1e3,
            b.max_gap_at.as_secs_f64(),
            during,
            if x.redundant.is_some() {
                format!(
                    "{} ({} = {:.0} ms)",
                    lost_in_cut(&x.aggregate, Duration::ZERO),
                    run,
                    x.aggregate.longest_loss_time().as_secs_f64() * 1e3
                )
            } else {
                // Plain UDP from the router to the concentrator's wan0 address
                // is not multipath: it says nothing about MPTCP.
                "- (UDP is not multipath)".into()
            },
            x.redundant
                .as_ref()
                .map_or("-".into(), |p| lost_in_cut(p, Duration::ZERO).to_string()),
            x.back_in_use
                .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        );
    }
    t
}

/// Throughput over time, one polyline per system, cut and restore marked.
fn svg(f: &[Failover]) -> String {
    let (w, h, l, b) = (800.0, 360.0, 60.0, 40.0);
    // The scale: the 99th percentile bin plus a quarter, to 5 Mbit/s; the rare
    // bin above it (a burst released after a stall) is clipped at the top.
    let mut all: Vec<f64> = f
        .iter()
        .flat_map(|x| {
            x.bulk
                .bins
                .iter()
                .map(|&v| v as f64 * 8.0 / x.bulk.bin.as_secs_f64() / 1e6)
        })
        .collect();
    all.sort_by(f64::total_cmp);
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(10.0);
    let max_mbit = ((p99 * 1.25 / 5.0).ceil() * 5.0).max(10.0);
    let secs = F_LENGTH.as_secs_f64() + 1.0;
    let x = |t: f64| l + t / secs * (w - l - 20.0);
    let y = |m: f64| h - b - m / max_mbit * (h - b - 20.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(s, "<text x=\"{l}\" y=\"14\">TCP goodput, 100 ms bins: S2 with wan0 cut at 10 s, restored at 20 s</text>");
    let _ = writeln!(
        s,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        x(secs),
        y(0.0)
    );
    let _ = writeln!(
        s,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>",
        y(0.0),
        y(max_mbit)
    );
    for m in (0..=max_mbit as u32).step_by(5) {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{m}</text>",
            l - 5.0,
            y(m as f64) + 4.0
        );
    }
    for t in (0..=F_LENGTH.as_secs()).step_by(5) {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{t} s</text>",
            x(t as f64),
            h - b + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\">Mbit/s</text>",
        h / 2.0,
        h / 2.0
    );
    for (t, label) in [(CUT_AT, "cut"), (RESTORE_AT, "restore")] {
        let xt = x(t.as_secs_f64());
        let _ = writeln!(s, "<line x1=\"{xt}\" y1=\"{}\" x2=\"{xt}\" y2=\"{}\" stroke=\"grey\" stroke-dasharray=\"4\"/><text x=\"{}\" y=\"{}\">{label}</text>", y(0.0), y(max_mbit), xt + 3.0, y(max_mbit) + 12.0);
    }
    for (i, (fx, colour)) in f.iter().zip(["#1f77b4", "#d62728", "#2ca02c"]).enumerate() {
        let pts: Vec<String> = fx
            .bulk
            .bins
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let t = (k as f64 + 0.5) * fx.bulk.bin.as_secs_f64();
                format!(
                    "{:.1},{:.1}",
                    x(t),
                    y((v as f64 * 8.0 / fx.bulk.bin.as_secs_f64() / 1e6).min(max_mbit))
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
            w - 200.0,
            34.0 + 14.0 * i as f64,
            fx.system
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `BENCH_REPEAT`: how many times each TCP measurement runs, 1 to 9; 1 when
/// unset or empty. Anything else ends the benchmark before it starts.
fn repeat_from_env() -> usize {
    let v = std::env::var_os("BENCH_REPEAT").unwrap_or_default();
    let v = v.to_string_lossy();
    if v.is_empty() {
        return 1;
    }
    match v.parse() {
        Ok(n @ 1..=9) => n,
        _ => {
            eprintln!("BENCH_REPEAT={v}: expected a number of runs from 1 to 9");
            std::process::exit(2);
        }
    }
}

/// Lets namespaces choose `cc`: outside the initial namespace only the
/// algorithms in `tcp_allowed_congestion_control` may be set, and a host whose
/// default is bbr may list only reno and bbr there (sysctl then fails with
/// "Operation not permitted" in every namespace). Exits with the available
/// list when the kernel has no such algorithm.
fn allow_cc(cc: &str) {
    const DIR: &str = "/proc/sys/net/ipv4";
    let read = |f: &str| std::fs::read_to_string(format!("{DIR}/{f}")).unwrap_or_default();
    let available = read("tcp_available_congestion_control");
    if !available.split_whitespace().any(|a| a == cc) {
        eprintln!(
            "BENCH_CC={cc}: the kernel offers {} (modprobe tcp_{cc} may add it)",
            available.trim()
        );
        std::process::exit(2);
    }
    let allowed = read("tcp_allowed_congestion_control");
    if !allowed.split_whitespace().any(|a| a == cc) {
        let list = format!("{} {cc}", allowed.trim());
        if let Err(e) = std::fs::write(format!("{DIR}/tcp_allowed_congestion_control"), &list) {
            eprintln!("BENCH_CC={cc}: cannot add it to {DIR}/tcp_allowed_congestion_control: {e}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |n: &str| args.is_empty() || args.iter().any(|a| a == n);
    let env = Env {
        braidd: std::env::var_os("BRAIDD").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_braidd")),
            PathBuf::from,
        ),
        linkem: PathBuf::from(
            std::env::var_os("LINKEM")
                .expect("LINKEM: path to the braid-linkem binary (ci/bench sets it)"),
        ),
        svg: std::env::var_os("BENCH_SVG").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../failover.svg"),
            PathBuf::from,
        ),
        secs: std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
        cc: std::env::var("BENCH_CC").ok().filter(|c| !c.is_empty()),
        repeat: repeat_from_env(),
    };
    if let Some(cc) = &env.cc {
        allow_cc(cc);
    }
    let mut rows = Vec::new();
    for s in scenarios().iter().filter(|s| want(s.name)) {
        rows.push(run_scenario(&env, s));
    }
    let mut fo = Vec::new();
    if want("F") {
        fo.push(run_failover(&env, true));
        fo.push(run_failover(&env, false));
    }
    println!(
        "braidd tunnel benchmark, {}, {} cores, {}, TCP congestion control {}{}\n",
        String::from_utf8_lossy(
            &std::process::Command::new("date")
                .args(["-u", "+%Y-%m-%d %H:%M UTC"])
                .output()
                .unwrap()
                .stdout
        )
        .trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l
                .strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_default(),
        env.cc_in_use(),
        if env.repeat > 1 {
            format!(", TCP figures of S1-S4 the median of {} runs", env.repeat)
        } else {
            String::new()
        }
    );
    if !rows.is_empty() {
        println!("{}", table(&rows));
        for r in &rows {
            println!("{} router {}", r.name, r.reorder);
            println!(
                "{} concentrator (after UDP) {}; server UDP socket overflows {}",
                r.name, r.conc_reorder, r.udp_rcvbuf_errors
            );
        }
        println!();
    }
    if !fo.is_empty() {
        println!("{}", failover_table(&fo));
        let svg = svg(&fo);
        let tmp = env.svg.with_extension("svg.tmp");
        std::fs::write(&tmp, svg).unwrap();
        std::fs::rename(&tmp, &env.svg).unwrap();
        println!("throughput plot: {}", env.svg.display());
    }
}
