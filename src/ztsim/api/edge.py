"""The HTTP edge: what stands between a connection's request and the routes, in order.

    forwarded   the requester's address (trusted proxies only)
    headers     nosniff, no-store
    gate        bearer token before the body; failed authentications rate-limited
    limits      body size, while it streams
    (the FastAPI app: problem details, 405 with Allow, 503 while the database is away)

Pure ASGI, so it sees every response, the framework's own errors included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import ASGIApp

from ztsim.api.forwarded import ForwardedMiddleware, Network
from ztsim.api.gate import AuthGate
from ztsim.api.headers import SecurityHeadersMiddleware
from ztsim.api.limits import BodyLimitMiddleware, BodyLimits
from ztsim.api.ratelimit import FailureLimiter


@dataclass(frozen=True)
class HttpEdge:
    limits: BodyLimits = field(default_factory=BodyLimits)
    trusted_proxies: tuple[Network, ...] = ()
    # Failed authentications per client and minute before 429; None: not limited (the
    # node sets it from ZTSIM_API_AUTH_FAILURES_PER_MINUTE).
    auth_failures_per_minute: int | None = None


def failure_limiter(edge: HttpEdge) -> FailureLimiter | None:
    """The one limiter of an app's edge (the gate's, and `ueau_lane`'s check of it)."""
    per_minute = edge.auth_failures_per_minute
    return FailureLimiter(per_minute) if per_minute else None


def wrap(app: ASGIApp, edge: HttpEdge, limiter: FailureLimiter | None) -> ASGIApp:
    inner: ASGIApp = BodyLimitMiddleware(app, edge.limits)
    inner = AuthGate(inner, limiter)
    inner = SecurityHeadersMiddleware(inner)
    return ForwardedMiddleware(inner, edge.trusted_proxies)
