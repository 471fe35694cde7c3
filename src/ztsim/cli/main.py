"""`ztsim`: run the platform and administer it locally.

Admin commands work on the database directly (they run where the data lives);
remote administration goes through the REST API with a token.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ztsim.cli import aka as aka_cli
from ztsim.cli import demo as demo_cli
from ztsim.cli import dns as dns_cli
from ztsim.cli import dns_policy, lookup, tables
from ztsim.cli import esim as esim_cli
from ztsim.cli import gateways as gateways_cli
from ztsim.cli import groups as groups_cli
from ztsim.cli import identities as identities_cli
from ztsim.cli import serve as serve_cli
from ztsim.cli import sims as sims_cli
from ztsim.cli import simulate as simulate_cli
from ztsim.cli import tokens as tokens_cli
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
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import ZtsimError
from ztsim.inventory import repository as inventory
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import SimKind
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
app.add_typer(identities_cli.app, name="identities")
app.add_typer(groups_cli.groups, name="groups")
app.add_typer(groups_cli.fleets, name="fleets")
app.add_typer(gateways_cli.gateways, name="gateways")
app.add_typer(gateways_cli.pools, name="pools")
app.add_typer(dns_policy.app, name="dns")
sims_app.command("assign")(sims_cli.assign)
sims_app.command("activate")(sims_cli.activate)
sims_app.command("resume")(sims_cli.resume)
sims_app.command("retire")(sims_cli.retire)
tokens_app.command("create")(tokens_cli.create)
tokens_app.command("list")(tokens_cli.list_all)
tokens_app.command("revoke")(tokens_cli.revoke)


SIM_COLUMNS = (
    Col("ICCID", whole=True),
    Col("IMSI", whole=True),
    Col("MSISDN", whole=True),
    Col("kind", whole=True, drop=2),
    Col("state", whole=True),
    Col("identity", whole=True, drop=1),
)


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
    kind: Annotated[SimKind, typer.Option("--kind", case_sensitive=False)] = SimKind.PHYSICAL,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Import a SIM vendor batch file (CSV), all or nothing."""
    platform = platform_for(config, data_dir)

    def lines() -> Iterator[str]:
        # Read again for each pass, a line at a time: the file is never held whole.
        with file.open(encoding="utf-8-sig", newline="") as handle:
            yield from handle

    columns = (TextColumn("{task.description}"), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def show(stage: str, rows: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"{stage} rows", total=None)
            progress.update(tasks[stage], completed=rows)

        with org_transaction(platform, org) as (_, org_id):
            pass
        try:
            record = service.import_stock_file(
                platform.engine,
                platform.sealer,
                org_id,
                lines,
                filename=file.name,
                kind=kind,
                actor=_actor(),
                now=utc_now(),
                on_progress=show,
            )
        except ZtsimError as exc:
            raise fail(exc) from None
    if record.status != "imported":
        rows = [(str(e["line"]), str(e["field"]), str(e["message"])) for e in record.errors]
        problems = (Col("line", whole=True), Col("field", whole=True), Col("error"))
        tables.show(err, problems, rows, title=f"{file.name}: nothing imported")
        if record.error_count > len(record.errors):
            err.print(f"{record.error_count} errors in all; the first {len(record.errors)} shown.")
        raise typer.Exit(1)
    imported = lookup.count(record.imported, "SIM")
    out.print(f"Imported {imported} from {file.name} (import {record.id}).")


@sims_app.command("list")
def sims_list(
    state: Annotated[SimState | None, typer.Option("--state", case_sensitive=False)] = None,
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
        names = lookup.identity_names(conn, org_id, (s.identity_id or "" for s in sims))
    # Identifiers are never cut: on a narrow terminal the kind, then the holder, go first.
    rows = [
        (
            s.iccid,
            s.imsi,
            s.msisdn or "",
            s.kind.value,
            s.state.value,
            names.get(s.identity_id, s.identity_id) if s.identity_id else "",
        )
        for s in sims
    ]
    tables.show(out, SIM_COLUMNS, rows)
    out.print(lookup.count(len(sims), "SIM"))
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
    """Suspend an active SIM (by ICCID, IMSI or MSISDN)."""
    sims_cli.transition(iccid, SimAction.SUSPEND, reason, org, config, data_dir)


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
