"""`ztsim risk` (the org's risk settings) and `ztsim swaps` (swap requests waiting for a
second admin under the two-person rule). A local command's person is the operating-system
user who runs it (`cli:<user>`): the approver of a request must be another user."""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any

import typer

from ztsim.cli import tables
from ztsim.cli.common import ConfigOpt, DataDirOpt, OrgOpt, org_transaction, out, platform_for
from ztsim.cli.tables import Col
from ztsim.clock import utc_now
from ztsim.errors import InvalidInput
from ztsim.node import platform as node
from ztsim.risk.approvals import RequestState, SwapKind, SwapRequest, cli_requester
from ztsim.risk.settings import RiskSettings
from ztsim.risk.store import swaps as store
from ztsim.risk.store.settings import get_settings, put_settings

app = typer.Typer(help="SIM-swap defence: the org's risk settings.", no_args_is_help=True)
swaps = typer.Typer(
    help="Swap requests waiting for a second admin (the two-person rule).", no_args_is_help=True
)


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def person() -> str:
    return cli_requester(getpass.getuser())


def _show_settings(settings: RiskSettings) -> None:
    rows = [
        ("approval required", "yes" if settings.approval_required else "no"),
        ("cooling-off", settings.as_json()["cooling_off"]),
        ("monitored days", str(settings.monitored_days)),
    ]
    for name, config in settings.as_json()["detectors"].items():
        rows.append((f"detector {name}", f"{config['response']}"))
    tables.show(out, (Col("setting", whole=True), Col("value")), rows)


@app.command("show")
def show(org: OrgOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show the org's risk settings."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        settings = get_settings(conn, org_id)
    _show_settings(settings)


def _detector_changes(items: list[str]) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, response = item.partition("=")
        if not sep or not name or not response:
            raise InvalidInput(f"--detector {item!r}: NAME=RESPONSE, e.g. twin_session=suspend")
        changes[name.strip()] = {"response": response.strip()}
    return changes


@app.command("set")
def set_settings(
    approval_required: Annotated[
        bool | None,
        typer.Option(
            "--approval-required/--no-approval-required",
            help="Make re-issues and SIM replacements wait for a second admin.",
        ),
    ] = None,
    cooling_off: Annotated[
        str | None,
        typer.Option("--cooling-off", help="How long a swapped SIM is `sim.swap_recent` (24h)."),
    ] = None,
    monitored_days: Annotated[
        int | None, typer.Option("--monitored-days", help="Days of number history kept.")
    ] = None,
    detector: Annotated[
        list[str] | None,
        typer.Option("--detector", help="NAME=RESPONSE (alert, restrict, suspend); repeatable."),
    ] = None,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change risk settings: each option given replaces that setting; the rest are kept."""
    changes: dict[str, Any] = {}
    if approval_required is not None:
        changes["approval_required"] = approval_required
    if cooling_off is not None:
        changes["cooling_off"] = cooling_off
    if monitored_days is not None:
        changes["monitored_days"] = monitored_days
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        if detector:
            changes["detectors"] = _detector_changes(detector)
        settings = get_settings(conn, org_id).updated(changes)
        stored = put_settings(conn, org_id, settings, actor=actor(), now=utc_now())
    out.print("Risk settings saved.", highlight=False)
    _show_settings(stored)


def _what(request: SwapRequest) -> str:
    if request.kind is SwapKind.SIM_REPLACE:
        return f"replace SIM {request.target} by {request.params.get('new_iccid')}"
    return f"re-issue eSIM order {request.target}"


def say_pending(request: SwapRequest) -> None:
    """What a requester is told when their swap waits for approval."""
    out.print(
        f"Swap request {request.id} ({_what(request)}) waits for a second admin's approval "
        f"until {request.expires_at:%Y-%m-%d %H:%M} UTC: ztsim swaps approve {request.id}",
        highlight=False,
        soft_wrap=True,
    )


@swaps.command("list")
def list_requests(
    state: Annotated[
        RequestState | None,
        typer.Option("--state", case_sensitive=False, help="Only requests in this state."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first).")] = 100,
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List swap requests, newest first."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        items, _ = store.list_requests(conn, org_id, utc_now(), state=state, limit=limit)
    rows = [
        (r.id, r.state.value, _what(r), r.requested_by, f"{r.requested_at:%Y-%m-%d %H:%M}")
        for r in items
    ]
    columns = (
        Col("request", whole=True),
        Col("state", whole=True),
        Col("swap"),
        Col("requested by", drop=1),
        Col("requested", drop=2),
    )
    tables.show(out, columns, rows)


@swaps.command("approve")
def approve(
    request_id: Annotated[str, typer.Argument(help="The swap request's id.")],
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Approve a swap request and make the swap (another user than its requester)."""
    platform = platform_for(config, data_dir)
    tools = store.SwapTools(platform.sealer, node.esim_config(platform.settings), os.urandom)
    with org_transaction(platform, org) as (conn, org_id):
        done = store.approve(
            conn, tools, org_id, request_id, actor=actor(), decider=person(), now=utc_now()
        )
    if done.state is RequestState.FAILED:
        out.print(f"The swap failed; request {done.id} is failed: {done.error}", highlight=False)
        raise typer.Exit(1)
    result = dict(done.result or {})
    line = f"Approved: SIM {result.get('old_iccid')} swapped for {result.get('new_iccid')}."
    out.print(line, highlight=False)
    if "new_order_id" in result:
        out.print(
            f"New eSIM order {result['new_order_id']}: print its pack with "
            "ztsim esim pack --user ... -o pack.zip",
            highlight=False,
            soft_wrap=True,
        )


@swaps.command("reject")
def reject(
    request_id: Annotated[str, typer.Argument(help="The swap request's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    org: OrgOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Reject a swap request: nothing is swapped (its requester may withdraw it so)."""
    platform = platform_for(config, data_dir)
    with org_transaction(platform, org) as (conn, org_id):
        done = store.reject(
            conn, org_id, request_id, actor=actor(), decider=person(), reason=reason, now=utc_now()
        )
    out.print(f"Rejected swap request {done.id}.", highlight=False)
