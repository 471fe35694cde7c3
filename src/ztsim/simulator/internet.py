"""The demo's "internet": a small authoritative DNS server on loopback that the demo
starts and points the gateway's upstream at. Nothing leaves the machine.

`Zone.answer` is sans-I/O (query bytes in, response bytes out); `serve` is the
thin asyncio adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import cast

from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.message import Flag, Message, ResourceRecord, decode_message

_TTL = 300


def address_for(name: str) -> str:
    """A stable loopback address per name (127.64.0.0/10 holds no real service)."""
    digest = hashlib.sha256(name.encode()).digest()
    return str(ipaddress.IPv4Address((127 << 24) | (64 << 16) | int.from_bytes(digest[:2], "big")))


@dataclass(frozen=True)
class Zone:
    names: frozenset[str]

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = decode_message(wire)
        except DnsDecodeError:
            return None
        if query.flags & Flag.QR or len(query.questions) != 1:
            return None
        question = query.questions[0]
        name = question.name.lower().rstrip(".")
        flags = Flag.QR | Flag.AA | (query.flags & Flag.RD)
        if name not in self.names:
            return Message(
                query.id, flags, rcode=3, questions=query.questions, edns=query.edns
            ).to_wire()
        answers: tuple[ResourceRecord, ...] = ()
        if question.qtype == 1:
            answers = (ResourceRecord.address(question.name, address_for(name), _TTL),)
        return Message(
            query.id, flags, questions=query.questions, answers=answers, edns=query.edns
        ).to_wire()


class _Server(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        response = self.zone.answer(data)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


async def serve(
    zone: Zone, host: str = "127.0.0.1", port: int = 0
) -> tuple[asyncio.DatagramTransport, int]:
    """Start answering; returns the transport (close it to stop) and the bound port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Server(zone), local_addr=(host, port)
    )
    bound = transport.get_extra_info("sockname")[1]
    return transport, int(bound)
