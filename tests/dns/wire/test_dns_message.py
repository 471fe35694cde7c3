"""The full message codec: round trips, RFC layouts, and only DnsDecodeError from bad bytes."""

import contextlib
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.dns.wire.edns import Edns, EdnsOption, ExtendedError
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message

from support.dns_strategies import messages


@given(messages())
@settings(max_examples=300)
def test_round_trip(message: Message) -> None:
    assert decode_message(message.to_wire()) == message


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_arbitrary_bytes_only_raise_decode_error(wire: bytes) -> None:
    try:
        message = decode_message(wire)
    except DnsDecodeError:
        return
    assert isinstance(message, Message)


@given(messages(), st.data())
@settings(max_examples=300)
def test_corrupted_messages_only_raise_decode_error(message: Message, data: st.DataObject) -> None:
    wire = bytearray(message.to_wire())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
        wire[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    with contextlib.suppress(DnsDecodeError):
        decode_message(bytes(wire[:cut]))


def test_query_layout_matches_rfc1035_section_4() -> None:
    message = Message(id=0xBEEF, flags=Flag.RD, questions=(Question("example.com", 1),))
    # Header (§4.1.1): ID, RD only, QDCOUNT 1; question (§4.1.2): name, QTYPE A, QCLASS IN.
    expected = bytes.fromhex("beef01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
    assert message.to_wire() == expected


def test_owner_and_rdata_names_are_compressed() -> None:
    message = Message(
        id=1,
        flags=Flag.QR,
        questions=(Question("example.com", 1),),
        answers=(
            ResourceRecord.with_name("example.com", RRType.CNAME, "www.example.com", 300),
            ResourceRecord.address("www.example.com", "192.0.2.1", 300),
        ),
    )
    wire = message.to_wire()
    question_name_at = 12
    assert wire.count(b"\x07example") == 1
    assert struct.pack("!H", 0xC000 | question_name_at) in wire
    assert decode_message(wire) == message


def test_extended_rcode_split_between_header_and_opt() -> None:
    # RFC 6891 §6.1.3: BADVERS (16) is header RCODE 0 with OPT extended RCODE 1.
    wire = Message(id=2, flags=Flag.QR, rcode=16, edns=Edns()).to_wire()
    assert wire[3] & 0x0F == 0
    assert wire[-6] == 1  # the OPT TTL's first octet
    assert decode_message(wire).rcode == 16


def test_rcode_over_15_needs_edns() -> None:
    with pytest.raises(DnsEncodeError):
        Message(id=1, rcode=16)


def test_ede_option_layout() -> None:
    # RFC 8914 §2: OPTION-CODE 15, OPTION-LENGTH, INFO-CODE (16 bits), EXTRA-TEXT (UTF-8).
    option = ExtendedError(EdeCode.BLOCKED, "ads ✓").to_option()
    assert option.code == 15
    assert option.data == b"\x00\x0f" + "ads ✓".encode()
    assert ExtendedError.from_option(option) == ExtendedError(15, "ads ✓")


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x0f\xff"])
def test_bad_ede_option(data: bytes) -> None:
    with pytest.raises(DnsDecodeError):
        ExtendedError.from_option(EdnsOption(15, data))


def _opt(options: bytes = b"") -> bytes:
    return b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(options)) + options


_QUERY_HEAD = bytes.fromhex("0001 0100 0001 0000 0000")
_QUESTION = b"\x01a\x00\x00\x01\x00\x01"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x00" * 11, "shorter than the 12-octet header"),
        (_QUERY_HEAD + b"\x00\x02" + _QUESTION + _opt() + _opt(), "OPT misplaced, repeated"),
        (_QUERY_HEAD + b"\x00\x01" + _QUESTION + b"\x01a" + _opt(), "not owned by the root"),
        (_QUERY_HEAD + b"\x00\x01" + _QUESTION + _opt(b"\x00\x0a\x00\x09abc"), "past RDLENGTH"),
        (_QUERY_HEAD + b"\x00\x00" + _QUESTION + b"\x00", "1 octets after the last record"),
        (_QUERY_HEAD + b"\x00\x00" + _QUESTION[:-1], "question cut short"),
        (
            bytes.fromhex("0001 8100 0001 0001 0000 0000")
            + _QUESTION
            + b"\xc0\x0c"
            + struct.pack("!HHIH", 1, 1, 60, 3)
            + b"\x01\x02\x03",
            "must be 4 octets",
        ),
        (
            bytes.fromhex("0001 8100 0001 0001 0000 0000")
            + _QUESTION
            + b"\xc0\x0c"
            + struct.pack("!HHIH", 5, 1, 60, 4)
            + b"\x01a\x00\x00",
            "longer than its fields",
        ),
    ],
)
def test_decode_errors_say_why(wire: bytes, reason: str) -> None:
    with pytest.raises(DnsDecodeError, match=reason):
        decode_message(wire)


def test_compressed_rdata_name_is_expanded() -> None:
    # A CNAME whose target points back into the question name (RFC 1035 §4.1.4).
    wire = (
        bytes.fromhex("0001 8180 0001 0001 0000 0000")
        + b"\x07example\x03com\x00\x00\x05\x00\x01"
        + b"\xc0\x0c"
        + struct.pack("!HHIH", 5, 1, 60, 6)
        + b"\x03www\xc0\x0c"
    )
    (record,) = decode_message(wire).answers
    assert record.rdata == b"\x03www\x07example\x03com\x00"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Question("a..b", 1),
        lambda: Question("a", 70000),
        lambda: ResourceRecord("a", 1, 1, 60, b"\x00"),
        lambda: ResourceRecord("a", 1, 1, -1, b"\x00" * 4),
        lambda: ResourceRecord("a", 41, 1, 0, b""),
        lambda: ResourceRecord("a", 5, 1, 0, b"\xc0\x00"),
        lambda: Message(id=70000),
        lambda: Message(id=1, flags=0x000F),  # type: ignore[arg-type]
        lambda: Edns(payload_size=-1),
        lambda: EdnsOption(1 << 16),
        lambda: ResourceRecord.address("a", "not-an-ip", 60),
    ],
)
def test_values_check_themselves(build: object) -> None:
    with pytest.raises(DnsEncodeError):
        build()  # type: ignore[operator]


def test_edns_reports_its_extended_errors() -> None:
    edns = Edns(options=(EdnsOption(10, b"12345678"), ExtendedError(17, "x").to_option()))
    message = replace(Message(id=3, edns=edns))
    decoded = decode_message(message.to_wire())
    assert decoded.edns is not None
    assert decoded.edns.extended_errors() == (ExtendedError(17, "x"),)
