"""Forwarding to upstream resolvers over UDP (TCP when truncated), with failover.

Each upstream has one connected UDP socket (or, for DoT upstreams, one pipelined TLS
connection, see `upstream_tls`; for DoH upstreams, one HTTP client, see
`upstream_https`) and a table of outstanding IDs; an
answer is accepted only if its ID and question match what we asked (RFC 5452
§9.1). An upstream that times out or fails is marked down for `down_for` seconds
(passive health check) and the next one is tried; when every upstream is down
they are all tried anyway, healthiest first. While an upstream is down, a
background task probes it every `probe_interval` seconds and marks it up as soon
as it answers (active health check, see `upstream_health`). SERVFAIL and REFUSED
also move on to the next upstream; if nothing better comes, the last of them is
returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import struct
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import cast

from ztsim.dns.serve.upstream_health import PROBE, PROBE_QUESTION, ProbeSchedule
from ztsim.dns.serve.upstream_https import HttpsChannel
from ztsim.dns.serve.upstream_tls import TlsChannel, response_question
from ztsim.dns.wire.constants import FLAG_TC, HEADER_LEN, Rcode

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
    """An upstream resolver: plain DNS (UDP, TCP on truncation), DoT with `tls_name`, or
    DoH with `https_path` (https://host:port/path; the certificate must name `host`)."""

    host: str
    port: int
    tls_name: str | None = None  # the name its certificate must carry (RFC 8310 §8.1)
    https_path: str | None = None


@dataclass(slots=True)
class Upstream:
    host: str
    port: int
    tls_name: str | None = None
    down_until: float = 0.0
    channel: _Channel | None = field(default=None, repr=False)
    tls_channel: TlsChannel | None = field(default=None, repr=False)
    https_channel: HttpsChannel | None = field(default=None, repr=False)


TlsContext = ssl.SSLContext | Callable[[], ssl.SSLContext]


class UpstreamPool:
    def __init__(
        self,
        addresses: Sequence[tuple[str, int] | UpstreamSpec],
        *,
        timeout: float = 1.0,
        down_for: float = 5.0,
        rng: random.Random | None = None,
        tls: TlsContext | None = None,
        probe_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`tls`: how DoT and DoH upstreams' certificates are checked (default: the
        system's CAs). A function making a context gives DoT and DoH a context each: the
        HTTP client sets its ALPN protocols on the context it is given, which DoT
        servers that check ALPN would refuse.

        `probe_interval`: seconds between probes of an upstream marked down."""
        specs = [a if isinstance(a, UpstreamSpec) else UpstreamSpec(*a) for a in addresses]
        self.upstreams = [Upstream(s.host, s.port, s.tls_name) for s in specs]
        self._tls = tls
        self._contexts: dict[str, ssl.SSLContext] = {}
        for spec, upstream in zip(specs, self.upstreams, strict=True):
            if spec.https_path is not None:
                upstream.https_channel = HttpsChannel(
                    spec.host, spec.port, spec.https_path, self._context("https")
                )
            elif spec.tls_name is not None:
                self._context("tls")  # made now: a bad CA file fails here, not per query
        self.timeout = timeout
        self.down_for = down_for
        self._rng = rng or random.SystemRandom()
        self._clock = clock
        self._schedule = ProbeSchedule(len(self.upstreams), probe_interval)
        self._monitor: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._closed = False

    def _context(self, use: str) -> ssl.SSLContext:
        """The SSL context of DoT (`use` "tls") or of DoH ("https") upstreams."""
        if isinstance(self._tls, ssl.SSLContext):
            return self._tls
        context = self._contexts.get(use)
        if context is None:
            context = self._tls() if self._tls is not None else ssl.create_default_context()
            self._contexts[use] = context
        return context

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._probes, *([self._monitor] if self._monitor is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._monitor = None
        for upstream in self.upstreams:
            if upstream.channel is not None and upstream.channel.transport is not None:
                upstream.channel.transport.close()
            upstream.channel = None
            if upstream.tls_channel is not None:
                await upstream.tls_channel.close()
            upstream.tls_channel = None
            if upstream.https_channel is not None:
                await upstream.https_channel.close()

    def _order(self, now: float) -> list[int]:
        """Indices of the upstreams, those not marked down first."""
        return sorted(range(len(self.upstreams)), key=lambda i: self.upstreams[i].down_until > now)

    async def query(self, wire: bytes) -> bytes | None:
        """The first good answer to `wire` (its ID is replaced), else the last failure, else None."""
        question = response_question(wire)
        if question is None:
            return None
        fallback: bytes | None = None
        for index in self._order(self._clock()):
            upstream = self.upstreams[index]
            try:
                answer = await self._ask(upstream, wire, question)
            except (TimeoutError, OSError):
                self._mark_down(index)
                continue
            if answer[3] & 0xF in _MOVE_ON:
                fallback = answer
                continue
            upstream.down_until = 0.0
            return answer
        return fallback

    def _mark_down(self, index: int) -> None:
        """Down for `down_for` seconds, with the prober started if it is not running."""
        now = self._clock()
        self.upstreams[index].down_until = now + self.down_for
        self._schedule.marked_down(index, now)
        if not self._closed and (self._monitor is None or self._monitor.done()):
            self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Probes the upstreams marked down, each when due; ends when none is down."""
        while True:
            now = self._clock()
            down_until = [upstream.down_until for upstream in self.upstreams]
            for index in self._schedule.due(down_until, now):
                self._start(self._probe(index))
            delay = self._schedule.wait(down_until, now)
            if delay is None:
                return
            await asyncio.sleep(delay)

    def _start(self, probe: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(probe)
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, index: int) -> None:
        upstream = self.upstreams[index]
        try:
            await self._ask(upstream, PROBE, PROBE_QUESTION)
            answered = True
        except (TimeoutError, OSError):
            answered = False
        finally:
            self._schedule.finished(index)
        if answered:
            upstream.down_until = 0.0
        elif upstream.down_until != 0.0:
            # Still down, so clients' queries keep going elsewhere (unless one of them
            # got an answer from it while the probe was out: that is newer news).
            self._mark_down(index)

    async def _ask(self, upstream: Upstream, wire: bytes, question: bytes) -> bytes:
        if upstream.https_channel is not None:
            return await upstream.https_channel.ask(wire, question, self.timeout)
        if upstream.tls_name is not None:
            return await self._ask_tls(upstream, wire, question)
        loop = asyncio.get_running_loop()
        channel = upstream.channel
        if channel is None or channel.transport is None:
            transport, opened = await loop.create_datagram_endpoint(
                _Channel, remote_addr=(upstream.host, upstream.port)
            )
            channel = upstream.channel
            if channel is None or channel.transport is None:
                upstream.channel = channel = opened
            else:
                transport.close()  # a concurrent first query opened one meanwhile: share it
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
            assert upstream.tls_name is not None
            upstream.tls_channel = TlsChannel(
                upstream.host, upstream.port, self._context("tls"), upstream.tls_name
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
