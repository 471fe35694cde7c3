"""`ztsim dns device-tokens list|create|revoke`: DNS-over-HTTPS tokens for devices (a phone
off the mobile network still gets its owner's policy at /dns-query/<token>), through the
API's use cases (`ztsim.dns.store.service`). A token is printed once, at creation, and
stored as its digest; afterwards only its id and prefix are shown."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import or_, select

from ztsim.cli import lookup, tables
from ztsim.cli.common import (
    ConfigOpt,
    DataDirOpt,
    OrgOpt,
    err,
    org_transaction,
    out,
    platform_for,
)
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.dns.store import service
from ztsim.errors import InvalidInput, NotFound

app = typer.Typer(help="DNS-over-HTTPS tokens for devices.", no_args_is_help=True)

_d, _t = schema.devices, schema.dns_device_tokens


@app.command("list")
def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List device tokens (never the tokens themselves)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        found = conn.execute(
            select(_t.c.id, _t.c.prefix, _t.c.revoked_at, _d.c.imei, _d.c.name, _d.c.owner_id)
            .join(_d, _d.c.id == _t.c.device_id)
            .where(_t.c.org_id == org_id)
            .order_by(_t.c.created_at, _t.c.id)
        ).all()
        owners = lookup.identity_names(conn, org_id, (r.owner_id or "" for r in found))
    rows = [
        (
            r.prefix,
            r.imei,
            r.name,
            owners.get(r.owner_id, "") if r.owner_id else "",
            "revoked" if r.revoked_at is not None else "valid",
            r.id,
        )
        for r in found
    ]
    columns = (
        Col("prefix", whole=True),
        Col("IMEI", whole=True),
        Col("device", drop=2),
        Col("owner", whole=True, drop=1),
        Col("state", whole=True),
        Col("id", whole=True),
    )
    tables.show(out, columns, rows)
    out.print(lookup.count(len(rows), "device token"))


@app.command("create")
def create(
    device: Annotated[str, typer.Argument(help="The device's IMEI, id or name.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a DoH token for a device; it is printed once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        found = lookup.device_id(conn, org_id, device)
        token_id, token = service.issue_device_token(
            conn, org_id, found, actor=actor(), now=utc_now()
        )
    err.print(f"Device token {token_id}, shown once; the device's DoH path is /dns-query/<token>:")
    out.print(token, markup=False, highlight=False)


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(help="The token's id or shown prefix.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a device token: it stops working once the DNS gateways apply the change."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        ids = conn.scalars(
            select(_t.c.id).where(
                _t.c.org_id == org_id,
                _t.c.revoked_at.is_(None),
                or_(_t.c.id == token, _t.c.prefix == token),
            )
        ).all()
        if not ids:
            # Not echoed: an admin may paste the token itself here.
            raise NotFound("no valid device token with that id or prefix in this org")
        if len(ids) > 1:
            raise InvalidInput(f"{len(ids)} device tokens match: use the id")
        service.revoke_device_token(conn, org_id, ids[0], actor=actor(), now=utc_now())
    out.print(f"Device token {ids[0]} is revoked.", highlight=False)
