"""API tokens in the database: issue (shown once), list, revoke, authenticate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, RowMapping, insert, select, update

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import repository
from ztsim.identity.models import TokenInfo
from ztsim.identity.roles import Principal, Role
from ztsim.identity.tokens import display_prefix, generate_token, hash_token, looks_like_token

_t = schema.api_tokens


def _info(m: RowMapping) -> TokenInfo:
    return TokenInfo(
        m["id"],
        m["org_id"],
        m["name"],
        Role(m["role"]),
        m["identity_id"],
        m["prefix"],
        m["created_by"],
        m["created_at"],
        m["expires_at"],
        m["revoked_at"],
    )


def issue(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    role: Role,
    identity_id: str | None,
    created_by: str,
    now: datetime,
    expires_at: datetime | None = None,
    random: Callable[[int], bytes] | None = None,
) -> tuple[TokenInfo, str]:
    """Returns the record and the token itself, which is never retrievable again."""
    if role is Role.SELF and identity_id is None:
        raise InvalidInput("a self token must name the identity it belongs to")
    if identity_id is not None:
        repository.get_identity(conn, org_id, identity_id)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be in the future")
    token = generate_token() if random is None else generate_token(random)
    token_id = new_id()
    conn.execute(
        insert(_t).values(
            id=token_id,
            org_id=org_id,
            name=name,
            role=role.value,
            identity_id=identity_id,
            token_hash=hash_token(token),
            prefix=display_prefix(token),
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return get(conn, org_id, token_id), token


def get(conn: Connection, org_id: str, token_id: str) -> TokenInfo:
    row = conn.execute(select(_t).where(_t.c.org_id == org_id, _t.c.id == token_id)).first()
    if row is None:
        raise NotFound("token not found")
    return _info(row._mapping)


def list_tokens(conn: Connection, org_id: str) -> list[TokenInfo]:
    rows = conn.execute(select(_t).where(_t.c.org_id == org_id).order_by(_t.c.created_at, _t.c.id))
    return [_info(r._mapping) for r in rows]


def revoke(conn: Connection, org_id: str, token_id: str, now: datetime) -> TokenInfo:
    info = get(conn, org_id, token_id)
    if info.revoked_at is None:
        conn.execute(update(_t).where(_t.c.id == token_id).values(revoked_at=now))
    return get(conn, org_id, token_id)


def authenticate(conn: Connection, token: str, now: datetime) -> Principal | None:
    """The principal for a presented token, or None (unknown, revoked, expired, disabled)."""
    found = authenticate_until(conn, token, now)
    return None if found is None else found[0]


def authenticate_until(
    conn: Connection, token: str, now: datetime
) -> tuple[Principal, datetime | None] | None:
    """`authenticate`, with the token's expiry (None: it does not expire)."""
    if not looks_like_token(token):
        return None
    row = conn.execute(select(_t).where(_t.c.token_hash == hash_token(token))).first()
    if row is None:
        return None
    info = _info(row._mapping)
    if info.revoked_at is not None or (info.expires_at is not None and info.expires_at <= now):
        return None
    if info.identity_id is not None:
        owner = repository.get_identity(conn, info.org_id, info.identity_id)
        if not owner.enabled:
            return None
    return Principal(info.org_id, info.role, info.id, info.identity_id), info.expires_at
