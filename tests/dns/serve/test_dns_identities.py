"""The identity table on the change feed: each change patches its keys from the database,
and the table always equals a fresh full load (on both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from ztsim.clock import Clock, utc_now
from ztsim.db import schema
from ztsim.dns.policy.identity import (
    IDENTITY_DISABLED,
    SIM_NOT_ACTIVE,
    IdentityResolver,
    NetworkDefault,
    Requester,
)
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.identities import IdentityTable, TablePatch
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.inventory.lifecycle import SimState
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.policy.store import checks, posture

from support.dns_feed_world import FeedWorld

ICCID_A, IMSI_A = "8900000000000000001", "001010000000001"
ICCID_B, IMSI_B = "8900000000000000002", "001010000000002"
TOKEN = "ztdns_device-token-for-tests-0123456789"


def _world(engine: Engine) -> FeedWorld:
    world = FeedWorld(engine)
    for identity in ("alice", "bob"):
        world.identity(identity)
    world.sim(ICCID_A, IMSI_A, "alice")
    world.sim(ICCID_B, IMSI_B, "bob", kind="physical")
    return world


class Follow:
    """A table and the position it reflects; `step` applies what lies above it."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self.table = IdentityTable(IdentityResolver(), clock)
        with engine.connect() as conn:
            self.position = outbox.position(conn)
            self.table.load(conn)

    def step(self) -> TablePatch:
        with self.engine.connect() as conn:
            changes = outbox.read_after(conn, self.position)
            patch = self.table.apply(conn, changes)
        if changes:
            self.position = changes[-1].seq
        return patch

    def who(self, address: str) -> Requester | None:
        return self.table.resolver.by_source(address)

    def matches_a_fresh_load(self) -> bool:
        fresh = IdentityTable(IdentityResolver(), self.clock)
        with self.engine.connect() as conn:
            fresh.load(conn)
        return fresh.digest() == self.table.digest()


def test_sessions_start_move_and_stop(engine: Engine) -> None:
    world = _world(engine)
    follow = Follow(engine)
    assert follow.who("10.0.0.1") is None
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    follow.step()
    assert follow.who("10.0.0.1") == Requester(
        "o1", "alice", sim_kind="esim", device_id="dev-alice", identity_kind="user"
    )
    # The session moves: only its new address is published; the old one goes too.
    world.session("s1", "10.0.0.9", ICCID_A, IMSI_A, "alice")
    follow.step()
    assert follow.who("10.0.0.1") is None
    assert follow.who("::ffff:10.0.0.9") is not None
    assert follow.matches_a_fresh_load()
    # Stopped without an address on the stop record: found by its accounting session.
    world.session("s2", "10.0.0.2", ICCID_B, IMSI_B, "bob")
    follow.step()
    assert follow.who("10.0.0.2") is not None
    world.session("s2", None, ICCID_B, IMSI_B, "bob", stopped=True)
    follow.step()
    assert follow.who("10.0.0.2") is None
    assert follow.matches_a_fresh_load()
    assert follow.table.index_sizes() == (1, 1, 1)  # alice's one session is all that is left


def test_a_suspended_sim_is_revoked_and_a_resumed_one_answers_again(engine: Engine) -> None:
    world = _world(engine)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    world.session("s2", "10.0.0.2", ICCID_B, IMSI_B, "bob")
    follow = Follow(engine)
    world.sim_state(ICCID_A, SimState.ACTIVE, SimState.SUSPENDED)
    follow.step()
    alice = follow.who("10.0.0.1")
    assert alice is not None
    assert alice.revoked == SIM_NOT_ACTIVE
    bob = follow.who("10.0.0.2")
    assert bob is not None
    assert bob.revoked == ""
    assert follow.matches_a_fresh_load()  # a load revokes it the same way
    world.sim_state(ICCID_A, SimState.SUSPENDED, SimState.ACTIVE)
    follow.step()
    alice = follow.who("10.0.0.1")
    assert alice is not None
    assert alice.revoked == ""
    world.sim_state(ICCID_B, SimState.ACTIVE, SimState.RETIRED)
    follow.step()
    bob = follow.who("10.0.0.2")
    assert bob is not None
    assert bob.revoked == SIM_NOT_ACTIVE


