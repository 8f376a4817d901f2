//! Connection tests: see sim.rs for the scenario suite.

use super::is_tcp;

#[test]
fn tcp_is_recognised_in_ipv4_and_ipv6_only() {
    let mut v4 = [0u8; 40];
    v4[0] = 0x45;
    v4[9] = 6;
    assert!(is_tcp(&v4));
    v4[9] = 17;
    assert!(!is_tcp(&v4));
    let mut v6 = [0u8; 60];
    v6[0] = 0x60;
    v6[6] = 6;
    assert!(is_tcp(&v6));
    v6[6] = 0; // a hop-by-hop header first: not looked into
    assert!(!is_tcp(&v6));
    assert!(!is_tcp(&[]));
    assert!(!is_tcp(&[0x45, 0, 0]), "truncated");
}
