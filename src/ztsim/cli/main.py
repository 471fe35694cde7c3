"""`ztsim`: run the platform and administer it locally.

Admin commands work on the database directly (they run where the data lives);
remote administration goes through the REST API with a token.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ztsim.cli import aka as aka_cli
from ztsim.cli import demo as demo_cli
from ztsim.cli import dns as dns_cli
from ztsim.cli import esim as esim_cli
from ztsim.cli import serve as serve_cli
from ztsim.cli import simulate as simulate_cli
from ztsim.cli.common import (
    ConfigOpt,
    DataDirOpt,
    OrgOpt,
    err,
    fail,
    org_transaction,
    out,
    platform_for,
)
from ztsim.clock import utc_now
from ztsim.errors import ZtsimError
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.inventory import repository as inventory
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.node import platform as node
from ztsim.node import up as up_node
from ztsim.sealing import KEY_BYTES, format_key

app = typer.Typer(help="ztsim: a Zero Trust SIM platform.", no_args_is_help=True)
sims_app = typer.Typer(help="SIM inventory.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="The key-encryption key that seals SIM secrets.", no_args_is_help=True)
app.add_typer(sims_app, name="sims")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(aka_cli.app, name="aka")
app.command("demo")(demo_cli.demo)
app.command("simulate")(simulate_cli.simulate)
app.add_typer(esim_cli.app, name="esim")
app.add_typer(serve_cli.app, name="serve")
serve_cli.app.command("dns")(dns_cli.serve_dns)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command()
def init(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    org_name: Annotated[str, typer.Option("--org-name")] = "My Company",
    slug: Annotated[str, typer.Option("--slug")] = "default",
) -> None:
    """Create the data directory, the master key, the first org and its first admin token."""
    platform = platform_for(config, data_dir, create_key=True)
    try:
        org, token = node.init_org(platform, org_name, slug)
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Created org [bold]{org.name}[/bold] ({org.slug}) in {platform.settings.data_dir}")
    out.print("Admin token (shown once, store it now):")
    out.print(token, markup=False, highlight=False)


@app.command()
def up(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run every role in one process: the API (with DoH), RADIUS AAA and the DNS gateway.

    On a fresh data directory it first creates an org and prints its admin token once."""
    platform = platform_for(config, data_dir, create_key=True)
    if not node.has_org(platform):
        org, token = node.init_org(platform, "My Company", "default")
        out.print(f"Created org [bold]{org.name}[/bold]. Admin token (shown once, store it now):")
        out.print(token, markup=False, highlight=False)
    out.print(f"API: http://{platform.settings.api_host}:{platform.settings.api_port}/docs")
    asyncio.run(up_node.run_until_stopped(platform))


@sims_app.command("import")
def sims_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    kind: Annotated[SimKind, typer.Option("--kind")] = SimKind.PHYSICAL,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Import a SIM vendor batch file (CSV), all or nothing."""
    platform = platform_for(config, data_dir)
    text = file.read_text(encoding="utf-8-sig")
    total = max(text.count("\n"), 1)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        checking = progress.add_task("checking", total=total)
        parsed = parse_stock_csv(text, on_progress=lambda n: progress.update(checking, completed=n))
        progress.update(checking, completed=total)
        storing = progress.add_task("sealing and storing", total=len(parsed.rows))
        with org_transaction(platform, org) as (conn, org_id):
            record = service.import_stock(
                conn,
                platform.sealer,
                org_id,
                parsed,
                filename=file.name,
                kind=kind,
                actor=_actor(),
                now=utc_now(),
                on_progress=lambda n: progress.update(storing, completed=n),
            )
    if record.status != "imported":
        table = Table("line", "field", "error", title=f"{file.name}: nothing imported")
        for e in record.errors:
            table.add_row(str(e["line"]), str(e["field"]), str(e["message"]))
        err.print(table)
        raise typer.Exit(1)
    out.print(f"Imported {record.imported} SIMs from {file.name} (import {record.id}).")
    if parsed.ignored_columns:
        out.print(f"Ignored columns: {', '.join(parsed.ignored_columns)}")


@sims_app.command("list")
def sims_list(
    state: Annotated[SimState | None, typer.Option("--state")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List SIMs (ordered by ICCID)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        sims, more = inventory.list_sims(
            conn, org_id, inventory.SimFilter(state=state), limit=limit
        )
    table = Table("ICCID", "IMSI", "MSISDN", "kind", "state", "identity")
    for s in sims:
        table.add_row(s.iccid, s.imsi, s.msisdn or "", s.kind, s.state, s.identity_id or "")
    out.print(table)
    if more:
        out.print(f"(more than {limit}; use --limit or the API's cursor)")


@sims_app.command("suspend")
def sims_suspend(
    iccid: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Suspend an active SIM."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        sim = service.change_state(
            conn, org_id, iccid, SimAction.SUSPEND, actor=_actor(), reason=reason, now=utc_now()
        )
    out.print(f"SIM {sim.iccid} is {sim.state}.")


@tokens_app.command("create")
def tokens_create(
    role: Annotated[Role, typer.Option("--role")],
    name: Annotated[str, typer.Option("--name")] = "cli",
    identity: Annotated[str | None, typer.Option("--identity", help="For --role self.")] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API token; it is printed once."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        info, token = token_store.issue(
            conn,
            org_id,
            name=name,
            role=role,
            identity_id=identity,
            created_by=_actor(),
            now=utc_now(),
        )
    err.print(f"Token {info.id} ({info.role}), shown once:")
    out.print(token, markup=False, highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option("--new-key-file", help="With ZTSIM_MASTER_KEY: the new key, saved first."),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Re-wrap every sealed secret under a new key-encryption key."""
    platform = platform_for(config, data_dir)
    try:
        count = node.rotate_master_key(platform, new_key_file)
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Re-sealed {count} rows under the new key-encryption key.")
    if new_key_file is not None:
        out.print("Now set ZTSIM_MASTER_KEY to the new key and restart every node.")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random key-encryption key (for ZTSIM_MASTER_KEY)."""
    out.print(format_key(os.urandom(KEY_BYTES)), markup=False, highlight=False)
