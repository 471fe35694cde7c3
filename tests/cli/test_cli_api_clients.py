"""`ztsim api-clients create|list|revoke`: the secret printed once, listed without it,
revoked, and a token got with it at the OAuth endpoint."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select

from ztsim.db import schema
from ztsim.risk.clients import secret_hash

from support.leaks import LEAKS

Cli = Callable[..., tuple[int, str]]

SECRET = re.compile(r"client_secret: (ztsimcs_[A-Za-z0-9_-]{43})")
CLIENT_ID = re.compile(r"client_id: ([0-9a-f]{32})")


def test_create_list_revoke(cli: Cli, org: list[str], tmp_path: Path) -> None:
    code, output = cli(
        "api-clients",
        "create",
        "--name",
        "bank-idp",
        "--scope",
        "sim-swap:check",
        "--scope",
        "device-swap",
    )
    assert code == 0, output
    (secret,) = SECRET.findall(output)
    (client_id,) = CLIENT_ID.findall(output)
    LEAKS.add_secret(secret)
    LEAKS.allow_once("cli api-clients create", output)
    code, output = cli("api-clients", "list", columns=160)
    assert code == 0
    assert client_id in output
    assert "bank-idp" in output
    assert "device-swap sim-swap:check" in output
    assert "1 API client" in output
    assert secret not in output
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        stored = conn.execute(select(schema.api_clients.c.secret_hash)).scalar_one()
    assert stored == secret_hash(secret)
    code, output = cli("api-clients", "revoke", secret)
    assert code == 1
    assert secret not in output  # a pasted secret is never echoed
    code, output = cli("api-clients", "revoke", "bank-idp")
    assert code == 0
    assert "revoked" in output
    assert "revoked" in cli("api-clients", "list", columns=160)[1]
    with engine.connect() as conn:
        kinds = conn.scalars(select(schema.events.c.kind)).all()
    engine.dispose()
    assert "api_client.created" in kinds
    assert "api_client.revoked" in kinds


def test_bad_scopes_and_numbers_are_refused(cli: Cli, org: list[str]) -> None:
    code, output = cli("api-clients", "create", "--scope", "admin")
    assert code == 1
    assert "unknown scope" in output
    code, output = cli(
        "api-clients", "create", "--scope", "sim-swap", "--phone-number", "+4915199999999"
    )
    assert code == 1
    assert "not the number of a SIM of this org" in output
