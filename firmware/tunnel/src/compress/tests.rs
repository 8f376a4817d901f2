use super::*;
use smoltcp::wire::{IpAddress, Ipv4Address, TcpPacket};

/// An IPv4 + TCP packet with valid checksums: `options` after the 20-byte TCP
/// header, then `payload`.
fn tcp4(options: &[u8], payload: &[u8], tweak: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let offset = 20 + options.len();
    let total = 20 + offset + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[1] = 0x2a << 2 | 1; // DSCP 42, ECT(1)
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 63;
    p[9] = 6;
    p[12..16].copy_from_slice(&[192, 168, 1, 20]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    let t = &mut p[20..];
    t[..4].copy_from_slice(&[0xc3, 0x50, 0x14, 0x51]);
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[8..12].copy_from_slice(&0xa0b0_c0d0u32.to_be_bytes());
    t[12] = ((offset / 4) as u8) << 4;
    t[13] = 0x18; // ACK PSH
    t[14..16].copy_from_slice(&502u16.to_be_bytes());
    t[20..offset].copy_from_slice(options);
    t[offset..].copy_from_slice(payload);
    tweak(&mut p);
    finish(&mut p);
    p
}

/// Recomputes both checksums, as the sending host would have.
fn finish(p: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
    let src = IpAddress::Ipv4(Ipv4Address::from_octets(p[12..16].try_into().unwrap()));
    let dst = IpAddress::Ipv4(Ipv4Address::from_octets(p[16..20].try_into().unwrap()));
    TcpPacket::new_unchecked(&mut p[20..]).fill_checksum(&src, &dst);
}

const TS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];
const SACK_TS: [u8; 24] = [
    1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78, 1, 1, 5, 10, 0, 0, 1, 0, 0, 0, 2, 0,
];

/// TCP options, payload, and a change to the built packet.
type Case<'a> = (&'a [u8], &'a [u8], fn(&mut [u8]));

fn round_trip(c: &mut Compressor, d: &mut Decompressor, p: &[u8]) -> usize {
    let mut out = vec![0u8; p.len()];
    let n = c.compress(p, &mut out).expect("compressible");
    assert_eq!(d.expand(&out[..n]).unwrap(), p);
    n
}

#[test]
fn every_shape_round_trips_bit_for_bit() {
    let payload: Vec<u8> = (0..1416u32).map(|i| (i * 7) as u8).collect();
    let cases: [Case; 7] = [
        (&TS, &payload[..1404], |_| {}),
        (&[], &payload[..1416], |_| {}),
        (&SACK_TS, &[], |_| {}),
        (&[2, 4, 5, 0xb4], &[], |_| {}), // a SYN's MSS option
        (&TS, b"urgent", |p| {
            p[33] |= TCP_FLAG_URG;
            p[38..40].copy_from_slice(&[0, 3]);
        }),
        (&TS, b"x", |p| {
            p[1] = 0x03; // DSCP 0, CE
            p[6] = 0; // no DF
        }),
        (&TS, b"y", |p| p[32] |= 0x01), // AccECN's AE bit
    ];
    for (options, payload, tweak) in cases {
        let (mut c, mut d) = (Compressor::new(), Decompressor::new());
        let p = tcp4(options, payload, tweak);
        let install = round_trip(&mut c, &mut d, &p);
        let refer = round_trip(&mut c, &mut d, &p);
        assert_eq!(install, refer + CONTEXT, "{options:?}");
        let header = 40 + options.len();
        let urgent = if p[33] & TCP_FLAG_URG != 0 { 2 } else { 0 };
        let want = if options.starts_with(&TS_PREFIX) {
            25
        } else {
            21
        } - urgent;
        assert_eq!(p.len() - refer, want, "gain with {header} header bytes");
        assert!(p.len() - install >= 7);
    }
    assert_eq!(MIN_GAIN, 21);
}

