"""What every `ztsim` sub-command shares: options, consoles, and opening the platform.

Light on purpose: every command module imports it, `ztsim <group> --help` included, so
the platform (database, API, gateways) is imported inside `platform_for`, when a command
runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ztsim.errors import ZtsimError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ztsim.node.listeners import Listener
    from ztsim.node.platform import Platform

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file.", exists=True, dir_okay=False)
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default ./ztsim-data).")
]
OrgOpt = Annotated[str | None, typer.Option("--org", help="Org slug (default: the only org).")]


def platform_for(
    config: Path | None, data_dir: Path | None, *, create_key: bool = False
) -> Platform:
    """The platform of these settings; settings that are wrong (a key, a value, the TOML
    itself) end the command with one line and exit code 2."""
    from ztsim.node import platform as node

    try:
        return node.build(node.settings_from(config, data_dir=data_dir), create_key=create_key)
    except ZtsimError as exc:
        say_error(str(exc))
        raise typer.Exit(2) from None


def say_error(text: str) -> None:
    """One line on stderr, whatever the terminal's width (scripts read it whole), with the
    text shown as it is (a `[name]` in it is not markup)."""
    err.print(f"[red]error:[/red] {escape(text)}", soft_wrap=True)


def fail(exc: ZtsimError) -> typer.Exit:
    say_error(str(exc))
    return typer.Exit(1)


def print_listeners(listeners: Sequence[Listener]) -> None:
    """What a role listens on, one line each on stdout, at once (a script may wait for
    them on a pipe)."""
    for listener in listeners:
        out.print(listener.line(), markup=False, highlight=False, soft_wrap=True)
    out.file.flush()


@contextmanager
def org_transaction(platform: Platform, org: str | None) -> Iterator[tuple[Connection, str]]:
    """A transaction and the id of the org (`--org`) a command acts for; a `ZtsimError`
    inside rolls it back and ends the command with the error."""
    from ztsim.identity import repository as identities

    try:
        with platform.engine.begin() as conn:
            yield conn, identities.find_org(conn, org).id
    except ZtsimError as exc:
        raise fail(exc) from None