def test_a_revoked_address_wins_over_a_network_default(engine: Engine) -> None:
    world = _world(engine)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    world.sim_state(ICCID_A, SimState.ACTIVE, SimState.SUSPENDED)
    follow = Follow(engine)
    follow.table.set_sources((), (), [NetworkDefault("o1", "10.0.0.0/24")])
    alice = follow.who("10.0.0.1")
    assert alice is not None
    assert alice.revoked == SIM_NOT_ACTIVE  # revoked at load, not the network's default
    assert follow.who("10.0.0.77") == Requester("o1")


def test_identity_disabled_groups_and_its_device_tokens(engine: Engine) -> None:
    world = _world(engine)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    world.device("phone", "alice", "490154203237518")
    token_id, _ = world.issue_token("phone", TOKEN)
    follow = Follow(engine)
    assert follow.table.resolver.by_token(TOKEN) == Requester(
        "o1", "alice", device_id="phone", identity_kind="user"
    )
    world.join_group("staff", "alice")
    follow.step()
    alice = follow.who("10.0.0.1")
    assert alice is not None
    assert alice.group_ids == {"staff"}
    device = follow.table.resolver.by_token(TOKEN)
    assert device is not None
    assert device.group_ids == {"staff"}
    world.enabled("alice", False)
    follow.step()
    for who in (follow.who("10.0.0.1"), follow.table.resolver.by_token(TOKEN)):
        assert who is not None
        assert who.revoked == IDENTITY_DISABLED
    assert follow.matches_a_fresh_load()
    world.enabled("alice", True)
    follow.step()
    for who in (follow.who("10.0.0.1"), follow.table.resolver.by_token(TOKEN)):
        assert who is not None
        assert who.revoked == ""
    world.revoke_token(token_id)
    follow.step()
    assert follow.table.resolver.by_token(TOKEN) is None
    assert follow.matches_a_fresh_load()


def test_device_tokens_issued_and_revoked_over_a_policy_file_token(engine: Engine) -> None:
    world = _world(engine)
    world.device("phone", None, "490154203237518")
    follow = Follow(engine)
    from_file = Requester("o1", "static-owner")
    follow.table.set_sources([("10.9.9.9", from_file)], [(TOKEN, from_file)], ())
    assert follow.table.resolver.by_token(TOKEN) is from_file
    token_id, _ = world.issue_token("phone", TOKEN)
    follow.step()
    assert follow.table.resolver.by_token(TOKEN) == Requester("o1", device_id="phone")
    world.revoke_token(token_id)
    follow.step()
    assert follow.table.resolver.by_token(TOKEN) is from_file  # the file's comes back
    # A live session over a static address wins; the static entry returns when it stops.
    world.session("s9", "10.9.9.9", ICCID_A, IMSI_A, "alice")
    follow.step()
    assert follow.who("10.9.9.9") != from_file
    follow.table.set_sources([("10.9.9.9", from_file)], [], ())  # the file re-read: kept
    assert follow.who("10.9.9.9") != from_file
    world.session("s9", "10.9.9.9", ICCID_A, IMSI_A, "alice", stopped=True)
    follow.step()
    assert follow.who("10.9.9.9") is from_file
    follow.table.set_sources([], [], ())
    assert follow.who("10.9.9.9") is None
    assert follow.table.resolver.by_token(TOKEN) is None


