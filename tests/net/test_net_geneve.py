"""The Geneve codec against RFC 8926's layout, built here by hand, and against anything."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.net.geneve import (
    MAX_OPTIONS_LENGTH,
    PORT,
    PROTOCOL_ETHERNET,
    PROTOCOL_IPV4,
    PROTOCOL_IPV6,
    GeneveError,
    GeneveHeader,
    GeneveOption,
    decode,
    encode,
    header_bytes,
    options_in,
    parse,
)


def test_the_port_is_the_iana_one() -> None:
    assert PORT == 6081


def test_a_header_without_options_is_laid_out_as_rfc_8926_section_3_4() -> None:
    wire = GeneveHeader(vni=0x123456, protocol=PROTOCOL_IPV4).to_wire()
    # Ver 0, Opt Len 0 | O 0, C 0, Rsvd 0 | Protocol 0x0800 | VNI 0x123456 | Reserved 0
    assert wire == bytes([0x00, 0x00, 0x08, 0x00, 0x12, 0x34, 0x56, 0x00])


def test_options_set_opt_len_in_words_and_critical_sets_c() -> None:
    options = (
        GeneveOption(0xFF5A, 0x81, b"\x00\x00\x00\x07\x00\x00\x00\x02"),
        GeneveOption(0x0102, 0x03),
    )
    wire = GeneveHeader(vni=1, protocol=PROTOCOL_IPV6, options=options, oam=True).to_wire()
    expected = (
        bytes([0x04, 0xC0, 0x86, 0xDD, 0x00, 0x00, 0x01, 0x00])  # Opt Len 4 words, O and C
        + bytes([0xFF, 0x5A, 0x81, 0x02, 0, 0, 0, 7, 0, 0, 0, 2])  # class, type, Length 2
        + bytes([0x01, 0x02, 0x03, 0x00])  # an option without data: Length 0
    )
    assert wire == expected


def test_decode_reads_the_hand_built_vector_back() -> None:
    wire = (
        bytes([0x03, 0x40, 0x08, 0x00, 0xAB, 0xCD, 0xEF, 0x00])
        + bytes([0xFF, 0x00, 0x80, 0x02, 1, 2, 3, 4, 5, 6, 7, 8])
        + bytes([0x45, 0x00])
    )
    header, payload = decode(wire)
    assert header == GeneveHeader(
        0xABCDEF, PROTOCOL_IPV4, (GeneveOption(0xFF00, 0x80, bytes(range(1, 9))),)
    )
    assert header.critical
    assert not header.oam
    assert payload == b"\x45\x00"


def test_reserved_bits_are_ignored_on_receipt() -> None:
    # Rsvd (six bits), the Reserved octet and an option's R bits all set.
    wire = bytes([0x01, 0x3F, 0x08, 0x00, 0, 0, 9, 0xFF, 0x00, 0x01, 0x02, 0xE0])
    header, payload = decode(wire)
    assert header == GeneveHeader(9, PROTOCOL_IPV4, (GeneveOption(1, 2),))
    assert payload == b""


def test_c_without_a_critical_option_is_accepted_and_normalised() -> None:
    header, _ = decode(bytes([0x00, 0x40, 0x08, 0x00, 0, 0, 1, 0]))
    assert not header.critical
    assert header.to_wire()[1] == 0


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"", "empty"),
        (bytes(7), "shorter than the fixed header"),
        (bytes([0x40, 0, 8, 0, 0, 0, 1, 0]), "version 1"),
        (bytes([0xC0, 0, 8, 0, 0, 0, 1, 0]), "version 3"),
        (bytes([0x01, 0, 8, 0, 0, 0, 1, 0]), "Opt Len past the end"),
        (bytes([0x01, 0, 8, 0, 0, 0, 1, 0, 0xFF, 0, 0x01, 0x01]), "option data past Opt Len"),
        (bytes([0x01, 0x40, 8, 0, 0, 0, 1, 0, 0xFF, 0, 0x01, 0x1F]), "Length 31 in 1 word"),
        (bytes([0x01, 0x00, 8, 0, 0, 0, 1, 0, 0xFF, 0, 0x81, 0x00]), "critical without C"),
    ],
)
def test_every_malformed_datagram_is_a_geneve_error(wire: bytes, why: str) -> None:
    with pytest.raises(GeneveError):
        decode(wire)


def test_geneve_error_is_invalid_input() -> None:
    assert issubclass(GeneveError, InvalidInput)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GeneveOption(0x10000, 1),
        lambda: GeneveOption(-1, 1),
        lambda: GeneveOption(1, 0x100),
        lambda: GeneveOption(1, True),
        lambda: GeneveOption(1, 1, b"abc"),
        lambda: GeneveOption(1, 1, bytes(128)),
        lambda: GeneveOption(1, 1, "abcd"),  # type: ignore[arg-type]
        lambda: GeneveHeader(0x1000000),
        lambda: GeneveHeader(-1),
        lambda: GeneveHeader(1, 0x10000),
        lambda: GeneveHeader(1, PROTOCOL_IPV4, [GeneveOption(1, 1)]),  # type: ignore[arg-type]
        lambda: GeneveHeader(1, PROTOCOL_IPV4, (GeneveOption(1, 1, bytes(124)),) * 3),
        lambda: GeneveHeader(1, PROTOCOL_IPV4, oam=1),  # type: ignore[arg-type]
    ],
)
def test_values_check_themselves(make: object) -> None:
    with pytest.raises(GeneveError):
        make()  # type: ignore[operator]


def test_the_largest_options_area_fits() -> None:
    options = (GeneveOption(1, 1, bytes(124)), GeneveOption(2, 2, bytes(120)))
    header = GeneveHeader(1, PROTOCOL_IPV4, options)
    assert header.options_length == MAX_OPTIONS_LENGTH
    assert header.to_wire()[0] == 63
    assert decode(header.to_wire())[0] == header


def test_parse_and_options_in_read_in_place() -> None:
    options = (GeneveOption(0xFF5A, 0x81, bytes(8)), GeneveOption(0xFF5A, 2, bytes(16)))
    wire = header_bytes(77, PROTOCOL_ETHERNET, options) + b"payload"
    head = parse(memoryview(wire))
    assert (head.vni, head.protocol, head.oam, head.critical) == (
        77,
        PROTOCOL_ETHERNET,
        False,
        True,
    )
    assert wire[head.options_end :] == b"payload"
    found = [(c, t, bytes(d)) for c, t, d in options_in(wire, head.options_end)]
    assert found == [(0xFF5A, 0x81, bytes(8)), (0xFF5A, 2, bytes(16))]


options_strategy = st.builds(
    GeneveOption,
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFF),
    st.integers(0, 31).flatmap(lambda words: st.binary(min_size=4 * words, max_size=4 * words)),
)


@st.composite
def headers(draw: st.DrawFn) -> GeneveHeader:
    options: list[GeneveOption] = []
    room = MAX_OPTIONS_LENGTH
    for option in draw(st.lists(options_strategy, max_size=6)):
        if option.wire_length <= room:
            options.append(option)
            room -= option.wire_length
    return GeneveHeader(
        draw(st.integers(0, 0xFFFFFF)),
        draw(st.integers(0, 0xFFFF)),
        tuple(options),
        draw(st.booleans()),
    )


@given(headers(), st.binary(max_size=64))
def test_round_trip(header: GeneveHeader, payload: bytes) -> None:
    assert decode(encode(header, payload)) == (header, payload)


@given(st.binary(max_size=300))
def test_decode_raises_nothing_but_geneve_error(wire: bytes) -> None:
    try:
        header, payload = decode(wire)
    except GeneveError:
        return
    assert header.to_wire() + payload == _normalised(wire, header.length)


@given(headers(), st.binary(max_size=16), st.data())
def test_a_flipped_byte_decodes_or_is_a_geneve_error(
    header: GeneveHeader, payload: bytes, data: st.DataObject
) -> None:
    wire = bytearray(encode(header, payload))
    at = data.draw(st.integers(0, len(wire) - 1))
    wire[at] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(GeneveError):
        decode(bytes(wire))


def _normalised(wire: bytes, length: int) -> bytes:
    """`wire` with what decoding ignores cleared: Rsvd, Reserved, R bits, and C (recomputed)."""
    out = bytearray(wire)
    critical = False
    at = 8
    while at < length:
        critical |= bool(out[at + 2] & 0x80)
        out[at + 3] &= 0x1F
        at += 4 + out[at + 3] * 4
    out[1] = (out[1] & 0x80) | (0x40 if critical else 0)
    out[7] = 0
    return bytes(out)
