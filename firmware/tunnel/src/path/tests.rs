//! The path estimator driven by hand-made reports.

use super::*;

fn ms(v: u64) -> Instant {
    Instant::from_micros(v * 1000)
}

fn report(packets: u32, counter: u64, echo: Instant, rate_kbps: u32, owd_us: u32) -> PathReport {
    PathReport {
        path: 0,
        packets,
        bytes: packets * 1000,
        highest_counter: counter,
        owd_min_us: owd_us,
        echo_tx_time: echo.stamp(),
        hold_us: 0,
        rx_rate_kbps: rate_kbps,
    }
}

/// Drives a path with one report every 20 ms from `start`, echoing packets sent
/// `rtt` earlier, with the given receive rate; returns the time reached.
fn feed(p: &mut Path, start: u64, n: u64, rtt: u64, rate_kbps: u32, packets: &mut u32) -> u64 {
    let mut t = start;
    for _ in 0..n {
        t += 20;
        *packets += 10;
        // Keep the pacer busy past the next report: the samples then measure
        // the path (not app-limited), and startup sees its rounds filled.
        for _ in 0..10_000 {
            if p.next_send > ms(t + 20) {
                break;
            }
            p.schedule(ms(t), 1500);
        }
        p.on_received(ms(t));
        p.on_report(
            ms(t),
            &report(
                *packets,
                u64::from(*packets) - 1,
                ms(t - rtt),
                rate_kbps,
                5_000,
            ),
        );
    }
    t
}

#[test]
fn probing_path_comes_up_after_progress_and_learns_rtt() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    assert_eq!(p.state(), PathState::Probing);
    assert!(p.arrival(ms(0), 1000).is_none(), "not usable while probing");
    let mut packets = 0;
    feed(&mut p, 100, 2, 30, 8000, &mut packets);
    assert_eq!(p.state(), PathState::Probing);
    feed(&mut p, 140, 1, 30, 8000, &mut packets);
    assert_eq!(p.state(), PathState::Up);
    let info = p.info();
    assert_eq!(info.srtt_us, Some(30_000));
    assert_eq!(info.min_rtt_us, Some(30_000));
    // Once the backlog feed() left has drained.
    assert!(p.arrival(ms(200), 1000).is_some());
    // Silent longer than a heartbeat, two report intervals and the variation:
    // suspect, no new bulk, though not down yet.
    assert!(!p.suspect(ms(160 + 100)));
    assert!(p.suspect(ms(160 + 140)));
    assert!(p.arrival(ms(160 + 140), 1000).is_none());
    assert!(!p.check_liveness(ms(160 + 140)), "not down before 150 ms");
}

#[test]
fn silence_declares_down_within_the_bound_and_it_heals() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let t = feed(&mut p, 100, 10, 20, 8000, &mut packets);
    assert_eq!(p.state(), PathState::Up);
    // srtt 20 ms: the bound is max(60 ms, 150 ms) = 150 ms after the last sign.
    assert_eq!(p.down_after(), MIN_DOWN_AFTER);
    assert!(!p.check_liveness(ms(t + 150)));
    assert!(p.check_liveness(ms(t + 151)));
    assert_eq!(p.state(), PathState::Down);
    assert_eq!(p.liveness_deadline(), None);
    // Something arrives again: probing, then up after UP_AFTER reports.
    let t = t + 10_000;
    p.on_received(ms(t));
    assert_eq!(p.state(), PathState::Probing);
    feed(&mut p, t, u64::from(UP_AFTER), 20, 8000, &mut packets);
    assert_eq!(p.state(), PathState::Up);
}

#[test]
fn reports_without_progress_mean_the_forward_direction_died() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 0, 10, 20, 8000, &mut packets);
    // Reports keep coming back (reverse alive) but count nothing new.
    let mut went_down_at = None;
    for _ in 0..20 {
        t += 20;
        p.on_received(ms(t));
        p.on_report(
            ms(t),
            &report(packets, u64::from(packets) + 50, ms(t - 20), 0, 5_000),
        );
        if p.check_liveness(ms(t)) {
            went_down_at = Some(t);
            break;
        }
    }
    let at = went_down_at.expect("declared down");
    assert!(
        at <= 200 + 160,
        "down {at} ms, bound is 150 ms after the last progress at 200 ms"
    );
}

