//! Unit tests of the direction model: exact schedules on a virtual clock.

#![allow(clippy::unwrap_used)]

use super::*;

const MS: Nanos = 1_000_000;
const US: Nanos = 1_000;

/// A frame that remembers its number.
#[derive(Debug, PartialEq)]
struct F {
    id: u32,
    len: usize,
}

impl Frame for F {
    fn wire_len(&self) -> usize {
        self.len
    }
}

fn f(id: u32, len: usize) -> F {
    F { id, len }
}

/// 8 Mbit/s: one byte per microsecond, so a 1000-byte frame takes 1 ms.
fn params(rate: u64, delay: Nanos) -> Params {
    Params {
        rate,
        delay,
        ..Params::default()
    }
}

/// Drives the direction to completion, polling exactly at each deadline,
/// and returns (id, delivery time) in delivery order.
fn drain(d: &mut Direction<F>) -> Vec<(u32, Nanos)> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let Some(t) = d.next_deadline() else {
            return out;
        };
        while let Some(fr) = d.poll(t) {
            out.push((fr.id, t));
        }
    }
    panic!("direction never drained");
}

#[test]
fn serialisation_times_are_exact() {
    assert_eq!(serialisation(1000, 8_000_000), MS);
    assert_eq!(serialisation(1514, 20_000_000), 605_600);
    assert_eq!(serialisation(1500, 0), 0);
    // 1 byte at 3 bit/s = 2.666.. s, rounded to the nearest ns.
    assert_eq!(serialisation(1, 3), 2_666_666_667);
}

#[test]
fn back_to_back_frames_leave_at_the_rate_plus_delay() {
    let mut d = Direction::new(params(8_000_000, 10 * MS), 1);
    for id in 0..3 {
        assert_eq!(d.arrive(0, f(id, 1000)), Verdict::Accepted);
    }
    // Nothing before the first delivery, even one ns early.
    assert_eq!(d.next_deadline(), Some(11 * MS));
    assert_eq!(d.poll(11 * MS - 1), None);
    assert_eq!(
        drain(&mut d),
        vec![(0, 11 * MS), (1, 12 * MS), (2, 13 * MS)]
    );
    assert_eq!(d.next_deadline(), None);
    assert_eq!(d.stats().forwarded_frames, 3);
    assert_eq!(d.stats().forwarded_bytes, 3000);
    // Queue delays 0, 1 and 2 ms.
    assert_eq!(d.stats().queue_delay_max, 2 * MS);
    assert_eq!(d.stats().queue_delay_mean(), MS);
}

#[test]
fn late_polls_do_not_change_the_schedule() {
    let mut d = Direction::new(params(8_000_000, 0), 1);
    d.arrive(0, f(0, 1000));
    d.arrive(0, f(1, 1000));
    d.arrive(500 * US, f(2, 1000));
    // The process oversleeps by 7 ms: all three are due, and a new arrival at
    // 7 ms starts when the link really frees (3 ms), i.e. immediately, not
    // behind a backlog computed from wake-up times.
    assert_eq!(d.poll(7 * MS).map(|x| x.id), Some(0));
    assert_eq!(d.poll(7 * MS).map(|x| x.id), Some(1));
    assert_eq!(d.poll(7 * MS).map(|x| x.id), Some(2));
    assert_eq!(d.poll(7 * MS), None);
    d.arrive(7 * MS, f(3, 1000));
    assert_eq!(d.next_deadline(), Some(8 * MS));
    // The oversleep is what the stats report as lateness: departures were
    // due at 1, 2 and 3 ms.
    assert_eq!(d.stats().late_max, 6 * MS);
    assert_eq!(d.stats().late_mean(), 5 * MS);
    assert_eq!(d.stats().late_notable, 3);
    assert_eq!(d.poll(8 * MS + LATE_NOTABLE).map(|x| x.id), Some(3));
    assert_eq!(
        d.stats().late_notable,
        3,
        "exactly 1 ms late is not notable"
    );
}

#[test]
fn long_run_rate_is_exact() {
    let rate = 20_000_000;
    let mut d = Direction::new(
        Params {
            rate,
            limit: Some(Limit::Bytes(u64::MAX)),
            ..Params::default()
        },
        1,
    );
    for id in 0..10_000 {
        d.arrive(0, f(id, 1514));
    }
    let out = drain(&mut d);
    let last = out.last().unwrap().1;
    assert_eq!(last, 10_000 * serialisation(1514, rate));
    let achieved = 10_000.0 * 1514.0 * 8.0 / (last as f64 / 1e9);
    assert!((achieved - rate as f64).abs() < 1.0, "{achieved}");
}

#[test]
fn unlimited_rate_only_delays() {
    let mut d = Direction::new(params(0, 10 * MS), 1);
    d.arrive(0, f(0, 1500));
    d.arrive(0, f(1, 1500));
    d.arrive(3 * MS, f(2, 1500));
    assert_eq!(
        drain(&mut d),
        vec![(0, 10 * MS), (1, 10 * MS), (2, 13 * MS)]
    );
}

