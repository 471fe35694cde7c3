"""Commands imported only when they run: `ztsim --help` and `ztsim <group> --help` start
in a fraction of a second instead of importing the API, the database layer and the DNS
engine (seconds of CPU).

A command is an `Entry`: its help, how to load it, and for a group the names and help of
its commands. Help is shown from the entries; anything else loads the real command and
hands it the rest of the line. `tests/cli/test_cli_lazy.py` checks that every entry
says what its loaded command says, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import typer

# Typer carries its own copy of Click: its commands are these classes, not click's.
from typer._click import Command, Context
from typer.core import TyperCommand, TyperGroup

# What a loader returns: a Typer group, or a command function.
Loaded = typer.Typer | Callable[..., Any]


@dataclass(frozen=True)
class Entry:
    help: str
    load: Callable[[], Loaded]
    # A group's commands and their help, for `ztsim <group> --help`; None for a command.
    commands: Mapping[str, str] | None = None
    loaded: dict[str, Command] = field(default_factory=dict, compare=False)

    def command(self, name: str) -> Command:
        """The real command (loaded once)."""
        if name not in self.loaded:
            self.loaded[name] = as_click(name, self.load())
        return self.loaded[name]


def as_click(name: str, target: Loaded) -> Command:
    # A group, never a root: the root alone has the shell completion options.
    if isinstance(target, typer.Typer):
        command: Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _Placeholder(TyperCommand):
    """Stands for a command in a listing: its name and help, nothing loaded."""


class LazyGroup(TyperGroup):
    """A Typer group whose commands are `Entry`s (set `entries` in a subclass)."""

    entries: Mapping[str, Entry] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in self.entries.items():
            self.commands.setdefault(name, _Placeholder(name, help=entry.help))

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is None or not isinstance(command, _Placeholder):
            return name, command, rest
        entry = self.entries[name]
        if entry.commands is not None and _asks_help(ctx, rest):
            return name, listing(name, entry), rest
        return name, entry.command(name), rest


def listing(name: str, entry: Entry) -> TyperGroup:
    """A group's help from its entry: the group as Typer shows it, with placeholders."""
    assert entry.commands is not None
    group = TyperGroup(name=name, help=entry.help, no_args_is_help=True)
    for sub, text in entry.commands.items():
        group.add_command(_Placeholder(sub, help=text))
    return group


def _asks_help(ctx: Context, rest: list[str]) -> bool:
    # A group run bare shows its help (no_args_is_help), as one run with --help does.
    return not rest or (len(rest) == 1 and rest[0] in ctx.help_option_names)


def describe(command: Command) -> tuple[str, dict[str, str] | None]:
    """What an `Entry` must say for `command`: its help, and its commands' help if it is
    a group (for the drift check and for writing a new entry)."""
    if not isinstance(command, TyperGroup):
        return first_paragraph(command.help), None
    ctx = Context(command)
    subs = {}
    for sub in command.list_commands(ctx):
        found = command.get_command(ctx, sub)
        if found is not None and not found.hidden:
            subs[sub] = first_paragraph(found.help)
    return command.help or "", subs


def first_paragraph(text: str | None) -> str:
    """What a listing shows of a command's help."""
    return inspect.cleandoc(text or "").split("\n\n")[0]
