import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput, SealingError
from ztsim.sealing import Sealer, format_key, key_id, parse_key

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


@given(st.binary(max_size=64), st.binary(max_size=32))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    sealer = Sealer(KEY_A)
    assert sealer.open(sealer.seal(plaintext, aad), aad) == plaintext


def test_ciphertext_hides_plaintext_and_differs_each_time() -> None:
    sealer = Sealer(KEY_A)
    secret = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    one, two = sealer.seal(secret, b"89440"), sealer.seal(secret, b"89440")
    assert secret not in one
    assert one != two


def test_wrong_key_fails_closed() -> None:
    sealed = Sealer(KEY_A).seal(b"k" * 16, b"iccid")
    with pytest.raises(SealingError, match="not loaded"):
        Sealer(KEY_B).open(sealed, b"iccid")


def test_other_row_fails_closed() -> None:
    sealer = Sealer(KEY_A)
    sealed = sealer.seal(b"k" * 16, b"8944000000000000001")
    with pytest.raises(SealingError, match="wrong key or tampered"):
        sealer.open(sealed, b"8944000000000000019")


@pytest.mark.parametrize("position", [0, 3, 10, 20, -1])
def test_tampering_fails_closed(position: int) -> None:
    sealer = Sealer(KEY_A)
    sealed = bytearray(sealer.seal(b"k" * 16, b"aad"))
    sealed[position] ^= 0x01
    with pytest.raises(SealingError):
        sealer.open(bytes(sealed), b"aad")


def test_rotation_opens_old_and_seals_new() -> None:
    old = Sealer(KEY_A).seal(b"secret", b"aad")
    both = Sealer(KEY_B, others=[KEY_A])
    assert both.open(old, b"aad") == b"secret"
    assert not both.sealed_with_current(old)
    fresh = both.reseal(old, b"aad")
    assert both.sealed_with_current(fresh)
    assert Sealer(KEY_B).open(fresh, b"aad") == b"secret"


def test_errors_and_repr_carry_no_key() -> None:
    sealer = Sealer(KEY_A)
    assert KEY_A.hex() not in repr(sealer)
    assert key_id(KEY_A).hex() in repr(sealer)
    with pytest.raises(SealingError) as info:
        sealer.open(b"\x01" + b"\x00" * 40, b"")
    assert KEY_A.hex() not in str(info.value)


@pytest.mark.parametrize("text", [KEY_A.hex(), format_key(KEY_A), f"  {KEY_A.hex()}\n"])
def test_parse_key_forms(text: str) -> None:
    assert parse_key(text) == KEY_A


@pytest.mark.parametrize("text", ["", "abc", "00" * 31, "zz" * 32, format_key(b"x" * 16)])
def test_parse_key_refuses(text: str) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        parse_key(text)
