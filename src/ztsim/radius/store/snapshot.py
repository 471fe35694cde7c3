"""Build the decision engine's snapshot from the database, whole or for a few SIMs.

Runs off the hot path (in a worker thread): at start, on change notifications and
periodically. Gateway secrets are unsealed here, once per load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Network, ip_network

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.radius.aaa.engine import GatewayEntry, SimEntry, Snapshot
from ztsim.radius.secret import SharedSecret
from ztsim.sealing import Sealer
from ztsim.sessions.allocator import PoolEntry

_s = schema.sims
_SIM_COLUMNS = (_s.c.iccid, _s.c.org_id, _s.c.imsi, _s.c.state, _s.c.identity_id, _s.c.device_id)


def _sims(conn: Connection, *where: object) -> list[SimEntry]:
    rows = conn.execute(select(*_SIM_COLUMNS).where(*where))  # type: ignore[arg-type]
    return [SimEntry(*row) for row in rows]


def load_gateways(conn: Connection, sealer: Sealer) -> tuple[GatewayEntry, ...]:
    g = schema.radius_gateways
    found = []
    for m in conn.execute(select(g)).mappings():
        secret = sealer.open(m["secret_sealed"], m["id"].encode())
        found.append(
            GatewayEntry(
                id=m["id"],
                org_id=m["org_id"],
                name=m["name"],
                network=ip_network(m["address"]),
                secret=SharedSecret(secret),
                apns=frozenset(m["apns"]),
                require_message_authenticator=m["require_message_authenticator"],
                coa_port=m["coa_port"],
            )
        )
    return tuple(found)


def load_pools(conn: Connection) -> dict[str, PoolEntry]:
    p = schema.ip_pools
    pools = {}
    for m in conn.execute(select(p)).mappings():
        static = m["static_cidr"]
        pools[m["org_id"]] = PoolEntry(
            id=m["id"],
            org_id=m["org_id"],
            network=IPv4Network(m["cidr"]),
            static_network=IPv4Network(static) if static else None,
        )
    return pools


def load_snapshot(conn: Connection, sealer: Sealer) -> Snapshot:
    """Everything, from one transaction."""
    sims = _sims(conn)
    devices = schema.devices
    identities = schema.identities
    return Snapshot(
        sims={s.imsi: s for s in sims},
        device_imeis={r[0]: r[1] for r in conn.execute(select(devices.c.id, devices.c.imei))},
        identities_enabled={
            r[0]: r[1] for r in conn.execute(select(identities.c.id, identities.c.enabled))
        },
        tofu_orgs=frozenset(
            conn.execute(select(schema.orgs.c.id).where(schema.orgs.c.tofu_binding)).scalars()
        ),
        gateways=load_gateways(conn, sealer),
        pools=load_pools(conn),
    )


def refresh_sims(
    conn: Connection,
    snapshot: Snapshot,
    org_id: str,
    *,
    iccids: Iterable[str] = (),
    identity_id: str | None = None,
) -> tuple[Snapshot, list[SimEntry]]:
    """A snapshot with the named SIMs (or an identity's SIMs) re-read, their devices and
    identities too; also the SIMs re-read, so the caller can re-check their sessions."""
    where = [_s.c.org_id == org_id]
    names = list(iccids)
    if identity_id is not None:
        where.append(_s.c.identity_id == identity_id)
    else:
        where.append(_s.c.iccid.in_(names))
    fresh = _sims(conn, *where)
    # A SIM whose IMSI left the table (never happens today) or changed stays as re-read.
    sims = dict(snapshot.sims)
    for sim in fresh:
        sims[sim.imsi] = sim
    identity_ids = {s.identity_id for s in fresh if s.identity_id} | (
        {identity_id} if identity_id else set()
    )
    device_ids = {s.device_id for s in fresh if s.device_id}
    identities = dict(snapshot.identities_enabled)
    i = schema.identities
    for ident, enabled in conn.execute(
        select(i.c.id, i.c.enabled).where(i.c.org_id == org_id, i.c.id.in_(identity_ids))
    ):
        identities[ident] = enabled
    devices = dict(snapshot.device_imeis)
    d = schema.devices
    for dev, imei in conn.execute(
        select(d.c.id, d.c.imei).where(d.c.org_id == org_id, d.c.id.in_(device_ids))
    ):
        devices[dev] = imei
    return replace(snapshot, sims=sims, identities_enabled=identities, device_imeis=devices), fresh
