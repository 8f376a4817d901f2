//! The tunnel's authenticated key exchange: Noise IKpsk2 over X25519, BLAKE2s and
//! ChaCha20-Poly1305, as WireGuard uses it (whitepaper section 5), with its
//! stateless cookie defence against handshake floods.
//!
//! * Each router and the concentrator have a static X25519 key pair; the router
//!   knows the concentrator's public key, the concentrator knows each router's.
//!   An optional pre-shared key per router adds a symmetric secret (post-quantum
//!   hedging, as in WireGuard). Both ephemeral keys give forward secrecy.
//! * The initiation carries the router's static key encrypted and a TAI64N
//!   timestamp, which the concentrator accepts only if it is newer than the last
//!   one from that router (replay protection without state for strangers).
//! * `mac1` (keyed by the receiver's public key) lets the receiver drop junk with
//!   one BLAKE2s before any Diffie-Hellman. Under load, the receiver also demands
//!   `mac2`, keyed by a cookie bound to the sender's address: a stranger gets a
//!   64-byte cookie reply and costs no state (see [`CookieJar`]).
//!
//! Differences from WireGuard, so the two can never be confused: the protocol
//! identifier, big-endian indexes, and the transport format (see [`crate::wire`]).
//! All functions are pure: randomness and time come from the caller.

pub mod primitives;

use core::fmt;
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};

use primitives::{ct_eq, hash, kdf, mac, open, seal, xopen, xseal, Hash};

/// Noise protocol name.
pub const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// braid's prologue identifier (WireGuard's is "WireGuard v1 zx2c4 Jason@zx2c4.com").
pub const IDENTIFIER: &[u8] = b"braid v1 multipath tunnel";
/// Label of the mac1 key.
pub const LABEL_MAC1: &[u8] = b"mac1----";
/// Label of the cookie encryption key.
pub const LABEL_COOKIE: &[u8] = b"cookie--";

/// Handshake initiation length.
pub const INIT_LEN: usize = 148;
/// Handshake response length.
pub const RESPONSE_LEN: usize = 92;
/// Cookie reply length.
pub const COOKIE_REPLY_LEN: usize = 64;

/// A cookie secret is replaced after this many microseconds (WireGuard's
/// COOKIE_SECRET_MAX_AGE, 120 s).
pub const COOKIE_SECRET_MAX_AGE_US: u64 = 120_000_000;
/// A received cookie is used for mac2 only while younger than this (120 s minus
/// WireGuard's 5 s latency allowance).
pub const COOKIE_VALID_US: u64 = 115_000_000;

mod field {
    pub const INIT_SENDER: usize = 4;
    pub const INIT_EPHEMERAL: usize = 8;
    pub const INIT_STATIC: usize = 40;
    pub const INIT_TIMESTAMP: usize = 88;
    pub const INIT_MAC1: usize = 116;
    pub const INIT_MAC2: usize = 132;
    pub const RESP_SENDER: usize = 4;
    pub const RESP_RECEIVER: usize = 8;
    pub const RESP_EPHEMERAL: usize = 12;
    pub const RESP_EMPTY: usize = 44;
    pub const RESP_MAC1: usize = 60;
    pub const RESP_MAC2: usize = 76;
    pub const COOKIE_RECEIVER: usize = 4;
    pub const COOKIE_NONCE: usize = 8;
    pub const COOKIE_DATA: usize = 32;
}

/// Why a handshake message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Wrong length, type or reserved bytes.
    Malformed,
    /// mac1 is wrong: not addressed to our public key, or corrupted.
    BadMac1,
    /// An encrypted field did not authenticate (wrong keys or tampering).
    Decrypt,
    /// A Diffie-Hellman result was all zeros (a low-order point).
    WeakKey,
    /// The response answers no handshake we started.
    UnexpectedResponse,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed handshake message",
            Self::BadMac1 => "mac1 does not verify",
            Self::Decrypt => "handshake field does not authenticate",
            Self::WeakKey => "low-order public key",
            Self::UnexpectedResponse => "response to no pending handshake",
        })
    }
}

/// A TAI64N timestamp (12 bytes: big-endian seconds since 1970 plus 2^62, then
/// nanoseconds), compared as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Tai64n(pub [u8; 12]);

