import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput, SealingError
from ztsim.sealing import KeyRing, Sealer, format_key, key_id, parse_key

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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Where the keys live, as a node sees it: counts its reads."""

    def __init__(self, current: bytes, *others: bytes) -> None:
        self.ring = KeyRing(current, others)
        self.reads = 0

    def __call__(self) -> KeyRing:
        self.reads += 1
        return self.ring


def test_an_unknown_key_id_reloads_once_then_opens() -> None:
    clock, source = Clock(), Source(KEY_A)
    node = Sealer(KEY_A, source=source, clock=clock)
    sealed = Sealer(KEY_B).seal(b"secret", b"aad")
    source.ring = KeyRing(KEY_A, (KEY_B,))  # a rotation wrote its next key
    assert node.open(sealed, b"aad") == b"secret"
    assert node.open(sealed, b"aad") == b"secret"
    assert source.reads == 1
    # Held as an opening key only: sealing stays under the key file's key.
    assert node.current_key_id == key_id(KEY_A)
    assert node.sealed_with_current(node.seal(b"x", b""))


def test_an_id_no_source_holds_fails_and_waits_for_the_rate_limit() -> None:
    clock, source = Clock(), Source(KEY_A)
    node = Sealer(KEY_A, source=source, clock=clock, reload_every=2.0)
    forged = Sealer(KEY_B).seal(b"secret", b"aad")
    with pytest.raises(SealingError, match="not loaded"):
        node.open(forged, b"aad")
    assert source.reads == 1
    clock.now += 1.9
    for _ in range(100):
        with pytest.raises(SealingError, match="not loaded"):
            node.open(forged, b"aad")
    assert source.reads == 1
    clock.now += 0.1
    source.ring = KeyRing(KEY_B, (KEY_A,))
    assert node.open(forged, b"aad") == b"secret"
    assert source.reads == 2


def test_a_flood_of_forged_ids_is_a_bounded_number_of_reads() -> None:
    clock, source = Clock(), Source(KEY_A)
    node = Sealer(KEY_A, source=source, clock=clock, reload_every=2.0)
    template = bytearray(Sealer(KEY_B).seal(b"secret", b"aad"))
    for n in range(1000):
        template[1:5] = n.to_bytes(4, "big")
        with pytest.raises(SealingError):
            node.open(bytes(template), b"aad")
    assert source.reads == 64
    clock.now += 2.0  # the remembered ids expire: reads resume
    with pytest.raises(SealingError):
        node.open(bytes(template), b"aad")
    assert source.reads == 65


def test_sealing_follows_the_source_every_few_seconds() -> None:
    clock, source = Clock(), Source(KEY_A)
    node = Sealer(KEY_A, source=source, clock=clock, reload_every=2.0)
    old = node.seal(b"old", b"aad")
    source.ring = KeyRing(KEY_B, (KEY_A,))  # the rename: the key file holds the new key
    clock.now += 1.0
    assert Sealer(KEY_A).open(node.seal(b"x", b"aad"), b"aad") == b"x"
    assert source.reads == 0
    clock.now += 1.0
    fresh = node.seal(b"new", b"aad")
    assert source.reads == 1
    assert Sealer(KEY_B).open(fresh, b"aad") == b"new"
    assert node.current_key_id == key_id(KEY_B)
    # Keys are only added: what a lagging node sealed under the old key still opens.
    source.ring = KeyRing(KEY_B)
    clock.now += 2.0
    node.seal(b"y", b"")
    assert node.open(old, b"aad") == b"old"


def test_a_source_that_fails_keeps_the_keys_and_logs_no_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()

    def broken() -> KeyRing:
        raise InvalidInput("/data/master.key must be readable by its owner only (chmod 600)")

    node = Sealer(KEY_A, source=broken, clock=clock, reload_every=2.0)
    clock.now += 2.0
    with caplog.at_level(logging.INFO, logger="ztsim.sealing"):
        sealed = node.seal(b"x", b"aad")
        with pytest.raises(SealingError):
            node.open(Sealer(KEY_B).seal(b"y", b""), b"")
    assert node.open(sealed, b"aad") == b"x"
    assert "chmod 600" in caplog.text
    for key in (KEY_A, KEY_B):
        assert key.hex() not in caplog.text
        assert format_key(key) not in caplog.text


def test_threads_sharing_a_node_sealer_all_open_after_a_rotation() -> None:
    source = Source(KEY_A)
    node = Sealer(KEY_A, source=source)
    sealed = Sealer(KEY_B).seal(b"secret", b"aad")
    source.ring = KeyRing(KEY_A, (KEY_B,))
    with ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(lambda _: node.open(sealed, b"aad"), range(200)))
    assert opened == [b"secret"] * 200
    assert source.reads == 1
