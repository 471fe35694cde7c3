"""Gateway and IP pool use cases, shared by the API and the CLI: each writes the change,
its audit event and a `Topic.NETWORK` change (key: the org) in the caller's transaction,
so every AAA process reloads the org's gateways and pools. Audit events name a gateway's
address, never its shared secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.radius.store import registry
from ztsim.sealing import Sealer
from ztsim.usecase import UseCase, use_case


def _record(
    uc: UseCase, org_id: str, kind: str, actor: str, subject: str, **payload: object
) -> None:
    """The audit event, and the change every AAA process reloads the org's network for."""
    uc.audit(org_id, kind, actor, subject, **payload)
    uc.change(org_id, Topic.NETWORK, org_id)


def create_gateway(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    *,
    name: str,
    address: str,
    secret: str,
    apns: list[str],
    require_message_authenticator: bool,
    coa_port: int,
    actor: str,
    now: datetime,
) -> registry.Gateway:
    with use_case(conn, now) as uc:
        gateway = registry.create_gateway(
            conn,
            sealer,
            org_id,
            name=name,
            address=address,
            secret=secret,
            apns=apns,
            require_message_authenticator=require_message_authenticator,
            coa_port=coa_port,
            now=now,
        )
        _record(
            uc,
            org_id,
            "gateway.created",
            actor,
            subject_of("gateway", gateway.id),
            address=gateway.address,
            require_message_authenticator=gateway.require_message_authenticator,
        )
        return gateway


def delete_gateway(
    conn: Connection, org_id: str, gateway_id: str, *, actor: str, now: datetime
) -> None:
    with use_case(conn, now) as uc:
        registry.delete_gateway(conn, org_id, gateway_id)
        _record(uc, org_id, "gateway.deleted", actor, subject_of("gateway", gateway_id))


def create_pool(
    conn: Connection,
    org_id: str,
    *,
    cidr: str,
    static_cidr: str | None,
    actor: str,
    now: datetime,
) -> registry.Pool:
    with use_case(conn, now) as uc:
        pool = registry.create_pool(conn, org_id, cidr=cidr, static_cidr=static_cidr, now=now)
        _record(
            uc, org_id, "ip_pool.created", actor, subject_of("ip_pool", pool.id), cidr=pool.cidr
        )
        return pool
