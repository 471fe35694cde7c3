"""EPS and 5G HE vectors (by both paths: the C module where it runs, and the Python
reference), and a USIM model running 1,000 authentications."""

import hmac
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.aka import kdf, milenage
from ztsim.aka import sqn as sqnmod
from ztsim.aka.errors import AkaInputError
from ztsim.aka.milenage import Milenage
from ztsim.aka.sqn import SqnState, SqnVerdict, UsimSqnWindow
from ztsim.aka.vectors import Autn, FiveGHeVector, eps_vector, fiveg_he_vector

from support.vectors import aka_vectors

VECTORS: dict[str, Any] = aka_vectors()
RESYNC = VECTORS["milenage_resync"]
h = bytes.fromhex


needs_c = pytest.mark.skipif(milenage._fast is None, reason="no C Milenage in this run")
PATHS = ["python"] if milenage._fast is None else ["c", "python"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", VECTORS["fiveg_kdf"]["vectors"], ids=lambda c: c["id"])
def test_free5gc_5g_he_vector(case: dict[str, Any], path: str) -> None:
    inputs = case["milenage_inputs"]
    m = Milenage(h(inputs["K"]), h(inputs["OPc"]), reference=path == "python")
    assert (m.fiveg_he_parts(bytes(16), bytes(6), bytes(2), b"x") is None) == (path == "python")
    rand, sqn, amf = h(case["RAND"]), h(case["SQN"]), h(inputs["AMF"])
    assert m.f2345(rand) == (h(case["XRES"]), h(case["CK"]), h(case["IK"]), h(case["AK"]))
    vector = fiveg_he_vector(m, rand, sqn, amf, case["SNN"])
    assert vector.rand == rand
    assert vector.autn == h(case["AUTN"])
    assert vector.xres_star == h(case["XRES_star"])
    assert vector.kausf == h(case["KAUSF"])
    assert vector.hxres_star == kdf.hxres_star(rand, h(case["XRES_star"]))


def octets(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


@needs_c
@given(
    octets(16),
    octets(16),
    octets(16),
    octets(6),
    octets(2),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=120),
)
def test_the_c_vector_is_the_references(
    k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes, snn: str
) -> None:
    fast = fiveg_he_vector(Milenage(k, opc), rand, sqn, amf, snn)
    assert fast == fiveg_he_vector(Milenage(k, opc, reference=True), rand, sqn, amf, snn)


@needs_c
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_the_c_hmac_sha256_is_the_standard_librarys(key: bytes, message: bytes) -> None:
    # Keys past the 64-octet block are hashed first (RFC 2104 §2); messages cross blocks.
    assert milenage._fast.hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


SOFT_SHA256_CHECK = """
import hmac, random
from ztsim.aka import _milenage
rng = random.Random(7)
for key_size in (0, 1, 32, 63, 64, 65, 130):
    for size in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000):
        key, message = rng.randbytes(key_size), rng.randbytes(size)
        assert _milenage.hmac_sha256(key, message) == hmac.digest(key, message, "sha256")
print("agreed")
"""


@needs_c
def test_the_c_modules_software_sha256_agrees_too() -> None:
    # Where the processor has the SHA extensions the suite runs on them; the software
    # compression (chosen at import with ZTSIM_SOFT_SHA256) is checked in its own process.
    env = {**os.environ, "ZTSIM_SOFT_SHA256": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SOFT_SHA256_CHECK], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "agreed"


@needs_c
def test_the_c_vector_refuses_what_the_reference_refuses() -> None:
    m = Milenage(bytes(16), bytes(16))
    with pytest.raises(AkaInputError, match="serving network name"):
        fiveg_he_vector(m, bytes(16), bytes(6), bytes(2), "")
    with pytest.raises(AkaInputError, match="RAND must be 16 bytes"):
        fiveg_he_vector(m, bytes(15), bytes(6), bytes(2), "5G:x")
    with pytest.raises(ValueError, match=r"^the serving network name must be 1 to 65535 octets$"):
        milenage._fast.fiveg_he(bytes(16), bytes(16), bytes(16), bytes(6), bytes(2), b"")


def test_osmocom_autn_through_eps_vector() -> None:
    case = RESYNC["vector_at_SQN_0x22"]
    m = Milenage(h(RESYNC["K"]), h(RESYNC["OPc"]))
    plmn = kdf.encode_plmn_id("001", "01")
    vector = eps_vector(m, h(RESYNC["RAND"]), h(case["SQN"]), h(RESYNC["AMF"]), plmn)
    assert vector.autn == h(case["AUTN"])
    assert vector.xres == h(case["RES"])
    sqn_xor_ak = Autn.parse(vector.autn).sqn_xor_ak
    assert vector.kasme == kdf.kasme(h(case["CK"]), h(case["IK"]), plmn, sqn_xor_ak)


def test_vector_reprs_hide_secrets() -> None:
    case = VECTORS["fiveg_kdf"]["vectors"][0]
    inputs = case["milenage_inputs"]
    m = Milenage(h(inputs["K"]), h(inputs["OPc"]))
    vector = fiveg_he_vector(m, h(case["RAND"]), h(case["SQN"]), h(inputs["AMF"]), "x")
    assert vector.kausf.hex() not in repr(vector)
    assert vector.xres_star.hex() not in repr(vector)


def test_autn_parse_splits_and_checks() -> None:
    autn = h(RESYNC["vector_at_SQN_0x22"]["AUTN"])
    parts = Autn.parse(autn)
    assert (parts.sqn_xor_ak, parts.amf, parts.mac_a) == (autn[:6], autn[6:8], autn[8:])
    assert parts.to_bytes() == autn
    with pytest.raises(AkaInputError):
        Autn.parse(autn[:15])


@given(st.one_of(st.binary(max_size=32), st.text(max_size=16), st.none()))
def test_fuzzed_autn_only_raises_input_error(data: object) -> None:
    try:
        parts = Autn.parse(data)  # type: ignore[arg-type]
    except AkaInputError:
        return
    assert parts.to_bytes() == data


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@dataclass
class UsimModel:
    """What a USIM does with RAND and AUTN (TS 33.102 6.3.3, TS 33.501 6.1.3.2)."""

    milenage: Milenage
    snn: str
    window: UsimSqnWindow = field(default_factory=UsimSqnWindow)

    def authenticate(self, rand: bytes, autn: bytes) -> tuple[str, bytes]:
        parts = Autn.parse(autn)
        res, ck, ik, ak = self.milenage.f2345(rand)
        sqn = _xor(parts.sqn_xor_ak, ak)
        if self.milenage.f1(rand, sqn, parts.amf) != parts.mac_a:
            return "mac failure", b""
        value = sqnmod.sqn_from_bytes(sqn)
        if self.window.check(value) is not SqnVerdict.FRESH:
            return "sync failure", sqnmod.make_auts(self.milenage, rand, self.window.highest_sqn)
        self.window = self.window.accept(value)
        return "res*", kdf.xres_star(ck, ik, self.snn, rand, res)


SNN = kdf.serving_network_name("001", "01")
AMF = b"\x80\x00"  # TS 33.102 Annex H: separation bit set, as 5G requires


def test_thousand_authentications_with_serving_nodes_and_forced_resyncs() -> None:
    rng = random.Random(3310)
    k, opc = rng.randbytes(16), rng.randbytes(16)
    he = Milenage(k, opc)
    usim = UsimModel(Milenage(k, opc), SNN)
    state = SqnState(0)
    queues: dict[int, list[FiveGHeVector]] = {ind: [] for ind in range(4)}
    done = resyncs = 0
    while done < 1000:
        ind = rng.randrange(4)  # the serving node (IND slot) the UE attaches to
        if not queues[ind]:
            for _ in range(rng.randrange(1, 6)):
                sqn, state = sqnmod.next_sqn(state, ind)
                queues[ind].append(
                    fiveg_he_vector(he, rng.randbytes(16), sqnmod.sqn_to_bytes(sqn), AMF, SNN)
                )
        vector = queues[ind].pop(0)
        outcome, answer = usim.authenticate(vector.rand, vector.autn)
        if outcome == "sync failure":
            state = sqnmod.resync(state, sqnmod.verify_auts(he, vector.rand, answer))
            queues = {i: [] for i in queues}
            resyncs += 1
            continue
        assert outcome == "res*"
        assert answer == vector.xres_star
        assert kdf.hxres_star(vector.rand, answer) == vector.hxres_star
        done += 1
        if done % 97 == 0:
            # The HE restores an old backup of its SQN store: its next SQNs are stale.
            state = SqnState(max(0, state.seq_he - 40))
    assert resyncs >= 5
    assert usim.window.highest_seq <= state.seq_he


def test_stale_sqn_forces_resync_then_succeeds() -> None:
    m = Milenage(bytes(range(16)), bytes(range(16, 32)))
    usim = UsimModel(m, SNN)
    state = SqnState(0)
    for _ in range(10):
        sqn, state = sqnmod.next_sqn(state, 2)
        vector = fiveg_he_vector(m, bytes(16), sqnmod.sqn_to_bytes(sqn), AMF, SNN)
        assert usim.authenticate(vector.rand, vector.autn)[0] == "res*"
    stale = SqnState(3)
    sqn, _ = sqnmod.next_sqn(stale, 2)
    rand = bytes([7] * 16)
    vector = fiveg_he_vector(m, rand, sqnmod.sqn_to_bytes(sqn), AMF, SNN)
    outcome, auts = usim.authenticate(rand, vector.autn)
    assert outcome == "sync failure"
    sqn_ms = sqnmod.verify_auts(m, rand, auts)
    assert sqn_ms == 10 << 5 | 2  # the highest SQN the USIM accepted
    state = sqnmod.resync(stale, sqn_ms)
    sqn, state = sqnmod.next_sqn(state, 2)
    vector = fiveg_he_vector(m, rand, sqnmod.sqn_to_bytes(sqn), AMF, SNN)
    assert usim.authenticate(rand, vector.autn) == ("res*", vector.xres_star)


def test_usim_model_detects_a_forged_autn() -> None:
    m = Milenage(bytes(range(16)), bytes(range(16, 32)))
    vector = fiveg_he_vector(m, bytes(16), sqnmod.sqn_to_bytes(33), AMF, SNN)
    forged = bytearray(vector.autn)
    forged[-1] ^= 1
    assert UsimModel(m, SNN).authenticate(vector.rand, bytes(forged)) == ("mac failure", b"")
