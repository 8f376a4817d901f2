#!/usr/bin/env python3
"""Independent model of braid's handshake (Noise IKpsk2, handshake/mod.rs), written
from the Noise and WireGuard specifications with Python's hashlib, hmac and the
`cryptography` package (OpenSSL). It prints the test vectors that
handshake/tests.rs checks byte for byte, so the Rust code is tested against an
implementation that shares none of its code."""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

def H(*parts): return hashlib.blake2s(b"".join(parts)).digest()
def HMAC(k, *parts): return hmac.new(k, b"".join(parts), hashlib.blake2s).digest()
def KDF(n, key, inp):
    prk = HMAC(key, inp); out = []; prev = b""
    for i in range(1, n + 1):
        prev = HMAC(prk, prev + bytes([i])); out.append(prev)
    return out
def MAC(k, *parts): return hashlib.blake2s(b"".join(parts), key=k, digest_size=16).digest()
def pub(sk): return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def DH(sk, pk): return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
def AEAD(k, pt, aad): return ChaCha20Poly1305(k).encrypt(b"\0" * 12, pt, aad)

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"braid v1 multipath tunnel"
S_i = bytes(range(1, 33)); S_r = bytes(range(101, 133)); E_i = bytes([7] * 32); E_r = bytes([9] * 32)
PSK = bytes([0x42] * 32); TS = bytes.fromhex("400000006553f1000a000000")
I_IDX, R_IDX = 0x11223344, 0x55667788

C = H(CONSTRUCTION); h = H(C, IDENTIFIER); h = H(h, pub(S_r))
msg = bytearray(148); msg[0] = 1; msg[4:8] = struct.pack(">I", I_IDX)
msg[8:40] = pub(E_i); h = H(h, pub(E_i)); C, = KDF(1, C, pub(E_i))
C, k = KDF(2, C, DH(E_i, pub(S_r))); msg[40:88] = AEAD(k, pub(S_i), h); h = H(h, bytes(msg[40:88]))
C, k = KDF(2, C, DH(S_i, pub(S_r))); msg[88:116] = AEAD(k, TS, h); h = H(h, bytes(msg[88:116]))
msg[116:132] = MAC(H(b"mac1----", pub(S_r)), bytes(msg[:116]))
init = bytes(msg)

resp = bytearray(92); resp[0] = 2; resp[4:8] = struct.pack(">I", R_IDX); resp[8:12] = struct.pack(">I", I_IDX)
resp[12:44] = pub(E_r); h = H(h, pub(E_r)); C, = KDF(1, C, pub(E_r))
C, = KDF(1, C, DH(E_r, pub(E_i))); C, = KDF(1, C, DH(E_r, pub(S_i)))
C, tau, k = KDF(3, C, PSK); h = H(h, tau); resp[44:60] = AEAD(k, b"", h)
resp[60:76] = MAC(H(b"mac1----", pub(S_i)), bytes(resp[:60]))
t1, t2 = KDF(2, C, b"")
print("INIT", init.hex()); print("RESPONSE", bytes(resp).hex())
print("INITIATOR_SEND", t1.hex()); print("INITIATOR_RECV", t2.hex())
