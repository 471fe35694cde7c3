"""`ztsim sims assign|activate|resume|retire`: the SIM lifecycle through the same use case
as the API's `/sims/{iccid}/...` routes (its audit event and its change for the planes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ztsim.cli import lookup
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.identities import actor
from ztsim.clock import utc_now
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction

SimArg = Annotated[str, typer.Argument(help="ICCID, IMSI or MSISDN.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


def transition(
    key: str,
    action: SimAction,
    reason: str,
    org: str | None,
    config: Path | None,
    data_dir: Path | None,
    identity: str | None = None,
) -> None:
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        iccid = lookup.sim(conn, org_id, key).iccid
        holder = None if identity is None else lookup.identity_id(conn, org_id, identity)
        sim = service.change_state(
            conn,
            org_id,
            iccid,
            action,
            actor=actor(),
            reason=reason,
            now=utc_now(),
            identity_id=holder,
        )
        shown = lookup.identity_names(conn, org_id, [sim.identity_id or ""])
    who = f" ({shown[sim.identity_id]})" if sim.identity_id and sim.identity_id in shown else ""
    out.print(f"SIM {sim.iccid} is {sim.state.value}{who}.", highlight=False)


def assign(
    sim: SimArg,
    identity: Annotated[str, typer.Option("--identity", help="Id, email or exact name.")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Give a stock SIM to an identity."""
    transition(sim, SimAction.ASSIGN, reason, org, config, data_dir, identity)


def activate(
    sim: SimArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Activate an assigned SIM: it may attach."""
    transition(sim, SimAction.ACTIVATE, reason, org, config, data_dir)


def resume(
    sim: SimArg,
    reason: Annotated[str, typer.Option("--reason")] = "",
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Resume a suspended SIM."""
    transition(sim, SimAction.RESUME, reason, org, config, data_dir)


def retire(
    sim: SimArg,
    reason: ReasonOpt,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Retire a SIM for good."""
    transition(sim, SimAction.RETIRE, reason, org, config, data_dir)
