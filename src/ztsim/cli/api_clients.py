"""`ztsim api-clients create|list|revoke`: the org's CAMARA API clients (OAuth 2.0 client
credentials), through the same store as the API (`ztsim.risk.store.clients`). A client
secret is printed once, at creation; afterwards only the client id is shown."""

from __future__ import annotations

from typing import Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, err, org_transaction, out, platform_for
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import InvalidInput, NotFound
from ztsim.risk.clients import SCOPES, format_scopes
from ztsim.risk.store import clients

app = typer.Typer(help="CAMARA API clients (OAuth 2.0 client credentials).", no_args_is_help=True)

CLIENT_COLUMNS = (
    Col("id", whole=True),
    Col("name"),
    Col("scopes"),
    Col("number", whole=True, drop=1),
    Col("state", whole=True),
)


@app.command("create")
def create(
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"A scope to grant (repeat): {', '.join(sorted(SCOPES))}."),
    ],
    name: Annotated[str, typer.Option("--name")] = "api-client",
    phone_number: Annotated[
        str | None,
        typer.Option(
            "--phone-number",
            help="Bind the client's tokens to this number of the org (E.164, '+...'): 3-legged.",
        ),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register an API client; its secret is printed once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        client, secret = clients.create_client(
            conn,
            org_id,
            name=name,
            scopes=scope,
            phone_number=phone_number,
            actor=actor(),
            now=utc_now(),
        )
    err.print(f"API client {client.name} ({format_scopes(client.scopes)}).", highlight=False)
    out.print(f"client_id: {client.id}", markup=False, highlight=False)
    err.print("Its secret, shown once:")
    out.print(f"client_secret: {secret}", markup=False, highlight=False)


@app.command("list")
def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List API clients (never their secrets)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = clients.list_clients(conn, org_id)
    rows = [
        (
            c.id,
            c.name,
            format_scopes(c.scopes),
            c.phone_number or "",
            "revoked" if c.revoked_at is not None else "active",
        )
        for c in items
    ]
    tables.show(out, CLIENT_COLUMNS, rows)
    out.print(lookup.count(len(items), "API client"))


@app.command("revoke")
def revoke(
    client: Annotated[str, typer.Argument(help="The client's id or name.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API client: its tokens stop working at once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        matches = [c for c in clients.list_clients(conn, org_id) if client in (c.id, c.name)]
        if not matches:
            # Not echoed: an admin may paste a secret here by mistake.
            raise NotFound("no API client with that id or name in this org")
        if len(matches) > 1:
            raise InvalidInput(f"{len(matches)} API clients match: use the id")
        done = clients.revoke_client(conn, org_id, matches[0].id, actor=actor(), now=utc_now())
    out.print(f"API client {done.id} ({done.name}) is revoked.", highlight=False)
