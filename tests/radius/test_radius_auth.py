"""Authenticators, Message-Authenticator, Proxy-State echo and secret hygiene."""

import hashlib
import hmac
import pickle

import pytest

from ztsim.radius import (
    Attribute,
    AttributeType,
    Code,
    Packet,
    RadiusAuthError,
    RadiusDecodeError,
    RadiusEncodeError,
    SharedSecret,
    encode_reply,
    framed_ip_address,
    hide_password,
    make_reply,
    sign_request,
    unhide_password,
    verify_reply,
    verify_request,
)

SECRET = SharedSecret("s3cret-for-tests")
OTHER = SharedSecret("another-secret")
NONCE = bytes(range(16))


def _access_request(*attributes: Attribute, message_authenticator: bool = True) -> Packet:
    packet = Packet(Code.ACCESS_REQUEST, 42, NONCE, attributes)
    return sign_request(packet, SECRET, add_message_authenticator=message_authenticator)


def _independent_ma(datagram: bytes, authenticator: bytes, ma_offset: int) -> bytes:
    """RFC 3579 §3.2 recomputed straight from the octets."""
    zeroed = bytearray(datagram)
    zeroed[4:20] = authenticator
    zeroed[ma_offset : ma_offset + 16] = bytes(16)
    return hmac.new(SECRET.reveal(), bytes(zeroed), hashlib.md5).digest()


def test_access_request_message_authenticator_matches_rfc3579_formula() -> None:
    request = _access_request(Attribute(AttributeType.USER_NAME, b"001010000000001"))
    wire = request.encode()
    assert wire[20] == AttributeType.MESSAGE_AUTHENTICATOR
    assert wire[22:38] == _independent_ma(wire, NONCE, 22)
    verify_request(Packet.decode(wire), SECRET, require_message_authenticator=True)


def test_tampered_or_wrong_secret_access_request_is_refused() -> None:
    request = _access_request(Attribute(AttributeType.USER_NAME, b"alice"))
    with pytest.raises(RadiusAuthError, match="Message-Authenticator"):
        verify_request(request, OTHER)
    wire = bytearray(request.encode())
    wire[-1] ^= 1
    with pytest.raises(RadiusAuthError):
        verify_request(Packet.decode(bytes(wire)), SECRET)


def test_missing_message_authenticator_only_fails_when_required() -> None:
    request = _access_request(Attribute(1, b"bob"), message_authenticator=False)
    verify_request(request, SECRET)
    with pytest.raises(RadiusAuthError, match="lacks"):
        verify_request(request, SECRET, require_message_authenticator=True)


def test_two_message_authenticators_are_refused() -> None:
    request = _access_request(Attribute(1, b"x"))
    doubled = request.replace(attributes=[*request.attributes, request.attributes[0]])
    with pytest.raises(RadiusAuthError, match="more than one"):
        verify_request(doubled, SECRET)


@pytest.mark.parametrize(
    "code", [Code.ACCOUNTING_REQUEST, Code.DISCONNECT_REQUEST, Code.COA_REQUEST]
)
def test_hashed_request_authenticator_matches_rfc2866_formula(code: Code) -> None:
    packet = sign_request(Packet(code, 9, bytes(16), (Attribute(44, b"sess-1"),)), SECRET)
    wire = packet.encode()
    # RFC 2866 §3: MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret).
    expected = hashlib.md5(
        wire[:4] + bytes(16) + wire[20:] + SECRET.reveal(), usedforsecurity=False
    ).digest()
    assert packet.authenticator == expected
    verify_request(Packet.decode(wire), SECRET)
    with pytest.raises(RadiusAuthError, match="Request Authenticator"):
        verify_request(packet, OTHER)
    forged = packet.replace(attributes=[Attribute(44, b"sess-2")])
    with pytest.raises(RadiusAuthError):
        verify_request(forged, SECRET)


def test_hashed_request_with_message_authenticator_uses_zero_authenticator() -> None:
    packet = sign_request(
        Packet(Code.COA_REQUEST, 3, bytes(16), (Attribute(27, bytes(4)),)),
        SECRET,
        add_message_authenticator=True,
    )
    wire = packet.encode()
    assert wire[22:38] == _independent_ma(wire, bytes(16), 22)
    verify_request(packet, SECRET, require_message_authenticator=True)


def test_replies_are_not_requests() -> None:
    with pytest.raises(RadiusAuthError, match="not a request"):
        verify_request(Packet(Code.ACCESS_ACCEPT, 1, bytes(16)), SECRET)


