"""A serving process's reloads: identities are rebuilt when the session table changes, only then."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert

from ztsim.db import schema
from ztsim.dns.runner import GatewayOptions, GatewayProcess
from ztsim.sessions import repository
from ztsim.sessions.table import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(key: str, address: str) -> Session:
    return Session(
        "o1", "gw", key, "192.0.2.250", None, None, "alice", None, None, address, None, None,
        None, T0, T0,
    )  # fmt: skip


def test_identities_reloaded_only_when_sessions_change(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.orgs).values(id="o1", name="O", slug="o", created_at=T0))
        conn.execute(
            insert(schema.identities).values(
                id="alice", org_id="o1", kind="person", name="A", created_at=T0
            )
        )
        repository.save(conn, [_session("s1", "10.0.0.1")])
    options = GatewayOptions("127.0.0.1", 0, [], None, database=engine, store_key=lambda: b"k" * 16)
    process = GatewayProcess(options, None)
    first = process.gateway.identities.snapshot
    assert process.gateway.identities.by_source("10.0.0.1") is not None
    process.reload()
    process.reload()
    assert process.gateway.identities.snapshot is first  # nothing changed: no rebuild
    with engine.begin() as conn:
        repository.save(conn, [_session("s2", "10.0.0.2")])
    process.reload()
    assert process.gateway.identities.snapshot is not first
    assert process.gateway.identities.by_source("10.0.0.2") is not None