#[test]
fn layout_vector() {
    let p = tcp4(&TS, b"hi", |_| {});
    let (mut c, mut d) = (Compressor::new(), Decompressor::new());
    let mut out = [0u8; 64];
    c.compress(&p, &mut out).unwrap();
    let n = c.compress(&p, &mut out).unwrap();
    let slot = out[0];
    assert!(usize::from(slot) < SLOTS);
    let csum = [p[36], p[37]];
    #[rustfmt::skip]
    let want = [
        slot, out[1], 0x80 | 1 << 5 | 0x10, 0x80, 0x18, 0xbe, 0xef,
        1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 0x01, 0xf6, csum[0], csum[1],
        0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78, b'h', b'i',
    ];
    assert_eq!(&out[..n], &want[..]);
    // The check is the FNV-1a fold of the context, pinned so that it is the
    // same on every CPU.
    assert_eq!(out[1], 0xaa);
    assert!(matches!(d.expand(&out[..n]), Err(ExpandError::Miss(s)) if s == slot));
}

#[test]
fn other_shapes_pass_through() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let mut out = [0u8; 128];
    let udp = tcp4(&[], b"dns?", |p| p[9] = 17);
    let options = tcp4(&TS, b"a", |p| p[0] = 0x46);
    let fragment = tcp4(&TS, b"a", |p| p[6] = 0x20);
    let evil = tcp4(&TS, b"a", |p| p[6] = 0xc0);
    let stray_urgent = tcp4(&TS, b"a", |p| p[39] = 1);
    let padded = {
        let mut p = tcp4(&TS, b"a", |_| {});
        p.push(0);
        p
    };
    let v6 = [0x60u8, 0, 0, 0, 0, 0, 6, 64];
    for p in [
        &udp,
        &options,
        &fragment,
        &evil,
        &stray_urgent,
        &padded,
        &v6[..].to_vec(),
    ] {
        assert_eq!(c.compress(p, &mut out), None);
        assert_eq!(d.expand(p).unwrap(), *p);
    }
    assert_eq!(c.stats(), CompressStats::default());
}

#[test]
fn a_missing_context_is_reported_and_installed_again() {
    let (mut c, mut d) = (Compressor::new(), Decompressor::new());
    let p = tcp4(&TS, b"data", |_| {});
    let mut out = [0u8; 128];
    c.compress(&p, &mut out).unwrap(); // the install, lost
    let n = c.compress(&p, &mut out).unwrap();
    let slot = out[0];
    assert_eq!(d.expand(&out[..n]), Err(ExpandError::Miss(slot)));
    assert_eq!(d.expand(&out[..n]), Err(ExpandError::Miss(slot)));
    assert_eq!(d.take_missed(), 1 << slot);
    assert_eq!(d.take_missed(), 0);
    assert_eq!(d.stats().misses, 2);
    c.forget(1 << slot);
    let n = c.compress(&p, &mut out).unwrap();
    assert_eq!(out[0] & FORM_MASK, FORM_INSTALL);
    assert_eq!(d.expand(&out[..n]).unwrap(), p);
    assert_eq!(round_trip(&mut c, &mut d, &p), p.len() - 25);
    assert_eq!(c.stats().installs, 2);
    // An install dropped before it left is not counted on: the next packet
    // installs again.
    c.forget(1 << slot);
    c.compress(&p, &mut out).unwrap();
    c.unsent();
    let n = c.compress(&p, &mut out).unwrap();
    assert_eq!(out[0] & FORM_MASK, FORM_INSTALL);
    assert_eq!(d.expand(&out[..n]).unwrap(), p);
    assert_eq!(c.stats().installs, 3);
    // A SYN always installs: a lost one's retransmission must not miss.
    let syn = tcp4(&TS, &[], |p| p[33] = 0x02);
    let mut d = Decompressor::new();
    for _ in 0..2 {
        let n = c.compress(&syn, &mut out).unwrap();
        assert_eq!(out[0] & FORM_MASK, FORM_INSTALL);
        assert_eq!(d.expand(&out[..n]).unwrap(), syn);
    }
}

