//! Precision of the real emulator: each test builds its own namespaces
//!
//! ```text
//! ns A: a0 10.9.0.1/24  <-veth->  ns L: la  [braid-linkem]  lb  <-veth->  ns B: b0 10.9.0.2/24
//! ```
//!
//! runs the `braid-linkem` binary in ns L with `ip netns exec`, and measures
//! UDP traffic sent and received by threads that entered ns A and ns B with
//! setns. CLOCK_MONOTONIC is shared by all namespaces, so each packet carries
//! its send time and the receiver measures the exact one-way delay.
//!
//! Ignored by default: they need root, `ip` and `ethtool`. Run with
//! `cargo test --release -p braid-linkem --test precision -- --ignored --test-threads=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use braid_linkem::sys::{now as now_ns, realtime_offset};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const MS: f64 = 1e6;
/// UDP payload of every test packet.
const PAYLOAD: usize = 1000;
/// The Ethernet frame linkem counts for it: MAC 14 + IPv4 20 + UDP 8.
const FRAME: usize = PAYLOAD + 42;
const A_IP: &str = "10.9.0.1";
const B_IP: &str = "10.9.0.2";
const PORT: u16 = 9000;

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test topology and its linkem; everything is removed on drop, panics included.
struct Lab {
    ns: [String; 3],
    child: Option<Child>,
    lines: Mutex<Option<Receiver<String>>>,
    dir: tempfile::TempDir,
    ready_at: u64,
}

