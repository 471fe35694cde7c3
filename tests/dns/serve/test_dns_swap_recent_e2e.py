"""A SIM swap's cooling-off in DNS answers, end to end: the serving gateway on the change
feed, asked over real UDP. A swap published on the feed blocks finance names within a
second, with `sim:swap-recent` in the Extended DNS Error; when the cooling-off ends
(`sims.swap_recent_until`) the names answer again at that instant, with nothing
published. On both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

import pytest
from sqlalchemy import Engine, update

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.runner import GatewayProcess
from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.feed.change import Topic

from support.dns_feed_world import FeedWorld, Served, options
from support.dns_gateway_harness import free_port, udp_ask

# ICCID, IMSI, address
ALICE = ("8900000000000000001", "001010000000001", "127.0.0.41")
BOB = ("8900000000000000002", "001010000000002", "127.0.0.42")
ANSWER = "192.0.2.81"  # what the names resolve to when no block applies
COOLING = "blocked by rule cooling-off (sim:swap-recent)"
WITHIN = 1.0  # seconds from the commit (or the cooling-off's end) to the new answer
COOLING_OFF = timedelta(seconds=3)  # the org's setting, short enough for a test

Reply = tuple[list[str], list[tuple[int, str]]]
BLOCKED = (["0.0.0.0"], [(int(EdeCode.BLOCKED), COOLING)])  # noqa: S104 - an answer
ANSWERED: Reply = ([ANSWER], [])


def _ask(port: int, source: str, name: str) -> Reply:
    query = Message(id=9, flags=Flag.RD, questions=(Question(name, RRType.A),), edns=Edns())
    message = decode_message(udp_ask(port, query.to_wire(), source=source))
    addresses = [str(IPv4Address(r.rdata)) for r in message.answers if r.rtype == RRType.A]
    errors = message.edns.extended_errors() if message.edns else ()
    return addresses, [(e.info_code, e.extra_text) for e in errors]


def _until(port: int, source: str, name: str, wanted: Reply, since: float) -> float:
    """Seconds from `since` (monotonic) to the first answer equal to `wanted`."""
    while True:
        if _ask(port, source, name) == wanted:
            return time.monotonic() - since
        assert time.monotonic() - since < 8, f"never answered {wanted}"
        time.sleep(0.005)


def _swap(world: FeedWorld, iccid: str, now: datetime) -> int:
    """A SIM swap as the inventory records it: the signal and its cooling-off's end fixed
    at once, and the SIM's change on the feed in the same transaction."""
    with world.write() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == iccid)
            .values(swapped_at=now, swap_recent_until=now + COOLING_OFF)
        )
        return world.publish(conn, Topic.SIM, iccid)


@pytest.fixture
def world(engine: Engine) -> FeedWorld:
    world = FeedWorld(engine)
    for name, (iccid, imsi, _address) in (("alice", ALICE), ("bob", BOB)):
        world.identity(name)
        world.sim(iccid, imsi, name)
    world.rule(
        Rule(
            "cooling-off",
            Action.BLOCK,
            domains=(".finance.example",),
            sim=("sim.swap_recent",),
        )
    )
    world.rule(Rule("answer", Action.OVERRIDE, domains=(".finance.example",), answer=(ANSWER,)))
    return world


@pytest.fixture
def served(engine: Engine, world: FeedWorld) -> Iterator[Served]:
    with Served(GatewayProcess(options(engine, free_port()))) as served:
        for name, (iccid, imsi, address) in (("alice", ALICE), ("bob", BOB)):
            assert served.process.wait_applied(world.session(name, address, iccid, imsi, name), 5)
        yield served


def test_a_swap_blocks_until_its_cooling_off_ends(world: FeedWorld, served: Served) -> None:
    port, alice, bob = served.process.options.port, ALICE[2], BOB[2]
    assert _ask(port, alice, "www.finance.example") == ANSWERED
    committed = time.monotonic()
    swapped_at = datetime.now(UTC)
    _swap(world, ALICE[0], swapped_at)
    assert _until(port, alice, "www.finance.example", BLOCKED, committed) < WITHIN
    assert _ask(port, bob, "www.finance.example") == ANSWERED  # his SIM was not swapped
    ends = swapped_at + COOLING_OFF
    assert datetime.now(UTC) < ends, "the swap took the whole cooling-off to apply"
    at_end = time.monotonic() + (ends - datetime.now(UTC)).total_seconds()
    took = _until(port, alice, "www.finance.example", ANSWERED, at_end)
    assert -0.05 < took < WITHIN  # not before it ends, and soon after, with nothing published
