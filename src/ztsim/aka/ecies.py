"""ECIES of the SUCI protection schemes Profile A and Profile B (TS 33.501 C.3).

Both profiles: shared secret Z from ECDH; ANSI X9.63 KDF with SHA-256 and
SharedInfo1 = the ephemeral public key exactly as sent, 64 octets out, split as
encryption key (16) | ICB (16) | MAC key (32) (C.3.4.1/C.3.4.2); AES-128 in CTR
mode with the ICB as first counter block; MAC = HMAC-SHA-256 over the
ciphertext, truncated to 8 octets. Scheme output = ephemeral key || ciphertext
|| MAC tag (C.3.2).

Profile B accepts only the compressed ephemeral key (33 octets, prefix 02/03).
C.3.4.2 makes point compression mandatory for Profile B, TS 33.514 expects an
uncompressed key to be refused, and the ciphertext has no length field: with
two key sizes allowed, a scheme output could be split two ways. An output
starting 04 is refused with `SuciError` before any curve arithmetic.
"""

import hmac

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from ztsim.aka.errors import SuciError

__all__ = ["SuciError", "decrypt", "encrypt"]

# TS 24.501 9.11.3.4 / TS 33.501 C.3.1: protection scheme identifiers.
NULL_SCHEME = 0
PROFILE_A = 1
PROFILE_B = 2
# TS 33.501 C.3.4.1: X25519 public keys are 32 octets.
PROFILE_A_KEY_LENGTH = 32
# TS 33.501 C.3.4.2: compressed secp256r1 point, 1 + 32 octets.
PROFILE_B_KEY_LENGTH = 33
# TS 33.501 C.3.4.1/C.3.4.2: MAC tag length (HMAC-SHA-256 truncated to 64 bits).
MAC_LENGTH = 8
_PRIVATE_KEY_LENGTH = 32
_COMPRESSED = serialization.PublicFormat.CompressedPoint
_RAW = serialization.PublicFormat.Raw
_RAW_ENCODING = serialization.Encoding.Raw
_X962 = serialization.Encoding.X962


def _private_key(scheme: int, raw: bytes) -> x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey:
    if type(raw) is not bytes or len(raw) != _PRIVATE_KEY_LENGTH:
        raise SuciError(f"private key must be {_PRIVATE_KEY_LENGTH} bytes")
    if scheme == PROFILE_A:
        return x25519.X25519PrivateKey.from_private_bytes(raw)
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise SuciError("private key is not a valid secp256r1 scalar") from None


def _shared(
    private: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey, scheme: int, public: bytes
) -> bytes:
    """Z from ECDH; `SuciError` if `public` is not a usable point of the curve."""
    is_x25519 = isinstance(private, x25519.X25519PrivateKey)
    if is_x25519 and len(public) != PROFILE_A_KEY_LENGTH:
        raise SuciError(f"Profile A public key must be {PROFILE_A_KEY_LENGTH} bytes")
    try:
        if isinstance(private, x25519.X25519PrivateKey):
            # An all-zero result (small-order point) makes OpenSSL raise ValueError.
            return private.exchange(x25519.X25519PublicKey.from_public_bytes(public))
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
        return private.exchange(ec.ECDH(), point)
    except (ValueError, UnsupportedAlgorithm):
        raise SuciError(f"public key is not a valid point for scheme {scheme}") from None


def _keys(shared: bytes, eph_public: bytes) -> tuple[bytes, bytes, bytes]:
    okm = X963KDF(algorithm=hashes.SHA256(), length=64, sharedinfo=eph_public).derive(shared)
    return okm[:16], okm[16:32], okm[32:]


def _ctr(key: bytes, icb: bytes, data: bytes) -> bytes:
    context = Cipher(algorithms.AES128(key), modes.CTR(icb)).encryptor()
    return context.update(data) + context.finalize()


def _tag(mac_key: bytes, ciphertext: bytes) -> bytes:
    return hmac.digest(mac_key, ciphertext, "sha256")[:MAC_LENGTH]


def _eph_length(scheme: int) -> int:
    if scheme == PROFILE_A:
        return PROFILE_A_KEY_LENGTH
    if scheme == PROFILE_B:
        return PROFILE_B_KEY_LENGTH
    raise SuciError(f"protection scheme {scheme} is not supported")


def encrypt(scheme: int, hn_public_key: bytes, eph_private_key: bytes, plaintext: bytes) -> bytes:
    """Scheme output for `plaintext`, as a UE computes it (randomness injected).

    `hn_public_key` is 32 raw octets for Profile A, and a compressed (33) or
    uncompressed (65) secp256r1 point for Profile B.
    """
    _eph_length(scheme)
    if type(hn_public_key) is not bytes:
        raise SuciError("home network public key must be bytes")
    private = _private_key(scheme, eph_private_key)
    shared = _shared(private, scheme, hn_public_key)
    if isinstance(private, x25519.X25519PrivateKey):
        eph_public = private.public_key().public_bytes(_RAW_ENCODING, _RAW)
    else:
        eph_public = private.public_key().public_bytes(_X962, _COMPRESSED)
    enc_key, icb, mac_key = _keys(shared, eph_public)
    ciphertext = _ctr(enc_key, icb, plaintext)
    return eph_public + ciphertext + _tag(mac_key, ciphertext)


def decrypt(scheme: int, hn_private_key: bytes, scheme_output: bytes) -> bytes:
    """The plaintext of a scheme output; `SuciError` on any defect or a bad tag."""
    eph_length = _eph_length(scheme)
    if len(scheme_output) < eph_length + 1 + MAC_LENGTH:
        raise SuciError(f"scheme output is too short for protection scheme {scheme}")
    eph_public = scheme_output[:eph_length]
    if scheme == PROFILE_B and eph_public[0] not in (2, 3):
        raise SuciError("Profile B ephemeral key must be a compressed point (02 or 03)")
    ciphertext = scheme_output[eph_length:-MAC_LENGTH]
    private = _private_key(scheme, hn_private_key)
    shared = _shared(private, scheme, eph_public)
    enc_key, icb, mac_key = _keys(shared, eph_public)
    if not hmac.compare_digest(_tag(mac_key, ciphertext), scheme_output[-MAC_LENGTH:]):
        raise SuciError("SUCI MAC tag does not verify")
    return _ctr(enc_key, icb, ciphertext)


def public_key(scheme: int, hn_private_key: bytes) -> bytes:
    """The home-network public key a UE is provisioned with, for a raw private key:
    32 bytes for Profile A, 33 (compressed point) for Profile B."""
    key = _private_key(scheme, hn_private_key)
    if isinstance(key, x25519.X25519PrivateKey):
        return key.public_key().public_bytes(_RAW_ENCODING, _RAW)
    return key.public_key().public_bytes(serialization.Encoding.X962, _COMPRESSED)
