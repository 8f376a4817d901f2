//! Handshake vectors from an independent Python model (vectors.py, which uses
//! hashlib, hmac and OpenSSL through `cryptography`), primitive vectors from
//! WireGuard's own tests, and every way a handshake must fail.

use super::primitives::{hmac, kdf, mac};
use super::*;

fn hex(s: &str) -> std::vec::Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An "RNG" that hands out fixed bytes: makes ephemeral keys deterministic.
struct Fixed(std::vec::Vec<u8>);

impl RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let n = dest.len();
        dest.copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Fixed {}

fn rng() -> rand_chacha::ChaCha20Rng {
    rand_core::SeedableRng::seed_from_u64(7)
}

const INIT: &str = "010000001122334413be4feaeaf204c7fd3358fc9c00721881d174278128227ec674f37f7fe97b6d637d2d7dc8a7bcba0d9cebee6fd40b84dd65f60c1f7b0c5efa4a75288472f086d5f214c16feaf64cdde84886e93597c20b7e27ab5b15acb9f5914a0f606bec310c7168e5a7fc70932f1f917f3d6d1f06ebb9e30d79ebabd23ff8bef900000000000000000000000000000000";
const RESPONSE: &str = "02000000556677881122334457db4b359f23ae5e146e4e2512056704722506348c150c14753d0c933d04d42196e0f2cf3dbad4a998c2c3130a649e9cc8b126b962d2c2ac7392e893f1962c7100000000000000000000000000000000";
const INITIATOR_SEND: &str = "e05c8f7123566b63adaad623ca7fdf4eac632812b49f1e50750b3fead0f540ac";
const INITIATOR_RECV: &str = "cf6e44b409033cdbfd75841effd2747564e3f63a17239b6e5ac0f340196bc45c";

fn s_i() -> [u8; 32] {
    core::array::from_fn(|i| i as u8 + 1)
}
fn s_r() -> [u8; 32] {
    core::array::from_fn(|i| i as u8 + 101)
}
const PSK: [u8; 32] = [0x42; 32];
const TS: [u8; 12] = [0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0, 0x0a, 0, 0, 0];

#[test]
fn kdf_and_hmac_vectors() {
    // wireguard-go device/kdf_test.go (full values recomputed with Python hmac);
    // its keys are short strings, so the chain is spelt out with hmac().
    let prk = hmac(b"test-key", &[b"test-input"]);
    let t1 = hmac(&prk, &[&[1]]);
    let t2 = hmac(&prk, &[&t1, &[2]]);
    assert_eq!(
        t1.to_vec(),
        hex("6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633")
    );
    assert_eq!(
        t2.to_vec(),
        hex("df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a")
    );
    // The kernel's HMAC-BLAKE2s self test (lib/crypto/blake2s-selftest.c).
    let key = hex("0101020305080d1522375990e97962db3d18556dc22ff12011314273b528dd05");
    let msg: std::vec::Vec<u8> = (0..=255u8).collect();
    assert_eq!(
        hmac(&key, &[&msg]).to_vec(),
        hex("cee1576982dcbf43ad564c70ed681696cfa473e8e8fc3279080a7582da3f0511")
    );
    assert_eq!(
        hmac(&msg, &[&key]).to_vec(),
        hex("772f0c7141f44b2bb3c6b6f960dee4523866e8bf9b96c49f60d9243799d6ec31")
    );
    // Keyed BLAKE2s-128 with a 16-byte key (Python hashlib).
    let k: [u8; 16] = core::array::from_fn(|i| i as u8);
    assert_eq!(
        mac(&k, &[b"abc"]).to_vec(),
        hex("75296c2d2c0f51210b383f386bc8b1ff")
    );
    // kdf() agrees with the hand-rolled chain above.
    let [a, b] = kdf::<2>(&hmac_key(b"x"), b"y");
    let prk = hmac(&hmac_key(b"x"), &[b"y"]);
    assert_eq!(a, hmac(&prk, &[&[1]]));
    assert_eq!(b, hmac(&prk, &[&a, &[2]]));
}

fn hmac_key(k: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out[..k.len()].copy_from_slice(k);
    out
}

