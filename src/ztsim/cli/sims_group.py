"""`ztsim sims`: import a vendor batch and list SIMs here; the lifecycle verbs are in
`ztsim.cli.sims`."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ztsim.cli import lookup, tables
from ztsim.cli import sims as sims_cli
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

app = typer.Typer(help="SIM inventory.", no_args_is_help=True)
app.command("assign")(sims_cli.assign)
app.command("activate")(sims_cli.activate)
app.command("resume")(sims_cli.resume)
app.command("retire")(sims_cli.retire)

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


@app.command("import")
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


@app.command("list")
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


@app.command("suspend")
def sims_suspend(
    iccid: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Suspend an active SIM (by ICCID, IMSI or MSISDN)."""
    sims_cli.transition(iccid, SimAction.SUSPEND, reason, org, config, data_dir)
