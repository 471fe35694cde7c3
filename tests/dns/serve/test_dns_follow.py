"""A gateway's feed: one consistent load, two followers, how far it has applied, a resync
past the outbox's retention, and a database outage it serves through and catches up
after (on both backends)."""

from __future__ import annotations

import logging
import socket
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
from ztsim.dns.serve.relay import RelayHub, RelayReceiver
from ztsim.dns.store import repository as dns_repo
from ztsim.dns.wire.constants import RRType
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.inventory.lifecycle import SimState
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.policy.store import checks, posture

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


class Ticking:
    """The identity table's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_policy_changes_recompile_and_due_entries_reach_the_workers(engine: Engine) -> None:
    world = _world(engine)
    world.device("dev-alice", "alice", "490154203237518")
    world.session("s1", "10.0.0.1", ICCID, IMSI, "alice")
    t1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    check = PostureCheck("modern", "device.managed", timedelta(minutes=10))
    report = PostureReport(DeviceRef(imei="490154203237518"), Posture({"managed": True}, t1))
    with world.write() as conn:
        checks.create_check(conn, "o1", check, actor="user:admin", now=t1)
        posture.record(conn, "o1", [report], actor="user:mdm", now=t1)
    clock, published = Ticking(t1), Published()
    parent_end, worker_end = socket.socketpair()
    feed = GatewayFeed(
        engine,
        PolicyBuilder(None, lambda: STORE_KEY),
        IdentityTable(IdentityResolver(), clock),
        published,
    )
    worker = GatewayFeed(
        engine,
        PolicyBuilder(None, lambda: STORE_KEY),
        IdentityTable(IdentityResolver(), clock),
        Published(),
    )
    feed.load()
    worker.load()  # as if forked after the parent's load
    feed.relay = RelayHub([parent_end])
    worker.relayed(RelayReceiver(worker_end))
    worker.start_identities()

    def tags(gateway: GatewayFeed) -> frozenset[str]:
        who = gateway.table.resolver.by_source("10.0.0.1")
        return frozenset() if who is None else who.tags

    try:
        assert tags(feed) == tags(worker) == {"posture:modern:passed"}
        # A rule written by a policy file's apply: published on Topic.POLICY only.
        with world.write() as conn:
            rule = Rule("finance", Action.BLOCK, domains=("blocked.test",))
            dns_repo.create_rule(conn, "o1", rule, None, t1)
            seq = world.publish(conn, Topic.POLICY, "o1")
        assert feed.catch_up() == 2  # read by both followers
        assert feed.position() == seq
        assert published.blocks("blocked.test")
        # Ten minutes on the report is stale: read again with no change published, and
        # relayed to the worker like any patch.
        clock.now = t1 + timedelta(minutes=10)
        assert feed.run_due() == 1
        assert tags(feed) == {"posture:modern:stale"}
        assert _until(lambda: tags(worker) == {"posture:modern:stale"}, 5)
        assert feed.run_due() == 0  # nothing left to flip
    finally:
        worker.stop()
        feed.relay.stop()
