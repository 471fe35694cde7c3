"""Posture and SIM signals in DNS answers, end to end: the serving gateway on the change
feed, asked over real UDP (and by kdig). A posture report that makes a phone non-compliant
blocks it within a second, with the check named in the Extended DNS Error; a report past
its check's maximum age fails closed when it ages, with no change on the feed; a SIM
swapped an hour ago matches a rule on `sim.swap_age`; the query events carry the reasons.
On both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

import pytest
from sqlalchemy import Engine, select, update

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.runner import GatewayProcess
from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.policy.store import checks, posture

from support.dns_feed_world import FeedWorld, Served, options
from support.dns_gateway_harness import KDIG, free_port, kdig, records, udp_ask

# ICCID, IMSI, address, the IMEI of the phone its session reports
ALICE = ("8900000000000000001", "001010000000001", "127.0.0.31", "490154203237518")
BOB = ("8900000000000000002", "001010000000002", "127.0.0.32", "356938035643809")
ANSWER = "192.0.2.80"  # what the names resolve to when no block applies
CHECK = 'device.managed and device.os_version >= "17.0"'
FAILED = "blocked by rule no-finance (posture:managed-modern:failed)"
WITHIN = 1.0  # seconds from the commit (or the instant a report ages) to the new answer
ACTOR = "user:admin"

Reply = tuple[list[str], list[tuple[int, str]]]
BLOCKED = int(EdeCode.BLOCKED)


def _ask(port: int, source: str, name: str) -> Reply:
    """A records and Extended DNS Errors of the answer to `name` from `source`."""
    query = Message(id=7, flags=Flag.RD, questions=(Question(name, RRType.A),), edns=Edns())
    message = decode_message(udp_ask(port, query.to_wire(), source=source))
    addresses = [str(IPv4Address(r.rdata)) for r in message.answers if r.rtype == RRType.A]
    errors = message.edns.extended_errors() if message.edns else ()
    return addresses, [(e.info_code, e.extra_text) for e in errors]


def _until(port: int, source: str, name: str, wanted: Reply, since: float) -> float:
    """Seconds from `since` (monotonic) to the first answer equal to `wanted`."""
    while True:
        if _ask(port, source, name) == wanted:
            return time.monotonic() - since
        assert time.monotonic() - since < 5, f"never answered {wanted}"
        time.sleep(0.005)


def _report(world: FeedWorld, os_version: str, observed_at: datetime) -> int:
    """A report for alice's phone through the posture use case; its change's number."""
    report = PostureReport(
        DeviceRef(imei=ALICE[3]),  # as an MDM names it
        Posture({"managed": True, "os_version": os_version}, observed_at, source="mdm"),
    )
    with world.write() as conn:
        result = posture.record(conn, world.org, [report], actor=ACTOR, now=observed_at)
        assert result.applied == ["dev-alice"]
        return _last_seq(conn)


def _last_seq(conn: object) -> int:
    query = select(schema.change_outbox.c.seq).order_by(schema.change_outbox.c.seq.desc())
    return int(conn.execute(query.limit(1)).scalar_one())  # type: ignore[attr-defined]


@pytest.fixture
def world(engine: Engine) -> FeedWorld:
    world = FeedWorld(engine)
    now = datetime.now(UTC)
    for name, (iccid, imsi, _address, imei) in (("alice", ALICE), ("bob", BOB)):
        world.identity(name)
        world.sim(iccid, imsi, name)
        world.device(f"dev-{name}", name, imei)  # the device id sessions name (FeedWorld)
    with world.write() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == BOB[0])
            .values(swapped_at=now - timedelta(hours=1))
        )
        checks.create_check(
            conn, world.org, PostureCheck("managed-modern", CHECK), actor=ACTOR, now=now
        )
    world.rule(
        Rule(
            "no-finance", Action.BLOCK, domains=(".finance.example",), posture=("!managed-modern",)
        )
    )
    world.rule(
        Rule("swap-bank", Action.BLOCK, domains=(".bank.example",), sim=("sim.swap_age < 24h",))
    )
    world.rule(
        Rule(
            "answer",
            Action.OVERRIDE,
            domains=(".finance.example", ".bank.example"),
            answer=(ANSWER,),
        )
    )
    _report(world, "17.2", now)
    return world


@pytest.fixture
def served(engine: Engine, world: FeedWorld) -> Iterator[Served]:
    with Served(GatewayProcess(options(engine, free_port()))) as served:
        process = served.process
        for name, (iccid, imsi, address, _imei) in (("alice", ALICE), ("bob", BOB)):
            assert process.wait_applied(world.session(name, address, iccid, imsi, name), 5)
        yield served


def test_a_non_compliant_report_blocks_within_a_second(world: FeedWorld, served: Served) -> None:
    process, port = served.process, served.process.options.port
    alice = ALICE[2]
    assert _ask(port, alice, "www.finance.example") == ([ANSWER], [])  # compliant
    committed = time.monotonic()
    _report(world, "16.4", datetime.now(UTC))
    blocked = (["0.0.0.0"], [(BLOCKED, FAILED)])  # noqa: S104 - an answer, not a bind
    assert _until(port, alice, "www.finance.example", blocked, committed) < WITHIN
    if KDIG is not None:
        out = kdig(port, "www.finance.example", "A", "+edns", source=alice)
        assert f"EDE: 15 (Blocked): '{FAILED}'" in out, out
    # Compliant again: answered again, as soon as the report is applied.
    assert process.wait_applied(_report(world, "17.4", datetime.now(UTC)), 5)
    assert _ask(port, alice, "www.finance.example") == ([ANSWER], [])


def test_a_report_past_its_age_fails_closed_with_no_change(
    world: FeedWorld, served: Served
) -> None:
    process, port = served.process, served.process.options.port
    alice = ALICE[2]
    observed = datetime.now(UTC)
    assert process.wait_applied(_report(world, "17.3", observed), 5)
    # The check now trusts a report for 4 s: the org's entries are read again at once.
    with world.write() as conn:
        short = PostureCheck("managed-modern", CHECK, timedelta(seconds=4))
        checks.replace_check(conn, world.org, "managed-modern", short, actor=ACTOR, now=observed)
        seq = _last_seq(conn)
    assert process.wait_applied(seq, 5)
    assert _ask(port, alice, "www.finance.example") == ([ANSWER], [])
    stale = (["0.0.0.0"], [(BLOCKED, FAILED.replace("failed", "stale"))])  # noqa: S104
    ages = time.monotonic() + (observed + timedelta(seconds=4) - datetime.now(UTC)).total_seconds()
    took = _until(port, alice, "www.finance.example", stale, ages)
    assert -0.05 < took < WITHIN  # not before it ages, and soon after, with nothing published


def test_a_recent_sim_swap_matches_and_no_report_fails_closed(served: Served) -> None:
    port = served.process.options.port
    bob, alice = BOB[2], ALICE[2]
    swapped = "blocked by rule swap-bank (sim:swap-recent)"
    assert _ask(port, bob, "login.bank.example") == (["0.0.0.0"], [(BLOCKED, swapped)])  # noqa: S104
    assert _ask(port, alice, "login.bank.example") == ([ANSWER], [])  # her SIM was not swapped
    missing = "blocked by rule no-finance (posture:managed-modern:missing)"  # bob's phone
    assert _ask(port, bob, "www.finance.example") == (["0.0.0.0"], [(BLOCKED, missing)])  # noqa: S104
    if KDIG is not None:
        out = kdig(port, "login.bank.example", "A", "+edns", source=bob)
        assert f"EDE: 15 (Blocked): '{swapped}'" in out, out
        assert [r[-1] for r in records(out)] == ["0.0.0.0"]  # noqa: S104


def test_query_events_carry_the_reasons(engine: Engine, world: FeedWorld) -> None:
    with Served(GatewayProcess(options(engine, free_port()))) as served:
        process, port = served.process, served.process.options.port
        assert process.wait_applied(world.session("bob", BOB[2], BOB[0], BOB[1], "bob"), 5)
        _ask(port, BOB[2], "login.bank.example")
        _ask(port, BOB[2], "www.finance.example")
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.events.c.reason, schema.events.c.payload).where(
                schema.events.c.kind == "dns.query"
            )
        ).all()
    assert sorted((p["name"], p["reasons"], reason) for reason, p in rows) == [
        (
            "login.bank.example",
            ["rule:swap-bank", "sim:swap-recent"],
            "blocked by rule swap-bank (sim:swap-recent)",
        ),
        (
            "www.finance.example",
            ["rule:no-finance", "posture:managed-modern:missing"],
            "blocked by rule no-finance (posture:managed-modern:missing)",
        ),
    ]
