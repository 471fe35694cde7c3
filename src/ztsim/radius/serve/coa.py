"""Dynamic Authorization client (RFC 5176): Disconnect-Request and CoA-Request to a
gateway, with retransmission and a verdict per request.

One UDP socket serves every outstanding request; replies are matched by peer and
Identifier (RFC 5176 §2.3) and verified against the request's authenticator.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from ztsim.radius.attrtypes import AttributeType
from ztsim.radius.auth import sign_request, verify_reply
from ztsim.radius.codes import REPLIES, Code
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError
from ztsim.radius.packet import AUTHENTICATOR_LENGTH, Attribute, Packet
from ztsim.radius.secret import SharedSecret

log = logging.getLogger("ztsim.radius.serve.coa")

# RFC 5176 §3: the Dynamic Authorization Server listens on UDP 3799 by default.
DEFAULT_COA_PORT = 3799
# RFC 5080 §2.2.1 style: a few tries, each waiting twice as long as the one before (a
# gateway busy or briefly unreachable is not flooded); with these, a gateway that does
# not answer within 1 + 2 + 4 = 7 s is recorded as unreachable.
DEFAULT_TRIES = 3
DEFAULT_TIMEOUT = 1.0


class Outcome(StrEnum):
    ACK = "ack"
    NAK = "nak"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    attempts: int
    error_cause: int | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: CoaClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.client._received(data, (str(addr[0]), int(addr[1])))


def backoff(timeout: float, tries: int) -> list[float]:
    """How long each try waits for the answer: `timeout`, then doubling."""
    return [timeout * 2**n for n in range(tries)]


class CoaClient:
    """Send Disconnect/CoA requests; `await disconnect(...)` returns the gateway's verdict
    (ACK, NAK with its Error-Cause, or a timeout after `tries` sends, see `backoff`)."""

    def __init__(
        self,
        *,
        tries: int = DEFAULT_TRIES,
        timeout: float = DEFAULT_TIMEOUT,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._tries = tries
        self._timeout = timeout
        self._random = random
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[
            tuple[str, int, int], tuple[Packet, SharedSecret, asyncio.Future[Packet]]
        ] = {}
        self._next_id = random(1)[0]

    async def start(self, host: str = "127.0.0.1") -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(host, 0)
        )
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for _, _, future in self._pending.values():
            future.cancel()
        self._pending.clear()

    def _identifier(self, host: str, port: int) -> int:
        for _ in range(256):
            self._next_id = (self._next_id + 1) % 256
            if (host, port, self._next_id) not in self._pending:
                return self._next_id
        raise RuntimeError("256 requests outstanding to one gateway")

    def _received(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            reply = Packet.decode(data)
        except RadiusDecodeError:
            log.info("dropped a malformed reply from a gateway")
            return
        entry = self._pending.get((peer[0], peer[1], reply.identifier))
        if entry is None:
            return
        request, secret, future = entry
        if reply.code not in REPLIES.get(request.code, frozenset()):
            return
        try:
            verify_reply(reply, request, secret)
        except RadiusAuthError:
            log.warning("dropped a reply with a bad authenticator from gateway %s", peer[0])
            return
        if not future.done():
            future.set_result(reply)

    async def send(
        self,
        code: Code,
        host: str,
        port: int,
        secret: SharedSecret,
        attributes: Iterable[Attribute],
    ) -> Result:
        if self._transport is None:
            raise RuntimeError("CoaClient.start() first")
        identifier = self._identifier(host, port)
        unsigned = Packet(code, identifier, bytes(AUTHENTICATOR_LENGTH), tuple(attributes))
        request = sign_request(unsigned, secret, add_message_authenticator=True)
        wire = request.encode()
        key = (host, port, identifier)
        future: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._pending[key] = (request, secret, future)
        try:
            for attempt, wait in enumerate(backoff(self._timeout, self._tries), start=1):
                # RFC 5176 §2.3 / RFC 5080 §2.2.1: a retransmission is the same packet.
                self._transport.sendto(wire, (host, port))
                try:
                    reply = await asyncio.wait_for(asyncio.shield(future), wait)
                except TimeoutError:
                    continue
                ack = reply.code in (Code.DISCONNECT_ACK, Code.COA_ACK)
                cause = reply.get(AttributeType.ERROR_CAUSE)
                return Result(
                    Outcome.ACK if ack else Outcome.NAK,
                    attempt,
                    int.from_bytes(cause, "big") if cause and len(cause) == 4 else None,
                )
            return Result(Outcome.TIMEOUT, self._tries)
        finally:
            self._pending.pop(key, None)
            if not future.done():
                future.cancel()

    async def disconnect(
        self, host: str, port: int, secret: SharedSecret, attributes: Iterable[Attribute]
    ) -> Result:
        return await self.send(Code.DISCONNECT_REQUEST, host, port, secret, attributes)
