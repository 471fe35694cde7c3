"""What the propagation tests watch a platform with, from the outside: a packet gateway
(the simulator's, on an event loop of its own) with a Disconnect-Request listener that
records every request it gets and answers only if told to, and a DNS client that asks
from a UE address.

Times are wall-clock (`time.time()`), so they compare with the timestamps another
process wrote to the database on the same host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from ztsim.dns.wire.constants import Rcode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.radius import (
    Code,
    Packet,
    RadiusAuthError,
    RadiusDecodeError,
    SharedSecret,
    decode_attributes,
    verify_request,
)
from ztsim.simulator.pgw import AttachResult, PacketGateway
from ztsim.simulator.scenario import Device

T = TypeVar("T")
POLL_SECONDS = 0.005  # between two probes while watching for a change to land


class LoopThread:
    """An asyncio loop on a daemon thread, for the simulator's asyncio gateway in a
    synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass(frozen=True, slots=True)
class Disconnect:
    at: float  # wall clock, on arrival
    address: str | None  # Framed-IP-Address
    user_name: str | None


class _CoaEndpoint(asyncio.DatagramProtocol):
    """RFC 5176 §3: the gateway's Dynamic Authorization Server. Records each verified
    Disconnect-Request; answers it (the simulator's ACK/NAK) only when `answer`."""

    def __init__(self, gateway: PacketGateway, answer: bool, seen: list[Disconnect]) -> None:
        self.gateway = gateway
        self.answer = answer
        self.seen = seen
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        at = time.time()
        try:
            request = Packet.decode(data)
            verify_request(request, self.gateway.secret)
        except (RadiusDecodeError, RadiusAuthError):
            return
        if request.code != Code.DISCONNECT_REQUEST:
            return
        decoded = decode_attributes(request)
        address = decoded.get("Framed-IP-Address")
        user = decoded.get("User-Name")
        self.seen.append(
            Disconnect(
                at, None if address is None else str(address), None if user is None else str(user)
            )
        )
        if self.answer and self.transport is not None:
            reply = self.gateway.handle_disconnect(data)
            if reply is not None:
                self.transport.sendto(reply, addr)


@dataclass
class Gateway:
    """A packet gateway at `nas_ip` (the address the platform knows it by), with its
    Disconnect-Request listener on (nas_ip, coa_port)."""

    loop: LoopThread
    nas_ip: str
    auth: tuple[str, int]
    acct: tuple[str, int]
    secret: str
    coa_port: int
    apn: str
    answer_coa: bool
    disconnects: list[Disconnect] = field(default_factory=list)
    _pgw: PacketGateway | None = None
    _coa: asyncio.DatagramTransport | None = None

    def start(self) -> None:
        pgw = PacketGateway(
            self.auth,
            self.acct,
            SharedSecret(self.secret.encode()),
            nas_ip=self.nas_ip,
            apn=self.apn,
        )

        async def start() -> asyncio.DatagramTransport:
            await pgw.start()
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _CoaEndpoint(pgw, self.answer_coa, self.disconnects),
                local_addr=(self.nas_ip, self.coa_port),
            )
            return transport

        self._coa = self.loop.run(start())
        self._pgw = pgw

    def attach(self, device: Device) -> AttachResult:
        """Access-Request, then (when accepted) Accounting-Start: returns once the
        Accounting-Response has arrived."""
        assert self._pgw is not None
        return self.loop.run(self._pgw.attach(device))

    def disconnect_for(self, address: str, since: float) -> Disconnect | None:
        """The first Disconnect-Request for `address` that arrived at or after `since`."""
        for seen in list(self.disconnects):
            if seen.address == address and seen.at >= since:
                return seen
        return None

    def close(self) -> None:
        pgw, coa = self._pgw, self._coa
        self._pgw = self._coa = None

        async def close() -> None:
            if pgw is not None:
                pgw.close()
            if coa is not None:
                coa.close()
            await asyncio.sleep(0)  # the transports' sockets close on the next turn

        self.loop.run(close())


# -- DNS from a UE address ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsReply:
    at: float  # wall clock, on arrival
    rcode: int
    ede: tuple[int, ...]  # RFC 8914 INFO-CODEs
    addresses: tuple[str, ...]  # the A records

    @property
    def refused(self) -> bool:
        """REFUSED with an Extended DNS Error: how ztsim turns a revoked source away."""
        return self.rcode == Rcode.REFUSED and bool(self.ede)

    def answered(self, address: str) -> bool:
        return self.rcode == Rcode.NOERROR and address in self.addresses


def ask(
    source: str, server: tuple[str, int], name: str, *, timeout: float = 0.5
) -> DnsReply | None:
    """One A query for `name` sent from `source` (a loopback UE address); None if no
    answer came within `timeout`."""
    ident = int.from_bytes(os.urandom(2), "big")
    query = Message(
        ident, Flag.RD, questions=(Question(name, RRType.A),), edns=Edns(payload_size=1232)
    ).to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(query, server)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                return None
            at = time.time()
            try:
                reply = decode_message(data)
            except DnsDecodeError:
                reply = None
            if reply is not None and reply.id == ident:
                ede = tuple(e.info_code for e in reply.edns.extended_errors()) if reply.edns else ()
                addresses = tuple(
                    str(ipaddress.IPv4Address(rr.rdata))
                    for rr in reply.answers
                    if rr.rtype == RRType.A and len(rr.rdata) == 4
                )
                return DnsReply(at, reply.rcode, ede, addresses)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)


def first_time(probe: Callable[[], float | None], until: float) -> float | None:
    """Call `probe` every few milliseconds until it returns a time or the wall clock
    passes `until`; that time, or None."""
    while True:
        at = probe()
        if at is not None:
            return at
        if time.time() >= until:
            return None
        time.sleep(POLL_SECONDS)
