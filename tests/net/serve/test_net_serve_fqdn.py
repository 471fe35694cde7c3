"""FQDN rules end to end, on a real kernel and a real database: a rule allows TCP to the
site's web port for `intranet.acme.test` only. Before any answer the UE's connection to
the site's address is refused; once the DNS gateway answered the UE's query for that
name (the role's `learn`, driven directly, then through the real DNS engine and its
observer), it connects; once the answer's TTL has run out, it is refused again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ztsim.dns.answercache import AnswerCache
from ztsim.dns.engine import Engine as DnsEngine
from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import IdentityResolver, IdentitySnapshot, Requester
from ztsim.dns.policy.rules import Action, OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.serve.upstream import UpstreamPool
from ztsim.net.nft import Nft
from ztsim.net.serve.role import NetState
from ztsim.sealing import Sealer

from support.net_role_topology import HTTP_PORT, SITE, SITE_PREFIX, Topology, topology, why_skip
from support.net_role_world import NetWorld, add_rule, add_site, build_world, start_session
from support.netns_clients import dns_query

ALICE, BOB = "10.45.0.2", "10.45.0.3"
NAME = "intranet.acme.test"
TTL = 2  # seconds; the role's floor is set below it
_SKIP = why_skip()
pytestmark = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")


@dataclass
class Running:
    t: Topology
    world: NetWorld
    state: NetState

    def refused(self, source: str = ALICE) -> bool:
        try:
            self.t.connect(source, HTTP_PORT, timeout=0.5)
        except OSError:
            return True
        return False

    def until_allowed(self, limit: float = 3.0) -> float:
        """Seconds until `source` connects (bounded)."""
        started = time.monotonic()
        while self.refused():
            assert time.monotonic() - started < limit, "never allowed"
            time.sleep(0.002)
        return time.monotonic() - started


@pytest.fixture
def running(engine: Engine, sealer: Sealer, tmp_path: Path) -> Iterator[Running]:
    world = build_world(engine, sealer)
    add_site(engine, world, SITE_PREFIX)
    add_rule(
        engine, world, "intranet-web", "allow", identities=[world.alice.identity_id],
        domains=[NAME], protocol="tcp", ports=[str(HTTP_PORT)],
    )  # fmt: skip
    start_session(engine, world, world.alice, ALICE)
    start_session(engine, world, world.bob, BOB)
    with topology((ALICE, BOB), tmp_path) as t:
        state = NetState(engine, Nft(prefix=t.nft_prefix), reject=True, fqdn_floor=1)
        state.start(poll_seconds=0.05)
        try:
            yield Running(t, world, state)
        finally:
            state.stop()


def test_an_answered_name_opens_its_address_until_the_ttl_runs_out(running: Running) -> None:
    r = running
    assert r.refused()  # no answer yet: the address is no one's
    learned_at = time.monotonic()
    r.state.learn(ALICE, NAME, [SITE], TTL)
    took = r.until_allowed()
    print(f"learn to allowed: {took * 1000:.1f} ms")  # the figure, with -s
    assert took < 1.0
    # Another name, or another class's answer, opens nothing more.
    r.state.learn(BOB, NAME, [SITE], 300)
    r.state.learn(ALICE, "other.acme.test", ["172.31.77.3"], 300)
    assert r.refused(BOB)
    # The TTL runs out: new connections are refused again (the element's kernel timeout).
    deadline = learned_at + TTL + 3
    while not r.refused():
        assert time.monotonic() < deadline, "still allowed long after the TTL"
        time.sleep(0.05)
    assert time.monotonic() - learned_at >= TTL - 0.2
    # Answered again: open again.
    r.state.learn(ALICE, NAME, [SITE], TTL)
    r.until_allowed()


def test_the_dns_gateways_answer_opens_it(running: Running) -> None:
    r = running
    org = OrgPolicy("org", (Rule("pin", Action.OVERRIDE, domains=(NAME,), answer=(SITE,)),))
    policy = PolicySnapshot(PolicyData({"org": org}, {}, sample_feeds()), bytes(range(16)))
    identities = IdentityResolver(IdentitySnapshot.build([(ALICE, Requester("org", "alice"))]))
    gateway = Gateway(
        DnsEngine(policy, AnswerCache()), identities, UpstreamPool([("127.0.0.1", 9)])
    )
    gateway.on_answer = r.state.learn
    assert r.refused()
    who = identities.by_source(ALICE)
    reply = gateway.answer_now(dns_query(NAME, 7), who, udp=True, source=ALICE)
    assert reply is not None
    took = r.until_allowed()
    print(f"DNS answer to allowed: {took * 1000:.1f} ms")  # the figure, with -s
    assert took < 1.0
    # The role takes the batch in once nft returns: a moment after the kernel has it.
    deadline = time.monotonic() + 2
    while r.state.table.names(ALICE, SITE) != frozenset({NAME}):
        assert time.monotonic() < deadline, "the role did not take the learned name in"
        time.sleep(0.01)
