"""API clients and their access tokens in `api_clients` and `oauth_tokens`.

An admin creates a client (its secret shown once), lists, reads and revokes them; the
token endpoint issues access tokens (OAuth 2.0 client credentials, RFC 6749 §4.4) and
the CAMARA routes authenticate them. Secrets and tokens are stored as hashes only, and
never appear in events, exceptions or logs: events name the client id.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from ztsim.db import schema
from ztsim.errors import InvalidInput, NotFound
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.risk.clients import (
    TOKEN_LIFETIME,
    Grant,
    checked_phone_number,
    checked_scopes,
    format_scopes,
    looks_like_access_token,
    looks_like_secret,
    new_access_token,
    new_client_id,
    new_client_secret,
    parse_scopes,
    secret_hash,
)
from ztsim.usecase import use_case

_c = schema.api_clients
_t = schema.oauth_tokens
Random = Callable[[int], bytes]
# Compared against when the client id is unknown, so both refusals take the same work.
_NO_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class ApiClient:
    id: str
    org_id: str
    name: str
    scopes: frozenset[str]
    phone_number: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The token itself is in this value only: it is stored as a hash."""

    access_token: str
    grant: Grant
    expires_in: int


@dataclass(frozen=True, slots=True)
class Refused:
    """An RFC 6749 §5.2 error code and a description safe to show the client."""

    error: str
    description: str


def _client(m: RowMapping) -> ApiClient:
    return ApiClient(
        m["id"],
        m["org_id"],
        m["name"],
        frozenset(m["scopes"]),
        m["phone_number"],
        m["created_by"],
        m["created_at"],
        m["revoked_at"],
    )


def _has_number(conn: Connection, org_id: str, phone_number: str) -> bool:
    found = conn.scalar(
        select(schema.sims.c.id).where(
            schema.sims.c.org_id == org_id, schema.sims.c.msisdn == phone_number[1:]
        )
    )
    return found is not None


def create_client(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    scopes: Iterable[str],
    phone_number: str | None,
    actor: str,
    now: datetime,
    random: Random = os.urandom,
) -> tuple[ApiClient, str]:
    """The client and its secret, which is shown this once and never stored."""
    granted = checked_scopes(scopes)
    if phone_number is not None:
        checked_phone_number(phone_number)
        if not _has_number(conn, org_id, phone_number):
            raise InvalidInput("phone_number is not the number of a SIM of this org")
    client_id, secret = new_client_id(random), new_client_secret(random)
    with use_case(conn, now) as uc:
        conn.execute(
            insert(_c).values(
                id=client_id,
                org_id=org_id,
                name=name,
                secret_hash=secret_hash(secret),
                scopes=sorted(granted),
                phone_number=phone_number,
                created_by=actor,
                created_at=now,
            )
        )
        legs = 2 if phone_number is None else 3
        subject = subject_of("api_client", client_id)
        uc.audit(org_id, "api_client.created", actor, subject, scopes=sorted(granted), legs=legs)
    return get_client(conn, org_id, client_id), secret


def get_client(conn: Connection, org_id: str, client_id: str) -> ApiClient:
    row = conn.execute(select(_c).where(_c.c.org_id == org_id, _c.c.id == client_id)).first()
    if row is None:
        raise NotFound("API client not found")
    return _client(row._mapping)


def list_clients(conn: Connection, org_id: str) -> list[ApiClient]:
    rows = conn.execute(select(_c).where(_c.c.org_id == org_id).order_by(_c.c.created_at, _c.c.id))
    return [_client(r._mapping) for r in rows]


def revoke_client(
    conn: Connection, org_id: str, client_id: str, *, actor: str, now: datetime
) -> ApiClient:
    """Revoke the client and end its tokens at once; revoking twice changes nothing."""
    with use_case(conn, now) as uc:
        client = get_client(conn, org_id, client_id)
        if client.revoked_at is None:
            conn.execute(update(_c).where(_c.c.id == client_id).values(revoked_at=now))
            conn.execute(delete(_t).where(_t.c.client_id == client_id))
            uc.audit(org_id, "api_client.revoked", actor, subject_of("api_client", client_id))
        return get_client(conn, org_id, client_id)


def prune_expired(conn: Connection, now: datetime) -> int:
    """Delete tokens past their expiry (every client's); returns how many."""
    return conn.execute(delete(_t).where(_t.c.expires_at <= now)).rowcount


def _refuse(
    conn: Connection, client: ApiClient, error: str, description: str, now: datetime
) -> Refused:
    with use_case(conn, now) as uc:
        uc.event(
            NewEvent(
                client.org_id,
                "camara.token_refused",
                f"api_client:{client.id}",
                subject_of("api_client", client.id),
                Outcome.DENIED,
                reason=error,
                payload={"client_id": client.id},
            )
        )
    return Refused(error, description)


def issue_token(
    conn: Connection,
    client_id: str,
    secret: str,
    scope: str | None,
    *,
    now: datetime,
    random: Random = os.urandom,
) -> IssuedToken | Refused:
    """A token for a client that authenticates, with `scope` (RFC 6749 §3.3: a subset of
    the client's scopes; None: all of them). A refusal of a known client is an event of
    its org; the caller commits it like a token."""
    row = conn.execute(select(_c).where(_c.c.id == client_id)).first() if client_id else None
    stored = row._mapping["secret_hash"] if row is not None else _NO_HASH
    secret_ok = looks_like_secret(secret) and hmac.compare_digest(stored, secret_hash(secret))
    if row is None:
        return Refused("invalid_client", "client authentication failed")
    client = _client(row._mapping)
    if not secret_ok or client.revoked_at is not None:
        return _refuse(conn, client, "invalid_client", "client authentication failed", now)
    try:
        wanted = client.scopes if scope is None else parse_scopes(scope)
    except InvalidInput as exc:
        return _refuse(conn, client, "invalid_scope", str(exc), now)
    if not wanted <= client.scopes:
        extra = format_scopes(wanted - client.scopes)
        return _refuse(conn, client, "invalid_scope", f"not granted to this client: {extra}", now)
    token = new_access_token(random)
    expires_at = now + TOKEN_LIFETIME
    with use_case(conn, now) as uc:
        prune_expired(conn, now)
        conn.execute(
            insert(_t).values(
                token_hash=secret_hash(token),
                client_id=client.id,
                org_id=client.org_id,
                scopes=sorted(wanted),
                phone_number=client.phone_number,
                created_at=now,
                expires_at=expires_at,
            )
        )
        uc.audit(
            client.org_id,
            "camara.token_issued",
            f"api_client:{client.id}",
            subject_of("api_client", client.id),
            client_id=client.id,
            scopes=sorted(wanted),
            expires_at=expires_at.isoformat(),
        )
    grant = Grant(client.org_id, client.id, wanted, client.phone_number)
    return IssuedToken(token, grant, int(TOKEN_LIFETIME.total_seconds()))


def authenticate_token(conn: Connection, token: str, now: datetime) -> Grant | None:
    """The grant of a valid access token; None when unknown, expired or its client revoked."""
    if not looks_like_access_token(token):
        return None
    row = conn.execute(
        select(_t, _c.c.revoked_at)
        .join(_c, _c.c.id == _t.c.client_id)
        .where(_t.c.token_hash == secret_hash(token))
    ).first()
    if row is None:
        return None
    m = row._mapping
    if m["expires_at"] <= now or m["revoked_at"] is not None:
        return None
    return Grant(m["org_id"], m["client_id"], frozenset(m["scopes"]), m["phone_number"])