#[test]
fn jitter_stays_in_bounds_and_never_reorders() {
    let p = Params {
        delay: 10 * MS,
        jitter: 2 * MS,
        ..Params::default()
    };
    // Low load (one frame every 20 ms, each delivered before the next
    // arrives, so polling at its deadline never runs the clock past an
    // arrival): each delay is within [8, 12] ms and the draws cover the range.
    let mut d = Direction::new(p.clone(), 7);
    let mut delays = Vec::new();
    for i in 0..2000u32 {
        let t = u64::from(i) * 20 * MS;
        d.arrive(t, f(i, 100));
        let due = d.next_deadline().unwrap();
        assert_eq!(d.poll(due).map(|x| x.id), Some(i));
        delays.push(due - t);
    }
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert!(*min >= 8 * MS && *max <= 12 * MS, "{min} {max}");
    assert!(
        *min < 8 * MS + 50 * US && *max > 12 * MS - 50 * US,
        "{min} {max}"
    );
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((mean - 10e6).abs() < 0.1e6, "{mean}");

    // High load (one frame every 100 us, well inside the jitter range): later
    // frames wait for earlier ones, nothing is early, order is kept.
    let mut d: Direction<F> = Direction::new(p, 7);
    let mut out = Vec::new();
    for i in 0..2000u32 {
        let t = u64::from(i) * 100 * US;
        // Deliver what is due before this arrival, at its exact time (polling
        // later would run the clock past the deadlines).
        while let Some(due) = d.next_deadline().filter(|&due| due <= t) {
            while let Some(fr) = d.poll(due) {
                out.push((fr.id, due));
            }
        }
        d.arrive(t, f(i, 100));
    }
    out.extend(drain(&mut d));
    assert_eq!(out.len(), 2000);
    for (k, w) in out.windows(2).enumerate() {
        assert!(
            w[0].0 < w[1].0 && w[0].1 <= w[1].1,
            "reordered at {k}: {w:?}"
        );
    }
    for &(id, t) in &out {
        assert!(t >= u64::from(id) * 100 * US + 8 * MS, "{id} {t}");
    }
}

#[test]
fn jitter_larger_than_delay_clamps_at_zero() {
    let p = Params {
        delay: MS,
        jitter: 5 * MS,
        ..Params::default()
    };
    let mut d = Direction::new(p, 3);
    for i in 0..1000u32 {
        let t = u64::from(i) * 10 * MS;
        d.arrive(t, f(i, 100));
        let due = d.next_deadline().unwrap();
        assert!(due >= t && due <= t + 6 * MS);
        d.poll(due).unwrap();
    }
}

#[test]
fn loss_fraction_is_binomial() {
    for (p, seed) in [(0.01, 1), (0.05, 2), (0.3, 3)] {
        let n = 100_000u32;
        let mut d = Direction::new(
            Params {
                loss: p,
                ..Params::default()
            },
            seed,
        );
        let mut lost = 0u32;
        for i in 0..n {
            match d.arrive(u64::from(i), f(i, 100)) {
                Verdict::Dropped(DropReason::Loss, _) => lost += 1,
                Verdict::Dropped(r, _) => panic!("{r:?}"),
                Verdict::Accepted => assert!(d.poll(u64::from(i)).is_some()),
            }
        }
        let mean = f64::from(n) * p;
        let sd = (mean * (1.0 - p)).sqrt();
        assert!(
            (f64::from(lost) - mean).abs() < 5.0 * sd,
            "p={p}: lost {lost} of {n}"
        );
        assert_eq!(d.stats().dropped(DropReason::Loss), u64::from(lost));
    }
}

