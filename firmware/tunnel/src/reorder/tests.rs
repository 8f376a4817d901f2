//! Ordering, duplicates, late packets, timeouts and the bound.

use super::*;
use std::vec;

fn t(ms: u64) -> Instant {
    Instant::from_micros(ms * 1000)
}

struct Out(std::vec::Vec<u32>);

impl Out {
    fn sink(&mut self) -> impl FnMut(&[u8]) + '_ {
        |p: &[u8]| self.0.push(u32::from_be_bytes(p.try_into().unwrap()))
    }
}

fn push(r: &mut Reorder, out: &mut Out, now: Instant, seq: u32) {
    r.push(now, seq, &seq.to_be_bytes(), &mut out.sink());
}

#[test]
fn in_order_passes_straight_through() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    for s in 100..110 {
        push(&mut r, &mut out, t(0), s);
    }
    assert_eq!(out.0, (100..110).collect::<std::vec::Vec<_>>());
    assert_eq!(r.held(), 0);
    assert_eq!(r.deadline(), None);
}

#[test]
fn a_hole_holds_followers_until_filled() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(1), 3);
    push(&mut r, &mut out, t(1), 4);
    assert_eq!(out.0, [1]);
    assert_eq!(r.held(), 2);
    push(&mut r, &mut out, t(3), 2);
    assert_eq!(out.0, [1, 2, 3, 4]);
    assert_eq!(r.stats().reordered, 2);
    assert!(
        r.timeout() > MIN_TIMEOUT,
        "lateness learnt: {:?}",
        r.timeout()
    );
}

#[test]
fn duplicates_and_late_packets_are_dropped() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(0), 3);
    push(&mut r, &mut out, t(0), 3);
    assert_eq!(r.stats().duplicates, 2);
    // 2 never comes: the timeout skips it, then 2 arrives late.
    let d = r.deadline().unwrap();
    r.on_timeout(d, &mut out.sink());
    assert_eq!(out.0, [1, 3]);
    push(&mut r, &mut out, d, 2);
    assert_eq!(r.stats().late, 1);
    assert_eq!(r.stats().skipped, 1);
    assert_eq!(out.0, [1, 3]);
}

#[test]
fn never_stalls_longer_than_the_timeout() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 10);
    push(&mut r, &mut out, t(5), 12);
    let timeout = r.timeout();
    assert_eq!(r.deadline(), Some(t(5) + timeout));
    r.on_timeout(t(5) + timeout - Duration::from_micros(1), &mut out.sink());
    assert_eq!(out.0, [10], "not before the deadline");
    r.on_timeout(t(5) + timeout, &mut out.sink());
    assert_eq!(out.0, [10, 12]);
}

#[test]
fn memory_is_bounded_by_capacity() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 0);
    // 0 delivered; 1 missing; push far ahead.
    for s in 2..(2 + 3 * CAPACITY as u32) {
        push(&mut r, &mut out, t(1), s);
        assert!(r.held() <= CAPACITY);
    }
    assert!(out.0.len() > 2 * CAPACITY, "the head was forced forward");
    assert!(out.0.windows(2).all(|w| w[0] < w[1]), "still in order");
}

#[test]
fn sequence_numbers_wrap() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    for s in [u32::MAX - 1, u32::MAX, 1, 0, 2] {
        push(&mut r, &mut out, t(0), s);
    }
    assert_eq!(out.0, [u32::MAX - 1, u32::MAX, 0, 1, 2]);
}

/// Against a model: random arrival orders with duplicates; whatever is
/// delivered is strictly increasing, nothing is delivered twice, and after the
/// final timeout nothing is held.
#[test]
fn random_orders_keep_the_invariants() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let (mut r, mut out) = (Reorder::new(), Out(vec![]));
        let mut seqs: std::vec::Vec<u32> = (0..500).collect();
        // Local shuffles (bounded displacement) and some duplicates and losses.
        for i in 0..seqs.len() {
            let j = (i + (rand() % 8) as usize).min(seqs.len() - 1);
            seqs.swap(i, j);
        }
        let mut now = 0;
        for s in seqs {
            now += rand() % 300;
            let when = Instant::from_micros(now);
            r.on_timeout(when, &mut out.sink());
            match rand() % 20 {
                0 => {}
                1 => {
                    push(&mut r, &mut out, when, s);
                    push(&mut r, &mut out, when, s);
                }
                _ => push(&mut r, &mut out, when, s),
            }
        }
        r.on_timeout(Instant::from_micros(now + 1_000_000), &mut out.sink());
        assert_eq!(r.held(), 0);
        assert!(out.0.windows(2).all(|w| w[0] < w[1]));
        let st = r.stats();
        assert_eq!(st.delivered as usize, out.0.len());
    }
}

#[test]
fn a_hold_keeps_a_hole_open_for_its_repair_without_teaching_lateness() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(1), 3);
    let plain = r.deadline().unwrap();
    assert_eq!(plain, t(1) + r.timeout());
    // The loss was reported at 2 ms; the repair is expected by 60 ms.
    r.hold(t(2), t(60));
    assert_eq!(r.deadline(), Some(t(60)));
    r.on_timeout(plain, &mut out.sink());
    assert_eq!(out.0, [1], "still waiting for 2 past the plain timeout");
    let timeout = r.timeout();
    r.push_repair(t(50), 2, &2u32.to_be_bytes(), &mut out.sink());
    assert_eq!(out.0, [1, 2, 3]);
    assert_eq!(r.stats().repaired, 1);
    assert_eq!(r.timeout(), timeout, "a repair's wait is not lateness");
}

#[test]
fn a_hold_is_bounded_and_a_late_repair_is_dropped() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(1), 3);
    r.hold(t(1), t(10_000));
    assert_eq!(
        r.deadline(),
        Some(t(1) + MAX_TIMEOUT),
        "never past the bound"
    );
    r.on_timeout(t(1) + MAX_TIMEOUT, &mut out.sink());
    assert_eq!(out.0, [1, 3]);
    let timeout = r.timeout();
    r.push_repair(t(800), 2, &2u32.to_be_bytes(), &mut out.sink());
    assert_eq!(out.0, [1, 3]);
    assert_eq!(r.stats().late, 1);
    assert_eq!(r.stats().repaired, 0);
    assert_eq!(r.timeout(), timeout, "a late repair teaches nothing either");
}
