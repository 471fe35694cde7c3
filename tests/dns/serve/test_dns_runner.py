"""A serving process: its start (table and position in one read), the policy file's
reloads (nothing else is polled), and the query log's writer through an outage."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text

from ztsim.db import schema
from ztsim.dns.policy.config import load_config
from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.rules import OrgPolicy, OrgSettings, PolicyData, PrivacyMode
from ztsim.dns.policy.snapshot import ALLOWED, PolicySnapshot
from ztsim.dns.querylog import Backlog
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.errors import InvalidInput
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.sessions import repository
from ztsim.sessions.table import Session

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(key: str, address: str) -> Session:
    return Session(
        "o1", "gw", key, "192.0.2.250", None, None, "alice", None, None, address, None, None,
        None, T0, T0,
    )  # fmt: skip


def test_identities_loaded_with_their_position_and_never_polled(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.orgs).values(id="o1", name="O", slug="o", created_at=T0))
        conn.execute(
            insert(schema.identities).values(
                id="alice", org_id="o1", kind="user", name="A", created_at=T0
            )
        )
        repository.save(conn, [_session("s1", "10.0.0.1")])
        outbox.publish_one(conn, "o1", Topic.SESSION, "10.0.0.1", T0)
    options = GatewayOptions("127.0.0.1", 0, [], None, database=engine, store_key=lambda: b"k" * 16)
    process = GatewayProcess(options, None)
    first = process.gateway.identities.snapshot
    assert process.gateway.identities.by_source("10.0.0.1") is not None
    assert process.position() == 1  # what the table reflects: the change already in it
    with engine.begin() as conn:  # a session written without its change is not seen...
        repository.save(conn, [_session("s2", "10.0.0.2")])
    process.reload()  # ...by a reload either: only the feed changes the table
    assert process.gateway.identities.snapshot is first
    assert process.gateway.identities.by_source("10.0.0.2") is None


def _write_policy(path: Path, blocked: str, static_address: str) -> None:
    (path.parent / "ads.txt").write_text(f"{blocked}\n")
    path.write_text(
        '[lists.ads]\npath = "ads.txt"\nformat = "domains"\n'
        '[[orgs]]\nid = "o1"\n[[orgs.rules]]\nid = "ads"\naction = "block"\nlists = ["ads"]\n'
        f'[[orgs.static]]\naddress = "{static_address}"\nidentity = "alice"\n'
    )


def test_a_changed_policy_file_is_reloaded_with_its_static_sources(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.toml"
    _write_policy(policy, "one.example", "10.0.0.1")
    options = GatewayOptions("127.0.0.1", 0, [], policy, store_key=lambda: b"k" * 16)
    process = GatewayProcess(options, load_config(policy))
    static = process.gateway.identities.by_source("10.0.0.1")
    assert static is not None
    first_policy = process.gateway.engine.policy
    process.reload()
    assert process.gateway.engine.policy is first_policy  # unchanged: nothing rebuilt
    time.sleep(0.01)  # a later modification time
    _write_policy(policy, "two.example", "10.0.0.1")
    process.reload()
    assert process.gateway.engine.policy is not first_policy
    assert process.gateway.identities.by_source("10.0.0.1") == static
    time.sleep(0.01)
    _write_policy(policy, "two.example", "10.0.0.2")
    process.reload()
    assert process.gateway.identities.by_source("10.0.0.2") is not None
    assert process.gateway.identities.by_source("10.0.0.1") is None


# -- the query log's writer while the database is down -----------------------------------


def test_query_events_of_an_outage_are_written_when_the_database_returns(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.orgs).values(id="o1", name="O", slug="o", created_at=T0))
    options = GatewayOptions(
        "127.0.0.1", 0, [], None, database=engine, store_key=lambda: b"k" * 16,
        stats_interval=3600.0,
    )  # fmt: skip
    process = GatewayProcess(options, None)
    log = process.querylog
    log.policy = PolicySnapshot(
        PolicyData({"o1": OrgPolicy("o1", (), OrgSettings(privacy=PrivacyMode.ALL))}, {}),
        b"k" * 16,
    )
    # A small bound, to see what happens past it.
    process.unwritten = Backlog(log, 4)
    alice = Requester("o1", "alice")
    with engine.begin() as conn:  # the events table gone: every write fails
        conn.execute(text("ALTER TABLE events RENAME TO events_away"))
    for n in range(3):
        log.record(alice, f"q{n}.example", 1, ALLOWED)
    process.write_log()
    assert len(process.unwritten) == 3
    for n in range(3, 5):
        log.record(alice, f"q{n}.example", 1, ALLOWED)
    process.write_log()
    assert len(process.unwritten) == 4  # the oldest went, counted
    assert log.dropped == 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE events_away RENAME TO events"))
    process.write_log()
    assert len(process.unwritten) == 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.events.c.kind, schema.events.c.payload).order_by(schema.events.c.id)
        ).all()
    names = [p["name"] for k, p in rows if k == "dns.query"]
    assert names == ["q1.example", "q2.example", "q3.example", "q4.example"]
    assert [p for k, p in rows if k == "dns.events_dropped"] == [{"dropped": 1}]
    process.write_log()  # reported once
    with engine.connect() as conn:
        count = conn.execute(select(schema.events.c.id)).all()
    assert len(count) == len(rows)


def test_a_policy_file_refuses_posture_and_sim_requirements(tmp_path: Path) -> None:
    """The file's requesters carry no posture or SIM facts: such a rule could never apply."""
    policy = tmp_path / "policy.toml"
    for requirement in ('posture = ["managed"]', 'sim = ["sim.swap_age < 24h"]'):
        policy.write_text(
            f'[[orgs]]\nid = "o1"\n[[orgs.rules]]\nid = "r"\naction = "block"\n{requirement}\n'
        )
        with pytest.raises(InvalidInput, match="ztsim policy apply"):
            load_config(policy)
