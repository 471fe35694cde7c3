"""Org, identity, group, fleet and API-token use cases: one function per change, shared by
the API and the CLI. Each checks, writes, records its audit event and, when a plane must
act on it, its change (`ztsim.usecase`), in the caller's transaction.

Planes care about: an identity enabled or disabled (its SIMs' sessions), group and fleet
membership (DNS rules select on them), and the org's attach settings (trust on first
attach). Creating an identity, a group or a fleet, and API tokens, change no plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.identity import repository, token_store
from ztsim.identity.models import Collection, Identity, IdentityKind, Org, TokenInfo
from ztsim.identity.roles import Role
from ztsim.usecase import use_case


def _noun(fleet: bool) -> str:
    return "fleet" if fleet else "group"


# -- the org -------------------------------------------------------------------------------


def create_org(conn: Connection, name: str, slug: str, *, actor: str, now: datetime) -> Org:
    with use_case(conn, now) as uc:
        org = repository.create_org(conn, name, slug, now)
        uc.audit(org.id, "org.created", actor, subject_of("org", org.id))
        return org


def update_org(
    conn: Connection, org_id: str, *, tofu_binding: bool | None, actor: str, now: datetime
) -> Org:
    with use_case(conn, now) as uc:
        org = repository.update_org(conn, org_id, tofu_binding=tofu_binding)
        changed = {} if tofu_binding is None else {"tofu_binding": tofu_binding}
        uc.audit(org_id, "org.updated", actor, subject_of("org", org_id), **changed)
        if changed:
            uc.change(org_id, Topic.NETWORK, org_id)
        return org


# -- identities ----------------------------------------------------------------------------


def create_identity(
    conn: Connection,
    org_id: str,
    *,
    kind: IdentityKind,
    name: str,
    email: str | None,
    external_id: str | None,
    actor: str,
    now: datetime,
) -> Identity:
    with use_case(conn, now) as uc:
        ident = repository.create_identity(
            conn, org_id, kind=kind, name=name, email=email, external_id=external_id, now=now
        )
        subject = subject_of("identity", ident.id)
        uc.audit(org_id, "identity.created", actor, subject, identity_kind=kind.value)
        return ident


def update_identity(
    conn: Connection,
    org_id: str,
    identity_id: str,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    actor: str,
    now: datetime,
) -> Identity:
    """Rename, enable or disable. Disabling cuts the identity's SIMs off: the planes re-read
    it (a rename alone changes nothing they hold)."""
    with use_case(conn, now) as uc:
        ident = repository.update_identity(conn, org_id, identity_id, name=name, enabled=enabled)
        changed = {k: v for k, v in (("name", name), ("enabled", enabled)) if v is not None}
        subject = subject_of("identity", identity_id)
        uc.audit(org_id, "identity.updated", actor, subject, **changed)
        if enabled is not None:
            uc.change(org_id, Topic.IDENTITY, identity_id)
        return ident


# -- groups and fleets ---------------------------------------------------------------------


def create_collection(
    conn: Connection, org_id: str, name: str, *, fleet: bool, actor: str, now: datetime
) -> Collection:
    with use_case(conn, now) as uc:
        c = repository.create_collection(conn, org_id, name, now, fleet=fleet)
        noun = _noun(fleet)
        uc.audit(org_id, f"{noun}.created", actor, subject_of(noun, c.id))
        return c


def add_members(
    conn: Connection,
    org_id: str,
    cid: str,
    identity_ids: Sequence[str],
    *,
    fleet: bool,
    actor: str,
    now: datetime,
) -> Collection:
    """Add identities to a group or fleet, all or none (the caller's transaction)."""
    noun = _noun(fleet)
    with use_case(conn, now) as uc:
        c = repository.get_collection(conn, org_id, cid, fleet=fleet)
        for identity_id in identity_ids:
            c = repository.add_member(conn, org_id, cid, identity_id, fleet=fleet)
            subject = subject_of(noun, cid)
            uc.audit(org_id, f"{noun}.member_added", actor, subject, identity_id=identity_id)
            uc.change(org_id, Topic.IDENTITY, identity_id)
        return c


def remove_member(
    conn: Connection,
    org_id: str,
    cid: str,
    identity_id: str,
    *,
    fleet: bool,
    actor: str,
    now: datetime,
) -> Collection:
    noun = _noun(fleet)
    with use_case(conn, now) as uc:
        c = repository.remove_member(conn, org_id, cid, identity_id, fleet=fleet)
        subject = subject_of(noun, cid)
        uc.audit(org_id, f"{noun}.member_removed", actor, subject, identity_id=identity_id)
        uc.change(org_id, Topic.IDENTITY, identity_id)
        return c


# -- API tokens ----------------------------------------------------------------------------


def issue_token(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    role: Role,
    identity_id: str | None,
    expires_at: datetime | None = None,
    actor: str,
    now: datetime,
) -> tuple[TokenInfo, str]:
    """The record and the token itself, which is shown once and never stored."""
    with use_case(conn, now) as uc:
        info, token = token_store.issue(
            conn,
            org_id,
            name=name,
            role=role,
            identity_id=identity_id,
            created_by=actor,
            now=now,
            expires_at=expires_at,
        )
        subject = subject_of("token", info.id)
        uc.audit(org_id, "token.created", actor, subject, role=role.value)
        return info, token


def revoke_token(
    conn: Connection, org_id: str, token_id: str, *, actor: str, now: datetime
) -> TokenInfo:
    """Revoke a token; a token already revoked is left as it is, with no second event."""
    with use_case(conn, now) as uc:
        current = token_store.get(conn, org_id, token_id)
        if current.revoked_at is not None:
            return current
        info = token_store.revoke(conn, org_id, token_id, now)
        uc.audit(org_id, "token.revoked", actor, subject_of("token", token_id))
        return info
