//! The bucket: no delay for steady traffic, held runs spread out, the bound.

use super::*;
use std::vec;
use std::vec::Vec;

fn us(v: u64) -> Instant {
    Instant::from_micros(v)
}

#[test]
fn steady_traffic_leaves_at_once() {
    let mut r = Release::new();
    // 10 Mbit/s of 1250-byte packets: one per millisecond, each delivered in
    // order as it arrives.
    for i in 0..1000u64 {
        let now = us(i * 1000);
        r.on_arrival(1250);
        r.push(now, vec![0; 1250], true);
        assert!(r.pop(now).is_some(), "packet {i} held back");
        assert_eq!(r.pop(now), None);
        assert_eq!(r.next_release(), None);
    }
    // Even a run of arrivals faster than time refills the bucket.
    for i in 0..1000u64 {
        r.on_arrival(1500);
        r.push(us(1_000_000), vec![0; 1500], true);
        assert!(r.pop(us(1_000_000)).is_some(), "packet {i} held back");
    }
    assert_eq!(r.stats().paced, 0);
}

#[test]
fn a_held_run_is_spread_out_and_drained() {
    let mut r = Release::new();
    // 50 Mbit/s (one 1250-byte packet per 200 us) for 140 ms, all held behind
    // a hole, then released by the reorder buffer in one instant at t0; the
    // flow goes on at the same rate.
    let t0 = 140_000;
    let mut out: Vec<u64> = Vec::new();
    let mut now = 0;
    let mut queued = 0;
    let mut peak_after_drain = 0;
    let mut drained_at = None;
    for _ in 0..100_000 {
        if now >= t0 + 400_000 {
            break;
        }
        if now % 200 == 0 {
            r.on_arrival(1250);
            if now >= t0 {
                r.push(us(now), vec![0; 1250], true);
                queued += 1;
            }
        }
        if now == t0 {
            for _ in 0..700 {
                r.push(us(now), vec![0; 1250], true);
                queued += 1;
            }
        }
        // Never anything before the announced time.
        let due = r.next_release().map(Instant::as_micros);
        let mut n = 0;
        while r.pop(us(now)).is_some() {
            out.push(now);
            n += 1;
        }
        assert!(
            n == 0 || due.is_none_or(|d| d <= now),
            "left before {due:?}, at {now}"
        );
        if drained_at.is_some() {
            peak_after_drain = peak_after_drain.max(r.queued());
        } else if now > t0 && r.queued() == 0 {
            drained_at = Some(now);
        }
        now += 100;
    }
    assert_eq!(out.len(), queued);
    // The burst allowance left at once.
    assert_eq!(
        out.iter().filter(|&&t| t == t0).count(),
        (BURST / 1250 + 1) as usize
    );
    // 875 KB behind a 50 Mbit/s flow: twice the arrival rate plus the queue
    // over 50 ms empties it in about 66 ms; then the flow passes unheld.
    let took = drained_at.expect("never drained") - t0;
    assert!((55_000..=75_000).contains(&took), "drained in {took} us");
    assert!(
        peak_after_drain <= 1,
        "{peak_after_drain} waiting after the drain"
    );
    // No 5 ms window carries more than a burst plus the fastest rate allows
    // (12.5 MB/s of arrival credit, 17.5 MB/s from the queue).
    for (i, &t) in out.iter().enumerate() {
        let n = out[i..].iter().take_while(|&&x| x < t + 5_000).count() as u64;
        assert!(
            n * 1250 <= BURST + 30_000_000 * 5 / 1000 + 1250,
            "{n} packets in 5 ms from {t}"
        );
    }
    assert!(r.stats().paced >= 600, "{:?}", r.stats());
    assert_eq!(r.stats().max_queued, 701);
}

#[test]
fn the_queue_is_bounded() {
    let mut r = Release::new();
    for _ in 0..MAX_QUEUED + 300 {
        r.push(us(0), vec![0; 100], true);
    }
    while r.pop(us(0)).is_some() {}
    assert_eq!(r.queued(), MAX_QUEUED);
    assert!(r.next_release().is_some());
}

#[test]
fn nothing_waits_in_an_empty_queue() {
    let mut r = Release::new();
    assert_eq!(r.pop(us(5)), None);
    assert_eq!(r.next_release(), None);
}

/// An IPv4 UDP packet of `len` bytes from source port `sport`, its last byte
/// `tag`: enough for [`bucket`] to tell flows apart.
fn udp(sport: u16, len: usize, tag: u8) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 168, 1, 20]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&443u16.to_be_bytes());
    p[len - 1] = tag;
    p
}

/// While one flow's held run is paced out, a packet of another flow that did
/// not wait leaves at once, ahead of the run; a packet of the held flow that
/// did not wait queues behind its run, so the flow stays in order.
#[test]
fn other_flows_pass_a_paced_run() {
    let (a, b) = (40_000, 40_001);
    assert_ne!(bucket(&udp(a, 100, 0)), bucket(&udp(b, 100, 0)));
    let mut r = Release::new();
    let now = us(1_000_000);
    for i in 0..100 {
        r.push(now, udp(a, 1250, i), true);
    }
    // The burst allowance leaves; the rest of the run waits for the bucket.
    let mut left = 0;
    while r.pop(now).is_some() {
        left += 1;
    }
    assert_eq!(left, (BURST / 1250 + 1) as usize);
    assert!(r.queued() > 50);
    // Flow b, not held: out at once, though the bucket is empty.
    r.push(now, udp(b, 1250, 200), false);
    assert_eq!(r.pop(now).map(|p| p[1249]), Some(200));
    assert_eq!(r.pop(now), None);
    // Flow a, not held itself: behind its own run.
    r.push(now, udp(a, 1250, 100), false);
    assert_eq!(r.pop(now), None);
    let mut order = Vec::new();
    let mut t = 1_000_000;
    while r.queued() > 0 && t < 2_000_000 {
        t += 100;
        while let Some(p) = r.pop(us(t)) {
            order.push(p[1249]);
        }
    }
    let want: Vec<u8> = (left as u8..=100).collect();
    assert_eq!(order, want);
}
