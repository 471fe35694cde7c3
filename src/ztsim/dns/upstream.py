"""Forwarding to upstream resolvers over UDP (TCP when truncated), with failover.

Each upstream has one connected UDP socket and a table of outstanding IDs; an
answer is accepted only if its ID and question match what we asked (RFC 5452
§9.1). An upstream that times out is marked down for `down_for` seconds
(passive health check) and the next one is tried; when every upstream is down
they are all tried anyway, healthiest first. SERVFAIL and REFUSED also move
on to the next upstream; if nothing better comes, the last of them is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass, field
from typing import cast

from ztsim.dns.constants import FLAG_TC, HEADER_LEN, Rcode

_ID = struct.Struct("!H")
_LENGTH = struct.Struct("!H")  # RFC 1035 §4.2.2 / RFC 7766 §8: TCP length prefix
_MOVE_ON = (Rcode.SERVFAIL, Rcode.REFUSED)


def _response_question(wire: bytes) -> bytes | None:
    """A response's first question, lowercased; None if it has none or it is malformed.

    The first name of a message cannot be compressed (nothing precedes it to
    point to), so label lengths are followed until the root label.
    """
    if len(wire) < HEADER_LEN or wire[4:6] != b"\x00\x01":
        return None
    end = HEADER_LEN
    while end < len(wire) and 0 < wire[end] < 0x40:
        end += wire[end] + 1
    if end >= len(wire) or wire[end] != 0 or end + 5 > len(wire):
        return None
    return wire[HEADER_LEN : end + 5].lower()


class _Channel(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) < HEADER_LEN:
            return
        (ident,) = _ID.unpack_from(data)
        entry = self.pending.get(ident)
        if entry is None or entry[0].done():
            return
        if _response_question(data) != entry[1]:
            return  # RFC 5452 §9.1: the question must match too
        entry[0].set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


@dataclass(slots=True)
class Upstream:
    host: str
    port: int
    down_until: float = 0.0
    channel: _Channel | None = field(default=None, repr=False)


class UpstreamPool:
    def __init__(
        self,
        addresses: list[tuple[str, int]],
        *,
        timeout: float = 1.0,
        down_for: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.upstreams = [Upstream(host, port) for host, port in addresses]
        self.timeout = timeout
        self.down_for = down_for
        self._rng = rng or random.SystemRandom()

    async def close(self) -> None:
        for upstream in self.upstreams:
            if upstream.channel is not None and upstream.channel.transport is not None:
                upstream.channel.transport.close()
            upstream.channel = None

    def _order(self, now: float) -> list[Upstream]:
        return sorted(self.upstreams, key=lambda u: u.down_until > now)

    async def query(self, wire: bytes) -> bytes | None:
        """The first good answer to `wire` (its ID is replaced), else the last failure, else None."""
        question = _response_question(wire)
        if question is None:
            return None
        loop = asyncio.get_running_loop()
        fallback: bytes | None = None
        for upstream in self._order(loop.time()):
            try:
                answer = await self._ask(upstream, wire, question)
            except (TimeoutError, OSError):
                upstream.down_until = loop.time() + self.down_for
                continue
            if answer[3] & 0xF in _MOVE_ON:
                fallback = answer
                continue
            upstream.down_until = 0.0
            return answer
        return fallback

    async def _ask(self, upstream: Upstream, wire: bytes, question: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        channel = upstream.channel
        if channel is None or channel.transport is None:
            _, channel = await loop.create_datagram_endpoint(
                _Channel, remote_addr=(upstream.host, upstream.port)
            )
            upstream.channel = channel
        ident = self._rng.randrange(0x10000)
        while ident in channel.pending:
            ident = self._rng.randrange(0x10000)
        future: asyncio.Future[bytes] = loop.create_future()
        channel.pending[ident] = (future, question)
        query = _ID.pack(ident) + wire[2:]
        try:
            assert channel.transport is not None
            channel.transport.sendto(query)
            answer = await asyncio.wait_for(future, self.timeout)
        finally:
            channel.pending.pop(ident, None)
        if answer[2] & (FLAG_TC >> 8):
            return await self._ask_tcp(upstream, query, question)
        return answer

    async def _ask_tcp(self, upstream: Upstream, query: bytes, question: bytes) -> bytes:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            try:
                writer.write(_LENGTH.pack(len(query)) + query)
                await writer.drain()
                (length,) = _LENGTH.unpack(await reader.readexactly(2))
                answer = await reader.readexactly(length)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        if answer[:2] != query[:2] or _response_question(answer) != question:
            raise OSError("TCP answer does not match the query")
        return answer
