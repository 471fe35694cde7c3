"""`ztsim identities`: create, list, disable, enable, with the API's audit events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select

from ztsim.db import schema

Cli = Callable[..., tuple[int, str]]


def test_create_list_disable_enable(cli: Cli, org: list[str], tmp_path: Path) -> None:
    code, output = cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    assert code == 0, output
    code, output = cli("identities", "create", "--name", "Meter 7", "--kind", "SERVICE")
    assert code == 0, output
    code, output = cli("identities", "list", columns=120)
    assert code == 0
    assert "ann@example.test" in output
    assert "Meter 7" in output
    assert "2 identities" in output
    code, output = cli("identities", "disable", "Ann Lee")
    assert code == 0, output
    assert "ann@example.test is disabled" in output
    code, output = cli("sims", "assign", org[0], "--identity", "ann@example.test")
    assert code == 1
    assert "disabled" in output
    code, output = cli("identities", "enable", "ann@example.test")
    assert code == 0
    assert "enabled" in output
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        kinds = conn.scalars(select(schema.events.c.kind)).all()
    engine.dispose()
    assert kinds.count("identity.created") == 2
    assert kinds.count("identity.updated") == 2


def test_bad_kind_and_unknown_identity_change_nothing(cli: Cli, org: list[str]) -> None:
    code, output = cli("identities", "create", "--name", "X", "--kind", "robot")
    assert code == 2
    code, output = cli("identities", "disable", "nobody@example.test")
    assert code == 1
    assert "no identity 'nobody@example.test'" in output
    code, output = cli("identities", "list")
    assert "0 identities" in output


def test_rename_keeps_the_email(cli: Cli, org: list[str]) -> None:
    cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    code, output = cli("identities", "rename", "Ann Lee", "Ann Lee-Smith")
    assert (code, output) == (0, "Identity ann@example.test is now named Ann Lee-Smith.\n")
    code, output = cli("identities", "list", columns=100)
    assert "Ann Lee-Smith" in output
    assert cli("identities", "rename", "Ann Lee", "X")[0] == 1  # the old name is gone
