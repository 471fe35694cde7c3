"""The requester's address: the TCP peer, or what trusted proxies say it was.

`X-Forwarded-For` is believed only when the peer is one of the configured proxies
(`ZTSIM_API_TRUSTED_PROXIES`), and only as far back as the chain of trusted hops goes:
anyone can send the header, so from anyone else it is ignored. The address decides
who a DoH client is and whose failed authentications are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """Walk the hops right to left while the current one is a trusted proxy; the first
    address not vouched for by a trusted proxy is the client."""
    current = peer
    if current is None or not forwarded_for:
        return current
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not is_trusted(current, trusted):
            break
        try:
            current = str(ip_address(hop))
        except ValueError:
            break  # a malformed hop: the last trusted proxy is all we know
    return current


class ForwardedMiddleware:
    """Rewrites `scope["client"]` from `X-Forwarded-For` sent by trusted proxies."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted and scope.get("client"):
            peer = scope["client"][0]
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
            client = client_address(peer, ",".join(values), self.trusted)
            if client != peer:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
