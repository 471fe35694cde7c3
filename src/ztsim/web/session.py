"""The browser session: an API token, presented once at /login, kept in a cookie the
browser cannot read and nobody but this server can open.

The cookie carries the token sealed (AES-GCM under the org's master key, the same
`Sealer` as K and OPc, with its own associated data so no other sealed value can pass
for a session), with the session's CSRF secret and when it began. Every request
re-authenticates the token, so a revoked or expired token ends its sessions at once and
no session table is needed (any API process can serve any page). Single sign-on, later,
seals an identity instead of a token: `Session.token` is the one field that changes.

Cookie flags (RFC 6265bis §4.1.2): HttpOnly, SameSite=Strict, Path=/, Secure when the
request came over TLS. CSRF: forms carry the session's secret (or, before sign-in, the
value of a short-lived pre-session cookie) and are refused when it does not match.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.responses import Response

from ztsim.errors import SealingError
from ztsim.sealing import Sealer

COOKIE = "ztsim_session"
LOGIN_CSRF_COOKIE = "ztsim_login_csrf"
# A working day; after it the person signs in again, whatever the token's own expiry.
LIFETIME = timedelta(hours=8)
_AD = b"ztsim.web.session.v1"


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf: str
    started_at: datetime


def new_secret() -> str:
    """A CSRF secret: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def seal(sealer: Sealer, session: Session) -> str:
    body = {"t": session.token, "c": session.csrf, "s": session.started_at.isoformat()}
    envelope = sealer.seal(json.dumps(body).encode(), _AD)
    return base64.urlsafe_b64encode(envelope).decode().rstrip("=")


def open_cookie(sealer: Sealer, value: str | None, now: datetime) -> Session | None:
    """The session in a cookie, or None: absent, forged, sealed under a key this node no
    longer holds, or older than LIFETIME."""
    if not value or len(value) > 4096:
        return None
    try:
        envelope = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        body = json.loads(sealer.open(envelope, _AD))
        session = Session(str(body["t"]), str(body["c"]), datetime.fromisoformat(body["s"]))
    except (SealingError, ValueError, KeyError, TypeError, binascii.Error):
        return None  # forged, tampered, or sealed under a key no longer held
    if session.started_at.tzinfo is None or not (
        session.started_at <= now < session.started_at + LIFETIME
    ):
        return None
    return session


def csrf_matches(expected: str | None, presented: str | None) -> bool:
    """Constant time, and never true for an empty secret."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def set_cookie(
    response: Response, name: str, value: str, *, secure: bool, max_age: timedelta
) -> None:
    """A cookie with this module's flags: HttpOnly, SameSite=Strict, Path=/, Secure on TLS."""
    response.set_cookie(
        name,
        value,
        max_age=int(max_age.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