#[test]
fn rate_follows_the_receive_rate_and_respects_the_cap() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    feed(&mut p, 0, 100, 20, 20_000, &mut packets);
    let info = p.info();
    assert_eq!(info.btl_bw, 20_000 * 125, "bottleneck = max receive rate");
    assert!(
        info.pacing_rate >= 20_000 * 125 * 3 / 4 && info.pacing_rate <= 20_000 * 125 * 5 / 4,
        "{info:?}"
    );
    let mut capped = Path::new(
        1,
        PathConfig {
            backup: false,
            cap: Some(500_000),
        },
        ms(0),
    );
    let mut packets = 0;
    feed(&mut capped, 0, 100, 20, 20_000, &mut packets);
    assert_eq!(capped.pacing_rate(), 500_000);
}

/// The `i`-th report at `t` of a WAN whose queue grows 5 ms per report, with
/// `n` more packets and `rate_kbps` arrived.
fn queue_growing(p: &mut Path, t: u64, packets: &mut u32, n: u32, rate_kbps: u32, i: u32) {
    *packets += n;
    p.on_received(ms(t));
    p.on_report(
        ms(t),
        &report(
            *packets,
            u64::from(*packets) - 1,
            ms(t - 20),
            rate_kbps,
            5_000 + 5_000 * i,
        ),
    );
}

#[test]
fn a_growing_one_way_delay_cuts_the_estimate() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 0, 50, 20, 40_000, &mut packets);
    assert_eq!(p.info().btl_bw, 40_000 * 125);
    // The link slowed to 10 Mbit/s: samples drop and the WAN queue grows,
    // while we keep sending at the pacing rate.
    for i in 0..20u32 {
        t += 20;
        let rate = p.pacing_rate();
        p.on_sent(ms(t), (rate / 50) as usize, false);
        queue_growing(&mut p, t, &mut packets, 10, 10_000, i);
    }
    // Cut for as long as we sent more than arrived; what we send now is
    // within the link's rate (the queue drains; the estimate then settles
    // by the same rule).
    assert!(p.info().btl_bw < 40_000 * 125 / 2, "{}", p.info().btl_bw);
    assert!(
        p.pacing_rate() <= 10_000 * 125 * 11 / 10,
        "{}",
        p.pacing_rate()
    );
}

#[test]
fn a_queue_we_do_not_build_leaves_the_estimate_alone() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 0, 50, 20, 40_000, &mut packets);
    let before = p.info().btl_bw;
    // Someone else's traffic fills the WAN queue while we send heartbeats
    // (1 kB per 20 ms, which is what arrives): the estimate stays.
    for i in 0..20u32 {
        t += 20;
        p.on_sent(ms(t), 1000, true);
        queue_growing(&mut p, t, &mut packets, 1, 400, i);
    }
    assert_eq!(p.info().btl_bw, before);
    // The pacer still eases off while the queue stands.
    assert!(p.pacing_rate() < before);
}

#[test]
fn loss_degrades_and_recovery_restores() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 0, 10, 20, 8000, &mut packets);
    let mut counter = u64::from(packets) - 1;
    // Half of what is sent is lost.
    for _ in 0..20 {
        t += 20;
        packets += 10;
        counter += 20;
        p.on_received(ms(t));
        p.on_report(ms(t), &report(packets, counter, ms(t - 20), 8000, 5_000));
    }
    assert_eq!(p.state(), PathState::Degraded);
    assert!(p.info().loss_permille > 300);
    for _ in 0..40 {
        t += 20;
        packets += 20;
        counter += 20;
        p.on_received(ms(t));
        p.on_report(ms(t), &report(packets, counter, ms(t - 20), 8000, 5_000));
    }
    assert_eq!(p.state(), PathState::Up);
}

