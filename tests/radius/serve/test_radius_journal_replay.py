"""The AAA service with its accounting journal: accounting is answered once journaled,
while the database is still busy, and committed as soon as it is free, with the journal's
mark; a journal left by a process that ended is replayed from its mark before serving
(authenticators not checked again, a torn tail ignored), then removed; where the journal
cannot take a request, its reply waits for the commit, and so do those after it."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.radius import Code, Packet, SharedSecret, sign_request
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.serve.journal import PREFIX, SUFFIX, decode_records, encode_record
from ztsim.sealing import Sealer

from support.radius_world import SECRET, RunningAaa, World, access, build_world, radclient
from support.scale_out import wait_until

T_REPLY = 5.0  # seconds for a reply that is due; a quiet machine takes milliseconds


def _acct(
    status: int, session_id: str, imsi: str, *, secret: str = SECRET, address: str | None = None
) -> bytes:
    attributes = [
        make_attribute("Acct-Status-Type", status),
        make_attribute("Acct-Session-Id", session_id),
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
    ]
    if address is not None:
        attributes.append(make_attribute("Framed-IP-Address", address))
    request = Packet(Code.ACCOUNTING_REQUEST, status, os.urandom(16), tuple(attributes))
    return sign_request(request, SharedSecret(secret)).encode()


def _sessions(engine: Engine) -> dict[str, bool]:
    """Session id -> stopped."""
    t = schema.radius_sessions
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.acct_session_id, t.c.stopped_at)).all()
    return {r[0]: r[1] is not None for r in rows}


def _marks(engine: Engine) -> dict[str, int]:
    t = schema.radius_journals
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(select(t.c.name, t.c.applied)).all()}


def _session_events(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select kind, payload from events where kind like 'radius.session_%'")
        ).all()
    return sorted((k, str(p)) for k, p in rows)


@contextmanager
def _busy(engine: Engine) -> Iterator[None]:
    """The sessions table locked against writers by another transaction meanwhile."""
    with for_writing(engine).connect() as conn, conn.begin() as transaction:
        # SQLite: the write lock, taken at BEGIN; PostgreSQL: the table's.
        if engine.dialect.name != "sqlite":
            conn.execute(sa.text("LOCK TABLE radius_sessions IN EXCLUSIVE MODE"))
        yield
        transaction.rollback()


@contextmanager
def _gateway() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(T_REPLY)
        yield s


def _reply(gateway: socket.socket) -> Packet:
    return Packet.decode(gateway.recv(4096))


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    return build_world(engine, sealer)


def test_accounting_is_answered_once_journaled_and_committed_when_the_database_frees(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    aaa = RunningAaa(engine, sealer, journal_dir=tmp_path / "j")
    try:
        journal = aaa.service.journal
        assert journal is not None
        with _gateway() as gateway, _busy(engine):
            gateway.sendto(_acct(1, "busy-1", world.active), ("127.0.0.1", aaa.acct_port))
            assert _reply(gateway).code is Code.ACCOUNTING_RESPONSE
            assert "busy-1" not in _sessions(engine)  # answered before its commit
            size = (tmp_path / "j" / journal.name).stat().st_size
            assert size > 0
        wait_until(lambda: _sessions(engine).get("busy-1") is False, T_REPLY)
        wait_until(lambda: _marks(engine).get(journal.name) == size, T_REPLY)
    finally:
        aaa.close()
    # A clean stop: everything committed, so neither the file nor its mark stays.
    assert list((tmp_path / "j").iterdir()) == []
    assert _marks(engine) == {}


def test_a_burst_is_journaled_and_answered_every_request_once(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    """A burst larger than a reply chunk, arriving in one receive or several, while the
    database is busy: each request answered once, each in the journal, none committed
    yet; then all of them committed."""
    burst = 40
    aaa = RunningAaa(engine, sealer, journal_dir=tmp_path / "j")
    try:
        journal = aaa.service.journal
        assert journal is not None
        with _gateway() as gateway, _busy(engine):
            requests = [_acct(1, f"burst-{n}", world.active) for n in range(burst)]
            for request in requests:
                gateway.sendto(request, ("127.0.0.1", aaa.acct_port))
            replies = [_reply(gateway) for _ in range(burst)]
            assert all(reply.code is Code.ACCOUNTING_RESPONSE for reply in replies)
            assert sorted(r.identifier for r in replies) == sorted(
                Packet.decode(request).identifier for request in requests
            )
            records, _ = decode_records((tmp_path / "j" / journal.name).read_bytes())
            assert sorted(r.datagram for r in records) == sorted(requests)
            assert not any(name.startswith("burst-") for name in _sessions(engine))
        wait_until(lambda: sum(n.startswith("burst-") for n in _sessions(engine)) == burst, 5)
    finally:
        aaa.close()


def test_a_journal_left_behind_is_replayed_from_its_mark_then_removed(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    directory = tmp_path / "j"
    directory.mkdir()
    peer = ("127.0.0.1", 40000)
    when = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    committed = encode_record(_acct(1, "committed", world.active), peer, when)
    after = [
        encode_record(_acct(1, "replayed-1", world.active), peer, when),
        encode_record(_acct(2, "replayed-1", world.active), peer, when),
        # Signed with a secret since changed: it was checked when it came.
        encode_record(_acct(1, "replayed-2", world.active, secret="an-old-secret"), peer, when),
    ]
    torn = encode_record(_acct(1, "torn", world.active), peer, when)
    name = f"{PREFIX}ended{SUFFIX}"
    (directory / name).write_bytes(committed + b"".join(after) + torn[: len(torn) // 2])
    with engine.begin() as conn:  # "committed" was, by the process that ended
        conn.execute(sa.insert(schema.radius_journals).values(name=name, applied=len(committed)))

    aaa = RunningAaa(engine, sealer, journal_dir=directory)
    try:
        assert _sessions(engine) == {"replayed-1": True, "replayed-2": False}
        kinds = [kind for kind, _ in _session_events(engine)]
        assert sorted(kinds) == [
            "radius.session_started",
            "radius.session_started",
            "radius.session_stopped",
        ]
        assert not (directory / name).exists()
        assert name not in _marks(engine)
        core = aaa.service.core
        assert core is not None
        assert core.sessions.get((world.gateway_id, "replayed-2")) is not None  # live
        assert core.sessions.get((world.gateway_id, "replayed-1")) is None
    finally:
        aaa.close()


def test_replies_the_journal_cannot_take_wait_for_the_commit_and_those_after_them_too(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    aaa = RunningAaa(engine, sealer, journal_dir=tmp_path / "j")
    try:
        journal = aaa.service.journal
        assert journal is not None
        target = ("127.0.0.1", aaa.acct_port)
        core = aaa.service.core
        assert core is not None
        with _gateway() as first, _gateway() as second:
            with _busy(engine):
                journal.broken = True  # e.g. the disk is full
                first.sendto(_acct(1, "waits-1", world.active), target)
                wait_until(lambda: len(core.awaiting) == 1, T_REPLY)
                journal.broken = False
                second.sendto(_acct(1, "waits-2", world.active), target)
                wait_until(lambda: len(core.awaiting) == 2, T_REPLY)
                for gateway in (first, second):
                    gateway.settimeout(0.5)
                    with pytest.raises(TimeoutError):
                        gateway.recv(4096)
            for gateway in (first, second):
                gateway.settimeout(T_REPLY)
                assert _reply(gateway).code is Code.ACCOUNTING_RESPONSE
        assert {"waits-1", "waits-2"} <= set(_sessions(engine))
    finally:
        aaa.close()


def test_a_start_that_gives_an_address_waits_for_its_commit_and_holds_up_nothing_else(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    """The other planes learn a session's address from the commit: its gateway is told
    only once they can know it (the device's first DNS query is then answered)."""
    aaa = RunningAaa(engine, sealer, journal_dir=tmp_path / "j")
    try:
        accept = radclient(aaa.auth_port, "auth", access(world.active))
        found = re.search(r"Framed-IP-Address = (\S+)", accept)
        assert found is not None, accept
        target = ("127.0.0.1", aaa.acct_port)
        with _gateway() as gateway:
            with _busy(engine):
                start = _acct(1, "with-address", world.active, address=found.group(1))
                gateway.sendto(start, target)
                gateway.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    gateway.recv(4096)
                # The same session's Interim-Update gives it nothing new: answered at once.
                gateway.sendto(_acct(3, "with-address", world.active), target)
                gateway.settimeout(T_REPLY)
                assert _reply(gateway).identifier == 3
                assert "with-address" not in _sessions(engine)
            assert _reply(gateway).identifier == 1  # once committed
            assert _sessions(engine)["with-address"] is False
    finally:
        aaa.close()


def test_without_a_journal_it_can_make_accounting_is_answered_after_its_commit(
    engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file-not-a-directory"
    blocked.write_text("")
    aaa = RunningAaa(engine, sealer, journal_dir=blocked)
    try:
        assert aaa.service.journal is None
        with _gateway() as gateway:
            gateway.sendto(_acct(1, "no-journal", world.active), ("127.0.0.1", aaa.acct_port))
            assert _reply(gateway).code is Code.ACCOUNTING_RESPONSE
            assert _sessions(engine) == {"no-journal": False}  # committed before the answer
    finally:
        aaa.close()
