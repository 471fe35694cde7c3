"""`ztsim init`, `ztsim up` and `ztsim keys`: setting up the platform and running it whole.

The platform's modules are imported inside the commands: this module is loaded to show
`ztsim up --help` too, which must not wait for the API and the gateways to import.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from ztsim.cli.common import ConfigOpt, DataDirOpt, fail, out, platform_for, print_listeners
from ztsim.errors import ZtsimError

keys_app = typer.Typer(help="The key-encryption key that seals SIM secrets.", no_args_is_help=True)


def init(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    org_name: Annotated[str, typer.Option("--org-name")] = "My Company",
    slug: Annotated[str, typer.Option("--slug")] = "default",
) -> None:
    """Create the data directory, the master key, the first org and its first admin token."""
    from ztsim.node import platform as node

    platform = platform_for(config, data_dir, create_key=True)
    try:
        org, token = node.init_org(platform, org_name, slug)
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Created org [bold]{org.name}[/bold] ({org.slug}) in {platform.settings.data_dir}")
    out.print("Admin token (shown once, store it now):")
    out.print(token, markup=False, highlight=False)


def up(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run every role in one process: the API (with DoH), RADIUS AAA and the DNS gateway.

    On a fresh data directory it first creates an org and prints its admin token once."""
    from ztsim.node import platform as node
    from ztsim.node import up as up_node

    platform = platform_for(config, data_dir, create_key=True)
    if not node.has_org(platform):
        org, token = node.init_org(platform, "My Company", "default")
        out.print(f"Created org [bold]{org.name}[/bold]. Admin token (shown once, store it now):")
        out.print(token, markup=False, highlight=False)
    try:
        asyncio.run(up_node.run_until_stopped(platform, print_listeners))
    except ZtsimError as exc:
        raise fail(exc) from None


@keys_app.command("rotate")
def keys_rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="With ZTSIM_MASTER_KEY still the old key: the new key (a 0600 file).",
        ),
    ] = None,
    nodes_hold_new_key: Annotated[
        bool,
        typer.Option(
            "--nodes-hold-new-key",
            help="With --new-key-file: every running node already opens with the new key.",
        ),
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Re-wrap every sealed secret under a new key-encryption key.

    With a key file, running nodes pick the new key up by themselves.

    With ZTSIM_MASTER_KEY, run the nodes and then this with ZTSIM_MASTER_KEY_PREVIOUS set."""
    from ztsim.node import platform as node

    platform = platform_for(config, data_dir)
    try:
        count = node.rotate_master_key(
            platform, new_key_file, nodes_hold_new_key=nodes_hold_new_key
        )
    except ZtsimError as exc:
        raise fail(exc) from None
    out.print(f"Re-sealed {count} rows under the new key-encryption key.")
    if platform.settings.master_key is None:
        out.print(
            "Running nodes seal under it now; the old key stays in"
            f" {platform.settings.key_file.name}.previous until the next rotation."
        )
    elif new_key_file is not None:
        out.print(
            "Now run every node with ZTSIM_MASTER_KEY set to the new key and"
            " ZTSIM_MASTER_KEY_PREVIOUS to the old one, then `ztsim keys rotate` again."
        )
    else:
        out.print("Nothing is sealed under ZTSIM_MASTER_KEY_PREVIOUS now: unset it at will.")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random key-encryption key (for ZTSIM_MASTER_KEY)."""
    from ztsim.sealing import KEY_BYTES, format_key

    out.print(format_key(os.urandom(KEY_BYTES)), markup=False, highlight=False)