#[test]
fn full_handshake_matches_the_independent_model() {
    let (ini, res) = (LocalIdentity::new(s_i()), LocalIdentity::new(s_r()));
    let res_as_remote = RemoteIdentity::new(res.public(), PSK);
    let ini_as_remote = RemoteIdentity::new(ini.public(), PSK);

    let (state, init) = initiate(
        &ini,
        &res_as_remote,
        0x1122_3344,
        Tai64n(TS),
        None,
        &mut Fixed(vec![7; 32]),
    )
    .unwrap();
    assert_eq!(init.to_vec(), hex(INIT));
    assert_eq!(state.mac1.to_vec(), hex(INIT)[116..132].to_vec());

    let got = receive_initiation(&res, &init).unwrap();
    assert_eq!(got.peer, ini.public());
    assert_eq!(got.timestamp, Tai64n(TS));
    assert_eq!(got.sender_index, 0x1122_3344);
    let (resp, rkeys) = respond(
        &res,
        &ini_as_remote,
        got,
        0x5566_7788,
        None,
        &mut Fixed(vec![9; 32]),
    )
    .unwrap();
    assert_eq!(resp.to_vec(), hex(RESPONSE));

    let ikeys = receive_response(&ini, &res_as_remote, &state, &resp).unwrap();
    assert_eq!(ikeys.send.to_vec(), hex(INITIATOR_SEND));
    assert_eq!(ikeys.recv.to_vec(), hex(INITIATOR_RECV));
    assert_eq!((rkeys.send, rkeys.recv), (ikeys.recv, ikeys.send));
    assert_eq!(
        (ikeys.local_index, ikeys.remote_index),
        (0x1122_3344, 0x5566_7788)
    );
    assert_eq!(
        (rkeys.local_index, rkeys.remote_index),
        (0x5566_7788, 0x1122_3344)
    );
    assert!(ikeys.initiator && !rkeys.initiator);
}

#[test]
fn random_handshakes_agree() {
    let mut r = rng();
    for _ in 0..20 {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        r.fill_bytes(&mut a);
        r.fill_bytes(&mut b);
        let (ini, res) = (LocalIdentity::new(a), LocalIdentity::new(b));
        let (st, m1) = initiate(
            &ini,
            &RemoteIdentity::new(res.public(), [0; 32]),
            1,
            Tai64n::from_unix(1, 0),
            None,
            &mut r,
        )
        .unwrap();
        let got = receive_initiation(&res, &m1).unwrap();
        let (m2, rk) = respond(
            &res,
            &RemoteIdentity::new(got.peer, [0; 32]),
            got,
            2,
            None,
            &mut r,
        )
        .unwrap();
        let ik =
            receive_response(&ini, &RemoteIdentity::new(res.public(), [0; 32]), &st, &m2).unwrap();
        assert_eq!((ik.send, ik.recv), (rk.recv, rk.send));
    }
}

#[test]
fn wrong_keys_fail() {
    let mut r = rng();
    let (ini, res, other) = (
        LocalIdentity::new(s_i()),
        LocalIdentity::new(s_r()),
        LocalIdentity::new([3; 32]),
    );
    // Sent to another responder's public key: mac1 does not verify here.
    let (_, m1) = initiate(
        &ini,
        &RemoteIdentity::new(other.public(), PSK),
        1,
        Tai64n(TS),
        None,
        &mut r,
    )
    .unwrap();
    assert_eq!(
        receive_initiation(&res, &m1).err(),
        Some(HandshakeError::BadMac1)
    );
    // Different pre-shared keys: the initiator rejects the response.
    let (st, m1) = initiate(
        &ini,
        &RemoteIdentity::new(res.public(), PSK),
        1,
        Tai64n(TS),
        None,
        &mut r,
    )
    .unwrap();
    let got = receive_initiation(&res, &m1).unwrap();
    let (m2, _) = respond(
        &res,
        &RemoteIdentity::new(got.peer, [0x43; 32]),
        got,
        2,
        None,
        &mut r,
    )
    .unwrap();
    assert_eq!(
        receive_response(&ini, &RemoteIdentity::new(res.public(), PSK), &st, &m2).err(),
        Some(HandshakeError::Decrypt)
    );
    // A response for another handshake.
    let (st2, _) = initiate(
        &ini,
        &RemoteIdentity::new(res.public(), PSK),
        9,
        Tai64n(TS),
        None,
        &mut r,
    )
    .unwrap();
    assert_eq!(
        receive_response(&ini, &RemoteIdentity::new(res.public(), PSK), &st2, &m2).err(),
        Some(HandshakeError::UnexpectedResponse)
    );
}

