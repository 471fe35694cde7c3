"""`ztsim serve dns --workers 2` on the change feed: every worker applies each change.

SO_REUSEPORT spreads queries over the workers by source port, so a change counts as
applied everywhere once 30 queries in a row, each from a fresh port, see it: were one
worker behind, each query would reach it with probability 1/2, and 30 in a row without it
happen once in 10^9. Every change comes from the parent, the host's one reader of the
feed: session and SIM changes as patches over each worker's socket pair, policy changes
through the share (rule edits: the index; a new list version: a new store file each
worker maps). The host's metrics are the workers' merged by the parent: every query
counted once, whichever worker answered it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, update

from ztsim.db import schema
from ztsim.db.engine import make_engine
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store import repository as dns_repo
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.feed.change import Topic
from ztsim.inventory.lifecycle import SimState

from support.dns_feed_world import T0, FeedWorld
from support.dns_gateway_harness import free_port, udp_ask
from support.prometheus_text import parse

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT workers: Linux")

ICCID, IMSI = "8900000000000000001", "001010000000001"
ALICE_ANSWER, DEFAULT_ANSWER = "192.0.2.7", "192.0.2.1"
NULL_IP = "0.0.0.0"  # noqa: S104 - a blocked name's answer, not a bind
IN_A_ROW = 30
Reply = tuple[int, list[str], list[tuple[int, str]]]
SENT = [0]  # queries `_ask` had answered, for the host's metrics


def _ask(port: int, source: str, name: str) -> Reply | None:
    query = Message(id=7, flags=Flag.RD, questions=(Question(name, RRType.A),), edns=Edns())
    try:
        message = decode_message(udp_ask(port, query.to_wire(), source=source, timeout=0.5))
    except OSError:
        return None  # not served yet (a query sent before the start is counted nowhere)
    SENT[0] += 1
    addresses = [str(IPv4Address(r.rdata)) for r in message.answers if r.rtype == RRType.A]
    errors = message.edns.extended_errors() if message.edns else ()
    return message.rcode, addresses, [(e.info_code, e.extra_text) for e in errors]


def _everywhere(
    port: int, source: str, name: str, seen: Callable[[Reply], bool], timeout: float
) -> float:
    """Seconds until IN_A_ROW queries in a row (fresh ports) are all `seen`."""
    started = time.monotonic()
    in_a_row, first = 0, 0.0
    while in_a_row < IN_A_ROW:
        assert time.monotonic() - started < timeout, f"not every worker applied it ({name})"
        reply = _ask(port, source, name)
        if reply is not None and seen(reply):
            first = time.monotonic() if in_a_row == 0 else first
            in_a_row += 1
        else:
            in_a_row = 0
            time.sleep(0.01)
    return first - started


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FeedWorld, dict[str, str]]]:
    env = {**os.environ, "ZTSIM_DATA_DIR": str(tmp_path / "data")}
    subprocess.run(
        [sys.executable, "-m", "ztsim", "init"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        org_id = str(conn.execute(sa.text("select id from orgs")).scalar_one())
    world = FeedWorld(engine, org_id)
    world.identity("alice")
    world.sim(ICCID, IMSI, "alice")
    world.settings(("127.0.0.0/24",))
    alice = Rule(
        "alice",
        Action.OVERRIDE,
        domains=("probe.test",),
        identities=("alice",),
        answer=(ALICE_ANSWER,),
    )
    world.rule(alice)
    world.rule(Rule("all", Action.OVERRIDE, domains=("probe.test",), answer=(DEFAULT_ANSWER,)))
    with world.write() as conn:
        dns_repo.create_list(
            conn, org_id, name="ads", fmt="domains", content="old.ads.test\n", url=None, now=T0
        )
    world.rule(Rule("ads", Action.BLOCK, lists=("ads",)))
    yield world, env
    engine.dispose()


def test_every_worker_applies_every_change(site: tuple[FeedWorld, dict[str, str]]) -> None:
    world, env = site
    port, metrics_port = free_port(), free_port()
    env = {
        **env,
        "ZTSIM_DNS_PORT": str(port),
        "ZTSIM_DNS_UPSTREAMS": json.dumps([]),
        "ZTSIM_DNS_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
    }
    SENT[0] = 0
    server = subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "dns", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        other, alice = "127.0.0.40", "127.0.0.41"
        _everywhere(port, other, "probe.test", lambda r: r[1] == [DEFAULT_ANSWER], 60)

        world.session("s1", alice, ICCID, IMSI, "alice")
        took = _everywhere(port, alice, "probe.test", lambda r: r[1] == [ALICE_ANSWER], 5)
        assert took < 1.0

        world.sim_state(ICCID, SimState.ACTIVE, SimState.SUSPENDED)
        revoked: Reply = (Rcode.REFUSED, [], [(EdeCode.PROHIBITED, "SIM not active")])
        took = _everywhere(port, alice, "probe.test", lambda r: r == revoked, 5)
        assert took < 1.0  # the SIM's address: refused, though the network default covers it

        world.rule(Rule("new", Action.BLOCK, domains=("new.test",)))  # through the parent
        _everywhere(port, other, "new.test", lambda r: r[1] == [NULL_IP], 5)
        assert _ask(port, other, "old.ads.test") is not None

        with world.write() as conn:  # a new version of the list: a store file to map
            conn.execute(
                update(schema.dns_lists).values(
                    content="old.ads.test\nfresh.ads.test\n", updated_at=datetime.now(UTC)
                )
            )
            world.publish(conn, Topic.DNS, world.org)
        _everywhere(port, other, "fresh.ads.test", lambda r: r[1] == [NULL_IP], 5)
        _everywhere(port, other, "old.ads.test", lambda r: r[1] == [NULL_IP], 5)
        _host_metrics_count_every_query(metrics_port)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr


def _host_metrics_count_every_query(metrics_port: int) -> None:
    """The parent's port: each worker reports every second; the sum is every query
    answered, by one worker or the other."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    deadline = time.monotonic() + 10
    while True:
        scrape = parse(httpx.get(url, timeout=5).text)
        counted = scrape.get("ztsim_dns_queries_total", transport="udp")
        if counted == SENT[0] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted == SENT[0]
    assert scrape.get("ztsim_dns_responses_total", verdict="refused_revoked") >= IN_A_ROW
    assert scrape.get("ztsim_dns_responses_total", verdict="blocked") >= 3 * IN_A_ROW
    processes = {dict(labels)["process"] for labels in scrape.series("ztsim_feed_lag_seconds")}
    assert processes == {"parent", "worker-0", "worker-1"}
    assert scrape.value("ztsim_feed_connected", role="dns", process="parent") == 1
