"""The AAA role follows the change feed: it starts from a snapshot and the outbox
position that snapshot reflects (one consistent read), applies what other transactions
and other processes publish, reloads everything when it fell behind the outbox's
retention, and never loses a first-attach binding to a refresh read before the binding
was committed."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select

from ztsim.db import schema
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.heap import freeze_startup
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.radius import Code, Packet, SharedSecret, encode_reply, make_reply
from ztsim.radius.store import registry
from ztsim.sealing import Sealer

from support.radius_feed import change_sim, publish
from support.radius_world import (
    OTHER_IMEISV,
    RADCLIENT,
    SECRET,
    RunningAaa,
    World,
    access,
    accounting,
    build_world,
    radclient,
)

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)

TESTS = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    return build_world(engine, sealer)


@pytest.fixture
def coa(engine: Engine, world: World) -> Iterator[socket.socket]:
    """The gateway's Dynamic Authorization Server, played by the test: it ACKs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    with engine.begin() as conn:
        conn.execute(schema.radius_gateways.update().values(coa_port=sock.getsockname()[1]))
    yield sock
    sock.close()


def _head(engine: Engine) -> int:
    with engine.connect() as conn:
        return outbox.position(conn)


def _start_session(aaa: RunningAaa, world: World) -> None:
    out = radclient(aaa.auth_port, "auth", access(world.active))
    assert "Received Access-Accept" in out, out
    out = radclient(aaa.acct_port, "acct", accounting("Start", "live-1", world.active))
    assert "Received Accounting-Response" in out, out


def _disconnected(coa: socket.socket) -> float:
    """Wait for a Disconnect-Request, ACK it; when it arrived (wall clock)."""
    datagram, peer = coa.recvfrom(4096)
    arrived = time.time()
    request = Packet.decode(datagram)
    assert request.code is Code.DISCONNECT_REQUEST
    secret = SharedSecret(SECRET)
    coa.sendto(encode_reply(make_reply(request, Code.DISCONNECT_ACK), request, secret), peer)
    return arrived


# -- start: the snapshot and its position in one read ------------------------------------


