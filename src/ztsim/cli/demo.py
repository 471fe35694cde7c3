"""`ztsim demo`: the whole loop in one command (what `make demo` runs)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ztsim.cli.common import ConfigOpt, out, say_error
from ztsim.simulator import story as tale  # pure and light: the standard library only

if TYPE_CHECKING:  # the node layer loads everything: only when the demo runs
    from ztsim.node import demo as demo_node

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
            "[bold]ztsim demo[/bold]: Acme, 20 employees in 3 groups, a contractor, 10 meters, "
            "one virtual operator"
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
    _tell(result.story, s.revocation_ms, s.dns_queries - s.dns_blocked)
    if (swap := result.pending_swap) is not None:
        out.print(
            f"[bold]Prevented swap:[/bold] a re-issue of {escape(swap.person)}'s eSIM "
            f"({escape(swap.reason)}) is {swap.state}: it waits for a second admin's approval "
            f"(swap request {swap.request_id}); until then the number stays on its SIM."
        )
    out.print(
        f"The devices saw: {sim.attached} attached, {len(sim.refused)} refused, {sim.queries} queries, "
        f"{sum(sim.blocked.values())} blocked, {sim.no_answer} unanswered."
    )
    out.print(f"Onboarding pack (QR codes for every employee): {result.world.pack}")


def _who(person: tale.Person | None) -> str:
    if person is None:
        return "an unknown identity"
    email = f" <{person.email}>" if person.email else ""
    return escape(person.name + email)


def _blocks(label: str, blocks: tuple[tale.Block, ...]) -> None:
    if not blocks:
        out.print(f"[bold]{label}:[/bold] nobody")
    for b in blocks:
        times = "once" if b.times == 1 else f"{b.times} times"
        out.print(
            f"[bold]{label}:[/bold] {_who(b.who)} looked up {escape(b.domain)}: "
            f"blocked by rule {escape(b.rule)}, {times}."
        )


def _refusal(label: str, r: tale.Refusal, revocation_ms: float | None) -> None:
    owner = _who(r.owner)
    said = [f"[bold]{label}:[/bold] ICCID {r.iccid} ({owner}), bound to IMEI {r.bound_imei},"]
    said.append(f"asked to attach from IMEI {r.tried_imei}")
    if r.live_imeis:
        said.append(f"while live on IMEI {', '.join(r.live_imeis)}")
    signals = "; ".join(tale.SIGNAL_WORDS.get(s, s) for s in r.signals)
    said.append(f"— caught by {signals}." if signals else "—")
    said.append(f"ztsim refused the attach ({r.reason}) and recorded the risk.")
    for by in r.suspended_by:
        said.append(f"Suspended ({escape(by)}).")
    after = (
        ""
        if revocation_ms is None
        else f" [bold]{revocation_ms:.1f} ms[/bold] after the twin was caught"
    )
    # One address can hold several sessions (one per APN): said once, with their count.
    for address, count in Counter(r.disconnected).items():
        if count == 1:
            said.append(f"Its live session at {address} was cut: Disconnect-Request ACKed{after}.")
        else:
            said.append(
                f"Its {count} live sessions at {address} were cut: Disconnect-Requests ACKed{after}."
            )
    out.print(" ".join(said))


_KINDS = {"user": "by people", "service": "by service identities"}


def _tell(story: tale.Story, revocation_ms: float | None, answered: int) -> None:
    """The story, from the platform's events: who, which SIM, how caught, what was done."""
    out.print("\n[bold underline]What happened, from the platform's events[/bold underline]")
    _blocks("Phished", story.phished)
    _blocks("Beaconing to C2", story.beacons)
    for label, refusals in (("Cloned SIM", story.cloned), ("Stolen SIM", story.stolen)):
        if not refusals:
            out.print(f"[bold]{label}:[/bold] none")
        for r in refusals:
            _refusal(label, r, revocation_ms)
    a = story.allowed
    kinds = ", ".join(f"{n} {_KINDS.get(kind, kind)}" for kind, n in a.attaches_by_kind.items())
    out.print(
        f"[bold]Allowed:[/bold] {a.attaches} attaches ({kinds}) for {a.identities} identities, "
        f"{answered} DNS queries answered; {a.live_sessions} sessions live now."
    )


def _progress() -> demo_node.Progress:
    """One line per provisioning step, as it starts, with the seconds since the first."""
    started = time.monotonic()

    def step(text: str) -> None:
        out.print(f"[dim]{time.monotonic() - started:5.1f} s[/dim]  {escape(text)}", soft_wrap=True)

    return step


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
        "story": result.story.as_json(),
        "site": None
        if (site := result.site) is None
        else {
            "employee": site.employee,
            "reached": site.reached,
            "reached_ms": site.reached_ms,
            "contractor": site.contractor,
            "refused": site.refused,
            "denial": site.denial,
            "victim": site.victim,
            "cut_ms": site.cut_ms,
            "last_answer_ms": site.last_answer_ms,
            "problems": site.problems,
        },
        "site_skipped": result.site_skipped,
        "prevented_swap": None
        if result.pending_swap is None
        else {
            "person": result.pending_swap.person,
            "request_id": result.pending_swap.request_id,
            "state": result.pending_swap.state,
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
    from ztsim.node import demo as demo_node
    from ztsim.node import platform as node
    from ztsim.node.runner import run_role

    _fresh(data_dir)
    settings = node.settings_from(config, data_dir=data_dir)

    async def start() -> demo_node.LiveDemo:
        live = await demo_node.start_demo(settings, progress=_progress())
        result = live.result
        _print(result)
        if as_json:
            print(json.dumps(_figures(result)), flush=True)
        if not once:
            out.print(
                f"\nServing. Console: {result.api_url}/  API docs: {result.api_url}/docs",
                soft_wrap=True,
            )
            out.print("Sign in to the console with the admin token (shown once):", soft_wrap=True)
            out.print(result.admin_token, markup=False, highlight=False, soft_wrap=True)
            if (employee := result.employee) is not None:
                out.print(
                    f"{escape(employee.person)}'s own page in the console: sign in with",
                    soft_wrap=True,
                )
                out.print(employee.token, markup=False, highlight=False, soft_wrap=True)
            out.print(
                "The devices stay attached (GET /api/v1/sessions); Ctrl-C detaches them and stops."
            )
        return live

    def ended(live: demo_node.LiveDemo) -> asyncio.Future[None]:
        if not once:
            return live.api_task
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    # Our handlers are in place before anything binds: a stop signal at any moment
    # ends in the orderly stop (devices detached, records flushed) and exit code 0.
    asyncio.run(run_role(start, ended=ended))
