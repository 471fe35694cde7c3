"""Milenage (TS 35.206) against TS 35.208 sets and the osmocom resync vector, by both
paths: the C module on AES-NI (where it runs) and the Python reference; the two held
equal on random inputs."""

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.aka import milenage
from ztsim.aka.conversion import c2, c3
from ztsim.aka.errors import AkaInputError
from ztsim.aka.milenage import Milenage, derive_opc, outputs_py
from ztsim.errors import InvalidInput

from support.vectors import aka_vectors

VECTORS: dict[str, Any] = aka_vectors()
SETS = VECTORS["milenage"]["test_sets"]
RESYNC = VECTORS["milenage_resync"]
h = bytes.fromhex


def test_the_vector_file_has_only_the_sections_these_tests_cover() -> None:
    # A new section in aka.json must fail here until a test uses it.
    assert set(VECTORS) == {"about", "milenage", "milenage_resync", "kasme", "fiveg_kdf", "suci"}


@pytest.mark.parametrize("case", SETS, ids=lambda c: f"set{c['set']}")
def test_derive_opc(case: dict[str, Any]) -> None:
    assert derive_opc(h(case["K"]), h(case["OP"])) == h(case["OPc"])


needs_c = pytest.mark.skipif(milenage._fast is None, reason="no C Milenage in this run")
# "c": what `Milenage` uses by default (the C module where it runs); "python": the reference.
PATHS = ["python"] if milenage._fast is None else ["c", "python"]


def _aes_ni() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " aes " in flags.replace("\n", " ")


def test_the_c_module_runs_unless_pure_python_is_asked_for() -> None:
    # `make` builds it; a missing compiler would silently cost the Nudm endpoint its speed.
    pure = bool(os.environ.get("ZTSIM_PURE_PYTHON"))
    assert (milenage._fast is not None) == (not pure and _aes_ni())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", SETS, ids=lambda c: f"set{c['set']}")
def test_every_function_of_the_set(case: dict[str, Any], path: str) -> None:
    m = Milenage(h(case["K"]), h(case["OPc"]), reference=path == "python")
    rand, sqn, amf = h(case["RAND"]), h(case["SQN"]), h(case["AMF"])
    assert m.f1(rand, sqn, amf) == h(case["f1"])
    assert m.f1star(rand, sqn, amf) == h(case["f1star"])
    assert m.f2345(rand) == (h(case["f2"]), h(case["f3"]), h(case["f4"]), h(case["f5"]))
    assert m.f5star(rand) == h(case["f5star"])
    assert m.f1_f2345(rand, sqn, amf) == (
        h(case["f1"]),
        h(case["f2"]),
        h(case["f3"]),
        h(case["f4"]),
        h(case["f5"]),
    )


def test_opc_for_op_zero_from_osmocom() -> None:
    assert derive_opc(h(RESYNC["K"]), bytes(16)) == h(RESYNC["OPC_for_OP_zero"])


def test_osmocom_quintet_and_gsm_conversion() -> None:
    case = RESYNC["vector_at_SQN_0x22"]
    m = Milenage(h(RESYNC["K"]), h(RESYNC["OPc"]))
    res, ck, ik, _ak = m.f2345(h(RESYNC["RAND"]))
    assert (res, ck, ik) == (h(case["RES"]), h(case["CK"]), h(case["IK"]))
    assert c2(res) == h(case["SRES_c2"])
    assert c3(ck, ik) == h(case["Kc_c3"])


def test_c2_pads_a_short_res_with_zeros() -> None:
    # TS 33.102 6.8.1.2: a 32-bit RES is its own SRES.
    assert c2(h("01020304")) == h("01020304")
    with pytest.raises(AkaInputError):
        c2(b"\x01\x02\x03")


KEY = h(SETS[0]["K"])
OPC = h(SETS[0]["OPc"])


