"""A gateway's feed: one consistent load, two followers, how far it has applied, a resync
past the outbox's retention, and a database outage it serves through and catches up
after (on both backends)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from ztsim.dns.policy.identity import IdentityResolver, Requester
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.follow import GatewayFeed
from ztsim.dns.serve.identities import IdentityTable
from ztsim.dns.serve.policies import PolicyBuilder, Subjects
from ztsim.dns.wire.constants import RRType
from ztsim.feed import outbox
from ztsim.inventory.lifecycle import SimState

from support.dns_feed_world import STORE_KEY, FeedWorld

ICCID, IMSI = "8900000000000000001", "001010000000001"


class Published:
    def __init__(self) -> None:
        self.policies: list[tuple[int, PolicySnapshot]] = []

    def __call__(self, position: int, policy: PolicySnapshot, _subjects: Subjects) -> None:
        self.policies.append((position, policy))

    def blocks(self, name: str) -> bool:
        policy = self.policies[-1][1]
        return policy.decide(Requester("o1"), name, RRType.A).action is Action.BLOCK


def _world(engine: Engine) -> FeedWorld:
    world = FeedWorld(engine)
    world.identity("alice")
    world.sim(ICCID, IMSI, "alice")
    return world


@contextmanager
def _feed(engine: Engine, published: Published) -> Iterator[GatewayFeed]:
    feed = GatewayFeed(
        engine, PolicyBuilder(None, lambda: STORE_KEY), IdentityTable(IdentityResolver()), published
    )
    feed.load()
    feed.start_identities()
    feed.start_policy()
    try:
        yield feed
    finally:
        feed.stop()


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_changes_applied_in_order_and_waited_for(engine: Engine) -> None:
    world = _world(engine)
    first = world.session("s1", "10.0.0.1", ICCID, IMSI, "alice")
    published = Published()
    with _feed(engine, published) as feed:
        assert feed.position() == first  # loaded with the position it reflects
        assert published.policies[-1][0] == first
        assert not feed.wait_applied(first + 1, 0.05)  # nothing there yet: times out
        resolver = feed.table.resolver
        seq = world.sim_state(ICCID, SimState.ACTIVE, SimState.SUSPENDED)
        assert feed.wait_applied(seq, 10)
        who = resolver.by_source("10.0.0.1")
        assert who is not None
        assert who.revoked
        seq = world.rule(Rule("block", Action.BLOCK, domains=("blocked.test",)))
        assert feed.wait_applied(seq, 10)  # a DNS change: applied once the policy is
        assert published.blocks("blocked.test")
        assert published.policies[-1][0] == seq
        assert feed.lag_seconds() < 5
        assert feed.connected


def test_a_worker_counts_a_dns_change_applied_only_with_its_parents_policy(
    engine: Engine,
) -> None:
    world = _world(engine)
    published = Published()
    feed = GatewayFeed(
        engine, PolicyBuilder(None, lambda: STORE_KEY), IdentityTable(IdentityResolver()), published
    )
    start = feed.load()
    feed.start_identities()  # a worker: no policy follower of its own
    try:
        seq = world.rule(Rule("block", Action.BLOCK, domains=("blocked.test",)))
        assert _until(lambda: feed.identity_seq >= seq, 10)
        assert feed.position() == start  # its identities are current, its policy is not
        later = world.session("s1", "10.0.0.1", ICCID, IMSI, "alice")
        assert _until(lambda: feed.identity_seq >= later, 10)
        assert feed.position() == start
        feed.policy_loaded(seq)  # the parent's policy through the DNS change arrives
        assert feed.wait_applied(later, 1)
    finally:
        feed.stop()


def test_behind_the_outbox_retention_both_followers_resync(engine: Engine) -> None:
    world = _world(engine)
    published = Published()
    feed = GatewayFeed(
        engine, PolicyBuilder(None, lambda: STORE_KEY), IdentityTable(IdentityResolver()), published
    )
    feed.load()
    world.session("s1", "10.0.0.1", ICCID, IMSI, "alice")
    last = world.rule(Rule("block", Action.BLOCK, domains=("blocked.test",)))
    with world.write() as conn:  # the follower never saw them: pruned meanwhile
        outbox.prune(conn, datetime.now(UTC) + timedelta(days=1))
    feed.start_identities()
    feed.start_policy()
    try:
        assert feed.wait_applied(last, 10)
        assert feed.table.resolver.by_source("10.0.0.1") is not None
        assert published.blocks("blocked.test")
    finally:
        feed.stop()


def test_a_lost_database_serves_the_last_state_and_catches_up(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(engine)
    world.session("s1", "10.0.0.1", ICCID, IMSI, "alice")
    published = Published()
    with caplog.at_level(logging.WARNING, "ztsim.feed"), _feed(engine, published) as feed:
        resolver = feed.table.resolver
        with world.write() as conn:
            conn.execute(text("ALTER TABLE change_outbox RENAME TO change_outbox_away"))
        assert _until(lambda: not feed.connected, 10)
        time.sleep(0.3)
        assert feed.lag_seconds() >= 0.3
        assert resolver.by_source("10.0.0.1") is not None  # still serving what it had
        with world.write() as conn:
            conn.execute(text("ALTER TABLE change_outbox_away RENAME TO change_outbox"))
        seq = world.sim_state(ICCID, SimState.ACTIVE, SimState.SUSPENDED)
        assert feed.wait_applied(seq, 10)
        who = resolver.by_source("10.0.0.1")
        assert who is not None
        assert who.revoked
        assert _until(lambda: feed.connected, 10)
        assert feed.lag_seconds() < 5
    # Said once per follower that noticed (a follower polling between the renames may not).
    lost = [r.getMessage().split(":")[0] for r in caplog.records if "cannot be read" in r.message]
    back = [r.getMessage().split(":")[0] for r in caplog.records if "readable again" in r.message]
    assert lost
    assert sorted(lost) == sorted(set(lost)) == sorted(back)