impl Tai64n {
    /// From wall-clock time. Nanoseconds are rounded down to 2^24 ns (16.8 ms), as
    /// WireGuard does, so the timestamp does not leak precise timing.
    pub fn from_unix(secs: u64, nanos: u32) -> Self {
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&(0x4000_0000_0000_000a_u64 + secs).to_be_bytes());
        t[8..].copy_from_slice(&(nanos & !0x00ff_ffff).to_be_bytes());
        Self(t)
    }
}

/// This side's static key pair, with the keys derived from its public key.
pub struct LocalIdentity {
    secret: StaticSecret,
    public: PublicKey,
    mac1_key: Hash,
    cookie_key: Hash,
}

impl LocalIdentity {
    /// From the 32-byte X25519 private key.
    pub fn new(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        Self {
            mac1_key: hash(&[LABEL_MAC1, public.as_bytes()]),
            cookie_key: hash(&[LABEL_COOKIE, public.as_bytes()]),
            secret,
            public,
        }
    }

    /// The public key to give the peer.
    pub fn public(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Checks mac1 of a received initiation or response: the cheap filter that
    /// runs before anything else.
    pub fn check_mac1(&self, msg: &[u8]) -> bool {
        let at = match msg.len() {
            INIT_LEN => field::INIT_MAC1,
            RESPONSE_LEN => field::RESP_MAC1,
            _ => return false,
        };
        ct_eq(&mac(&self.mac1_key, &[&msg[..at]]), &msg[at..at + 16])
    }
}

/// The other side: its public key, the pre-shared key, and the keys derived from them.
pub struct RemoteIdentity {
    public: PublicKey,
    psk: [u8; 32],
    mac1_key: Hash,
    cookie_key: Hash,
}

impl RemoteIdentity {
    /// A peer with public key `public` and pre-shared key `psk` (zeros: none).
    pub fn new(public: [u8; 32], psk: [u8; 32]) -> Self {
        Self {
            mac1_key: hash(&[LABEL_MAC1, &public]),
            cookie_key: hash(&[LABEL_COOKIE, &public]),
            public: PublicKey::from(public),
            psk,
        }
    }

    /// The peer's public key.
    pub fn public(&self) -> [u8; 32] {
        self.public.to_bytes()
    }
}

/// Keys for one session, each direction its own, and the indexes that route
/// packets to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Key this side seals with.
    pub send: [u8; 32],
    /// Key this side opens with.
    pub recv: [u8; 32],
    /// Index the peer puts in packets to us.
    pub local_index: u32,
    /// Index we put in packets to the peer.
    pub remote_index: u32,
    /// Whether this side sent the initiation.
    pub initiator: bool,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("initiator", &self.initiator)
            .finish_non_exhaustive()
    }
}

/// The initiator's state between sending the initiation and getting the response.
pub struct Initiation {
    chaining_key: Hash,
    hash: Hash,
    ephemeral: StaticSecret,
    /// Index this side chose.
    pub local_index: u32,
    /// mac1 of the initiation, the associated data of a cookie reply to it.
    pub mac1: [u8; 16],
}

fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<[u8; 32], HandshakeError> {
    let shared = secret.diffie_hellman(public);
    if shared.was_contributory() {
        Ok(shared.to_bytes())
    } else {
        Err(HandshakeError::WeakKey)
    }
}

fn initial(responder_public: &[u8; 32]) -> (Hash, Hash) {
    let c = hash(&[CONSTRUCTION]);
    let h = hash(&[&c, IDENTIFIER]);
    (c, hash(&[&h, responder_public]))
}

fn header(msg: &mut [u8], kind: u8) {
    msg[0] = kind;
    msg[1..4].fill(0);
}

