"""Key derivations of EPS-AKA, EAP-AKA' and 5G-AKA on the generic 3GPP KDF.

Every function here is `kdf(key, fc, p0, p1, ...)` of TS 33.220 Annex B.2 with a
fixed FC and fixed parameters; string parameters (serving network name, network
name, SUPI) are encoded as UTF-8, which is ASCII for every value the specs allow.
HMAC uses the standard library's one-shot `hmac.digest`, which calls OpenSSL
without building an HMAC object, because this sits on the vector hot path.
"""

import hashlib
import hmac

from ztsim.aka._check import fixed, ranged, text
from ztsim.aka.errors import AkaInputError

__all__ = [
    "AkaInputError",
    "ck_ik_prime",
    "encode_plmn_id",
    "hxres_star",
    "kamf",
    "kasme",
    "kausf",
    "kdf",
    "kseaf",
    "serving_network_name",
    "xres_star",
]

# TS 33.401 A.2: FC for KASME.
FC_KASME = 0x10
# RFC 5448 3.3 (and TS 33.402 A.2): FC for CK' and IK'.
FC_CK_IK_PRIME = 0x20
# TS 33.501 A.2: FC for KAUSF.
FC_KAUSF = 0x6A
# TS 33.501 A.4: FC for RES* and XRES*.
FC_XRES_STAR = 0x6B
# TS 33.501 A.6: FC for KSEAF.
FC_KSEAF = 0x6C
# TS 33.501 A.7: FC for KAMF.
FC_KAMF = 0x6D

_DIGITS = frozenset("0123456789")


def kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    """HMAC-SHA-256(key, FC || P0 || L0 || P1 || L1 || ...), TS 33.220 B.2.

    Each Li is the length of Pi in octets as a 2-octet big-endian number.
    """
    if not 0 <= fc <= 0xFF:
        raise AkaInputError(f"FC must be one octet, got {fc}")
    parts = [fc.to_bytes(1, "big")]
    for index, param in enumerate(params):
        if len(param) > 0xFFFF:
            raise AkaInputError(f"KDF parameter P{index} is longer than 65535 bytes")
        parts.append(param)
        parts.append(len(param).to_bytes(2, "big"))
    return hmac.digest(key, b"".join(parts), "sha256")


def _ck_ik(ck: bytes, ik: bytes) -> bytes:
    return fixed("CK", ck, 16) + fixed("IK", ik, 16)


def kasme(ck: bytes, ik: bytes, plmn_id: bytes, sqn_xor_ak: bytes) -> bytes:
    """KASME (TS 33.401 A.2): P0 = SN id (3-byte PLMN encoding), P1 = SQN xor AK."""
    return kdf(
        _ck_ik(ck, ik), FC_KASME, fixed("PLMN id", plmn_id, 3), fixed("SQN^AK", sqn_xor_ak, 6)
    )


def ck_ik_prime(ck: bytes, ik: bytes, network_name: str, sqn_xor_ak: bytes) -> tuple[bytes, bytes]:
    """(CK', IK') for EAP-AKA' (RFC 5448 3.3): the two halves of the KDF output."""
    out = kdf(
        _ck_ik(ck, ik),
        FC_CK_IK_PRIME,
        text("network name", network_name),
        fixed("SQN^AK", sqn_xor_ak, 6),
    )
    return out[:16], out[16:]


def kausf(ck: bytes, ik: bytes, snn: str, sqn_xor_ak: bytes) -> bytes:
    """KAUSF for 5G-AKA (TS 33.501 A.2): P0 = serving network name, P1 = SQN xor AK."""
    return kdf(
        _ck_ik(ck, ik), FC_KAUSF, text("serving network name", snn), fixed("SQN^AK", sqn_xor_ak, 6)
    )


def xres_star(ck: bytes, ik: bytes, snn: str, rand: bytes, res: bytes) -> bytes:
    """RES* or XRES* (TS 33.501 A.4): the 128 least significant bits of the KDF output."""
    out = kdf(
        _ck_ik(ck, ik),
        FC_XRES_STAR,
        text("serving network name", snn),
        fixed("RAND", rand, 16),
        ranged("RES", res, 4, 16),
    )
    return out[16:]


def hxres_star(rand: bytes, xres_star: bytes) -> bytes:
    """HXRES* (TS 33.501 A.5): the 128 least significant bits of SHA-256(RAND || XRES*)."""
    digest = hashlib.sha256(fixed("RAND", rand, 16) + fixed("XRES*", xres_star, 16)).digest()
    return digest[16:]


def kseaf(kausf: bytes, snn: str) -> bytes:
    """KSEAF (TS 33.501 A.6): key KAUSF, P0 = serving network name."""
    return kdf(fixed("KAUSF", kausf, 32), FC_KSEAF, text("serving network name", snn))


def kamf(kseaf: bytes, supi_digits: str, abba: bytes) -> bytes:
    """KAMF (TS 33.501 A.7): key KSEAF, P0 = IMSI digits of the SUPI, P1 = ABBA.

    Only IMSI-based SUPIs are supported, so P0 must be 5 to 15 ASCII digits
    (without the 'imsi-' prefix). ABBA is 2 to 255 octets (TS 24.501 9.11.3.10).
    """
    digits = text("SUPI digits", supi_digits)
    if not 5 <= len(supi_digits) <= 15 or not set(supi_digits) <= _DIGITS:
        raise AkaInputError("SUPI digits must be 5 to 15 ASCII digits (no 'imsi-' prefix)")
    return kdf(fixed("KSEAF", kseaf, 32), FC_KAMF, digits, ranged("ABBA", abba, 2, 255))


def _digits(name: str, value: object, lengths: tuple[int, ...]) -> str:
    if not isinstance(value, str) or len(value) not in lengths or not set(value) <= _DIGITS:
        allowed = " or ".join(str(n) for n in lengths)
        raise AkaInputError(f"{name} must be {allowed} ASCII digits")
    return value


def encode_plmn_id(mcc: str, mnc: str) -> bytes:
    """The 3-octet PLMN identity (TS 24.301 9.9.3.12), used as SN id in KASME.

    Octets: MCC2|MCC1, MNC3|MCC3, MNC2|MNC1 (high nibble first), with MNC3 = F
    when the MNC has two digits.
    """
    _digits("MCC", mcc, (3,))
    _digits("MNC", mnc, (2, 3))
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    return bytes(((d[1] << 4) | d[0], (mnc3 << 4) | d[2], (m[1] << 4) | m[0]))


def serving_network_name(mcc: str, mnc: str) -> str:
    """'5G:mncXXX.mccYYY.3gppnetwork.org' (TS 24.501 9.12.1, TS 33.501 6.1.1.4).

    A 2-digit MNC is written with a leading zero, as in the network domain names
    of TS 23.003 28.2.
    """
    _digits("MCC", mcc, (3,))
    _digits("MNC", mnc, (2, 3))
    return f"5G:mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"
