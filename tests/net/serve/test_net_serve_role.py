"""The net role on a real kernel and a real database: a gateway namespace between UE
addresses and a site, the table applied from the sessions and rules in the database and
kept current by the change feed.

An identity whose class allows the site's network connects; one whose class does not is
refused, as is an address with no session; traffic to addresses outside the sites is not
the table's business, and the site may not open connections towards a SIM. Suspending a
SIM through the inventory's use case refuses its next connection once the role applied it
and stops its open TCP flow; a rule edit replaces only the chain whose rules it changed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from ztsim.db import schema
from ztsim.feed import outbox
from ztsim.net.identity_option import Subject
from ztsim.net.nft import Nft, elements_of
from ztsim.net.serve.role import NetState
from ztsim.net.store.network_policy import SIM_NOT_ACTIVE
from ztsim.policy.store import rules as rule_store
from ztsim.sealing import Sealer

from support.net_role_topology import (
    ECHO_PORT,
    HTTP_PORT,
    INTERNET,
    SITE,
    SITE_PREFIX,
    Echo,
    Topology,
    topology,
    why_skip,
)
from support.net_role_world import (
    NetWorld,
    add_rule,
    add_site,
    build_world,
    replace_rule,
    start_session,
    suspend,
)
from support.netns_hosts import entered

ALICE, BOB, NOBODY = "10.45.0.2", "10.45.0.3", "10.45.0.4"
_SKIP = why_skip()
pytestmark = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")


@dataclass
class Running:
    t: Topology
    world: NetWorld
    engine: Engine
    state: NetState

    def applied(self, position: int) -> None:
        assert self.state.wait_applied(position, 5.0), "the role did not apply the change"

    def chains(self) -> dict[str, list[int]]:
        """Each class chain of the kernel's table -> its rules' handles."""
        out: dict[str, list[int]] = {}
        for item in self.state.nft.table()["nftables"]:
            if "chain" in item and item["chain"]["name"].startswith("class_"):
                out.setdefault(item["chain"]["name"], [])
            if "rule" in item and item["rule"]["chain"].startswith("class_"):
                out.setdefault(item["rule"]["chain"], []).append(item["rule"]["handle"])
        return out


@pytest.fixture
def running(engine: Engine, sealer: Sealer, tmp_path: Path) -> Iterator[Running]:
    world = build_world(engine, sealer)
    add_site(engine, world, SITE_PREFIX)
    add_rule(
        engine, world, "alice-site", "allow", identities=[world.alice.identity_id],
        cidrs=[SITE_PREFIX], protocol="tcp", ports=[str(HTTP_PORT), str(ECHO_PORT)],
    )  # fmt: skip
    add_rule(
        engine, world, "bob-ping", "allow", identities=[world.bob.identity_id],
        cidrs=[SITE_PREFIX], protocol="icmp",
    )  # fmt: skip
    start_session(engine, world, world.alice, ALICE)
    start_session(engine, world, world.bob, BOB)
    with topology((ALICE, BOB, NOBODY), tmp_path) as t:
        state = NetState(engine, Nft(prefix=t.nft_prefix), reject=True)
        state.start(poll_seconds=0.05)
        try:
            yield Running(t, world, engine, state)
        finally:
            state.stop()


def test_classes_decide_who_reaches_the_site(running: Running) -> None:
    r, t, world = running, running.t, running.world
    assert t.curl(ALICE) == "200"
    assert t.curl(BOB).startswith("failed")  # bob's class allows ping only
    assert t.curl(NOBODY).startswith("failed")  # no session: no class
    # Outside the sites: not the table's business.
    assert t.curl(BOB, INTERNET) == "200"
    assert t.curl(NOBODY, INTERNET) == "200"
    # The site may not open a connection towards a SIM.
    with entered(t.ue):
        listener = socket.create_server((ALICE, 7000))
    with listener, entered(t.site):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(1)
        with probe, pytest.raises(OSError, match=r"No route to host|refused|timed out"):
            probe.connect((ALICE, 7000))

    with r.engine.connect() as conn:
        position = outbox.position(conn)
    subject = r.state.subject_of_source(bytes([10, 45, 0, 2]))
    assert isinstance(subject, Subject)
    assert subject.identity == world.alice.identity_id
    assert subject.tag.generation <= position
    assert r.state.subject_of_source(bytes([10, 45, 0, 4])) is None
    denial = r.state.explain_denial(BOB, SITE, 6, HTTP_PORT)
    assert denial is not None
    assert (denial.org_id, denial.identity_id, denial.iccid) == (
        world.org_id,
        world.bob.identity_id,
        world.bob.iccid,
    )
    assert (denial.rule, denial.reasons) == (None, ("default:deny",))
    assert r.state.explain_denial(NOBODY, SITE, 6, HTTP_PORT) is None


def test_suspending_a_sim_refuses_new_flows_and_cuts_open_ones(running: Running) -> None:
    r, t = running, running.t
    echo = Echo(t, ALICE)
    try:
        echo.wait_for_echo(3.0)
        position = suspend(r.engine, r.world, r.world.alice)
        committed = time.monotonic()
        r.applied(position)
        applied_in = time.monotonic() - committed
        time.sleep(1.5)
        last = max(echo.echoes)
    finally:
        echo.close()
    stopped_after = max(0.0, last - committed)
    print(f"\nsuspension applied {1000 * applied_in:.1f} ms after the commit; last echo "
          f"{1000 * stopped_after:.1f} ms after it")  # fmt: skip
    assert stopped_after < 1.0
    started = time.monotonic()
    with pytest.raises(OSError, match=r"No route to host|refused"):
        t.connect(ALICE)
    print(f"new flow refused in {1000 * (time.monotonic() - started):.1f} ms")
    assert time.monotonic() - started < 0.1
    assert r.state.subject_of_source(bytes([10, 45, 0, 2])) is None
    denial = r.state.explain_denial(ALICE, SITE, 6, HTTP_PORT)
    assert denial is not None
    assert (denial.rule, denial.reasons) == (None, (SIM_NOT_ACTIVE,))
    assert ALICE not in {e[0] for e in elements_of(r.state.nft.table(), "subjects_v4")}
    assert t.curl(BOB, INTERNET) == "200"  # nobody else was touched


def test_a_rule_edit_replaces_only_the_touched_chain(running: Running) -> None:
    r, t, world = running, running.t, running.world
    before = r.chains()
    assert len(before) == 2  # alice's class and bob's
    alice_chain = f"class_{r.state.held()[ALICE]}"
    bob_chain = f"class_{r.state.held()[BOB]}"
    assert t.curl(BOB).startswith("failed")

    with r.engine.connect() as conn:
        stored = {s.name: s.id for s in rule_store.list_rules(conn, world.org_id)}
    position = replace_rule(
        r.engine, world, stored["bob-ping"], "bob-ping", "allow",
        identities=[world.bob.identity_id], cidrs=[SITE_PREFIX], protocol="tcp",
        ports=[str(HTTP_PORT)],
    )  # fmt: skip
    r.applied(position)
    after = r.chains()
    assert after[alice_chain] == before[alice_chain]  # untouched: the same rules, same handles
    assert bob_chain not in after  # no subject jumps to it any more: deleted
    new_bob = f"class_{r.state.held()[BOB]}"
    assert new_bob != bob_chain
    assert set(after) == {alice_chain, new_bob}
    assert t.curl(BOB) == "200"
    assert t.curl(ALICE) == "200"


def test_a_table_removed_behind_the_roles_back_is_applied_whole_again(running: Running) -> None:
    """A batch the kernel refuses is logged and retried by the follower, whole this time."""
    r, t, world = running, running.t, running.world
    assert t.exec(t.gw, "nft", "delete", "table", "inet", "ztsim").returncode == 0
    assert t.curl(ALICE, INTERNET) == "200"  # no table: nothing judged
    position = start_session(r.engine, world, world.bob, "10.45.0.9")
    r.applied(position)  # the delta failed (no table), the retry applied it whole
    assert t.curl(ALICE) == "200"
    assert t.curl(NOBODY).startswith("failed")
    held = {e[0] for e in elements_of(r.state.nft.table(), "subjects_v4")}
    assert held == {ALICE, BOB, "10.45.0.9"}


def test_time_alone_moves_a_class(engine: Engine, sealer: Sealer, tmp_path: Path) -> None:
    """A SIM condition that ages (a swap an hour old) moves its subject when it flips,
    with no change on the feed: the timer re-classifies it."""
    world = build_world(engine, sealer, seed=9)
    add_site(engine, world, SITE_PREFIX)
    add_rule(engine, world, "no-fresh-swap", "deny", sim=["sim.swap_age < 1h"], cidrs=[SITE_PREFIX])
    add_rule(engine, world, "site", "allow", cidrs=[SITE_PREFIX])
    swapped = datetime.now(UTC) - timedelta(minutes=30)
    with engine.begin() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == world.alice.iccid)
            .values(swapped_at=swapped)
        )
    start_session(engine, world, world.alice, ALICE)
    shift = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + shift[0]

    with topology((ALICE,), tmp_path) as t:
        state = NetState(engine, Nft(prefix=t.nft_prefix), reject=True, clock=clock)
        state.start(poll_seconds=0.05)
        try:
            assert t.curl(ALICE).startswith("failed")  # swapped 30 minutes ago
            fresh = state.held()[ALICE]
            shift[0] = timedelta(minutes=31)  # the swap is now more than an hour old
            deadline = time.monotonic() + 5
            while state.held()[ALICE] == fresh and time.monotonic() < deadline:
                time.sleep(0.05)
            assert state.held()[ALICE] != fresh
            assert t.curl(ALICE) == "200"
        finally:
            state.stop()
