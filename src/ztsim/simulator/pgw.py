"""A packet gateway emulator: the RADIUS client side of TS 29.061 §16 (Access-Request
with 3GPP attributes, Accounting Start/Interim/Stop) and a Disconnect/CoA listener
(RFC 5176) that tears its session down and answers ACK."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import cast

from ztsim.radius import (
    AcctStatusType,
    AcctTerminateCause,
    Attribute,
    Code,
    Packet,
    RadiusAuthError,
    RadiusDecodeError,
    RatType,
    SharedSecret,
    decode_attributes,
    encode_reply,
    make_attribute,
    make_reply,
    sign_request,
    verify_reply,
    verify_request,
)
from ztsim.radius.auth import hide_password
from ztsim.simulator.scenario import Device


@dataclass(frozen=True, slots=True)
class AttachResult:
    accepted: bool
    address: IPv4Address | None
    reply_message: str
    latency_s: float
    timed_out: bool = False


@dataclass
class Session:
    device: Device
    imeisv: str
    address: IPv4Address
    session_id: str
    started: float


class _Client(asyncio.DatagramProtocol):
    """One UDP socket; replies are matched to requests by identifier, so at most 256
    requests are in flight on it (RFC 2865 §3: the Identifier is one octet)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.free_ids: asyncio.Queue[int] = asyncio.Queue()
        for ident in range(256):
            self.free_ids.put_nowait(ident)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) >= 2:
            future = self.waiting.pop(data[1], None)
            if future is not None and not future.done():
                future.set_result(data)


