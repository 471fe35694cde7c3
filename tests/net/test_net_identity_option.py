"""ztsim's Geneve options: their bytes, their criticality, and reading them back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.net.geneve import EXPERIMENTAL_CLASSES, GeneveError, GeneveHeader, decode, options_in
from ztsim.net.identity_option import (
    KNOWN,
    OPTION_CLASS,
    TYPE_IDENTITY,
    TYPE_POLICY_CLASS,
    ClassTag,
    Subject,
    read_subject,
)

IDENTITY = "0123456789abcdef0123456789abcdef"


def test_the_class_is_experimental_and_the_types_say_their_criticality() -> None:
    assert OPTION_CLASS in EXPERIMENTAL_CLASSES
    assert OPTION_CLASS != 0xFF00
    assert TYPE_POLICY_CLASS & 0x80  # critical: a site that cannot read it drops
    assert not TYPE_IDENTITY & 0x80  # attribution only: may be skipped
    assert {(OPTION_CLASS, TYPE_POLICY_CLASS), (OPTION_CLASS, TYPE_IDENTITY)} == KNOWN


def test_the_options_bytes_as_documented() -> None:
    wire = GeneveHeader(5, options=Subject(ClassTag(0x01020304, 7), IDENTITY).options()).to_wire()
    assert wire[:8] == bytes([0x08, 0x40, 0x08, 0x00, 0, 0, 5, 0])  # 8 words of options, C
    assert wire[8:20] == bytes([0xFF, 0x5A, 0x81, 0x02, 1, 2, 3, 4, 0, 0, 0, 7])
    assert wire[20:24] == bytes([0xFF, 0x5A, 0x02, 0x04])
    assert wire[24:40] == bytes.fromhex(IDENTITY)


def test_the_identity_stays_off_the_wire_when_asked() -> None:
    options = Subject(ClassTag(1, 2), IDENTITY).options(with_identity=False)
    assert [(o.option_class, o.type) for o in options] == [(OPTION_CLASS, TYPE_POLICY_CLASS)]
    assert len(Subject(ClassTag(1, 2)).options()) == 1


@given(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.none() | st.binary(min_size=16, max_size=16).map(bytes.hex),
)
def test_round_trip_through_a_datagram(
    generation: int, class_id: int, identity: str | None
) -> None:
    subject = Subject(ClassTag(generation, class_id), identity)
    wire = GeneveHeader(1, options=subject.options()).to_wire()
    header, _ = decode(wire)
    assert read_subject(options_in(wire, header.length)) == subject


def test_other_classes_are_skipped_and_an_identity_alone_names_nobody() -> None:
    assert read_subject([(0x0101, TYPE_POLICY_CLASS, bytes(8))]) is None
    assert read_subject([(OPTION_CLASS, TYPE_IDENTITY, bytes(16))]) is None
    assert read_subject(
        [(OPTION_CLASS, 0x03, bytes(4)), (OPTION_CLASS, TYPE_POLICY_CLASS, bytes(8))]
    ) == (Subject(ClassTag(0, 0)))


@pytest.mark.parametrize(
    "options",
    [
        [(OPTION_CLASS, TYPE_POLICY_CLASS, bytes(4))],
        [(OPTION_CLASS, TYPE_POLICY_CLASS, bytes(12))],
        [(OPTION_CLASS, TYPE_POLICY_CLASS, bytes(8))] * 2,
        [(OPTION_CLASS, TYPE_POLICY_CLASS, bytes(8)), (OPTION_CLASS, TYPE_IDENTITY, bytes(12))],
        [(OPTION_CLASS, TYPE_IDENTITY, bytes(16))] * 2,
    ],
)
def test_our_own_options_malformed_are_an_error(options: list[tuple[int, int, bytes]]) -> None:
    with pytest.raises(GeneveError):
        read_subject(options)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClassTag(-1, 0),
        lambda: ClassTag(0, 1 << 32),
        lambda: ClassTag(True, 0),
        lambda: Subject(ClassTag(0, 0), IDENTITY.upper()),
        lambda: Subject(ClassTag(0, 0), IDENTITY[:-1]),
        lambda: Subject(ClassTag(0, 0), "g" * 32),
        lambda: Subject((0, 0)),  # type: ignore[arg-type]
    ],
)
def test_values_check_themselves(make: object) -> None:
    with pytest.raises(GeneveError):
        make()  # type: ignore[operator]