impl Lab {
    /// Builds the namespaces and starts linkem with `config` (a `[[path]]`
    /// named "wan0" on la/lb is the caller's job, plus any events).
    fn new(test: &str, config: &str) -> Lab {
        assert!(
            nix::unistd::geteuid().is_root(),
            "precision tests need root (namespaces, packet sockets)"
        );
        assert!(
            Command::new("ethtool")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "ethtool is needed (apt-get install ethtool)"
        );
        let pid = std::process::id();
        let ns = ["a", "l", "b"].map(|s| format!("lem-{pid}-{test}-{s}"));
        let mut lab = Lab {
            ns: ns.clone(),
            child: None,
            lines: Mutex::new(None),
            dir: tempfile::tempdir().unwrap(),
            ready_at: 0,
        };
        for n in &ns {
            sh(&["ip", "netns", "add", n]);
            sh(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ]);
            sh(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let [na, nl, nb] = [&ns[0], &ns[1], &ns[2]];
        let (mac_a, mac_b) = ("02:00:00:00:00:0a", "02:00:00:00:00:0b");
        sh(&[
            "ip", "-n", na, "link", "add", "a0", "address", mac_a, "type", "veth", "peer", "name",
            "la", "netns", nl,
        ]);
        sh(&[
            "ip", "-n", nb, "link", "add", "b0", "address", mac_b, "type", "veth", "peer", "name",
            "lb", "netns", nl,
        ]);
        for (n, dev) in [(na, "a0"), (nl, "la"), (nl, "lb"), (nb, "b0")] {
            sh(&[
                "ip", "netns", "exec", n, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro",
                "off",
            ]);
            sh(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        sh(&[
            "ip",
            "-n",
            na,
            "addr",
            "add",
            &format!("{A_IP}/24"),
            "dev",
            "a0",
        ]);
        sh(&[
            "ip",
            "-n",
            nb,
            "addr",
            "add",
            &format!("{B_IP}/24"),
            "dev",
            "b0",
        ]);
        // Static neighbours: no ARP through the emulated link, no first-packet delay.
        sh(&[
            "ip",
            "-n",
            na,
            "neigh",
            "replace",
            B_IP,
            "lladdr",
            mac_b,
            "dev",
            "a0",
            "nud",
            "permanent",
        ]);
        sh(&[
            "ip",
            "-n",
            nb,
            "neigh",
            "replace",
            A_IP,
            "lladdr",
            mac_a,
            "dev",
            "b0",
            "nud",
            "permanent",
        ]);

        let cfg = lab.dir.path().join("lem.toml");
        std::fs::write(&cfg, config).unwrap();
        let stderr = File::create(lab.dir.path().join("stderr")).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                nl,
                env!("CARGO_BIN_EXE_braid-linkem"),
                "run",
                "--config",
            ])
            .arg(&cfg)
            .arg("--control")
            .arg(lab.sock())
            // These tests measure the model's schedule as kept by the shell,
            // not the machine's other load: see `realtime`.
            .args(["--priority", &test_priority().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        lab.child = Some(child);
        let out = lab.child.as_mut().and_then(|c| c.stdout.take()).unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(10));
        lab.ready_at = now_ns();
        assert_eq!(
            line.as_deref(),
            Ok("linkem: ready"),
            "linkem did not become ready: {}",
            lab.stderr()
        );
        lab.lines = Mutex::new(Some(rx));
        lab
    }

    fn sock(&self) -> std::path::PathBuf {
        self.dir.path().join("ctl.sock")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Runs `braid-linkem ctl` and returns its output.
    fn ctl(&self, words: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_braid-linkem"))
            .arg("ctl")
            .arg(self.sock())
            .args(words.split_whitespace())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ctl {words}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// A UDP socket bound in namespace `ns` (0 = A, 2 = B).
    fn socket(&self, ns: usize, addr: &str) -> UdpSocket {
        let path = format!("/run/netns/{}", self.ns[ns]);
        let addr: SocketAddr = addr.parse().unwrap();
        thread::spawn(move || {
            let f = File::open(&path).unwrap();
            setns(&f, CloneFlags::CLONE_NEWNET).unwrap();
            let s = UdpSocket::bind(addr).unwrap();
            // Room for a whole test's worth of packets if the receiver lags.
            let _ = nix::sys::socket::setsockopt(
                &s,
                nix::sys::socket::sockopt::RcvBufForce,
                &(8 << 20),
            );
            s
        })
        .join()
        .unwrap()
    }

    /// SIGTERM, then the final stats printed by linkem (and its exit status).
    fn stop(&mut self) -> (bool, Vec<String>) {
        let mut child = self.child.take().unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_deadline(&mut child, Duration::from_secs(5))
            .expect("linkem did not exit on SIGTERM");
        let lines: Vec<String> = self.lines.lock().unwrap().take().unwrap().iter().collect();
        (status.success(), lines)
    }
}

fn wait_deadline(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            if wait_deadline(&mut c, Duration::from_secs(2)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if thread::panicking() {
            eprintln!("linkem stderr:\n{}", self.stderr());
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs the calling thread at SCHED_FIFO, like linkem here (`--priority
/// 10`): the stamps taken here are then as prompt as linkem's own wake-ups,
/// and a busy machine (a shared CI host, a kernel build) does not show up as
/// emulator error. At these tests' packet rates the real-time threads leave
/// the CPUs idle most of the time, so the kernel's own network work
/// (ksoftirqd) is not starved; see linkem's README for where that changes.
/// Tests that run without the privilege still run.
fn realtime() {
    let prio = test_priority();
    if prio == 0 {
        return;
    }
    if let Err(e) = braid_linkem::sys::set_fifo(prio) {
        eprintln!("precision: cannot use SCHED_FIFO ({e}); timing is the normal scheduler's");
    }
}

/// The SCHED_FIFO priority of linkem and of the test threads:
/// `LINKEM_TEST_PRIORITY` (0 for the normal scheduler), 10 by default.
fn test_priority() -> u8 {
    std::env::var("LINKEM_TEST_PRIORITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// What the receiver saw of one packet.
#[derive(Clone, Copy, Debug)]
struct Rx {
    seq: u64,
    sent: u64,
    recv: u64,
}

impl Rx {
    fn owd(&self) -> f64 {
        (self.recv - self.sent) as f64
    }
}

/// Sends `count` packets at `pps` from `from` to `to` (paced on absolute
/// times: bursts after a late wake-up, no drift), while `rx` receives.
fn send(sock: &UdpSocket, to: &str, pps: f64, count: u64, sent: &AtomicU64) {
    realtime();
    let start = now_ns();
    let gap = 1e9 / pps;
    let mut buf = [0u8; PAYLOAD];
    for seq in 0..count {
        let due = start + (seq as f64 * gap) as u64;
        let t = now_ns();
        if due > t {
            thread::sleep(Duration::from_nanos(due - t));
        }
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
        sock.send_to(&buf, to).unwrap();
        sent.store(seq + 1, Ordering::Release);
    }
}

/// Receives until every sent packet arrived, or `idle` passed without a
/// packet after the sender finished (`done`), or the hard `limit`.
fn receive(
    sock: &UdpSocket,
    done: &AtomicBool,
    sent: &AtomicU64,
    idle: Duration,
    limit: Duration,
) -> Vec<Rx> {
    realtime();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // Kernel receive stamps: when the frame came out of linkem, not when this
    // thread got around to reading it.
    braid_linkem::sys::enable_rx_stamps(sock).unwrap();
    let end = Instant::now() + limit;
    let mut last = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, recv)) = braid_linkem::sys::recv_stamped(sock, &mut buf, realtime_offset()) {
            if n >= 16 {
                out.push(Rx {
                    seq: u64::from_le_bytes(buf[..8].try_into().unwrap()),
                    sent: u64::from_le_bytes(buf[8..16].try_into().unwrap()),
                    recv,
                });
                last = Instant::now();
            }
        }
        if done.load(Ordering::Acquire) {
            if out.len() as u64 >= sent.load(Ordering::Acquire) || last.elapsed() > idle {
                return out;
            }
        } else {
            last = Instant::now();
        }
    }
    panic!("receiver hit its {limit:?} limit");
}

/// Runs one A->B (`up`) or B->A (`down`) stream at `pps` for `count`
/// packets; `during` runs alongside, with the count of packets sent so far.
/// Returns what arrived and how many were sent.
fn run_stream_with(
    lab: &Lab,
    up: bool,
    pps: f64,
    count: u64,
    during: impl FnOnce(&AtomicU64) + Send,
) -> (Vec<Rx>, u64) {
    let (src, dst, dst_ip) = if up { (0, 2, B_IP) } else { (2, 0, A_IP) };
    let tx = lab.socket(src, "0.0.0.0:0");
    let rx = lab.socket(dst, &format!("0.0.0.0:{PORT}"));
    let to = format!("{dst_ip}:{PORT}");
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let limit = Duration::from_secs_f64(count as f64 / pps + 10.0);
    thread::scope(|s| {
        let r = s.spawn(|| receive(&rx, &done, &sent, Duration::from_millis(300), limit));
        let d = s.spawn(|| during(&sent));
        send(&tx, &to, pps, count, &sent);
        done.store(true, Ordering::Release);
        d.join().unwrap();
        (r.join().unwrap(), sent.load(Ordering::Acquire))
    })
}

fn run_stream(lab: &Lab, up: bool, pps: f64, count: u64) -> (Vec<Rx>, u64) {
    run_stream_with(lab, up, pps, count, |_| {})
}

/// Waits (bounded) until the sender has sent `n` packets.
fn wait_sent(sent: &AtomicU64, n: u64) {
    let end = Instant::now() + Duration::from_secs(10);
    while sent.load(Ordering::Acquire) < n {
        assert!(Instant::now() < end, "sender stalled below {n} packets");
        thread::sleep(Duration::from_millis(1));
    }
}

/// The value of `key` on the stats line of direction `dir` of wan0.
fn stat(lines: &str, dir: &str, key: &str) -> String {
    let line = lines
        .lines()
        .find(|l| l.starts_with(&format!("path=wan0 dir={dir} ")))
        .unwrap_or_else(|| panic!("no stats line for {dir} in {lines:?}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_owned()
}

fn stat_u64(lines: &str, dir: &str, key: &str) -> u64 {
    stat(lines, dir, key).parse().unwrap()
}

/// Serialisation time of one test frame at `rate` bits/s, in ns.
fn ser(rate: f64) -> f64 {
    FRAME as f64 * 8.0 / rate * 1e9
}

fn pps_for(bits_per_sec: f64) -> f64 {
    bits_per_sec / (FRAME as f64 * 8.0)
}

/// Receive rate in frame bits/s over the received packets (first to last arrival).
fn frame_rate(rx: &[Rx]) -> f64 {
    assert!(rx.len() > 100, "only {} packets arrived", rx.len());
    let span = (rx[rx.len() - 1].recv - rx[0].recv) as f64 / 1e9;
    (rx.len() - 1) as f64 * FRAME as f64 * 8.0 / span
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// linkem's own lateness in direction `dir`: (mean ms, max ms, frames over 1 ms).
fn lateness(stats: &str, dir: &str) -> (f64, f64, u64) {
    (
        stat(stats, dir, "late_ms").parse().unwrap(),
        stat(stats, dir, "late_max_ms").parse().unwrap(),
        stat_u64(stats, dir, "late_over_1ms"),
    )
}

/// Checks the late tail of one-way delays `owd` (ns) against the model's
/// `bound`: at most a `share` of the frames may be over `bound` + `slack`,
/// besides those linkem itself reported over 1 ms late; and none over the
/// bound + 10 ms + linkem's largest lateness.
///
/// Both clocks of a delay are the kernel's (send stamp just before sendto,
/// kernel receive stamp), and linkem takes arrivals from kernel stamps, so
/// what lies beyond the model is linkem's departure lateness, which it
/// counts (`late_*` in its stats). On a machine that is otherwise idle that
/// is under 1 ms for every frame. On a busy host (a hypervisor's steal time
/// was seen to add 5-20 ms to a few % of frames) the frames linkem knows it
/// sent late are not the model's error, and are let through; frames late
/// without linkem knowing are.
fn assert_tail(owd: &[f64], bound: f64, slack: f64, share: f64, stats: &str) {
    let (_, late_max, late_frames) = lateness(stats, "up");
    // A shell that is late most of the time is broken (or the machine far
    // too busy to measure anything on), whatever it reports.
    assert!(
        late_frames * 4 <= owd.len() as u64,
        "linkem reports {late_frames} of {} frames over 1 ms late\n{stats}",
        owd.len()
    );
    let over = owd.iter().filter(|&&d| d > bound + slack).count() as u64;
    let allowed = (owd.len() as f64 * share).floor() as u64 + late_frames;
    assert!(
        over <= allowed,
        "{over} of {} frames over {:.3} ms (allowed {allowed}: {late_frames} reported late by linkem)\n{stats}",
        owd.len(),
        (bound + slack) / MS
    );
    let max = owd.iter().copied().fold(0.0, f64::max);
    assert!(
        max <= bound + 10.0 * MS + late_max * MS,
        "max {:.3} ms\n{stats}",
        max / MS
    );
}

fn assert_in_order(rx: &[Rx]) {
    for w in rx.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "reordered: {} before {}",
            w[0].seq,
            w[1].seq
        );
    }
}

fn path(up: &str, down: &str) -> String {
    format!(
        "[[path]]\nname = \"wan0\"\na = \"la\"\nb = \"lb\"\nup = {{ {up} }}\ndown = {{ {down} }}\n"
    )
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn rate_is_within_3_percent() {
    let lab = Lab::new(
        "rate",
        &path(r#"rate = "20mbit", delay = "5ms""#, r#"rate = "20mbit""#),
    );
    // 1.5x overload for 2 s: the link is busy all the time.
    let (rx, sent) = run_stream(&lab, true, pps_for(30e6), pps_for(30e6) as u64 * 2);
    let rate = frame_rate(&rx);
    eprintln!(
        "rate: {:.3} Mbit/s (frames), {} of {sent} packets",
        rate / 1e6,
        rx.len()
    );
    assert!((rate / 20e6 - 1.0).abs() < 0.03, "rate {rate}");
    assert_in_order(&rx);
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn delay_is_within_2_percent_at_low_load() {
    let lab = Lab::new("delay", &path(r#"rate = "100mbit", delay = "30ms""#, ""));
    // 2 s of packets: one stall of the VM (seen once in CI: p90 +1.4 ms over
    // a 0.6 s stream) then touches well under the 10% that would move p90.
    let (rx, sent) = run_stream(&lab, true, 500.0, 1000);
    assert_eq!(rx.len() as u64, sent, "packets lost at low load");
    assert_in_order(&rx);
    let want = 30.0 * MS + ser(100e6);
    let mut owd: Vec<f64> = rx.iter().map(Rx::owd).collect();
    let (min, p50, p99, max) = (
        percentile(&mut owd, 0.0),
        percentile(&mut owd, 0.5),
        percentile(&mut owd, 0.99),
        percentile(&mut owd, 1.0),
    );
    eprintln!(
        "delay: want {:.3} ms; OWD min {:.3} p50 {:.3} p99 {:.3} max {:.3} ms",
        want / MS,
        min / MS,
        p50 / MS,
        p99 / MS,
        max / MS
    );
    // Never early (the model schedules exactly; the shell can only be late).
    assert!(min >= want - 0.05 * MS, "early: {min}");
    // Median within 0.3 ms, p90 within 2 % (beside frames linkem reports
    // late: see assert_tail).
    assert!((p50 - want).abs() <= 0.3 * MS, "p50 {p50}");
    let stats = lab.ctl("stats");
    assert_tail(&owd, want, 0.02 * want, 0.1, &stats);
    assert_tail(&owd, want, 1.0 * MS, 0.01, &stats);
    // linkem's own lateness stat is a part of what the receiver saw: every
    // frame left linkem at least `want` after it was sent, plus its lateness.
    let (late_mean, late_max, _) = lateness(&stats, "up");
    eprintln!("delay: linkem lateness mean {late_mean:.3} max {late_max:.3} ms");
    assert!(late_max * MS <= max - want + 0.01 * MS, "{stats}");
    assert!(late_mean <= late_max, "{stats}");
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn jitter_spreads_delay_without_reordering() {
    let lab = Lab::new("jitter", &path(r#"delay = "20ms", jitter = "5ms""#, ""));
    let (rx, sent) = run_stream(&lab, true, 200.0, 400);
    assert_eq!(rx.len() as u64, sent, "packets lost");
    assert_in_order(&rx);
    let mut owd: Vec<f64> = rx.iter().map(Rx::owd).collect();
    let mean = owd.iter().sum::<f64>() / owd.len() as f64;
    let (min, p10, p90, max) = (
        percentile(&mut owd, 0.0),
        percentile(&mut owd, 0.1),
        percentile(&mut owd, 0.9),
        percentile(&mut owd, 1.0),
    );
    eprintln!(
        "jitter: OWD min {:.3} p10 {:.3} mean {:.3} p90 {:.3} max {:.3} ms",
        min / MS,
        p10 / MS,
        mean / MS,
        p90 / MS,
        max / MS
    );
    // Uniform in [15, 25] ms, pushed up a little where a frame waits for the
    // previous one (5 ms apart, order kept).
    assert!(min >= 15.0 * MS - 0.05 * MS, "min {min}");
    let stats = lab.ctl("stats");
    assert_tail(&owd, 25.0 * MS, 1.0 * MS, 0.01, &stats);
    assert!(
        p10 < 17.5 * MS && p90 > 22.5 * MS,
        "spread p10 {p10} p90 {p90}"
    );
    // The mean, less what linkem reports it added by waking late.
    let (late_mean, _, _) = lateness(&stats, "up");
    let model_mean = mean - late_mean * MS;
    assert!(
        (19.5 * MS..21.5 * MS).contains(&model_mean),
        "mean {mean}, {late_mean} ms of it linkem's lateness"
    );
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn loss_5_percent_within_statistical_bounds() {
    let mut lab = Lab::new(
        "loss",
        &path(r#"rate = "100mbit", delay = "1ms", loss = "5%""#, ""),
    );
    let (rx, sent) = run_stream(&lab, true, 4000.0, 4000);
    assert_in_order(&rx);
    let lost = sent - rx.len() as u64;
    let frac = lost as f64 / sent as f64;
    eprintln!("loss: {lost} of {sent} = {:.2} %", frac * 100.0);
    // 5 % of 4000: mean 200, sd 13.8; 3.5-6.5 % is over 4 sd either side.
    assert!((0.035..=0.065).contains(&frac), "loss {frac}");
    // Every loss is the model's: nothing else dropped a packet.
    let (ok, out) = lab.stop();
    assert!(ok, "linkem exit status");
    let out = out.join("\n");
    assert!(out.contains("linkem: final stats"), "{out}");
    assert_eq!(stat_u64(&out, "up", "drop_loss"), lost, "{out}");
    assert_eq!(stat_u64(&out, "up", "in_frames"), sent, "{out}");
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn queue_limit_bounds_queuing_delay() {
    let lab = Lab::new(
        "queue",
        &path(r#"rate = "10mbit", delay = "10ms", limit = "20ms""#, ""),
    );
    // 2x overload for 1 s: the queue fills and stays full.
    let (rx, _) = run_stream(&lab, true, pps_for(20e6), pps_for(20e6) as u64);
    assert_in_order(&rx);
    let mut owd: Vec<f64> = rx.iter().map(Rx::owd).collect();
    let (p50, p99, max) = (
        percentile(&mut owd, 0.5),
        percentile(&mut owd, 0.99),
        percentile(&mut owd, 1.0),
    );
    // Queue (20 ms) + the frame in service + its own serialisation + delay.
    let bound = 10.0 * MS + 20.0 * MS + 2.0 * ser(10e6);
    eprintln!(
        "queue: OWD p50 {:.3} p99 {:.3} max {:.3} ms; model bound {:.3} ms",
        p50 / MS,
        p99 / MS,
        max / MS,
        bound / MS
    );
    // End to end, p99 within 1.5 ms of the bound (see assert_tail); the
    // model's own queue delay, exact, is checked on linkem's stats below.
    let stats = lab.ctl("stats");
    assert_tail(&owd, bound, 1.5 * MS, 0.01, &stats);
    assert!(p50 >= bound - 3.0 * MS, "queue never filled: p50 {p50}");
    assert!(stat_u64(&stats, "up", "drop_queue") > 0, "{stats}");
    let qmax: f64 = stat(&stats, "up", "queue_max_ms").parse().unwrap();
    assert!(qmax <= 20.0 + ser(10e6) / MS, "{stats}");
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn cut_drops_everything_and_restore_brings_it_back() {
    let mut lab = Lab::new("cut", &path(r#"rate = "100mbit", delay = "5ms""#, ""));
    let mut times = [0u64; 4];
    let (rx, sent) = run_stream_with(&lab, true, 1000.0, 1200, |sent| {
        wait_sent(sent, 300);
        times[0] = now_ns();
        assert_eq!(lab.ctl("cut wan0 up").trim(), "ok");
        times[1] = now_ns();
        wait_sent(sent, 700);
        times[2] = now_ns();
        assert_eq!(lab.ctl("restore wan0 up").trim(), "ok");
        times[3] = now_ns();
    });
    assert_in_order(&rx);
    let [cut0, cut1, res0, res1] = times;
    let through = |from: u64, to: u64| rx.iter().filter(|r| r.sent >= from && r.sent < to).count();
    eprintln!(
        "cut: {} of {sent} arrived; during the cut {} arrived",
        rx.len(),
        through(cut1, res0)
    );
    // Nothing sent during the cut arrives, nor what was in flight at the cut.
    assert_eq!(through(cut1, res0), 0);
    assert_eq!(
        rx.iter()
            .filter(|r| r.recv >= cut1 && r.recv < res0)
            .count(),
        0
    );
    // Everything sent well before the cut and after the restore arrives.
    let before: Vec<&Rx> = rx.iter().filter(|r| r.sent + 10_000_000 < cut0).collect();
    assert!(
        before.len() > 250,
        "{} packets before the cut",
        before.len()
    );
    assert_eq!(
        before[before.len() - 1].seq as usize + 1,
        before.len(),
        "a packet sent before the cut was lost"
    );
    let after: Vec<&Rx> = rx.iter().filter(|r| r.sent >= res1).collect();
    assert!(!after.is_empty());
    let last = after[after.len() - 1];
    assert_eq!(last.seq + 1, sent, "the last packet arrived");
    assert_eq!(
        (last.seq - after[0].seq + 1) as usize,
        after.len(),
        "a packet sent after the restore was lost"
    );
    let stats = lab.ctl("stats");
    assert!(stat_u64(&stats, "up", "drop_cut") > 300, "{stats}");
    assert_eq!(stat(&stats, "up", "state"), "up");
    let (ok, _) = lab.stop();
    assert!(ok);
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn scripted_event_applies_at_its_time() {
    let config = format!(
        "{}\n[[event]]\nat = \"600ms\"\npath = \"wan0\"\naction = \"delay\"\ndirection = \"up\"\ndelay = \"40ms\"\n",
        path(r#"rate = "100mbit", delay = "10ms""#, r#"rate = "100mbit", delay = "10ms""#)
    );
    let lab = Lab::new("event", &config);
    let (rx, sent) = run_stream(&lab, true, 500.0, 600);
    assert_eq!(rx.len() as u64, sent);
    assert_in_order(&rx);
    // linkem is never early, so every packet after the change is at 40 ms or
    // more (one before it would need a 25 ms scheduling stall to pass 35 ms).
    let k = rx
        .iter()
        .position(|r| r.owd() > 35.0 * MS)
        .expect("the delay never changed");
    assert!(k > 0 && rx[..k].iter().all(|r| r.owd() < 35.0 * MS));
    assert!(rx[k..].iter().all(|r| r.owd() > 39.9 * MS));
    // The change applies to frames arriving after it: between the last old
    // and the first new one (2 ms apart).
    let at = (rx[k].sent as f64 - lab.ready_at as f64) / MS;
    let before = (rx[k - 1].sent as f64 - lab.ready_at as f64) / MS;
    eprintln!("event: last 10 ms packet sent at {before:.3} ms, first 40 ms packet at {at:.3} ms after ready");
    assert!((580.0..=620.0).contains(&at), "applied at {at} ms");
}

#[test]
#[ignore = "needs root; creates network namespaces"]
fn directions_are_independent() {
    let lab = Lab::new(
        "dirs",
        &path(
            r#"rate = "8mbit", delay = "5ms""#,
            r#"rate = "24mbit", delay = "5ms""#,
        ),
    );
    let ((up, _), (down, _)) = thread::scope(|s| {
        let up = s.spawn(|| run_stream(&lab, true, pps_for(12e6), pps_for(12e6) as u64 * 2));
        let down = run_stream(&lab, false, pps_for(36e6), pps_for(36e6) as u64 * 2);
        (up.join().unwrap(), down)
    });
    let (ru, rd) = (frame_rate(&up), frame_rate(&down));
    eprintln!(
        "directions: up {:.3} Mbit/s, down {:.3} Mbit/s",
        ru / 1e6,
        rd / 1e6
    );
    assert!((ru / 8e6 - 1.0).abs() < 0.03, "up {ru}");
    assert!((rd / 24e6 - 1.0).abs() < 0.03, "down {rd}");
    assert_in_order(&up);
    assert_in_order(&down);
}