@dataclass
class PacketGateway:
    auth_addr: tuple[str, int]
    acct_addr: tuple[str, int]
    secret: SharedSecret
    nas_ip: str = "127.0.0.1"
    apn: str = "internet"
    timeout_s: float = 2.0
    retries: int = 2
    random: Callable[[int], bytes] = os.urandom
    # The number in this gateway's first Acct-Session-Id (`<IMSI>-<n>`, n counting up from
    # here). The id must be unique per NAS (RFC 2866 §5.5): two emulated gateways sending
    # from one NAS address start far apart so that their sessions never share one.
    first_session_id: int = 1
    sessions: dict[str, Session] = field(default_factory=dict)  # by IMSI
    disconnects: list[tuple[str, float]] = field(default_factory=list)  # (IMSI, monotonic time)
    _auth: _Client | None = None
    _acct: _Client | None = None
    _charging: itertools.count[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._charging = itertools.count(self.first_session_id)

    async def start(self) -> None:
        # Sent from nas_ip: the AAA server knows gateways by their source address.
        loop = asyncio.get_running_loop()
        local = (self.nas_ip, 0)
        _, self._auth = await loop.create_datagram_endpoint(
            _Client, local_addr=local, remote_addr=self.auth_addr
        )
        _, self._acct = await loop.create_datagram_endpoint(
            _Client, local_addr=local, remote_addr=self.acct_addr
        )

    def close(self) -> None:
        for client in (self._auth, self._acct):
            if client is not None and client.transport is not None:
                client.transport.close()

    async def _exchange(
        self, client: _Client | None, build: Callable[[int], Packet]
    ) -> tuple[Packet, Packet | None]:
        """Send the request `build(identifier)` makes, with retries; (request, verified reply)."""
        assert client is not None
        assert client.transport is not None
        ident = await client.free_ids.get()
        try:
            packet = build(ident)
            wire = packet.encode()
            for _ in range(self.retries + 1):
                future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                client.waiting[ident] = future
                client.transport.sendto(wire)
                try:
                    data = await asyncio.wait_for(future, self.timeout_s)
                except TimeoutError:
                    continue
                try:
                    reply = Packet.decode(data)
                    verify_reply(reply, packet, self.secret)
                except (RadiusDecodeError, RadiusAuthError):
                    return packet, None
                return packet, reply
            return packet, None
        finally:
            client.waiting.pop(ident, None)
            client.free_ids.put_nowait(ident)

    def _identity_attributes(self, device: Device, imeisv: str) -> list[Attribute]:
        attrs = [
            make_attribute("User-Name", device.imsi),
            make_attribute("Called-Station-Id", self.apn),
            make_attribute("NAS-IP-Address", self.nas_ip),
            make_attribute("3GPP-IMSI", device.imsi),
            make_attribute("3GPP-IMEISV", imeisv),
            make_attribute("3GPP-RAT-Type", RatType.EUTRAN),
            make_attribute("3GPP-IMSI-MCC-MNC", device.imsi[:5]),
            make_attribute("3GPP-SGSN-MCC-MNC", device.imsi[:5]),
        ]
        if device.msisdn:
            attrs.append(make_attribute("Calling-Station-Id", device.msisdn))
        return attrs

    async def attach(self, device: Device, imeisv: str | None = None) -> AttachResult:
        """Access-Request, then Accounting-Start on Accept, as a PGW does on bearer setup."""
        imeisv = imeisv or device.imeisv
        authenticator = self.random(16)
        password = hide_password(b"ztsim-sim", self.secret, authenticator)
        attributes = (*self._identity_attributes(device, imeisv), Attribute(2, password))

        def request(ident: int) -> Packet:
            packet = Packet(Code.ACCESS_REQUEST, ident, authenticator, attributes)
            return sign_request(packet, self.secret, add_message_authenticator=True)

        started = time.monotonic()
        _, reply = await self._exchange(self._auth, request)
        latency = time.monotonic() - started
        if reply is None:
            return AttachResult(False, None, "no answer", latency, timed_out=True)
        decoded = decode_attributes(reply)
        message = "".join(str(v) for v in decoded.get_all("Reply-Message"))
        address = decoded.get("Framed-IP-Address")
        if reply.code != Code.ACCESS_ACCEPT or not isinstance(address, IPv4Address):
            return AttachResult(False, None, message, latency)
        session = Session(device, imeisv, address, f"{device.imsi}-{next(self._charging)}", started)
        self.sessions[device.imsi] = session
        await self._accounting(session, AcctStatusType.START)
        return AttachResult(True, address, message, latency)

    async def detach(self, device: Device) -> bool:
        session = self.sessions.pop(device.imsi, None)
        if session is None:
            return False
        return await self._accounting(session, AcctStatusType.STOP)

    async def _accounting(self, session: Session, status: AcctStatusType) -> bool:
        attrs = [
            make_attribute("Acct-Status-Type", status),
            make_attribute("Acct-Session-Id", session.session_id),
            make_attribute("Framed-IP-Address", session.address),
            *self._identity_attributes(session.device, session.imeisv),
        ]
        if status is AcctStatusType.STOP:
            attrs.append(make_attribute("Acct-Terminate-Cause", AcctTerminateCause.USER_REQUEST))
            attrs.append(make_attribute("3GPP-Session-Stop-Indicator", 1))

        def request(ident: int) -> Packet:
            packet = Packet(Code.ACCOUNTING_REQUEST, ident, bytes(16), tuple(attrs))
            return sign_request(packet, self.secret)

        _, reply = await self._exchange(self._acct, request)
        return reply is not None and reply.code == Code.ACCOUNTING_RESPONSE

    # -- RFC 5176: the gateway side of Disconnect-Request --------------------------------

    def handle_disconnect(self, data: bytes) -> bytes | None:
        """Sans-I/O: a Disconnect-Request in, the ACK/NAK out (None: drop it)."""
        try:
            request = Packet.decode(data)
            verify_request(request, self.secret)
        except (RadiusDecodeError, RadiusAuthError):
            return None
        if request.code != Code.DISCONNECT_REQUEST:
            return None
        decoded = decode_attributes(request)
        imsi = decoded.get("User-Name") or decoded.get("3GPP-IMSI")
        address = decoded.get("Framed-IP-Address")
        match = next(
            (s for s in self.sessions.values() if s.device.imsi == imsi or s.address == address),
            None,
        )
        if match is None:
            reply = make_reply(request, Code.DISCONNECT_NAK)
        else:
            del self.sessions[match.device.imsi]
            self.disconnects.append((match.device.imsi, time.monotonic()))
            reply = make_reply(request, Code.DISCONNECT_ACK)
        return encode_reply(reply, request, self.secret, add_message_authenticator=True)


class CoaListener(asyncio.DatagramProtocol):
    def __init__(self, gateway: PacketGateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        answer = self.gateway.handle_disconnect(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)