#[test]
fn pacer_spaces_packets_and_refuses_a_full_backlog() {
    let mut p = Path::new(
        0,
        PathConfig {
            backup: false,
            cap: Some(125_000),
        },
        ms(0),
    );
    let mut packets = 0;
    let t = feed(&mut p, 0, 5, 20, 1_000, &mut packets);
    // Past the backlog feed() leaves (and still hearing from the peer).
    let now = ms(t + 200);
    p.on_received(now);
    // 125 kB/s: 1250 bytes take 10 ms.
    assert_eq!(p.schedule(now, 1250), now);
    assert!(p.arrival(now, 1250).is_some(), "10 ms of backlog");
    assert_eq!(p.schedule(now, 1250), now + Duration::from_millis(10));
    assert!(p.arrival(now, 1250).is_none(), "20 ms of backlog: full");
}

#[test]
fn reports_are_due_on_time() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    assert!(p.report_due(ms(0), false), "first heartbeat at once");
    p.on_sent(ms(0), 60, true);
    assert!(!p.report_due(ms(19), true));
    assert!(p.report_due(ms(20), true));
    assert!(!p.report_due(ms(49), false));
    assert!(p.report_due(ms(50), false));
    assert_eq!(p.next_report(false), Some(ms(50)));
}

#[test]
fn data_without_an_answer_makes_a_path_suspect_sooner_than_silence() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let t = feed(&mut p, 100, 10, 30, 8000, &mut packets);
    assert_eq!(p.state(), PathState::Up);
    // Heard at t; data goes out from t + 5 ms on, nothing comes back.
    p.on_sent(ms(t + 5), 1200, false);
    p.on_sent(ms(t + 15), 1200, false);
    let srtt = p.info().srtt_us.unwrap() / 1000;
    // A report is due within a round trip and a report interval of the first.
    assert!(!p.suspect(ms(t + 5 + srtt + 20)));
    let limit = t + 5 + srtt + 20 + 5 + 4 * p.rttvar_us / 1000 + 1;
    assert!(p.suspect(ms(limit)), "unanswered for {} ms", limit - t - 5);
    assert!(
        limit - t < 50 + 40,
        "sooner than the silence rule for an idle path"
    );
    // Anything from the peer answers; new data starts a new wait.
    p.on_received(ms(limit));
    assert!(!p.suspect(ms(limit + 1)));
    // Reports alone (heartbeats) never start the wait.
    p.on_sent(ms(limit + 2), 0, true);
    assert!(!p.suspect(ms(limit + 2 + srtt + 40)));
}

/// Start-up under a one-way delay 12 ms above its minimum, with the receive
/// rate still growing: on a jittery path (RTT varying by ±10 ms) that is the
/// jitter, on a steady one it is a queue.
fn startup_under_excess(jitter_ms: u64) -> Path {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let (mut t, mut packets) = (200u64, 0u32);
    for i in 0..40u64 {
        t += 20;
        packets += 10;
        for _ in 0..10_000 {
            if p.next_send > ms(t + 20) {
                break;
            }
            p.schedule(ms(t), 1500);
        }
        let rtt = if i % 2 == 0 {
            70 - jitter_ms
        } else {
            70 + jitter_ms
        };
        let owd = if i < 10 { 5_000 } else { 17_000 };
        let rate = 2_000 * (1 + i as u32 / 4);
        p.on_received(ms(t));
        p.on_report(
            ms(t),
            &report(packets, u64::from(packets) - 1, ms(t - rtt), rate, owd),
        );
    }
    p
}

#[test]
fn jitter_is_not_mistaken_for_a_queue() {
    let jittery = startup_under_excess(10);
    assert_eq!(jittery.info().mode, "startup", "{:?}", jittery.info());
    let steady = startup_under_excess(0);
    assert_ne!(steady.info().mode, "startup", "{:?}", steady.info());
}

/// Start-up with the receive rate flat at 19.4 Mbit/s while the scheduler
/// offers the path `offered_kbps`, well within startup's doubled pacing (the
/// pacer never runs 70% full); reports every 20 ms, 20 ms round trip.
fn startup_offered(offered_kbps: u64) -> Path {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let (mut t, mut packets) = (200u64, 0u32);
    let mut owed = 0u64;
    for _ in 0..40 {
        t += 20;
        packets += 10;
        owed += offered_kbps * 125 * 20 / 1000;
        while owed >= 1500 {
            p.schedule(ms(t), 1500);
            owed -= 1500;
        }
        p.on_received(ms(t));
        p.on_report(
            ms(t),
            &report(packets, u64::from(packets) - 1, ms(t - 20), 19_400, 5_000),
        );
    }
    p
}

