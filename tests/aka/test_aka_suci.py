"""SUCI parsing, concealment and deconcealment (TS 33.501 C.3/C.4, TS 24.501 9.11.3.4)."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from ztsim.aka import ecies
from ztsim.aka.errors import SuciError
from ztsim.aka.suci import Suci, conceal, deconceal

from support.vectors import aka_vectors

VECTORS: dict[str, Any] = aka_vectors()
SUCI = VECTORS["suci"]
h = bytes.fromhex

# TS 33.501 Annex C.4.4.1 (ECIES Profile B, IMSI-based SUPI; MCC 274, MNC 012).
PROFILE_B = {
    "hn_private_key": "F1AB1074477EBCC7F554EA1C5FC368B1616730155E0041AC447D6301975FECDA",
    "hn_public_key": "0272DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1",
    "hn_public_key_uncompressed": "0472DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"
    "5A7DED52FCBB097A4ED250E036C7B9C8C7004C4EEDC4F068CD7BF8D3F900E3B4",
    "eph_private_key": "99798858A1DC6A2C68637149A4B1DBFD1FDFF5ADDD62A2142F06699ED7602529",
    "eph_public_uncompressed": "049AAB8376597021E855679A9778EA0B67396E68C66DF32C0F41E9ACCA2DA9B9D1"
    "D1F44EA1C87AA7478B954537BDE79951E748A43294A4F4CF86EAFF1789C9C81F",
    "scheme_output": "039AAB8376597021E855679A9778EA0B67396E68C66DF32C0F41E9ACCA2DA9B9D1"
    "46A33FC2716AC7DAE96AA30A4D",
    "supi": "imsi-274012001002086",
}
PROFILE_A = SUCI["profiles"][0]


@pytest.mark.parametrize("profile", SUCI["profiles"], ids=lambda p: p["profile"])
def test_profile_vector_parts(profile: dict[str, Any]) -> None:
    assert profile["protection_scheme_id"] == ecies.PROFILE_A
    eph = x25519.X25519PrivateKey.from_private_bytes(h(profile["eph_private_key"]))
    assert eph.public_key().public_bytes_raw() == h(profile["eph_public_key"])
    hn = x25519.X25519PrivateKey.from_private_bytes(h(profile["hn_private_key"]))
    assert hn.public_key().public_bytes_raw() == h(profile["hn_public_key"])
    assert hn.exchange(eph.public_key()) == h(profile["eph_shared_key"])
    output = h(profile["scheme_output"])
    assert output == h(profile["eph_public_key"]) + h(profile["ciphertext"]) + h(profile["mac_tag"])
    assert ecies.decrypt(1, h(profile["hn_private_key"]), output) == h(
        profile["plaintext_scheme_input"]
    )


@pytest.mark.parametrize("profile", SUCI["profiles"], ids=lambda p: p["profile"])
def test_profile_deconceal_string_and_binary(profile: dict[str, Any]) -> None:
    keys = {1: h(profile["hn_private_key"])}
    text = profile["free5gc_suci_string"]
    assert deconceal(text, keys) == profile["free5gc_expected_supi"]
    assert deconceal(Suci.parse(text).to_bytes(), keys) == profile["free5gc_expected_supi"]
    assert profile["free5gc_expected_supi"].endswith(profile["MSIN"])


@pytest.mark.parametrize("profile", SUCI["profiles"], ids=lambda p: p["profile"])
def test_profile_conceal_reproduces_the_vector(profile: dict[str, Any]) -> None:
    suci = conceal(
        profile["free5gc_expected_supi"],
        h(profile["hn_public_key"]),
        1,
        profile["protection_scheme_id"],
        h(profile["eph_private_key"]),
    )
    assert suci.scheme_output == h(profile["scheme_output"])
    assert str(suci) == profile["free5gc_suci_string"]


def test_null_scheme_vector() -> None:
    null = SUCI["null_scheme"]
    assert deconceal(null["suci"], {}) == null["supi"]
    assert str(Suci.parse(null["suci"])) == null["suci"]
    assert deconceal(Suci.parse(null["suci"]).to_bytes(), {}) == null["supi"]


def test_null_scheme_c42_scheme_output_is_bcd_msin() -> None:
    # TS 33.501 C.4.2.1: MSIN 001002086 -> scheme output 00012080F6.
    suci = conceal("imsi-274012001002086", b"", 0, 0, b"", mnc_length=3)
    assert suci.scheme_output == h("00012080F6")


def test_profile_b_annex_c44_vector() -> None:
    keys = {7: h(PROFILE_B["hn_private_key"])}
    text = f"suci-0-274-012-0-2-7-{PROFILE_B['scheme_output']}"
    assert deconceal(text, keys) == PROFILE_B["supi"]
    for public in (PROFILE_B["hn_public_key"], PROFILE_B["hn_public_key_uncompressed"]):
        suci = conceal(
            PROFILE_B["supi"], h(public), 7, 2, h(PROFILE_B["eph_private_key"]), mnc_length=3
        )
        assert suci.scheme_output == h(PROFILE_B["scheme_output"])


def test_profile_b_refuses_the_uncompressed_ephemeral_key() -> None:
    # Decision (see ztsim.aka.ecies): C.3.4.2 point compression is mandatory.
    compressed = h(PROFILE_B["scheme_output"])
    output = h(PROFILE_B["eph_public_uncompressed"]) + compressed[33:]
    suci = Suci("274", "012", "0", 2, 1, output)
    with pytest.raises(SuciError, match="compressed"):
        deconceal(suci, {1: h(PROFILE_B["hn_private_key"])})


def _not_on_p256() -> bytes:
    # x such that x^3 - 3x + b is not a square mod p: no point has it.
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    x = 1
    while pow((x**3 - 3 * x + b) % p, (p - 1) // 2, p) == 1:
        x += 1
    return b"\x02" + x.to_bytes(32, "big")


def test_points_off_the_curve_are_refused() -> None:
    tail = h(PROFILE_B["scheme_output"])[33:]
    suci = Suci("274", "012", "0", 2, 1, _not_on_p256() + tail)
    with pytest.raises(SuciError, match="not a valid point"):
        deconceal(suci, {1: h(PROFILE_B["hn_private_key"])})
    # X25519: the all-zero (small-order) point gives an all-zero secret.
    tail_a = h(PROFILE_A["scheme_output"])[32:]
    suci_a = Suci("208", "93", "0", 1, 1, bytes(32) + tail_a)
    with pytest.raises(SuciError, match="not a valid point"):
        deconceal(suci_a, {1: h(PROFILE_A["hn_private_key"])})


def test_unknown_key_id_and_bad_tag() -> None:
    text = PROFILE_A["free5gc_suci_string"]
    with pytest.raises(SuciError, match="no home network private key with id 1"):
        deconceal(text, {2: h(PROFILE_A["hn_private_key"])})
    tampered = text[:-1] + ("0" if text[-1] != "0" else "1")
    with pytest.raises(SuciError, match="MAC tag"):
        deconceal(tampered, {1: h(PROFILE_A["hn_private_key"])})
    wrong_key = bytes(31) + b"\x09"
    with pytest.raises(SuciError, match="MAC tag"):
        deconceal(text, {1: wrong_key})


def test_key_rotation_with_several_live_keys() -> None:
    old_a = h(PROFILE_A["hn_private_key"])
    new_b = ec.derive_private_key(12345, ec.SECP256R1())
    new_b_raw = (12345).to_bytes(32, "big")
    new_b_pub = new_b.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    keys = {1: old_a, 2: new_b_raw}
    eph = (999).to_bytes(32, "big")
    supi = "imsi-001010123456789"
    assert deconceal(PROFILE_A["free5gc_suci_string"], keys) == "imsi-20893001002086"
    assert deconceal(conceal(supi, new_b_pub, 2, 2, eph), keys) == supi
    assert deconceal(conceal(supi, new_b_pub, 2, 2, eph).to_bytes(), keys) == supi
    with pytest.raises(SuciError):
        deconceal(conceal(supi, new_b_pub, 2, 2, eph), {1: old_a})


@pytest.mark.parametrize(
    "text",
    [
        "suci-1-208-93-0-0-0-1234",  # NAI-based SUPI
        "suci-0-208-93-0-0-1-1234",  # null scheme with key id 1
        "suci-0-208-93-12345-1-1-abcd",  # 5-digit routing indicator
        "suci-0-208-93-0-1-01-abcd",  # leading zero in key id
        "suci-0-208-93-0-1-256-abcd",
        "suci-0-208-93-0-1-1-abc",  # odd hex
        "suci-0-208-93-0-3-1-abcd",  # reserved scheme: parses, cannot deconceal
        "suci-0-20-93-0-0-0-1234",
        "imsi-208930000000001",
        "suci-0-208-93-0-0-0-1234567890123",  # IMSI over 15 digits
    ],
)
def test_malformed_or_unsupported_strings(text: str) -> None:
    with pytest.raises(SuciError):
        deconceal(text, {1: h(PROFILE_A["hn_private_key"])})


@pytest.mark.parametrize(
    "data",
    [
        "0102f839f0ff0000",  # no scheme output
        "0202f839f0ff00000000",  # type of identity 010 (GUTI)
        "1102f839f0ff00000000",  # SUPI format NAI
        "01a2f839f0ff00000000",  # non-BCD MCC digit
        "0102f839f0f100000000",  # F inside the routing indicator
        "0102f839f0ff0000ff",  # empty MSIN in null scheme (all filler)
        "0102f839f0ff00001f",  # filler before a digit
        "0102f839f0ff0001ab",  # null scheme with key id 1
    ],
)
def test_malformed_binary(data: str) -> None:
    with pytest.raises(SuciError):
        deconceal(h(data), {})


def test_binary_layout_matches_ts_24501() -> None:
    suci = Suci.parse(PROFILE_A["free5gc_suci_string"])
    raw = suci.to_bytes()
    # type SUCI/IMSI, PLMN 208-93, routing indicator 0 + filler, scheme 1, key id 1.
    assert raw[:8] == h("0102f839f0ff0101")
    assert Suci.parse(h("8102f839f0ff0101") + raw[8:]) == suci  # spare bit ignored


suci_values = st.builds(
    Suci,
    mcc=st.from_regex(r"\A[0-9]{3}\Z"),
    mnc=st.from_regex(r"\A[0-9]{2,3}\Z"),
    routing_indicator=st.from_regex(r"\A[0-9]{1,4}\Z"),
    scheme=st.integers(1, 15),
    key_id=st.integers(0, 255),
    scheme_output=st.binary(min_size=1, max_size=60),
)


@given(suci_values)
def test_both_forms_round_trip(suci: Suci) -> None:
    assert Suci.parse(suci.to_string()) == suci
    assert Suci.parse(suci.to_bytes()) == suci


@given(st.sampled_from([("208", "93"), ("310", "410")]), st.from_regex(r"\A[0-9]{1,9}\Z"))
def test_null_scheme_round_trip(plmn: tuple[str, str], msin: str) -> None:
    mcc, mnc = plmn
    supi = f"imsi-{mcc}{mnc}{msin}"
    suci = conceal(supi, b"", 0, 0, b"", mnc_length=len(mnc))
    assert (suci.mcc, suci.mnc) == plmn
    assert deconceal(suci.to_string(), {}) == supi
    assert deconceal(suci.to_bytes(), {}) == supi


KEYS = {1: h(PROFILE_A["hn_private_key"]), 2: h(PROFILE_B["hn_private_key"])}


@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(
            lambda *parts: "-".join(parts),
            st.sampled_from(["suci", "SUCI", "supi"]),
            st.sampled_from(["0", "1", ""]),
            st.from_regex(r"\A[0-9a]{0,4}\Z"),
            st.from_regex(r"\A[0-9]{0,4}\Z"),
            st.from_regex(r"\A[0-9F]{0,5}\Z"),
            st.sampled_from(["0", "1", "2", "3", "a", "F", "10", ""]),
            st.sampled_from(["0", "1", "2", "01", "255", "256", "x"]),
            st.from_regex(r"\A[0-9a-fA-F]{0,120}\Z"),
        ),
    )
)
def test_fuzzed_strings_raise_only_suci_error(text: str) -> None:
    try:
        supi = deconceal(text, KEYS)
    except SuciError:
        return
    assert supi.startswith("imsi-")
    assert supi[5:].isdigit()


@given(
    st.one_of(
        st.binary(max_size=120),
        st.builds(
            lambda head, out: head + out,
            st.sampled_from([h("0102f839f0ff"), h("0102f810f0ff"), h("01a2f839f0ff")]),
            st.binary(max_size=100),
        ),
    )
)
def test_fuzzed_binary_raises_only_suci_error(data: bytes) -> None:
    try:
        supi = deconceal(data, KEYS)
    except SuciError:
        return
    assert supi.startswith("imsi-")


@given(st.one_of(st.none(), st.integers(), st.lists(st.integers())))
def test_other_types_raise_suci_error(value: object) -> None:
    with pytest.raises(SuciError):
        deconceal(value, KEYS)  # type: ignore[arg-type]


@given(st.binary(max_size=80), st.sampled_from([1, 2]))
def test_fuzzed_scheme_outputs(output: bytes, scheme: int) -> None:
    try:
        plaintext = ecies.decrypt(scheme, KEYS[scheme], output)
    except SuciError:
        return
    raise AssertionError(f"random output decrypted to {plaintext.hex()}")


def test_private_key_errors_do_not_echo_the_key() -> None:
    bad = b"\xff" * 32  # above the P-256 group order
    with pytest.raises(SuciError) as info:
        ecies.decrypt(2, bad, h(PROFILE_B["scheme_output"]))
    assert bad.hex() not in str(info.value)
    with pytest.raises(SuciError):
        ecies.decrypt(1, bytes(31), h(PROFILE_A["scheme_output"]))
