"""Key derivations (TS 33.220 B.2, TS 33.401 A.2, TS 33.501 Annex A, RFC 5448)."""

import hashlib
import hmac
from typing import Any

import pytest

from ztsim.aka import kdf
from ztsim.aka.errors import AkaInputError

from support.vectors import aka_vectors

VECTORS: dict[str, Any] = aka_vectors()
h = bytes.fromhex


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("case", VECTORS["kasme"]["vectors"], ids=lambda c: c["id"])
def test_kasme(case: dict[str, Any]) -> None:
    sqn_xor_ak = _xor(h(case["SQN"]), h(case["AK"]))
    got = kdf.kasme(h(case["CK"]), h(case["IK"]), h(case["SN_id"]), sqn_xor_ak)
    assert got == h(case["KASME"])


def test_ck_ik_prime_rfc5448_vector() -> None:
    case = VECTORS["fiveg_kdf"]["generic_kdf_rfc5448_ck_ik_prime"]
    assert int(case["FC"], 16) == kdf.FC_CK_IK_PRIME
    ck_p, ik_p = kdf.ck_ik_prime(
        h(case["CK"]), h(case["IK"]), case["P0_network_name"], h(case["P1_SQN_xor_AK"])
    )
    assert ck_p + ik_p == h(case["CK_prime_IK_prime"])


@pytest.mark.parametrize("case", VECTORS["fiveg_kdf"]["vectors"], ids=lambda c: c["id"])
def test_kausf_and_xres_star(case: dict[str, Any]) -> None:
    ck, ik = h(case["CK"]), h(case["IK"])
    sqn_xor_ak = _xor(h(case["SQN"]), h(case["AK"]))
    assert kdf.kausf(ck, ik, case["SNN"], sqn_xor_ak) == h(case["KAUSF"])
    star = kdf.xres_star(ck, ik, case["SNN"], h(case["RAND"]), h(case["XRES"]))
    assert star == h(case["XRES_star"])


def _spec_s(fc: int, *params: bytes) -> bytes:
    # S = FC || P0 || L0 || ... written out from TS 33.220 B.2.
    out = bytes([fc])
    for p in params:
        out += p + len(p).to_bytes(2, "big")
    return out


def test_kseaf_kamf_and_hxres_star_follow_their_formulas() -> None:
    # No published KSEAF/KAMF/HXRES* data exists; check against S built by hand.
    kausf = bytes(range(32))
    snn = "5G:mnc093.mcc208.3gppnetwork.org"
    kseaf = kdf.kseaf(kausf, snn)
    assert kseaf == hmac.new(kausf, _spec_s(0x6C, snn.encode()), hashlib.sha256).digest()
    kamf = kdf.kamf(kseaf, "208930000000001", b"\x00\x00")
    s = _spec_s(0x6D, b"208930000000001", b"\x00\x00")
    assert kamf == hmac.new(kseaf, s, hashlib.sha256).digest()
    rand, star = bytes(range(16)), bytes(range(16, 32))
    assert kdf.hxres_star(rand, star) == hashlib.sha256(rand + star).digest()[16:]


def test_generic_kdf_rejects_bad_fc() -> None:
    with pytest.raises(AkaInputError):
        kdf.kdf(b"k", 256)


@pytest.mark.parametrize(
    ("mcc", "mnc", "encoded"),
    [
        ("208", "93", "02f839"),  # examples given in aka.json kasme note
        ("001", "01", "00f110"),
        ("274", "012", "722410"),  # TS 24.301 9.9.3.12 layout with a 3-digit MNC
    ],
)
def test_encode_plmn_id(mcc: str, mnc: str, encoded: str) -> None:
    assert kdf.encode_plmn_id(mcc, mnc) == h(encoded)


def test_serving_network_name_pads_two_digit_mnc() -> None:
    assert kdf.serving_network_name("208", "93") == "5G:mnc093.mcc208.3gppnetwork.org"
    assert kdf.serving_network_name("310", "410") == "5G:mnc410.mcc310.3gppnetwork.org"


@pytest.mark.parametrize(
    ("mcc", "mnc"), [("20", "93"), ("2080", "93"), ("208", "9"), ("208", "9312"), ("2a8", "93")]
)
def test_plmn_digits_are_checked(mcc: str, mnc: str) -> None:
    with pytest.raises(AkaInputError):
        kdf.encode_plmn_id(mcc, mnc)
    with pytest.raises(AkaInputError):
        kdf.serving_network_name(mcc, mnc)


def test_input_lengths_are_checked() -> None:
    ck, ik = bytes(16), bytes(16)
    with pytest.raises(AkaInputError, match="PLMN id"):
        kdf.kasme(ck, ik, bytes(4), bytes(6))
    with pytest.raises(AkaInputError, match="SQN"):
        kdf.kausf(ck, ik, "x", bytes(5))
    with pytest.raises(AkaInputError, match="serving network name"):
        kdf.kausf(ck, ik, "", bytes(6))
    with pytest.raises(AkaInputError, match="CK"):
        kdf.xres_star(bytes(15), ik, "x", bytes(16), bytes(8))
    with pytest.raises(AkaInputError, match="RES"):
        kdf.xres_star(ck, ik, "x", bytes(16), bytes(17))
    with pytest.raises(AkaInputError, match="SUPI digits"):
        kdf.kamf(bytes(32), "imsi-208930000000001", bytes(2))
    with pytest.raises(AkaInputError, match="ABBA"):
        kdf.kamf(bytes(32), "208930000000001", bytes(1))