#[test]
fn startup_ends_when_offered_more_than_arrives() {
    // 8% more offered than arrives, rounds after rounds: the path is full,
    // though startup's allowance is far from used.
    let full = startup_offered(21_000);
    assert_ne!(full.info().mode, "startup", "{:?}", full.info());
    assert!(
        full.pacing_rate() < 19_400 * 125 * 3 / 2,
        "{:?}",
        full.info()
    );
    // Offered no more than arrives: the flow, not the path, is the limit, and
    // startup goes on (it ends when the flow grows into the path).
    let app_limited = startup_offered(19_400);
    assert_eq!(
        app_limited.info().mode,
        "startup",
        "{:?}",
        app_limited.info()
    );
}

/// TCP's pacer limit is the flow's unloaded round trip, within
/// [MAX_BACKLOG, TCP_MAX_BACKLOG]: S2's 10 ms and 30 ms paths give 40 ms,
/// S3's 10 ms and 150 ms 160 ms; a single 5 ms path the floor; S4's 15 ms
/// DSL and 300 ms satellite the ceiling.
#[test]
fn tcp_backlog_is_the_unloaded_round_trip_within_bounds() {
    let d = Duration::from_millis;
    assert_eq!(tcp_backlog(d(10), d(30)), d(40));
    assert_eq!(tcp_backlog(d(10), d(150)), d(160));
    assert_eq!(tcp_backlog(d(5), d(5)), MAX_BACKLOG);
    assert_eq!(tcp_backlog(d(15), d(300)), TCP_MAX_BACKLOG);
}

#[test]
fn a_queue_is_cut_for_once_per_round_trip() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 0, 50, 20, 40_000, &mut packets);
    assert_eq!(p.info().btl_bw, 40_000 * 125);
    // A 30 ms queue shows in every report while the pacer has a backlog, each
    // report with the rate we sent at in the interval before it (in a drain,
    // half). Once the smoothed queue passes the target the estimate is cut;
    // the next two reports still show what was sent before that cut (a round
    // trip and two reports back) and must not cut again: before the rule, the
    // first report after the drain cut the estimate to what the drain sent.
    let mut seen = Vec::new();
    let mut rate_kbps = 40_000;
    for _ in 0..12 {
        t += 20;
        while p.next_send <= ms(t + 20) {
            p.schedule(ms(t), 1500);
        }
        // The 7th report of a growing queue: 35 ms over the 5 ms base.
        queue_growing(&mut p, t, &mut packets, 10, rate_kbps, 6);
        seen.push((p.info().btl_bw, p.info().mode));
        rate_kbps = (p.pacing_rate() * 8 / 1000) as u32;
    }
    let k = seen.iter().position(|&(_, m)| m == "drain").expect("a cut");
    assert!(
        seen[k..k + 3].iter().all(|&(bw, _)| bw == seen[k].0),
        "cut again within a round: {seen:?}"
    );
    // A round after the cut the queue counts again.
    assert!(seen[11].0 < seen[k].0, "{seen:?}");
}

/// A satellite path (600 ms round trip) probes for more about once a round
/// trip, not once in eight as BBR does: its estimate must climb within
/// seconds when a flow outgrows it (S4's satellite took 10 s from 12 to 24
/// Mbit/s with BBR's cycle).
#[test]
fn a_long_path_probes_up_about_once_a_round_trip() {
    let mut p = Path::new(0, PathConfig::default(), ms(0));
    let mut packets = 0;
    let mut t = feed(&mut p, 600, 500, 600, 25_000, &mut packets);
    assert_eq!(p.info().mode, "probe", "{:?}", p.info());
    let (mut probes, mut up) = (0, false);
    // 10 s more, one report every 20 ms.
    for _ in 0..500 {
        t = feed(&mut p, t, 1, 600, 25_000, &mut packets);
        let now_up = p.pacing_rate() > p.info().btl_bw;
        probes += u32::from(now_up && !up);
        up = now_up;
    }
    // One cycle: 2 × 80 ms of probe and drain, 6 × 100 ms of cruise: 13 in
    // 10 s. BBR's eight round trips: 2.
    assert!((11..=14).contains(&probes), "{probes} up-probes in 10 s");
}
