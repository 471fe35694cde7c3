"""`ztsim tokens create|list|revoke`: shown once, listed without the secret, revoked."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select

from ztsim.db import schema

from support.leaks import LEAKS

Cli = Callable[..., tuple[int, str]]

TOKEN = re.compile(r"ztsim_[A-Za-z0-9_-]{43}")


def test_create_list_revoke(cli: Cli, org: list[str], tmp_path: Path) -> None:
    cli("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test")
    code, output = cli(
        "tokens", "create", "--role", "SELF", "--identity", "Ann Lee", "--name", "ann"
    )
    assert code == 0, output
    (token,) = TOKEN.findall(output)
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli tokens create", output)
    code, output = cli("tokens", "list", columns=120)
    assert code == 0
    assert token not in output
    assert token[:12] in output
    assert "ann@example.test" in output
    assert "2 tokens" in output
    code, output = cli("tokens", "revoke", token)
    assert code == 1
    assert token not in output  # a pasted token is never echoed
    code, output = cli("tokens", "revoke", "ann")
    assert code == 0
    assert "revoked" in output
    assert "revoked" in cli("tokens", "list", columns=120)[1]
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        kinds = conn.scalars(select(schema.events.c.kind)).all()
    engine.dispose()
    assert "token.created" in kinds
    assert "token.revoked" in kinds
