//! The hash, MAC, KDF and AEAD building blocks of the handshake, exactly as the
//! Noise framework and WireGuard define them over BLAKE2s and ChaCha20-Poly1305.

use blake2::digest::{consts::U16, FixedOutput, KeyInit, Mac, Update};
use blake2::{Blake2s256, Blake2sMac, Digest};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag, XChaCha20Poly1305, XNonce};
use hmac::SimpleHmac;

/// A BLAKE2s-256 output: chaining key, hash, or derived key.
pub type Hash = [u8; 32];

/// HASH(parts...): unkeyed BLAKE2s-256 of the concatenation.
pub fn hash(parts: &[&[u8]]) -> Hash {
    let mut h = Blake2s256::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    h.finalize().into()
}

/// HMAC(key, parts...) over BLAKE2s-256 (RFC 2104, 64-byte block).
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> Hash {
    // A key of any length is valid for HMAC; new_from_slice cannot fail.
    let mut m =
        <SimpleHmac<Blake2s256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize_fixed().into()
}

/// KDF_n(key, input) of Noise: HKDF with HMAC-BLAKE2s, n outputs of 32 bytes.
pub fn kdf<const N: usize>(key: &Hash, input: &[u8]) -> [Hash; N] {
    let prk = hmac(key, &[input]);
    let mut out = [[0u8; 32]; N];
    let mut prev: Option<Hash> = None;
    for (i, slot) in out.iter_mut().enumerate() {
        let counter = [i as u8 + 1];
        *slot = match prev {
            None => hmac(&prk, &[&counter]),
            Some(p) => hmac(&prk, &[&p, &counter]),
        };
        prev = Some(*slot);
    }
    out
}

/// MAC(key, parts...): keyed BLAKE2s with a 16-byte output, the key used at its
/// real length (32 bytes for mac1, 16 for a cookie).
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m =
        <Blake2sMac<U16> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        Update::update(&mut m, p);
    }
    m.finalize_fixed().into()
}

/// AEAD with a zero nonce (every handshake key is used exactly once): encrypts
/// `buf[..len - 16]` in place and writes the tag into its last 16 bytes.
pub fn seal(key: &Hash, aad: &[u8], buf: &mut [u8]) {
    let (body, tag) = buf.split_at_mut(buf.len() - 16);
    let aead = ChaCha20Poly1305::new(Key::from_slice(key));
    // Encryption fails only for plaintexts over 256 GiB.
    let t = aead
        .encrypt_in_place_detached(Nonce::from_slice(&[0; 12]), aad, body)
        .unwrap_or_else(|_| unreachable!());
    tag.copy_from_slice(&t);
}

/// Opens what [`seal`] wrote; false (and garbage in `buf`) if the tag is wrong.
pub fn open(key: &Hash, aad: &[u8], buf: &mut [u8]) -> bool {
    let (body, tag) = buf.split_at_mut(buf.len() - 16);
    let aead = ChaCha20Poly1305::new(Key::from_slice(key));
    aead.decrypt_in_place_detached(Nonce::from_slice(&[0; 12]), aad, body, Tag::from_slice(tag))
        .is_ok()
}

/// XChaCha20-Poly1305 for cookie replies (random 24-byte nonce).
pub fn xseal(key: &Hash, nonce: &[u8; 24], aad: &[u8], buf: &mut [u8]) {
    let (body, tag) = buf.split_at_mut(buf.len() - 16);
    let aead = XChaCha20Poly1305::new(Key::from_slice(key));
    let t = aead
        .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, body)
        .unwrap_or_else(|_| unreachable!());
    tag.copy_from_slice(&t);
}

/// Opens what [`xseal`] wrote.
pub fn xopen(key: &Hash, nonce: &[u8; 24], aad: &[u8], buf: &mut [u8]) -> bool {
    let (body, tag) = buf.split_at_mut(buf.len() - 16);
    let aead = XChaCha20Poly1305::new(Key::from_slice(key));
    aead.decrypt_in_place_detached(XNonce::from_slice(nonce), aad, body, Tag::from_slice(tag))
        .is_ok()
}

/// Compares two MACs in constant time.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
