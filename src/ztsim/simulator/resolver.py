"""A device's stub resolver: one UDP query at a time from the device's own address
(the Framed-IP the gateway gave it), decoded with ztsim's codec."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.message import Flag, Message, Question, decode_message


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int  # -1: no answer in time
    addresses: tuple[str, ...]
    ede: tuple[tuple[int, str], ...]  # (INFO-CODE, EXTRA-TEXT) of RFC 8914

    @property
    def blocked(self) -> bool:
        # RFC 8914 §4.16/§4.18: 15 Blocked, 17 Filtered.
        return any(code in (15, 17) for code, _ in self.ede)


def _addresses(message: Message) -> tuple[str, ...]:
    found = []
    for rr in message.answers:
        if rr.rtype == 1 and len(rr.rdata) == 4:
            found.append(str(ipaddress.IPv4Address(rr.rdata)))
        elif rr.rtype == 28 and len(rr.rdata) == 16:
            found.append(str(ipaddress.IPv6Address(rr.rdata)))
    return tuple(found)


class _Once(asyncio.DatagramProtocol):
    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if (
            len(data) >= 2
            and int.from_bytes(data[:2], "big") == self.query_id
            and not self.done.done()
        ):
            self.done.set_result(data)


async def query(
    server: tuple[str, int],
    source: str,
    name: str,
    qtype: int = 1,
    *,
    timeout_s: float = 2.0,
    random: Callable[[int], bytes] = os.urandom,
) -> Answer:
    query_id = int.from_bytes(random(2), "big")
    wire = Message(
        query_id,
        Flag.RD,
        questions=(Question(name, qtype),),
        edns=Edns(payload_size=1232),
    ).to_wire()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    transport, protocol = await loop.create_datagram_endpoint(lambda: _Once(query_id), sock=sock)
    try:
        transport.sendto(wire, server)
        try:
            data = await asyncio.wait_for(protocol.done, timeout_s)
        except TimeoutError:
            return Answer(-1, (), ())
    finally:
        transport.close()
    try:
        message = decode_message(data)
    except DnsDecodeError:
        return Answer(-1, (), ())
    ede = message.edns.extended_errors() if message.edns is not None else ()
    return Answer(
        message.rcode, _addresses(message), tuple((e.info_code, e.extra_text) for e in ede)
    )
