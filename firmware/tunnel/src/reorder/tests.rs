//! Ordering (of the class, and per flow), duplicates, late packets, timeouts
//! and the bound.

use super::*;
use std::vec;

fn t(ms: u64) -> Instant {
    Instant::from_micros(ms * 1000)
}

struct Out(std::vec::Vec<u32>);

impl Out {
    fn sink(&mut self) -> impl FnMut(&[u8], bool) + '_ {
        |p: &[u8], _| self.0.push(u32::from_be_bytes(p.try_into().unwrap()))
    }
}

/// A seeded xorshift generator.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// A packet of a sender that keeps the class in one chain (each packet
/// names the one before it).
fn push(r: &mut Reorder, out: &mut Out, now: Instant, seq: u32) {
    push_flow(r, out, now, seq, 1);
}

/// A packet whose flow's previous packet is `pred` back (0: none).
fn push_flow(r: &mut Reorder, out: &mut Out, now: Instant, seq: u32, pred: u16) {
    r.push(
        now,
        seq,
        pred,
        Sent::First,
        &seq.to_be_bytes(),
        &mut out.sink(),
    );
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
    let top = crate::wire::SEQ_MASK;
    for s in [top - 1, top, 1, 0, 2] {
        push(&mut r, &mut out, t(0), s);
    }
    assert_eq!(out.0, [top - 1, top, 0, 1, 2]);
}

/// Against a model: random arrival orders with duplicates; whatever is
/// delivered is strictly increasing, nothing is delivered twice, and after the
/// final timeout nothing is held.
#[test]
fn random_orders_keep_the_invariants() {
    let mut rand = xorshift(0x1234_5678_9abc_def0);
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
    r.push(
        t(50),
        2,
        1,
        Sent::Repair,
        &2u32.to_be_bytes(),
        &mut out.sink(),
    );
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
    r.push(
        t(800),
        2,
        1,
        Sent::Repair,
        &2u32.to_be_bytes(),
        &mut out.sink(),
    );
    assert_eq!(out.0, [1, 3]);
    assert_eq!(r.stats().late, 1);
    assert_eq!(r.stats().repaired, 0);
    assert_eq!(r.timeout(), timeout, "a late repair teaches nothing either");
}

/// Two flows interleaved: A's packet 2 is on a slow path. B's packets (3, 5)
/// leave at once; A's 4 waits for 2 alone.
#[test]
fn one_flow_s_hole_does_not_hold_another_flow() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push_flow(&mut r, &mut out, t(0), 0, 0); // A
    push_flow(&mut r, &mut out, t(0), 1, 0); // B
                                             // 2 (A, pred 2 back: 0) is late.
    push_flow(&mut r, &mut out, t(1), 3, 2); // B after 1
    push_flow(&mut r, &mut out, t(1), 4, 2); // A after 2
    push_flow(&mut r, &mut out, t(2), 5, 2); // B after 3
    assert_eq!(out.0, [0, 1, 3, 5]);
    assert_eq!(r.held(), 1);
    assert_eq!(r.stats().reordered, 1);
    push_flow(&mut r, &mut out, t(40), 2, 2);
    assert_eq!(out.0, [0, 1, 3, 5, 2, 4]);
    assert_eq!(r.held(), 0);
    assert_eq!(r.deadline(), None);
    // All resolved: the head is past them, and a copy is a duplicate.
    push_flow(&mut r, &mut out, t(41), 4, 2);
    assert_eq!(r.stats().duplicates, 1);
    assert!(r.timeout() > MIN_TIMEOUT, "A's wait was learnt");
}

/// A timed-out packet gives up on the hole its flow waits for and the
/// holes before it (its flow's older packets may be among them), not on
/// later holes, whose packets may still come.
#[test]
fn a_timeout_gives_up_on_the_holes_up_to_the_waiting_flow_s() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push_flow(&mut r, &mut out, t(0), 0, 0);
    // 1 and 2 are missing; B's 3 waits for 2.
    push_flow(&mut r, &mut out, t(0), 3, 1);
    // 5 is missing; A's 6 waits for it, since 10 ms.
    push_flow(&mut r, &mut out, t(10), 6, 1);
    let d = r.deadline().unwrap();
    assert_eq!(d, t(0) + r.timeout());
    r.on_timeout(d, &mut out.sink());
    assert_eq!(out.0, [0, 3]);
    assert_eq!(r.stats().skipped, 2);
    // 5 was not given up on: it comes, and releases 6.
    push_flow(&mut r, &mut out, d, 5, 0);
    assert_eq!(out.0, [0, 3, 5, 6]);
    assert_eq!(r.stats().late, 0);
    // 1 was: late.
    push_flow(&mut r, &mut out, d, 1, 0);
    assert_eq!(r.stats().late, 1);
    assert_eq!(r.held(), 0);
}

