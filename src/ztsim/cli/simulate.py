"""`ztsim simulate`: load from the virtual operator against a running `ztsim up`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from ztsim.cli.common import ConfigOpt, DataDirOpt, out, platform_for, say_error


def simulate(
    devices: Annotated[int, typer.Option("--devices", min=1, max=100_000)] = 1000,
    duration: Annotated[float, typer.Option("--duration", min=10, max=3600, help="Seconds.")] = 60,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Attach DEVICES virtual devices through RADIUS and let them query DNS for DURATION
    seconds, against the ztsim running on this data directory's settings."""
    # Imported here: the simulator loads the whole platform, which `--help` does not need.
    from ztsim.simulator import loadtest
    from ztsim.simulator.platform import Listeners

    platform = platform_for(config, data_dir)
    s = platform.settings
    listeners = Listeners(
        s.radius_host, s.radius_auth_port, s.radius_acct_port, s.dns_host, s.dns_port
    )
    try:
        result = asyncio.run(loadtest.simulate(platform, listeners, devices, duration))
    except TimeoutError as exc:
        say_error(f"{exc} (is `ztsim up` running with these settings?)")
        raise typer.Exit(1) from None
    r = result.report
    out.print(f"devices known to the running AAA after {result.ready_after_s:.1f} s")
    out.print(
        f"attaches: {r.attached} accepted, {len(r.refused)} refused: {result.attaches_per_s:,.0f}/s"
    )
    out.print(
        f"DNS: {r.answered} answered of {r.queries}, {sum(r.blocked.values())} blocked: "
        f"{result.queries_per_s:,.0f} queries/s"
    )
    out.print(f"errors: {result.errors}")
    print(
        json.dumps(
            {
                "devices": devices,
                "attaches_per_s": round(result.attaches_per_s, 1),
                "dns_queries_per_s": round(result.queries_per_s, 1),
                "errors": result.errors,
                "attached": r.attached,
                "attach_timeouts": r.attach_timeouts,
                "queries": r.queries,
                "rcodes": {str(k): v for k, v in sorted(r.rcodes.items())},
            }
        )
    )
    if result.errors:
        raise typer.Exit(1)
