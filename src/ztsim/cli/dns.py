"""`ztsim serve dns`: the DNS gateway on its own, optionally in several worker processes."""

from __future__ import annotations

from typing import Annotated

import typer

from ztsim.cli.common import ConfigOpt, DataDirOpt, fail, platform_for, print_listeners
from ztsim.errors import ZtsimError


def serve_dns(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Processes sharing the port.")
    ] = 1,
) -> None:
    """The DNS gateway (UDP and TCP) with per-identity policy."""
    # Here, not at the top: `ztsim serve --help` must not import the gateway.
    from ztsim.node import dns as dns_node

    platform = platform_for(config, data_dir)
    try:
        dns_node.serve_dns(platform, workers, print_listeners)
    except ZtsimError as exc:
        raise fail(exc) from None
