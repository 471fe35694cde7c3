"""Cross-check with an independent implementation: Debian's FreeRADIUS radclient.

Each test opens a UDP socket on 127.0.0.1, lets radclient send it a request built
from FreeRADIUS dictionary names, decodes and verifies the datagram with our
codec, answers with a reply our codec signs, and reads radclient's verdict.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Network

import pytest

from ztsim.radius import (
    Attribute,
    AttributeType,
    Code,
    ErrorCause,
    LocationType,
    MsTimeZone,
    Packet,
    Plmn,
    RadiusAuthError,
    RatType,
    SharedSecret,
    TrackingAreaId,
    decode_attributes,
    encode_reply,
    error_cause,
    framed_ip_address,
    ipv4_dns_servers,
    make_reply,
    reply_messages,
    session_timeout,
    unhide_password,
    verify_request,
)
from ztsim.radius.auth import response_authenticator

RADCLIENT = shutil.which("radclient")
pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)
SECRET_TEXT = "radclient-test-secret"
SECRET = SharedSecret(SECRET_TEXT)


@dataclass
class Exchange:
    request: Packet
    returncode: int
    output: str


@pytest.fixture
def server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def run_radclient(
    sock: socket.socket,
    kind: str,
    attributes: str,
    answer: Callable[[Packet], bytes | None],
    *,
    secret: str = SECRET_TEXT,
) -> Exchange:
    """Send one radclient request to `sock`; reply with `answer(request)` if not None."""
    assert RADCLIENT is not None
    port = sock.getsockname()[1]
    with subprocess.Popen(
        [RADCLIENT, "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", kind, secret],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(attributes)
            process.stdin.close()
            datagram, peer = sock.recvfrom(4096)
            request = Packet.decode(datagram)
            reply = answer(request)
            if reply is not None:
                sock.sendto(reply, peer)
            # radclient gives up by itself after -t 2 seconds and -r 1 try.
            output = process.stdout.read()
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
    return Exchange(request, process.returncode, output)


ACCESS_ATTRIBUTES = """\
User-Name = "001010000000001"
User-Password = "sim-pass"
3GPP-IMSI = "001010000000001"
3GPP-IMEISV = "3534900698733201"
Called-Station-Id = "corp.apn"
Calling-Station-Id = "491701234567"
NAS-IP-Address = 192.0.2.10
NAS-Identifier = "pgw-1"
Service-Type = Framed-User
Framed-Protocol = GPRS-PDP-Context
NAS-Port-Type = Virtual
3GPP-RAT-Type = EUTRAN
3GPP-Charging-ID = 305419896
3GPP-PDP-Type = 0
3GPP-SGSN-Address = 192.0.2.20
3GPP-GGSN-Address = 192.0.2.21
3GPP-IMSI-MCC-MNC = "00101"
3GPP-GGSN-MCC-MNC = "00101"
3GPP-NSAPI = "5"
3GPP-Selection-Mode = "0"
3GPP-Charging-Characteristics = "0800"
3GPP-SGSN-MCC-MNC = "00101"
3GPP-User-Location-Info = 0x8200f110000100f11000000101
3GPP-MS-Time-Zone = 0x4001
3GPP-Negotiated-DSCP = 46
3GPP-Allocate-IP-Type = Allocate-IPv4-Address
Message-Authenticator = 0x00
Proxy-State = 0x0102
Proxy-State = 0x03
"""


def _accept(request: Packet) -> bytes:
    verify_request(request, SECRET, require_message_authenticator=True)
    reply = make_reply(
        request,
        Code.ACCESS_ACCEPT,
        [
            framed_ip_address("10.45.0.7"),
            session_timeout(86400),
            *ipv4_dns_servers("192.0.2.53", "192.0.2.54"),
            *reply_messages("welcome"),
        ],
    )
    return encode_reply(reply, request, SECRET)


def test_access_request_decodes_verifies_and_accept_is_accepted(server: socket.socket) -> None:
    exchange = run_radclient(server, "auth", ACCESS_ATTRIBUTES, _accept)
    request = exchange.request
    assert request.code is Code.ACCESS_REQUEST
    typed = decode_attributes(request)
    expected = {
        "User-Name": "001010000000001",
        "3GPP-IMSI": "001010000000001",
        "3GPP-IMEISV": "3534900698733201",
        "Called-Station-Id": "corp.apn",
        "Calling-Station-Id": "491701234567",
        "NAS-IP-Address": IPv4Address("192.0.2.10"),
        "NAS-Identifier": "pgw-1",
        "Service-Type": 2,
        "Framed-Protocol": 7,
        "NAS-Port-Type": 5,
        "3GPP-RAT-Type": RatType.EUTRAN,
        "3GPP-Charging-Id": 305419896,
        "3GPP-PDP-Type": 0,
        "3GPP-SGSN-Address": IPv4Address("192.0.2.20"),
        "3GPP-GGSN-Address": IPv4Address("192.0.2.21"),
        "3GPP-IMSI-MCC-MNC": "00101",
        "3GPP-GGSN-MCC-MNC": "00101",
        "3GPP-NSAPI": "5",
        "3GPP-Selection-Mode": "0",
        "3GPP-Charging-Characteristics": "0800",
        "3GPP-SGSN-MCC-MNC": "00101",
        "3GPP-MS-TimeZone": MsTimeZone(4, 1),
        "3GPP-Negotiated-DSCP": 46,
        "3GPP-Allocate-IP-Type": 1,
    }
    for name, value in expected.items():
        assert typed.get(name) == value, name
    uli = typed.get("3GPP-User-Location-Info")
    assert uli is not None
    assert getattr(uli, "location_type", None) is LocationType.TAI_AND_ECGI
    assert getattr(uli, "tai", None) == TrackingAreaId(Plmn("001", "01"), 1)
    assert getattr(getattr(uli, "ecgi", None), "eci", None) == 0x101
    hidden = request.get(AttributeType.USER_PASSWORD)
    assert hidden is not None
    assert unhide_password(hidden, SECRET, request.authenticator) == b"sim-pass"
    assert typed.get_all("Proxy-State") == (b"\x01\x02", b"\x03")

    assert exchange.returncode == 0, exchange.output
    assert "Received Access-Accept" in exchange.output
    # radclient's own decoding of what we encoded.
    for line in (
        "Framed-IP-Address = 10.45.0.7",
        "Session-Timeout = 86400",
        "MS-Primary-DNS-Server = 192.0.2.53",
        "MS-Secondary-DNS-Server = 192.0.2.54",
        'Reply-Message = "welcome"',
        "Proxy-State = 0x0102",
        "Proxy-State = 0x03",
    ):
        assert line in exchange.output


def test_wrong_secret_request_is_refused(server: socket.socket) -> None:
    refused: list[RadiusAuthError] = []

    def answer(request: Packet) -> None:
        with pytest.raises(RadiusAuthError) as caught:
            verify_request(request, SECRET)
        refused.append(caught.value)

    exchange = run_radclient(
        server, "auth", 'User-Name = "x"\nMessage-Authenticator = 0x00\n', answer, secret="wrong"
    )
    assert refused
    assert exchange.returncode != 0


def test_radclient_rejects_a_reply_with_a_bad_response_authenticator(
    server: socket.socket,
) -> None:
    def answer(request: Packet) -> bytes:
        wire = bytearray(_accept(request))
        wire[4] ^= 0x01
        return bytes(wire)

    exchange = run_radclient(
        server, "auth", 'User-Name = "x"\nMessage-Authenticator = 0x00\n', answer
    )
    assert exchange.returncode != 0
    assert "Received Access-Accept Id" not in exchange.output
    assert "invalid Response Authenticator" in exchange.output


def test_radclient_rejects_a_reply_with_a_bad_message_authenticator(
    server: socket.socket,
) -> None:
    def answer(request: Packet) -> bytes:
        good = Packet.decode(_accept(request))
        bad_ma = Attribute(AttributeType.MESSAGE_AUTHENTICATOR, bytes(16))
        forged = good.replace(attributes=[bad_ma, *good.attributes[1:]])
        # A correct Response Authenticator, so only the Message-Authenticator is wrong.
        forged = forged.replace(
            authenticator=response_authenticator(forged, request.authenticator, SECRET)
        )
        return forged.encode()

    exchange = run_radclient(
        server, "auth", 'User-Name = "x"\nMessage-Authenticator = 0x00\n', answer
    )
    assert exchange.returncode != 0
    assert "Received Access-Accept Id" not in exchange.output
    assert "invalid Message-Authenticator" in exchange.output


ACCOUNTING_ATTRIBUTES = """\
Acct-Status-Type = Stop
User-Name = "001010000000001"
Acct-Session-Id = "4f1a2b3c00000001"
Framed-IP-Address = 10.45.0.7
Framed-IPv6-Prefix = 2001:db8:1:2::/64
Event-Timestamp = 1700000000
Acct-Input-Octets = 123456
Acct-Output-Octets = 654321
Acct-Input-Packets = 100
Acct-Output-Packets = 200
Acct-Session-Time = 3600
Acct-Delay-Time = 2
Acct-Terminate-Cause = User-Request
3GPP-IMSI = "001010000000001"
3GPP-Charging-ID = 7
3GPP-RAT-Type = EUTRAN
Message-Authenticator = 0x00
"""


def test_accounting_request_verifies_and_response_is_accepted(server: socket.socket) -> None:
    def answer(request: Packet) -> bytes:
        verify_request(request, SECRET, require_message_authenticator=True)
        return encode_reply(make_reply(request, Code.ACCOUNTING_RESPONSE), request, SECRET)

    exchange = run_radclient(server, "acct", ACCOUNTING_ATTRIBUTES, answer)
    typed = decode_attributes(exchange.request)
    assert exchange.request.code is Code.ACCOUNTING_REQUEST
    assert typed.get("Acct-Status-Type") == 2
    assert typed.get("Acct-Session-Id") == "4f1a2b3c00000001"
    assert typed.get("Framed-IPv6-Prefix") == IPv6Network("2001:db8:1:2::/64")
    assert typed.get("Event-Timestamp") == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert typed.get("Acct-Input-Octets") == 123456
    assert typed.get("Acct-Output-Octets") == 654321
    assert typed.get("Acct-Input-Packets") == 100
    assert typed.get("Acct-Output-Packets") == 200
    assert typed.get("Acct-Session-Time") == 3600
    assert typed.get("Acct-Delay-Time") == 2
    assert typed.get("Acct-Terminate-Cause") == 1
    assert exchange.returncode == 0, exchange.output
    assert "Received Accounting-Response" in exchange.output


def test_accounting_request_without_message_authenticator_verifies(server: socket.socket) -> None:
    def answer(request: Packet) -> bytes:
        verify_request(request, SECRET)
        tampered = request.replace(attributes=request.attributes[:-1])
        with pytest.raises(RadiusAuthError):
            verify_request(tampered, SECRET)
        return encode_reply(make_reply(request, Code.ACCOUNTING_RESPONSE), request, SECRET)

    exchange = run_radclient(
        server,
        "acct",
        'Acct-Status-Type = Start\nAcct-Session-Id = "s1"\nUser-Name = "u"\n',
        answer,
    )
    assert exchange.returncode == 0, exchange.output


def test_disconnect_request_verifies_and_ack_is_accepted(server: socket.socket) -> None:
    def answer(request: Packet) -> bytes:
        verify_request(request, SECRET, require_message_authenticator=True)
        return encode_reply(make_reply(request, Code.DISCONNECT_ACK), request, SECRET)

    exchange = run_radclient(
        server,
        "disconnect",
        'User-Name = "001010000000001"\nAcct-Session-Id = "s1"\nMessage-Authenticator = 0x00\n',
        answer,
    )
    assert exchange.request.code is Code.DISCONNECT_REQUEST
    assert exchange.returncode == 0, exchange.output
    assert "Received Disconnect-ACK" in exchange.output


def test_coa_request_verifies_and_nak_with_error_cause_is_read(server: socket.socket) -> None:
    def answer(request: Packet) -> bytes:
        verify_request(request, SECRET)
        nak = make_reply(request, Code.COA_NAK, [error_cause(ErrorCause.SESSION_CONTEXT_NOT_FOUND)])
        return encode_reply(nak, request, SECRET, add_message_authenticator=True)

    exchange = run_radclient(
        server, "coa", 'Acct-Session-Id = "s1"\nSession-Timeout = 60\n', answer
    )
    assert exchange.request.code is Code.COA_REQUEST
    assert decode_attributes(exchange.request).get("Session-Timeout") == 60
    assert "Received CoA-NAK" in exchange.output
    assert "Error-Cause = Session-Context-Not-Found" in exchange.output