/// A chain of waiting packets (4 waits for 3, which waits for the missing 2)
/// is released whole when the hole is given up on; the deadline runs from
/// the oldest waiting packet (4, which came first).
#[test]
fn a_timeout_releases_a_whole_chain() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push(&mut r, &mut out, t(0), 1);
    push(&mut r, &mut out, t(1), 4);
    push(&mut r, &mut out, t(5), 3);
    assert_eq!(r.held(), 2);
    assert_eq!(r.deadline(), Some(t(1) + r.timeout()), "from the oldest");
    r.on_timeout(
        t(1) + r.timeout() - Duration::from_micros(1),
        &mut out.sink(),
    );
    assert_eq!(out.0, [1], "not before the deadline");
    r.on_timeout(t(1) + r.timeout(), &mut out.sink());
    assert_eq!(out.0, [1, 3, 4]);
    assert_eq!(r.held(), 0);
}

/// Against a model: random flows, each a chain, in random arrival orders with
/// duplicates and losses; every flow's delivered packets are in order, nothing
/// is delivered twice, and after the final timeout nothing is held.
#[test]
fn random_flows_each_stay_in_order() {
    let mut rand = xorshift(0x0fed_cba9_8765_4321);
    for _ in 0..200 {
        let mut r = Reorder::with_capacity(64);
        let mut out = Out(vec![]);
        // Sender: 400 packets of 5 flows, each naming its flow's last one.
        let mut last = [None::<u32>; 5];
        let mut flow_of = std::vec::Vec::new();
        let mut sent = std::vec::Vec::new();
        for s in 0..400u32 {
            let f = (rand() % 5) as usize;
            let pred = last[f].map_or(0, |l| (s - l) as u16);
            let pred = if usize::from(pred) < 64 { pred } else { 0 };
            last[f] = Some(s);
            flow_of.push(f);
            sent.push((s, pred));
        }
        for i in 0..sent.len() {
            let j = (i + (rand() % 12) as usize).min(sent.len() - 1);
            sent.swap(i, j);
        }
        let mut now = 0;
        for (s, pred) in sent {
            now += rand() % 300;
            let when = Instant::from_micros(now);
            r.on_timeout(when, &mut out.sink());
            match rand() % 20 {
                0 => {}
                1 => {
                    push_flow(&mut r, &mut out, when, s, pred);
                    push_flow(&mut r, &mut out, when, s, pred);
                }
                _ => push_flow(&mut r, &mut out, when, s, pred),
            }
            assert!(r.held() <= 64);
            assert!(r.arrivals.len() < 2 * 64);
            // When the oldest waiting packet came, by a scan of the ring.
            let oldest = r
                .slots
                .iter()
                .filter_map(|e| match e {
                    Entry::Held(s) => Some(s.arrived),
                    _ => None,
                })
                .min();
            assert_eq!(r.arrivals.front().map(|a| a.0), oldest);
        }
        r.on_timeout(Instant::from_micros(now + 1_000_000), &mut out.sink());
        assert_eq!(r.held(), 0);
        let mut delivered = out.0.clone();
        delivered.sort_unstable();
        delivered.dedup();
        assert_eq!(delivered.len(), out.0.len(), "nothing twice");
        for f in 0..5 {
            let mine: std::vec::Vec<u32> = out
                .0
                .iter()
                .copied()
                .filter(|&s| flow_of[s as usize] == f)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "flow {f}: {mine:?}");
        }
        assert_eq!(r.stats().delivered as usize, out.0.len());
    }
}

/// Found by the fuzzer: a jump of more than a capacity ahead used to move
/// the head only a capacity's worth of steps, and the packet that jumped
/// waited forever. The head now lands a capacity behind it.
#[test]
fn a_long_jump_ahead_moves_the_head_all_the_way() {
    let mut r = Reorder::with_capacity(64);
    let mut out = Out(vec![]);
    push_flow(&mut r, &mut out, t(0), 100, 0);
    push_flow(&mut r, &mut out, t(1), 100_000, 11);
    assert_eq!(r.held(), 1);
    let d = r.deadline().unwrap();
    r.on_timeout(d, &mut out.sink());
    assert_eq!(out.0, [100, 100_000]);
    assert_eq!(r.held(), 0);
}

/// A peer that names one predecessor for two packets: the first one named
/// is not released by it, but by its own timeout.
#[test]
fn a_predecessor_named_twice_holds_no_packet_forever() {
    let (mut r, mut out) = (Reorder::new(), Out(vec![]));
    push_flow(&mut r, &mut out, t(0), 0, 0);
    push_flow(&mut r, &mut out, t(1), 3, 2); // waits for 1
    push_flow(&mut r, &mut out, t(2), 4, 3); // waits for 1 too
    push_flow(&mut r, &mut out, t(3), 1, 0);
    assert_eq!(out.0, [0, 1, 4]);
    let d = r.deadline().unwrap();
    r.on_timeout(d, &mut out.sink());
    assert_eq!(out.0, [0, 1, 4, 3]);
    assert_eq!((r.held(), r.deadline()), (0, None));
}