#[test]
fn same_seed_same_losses_other_seed_other_losses() {
    let run = |seed| {
        let mut d = Direction::new(
            Params {
                loss: 0.5,
                ..Params::default()
            },
            seed,
        );
        (0..64u32)
            .map(|i| matches!(d.arrive(0, f(i, 1)), Verdict::Accepted))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    assert_ne!(derive_seed(1, 0, 0), derive_seed(1, 0, 1));
    assert_ne!(derive_seed(1, 0, 1), derive_seed(1, 1, 0));
}

#[test]
fn tail_drop_at_the_byte_limit() {
    let mut d = Direction::new(
        Params {
            rate: 8_000_000,
            limit: Some(Limit::Bytes(3000)),
            ..Params::default()
        },
        1,
    );
    // The first starts at once and does not count; three fill the queue.
    for id in 0..4 {
        assert_eq!(d.arrive(0, f(id, 1000)), Verdict::Accepted);
    }
    assert_eq!(d.queued_bytes(), 3000);
    assert_eq!(
        d.arrive(0, f(4, 1000)),
        Verdict::Dropped(DropReason::Queue, f(4, 1000))
    );
    // Not even one more byte fits.
    assert!(matches!(
        d.arrive(0, f(5, 1)),
        Verdict::Dropped(DropReason::Queue, _)
    ));
    // Once the first has left the queue has room for one more.
    assert_eq!(d.poll(MS).map(|x| x.id), Some(0));
    assert_eq!(d.queued_bytes(), 2000);
    assert_eq!(d.arrive(MS, f(6, 1000)), Verdict::Accepted);
    assert!(matches!(
        d.arrive(MS, f(7, 1000)),
        Verdict::Dropped(DropReason::Queue, _)
    ));
    assert_eq!(d.stats().dropped(DropReason::Queue), 3);
    let ids: Vec<u32> = drain(&mut d).iter().map(|x| x.0).collect();
    assert_eq!(ids, vec![1, 2, 3, 6]);
}

#[test]
fn limits_in_time_follow_the_rate() {
    let p = |rate, limit| Params {
        rate,
        limit,
        ..Params::default()
    };
    // Default: 50 ms of the rate...
    assert_eq!(p(8_000_000, None).limit_bytes(), 50_000);
    assert_eq!(p(20_000_000, None).limit_bytes(), 125_000);
    // ...but at least 16 KiB.
    assert_eq!(p(1_000_000, None).limit_bytes(), 16_384);
    assert_eq!(p(8_000_000, Some(Limit::Time(5 * MS))).limit_bytes(), 5000);
    assert_eq!(p(0, Some(Limit::Time(5 * MS))).limit_bytes(), u64::MAX);
    assert_eq!(p(8_000_000, Some(Limit::Bytes(7))).limit_bytes(), 7);

    // Under overload the queue delay tops out at the limit.
    let mut d = Direction::new(p(8_000_000, Some(Limit::Time(20 * MS))), 1);
    for i in 0..400u32 {
        d.arrive(u64::from(i) * 500 * US, f(i, 1000));
        while d.poll(u64::from(i) * 500 * US).is_some() {}
    }
    let max = d.stats().queue_delay_max;
    assert!((19 * MS..=20 * MS).contains(&max), "{max}");
    // Rate changes rescale a time limit.
    d.set_params(200 * MS, p(16_000_000, Some(Limit::Time(20 * MS))));
    assert_eq!(d.limit_bytes(), 40_000);
}

#[test]
fn cut_drops_everything_and_restore_resumes() {
    let mut d = Direction::new(params(8_000_000, 10 * MS), 1);
    for id in 0..5 {
        d.arrive(0, f(id, 1000));
    }
    // At 11.5 ms: #0 delivered; #1 in flight, #2 serialising, #3 and #4 queued.
    assert_eq!(d.poll(11_500 * US).map(|x| x.id), Some(0));
    let mut gone: Vec<u32> = d.cut(11_500 * US).map(|x| x.id).collect();
    gone.sort_unstable();
    assert_eq!(gone, vec![1, 2, 3, 4]);
    assert!(d.is_cut());
    assert_eq!(d.next_deadline(), None);
    assert_eq!(d.queued_bytes(), 0);
    assert!(matches!(
        d.arrive(12 * MS, f(5, 1000)),
        Verdict::Dropped(DropReason::Cut, _)
    ));
    assert_eq!(d.stats().dropped(DropReason::Cut), 5);
    d.restore(20 * MS);
    assert!(!d.is_cut());
    // The link is idle again: a frame now takes 1 ms + 10 ms.
    d.arrive(20 * MS, f(6, 1000));
    assert_eq!(drain(&mut d), vec![(6, 31 * MS)]);
}

#[test]
fn rate_change_applies_to_frames_not_yet_started() {
    let mut d = Direction::new(params(8_000_000, 0), 1);
    for id in 0..3 {
        d.arrive(0, f(id, 1000));
    }
    // #0 serialises until 1 ms at the old rate; #1 and #2 take 0.5 ms each.
    d.set_params(500 * US, params(16_000_000, 0));
    assert_eq!(drain(&mut d), vec![(0, MS), (1, 1_500 * US), (2, 2 * MS)]);
    // Frames that started before the change keep the old rate.
    let mut d = Direction::new(params(8_000_000, 0), 1);
    for id in 0..3 {
        d.arrive(0, f(id, 1000));
    }
    d.set_params(1_200 * US, params(16_000_000, 0));
    assert_eq!(drain(&mut d), vec![(0, MS), (1, 2 * MS), (2, 2_500 * US)]);
}

#[test]
fn delay_change_never_reorders() {
    let mut d = Direction::new(params(0, 50 * MS), 1);
    d.arrive(0, f(0, 100));
    d.set_params(MS, params(0, 10 * MS));
    d.arrive(MS, f(1, 100));
    // #1 would be due at 11 ms but may not pass #0.
    assert_eq!(drain(&mut d), vec![(0, 50 * MS), (1, 50 * MS)]);
}

#[test]
fn clock_going_backwards_is_clamped() {
    let mut d = Direction::new(params(8_000_000, 0), 1);
    d.arrive(10 * MS, f(0, 1000));
    d.arrive(5 * MS, f(1, 1000));
    assert_eq!(drain(&mut d), vec![(0, 11 * MS), (1, 12 * MS)]);
}
