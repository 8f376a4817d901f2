//! Load generator of ci/bench-linkem: paced UDP streams between network
//! namespaces, each packet stamped with its CLOCK_MONOTONIC send time (shared
//! by all namespaces), one sender thread and one receiver thread for all
//! streams. For each stream it prints the achieved rate in Ethernet frame bits
//! (as linkem counts them) and the error of every one-way delay against the
//! ideal FIFO link: finish_k = max(sent_k, finish_(k-1)) + frame/rate, due at
//! finish_k + delay. Lost packets never used the link, so replaying only the
//! received ones is exact; the error is what the kernel path and linkem's
//! wake-ups add.
//!
//! `linkem-load --rate-bps 50000000 --delay-ms 20 --load 1.1 --secs 4 NAME:SRC_NS:DST_NS:DST_IP ...`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use braid_linkem::sys::now as now_ns;
use clap::Parser;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};

const PORT: u16 = 9100;

#[derive(Parser)]
struct Args {
    /// Emulated link rate, bits/s (frame bits).
    #[arg(long)]
    rate_bps: f64,
    /// Emulated one-way delay, ms.
    #[arg(long)]
    delay_ms: f64,
    /// Offered load as a fraction of the rate.
    #[arg(long)]
    load: f64,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 4.0)]
    secs: f64,
    /// UDP payload bytes.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Streams: NAME:SRC_NS:DST_NS:DST_IP.
    #[arg(required = true)]
    streams: Vec<String>,
}

fn socket_in(ns: &str, bind: String) -> UdpSocket {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        setns(File::open(&path).expect(&path), CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind(bind).unwrap();
        let _ =
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20));
        let _ =
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBufForce, &(4 << 20));
        s.set_nonblocking(true).unwrap();
        braid_linkem::sys::enable_rx_stamps(&s).unwrap();
        s
    })
    .join()
    .unwrap()
}

struct Stream {
    name: String,
    tx: UdpSocket,
    rx: UdpSocket,
    to: String,
    /// (sent, received) per packet, in arrival order.
    got: Vec<(u64, u64)>,
    sent: u64,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a = Args::parse();
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut streams: Vec<Stream> = a
        .streams
        .iter()
        .map(|s| {
            let f: Vec<&str> = s.split(':').collect();
            assert_eq!(
                f.len(),
                4,
                "stream {s:?}: expected NAME:SRC_NS:DST_NS:DST_IP"
            );
            Stream {
                name: f[0].to_owned(),
                tx: socket_in(f[1], "0.0.0.0:0".into()),
                rx: socket_in(f[2], format!("{}:{PORT}", f[3])),
                to: format!("{}:{PORT}", f[3]),
                got: Vec::new(),
                sent: 0,
            }
        })
        .collect();
    let frame_bits = (a.size + 42) as f64 * 8.0;
    let pps = a.rate_bps * a.load / frame_bits;
    let gap = 1e9 / pps;
    let count = (pps * a.secs) as u64;
    let start = now_ns() + 10_000_000;
    let end = start + (a.secs * 1e9) as u64 + (a.delay_ms * 1e6) as u64 + 1_000_000_000;

    let (senders, receivers): (Vec<_>, Vec<_>) = streams
        .iter()
        .map(|s| (s.tx.try_clone().unwrap(), s.rx.try_clone().unwrap()))
        .unzip();
    let targets: Vec<String> = streams.iter().map(|s| s.to.clone()).collect();
    let size = a.size;
    let sender = thread::spawn(move || {
        let mut buf = vec![0u8; size];
        let mut sent = vec![0u64; senders.len()];
        // Staggered starts so the streams do not send in lockstep.
        let offset = |i: usize| start + (gap * i as f64 / senders.len() as f64) as u64;
        loop {
            let t = now_ns();
            let mut next = u64::MAX;
            for (i, s) in senders.iter().enumerate() {
                while sent[i] < count {
                    let due = offset(i) + (sent[i] as f64 * gap) as u64;
                    if due > t {
                        next = next.min(due);
                        break;
                    }
                    buf[..8].copy_from_slice(&sent[i].to_le_bytes());
                    buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
                    match s.send_to(&buf, &targets[i]) {
                        Ok(_) => sent[i] += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("send: {e}"),
                    }
                }
            }
            if sent.iter().all(|&n| n >= count) {
                return sent;
            }
            let t = now_ns();
            if next != u64::MAX && next > t {
                thread::sleep(Duration::from_nanos(next - t));
            }
        }
    });

    let mut got: Vec<Vec<(u64, u64)>> = vec![Vec::new(); receivers.len()];
    let mut buf = [0u8; 2048];
    while now_ns() < end {
        let mut fds: Vec<PollFd> = receivers
            .iter()
            .map(|r| PollFd::new(r.as_fd(), PollFlags::POLLIN))
            .collect();
        let _ = poll(&mut fds, PollTimeout::from(50u16));
        let offset = braid_linkem::sys::realtime_offset();
        for (i, r) in receivers.iter().enumerate() {
            // Kernel receive stamps: this loop's own wake-ups are not linkem's error.
            while let Ok((n, t)) = braid_linkem::sys::recv_stamped(r, &mut buf, offset) {
                if n >= 16 {
                    got[i].push((u64::from_le_bytes(buf[8..16].try_into().unwrap()), t));
                }
            }
        }
    }
    let sent = sender.join().unwrap();
    for (i, s) in streams.iter_mut().enumerate() {
        s.got = std::mem::take(&mut got[i]);
        s.sent = sent[i];
    }

    let ser = frame_bits / a.rate_bps * 1e9;
    let delay = a.delay_ms * 1e6;
    for s in &streams {
        let n = s.got.len();
        let rate = if n > 1 {
            (n - 1) as f64 * frame_bits / ((s.got[n - 1].1 - s.got[0].1) as f64 / 1e9)
        } else {
            0.0
        };
        let mut finish = 0.0f64;
        let mut errs: Vec<f64> = s
            .got
            .iter()
            .map(|&(sent, recv)| {
                finish = finish.max(sent as f64) + ser;
                recv as f64 - (finish + delay)
            })
            .collect();
        let (p50, p99, max) = (
            percentile(&mut errs, 0.5),
            percentile(&mut errs, 0.99),
            percentile(&mut errs, 1.0),
        );
        println!(
            "stream={} sent={} recv={} rate_mbit={:.3} owd_err_p50_us={:.0} owd_err_p99_us={:.0} owd_err_max_us={:.0}",
            s.name,
            s.sent,
            n,
            rate / 1e6,
            p50 / 1e3,
            p99 / 1e3,
            max / 1e3
        );
    }
}