@pytest.mark.parametrize(
    ("k", "opc", "field"),
    [(KEY[:15], OPC, "K"), (KEY, OPC + b"\x00", "OPc"), (KEY + KEY, OPC, "K")],
)
def test_key_lengths_are_checked_without_echoing_keys(k: bytes, opc: bytes, field: str) -> None:
    with pytest.raises(AkaInputError, match=rf"^{field} must be 16 bytes") as info:
        Milenage(k, opc)
    message = str(info.value)
    assert KEY.hex() not in message
    assert KEY[:15].hex() not in message
    assert OPC.hex() not in message


@pytest.mark.parametrize("path", PATHS)
def test_argument_lengths_and_types_are_checked(path: str) -> None:
    m = Milenage(KEY, OPC, reference=path == "python")
    rand = bytes(16)
    with pytest.raises(AkaInputError, match="RAND must be 16 bytes"):
        m.f2345(bytes(15))
    with pytest.raises(AkaInputError, match="SQN must be 6 bytes"):
        m.f1(rand, bytes(5), bytes(2))
    with pytest.raises(AkaInputError, match="AMF must be 2 bytes"):
        m.f1star(rand, bytes(6), bytes(3))
    with pytest.raises(AkaInputError, match="RAND must be bytes"):
        m.f5star(bytearray(16))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        derive_opc(KEY, "00" * 16)  # type: ignore[arg-type]


def test_repr_hides_key_material() -> None:
    text = repr(Milenage(KEY, OPC))
    assert KEY.hex() not in text
    assert OPC.hex() not in text
    assert "hidden" in text


@pytest.mark.parametrize("path", PATHS)
def test_one_instance_gives_the_same_answers_when_reused(path: str) -> None:
    # The encryptor is shared between calls: interleaving must not disturb it.
    case = SETS[1]
    m = Milenage(h(case["K"]), h(case["OPc"]), reference=path == "python")
    for _ in range(3):
        assert m.f5star(h(case["RAND"])) == h(case["f5star"])
        assert m.f1(h(case["RAND"]), h(case["SQN"]), h(case["AMF"])) == h(case["f1"])


# -- the C module against the reference ------------------------------------------------


def octets(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


@needs_c
@given(octets(16), octets(16), octets(16), octets(6), octets(2))
def test_the_c_outputs_are_the_references(
    k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes
) -> None:
    assert milenage._fast.outputs(k, opc, rand, sqn, amf) == outputs_py(k, opc, rand, sqn, amf)
    fast, reference = Milenage(k, opc), Milenage(k, opc, reference=True)
    assert fast.f1_f2345(rand, sqn, amf) == reference.f1_f2345(rand, sqn, amf)
    assert fast.f1star(rand, sqn, amf) == reference.f1star(rand, sqn, amf)
    assert fast.f5star(rand) == reference.f5star(rand)


def test_the_reference_outputs_hold_the_sets_functions() -> None:
    for case in SETS:
        out = outputs_py(
            h(case["K"]), h(case["OPc"]), h(case["RAND"]), h(case["SQN"]), h(case["AMF"])
        )
        assert out[:8] + out[8:16] == h(case["f1"]) + h(case["f1star"])
        assert (out[24:32], out[32:48], out[48:64]) == (h(case["f2"]), h(case["f3"]), h(case["f4"]))
        assert (out[16:22], out[64:70]) == (h(case["f5"]), h(case["f5star"]))


@needs_c
@pytest.mark.parametrize(
    ("lengths", "field"),
    [((15, 16, 16, 6, 2), "K"), ((16, 17, 16, 6, 2), "OPc"), ((16, 16, 16, 6, 3), "AMF")],
)
def test_the_c_module_refuses_other_lengths_without_the_values(
    lengths: tuple[int, ...], field: str
) -> None:
    args = [KEY[:1] * n for n in lengths]
    with pytest.raises(ValueError, match=rf"^{field} must be \d+ octets$") as info:
        milenage._fast.outputs(*args)
    assert KEY[:1].hex() * 4 not in str(info.value)
