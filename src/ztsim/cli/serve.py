"""`ztsim serve <role>`: run one role of the platform on its own.

Each prints what it listens on, one line each, once it serves; a port it cannot bind
ends it with one line naming the port. The roles are imported inside the commands, so
that `ztsim serve --help` imports none of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from ztsim.cli import dns as dns_cli
from ztsim.cli.common import ConfigOpt, DataDirOpt, fail, out, platform_for, print_listeners
from ztsim.errors import ZtsimError

app = typer.Typer(help="Run one role of the platform.", no_args_is_help=True)


@app.command("radius")
def radius(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The RADIUS AAA server (auth and accounting) for the registered gateways."""
    from ztsim.node import radius as radius_node

    platform = platform_for(config, data_dir)
    try:
        radius_node.serve_radius(platform, print_listeners)
    except ZtsimError as exc:
        raise fail(exc) from None


@app.command("api")
def api(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The REST API alone (no DoH: that needs the DNS gateway in the same process)."""
    from ztsim.node import platform as node

    platform = platform_for(config, data_dir)
    try:
        node.serve_api(platform, print_listeners)
    except ZtsimError as exc:
        raise fail(exc) from None


app.command("dns")(dns_cli.serve_dns)


@app.command("net")
def net(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    netns: Annotated[
        str | None, typer.Option(help="Run nft, conntrack and the tunnels in this namespace.")
    ] = None,
    underlay: Annotated[
        str | None, typer.Option(help="The gateway's underlay address for the sites' tunnels.")
    ] = None,
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop denied packets instead of answering with ICMP.")
    ] = False,
) -> None:
    """The net role: network rules in nftables, tunnels to the sites (root only)."""
    from ztsim.node import net_serve

    platform = platform_for(config, data_dir)
    overrides: dict[str, object] = {"net_enabled": True}
    if netns is not None:
        overrides["net_netns"] = netns
    if underlay is not None:
        overrides["net_underlay"] = underlay
    if drop:
        overrides["net_reject"] = False
    platform = replace(platform, settings=platform.settings.model_copy(update=overrides))
    try:
        net_serve.serve_net(platform, _print_line)
    except ZtsimError as exc:
        raise fail(exc) from None


def _print_line(line: str) -> None:
    out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.file.flush()
