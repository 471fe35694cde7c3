"""Names on the wire: compression, its abuse, and the presentation-text escapes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.dns.wire._wirename import decode_name, encode_name, labels_to_text, text_to_labels
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError


def _rfc1035_example() -> bytes:
    # RFC 1035 §4.1.4: F.ISI.ARPA at 20, FOO.F.ISI.ARPA at 40 (pointer to 20),
    # ARPA at 64 (pointer to 26), the root at 92.
    buf = bytearray(100)
    buf[20:32] = b"\x01F\x03ISI\x04ARPA\x00"
    buf[40:46] = b"\x03FOO\xc0\x14"
    buf[64:66] = b"\xc0\x1a"
    buf[92] = 0
    return bytes(buf)


def test_rfc1035_compression_example() -> None:
    wire = _rfc1035_example()
    assert decode_name(wire, 20) == ((b"F", b"ISI", b"ARPA"), 32)
    assert decode_name(wire, 40) == ((b"FOO", b"F", b"ISI", b"ARPA"), 46)
    assert decode_name(wire, 64) == ((b"ARPA",), 66)
    assert decode_name(wire, 92) == ((), 93)


def test_encoder_reproduces_rfc1035_pointers() -> None:
    out = bytearray(20)
    table: dict[tuple[bytes, ...], int] = {}
    encode_name((b"F", b"ISI", b"ARPA"), out, table)
    encode_name((b"FOO", b"F", b"ISI", b"ARPA"), out, table)
    encode_name((b"ARPA",), out, table)
    assert bytes(out[20:]) == b"\x01F\x03ISI\x04ARPA\x00" + b"\x03FOO\xc0\x14" + b"\xc0\x1a"


@pytest.mark.parametrize(
    ("wire", "offset", "reason"),
    [
        (b"\xc0\x00", 0, "does not point backwards"),  # points at itself: a loop
        (b"\x00\xc0\x03\x01a\x00", 1, "does not point backwards"),  # forward pointer
        (b"\x03ab", 0, "past the end"),
        (b"\x01a", 0, "past the end"),
        (b"\xc0", 0, "cut short"),
        (b"\x41abc\x00", 0, "label type 0x40"),  # RFC 6891 §5: extended label types are gone
        (b"\x81abc\x00", 0, "label type 0x80"),
        (b"", 0, "past the end"),
    ],
)
def test_malformed_names(wire: bytes, offset: int, reason: str) -> None:
    with pytest.raises(DnsDecodeError, match=reason):
        decode_name(wire, offset)


def test_name_of_256_octets_is_refused_even_through_pointers() -> None:
    # Four 62-octet labels are 252 octets; with pointers that reuse them the total passes 255.
    head = b"".join(b"\x3e" + bytes([0x61 + i]) * 62 for i in range(4)) + b"\x00"
    assert decode_name(head, 0)[0][3] == b"d" * 62
    wire = head + b"\x02zz\xc0\x00"
    with pytest.raises(DnsDecodeError, match="255"):
        decode_name(wire, len(head))


def test_pointer_chain_backwards_is_followed() -> None:
    wire = b"\x01a\x00" + b"\x01b\xc0\x00" + b"\x01c\xc0\x03"
    assert decode_name(wire, 7) == ((b"c", b"b", b"a"), 11)


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("", ()),
        (".", ()),
        ("example.com", (b"example", b"com")),
        ("example.com.", (b"example", b"com")),
        ("a\\.b.c", (b"a.b", b"c")),
        ("\\000\\255.x", (b"\x00\xff", b"x")),
        ("back\\\\slash", (b"back\\slash",)),
    ],
)
def test_text_to_labels(text: str, labels: tuple[bytes, ...]) -> None:
    assert text_to_labels(text) == labels


@pytest.mark.parametrize("text", ["a..b", ".a", "a..", "\\256", "a b", "é.com", "a\\", "x" * 64])
def test_bad_text(text: str) -> None:
    with pytest.raises(DnsEncodeError):
        text_to_labels(text)


_labels = st.lists(st.binary(min_size=1, max_size=63), max_size=4).map(tuple)


@given(_labels)
def test_text_round_trip(labels: tuple[bytes, ...]) -> None:
    assert text_to_labels(labels_to_text(labels)) == labels


@given(st.binary(max_size=80), st.integers(min_value=0, max_value=80))
def test_decode_name_only_raises_decode_error(wire: bytes, offset: int) -> None:
    try:
        labels, end = decode_name(wire, offset)
    except DnsDecodeError:
        return
    assert sum(len(label) + 1 for label in labels) + 1 <= 255
    assert offset < end <= len(wire)
