"""`ztsim identities`: people and service identities, through the API's use cases
(`ztsim.identity.service`: the same audit events and changes for the planes)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.identity import repository, service
from ztsim.identity.models import IdentityKind

app = typer.Typer(help="Identities: people and service identities.", no_args_is_help=True)

IdentityArg = Annotated[str, typer.Argument(help="Identity id, email or exact name.")]
IDENTITY_COLUMNS = (
    Col("name"),
    Col("email", whole=True),
    Col("kind", whole=True, drop=2),
    Col("enabled", whole=True),
    Col("id", whole=True, drop=3),
)


def actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    kind: Annotated[IdentityKind, typer.Option("--kind", case_sensitive=False)] = (
        IdentityKind.USER
    ),
    email: Annotated[str | None, typer.Option("--email")] = None,
    external_id: Annotated[str | None, typer.Option("--external-id")] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an identity."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        ident = service.create_identity(
            conn,
            org_id,
            kind=kind,
            name=name,
            email=email,
            external_id=external_id,
            actor=actor(),
            now=utc_now(),
        )
    out.print(f"Created {ident.kind.value} {ident.name} ({ident.email or 'no email'}): {ident.id}")


@app.command("list")
def list_all(
    kind: Annotated[IdentityKind | None, typer.Option("--kind", case_sensitive=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List identities."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items, more = repository.list_identities(conn, org_id, kind=kind, limit=limit)
    rows = [
        (i.name, i.email or "", i.kind.value, "yes" if i.enabled else "no", i.id) for i in items
    ]
    tables.show(out, IDENTITY_COLUMNS, rows)
    out.print(
        lookup.count(len(items), "identity", "identities") + (" (more: --limit)" if more else "")
    )


def _set_enabled(
    key: str, enabled: bool, org: str | None, config: Path | None, data_dir: Path | None
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        ident_id = lookup.identity_id(conn, org_id, key)
        ident = service.update_identity(
            conn, org_id, ident_id, enabled=enabled, actor=actor(), now=utc_now()
        )
    out.print(f"Identity {ident.email or ident.name} is {'enabled' if enabled else 'disabled'}.")


@app.command("disable")
def disable(
    identity: IdentityArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Disable an identity: its SIMs are refused at the next attach or reload."""
    _set_enabled(identity, False, org, config, data_dir)


@app.command("enable")
def enable(
    identity: IdentityArg, org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Enable a disabled identity."""
    _set_enabled(identity, True, org, config, data_dir)


@app.command("rename")
def rename(
    identity: IdentityArg,
    name: Annotated[str, typer.Argument(help="The new display name.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Give an identity a new display name."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        ident_id = lookup.identity_id(conn, org_id, identity)
        ident = service.update_identity(
            conn, org_id, ident_id, name=name, actor=actor(), now=utc_now()
        )
    out.print(f"Identity {ident.email or ident.id} is now named {ident.name}.", highlight=False)
