"""The serving gateway on the change feed, over real UDP (and DoH's service): a new session
is answered on its first query once its change is applied; a suspended SIM or a disabled
identity is REFUSED with an Extended DNS Error within a second of the commit, even where a
network default covers the address; device tokens come and go; one org's policy change
compiles no other org's list. On both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
from sqlalchemy import Engine

from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.doh import DohService
from ztsim.dns.serve.runner import GatewayProcess
from ztsim.dns.store import repository as dns_repo
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.inventory.lifecycle import SimState

from support.dns_feed_world import T0, FeedWorld, Served, options
from support.dns_gateway_harness import free_port, udp_ask

ICCID, IMSI = "8900000000000000001", "001010000000001"
ALICE_ANSWER, DEFAULT_ANSWER = "192.0.2.7", "192.0.2.1"
NULL_IP = "0.0.0.0"  # noqa: S104 - a blocked name's answer, not a bind
TOKEN = "ztdns_a-device-token-for-the-feed-tests-01"
REVOKE_WITHIN = 1.0  # seconds from the commit to the first REFUSED


def _query(name: str = "probe.test") -> bytes:
    return Message(
        id=0x4242, flags=Flag.RD, questions=(Question(name, RRType.A),), edns=Edns()
    ).to_wire()


def _reply(wire: bytes) -> tuple[int, list[str], list[tuple[int, str]]]:
    """RCODE, A records, Extended DNS Errors."""
    message = decode_message(wire)
    addresses = [str(IPv4Address(r.rdata)) for r in message.answers if r.rtype == RRType.A]
    errors = message.edns.extended_errors() if message.edns else ()
    return message.rcode, addresses, [(e.info_code, e.extra_text) for e in errors]


def _ask(
    port: int, source: str, name: str = "probe.test"
) -> tuple[int, list[str], list[tuple[int, str]]]:
    return _reply(udp_ask(port, _query(name), source=source))


@pytest.fixture
def world(engine: Engine) -> FeedWorld:
    world = FeedWorld(engine)
    world.identity("alice")
    world.sim(ICCID, IMSI, "alice")
    world.settings(("127.0.0.0/24",))  # a network default covering every test source
    world.rule(
        Rule(
            "alice",
            Action.OVERRIDE,
            domains=("probe.test",),
            identities=("alice",),
            answer=(ALICE_ANSWER,),
        )
    )
    world.rule(Rule("all", Action.OVERRIDE, domains=("probe.test",), answer=(DEFAULT_ANSWER,)))
    return world


@pytest.fixture
def served(engine: Engine, world: FeedWorld) -> Iterator[Served]:
    with Served(GatewayProcess(options(engine, free_port()))) as served:
        yield served


def _first_refused(port: int, source: str, committed: float) -> tuple[float, list[tuple[int, str]]]:
    """Seconds from `committed` to the first REFUSED from `source`, and its EDEs."""
    while True:
        rcode, _, errors = _ask(port, source)
        if rcode == Rcode.REFUSED:
            return time.monotonic() - committed, errors
        assert time.monotonic() - committed < 5, "never refused"
        time.sleep(0.005)


def test_a_new_session_is_answered_on_its_first_query(world: FeedWorld, served: Served) -> None:
    process, port = served.process, served.process.options.port
    assert _ask(port, "127.0.0.21") == (Rcode.NOERROR, [DEFAULT_ANSWER], [])  # the default
    seq = world.session("s1", "127.0.0.21", ICCID, IMSI, "alice")
    assert process.wait_applied(seq, 5)  # no sleep: the follower says it applied it
    assert _ask(port, "127.0.0.21") == (Rcode.NOERROR, [ALICE_ANSWER], [])
    assert process.position() >= seq
    assert 0 <= process.lag_seconds() < 5
    assert served.call(process.applied(seq, 1))  # the same, for a coroutine


def test_a_suspended_sim_is_refused_within_a_second_and_answered_after_resume(
    world: FeedWorld, served: Served
) -> None:
    process, port = served.process, served.process.options.port
    assert process.wait_applied(world.session("s1", "127.0.0.22", ICCID, IMSI, "alice"), 5)
    assert _ask(port, "127.0.0.22")[1] == [ALICE_ANSWER]
    world.sim_state(ICCID, SimState.ACTIVE, SimState.SUSPENDED)
    took, errors = _first_refused(port, "127.0.0.22", time.monotonic())
    assert took < REVOKE_WITHIN
    assert errors == [(EdeCode.PROHIBITED, "SIM not active")]
    assert _ask(port, "127.0.0.23")[1] == [
        DEFAULT_ANSWER
    ]  # the network default still serves others
    seq = world.sim_state(ICCID, SimState.SUSPENDED, SimState.ACTIVE)
    assert process.wait_applied(seq, 5)
    assert _ask(port, "127.0.0.22")[1] == [ALICE_ANSWER]


def test_a_disabled_identity_is_refused_within_a_second(world: FeedWorld, served: Served) -> None:
    process, port = served.process, served.process.options.port
    assert process.wait_applied(world.session("s1", "127.0.0.24", ICCID, IMSI, "alice"), 5)
    world.enabled("alice", False)
    took, errors = _first_refused(port, "127.0.0.24", time.monotonic())
    assert took < REVOKE_WITHIN
    assert errors == [(EdeCode.PROHIBITED, "identity disabled")]
    assert process.wait_applied(world.enabled("alice", True), 5)
    assert _ask(port, "127.0.0.24")[1] == [ALICE_ANSWER]


def test_device_tokens_issued_and_revoked_through_the_feed(
    world: FeedWorld, served: Served
) -> None:
    process = served.process
    doh = DohService(process.gateway, served.loop)
    world.device("phone", "alice", "490154203237518")
    assert doh.by_token(TOKEN) is None
    token_id, seq = world.issue_token("phone", TOKEN)
    assert process.wait_applied(seq, 5)
    who = doh.by_token(TOKEN)
    assert who is not None
    answer = served.call(doh.answer(_query(), who))
    assert answer is not None
    assert _reply(answer)[1] == [ALICE_ANSWER]  # the owner's rules follow the token
    assert process.wait_applied(world.revoke_token(token_id), 5)
    assert doh.by_token(TOKEN) is None
    refused = served.call(doh.answer(_query(), doh.by_token(TOKEN)))
    assert refused is not None
    assert _reply(refused)[0] == Rcode.REFUSED


def test_one_orgs_policy_change_compiles_no_other_list(engine: Engine, world: FeedWorld) -> None:
    other = FeedWorld(engine, "o2")
    for org in (world, other):
        with org.write() as conn:
            names = "\n".join(f"n{i}.{org.org}.test" for i in range(20_000))
            dns_repo.create_list(
                conn, org.org, name="big", fmt="domains", content=names, url=None, now=T0
            )
        org.rule(Rule("big", Action.BLOCK, lists=("big",)))
    with Served(GatewayProcess(options(engine, free_port()))) as served:
        process, port = served.process, served.process.options.port
        compiled = process.builder.compiled_lists
        assert compiled == 2
        assert _ask(port, "127.0.0.25", "n5.o1.test")[1] == [NULL_IP]
        seq = world.rule(Rule("new", Action.BLOCK, domains=("new.test",)))
        assert process.wait_applied(seq, 5)
        assert _ask(port, "127.0.0.25", "new.test")[1] == [NULL_IP]
        assert process.builder.compiled_lists == compiled  # neither list compiled again