def test_reply_puts_message_authenticator_first_and_verifies() -> None:
    request = _access_request(
        Attribute(1, b"alice"),
        Attribute(AttributeType.PROXY_STATE, b"\x01\x02"),
        Attribute(AttributeType.PROXY_STATE, b"\x03"),
    )
    reply = make_reply(request, Code.ACCESS_ACCEPT, [framed_ip_address("10.0.0.7")])
    wire = encode_reply(reply, request, SECRET)
    decoded = Packet.decode(wire)
    assert [a.type for a in decoded.attributes] == [80, 8, 33, 33]
    assert decoded.get_all(AttributeType.PROXY_STATE) == (b"\x01\x02", b"\x03")
    # RFC 2865 §3 Response Authenticator, recomputed from the octets.
    expected = hashlib.md5(
        wire[:4] + request.authenticator + wire[20:] + SECRET.reveal(), usedforsecurity=False
    ).digest()
    assert decoded.authenticator == expected
    assert wire[22:38] == _independent_ma(wire, request.authenticator, 22)
    verify_reply(decoded, request, SECRET, require_message_authenticator=True)
    with pytest.raises(RadiusAuthError):
        verify_reply(decoded, request, OTHER)


def test_stale_message_authenticator_in_reply_is_replaced_not_duplicated() -> None:
    request = _access_request(Attribute(1, b"alice"))
    stale = Attribute(AttributeType.MESSAGE_AUTHENTICATOR, b"\xaa" * 16)
    reply = make_reply(request, Code.ACCESS_REJECT, [Attribute(18, b"no"), stale])
    decoded = Packet.decode(encode_reply(reply, request, SECRET))
    assert [a.type for a in decoded.attributes] == [80, 18]
    verify_reply(decoded, request, SECRET)


def test_accounting_response_gets_no_message_authenticator_by_default() -> None:
    request = sign_request(Packet(Code.ACCOUNTING_REQUEST, 5, bytes(16), ()), SECRET)
    reply = make_reply(request, Code.ACCOUNTING_RESPONSE)
    decoded = Packet.decode(encode_reply(reply, request, SECRET))
    assert decoded.attributes == ()
    verify_reply(decoded, request, SECRET)


def test_make_reply_checks_code_and_proxy_state() -> None:
    request = _access_request(Attribute(1, b"alice"))
    with pytest.raises(RadiusEncodeError):
        make_reply(request, Code.COA_ACK)
    with pytest.raises(RadiusEncodeError, match="Proxy-State"):
        make_reply(request, Code.ACCESS_ACCEPT, [Attribute(AttributeType.PROXY_STATE, b"x")])


def test_reply_to_other_identifier_is_refused() -> None:
    request = _access_request(Attribute(1, b"alice"))
    reply = make_reply(request, Code.ACCESS_ACCEPT)
    other_request = request.replace(attributes=request.attributes)
    other = Packet(other_request.code, 43, other_request.authenticator, other_request.attributes)
    with pytest.raises(RadiusEncodeError):
        encode_reply(reply, other, SECRET)


@pytest.mark.parametrize("password", [b"", b"a", b"x" * 16, b"y" * 17, b"z" * 128])
def test_password_hiding_round_trips(password: bytes) -> None:
    hidden = hide_password(password, SECRET, NONCE)
    assert len(hidden) == max(16, -(-len(password) // 16) * 16)
    assert unhide_password(hidden, SECRET, NONCE) == password
    assert unhide_password(hidden, OTHER, NONCE) != password or password == b""


def test_password_limits() -> None:
    with pytest.raises(RadiusEncodeError):
        hide_password(b"p" * 129, SECRET, NONCE)
    for size in (0, 15, 17, 144):
        with pytest.raises(RadiusDecodeError):
            unhide_password(bytes(size), SECRET, NONCE)


def test_secret_never_shows() -> None:
    secret = SharedSecret("topsecret-value")
    assert "topsecret" not in repr(secret)
    assert "topsecret" not in str(secret)
    assert "topsecret" not in f"{[secret]}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(RadiusEncodeError):
        SharedSecret("")
    assert secret == SharedSecret(b"topsecret-value")
    assert secret != SharedSecret("other")


def test_auth_errors_do_not_leak_the_secret() -> None:
    secret_text = "leak-canary-5461"
    request = _access_request(Attribute(1, b"alice"))
    with pytest.raises(RadiusAuthError) as caught:
        verify_request(request, SharedSecret(secret_text))
    assert secret_text not in str(caught.value)
