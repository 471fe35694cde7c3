"""DNS over HTTPS to an upstream (RFC 8484): POSTs of application/dns-message through one
httpx client per upstream, kept open so its connections are reused (HTTP/1.1).

The query goes out with ID 0 (RFC 8484 §4.1: cache friendly; HTTP pairs answer and
query) and the caller's ID is put back into the answer. An answer counts only if it
is a 200 of type application/dns-message, at most 65535 octets, whose question is
ours; anything else raises `DohUpstreamError`, an OSError like the other transports'
failures, so the pool moves on to the next upstream. URLs are never put in messages:
a path may carry a device token (`/dns-query/<token>`).
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from ztsim.dns.serve.upstream_tls import response_question
from ztsim.dns.wire.constants import HEADER_LEN
from ztsim.errors import InvalidInput

MEDIA_TYPE = "application/dns-message"  # RFC 8484 §6
MAX_MESSAGE = 65535  # RFC 8484 §6: a DNS message as over TCP, so at most 65535 octets
# HTTP/1.1 carries one request per connection at a time: this bounds queries in flight
# per upstream (more wait for a connection, within the query's timeout).
MAX_CONNECTIONS = 32
# Ask for the body as is: a compressed body could expand far past MAX_MESSAGE.
_HEADERS = {"content-type": MEDIA_TYPE, "accept": MEDIA_TYPE, "accept-encoding": "identity"}


class DohUpstreamError(OSError):
    """A DoH upstream failed: no connection, a bad status, type, size or question."""


def doh_url(host: str, port: int, path: str) -> httpx.URL:
    """The https URL of a DoH upstream; InvalidInput (without the URL) if it has none."""
    if not path.startswith("/"):
        raise InvalidInput("a DoH upstream's path must start with /")
    try:
        return httpx.URL(scheme="https", host=host, port=port, path=path)
    except (httpx.InvalidURL, ValueError):
        raise InvalidInput("a DoH upstream's host, port or path is not valid in a URL") from None


def checked_answer(
    status: int,
    content_type: str | None,
    content_encoding: str | None,
    body: bytes,
    question: bytes,
) -> bytes:
    """`body` if it is a DoH answer to `question`, else DohUpstreamError (sans-I/O)."""
    if status != 200:
        raise DohUpstreamError(f"DoH upstream answered HTTP {status}")
    if (content_type or "").split(";")[0].strip().lower() != MEDIA_TYPE:
        raise DohUpstreamError(f"DoH upstream answer is not {MEDIA_TYPE}")
    if (content_encoding or "identity").strip().lower() != "identity":
        raise DohUpstreamError("DoH upstream answer is content-encoded")
    if len(body) > MAX_MESSAGE:
        raise DohUpstreamError("DoH upstream answer is too large")
    if len(body) < HEADER_LEN or response_question(body) != question:
        raise DohUpstreamError("DoH upstream answer is not for our question")
    return body


class HttpsChannel:
    """One DoH upstream: its URL and, once used, its httpx client."""

    def __init__(self, host: str, port: int, path: str, context: ssl.SSLContext) -> None:
        """`context` checks the upstream's certificate; the HTTP client sets its ALPN."""
        self.url = doh_url(host, port, path)
        self._context = context
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._context,
                trust_env=False,  # DNS goes where configured, never via a proxy from the env
                follow_redirects=False,  # a redirect is a non-200 answer: a failure
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
                ),
            )
        return self._client

    async def ask(self, wire: bytes, question: bytes, timeout: float) -> bytes:
        """The answer to `wire` under `wire`'s ID; DohUpstreamError or TimeoutError."""
        client = self._open()
        query = b"\x00\x00" + wire[2:]  # RFC 8484 §4.1: ID 0
        try:
            async with asyncio.timeout(timeout):
                async with client.stream(
                    "POST", self.url, content=query, headers=_HEADERS, timeout=timeout
                ) as response:
                    body = await _body(response)
                    answer = checked_answer(
                        response.status_code,
                        response.headers.get("content-type"),
                        response.headers.get("content-encoding"),
                        body,
                        question,
                    )
        except httpx.TimeoutException:
            raise TimeoutError("DoH upstream timed out") from None
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise DohUpstreamError(f"DoH upstream failed: {type(exc).__name__}") from None
        return wire[:2] + answer[2:]

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def _body(response: httpx.Response) -> bytes:
    """The raw body, read no further than one octet past MAX_MESSAGE."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_MESSAGE:
        raise DohUpstreamError("DoH upstream answer is too large")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > MAX_MESSAGE:
            break
    return bytes(body)
