//! Boots each QEMU board, built from this checkout, and reads braidd's banner from
//! the serial console: braidd runs as PID 1 for the right CPU and board, the kernel
//! has MPTCP enabled, an MPTCP socket opens, every emulated NIC is there, and the
//! machine powers off cleanly, all before a deadline. On failure the serial log is
//! attached to the message.
//!
//! Each test needs a kernel build (minutes when the cache is cold), so they are
//! ignored by a plain `cargo test`; ci/test runs them by name with `--ignored`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the whole process group of a child (braid and the QEMU it started) when
/// dropped, so a failing test leaves no QEMU behind.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// A console line the test waits for.
type Matcher = Box<dyn Fn(&str) -> bool>;

fn braid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_braid"))
}

fn build(board: &str) {
    let out = braid()
        .args(["build", "--board", board])
        .output()
        .expect("run braid build");
    assert!(
        out.status.success(),
        "braid build --board {board} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Boots `board` with `wans` WAN NICs and checks the console, in order, within
/// `deadline`.
fn boot(board: &str, triple: &str, wans: usize, deadline: Duration) {
    build(board);
    let mut cmd = braid();
    cmd.args([
        "run",
        "--no-build",
        "--poweroff",
        "--board",
        board,
        "--wan",
        &wans.to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut group = Group(cmd.spawn().expect("run braid run"));
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(group.0.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(group.0.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let nics = wans + 1;
    let expectations: Vec<(String, Matcher)> = vec![
        (
            format!("banner for {board} on {triple}"),
            Box::new({
                let want = format!("({triple}, release) on {board}");
                move |l: &str| l.starts_with("braidd ") && l.ends_with(&want)
            }),
        ),
        (
            "net.mptcp.enabled = 1".into(),
            Box::new(|l: &str| l == "braidd: net.mptcp.enabled = 1"),
        ),
        (
            "MPTCP socket ok".into(),
            Box::new(|l: &str| l == "braidd: MPTCP socket: ok"),
        ),
        (
            format!("{nics} NICs and lo"),
            Box::new(move |l: &str| {
                l.strip_prefix("braidd: interfaces: ").is_some_and(|rest| {
                    let names: Vec<&str> = rest.split_whitespace().collect();
                    names.contains(&"lo")
                        && names.iter().filter(|n| n.starts_with("eth")).count() == nics
                })
            }),
        ),
        (
            "ready".into(),
            Box::new(|l: &str| {
                l.starts_with("braidd: ready ") && l.ends_with(" s after kernel start")
            }),
        ),
        (
            "power off requested".into(),
            Box::new(|l: &str| l.starts_with("braidd: powering off")),
        ),
        (
            "the kernel powering down".into(),
            Box::new(|l: &str| {
                l.contains("reboot: Power down") || l.contains("reboot: Restarting system")
            }),
        ),
    ];

    let start = Instant::now();
    let mut log = Vec::new();
    let mut next = 0;
    while next < expectations.len() {
        let left = deadline.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if (expectations[next].1)(line.trim_end()) {
                    next += 1;
                }
                log.push(line);
            }
            Err(_) => panic!(
                "{board}: no {} within {:?}; serial log:\n{}",
                expectations[next].0,
                deadline,
                log.join("\n")
            ),
        }
    }
    // QEMU must now exit by itself (-no-reboot), with success.
    let status = loop {
        if let Some(status) = group.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < deadline,
            "{board}: QEMU did not exit after power-off; log:\n{}",
            log.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{board}: braid run exited with {status}; log:\n{}",
        log.join("\n")
    );
    let ready = log
        .iter()
        .find_map(|l| {
            l.strip_prefix("braidd: ready ")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .expect("ready time");
    eprintln!(
        "{board}: braidd ready {ready:.2} s after kernel start; boot test took {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

const DEADLINE: Duration = Duration::from_secs(180);

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn boot_qemu_malta_le() {
    boot("qemu-malta-le", "mipsel-unknown-linux-musl", 2, DEADLINE);
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn boot_qemu_malta_be() {
    boot("qemu-malta-be", "mips-unknown-linux-musl", 2, DEADLINE);
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn boot_qemu_ppce500() {
    boot("qemu-ppce500", "powerpc-unknown-linux-muslspe", 2, DEADLINE);
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn boot_qemu_armvirt() {
    boot(
        "qemu-armvirt",
        "armv7-unknown-linux-musleabihf",
        2,
        DEADLINE,
    );
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn boot_qemu_arm64virt() {
    boot("qemu-arm64virt", "aarch64-unknown-linux-musl", 2, DEADLINE);
}