#[test]
fn another_flow_in_the_slot_is_a_miss_not_a_wrong_packet() {
    // Find two flows that share a slot but not a check.
    let a = tcp4(&TS, b"a", |_| {});
    let slot_of = |p: &[u8]| Shape::of(p).unwrap().context.slot();
    let check_of = |p: &[u8]| Shape::of(p).unwrap().context.check();
    let b = (1..=u16::MAX)
        .map(|port| {
            tcp4(&TS, b"b", |p| {
                p[20..22].copy_from_slice(&port.to_be_bytes())
            })
        })
        .find(|b| slot_of(b) == slot_of(&a) && check_of(b) != check_of(&a))
        .unwrap();
    let (mut c, mut d) = (Compressor::new(), Decompressor::new());
    round_trip(&mut c, &mut d, &a);
    let mut out = [0u8; 128];
    c.compress(&b, &mut out).unwrap(); // b's install, lost
    let n = c.compress(&b, &mut out).unwrap();
    assert_eq!(d.expand(&out[..n]), Err(ExpandError::Miss(slot_of(&a))));
    // A change of TTL is a new context in the same slot.
    let ttl = tcp4(&TS, b"a", |p| p[8] = 62);
    let n = c.compress(&ttl, &mut out).unwrap();
    assert_eq!(out[0] & FORM_MASK, FORM_INSTALL);
    assert_eq!(d.expand(&out[..n]).unwrap(), ttl);
}

#[test]
fn contexts_are_refreshed() {
    let (mut c, mut d) = (Compressor::new(), Decompressor::new());
    let p = tcp4(&[], b"z", |_| {});
    let forms: Vec<u8> = (0..2 * (usize::from(REFRESH) + 1))
        .map(|_| {
            let mut out = [0u8; 64];
            let n = c.compress(&p, &mut out).unwrap();
            assert_eq!(d.expand(&out[..n]).unwrap(), p);
            out[0] & FORM_MASK
        })
        .collect();
    let installs: Vec<usize> = (0..forms.len())
        .filter(|&i| forms[i] == FORM_INSTALL)
        .collect();
    let r = usize::from(REFRESH);
    assert_eq!(installs, [0, r + 1]);
}

#[test]
fn malformed_input_is_refused_without_panicking() {
    let (mut c, mut d) = (Compressor::new(), Decompressor::new());
    let p = tcp4(&SACK_TS, b"payload", |p| {
        p[33] |= TCP_FLAG_URG;
        p[39] = 9;
    });
    let mut out = [0u8; 128];
    let n = c.compress(&p, &mut out).unwrap();
    let install = out[..n].to_vec();
    // Every cut before the payload lacks a field.
    for cut in 0..n - 7 {
        assert_eq!(
            d.expand(&install[..cut]),
            Err(ExpandError::Malformed),
            "{cut}"
        );
    }
    let mut bad = install.clone();
    bad[0] = 0x40 | bad[0] & SLOT_MASK; // no such form (and not IPv4: 0x5_)
    bad[0] = 0x50;
    assert_eq!(d.expand(&bad), Err(ExpandError::Malformed));
    let mut bad = install.clone();
    bad[2] |= 1;
    assert_eq!(d.expand(&bad), Err(ExpandError::Malformed));
    let mut bad = install.clone();
    bad[3] = 0x70; // data offset 28 bytes: too short for TS
    assert_eq!(d.expand(&bad), Err(ExpandError::Malformed));
    let mut bad = install.clone();
    bad[1] ^= 1; // inline context that does not match its check
    assert_eq!(d.expand(&bad), Err(ExpandError::Malformed));
    assert_eq!(d.expand(&install).unwrap(), p);
    assert_eq!(d.stats().expanded, 1);
}
