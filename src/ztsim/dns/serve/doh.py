"""DNS over HTTPS (RFC 8484) without the web framework: message extraction and the service
the HTTP route calls.

`/dns-query` identifies the requester by the HTTP client's address, like UDP and
TCP; `/dns-query/<device token>` by the token, so the same policy follows a
phone onto Wi-Fi. Unknown clients and tokens get a REFUSED DNS answer, never
an open resolver. The gateway may run on another thread's event loop (in
`ztsim up` it does): `DohService` hands the query to that loop. `requester` is the
lookup by source that waits, like UDP's, for the change feed's next read when the
address has no entry yet (`Gateway.identify`); `by_source` answers at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Coroutine
from typing import Any, TypeVar

from ztsim.dns.policy.identity import Requester
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.wire.cache import CachedAnswer
from ztsim.dns.wire.constants import HEADER_LEN
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError
from ztsim.errors import InvalidInput

MEDIA_TYPE = "application/dns-message"  # RFC 8484 §6
MAX_MESSAGE = 65535  # RFC 8484 §6: a DNS message as over TCP, so at most 65535 octets
T = TypeVar("T")


class DohInputError(InvalidInput):
    """A DoH request whose DNS message cannot be extracted."""


def message_from_get(dns_param: str | None) -> bytes:
    """The query in a GET request's `dns` parameter: base64url without padding (RFC 8484 §4.1)."""
    if not dns_param:
        raise DohInputError("missing dns parameter")
    if len(dns_param) > (MAX_MESSAGE * 4) // 3 + 4:
        raise DohInputError("dns parameter too long")
    padded = dns_param + "=" * (-len(dns_param) % 4)
    try:
        wire = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DohInputError("dns parameter is not base64url") from None
    return _checked(wire)


def message_from_post(content_type: str | None, body: bytes) -> bytes:
    """The query in a POST body of type application/dns-message (RFC 8484 §4.1)."""
    if (content_type or "").split(";")[0].strip().lower() != MEDIA_TYPE:
        raise DohInputError(f"content type must be {MEDIA_TYPE}")
    return _checked(body)


def _checked(wire: bytes) -> bytes:
    if len(wire) < HEADER_LEN or len(wire) > MAX_MESSAGE:
        raise DohInputError("DNS message size out of range")
    return wire


def max_age(answer: bytes) -> int:
    """Cache-Control max-age for an answer: its smallest TTL (RFC 8484 §5.1)."""
    try:
        return CachedAnswer.from_wire(answer).min_ttl
    except (DnsDecodeError, DnsEncodeError):
        return 0


class DohService:
    """What the HTTP route needs: the requester lookups and one answer call."""

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.gateway = gateway
        self.loop = loop

    def by_source(self, address: str | None) -> Requester | None:
        return None if address is None else self.gateway.identities.by_source(address)

    def by_token(self, token: str) -> Requester | None:
        return self.gateway.identities.by_token(token)

    async def requester(self, address: str | None) -> Requester | None:
        """`by_source`, after one more read of the change feed if the address is unknown."""
        if address is None:
            return None
        who = self.gateway.identities.by_source(address)
        if who is not None or self.gateway.late is None:
            return who
        return await self._on_loop(self.gateway.identify(address))

    async def answer(self, wire: bytes, who: Requester | None) -> bytes | None:
        return await self._on_loop(self.gateway.answer(wire, who, udp=False))

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
