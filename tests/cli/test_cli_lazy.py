"""The command entries of `ztsim` (shown without importing the commands) say what the
commands themselves say, and a command loaded lazily runs as it would eagerly."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ztsim.cli.lazy import Entry, LazyGroup, as_click, describe, first_paragraph
from ztsim.cli.main import ENTRIES, app


def _literal(name: str, entry: Entry, real: tuple[str, dict[str, str] | None]) -> str:
    return f"{name!r}: help={real[0]!r}, commands={real[1]!r}  (entry: {entry.help!r})"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_says_what_its_command_says(name: str) -> None:
    entry = ENTRIES[name]
    real = describe(as_click(name, entry.load()))
    shown = (entry.help if entry.commands is not None else first_paragraph(entry.help), None)
    assert (shown[0], entry.commands) == real, "update cli/main.py: " + _literal(name, entry, real)


class _Eager(LazyGroup):
    """Every entry loaded: what `ztsim` showed before it was lazy."""

    entries = ENTRIES

    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)
        for name, entry in self.entries.items():
            self.commands[name] = as_click(name, entry.load())


eager = typer.Typer(cls=_Eager, help=app.info.help, no_args_is_help=True)
eager.callback()(lambda: None)


@pytest.mark.parametrize(
    "args", [["--help"], *([name, "--help"] for name, e in ENTRIES.items() if e.commands)]
)
def test_help_from_the_entries_is_the_commands_own(args: list[str]) -> None:
    env = {"COLUMNS": "100"}
    lazy = CliRunner().invoke(app, args, env=env, prog_name="ztsim")
    loaded = CliRunner().invoke(eager, args, env=env, prog_name="ztsim")
    assert lazy.exit_code == loaded.exit_code == 0
    assert lazy.output == loaded.output


def test_a_group_run_bare_shows_its_help_as_before() -> None:
    lazy = CliRunner().invoke(app, ["serve"], prog_name="ztsim")
    loaded = CliRunner().invoke(eager, ["serve"], prog_name="ztsim")
    assert (lazy.exit_code, lazy.output) == (loaded.exit_code, loaded.output)
    assert "radius" in lazy.output


def test_a_subcommand_runs_its_loaded_command() -> None:
    result = CliRunner().invoke(app, ["keys", "generate"])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) >= 43  # 32 bytes, base64 or hex


def test_an_unknown_command_is_suggested_the_closest() -> None:
    result = CliRunner().invoke(app, ["sim", "list"])
    assert result.exit_code == 2
    assert "'sims'" in result.output