def test_a_change_applied_twice_or_late_leaves_the_table_as_the_database(engine: Engine) -> None:
    world = _world(engine)
    follow = Follow(engine)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    world.sim_state(ICCID_A, SimState.ACTIVE, SimState.SUSPENDED)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice", stopped=True)
    with engine.connect() as conn:
        changes = outbox.read_after(conn, follow.position)
        follow.table.apply(conn, changes)
        follow.table.apply(conn, list(reversed(changes)))
        follow.table.apply(conn, changes[:1])
    assert follow.who("10.0.0.1") is None
    assert follow.matches_a_fresh_load()


class Ticking:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


T1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
IMEI = "490154203237518"


def _tags(follow: Follow) -> tuple[frozenset[str], frozenset[str]]:
    """Alice's address's tags and her phone's token's."""
    by_address, by_token = follow.who("10.0.0.1"), follow.table.resolver.by_token(TOKEN)
    assert by_address is not None
    assert by_token is not None
    return by_address.tags, by_token.tags


def test_posture_checks_conditions_and_time_patch_the_tags(engine: Engine) -> None:
    world = _world(engine)
    world.device("dev-alice", "alice", IMEI)  # the device her session names
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    world.issue_token("dev-alice", TOKEN)
    modern = PostureCheck("modern", "device.managed", timedelta(hours=1))
    with world.write() as conn:
        checks.create_check(conn, "o1", modern, actor="user:admin", now=T1)
    clock = Ticking(T1)
    follow = Follow(engine, clock)
    missing = frozenset({"posture:modern:missing"})
    assert _tags(follow) == (missing, missing)
    report = PostureReport(DeviceRef(imei=IMEI), Posture({"managed": True}, T1))
    with world.write() as conn:
        posture.record(conn, "o1", [report], actor="user:mdm", now=T1)
    follow.step()  # Topic.POSTURE, key: her device: its address and token
    passed = frozenset({"posture:modern:passed"})
    assert _tags(follow) == (passed, passed)
    assert follow.table.due_count() == 2  # both go stale in an hour
    assert follow.table.next_due() == T1 + timedelta(hours=1)
    assert follow.matches_a_fresh_load()
    clock.now = T1 + timedelta(minutes=59)
    with engine.connect() as conn:
        assert len(follow.table.read_due(conn)) == 0
    clock.now = T1 + timedelta(hours=1)
    with engine.connect() as conn:
        patch = follow.table.read_due(conn)
    assert len(patch) == 2
    follow.table.install(patch)
    stale = frozenset({"posture:modern:stale"})
    assert _tags(follow) == (stale, stale)
    assert (follow.table.due_count(), follow.table.next_due()) == (0, None)
    assert follow.matches_a_fresh_load()
    # A DNS rule that names no SIM condition: no org's tags change, nothing is read.
    world.rule(Rule("plain", Action.BLOCK, domains=("x.test",)))
    assert len(follow.step()) == 0
    # A SIM condition appears: every entry of the org is read again.
    with world.write() as conn:
        swapped = update(schema.sims).where(schema.sims.c.iccid == ICCID_A)
        conn.execute(swapped.values(swapped_at=clock.now - timedelta(hours=1)))
    world.rule(Rule("swap", Action.BLOCK, sim=("sim.swap_age < 2h",)))
    assert len(follow.step()) == 2
    tags = _tags(follow)
    assert tags[0] == stale | {"sim:sim.swap_age < 2h"}  # her SIM's session
    assert tags[1] == stale  # a token has no SIM
    assert follow.table.next_due() == clock.now + timedelta(hours=1)  # the swap ages
    assert follow.matches_a_fresh_load()


def test_a_posture_change_of_another_device_reads_nothing_of_this_one(engine: Engine) -> None:
    world = _world(engine)
    world.device("dev-alice", "alice", IMEI)
    world.session("s1", "10.0.0.1", ICCID_A, IMSI_A, "alice")
    follow = Follow(engine)
    with world.write() as conn:
        seq = world.publish(conn, Topic.POSTURE, "some-other-device")
    assert seq > follow.position
    assert len(follow.step()) == 0
