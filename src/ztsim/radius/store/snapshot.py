"""Build the decision engine's snapshot from the database, whole, for a few SIMs and
identities (`read_patch`), or its gateways and pools (`load_network`). The attach
policies' part is read by `attach_policy`.

Runs off the hot path: at start and on a resync (whole), and for the change feed's
changes. Gateway secrets are unsealed here, once per load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, ip_network

from sqlalchemy import Connection, select

from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.radius.aaa.engine import GatewayEntry, SimEntry, Snapshot, SnapshotPatch
from ztsim.radius.secret import SharedSecret
from ztsim.radius.store.attach_policy import load_attach
from ztsim.sealing import Sealer
from ztsim.sessions.allocator import PoolEntry

_s = schema.sims
_SIM_COLUMNS = (_s.c.iccid, _s.c.org_id, _s.c.imsi, _s.c.state, _s.c.identity_id, _s.c.device_id)


def _sims(conn: Connection, *where: object) -> list[SimEntry]:
    rows = conn.execute(select(*_SIM_COLUMNS).where(*where)).all()  # type: ignore[arg-type]
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


@dataclass(frozen=True, slots=True)
class Network:
    """The parts of the snapshot a NETWORK change touches, for every org: a few rows
    each, so they are re-read whole rather than per org."""

    gateways: tuple[GatewayEntry, ...]
    pools: dict[str, PoolEntry]
    tofu_orgs: frozenset[str]


def load_network(conn: Connection, sealer: Sealer) -> Network:
    return Network(
        gateways=load_gateways(conn, sealer),
        pools=load_pools(conn),
        tofu_orgs=frozenset(
            conn.execute(select(schema.orgs.c.id).where(schema.orgs.c.tofu_binding)).scalars()
        ),
    )


def load_snapshot(conn: Connection, sealer: Sealer, now: datetime | None = None) -> Snapshot:
    """Everything, from one transaction; attach classes as they stand at `now`."""
    sims = _sims(conn)
    devices = schema.devices
    identities = schema.identities
    network = load_network(conn, sealer)
    return Snapshot(
        sims={s.imsi: s for s in sims},
        device_imeis={r[0]: r[1] for r in conn.execute(select(devices.c.id, devices.c.imei))},
        identities_enabled={
            r[0]: r[1] for r in conn.execute(select(identities.c.id, identities.c.enabled))
        },
        tofu_orgs=network.tofu_orgs,
        gateways=network.gateways,
        pools=network.pools,
        attach=load_attach(conn, utc_now() if now is None else now),
    )


# Values per IN (...) list: far below any backend's limit of bound parameters.
_CHUNK = 500


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def read_patch(
    conn: Connection,
    org_id: str,
    *,
    iccids: Iterable[str] = (),
    identity_ids: Iterable[str] = (),
) -> SnapshotPatch:
    """The named SIMs of one org and the SIMs its named identities hold, as they are now,
    with their identities and devices (those that no longer exist as None, so the
    snapshot forgets them)."""
    fresh: dict[str, SimEntry] = {}
    wanted_identities = set(identity_ids)
    for chunk in _chunks(iccids):
        for sim in _sims(conn, _s.c.org_id == org_id, _s.c.iccid.in_(chunk)):
            fresh[sim.iccid] = sim
    for chunk in _chunks(wanted_identities):
        for sim in _sims(conn, _s.c.org_id == org_id, _s.c.identity_id.in_(chunk)):
            fresh[sim.iccid] = sim
    identity_ids_now = {s.identity_id for s in fresh.values() if s.identity_id}
    identities: dict[str, bool | None] = dict.fromkeys(wanted_identities | identity_ids_now)
    i = schema.identities
    for chunk in _chunks(identities):
        for ident, enabled in conn.execute(
            select(i.c.id, i.c.enabled).where(i.c.org_id == org_id, i.c.id.in_(chunk))
        ):
            identities[ident] = bool(enabled)
    devices: dict[str, str | None] = dict.fromkeys(
        s.device_id for s in fresh.values() if s.device_id
    )
    d = schema.devices
    for chunk in _chunks(devices):
        for dev, imei in conn.execute(
            select(d.c.id, d.c.imei).where(d.c.org_id == org_id, d.c.id.in_(chunk))
        ):
            devices[dev] = imei
    return SnapshotPatch(tuple(fresh.values()), identities, devices)
