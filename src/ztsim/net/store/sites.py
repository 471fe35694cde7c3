"""Sites and networks in the database: the use cases of the API and the CLI, each one
`ztsim.usecase.use_case` with its audit event (`net.site_created`, `net.site_updated`,
`net.site_deleted`, `net.network_added`, `net.network_deleted`) and a `Topic.NET` change
keyed by the org, on which the net role reads the org's sites and networks again.

Every query is scoped by org: another org's site or network is `NotFound`, as if it did
not exist. Claims (VNIs and prefixes) are checked across orgs by `net.store.claims`.

A site that still has networks is not deleted unless `force` is given, which deletes its
networks with it: a site deleted by mistake would otherwise take its routes silently.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Insert, RowMapping, Table, Update, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import Conflict, NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.net.sites import (
    Address,
    Inner,
    Network,
    Site,
    TunnelKind,
    check_name,
    check_port,
    check_vni,
    endpoint_of,
    new_site,
    prefix_of,
)
from ztsim.net.store import claims
from ztsim.usecase import UseCase, use_case

_s, _n = schema.net_sites, schema.net_networks
NewId = Callable[[], str]


def _site(m: RowMapping) -> Site:
    return Site(
        m["id"],
        m["org_id"],
        m["name"],
        TunnelKind(m["tunnel"]),
        endpoint_of(m["endpoint"]),
        m["port"],
        m["vni"],
        m["created_at"],
        m["updated_at"],
        Inner(m["inner"]),
        m["site_mac"],
    )


def _network(m: RowMapping) -> Network:
    return Network(
        m["id"], m["org_id"], m["site_id"], m["name"], prefix_of(m["cidr"]), m["created_at"]
    )


def _record(
    uc: UseCase, org_id: str, kind: str, actor: str, subject: str, **payload: object
) -> None:
    """The audit event, and the change on which the net role re-reads the org."""
    uc.audit(org_id, kind, actor, subject, **payload)
    uc.change(org_id, Topic.NET, org_id)


def _site_fields(site: Site) -> dict[str, object]:
    return {
        "name": site.name,
        "tunnel": site.tunnel.value,
        "endpoint": str(site.endpoint),
        "port": site.port,
        "vni": site.vni,
        "inner": site.inner.value,
        "site_mac": site.site_mac,
    }


def _name_free(conn: Connection, table: Table, org_id: str, name: str, own: str) -> None:
    taken = select(table.c.id).where(
        table.c.org_id == org_id, table.c.name == name, table.c.id != own
    )
    if conn.execute(taken).first() is not None:
        noun = "site" if table is _s else "network"
        raise Conflict(f"the org already has a {noun} named {name!r}")


def _write(conn: Connection, statement: Insert | Update) -> None:
    """One insert or update, under a savepoint: the unique keys back up the checks."""
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except IntegrityError:
        raise Conflict("the name or VNI is already taken") from None


# -- sites ---------------------------------------------------------------------------------


def create_site(
    conn: Connection,
    org_id: str,
    *,
    name: str,
    tunnel: TunnelKind,
    endpoint: str,
    vni: int,
    port: int | None = None,
    inner: Inner = Inner.IP,
    site_mac: str | None = None,
    actor: str,
    now: datetime,
    ids: NewId = new_id,
) -> Site:
    """A new site; `site_mac` is required with inner ethernet (geneve only), and ztsim's
    own MAC on its tunnel is `Site.gateway_mac`."""
    site = new_site(
        ids(),
        org_id,
        name=name,
        tunnel=tunnel,
        endpoint=endpoint,
        port=port,
        vni=vni,
        now=now,
        inner=inner,
        site_mac=site_mac,
    )
    with use_case(conn, now) as uc:
        claims.claim_vni(conn, org_id, site.vni, site_id=site.id)
        _name_free(conn, _s, org_id, site.name, site.id)
        values = {**_site_fields(site), "created_at": now, "updated_at": now}
        _write(conn, insert(_s).values(id=site.id, org_id=org_id, **values))
        _record(
            uc, org_id, "net.site_created", actor, subject_of("site", site.id), **_site_fields(site)
        )
    return site


def get_site(conn: Connection, org_id: str, site_id: str) -> Site:
    row = conn.execute(select(_s).where(_s.c.org_id == org_id, _s.c.id == site_id)).mappings()
    found = row.first()
    if found is None:
        raise NotFound("site not found")
    return _site(found)


def list_sites(conn: Connection, org_id: str) -> list[Site]:
    rows = conn.execute(select(_s).where(_s.c.org_id == org_id).order_by(_s.c.name, _s.c.id))
    return [_site(m) for m in rows.mappings()]


def update_site(
    conn: Connection,
    org_id: str,
    site_id: str,
    *,
    name: str | None = None,
    tunnel: TunnelKind | None = None,
    endpoint: str | None = None,
    port: int | None = None,
    vni: int | None = None,
    inner: Inner | None = None,
    site_mac: str | None = None,
    actor: str,
    now: datetime,
) -> Site:
    """Replace the given fields; the rest are kept (see `Site.changed` for the port, and
    for `inner` and `site_mac` when the tunnel kind changes)."""
    with use_case(conn, now) as uc:
        old = get_site(conn, org_id, site_id)
        address: Address | None = None if endpoint is None else endpoint_of(endpoint)
        site = old.changed(
            now,
            name=None if name is None else check_name(name),
            tunnel=tunnel,
            endpoint=address,
            port=None if port is None else check_port(port),
            vni=None if vni is None else check_vni(vni),
            inner=inner,
            site_mac=site_mac,
        )
        before, after = _site_fields(old), _site_fields(site)
        changed = {k: v for k, v in after.items() if before[k] != v}
        if not changed:
            return old
        if "vni" in changed:
            claims.claim_vni(conn, org_id, site.vni, site_id=site.id)
        if "name" in changed:
            _name_free(conn, _s, org_id, site.name, site.id)
        where = (_s.c.org_id == org_id, _s.c.id == site_id)
        _write(conn, update(_s).where(*where).values(**changed, updated_at=now))
        _record(uc, org_id, "net.site_updated", actor, subject_of("site", site_id), **changed)
    return site


def delete_site(
    conn: Connection, org_id: str, site_id: str, *, force: bool = False, actor: str, now: datetime
) -> list[Network]:
    """Delete a site; with `force` its networks too (returned), else a site that has
    networks is a Conflict."""
    with use_case(conn, now) as uc:
        site = get_site(conn, org_id, site_id)
        networks = list_networks(conn, org_id, site_id)
        if networks and not force:
            raise Conflict(
                f"site {site.name!r} has {len(networks)} network(s): delete them first, "
                "or delete the site with force"
            )
        for network in networks:
            _delete_network(uc, network, actor)
        conn.execute(delete(_s).where(_s.c.org_id == org_id, _s.c.id == site_id))
        _record(
            uc, org_id, "net.site_deleted", actor, subject_of("site", site_id), **_site_fields(site)
        )
    return networks


# -- networks ------------------------------------------------------------------------------


def add_network(
    conn: Connection,
    org_id: str,
    site_id: str,
    *,
    name: str,
    cidr: str,
    actor: str,
    now: datetime,
    ids: NewId = new_id,
) -> Network:
    with use_case(conn, now) as uc:
        get_site(conn, org_id, site_id)  # another org's site: NotFound before any claim
        network = Network(ids(), org_id, site_id, name, prefix_of(cidr), now)
        claims.claim_network(conn, org_id, site_id, network.cidr)
        _name_free(conn, _n, org_id, network.name, network.id)
        values = {"name": network.name, "cidr": str(network.cidr), "created_at": now}
        _write(conn, insert(_n).values(id=network.id, org_id=org_id, site_id=site_id, **values))
        _record(
            uc,
            org_id,
            "net.network_added",
            actor,
            subject_of("network", network.id),
            site_id=site_id,
            name=network.name,
            cidr=str(network.cidr),
        )
    return network


def get_network(conn: Connection, org_id: str, network_id: str) -> Network:
    row = conn.execute(select(_n).where(_n.c.org_id == org_id, _n.c.id == network_id)).mappings()
    found = row.first()
    if found is None:
        raise NotFound("network not found")
    return _network(found)


def list_networks(conn: Connection, org_id: str, site_id: str | None = None) -> list[Network]:
    """The org's networks (of one site when `site_id` is given: NotFound if it is not the
    org's), by name."""
    query = select(_n).where(_n.c.org_id == org_id)
    if site_id is not None:
        get_site(conn, org_id, site_id)
        query = query.where(_n.c.site_id == site_id)
    rows = conn.execute(query.order_by(_n.c.name, _n.c.id)).mappings()
    return [_network(m) for m in rows]


def _delete_network(uc: UseCase, network: Network, actor: str) -> None:
    """The row and its audit event; the caller publishes the org's change once."""
    where = (_n.c.org_id == network.org_id, _n.c.id == network.id)
    uc.conn.execute(delete(_n).where(*where))
    subject = subject_of("network", network.id)
    fields = {"site_id": network.site_id, "name": network.name, "cidr": str(network.cidr)}
    uc.audit(network.org_id, "net.network_deleted", actor, subject, **fields)


def delete_network(
    conn: Connection, org_id: str, network_id: str, *, actor: str, now: datetime
) -> Network:
    with use_case(conn, now) as uc:
        network = get_network(conn, org_id, network_id)
        _delete_network(uc, network, actor)
        uc.change(org_id, Topic.NET, org_id)
    return network
