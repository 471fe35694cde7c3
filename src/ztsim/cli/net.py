"""`ztsim sites` and `ztsim networks`: where tunnels from the gateway end, and the private
networks behind them, through the API's use cases (`ztsim.net.store.sites`). A site or a
network is named by its name or its id. A Geneve site that takes only Ethernet inside
(Open vSwitch) is created with `--inner ethernet --site-mac MAC`; ztsim's own MAC on its
tunnel is printed, for the site's neighbour entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import NotFound
from ztsim.net.sites import MAX_VNI, MIN_VNI, Network, Site, inner_kind, tunnel_kind
from ztsim.net.store import sites as store

if TYPE_CHECKING:
    from sqlalchemy import Connection

sites = typer.Typer(help="Sites: where tunnels from the gateway end.", no_args_is_help=True)
networks = typer.Typer(help="Private networks behind sites.", no_args_is_help=True)


def _site(conn: Connection, org_id: str, name_or_id: str) -> Site:
    for site in store.list_sites(conn, org_id):
        if name_or_id in (site.id, site.name):
            return site
    raise NotFound(f"no site {name_or_id!r} in this org")


@sites.command("create")
def create(
    name: Annotated[str, typer.Option("--name")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The tunnel's far end (an IP).")],
    vni: Annotated[int, typer.Option("--vni", min=MIN_VNI, max=MAX_VNI, help="24-bit VNI.")],
    tunnel: Annotated[str, typer.Option("--tunnel", help="geneve or vxlan.")] = "geneve",
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="UDP port (default: the tunnel's)."),
    ] = None,
    inner: Annotated[
        str,
        typer.Option(
            "--inner", help="Geneve only: ip, or ethernet for a site that takes only frames (OVS)."
        ),
    ] = "ip",
    site_mac: Annotated[
        str | None,
        typer.Option("--site-mac", help="With --inner ethernet: the MAC behind the site's end."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register a site: a tunnel endpoint and its VNI."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        s = store.create_site(
            conn,
            org_id,
            name=name,
            tunnel=tunnel_kind(tunnel),
            endpoint=endpoint,
            port=port,
            vni=vni,
            inner=inner_kind(inner),
            site_mac=site_mac,
            actor=actor(),
            now=utc_now(),
        )
    out.print(f"Created site {s.name}: {s.tunnel} to {s.endpoint} port {s.port}, VNI {s.vni}.")
    if s.gateway_mac is not None:
        out.print(f"Ethernet inside, frames to {s.site_mac} from ztsim's MAC {s.gateway_mac}.")
        out.print(
            "Give ztsim's MAC a permanent neighbour entry at the site: nothing in the tunnel "
            "answers ARP."
        )


@sites.command("list")
def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List sites."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = store.list_sites(conn, org_id)
        counts = {s.id: 0 for s in items}
        for n in store.list_networks(conn, org_id):
            counts[n.site_id] += 1
    rows = [
        (
            s.name,
            s.tunnel.value,
            s.inner.value,
            str(s.endpoint),
            str(s.port),
            str(s.vni),
            str(counts[s.id]),
        )
        for s in items
    ]
    columns = (
        Col("name"),
        Col("tunnel", whole=True),
        Col("inner", whole=True, drop=3),
        Col("endpoint", whole=True),
        Col("port", whole=True, drop=2),
        Col("VNI", whole=True),
        Col("networks", whole=True, drop=1),
    )
    tables.show(out, columns, rows)
    out.print(lookup.count(len(items), "site"))


@sites.command("delete")
def delete(
    site: Annotated[str, typer.Argument(help="The site's name or id.")],
    force: Annotated[bool, typer.Option("--force", help="Delete its networks too.")] = False,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a site (one that has networks only with --force, which deletes them too)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        found = _site(conn, org_id, site)
        gone = store.delete_site(conn, org_id, found.id, force=force, actor=actor(), now=utc_now())
    also = f" and {lookup.count(len(gone), 'network')}" if gone else ""
    out.print(f"Deleted site {found.name}{also}.")


@networks.command("add")
def add(
    site: Annotated[str, typer.Argument(help="The site's name or id.")],
    cidr: Annotated[str, typer.Argument(help="The network's prefix, e.g. 10.1.0.0/16.")],
    name: Annotated[str, typer.Option("--name")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a private network behind a site."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        found = _site(conn, org_id, site)
        n = store.add_network(
            conn, org_id, found.id, name=name, cidr=cidr, actor=actor(), now=utc_now()
        )
    out.print(f"Added network {n.name} ({n.cidr}) behind site {found.name}.")


@networks.command("list")
def network_list(
    site: Annotated[str | None, typer.Option("--site", help="Only this site's.")] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List private networks and their sites."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        names = {s.id: s.name for s in store.list_sites(conn, org_id)}
        chosen = None if site is None else _site(conn, org_id, site).id
        items: list[Network] = store.list_networks(conn, org_id, chosen)
    rows = [(n.name, str(n.cidr), names.get(n.site_id, n.site_id)) for n in items]
    tables.show(out, (Col("name"), Col("cidr", whole=True), Col("site")), rows)
    out.print(lookup.count(len(items), "network"))


@networks.command("delete")
def network_delete(
    network: Annotated[str, typer.Argument(help="The network's name or id.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a private network: its route is withdrawn on the next reload."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        match = [n for n in store.list_networks(conn, org_id) if network in (n.id, n.name)]
        if not match:
            raise NotFound(f"no network {network!r} in this org")
        store.delete_network(conn, org_id, match[0].id, actor=actor(), now=utc_now())
    out.print(f"Deleted network {match[0].name} ({match[0].cidr}).")
