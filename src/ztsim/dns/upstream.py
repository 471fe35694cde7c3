"""Forwarding to upstream resolvers over UDP (TCP when truncated), with failover.

Each upstream has one connected UDP socket (or, for DoT upstreams, one pipelined TLS
connection, see `upstream_tls`) and a table of outstanding IDs; an
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
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from ztsim.dns.constants import FLAG_TC, HEADER_LEN, Rcode
from ztsim.dns.upstream_tls import TlsChannel, response_question

_ID = struct.Struct("!H")
_LENGTH = struct.Struct("!H")  # RFC 1035 §4.2.2 / RFC 7766 §8: TCP length prefix
_MOVE_ON = (Rcode.SERVFAIL, Rcode.REFUSED)


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
        if response_question(data) != entry[1]:
            return  # RFC 5452 §9.1: the question must match too
        entry[0].set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    """An upstream resolver: plain DNS (UDP, TCP on truncation), or DoT with `tls_name`."""

    host: str
    port: int
    tls_name: str | None = None  # the name its certificate must carry (RFC 8310 §8.1)


@dataclass(slots=True)
class Upstream:
    host: str
    port: int
    tls_name: str | None = None
    down_until: float = 0.0
    channel: _Channel | None = field(default=None, repr=False)
    tls_channel: TlsChannel | None = field(default=None, repr=False)


class UpstreamPool:
    def __init__(
        self,
        addresses: Sequence[tuple[str, int] | UpstreamSpec],
        *,
        timeout: float = 1.0,
        down_for: float = 5.0,
        rng: random.Random | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: how DoT upstreams' certificates are checked (default: the system's CAs)."""
        specs = [a if isinstance(a, UpstreamSpec) else UpstreamSpec(*a) for a in addresses]
        self.upstreams = [Upstream(s.host, s.port, s.tls_name) for s in specs]
        self._tls = tls
        self.timeout = timeout
        self.down_for = down_for
        self._rng = rng or random.SystemRandom()

    async def close(self) -> None:
        for upstream in self.upstreams:
            if upstream.channel is not None and upstream.channel.transport is not None:
                upstream.channel.transport.close()
            upstream.channel = None
            if upstream.tls_channel is not None:
                await upstream.tls_channel.close()
            upstream.tls_channel = None

    def _order(self, now: float) -> list[Upstream]:
        return sorted(self.upstreams, key=lambda u: u.down_until > now)

    async def query(self, wire: bytes) -> bytes | None:
        """The first good answer to `wire` (its ID is replaced), else the last failure, else None."""
        question = response_question(wire)
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
        if upstream.tls_name is not None:
            return await self._ask_tls(upstream, wire, question)
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

    async def _ask_tls(self, upstream: Upstream, wire: bytes, question: bytes) -> bytes:
        if upstream.tls_channel is None:
            context = self._tls or ssl.create_default_context()
            assert upstream.tls_name is not None
            upstream.tls_channel = TlsChannel(
                upstream.host, upstream.port, context, upstream.tls_name
            )
        channel = upstream.tls_channel
        ident = self._rng.randrange(0x10000)
        while ident in channel.pending:
            ident = self._rng.randrange(0x10000)
        return await channel.ask(_ID.pack(ident) + wire[2:], ident, question, self.timeout)

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
        if answer[:2] != query[:2] or response_question(answer) != question:
            raise OSError("TCP answer does not match the query")
        return answer
