"""`ztsim demo`: the whole loop in one command (what `make demo` runs)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from ztsim.cli.common import ConfigOpt, out, say_error
from ztsim.node import demo as demo_node
from ztsim.node import platform as node

MARKER = ".ztsim-demo"


def _fresh(data_dir: Path) -> None:
    """A demo directory is recreated on every run; anything else is never wiped."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            say_error(
                f"{data_dir} exists and was not made by `ztsim demo`: pass another --data-dir"
            )
            raise typer.Exit(2)
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `ztsim demo`; removed by the next run\n")


def _print(result: demo_node.DemoResult) -> None:
    s, sim = result.summary, result.sim
    out.print(
        Panel.fit(
            "[bold]ztsim demo[/bold]: Acme, 20 employees in 3 groups, 10 meters, one virtual operator"
        )
    )
    table = Table("", "count", title="What the platform recorded (events API)")
    table.add_row("attaches accepted", str(s.attaches_accepted))
    table.add_row("sessions started (accounting)", str(s.sessions_started))
    for reason, count in s.attaches_refused.most_common():
        table.add_row(f"attach refused: {reason}", str(count))
    for kind, count in s.risk.items():
        if count:
            table.add_row(f"risk event: {kind}", str(count))
    table.add_row("DNS queries", str(s.dns_queries))
    table.add_row("DNS queries blocked", str(s.dns_blocked))
    table.add_row("Disconnect-Requests acknowledged", str(s.disconnects))
    out.print(table)
    blocks = Table("category (rule)", "blocked", title="DNS blocks by category")
    for rule, count in s.blocks_by_category.most_common():
        blocks.add_row(rule, str(count))
    out.print(blocks)
    people = Table("identity", "blocked", title="DNS blocks by identity")
    for name, count in s.blocks_by_identity.most_common():
        people.add_row(name, str(count))
    out.print(people)
    latency = "not observed" if s.revocation_ms is None else f"{s.revocation_ms:.1f} ms"
    out.print(
        f"Cloned SIM suspended through the API; Disconnect-Request at the gateway after [bold]{latency}[/bold]."
    )
    out.print(
        f"The devices saw: {sim.attached} attached, {len(sim.refused)} refused, {sim.queries} queries, "
        f"{sum(sim.blocked.values())} blocked, {sim.no_answer} unanswered."
    )
    out.print(f"Onboarding pack (QR codes for every employee): {result.world.pack}")


def _figures(result: demo_node.DemoResult) -> dict[str, object]:
    """The summary and what the devices saw, side by side, as one JSON object."""
    s, sim = result.summary, result.sim
    return {
        "platform": {
            "attaches_accepted": s.attaches_accepted,
            "attaches_refused": dict(s.attaches_refused),
            "sessions_started": s.sessions_started,
            "risk": dict(s.risk),
            "dns_queries": s.dns_queries,
            "dns_blocked": s.dns_blocked,
            "blocks_by_category": dict(s.blocks_by_category),
            "blocks_by_identity": dict(s.blocks_by_identity),
            "disconnects": s.disconnects,
            "revocation_ms": s.revocation_ms,
        },
        "devices": {
            "attached": sim.attached,
            "refused": [name for name, _ in sim.refused],
            "queries": sim.queries,
            "answered": sim.answered,
            "blocked": sum(sim.blocked.values()),
            "blocked_by_device": dict(sim.blocked_by_device),
            "no_answer": sim.no_answer,
        },
    }


def demo(
    once: Annotated[bool, typer.Option("--once", help="Exit after the summary.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Also print the figures as one JSON line.")
    ] = False,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Recreated on every run.")] = Path(
        "ztsim-demo"
    ),
    config: ConfigOpt = None,
) -> None:
    """Provision Acme, start every role, run the virtual operator's scenario, print what happened."""
    _fresh(data_dir)
    settings = node.settings_from(config, data_dir=data_dir)

    async def main() -> None:
        result, running = await demo_node.run_demo(settings)
        _print(result)
        if as_json:
            print(json.dumps(_figures(result)))
        if once:
            await running.stop()
            return
        out.print(f"\nServing. API: {result.api_url}/docs  admin token (shown once):")
        out.print(result.admin_token, markup=False, highlight=False)
        out.print("Ctrl-C to stop.")
        await running.api_task
        await running.aaa.stop()

    asyncio.run(main())
