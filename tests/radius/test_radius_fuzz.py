"""Hypothesis: the decoder raises only RadiusDecodeError; valid packets round-trip."""

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.radius import (
    Attribute,
    Code,
    Packet,
    RadiusDecodeError,
    SharedSecret,
    decode_attributes,
    encode_reply,
    make_reply,
    sign_request,
    verify_reply,
    verify_request,
)
from ztsim.radius.codes import REPLIES
from ztsim.radius.uli import UserLocationInfo
from ztsim.radius.values import MsTimeZone

SECRET = SharedSecret("fuzz-secret")

attributes = st.builds(Attribute, st.integers(0, 255), st.binary(max_size=40))
packets = st.builds(
    Packet,
    st.sampled_from(list(Code)),
    st.integers(0, 255),
    st.binary(min_size=16, max_size=16),
    st.lists(attributes, max_size=12).map(tuple),
)


def _header(code: int, length: int) -> bytes:
    return bytes((code, 0)) + length.to_bytes(2, "big") + bytes(16)


# Mostly well-formed headers with random bodies, so the attribute walk is reached.
datagrams = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda code, body, extra: _header(code, 20 + len(body) + extra) + body,
        st.sampled_from([int(c) for c in Code]),
        st.binary(max_size=200),
        st.integers(-3, 3),
    ),
)


@settings(max_examples=600)
@given(datagrams)
def test_decoder_raises_only_decode_error(datagram: bytes) -> None:
    try:
        packet = Packet.decode(datagram)
    except RadiusDecodeError:
        return
    assert packet.encode() == datagram[: packet.length]
    with contextlib.suppress(RadiusDecodeError):
        decode_attributes(packet)


vendor_values = st.builds(
    lambda vendor, body: Attribute(26, vendor.to_bytes(4, "big") + body),
    st.sampled_from([10415, 311, 9, 0]),
    st.binary(max_size=40),
)


@settings(max_examples=600)
@given(st.lists(st.one_of(attributes, vendor_values), max_size=8))
def test_typed_decoding_raises_only_decode_error(items: list[Attribute]) -> None:
    try:
        decoded = decode_attributes(items)
    except RadiusDecodeError:
        return
    assert len(decoded) >= sum(1 for a in items if a.type != 26)


@given(st.binary(max_size=30))
def test_uli_raises_only_decode_error_and_keeps_octets(raw: bytes) -> None:
    try:
        value = UserLocationInfo.decode(raw)
    except RadiusDecodeError:
        return
    assert value.encode() == raw


@given(st.binary(max_size=4))
def test_timezone_raises_only_decode_error_and_is_stable(raw: bytes) -> None:
    try:
        zone = MsTimeZone.decode(raw)
    except RadiusDecodeError:
        return
    # Spare bits (and the sign of zero) are dropped, so compare values, not octets.
    assert MsTimeZone.decode(zone.encode()) == zone


@given(packets, st.binary(max_size=20))
def test_valid_packets_round_trip(packet: Packet, padding: bytes) -> None:
    assert Packet.decode(packet.encode() + padding) == packet


@given(
    st.sampled_from(sorted(REPLIES)),
    st.integers(0, 255),
    st.binary(min_size=16, max_size=16),
    st.lists(attributes, max_size=6),
    st.booleans(),
)
def test_signed_requests_and_replies_verify(
    code: Code, identifier: int, nonce: bytes, items: list[Attribute], with_ma: bool
) -> None:
    items = [a for a in items if a.type not in (33, 80)]
    request = sign_request(
        Packet(code, identifier, nonce, tuple(items)), SECRET, add_message_authenticator=with_ma
    )
    verify_request(Packet.decode(request.encode()), SECRET)
    for reply_code in REPLIES[code]:
        reply = make_reply(request, reply_code, items[:2])
        verify_reply(Packet.decode(encode_reply(reply, request, SECRET)), request, SECRET)
