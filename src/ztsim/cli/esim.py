"""`ztsim esim`: order eSIMs for employees and print their onboarding packs."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection

from ztsim.cli import lookup, tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, err, org_transaction, out, platform_for
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.dns.store import repository as dns_store
from ztsim.errors import InvalidInput
from ztsim.esim import service
from ztsim.esim.config import issued_placeholder_warning, placeholder_warning
from ztsim.esim.pack import write_zip
from ztsim.esim.privacy import DnsLogging, DnsLogMode
from ztsim.node import platform as node

app = typer.Typer(help="eSIM onboarding: orders and printable packs.", no_args_is_help=True)

UserOpt = Annotated[
    list[str] | None, typer.Option("--user", help="Identity id, email or exact name (repeatable).")
]
GroupOpt = Annotated[str | None, typer.Option("--group", help="Every member of this group.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def warn(line: str | None) -> None:
    """One line on stderr, unwrapped, shown as it is."""
    if line is not None:
        err.print(line, soft_wrap=True, markup=False, highlight=False)


def dns_logging(conn: Connection, org_id: str) -> DnsLogging:
    """The org's DNS privacy facts for its packs (the esim package does not read DNS)."""
    settings, _ = dns_store.get_settings(conn, org_id)
    return DnsLogging(DnsLogMode(settings.privacy.value), settings.pseudonymise)


def _targets(
    conn: Connection, org_id: str, users: list[str] | None, group: str | None
) -> list[str]:
    if not users and not group:
        raise InvalidInput("name --user or --group")
    ids = [lookup.identity_id(conn, org_id, u) for u in users or []]
    if group is not None:
        members = lookup.collection(conn, org_id, group, fleet=False).member_ids
        ids += [m for m in members if m not in ids]
    return ids


@app.command("order")
def order(
    user: UserOpt = None,
    group: GroupOpt = None,
    eid: Annotated[str | None, typer.Option("--eid", help="Bind to this eUICC (one user).")] = None,
    confirmation: Annotated[
        bool, typer.Option("--confirmation-code", help="Also require a confirmation code.")
    ] = False,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Order an eSIM for each named employee who has no open order yet."""
    platform = platform_for(config, data_dir)
    esim = node.esim_config(platform.settings)
    warn(placeholder_warning(esim.smdp_address))
    codes = ["code (shown once)"] if confirmation else []
    rows: list[tuple[str, ...]] = []
    with org_transaction(platform, org) as (conn, org_id):
        targets = _targets(conn, org_id, user, group)
        if eid is not None and len(targets) != 1:
            raise InvalidInput("--eid binds one order: name exactly one employee")
        bulk = service.create_orders(
            conn,
            platform.sealer,
            org_id,
            targets,
            config=esim,
            actor=_actor(),
            now=utc_now(),
            rand=os.urandom,
            eid=eid,
            confirmation=confirmation,
        )
        for issued in bulk.issued:
            o = issued.order
            code = [issued.confirmation_code or ""] if confirmation else []
            rows.append((o.identity_id, o.iccid, *code, o.id))
        names = lookup.identity_names(conn, org_id, targets)
    columns = [Col("identity", whole=True), Col("ICCID", whole=True)]
    columns += [Col(code, whole=True) for code in codes] + [Col("order", whole=True, drop=1)]
    named = [(names.get(ident, ident), *rest) for ident, *rest in rows]
    tables.show(out, columns, named)
    out.print(lookup.count(len(rows), "eSIM order") + " issued.")
    if bulk.skipped:
        shown = ", ".join(names.get(s, s) for s in bulk.skipped)
        out.print(f"{len(bulk.skipped)} already had an open order: {shown}")
    out.print("Print the packs with: ztsim esim pack --group ... -o pack.zip")


@app.command("pack")
def pack(
    output: Annotated[Path, typer.Option("-o", "--output", help="The zip to write.")],
    user: UserOpt = None,
    group: GroupOpt = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the onboarding packs (HTML, PDF, QR PNG and SVG per employee) into a zip."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        targets = _targets(conn, org_id, user, group)
        bulk = service.pack_pages(
            conn, platform.sealer, org_id, targets, utc_now(), dns=dns_logging(conn, org_id)
        )
    warn(issued_placeholder_warning(page.code.smdp_address for page in bulk.pages))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    tmp = output.with_name(output.name + ".part")
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("rendering packs", total=len(bulk.pages))
        # Packs hold bearer secrets: readable by the owner only, and whole or not at all.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            count = write_zip(
                bulk.pages, handle, on_progress=lambda n: progress.update(task, completed=n)
            )
        tmp.replace(output)
    out.print(f"Wrote {count} onboarding packs to {output}.")
    if bulk.skipped:
        out.print(
            f"{len(bulk.skipped)} without a usable order (none, used, expired or cancelled): "
            + ", ".join(bulk.skipped)
        )


@app.command("reissue")
def reissue(
    order_id: Annotated[str, typer.Argument(help="The eSIM order to re-issue.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (lost phone, new phone).")],
    eid: Annotated[str | None, typer.Option("--eid", help="Bind to this eUICC.")] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Lost or new phone: re-issue an order (or ask a second admin, when the org requires it)."""
    from ztsim.cli import risk
    from ztsim.risk.approvals import SwapRequest
    from ztsim.risk.store import swaps

    platform = platform_for(config, data_dir)
    esim = node.esim_config(platform.settings)
    tools = swaps.SwapTools(platform.sealer, esim, os.urandom)
    with org_transaction(platform, org) as (conn, org_id):
        done = swaps.request_reissue(
            conn,
            tools,
            org_id,
            order_id,
            actor=_actor(),
            requester=risk.person(),
            reason=reason,
            now=utc_now(),
            eid=eid,
        )
    if isinstance(done, SwapRequest):
        risk.say_pending(done)
        return
    warn(placeholder_warning(esim.smdp_address))
    o = done.order
    out.print(f"Re-issued: new order {o.id} (ICCID {o.iccid}).", highlight=False)
    out.print("Print the pack with: ztsim esim pack --user ... -o pack.zip")