def test_start_reflects_what_was_published_before_it(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    change_sim(engine, world.org_id, world.active_iccid, SimAction.SUSPEND)
    head = _head(engine)
    aaa = RunningAaa(engine, sealer)
    try:
        assert aaa.service.applied_seq == head
        out = radclient(aaa.auth_port, "auth", access(world.active))
        assert "Received Access-Reject" in out, out
    finally:
        aaa.close()


def test_a_change_committed_while_the_snapshot_loads_is_applied_after_it(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    """The change commits after the SIMs were read and before the position is: a
    position read outside the snapshot's transaction would count it as loaded, and the
    suspended SIM would be accepted until the next change."""
    fired: list[int] = []

    def meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The live sessions are read after the SIMs, in the same read transaction.
        if (
            not fired
            and statement.lstrip().upper().startswith("SELECT")
            and ("FROM radius_sessions" in statement)
        ):
            fired.append(0)
            fired[0] = change_sim(engine, world.org_id, world.active_iccid, SimAction.SUSPEND)

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        aaa = RunningAaa(engine, sealer)
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    try:
        assert fired, "the change was not made during the load"
        assert aaa.service.wait_applied(fired[0], timeout=5)
        out = radclient(aaa.auth_port, "auth", access(world.active))
        assert "Received Access-Reject" in out, out
    finally:
        aaa.close()


# -- changes from elsewhere ---------------------------------------------------------------


def test_a_change_made_by_another_process_disconnects_within_one_second(
    request: pytest.FixtureRequest,
    engine: Engine,
    sealer: Sealer,
    world: World,
    coa: socket.socket,
) -> None:
    if engine.dialect.name == "postgresql":
        url, pg_schema = request.getfixturevalue("pg_schema")
    else:
        url, pg_schema = engine.url.render_as_string(hide_password=False), ""
    aaa = RunningAaa(engine, sealer)
    try:
        _start_session(aaa, world)
        # As `ztsim sims suspend` would, in a process of its own: the SQLite follower
        # learns it by polling the file, PostgreSQL's by NOTIFY.
        script = (
            "import sys, time\n"
            "from ztsim.db.engine import make_engine\n"
            "from ztsim.inventory.lifecycle import SimAction\n"
            "from support.radius_feed import change_sim\n"
            "url, schema, org, iccid = sys.argv[1:5]\n"
            "engine = make_engine(url, schema=schema or None)\n"
            "change_sim(engine, org, iccid, SimAction.SUSPEND)\n"
            "print(time.time(), flush=True)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(TESTS)}
        with subprocess.Popen(
            [sys.executable, "-c", script, url, pg_schema, world.org_id, world.active_iccid],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as cli:
            coa.settimeout(30)  # the process's own start-up is not what is measured
            arrived = _disconnected(coa)
            out, err = cli.communicate(timeout=30)
        assert cli.returncode == 0, err
        committed = float(out.strip())
        assert arrived - committed < 1.0
    finally:
        aaa.close()


def test_network_changes_reach_the_snapshot(engine: Engine, sealer: Sealer, world: World) -> None:
    with engine.begin() as conn:
        conn.execute(delete(schema.ip_pools))
    aaa = RunningAaa(engine, sealer)
    try:
        out = radclient(aaa.auth_port, "auth", access(world.active))
        assert 'Reply-Message = "no address available"' in out, out
        out = radclient(aaa.auth_port, "auth", access(world.unbound))
        assert 'Reply-Message = "SIM is not bound to a device"' in out, out
        # A pool appears and the org turns trust on first attach on.
        with engine.begin() as conn:
            registry.create_pool(
                conn, world.org_id, cidr="10.80.0.0/16", static_cidr=None, now=datetime.now(UTC)
            )
            conn.execute(schema.orgs.update().values(tofu_binding=True))
            seq = publish(conn, world.org_id, Topic.NETWORK, world.org_id)
        assert aaa.service.wait_applied(seq, timeout=5)
        out = radclient(aaa.auth_port, "auth", access(world.active))
        assert "Received Access-Accept" in out, out
        assert "Framed-IP-Address = 10.80.0.1" in out, out  # its first block, claimed for it
        out = radclient(aaa.auth_port, "auth", access(world.unbound))
        assert "Received Access-Accept" in out, out
    finally:
        aaa.close()


def test_a_follower_behind_the_retention_reloads_everything(
    engine: Engine, sealer: Sealer, world: World, coa: socket.socket
) -> None:
    aaa = RunningAaa(engine, sealer)
    try:
        _start_session(aaa, world)
        # The change and its outbox row, pruned before anyone could read it: only a
        # full reload can learn it.
        with engine.begin() as conn:
            sim = inventory.change_state(
                conn, world.org_id, world.active_iccid, SimAction.SUSPEND, actor="t",
                reason="r", now=datetime.now(UTC),
            )  # fmt: skip
            assert sim.state.value == "suspended"
            seq = publish(conn, world.org_id, Topic.SIM, world.active_iccid)
            outbox.prune(conn, datetime.now(UTC) + timedelta(days=1))
        assert aaa.service.wait_applied(seq, timeout=5)
        _disconnected(coa)
        out = radclient(aaa.auth_port, "auth", access(world.active))
        assert "Received Access-Reject" in out, out
    finally:
        aaa.close()


def test_a_reload_keeps_a_frozen_heap_frozen(
    engine: Engine, sealer: Sealer, world: World, coa: socket.socket
) -> None:
    """A process that froze its start-up heap (node/radius.py does) has the reloaded
    snapshot frozen too: full collections do not walk a million SIMs after a resync."""
    aaa = RunningAaa(engine, sealer)
    try:
        core = aaa.service.core
        assert core is not None
        freeze_startup()
        old = core.snapshot
        assert aaa.service.following.resync() >= 0
        snapshot = core.snapshot
        assert snapshot is not old
        entries = list(snapshot.sims.values())
        assert entries
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(sim) in walked for sim in entries)
        assert id(snapshot) not in walked
    finally:
        gc.unfreeze()
        aaa.close()


# -- the first-attach binding window ------------------------------------------------------


def _device_imei(engine: Engine, imsi: str) -> str | None:
    s, d = schema.sims, schema.devices
    with engine.connect() as conn:
        imei: str | None = conn.execute(
            select(d.c.imei)
            .select_from(s.outerjoin(d, s.c.device_id == d.c.id))
            .where(s.c.imsi == imsi)
        ).scalar_one()
    return imei


def test_a_binding_made_in_memory_survives_a_refresh_read_before_its_commit(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    with engine.begin() as conn:
        conn.execute(schema.orgs.update().values(tofu_binding=True))
    # No flush on its own: the binding's batch is committed when the test says.
    aaa = RunningAaa(engine, sealer, flush_seconds=3600.0)
    try:
        out = radclient(aaa.auth_port, "auth", access(world.unbound))
        assert "Received Access-Accept" in out, out  # bound to this device, in memory
        # A refresh of that SIM (any change of it, from anywhere) reads the database,
        # where the binding is not yet.
        with engine.begin() as conn:
            seq = publish(conn, world.org_id, Topic.SIM, world.unbound_iccid)
        assert aaa.service.wait_applied(seq, timeout=5)
        assert _device_imei(engine, world.unbound) is None
        # A second device is still refused; the first still accepted.
        out = radclient(aaa.auth_port, "auth", access(world.unbound, imeisv=OTHER_IMEISV))
        assert "Received Access-Reject" in out, out
        assert "device is not the one bound to this SIM" in out, out
        out = radclient(aaa.auth_port, "auth", access(world.unbound))
        assert "Received Access-Accept" in out, out
        # Committed, and published: the refresh that follows has the binding itself.
        aaa.flush()
        assert _device_imei(engine, world.unbound) == world.device_imei
        assert aaa.service.wait_applied(_head(engine), timeout=5)
        core = aaa.service.core
        assert core is not None
        assert core.pending_bindings == {}
        assert not any(k.startswith("pending:") for k in core.snapshot.device_imeis)
        out = radclient(aaa.auth_port, "auth", access(world.unbound, imeisv=OTHER_IMEISV))
        assert "Received Access-Reject" in out, out
    finally:
        aaa.close()
