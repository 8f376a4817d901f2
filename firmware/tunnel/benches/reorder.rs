//! What the reorder buffer costs per packet received, as a router or a
//! concentrator pays it: `push`, then `deadline` (the event loop asks for its
//! next timer after every packet) and `on_timeout`. Prints a markdown table;
//! the figures go into firmware/BENCHMARKS.md.
//!
//! Packets come every 200 µs (60 Mbit/s of 1500-byte packets) and each names
//! the one before it (one bulk flow). In the held rows, one packet in every
//! `gap` never comes, and the flow waits for it for the release timeout (300
//! ms, a satellite's delay spread), so up to 1,500 packets wait at once (S4
//! holds about a thousand for its satellite).

use std::time::Duration;

use braid_tunnel::reorder::{Reorder, Sent};
use braid_tunnel::time::Instant;

/// Nanoseconds per packet, the best of `rounds` runs of `n` packets.
fn cost(gap: Option<u32>, n: u32, rounds: u32) -> (f64, usize) {
    let packet = [0u8; 1400];
    let mut best = f64::MAX;
    let mut most_held = 0;
    for _ in 0..rounds {
        let mut r = Reorder::new();
        r.set_floor(Duration::from_millis(300));
        let mut delivered = 0u64;
        let mut sink = |_: &[u8], _| delivered += 1;
        let start = std::time::Instant::now();
        for s in 0..n {
            let now = Instant::from_micros(u64::from(s) * 200);
            if gap.is_some_and(|g| s % g == 1) {
                continue;
            }
            r.push(now, s & 0xf_ffff, 1, Sent::First, &packet, &mut sink);
            if r.deadline().is_some_and(|d| d <= now) {
                r.on_timeout(now, &mut sink);
            }
            most_held = most_held.max(r.held());
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
        std::hint::black_box(delivered);
        best = best.min(ns);
    }
    (best, most_held)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, small.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let (n, rounds) = if quick { (20_000, 1) } else { (1_000_000, 5) };
    println!("| packets | held at most | ns per packet |");
    println!("|---|---:|---:|");
    for (what, gap) in [
        ("in order", None),
        ("1 in 10,000 lost", Some(10_000)),
        ("1 in 1,000 lost", Some(1_000)),
    ] {
        let (ns, held) = cost(gap, n, rounds);
        println!("| {what} | {held} | {ns:.0} |");
    }
}
