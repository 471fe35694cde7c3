"""Matching IDs and confirmation codes from injected randomness."""

import hashlib
import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.esim import ActivationCode
from ztsim.esim.codes import (
    ALPHABET,
    CONFIRMATION_SYMBOLS,
    MATCHING_ID_BITS,
    confirmation_hash,
    matching_id_hash,
    new_confirmation_code,
    new_matching_id,
)


def fixed(data: bytes):  # type: ignore[no-untyped-def]
    def rand(n: int) -> bytes:
        assert n <= len(data)
        return data[:n]

    return rand


def test_at_least_100_bits() -> None:
    assert MATCHING_ID_BITS >= 100
    groups = new_matching_id().split("-")
    assert [len(g) for g in groups] == [5] * 5
    assert math.log2(len(ALPHABET)) * sum(len(g) for g in groups) >= 100


def test_extremes_of_the_random_input() -> None:
    assert new_matching_id(fixed(bytes(16))) == "-".join(["00000"] * 5)
    assert new_matching_id(fixed(b"\xff" * 16)) == "-".join(["ZZZZZ"] * 5)
    assert new_confirmation_code(fixed(bytes(5))) == "0" * CONFIRMATION_SYMBOLS


def test_every_used_input_bit_changes_the_id() -> None:
    base = bytes(16)
    seen = {new_matching_id(fixed(base))}
    for bit in range(MATCHING_ID_BITS):
        flipped = bytearray(base)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        seen.add(new_matching_id(fixed(bytes(flipped))))
    assert len(seen) == MATCHING_ID_BITS + 1


def test_too_little_randomness_is_an_error() -> None:
    with pytest.raises(ValueError, match="too few"):
        new_matching_id(lambda n: b"\x00")


@given(st.binary(min_size=16, max_size=16))
def test_every_matching_id_makes_a_valid_activation_code(raw: bytes) -> None:
    matching_id = new_matching_id(fixed(raw))
    code = ActivationCode("smdp.example.test", matching_id)
    assert ActivationCode.parse(code.to_qr_text()).matching_id == matching_id
    assert set(matching_id) <= set(ALPHABET) | {"-"}
    assert not set(matching_id) & set("ILOU")


def test_real_randomness_does_not_repeat() -> None:
    assert len({new_matching_id(os.urandom) for _ in range(1000)}) == 1000
    assert len({new_confirmation_code() for _ in range(200)}) == 200


def test_hashes() -> None:
    # FIPS 180-2 Appendix B.1: SHA-256("abc").
    assert confirmation_hash("abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert matching_id_hash("A") != hashlib.sha256(b"A").digest()
    assert len(matching_id_hash("A")) == 32
    assert matching_id_hash("A") != matching_id_hash("B")
