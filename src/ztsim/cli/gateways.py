"""`ztsim gateways` and `ztsim pools`: the packet gateways that may ask RADIUS, and the
org's UE address pool, through the API's use cases (`ztsim.radius.store.service`). A
shared secret is read from a file or typed at a hidden prompt, never taken on the command
line (where `ps` and shell history would keep it), and never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.identities import actor
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import InvalidInput, NotFound
from ztsim.radius.serve.coa import DEFAULT_COA_PORT
from ztsim.radius.store import registry, service

gateways = typer.Typer(help="Packet gateways (RADIUS clients).", no_args_is_help=True)
pools = typer.Typer(help="The org's UE address pool.", no_args_is_help=True)


def _secret(secret_file: Path | None) -> str:
    if secret_file is None:
        return str(typer.prompt("Shared secret", hide_input=True, confirmation_prompt=True))
    try:
        text = secret_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the secret file is not UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the secret file: {exc.strerror}") from None
    return text.rstrip("\r\n")


@gateways.command("create")
def create(
    name: Annotated[str, typer.Option("--name")],
    address: Annotated[str, typer.Option("--address", help="Source address or prefix.")],
    apn: Annotated[list[str], typer.Option("--apn", help="An APN it serves (repeatable).")],
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", dir_okay=False, help="The shared secret (else prompted)."),
    ] = None,
    message_authenticator: Annotated[
        bool, typer.Option(help="Require Message-Authenticator (RFC 3579 §3.2).")
    ] = True,
    coa_port: Annotated[int, typer.Option("--coa-port", min=1, max=65535)] = DEFAULT_COA_PORT,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register a packet gateway."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        g = service.create_gateway(
            conn,
            platform.sealer,
            org_id,
            name=name,
            address=address,
            secret=_secret(secret_file),
            apns=apn,
            require_message_authenticator=message_authenticator,
            coa_port=coa_port,
            actor=actor(),
            now=utc_now(),
        )
    out.print(f"Registered gateway {g.name} at {g.address} for {', '.join(g.apns)}.")


@gateways.command("list")
def list_all(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List gateways (secrets are never shown)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = registry.list_gateways(conn, org_id)
    rows = [
        (
            g.name,
            g.address,
            ", ".join(g.apns),
            "required" if g.require_message_authenticator else "optional",
            str(g.coa_port),
        )
        for g in items
    ]
    columns = (
        Col("name"),
        Col("address", whole=True),
        Col("APNs"),
        Col("Message-Authenticator", whole=True, drop=2),
        Col("CoA port", whole=True, drop=1),
    )
    tables.show(out, columns, rows)
    out.print(lookup.count(len(items), "gateway"))


@gateways.command("delete")
def delete(
    gateway: Annotated[str, typer.Argument(help="The gateway's name or id.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a gateway: its requests are dropped from the next reload on."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        match = [g for g in registry.list_gateways(conn, org_id) if gateway in (g.id, g.name)]
        if not match:
            raise NotFound(f"no gateway {gateway!r} in this org")
        service.delete_gateway(conn, org_id, match[0].id, actor=actor(), now=utc_now())
    out.print(f"Deleted gateway {match[0].name}.")


@pools.command("create")
def pool_create(
    cidr: Annotated[str, typer.Argument(help="Dynamic addresses, an IPv4 prefix.")],
    static_cidr: Annotated[
        str | None, typer.Option("--static", help="Static addresses (another prefix).")
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create the org's address pool."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        pool = service.create_pool(
            conn, org_id, cidr=cidr, static_cidr=static_cidr, actor=actor(), now=utc_now()
        )
    static = f" (static {pool.static_cidr})" if pool.static_cidr else ""
    out.print(f"Created pool {pool.cidr}{static}.")


@pools.command("list")
def pool_list(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the org's address pools."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items = registry.list_pools(conn, org_id)
    rows = [(p.cidr, p.static_cidr or "") for p in items]
    tables.show(out, (Col("dynamic", whole=True), Col("static", whole=True)), rows)
    out.print(lookup.count(len(items), "pool"))