fn check_header(msg: &[u8], kind: u8, len: usize) -> Result<(), HandshakeError> {
    if msg.len() != len || msg[0] != kind || msg[1..4] != [0, 0, 0] {
        return Err(HandshakeError::Malformed);
    }
    Ok(())
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes mac1 (keyed by the receiver's public key) and mac2 (keyed by a cookie,
/// or zeros) at `at` and `at + 16`.
fn add_macs(msg: &mut [u8], at: usize, mac1_key: &Hash, cookie: Option<&[u8; 16]>) -> [u8; 16] {
    let m1 = mac(mac1_key, &[&msg[..at]]);
    msg[at..at + 16].copy_from_slice(&m1);
    let m2 = cookie.map_or([0; 16], |c| mac(c, &[&msg[..at + 16]]));
    msg[at + 16..at + 32].copy_from_slice(&m2);
    m1
}

/// Creates a handshake initiation (message type 1) to `remote`.
///
/// `cookie` is the latest cookie the responder sent (if younger than
/// [`COOKIE_VALID_US`]), for mac2. The ephemeral key comes from `rng`.
pub fn initiate<R: RngCore + CryptoRng>(
    local: &LocalIdentity,
    remote: &RemoteIdentity,
    local_index: u32,
    now: Tai64n,
    cookie: Option<&[u8; 16]>,
    rng: &mut R,
) -> Result<(Initiation, [u8; INIT_LEN]), HandshakeError> {
    let mut msg = [0u8; INIT_LEN];
    header(&mut msg, 1);
    msg[field::INIT_SENDER..field::INIT_SENDER + 4].copy_from_slice(&local_index.to_be_bytes());
    let (mut c, mut h) = initial(remote.public.as_bytes());

    let ephemeral = StaticSecret::random_from_rng(rng);
    let e_pub = PublicKey::from(&ephemeral);
    msg[field::INIT_EPHEMERAL..field::INIT_STATIC].copy_from_slice(e_pub.as_bytes());
    h = hash(&[&h, e_pub.as_bytes()]);
    [c] = kdf(&c, e_pub.as_bytes());

    let [c2, k] = kdf(&c, &dh(&ephemeral, &remote.public)?);
    c = c2;
    let s = &mut msg[field::INIT_STATIC..field::INIT_TIMESTAMP];
    s[..32].copy_from_slice(local.public.as_bytes());
    seal(&k, &h, s);
    h = hash(&[&h, &msg[field::INIT_STATIC..field::INIT_TIMESTAMP]]);

    let [c2, k] = kdf(&c, &dh(&local.secret, &remote.public)?);
    c = c2;
    let t = &mut msg[field::INIT_TIMESTAMP..field::INIT_MAC1];
    t[..12].copy_from_slice(&now.0);
    seal(&k, &h, t);
    h = hash(&[&h, &msg[field::INIT_TIMESTAMP..field::INIT_MAC1]]);

    let mac1 = add_macs(&mut msg, field::INIT_MAC1, &remote.mac1_key, cookie);
    Ok((
        Initiation {
            chaining_key: c,
            hash: h,
            ephemeral,
            local_index,
            mac1,
        },
        msg,
    ))
}

/// What a valid initiation says, before the responder decides to answer.
pub struct ReceivedInitiation {
    /// The initiator's static public key (look it up among known peers).
    pub peer: [u8; 32],
    /// Its timestamp (accept only if newer than the last one from this peer).
    pub timestamp: Tai64n,
    /// The initiator's index.
    pub sender_index: u32,
    chaining_key: Hash,
    hash: Hash,
    ephemeral: PublicKey,
}

/// Consumes an initiation addressed to `local`. The caller has checked mac1 (and,
/// under load, mac2) first; this does two Diffie-Hellman operations.
pub fn receive_initiation(
    local: &LocalIdentity,
    msg: &[u8],
) -> Result<ReceivedInitiation, HandshakeError> {
    check_header(msg, 1, INIT_LEN)?;
    if !local.check_mac1(msg) {
        return Err(HandshakeError::BadMac1);
    }
    let (mut c, mut h) = initial(local.public.as_bytes());
    let mut e = [0u8; 32];
    e.copy_from_slice(&msg[field::INIT_EPHEMERAL..field::INIT_STATIC]);
    let e_pub = PublicKey::from(e);
    h = hash(&[&h, &e]);
    [c] = kdf(&c, &e);

    let [c2, k] = kdf(&c, &dh(&local.secret, &e_pub)?);
    c = c2;
    let mut s = [0u8; 48];
    s.copy_from_slice(&msg[field::INIT_STATIC..field::INIT_TIMESTAMP]);
    if !open(&k, &h, &mut s) {
        return Err(HandshakeError::Decrypt);
    }
    h = hash(&[&h, &msg[field::INIT_STATIC..field::INIT_TIMESTAMP]]);
    let mut peer = [0u8; 32];
    peer.copy_from_slice(&s[..32]);

    let [c2, k] = kdf(&c, &dh(&local.secret, &PublicKey::from(peer))?);
    c = c2;
    let mut t = [0u8; 28];
    t.copy_from_slice(&msg[field::INIT_TIMESTAMP..field::INIT_MAC1]);
    if !open(&k, &h, &mut t) {
        return Err(HandshakeError::Decrypt);
    }
    h = hash(&[&h, &msg[field::INIT_TIMESTAMP..field::INIT_MAC1]]);
    let mut ts = [0u8; 12];
    ts.copy_from_slice(&t[..12]);
    Ok(ReceivedInitiation {
        peer,
        timestamp: Tai64n(ts),
        sender_index: be32(msg, field::INIT_SENDER),
        chaining_key: c,
        hash: h,
        ephemeral: e_pub,
    })
}

/// Answers a valid initiation from `remote` (whose public key it carried): writes
/// the response (message type 2) and derives the session keys.
pub fn respond<R: RngCore + CryptoRng>(
    local: &LocalIdentity,
    remote: &RemoteIdentity,
    init: ReceivedInitiation,
    local_index: u32,
    cookie: Option<&[u8; 16]>,
    rng: &mut R,
) -> Result<([u8; RESPONSE_LEN], SessionKeys), HandshakeError> {
    let _ = local;
    let (mut c, mut h) = (init.chaining_key, init.hash);
    let mut msg = [0u8; RESPONSE_LEN];
    header(&mut msg, 2);
    msg[field::RESP_SENDER..field::RESP_SENDER + 4].copy_from_slice(&local_index.to_be_bytes());
    msg[field::RESP_RECEIVER..field::RESP_RECEIVER + 4]
        .copy_from_slice(&init.sender_index.to_be_bytes());

    let ephemeral = StaticSecret::random_from_rng(rng);
    let e_pub = PublicKey::from(&ephemeral);
    msg[field::RESP_EPHEMERAL..field::RESP_EMPTY].copy_from_slice(e_pub.as_bytes());
    h = hash(&[&h, e_pub.as_bytes()]);
    [c] = kdf(&c, e_pub.as_bytes());
    [c] = kdf(&c, &dh(&ephemeral, &init.ephemeral)?);
    [c] = kdf(&c, &dh(&ephemeral, &remote.public)?);
    let [c2, tau, k] = kdf(&c, &remote.psk);
    c = c2;
    h = hash(&[&h, &tau]);
    seal(&k, &h, &mut msg[field::RESP_EMPTY..field::RESP_MAC1]);
    let _ = hash(&[&h, &msg[field::RESP_EMPTY..field::RESP_MAC1]]);
    add_macs(&mut msg, field::RESP_MAC1, &remote.mac1_key, cookie);

    let [recv, send] = kdf(&c, &[]);
    Ok((
        msg,
        SessionKeys {
            send,
            recv,
            local_index,
            remote_index: init.sender_index,
            initiator: false,
        },
    ))
}

/// Consumes the response to `state` and derives the session keys.
pub fn receive_response(
    local: &LocalIdentity,
    remote: &RemoteIdentity,
    state: &Initiation,
    msg: &[u8],
) -> Result<SessionKeys, HandshakeError> {
    check_header(msg, 2, RESPONSE_LEN)?;
    if !local.check_mac1(msg) {
        return Err(HandshakeError::BadMac1);
    }
    if be32(msg, field::RESP_RECEIVER) != state.local_index {
        return Err(HandshakeError::UnexpectedResponse);
    }
    let (mut c, mut h) = (state.chaining_key, state.hash);
    let mut e = [0u8; 32];
    e.copy_from_slice(&msg[field::RESP_EPHEMERAL..field::RESP_EMPTY]);
    let e_pub = PublicKey::from(e);
    h = hash(&[&h, &e]);
    [c] = kdf(&c, &e);
    [c] = kdf(&c, &dh(&state.ephemeral, &e_pub)?);
    [c] = kdf(&c, &dh(&local.secret, &e_pub)?);
    let [c2, tau, k] = kdf(&c, &remote.psk);
    c = c2;
    h = hash(&[&h, &tau]);
    let mut empty = [0u8; 16];
    empty.copy_from_slice(&msg[field::RESP_EMPTY..field::RESP_MAC1]);
    if !open(&k, &h, &mut empty) {
        return Err(HandshakeError::Decrypt);
    }
    let [send, recv] = kdf(&c, &[]);
    Ok(SessionKeys {
        send,
        recv,
        local_index: state.local_index,
        remote_index: be32(msg, field::RESP_SENDER),
        initiator: true,
    })
}

/// The responder's defence against handshake floods: cookies bound to the sender's
/// address, under a secret that changes every two minutes. It holds one secret,
/// whatever the number of senders: a flood allocates nothing.
pub struct CookieJar {
    secret: [u8; 32],
    born_us: Option<u64>,
}

impl Default for CookieJar {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieJar {
    /// A jar whose first secret is drawn on first use.
    pub const fn new() -> Self {
        Self {
            secret: [0; 32],
            born_us: None,
        }
    }

    fn cookie<R: RngCore + CryptoRng>(
        &mut self,
        now_us: u64,
        source: &[u8],
        rng: &mut R,
    ) -> [u8; 16] {
        let stale = self
            .born_us
            .is_none_or(|b| now_us.saturating_sub(b) >= COOKIE_SECRET_MAX_AGE_US);
        if stale {
            rng.fill_bytes(&mut self.secret);
            self.born_us = Some(now_us);
        }
        mac(&self.secret, &[source])
    }

    /// Whether `msg` (initiation or response) carries a mac2 made with the cookie
    /// for `source` (the sender's address and port, in any fixed encoding).
    pub fn check_mac2<R: RngCore + CryptoRng>(
        &mut self,
        now_us: u64,
        msg: &[u8],
        source: &[u8],
        rng: &mut R,
    ) -> bool {
        let at = match msg.len() {
            INIT_LEN => field::INIT_MAC2,
            RESPONSE_LEN => field::RESP_MAC2,
            _ => return false,
        };
        let cookie = self.cookie(now_us, source, rng);
        ct_eq(&mac(&cookie, &[&msg[..at]]), &msg[at..at + 16])
    }

    /// The cookie reply (message type 3) to `msg`, encrypted for its sender with
    /// the key derived from our public key, bound to the message's mac1.
    pub fn reply<R: RngCore + CryptoRng>(
        &mut self,
        now_us: u64,
        local: &LocalIdentity,
        msg: &[u8],
        source: &[u8],
        rng: &mut R,
    ) -> Result<[u8; COOKIE_REPLY_LEN], HandshakeError> {
        let (sender_at, mac1_at) = match msg.len() {
            INIT_LEN => (field::INIT_SENDER, field::INIT_MAC1),
            RESPONSE_LEN => (field::RESP_SENDER, field::RESP_MAC1),
            _ => return Err(HandshakeError::Malformed),
        };
        let cookie = self.cookie(now_us, source, rng);
        let mut out = [0u8; COOKIE_REPLY_LEN];
        header(&mut out, 3);
        out[field::COOKIE_RECEIVER..field::COOKIE_NONCE]
            .copy_from_slice(&msg[sender_at..sender_at + 4]);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        out[field::COOKIE_NONCE..field::COOKIE_DATA].copy_from_slice(&nonce);
        out[field::COOKIE_DATA..field::COOKIE_DATA + 16].copy_from_slice(&cookie);
        xseal(
            &local.cookie_key,
            &nonce,
            &msg[mac1_at..mac1_at + 16],
            &mut out[field::COOKIE_DATA..],
        );
        Ok(out)
    }
}

/// Opens a cookie reply from `remote` to the message whose mac1 was `mac1_sent`.
pub fn receive_cookie_reply(
    remote: &RemoteIdentity,
    mac1_sent: &[u8; 16],
    msg: &[u8],
) -> Result<[u8; 16], HandshakeError> {
    check_header(msg, 3, COOKIE_REPLY_LEN)?;
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&msg[field::COOKIE_NONCE..field::COOKIE_DATA]);
    let mut data = [0u8; 32];
    data.copy_from_slice(&msg[field::COOKIE_DATA..]);
    if !xopen(&remote.cookie_key, &nonce, mac1_sent, &mut data) {
        return Err(HandshakeError::Decrypt);
    }
    let mut cookie = [0u8; 16];
    cookie.copy_from_slice(&data[..16]);
    Ok(cookie)
}

/// The receiver index a cookie reply is addressed to.
pub fn cookie_reply_receiver(msg: &[u8]) -> Option<u32> {
    (msg.len() == COOKIE_REPLY_LEN).then(|| be32(msg, field::COOKIE_RECEIVER))
}

/// The receiver index a response is addressed to.
pub fn response_receiver(msg: &[u8]) -> Option<u32> {
    (msg.len() == RESPONSE_LEN).then(|| be32(msg, field::RESP_RECEIVER))
}

#[cfg(test)]
mod tests;
