"""`ztsim serve <role>`: run one role of the platform on its own."""

from __future__ import annotations

import typer

from ztsim.cli.common import ConfigOpt, DataDirOpt, platform_for
from ztsim.node import platform as node
from ztsim.node import radius as radius_node

app = typer.Typer(help="Run one role of the platform.", no_args_is_help=True)


@app.command("radius")
def radius(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The RADIUS AAA server (auth and accounting) for the registered gateways."""
    radius_node.serve_radius(platform_for(config, data_dir))


@app.command("api")
def api(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The REST API alone (no DoH: that needs the DNS gateway in the same process)."""
    node.serve_api(platform_for(config, data_dir))
