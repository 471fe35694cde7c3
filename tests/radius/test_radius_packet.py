"""Packet structure: RFC 2865 §3/§5 decoding rules and the RFC 2865 §7 examples."""

import pytest

from ztsim.errors import InvalidInput
from ztsim.radius import (
    Attribute,
    Code,
    Packet,
    RadiusDecodeError,
    RadiusEncodeError,
    SharedSecret,
    decode_attributes,
    unhide_password,
    verify_reply,
)
from ztsim.radius.auth import hide_password

# RFC 2865 §7.1 "User Telnet to Specified Host", shared secret "xyzzy5461".
RFC2865_7_1_REQUEST = bytes.fromhex(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
)
RFC2865_7_1_ACCEPT = bytes.fromhex(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf"
    "9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
)
RFC2865_7_1_SECRET = SharedSecret("xyzzy5461")
# RFC 2865 §7.2 "Framed User Authenticating with CHAP".
RFC2865_7_2_REQUEST = bytes.fromhex(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
)
# RFC 2865 §7.3 "User with Challenge-Response card", the Access-Challenge.
RFC2865_7_3_CHALLENGE = bytes.fromhex(
    "0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c"
    "71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20"
    "33 32 37 36 39 34 33 30 2e 20 20 45 6e 74 65 72"
    "20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f"
    "6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30"
)


def test_rfc2865_7_1_request_decodes_to_its_documented_attributes() -> None:
    packet = Packet.decode(RFC2865_7_1_REQUEST)
    assert packet.code is Code.ACCESS_REQUEST
    assert packet.identifier == 0
    assert [a.type for a in packet.attributes] == [1, 2, 4, 5]
    typed = decode_attributes(packet)
    assert typed.get("User-Name") == "nemo"
    assert str(typed.get("NAS-IP-Address")) == "192.168.1.16"
    assert typed.get("NAS-Port") == 3
    hidden = packet.get(2)
    assert hidden is not None
    assert unhide_password(hidden, RFC2865_7_1_SECRET, packet.authenticator) == b"arctangent"
    assert hide_password(b"arctangent", RFC2865_7_1_SECRET, packet.authenticator) == hidden
    assert packet.encode() == RFC2865_7_1_REQUEST


def test_rfc2865_7_1_accept_verifies_against_its_request() -> None:
    request = Packet.decode(RFC2865_7_1_REQUEST)
    accept = Packet.decode(RFC2865_7_1_ACCEPT)
    verify_reply(accept, request, RFC2865_7_1_SECRET)
    typed = decode_attributes(accept)
    assert typed.get("Service-Type") == 1  # Login
    assert accept.encode() == RFC2865_7_1_ACCEPT


def test_rfc2865_7_2_and_7_3_examples_decode() -> None:
    chap = decode_attributes(Packet.decode(RFC2865_7_2_REQUEST))
    assert chap.get("User-Name") == "flopsy"
    assert chap.get("NAS-Port") == 20
    assert chap.get("Service-Type") == 2
    assert chap.get("Framed-Protocol") == 1
    challenge = Packet.decode(RFC2865_7_3_CHALLENGE)
    assert challenge.code is Code.ACCESS_CHALLENGE
    typed = decode_attributes(challenge)
    assert typed.get("Reply-Message") == "Challenge 32769430.  Enter response at prompt."
    assert typed.get("State") == b"32769430"


def test_octets_beyond_length_are_padding() -> None:
    packet = Packet.decode(RFC2865_7_1_REQUEST + b"\xff" * 7)
    assert packet.encode() == RFC2865_7_1_REQUEST


@pytest.mark.parametrize("cut", range(len(RFC2865_7_1_REQUEST)))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(RadiusDecodeError):
        Packet.decode(RFC2865_7_1_REQUEST[:cut])


def _header(code: int, length: int) -> bytes:
    return bytes((code, 7)) + length.to_bytes(2, "big") + bytes(16)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (_header(1, 19), "outside"),
        (_header(1, 4097) + bytes(4077), "outside"),
        (_header(1, 22), "exceeds"),
        (_header(99, 20), "unknown RADIUS code"),
        (_header(1, 21) + b"\x01", "cut off"),
        (_header(1, 22) + b"\x01\x01", "length 1 < 2"),
        (_header(1, 23) + b"\x01\x04\x00", "runs past"),
    ],
)
def test_structural_faults_name_their_reason(datagram: bytes, reason: str) -> None:
    with pytest.raises(RadiusDecodeError, match=reason) as caught:
        Packet.decode(datagram)
    assert isinstance(caught.value, InvalidInput)


def test_attribute_of_length_two_is_an_empty_value() -> None:
    packet = Packet.decode(_header(1, 22) + b"\x12\x02")
    assert packet.attributes == (Attribute(18, b""),)


def test_largest_packet_round_trips_and_one_more_octet_is_refused() -> None:
    filler = [Attribute(26, bytes(253))] * 15 + [Attribute(25, bytes(249))]
    packet = Packet(Code.ACCESS_ACCEPT, 1, bytes(16), tuple(filler))
    assert packet.length == 4096
    assert Packet.decode(packet.encode()) == packet
    with pytest.raises(RadiusEncodeError):
        Packet(Code.ACCESS_ACCEPT, 1, bytes(16), (*filler, Attribute(1, b"")))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identifier": 256},
        {"identifier": -1},
        {"authenticator": bytes(15)},
        {"code": 99},
    ],
)
def test_packet_checks_itself(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"code": 1, "identifier": 0, "authenticator": bytes(16)}
    fields.update(kwargs)
    with pytest.raises(RadiusEncodeError):
        Packet(**fields)  # type: ignore[arg-type]


def test_attribute_checks_itself() -> None:
    with pytest.raises(RadiusEncodeError):
        Attribute(256, b"")
    with pytest.raises(RadiusEncodeError):
        Attribute(1, bytes(254))


def test_repr_shows_sizes_not_values() -> None:
    packet = Packet.decode(RFC2865_7_1_REQUEST)
    text = repr(packet)
    assert "nemo" not in text
    assert "<16 octets>" in text