#[test]
fn every_modified_byte_of_an_initiation_is_refused() {
    let (ini, res) = (LocalIdentity::new(s_i()), LocalIdentity::new(s_r()));
    let (_, m1) = initiate(
        &ini,
        &RemoteIdentity::new(res.public(), PSK),
        1,
        Tai64n(TS),
        None,
        &mut rng(),
    )
    .unwrap();
    for i in 0..116 {
        let mut m = m1;
        m[i] ^= 0x10;
        assert!(receive_initiation(&res, &m).is_err(), "byte {i}");
    }
    assert_eq!(
        receive_initiation(&res, &m1[..147]).err(),
        Some(HandshakeError::Malformed)
    );
}

#[test]
fn low_order_ephemeral_is_refused() {
    let (ini, res) = (LocalIdentity::new(s_i()), LocalIdentity::new(s_r()));
    let (_, mut m1) = initiate(
        &ini,
        &RemoteIdentity::new(res.public(), PSK),
        1,
        Tai64n(TS),
        None,
        &mut rng(),
    )
    .unwrap();
    m1[8..40].fill(0); // the all-zero point
    let m1_key = hash(&[LABEL_MAC1, &res.public()]);
    let m = mac(&m1_key, &[&m1[..116]]);
    m1[116..132].copy_from_slice(&m);
    assert_eq!(
        receive_initiation(&res, &m1).err(),
        Some(HandshakeError::WeakKey)
    );
}

#[test]
fn cookies_bind_mac2_to_the_source_and_expire() {
    let mut r = rng();
    let (ini, res) = (LocalIdentity::new(s_i()), LocalIdentity::new(s_r()));
    let res_remote = RemoteIdentity::new(res.public(), PSK);
    let mut jar = CookieJar::new();
    let src = b"198.51.100.7:4500";
    let (st, m1) = initiate(&ini, &res_remote, 5, Tai64n(TS), None, &mut r).unwrap();
    assert!(!jar.check_mac2(0, &m1, src, &mut r), "no cookie yet");
    let reply = jar.reply(0, &res, &m1, src, &mut r).unwrap();
    assert_eq!(cookie_reply_receiver(&reply), Some(5));
    let cookie = receive_cookie_reply(&res_remote, &st.mac1, &reply).unwrap();
    // A cookie reply is bound to the mac1 it answers.
    assert_eq!(
        receive_cookie_reply(&res_remote, &[0; 16], &reply),
        Err(HandshakeError::Decrypt)
    );
    let (_, m1b) = initiate(&ini, &res_remote, 6, Tai64n(TS), Some(&cookie), &mut r).unwrap();
    assert!(jar.check_mac2(1_000_000, &m1b, src, &mut r));
    assert!(
        !jar.check_mac2(1_000_000, &m1b, b"198.51.100.8:4500", &mut r),
        "another source"
    );
    assert!(
        receive_initiation(&res, &m1b).is_ok(),
        "mac2 does not change the handshake"
    );
    // After the secret rotates, the old cookie no longer works.
    assert!(!jar.check_mac2(COOKIE_SECRET_MAX_AGE_US + 1, &m1b, src, &mut r));
}

#[test]
fn tai64n_orders_like_time_and_hides_fine_timing() {
    assert!(Tai64n::from_unix(100, 0) < Tai64n::from_unix(100, 20_000_000));
    assert!(Tai64n::from_unix(100, 999_999_999) < Tai64n::from_unix(101, 0));
    assert_eq!(
        Tai64n::from_unix(100, 1),
        Tai64n::from_unix(100, 16_000_000)
    );
}
