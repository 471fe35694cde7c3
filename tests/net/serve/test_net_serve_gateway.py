"""Private connectivity end to end (issue #20's "must show"), on the real kernel and a
real database: a UE namespace with two SIMs' addresses (sessions as the AAA writer
commits them), ztsim's gateway namespace running the net role as the composition root
builds it (nft, tunnels on the underlay, the NFLOG audit), and a site namespace running
ztsim's own Geneve endpoint with a private HTTP service. The site and its network are
declared through the net store after the role started: the role builds the tunnel from
the change feed. The start-up heap is frozen, as `ztsim up` does.

- the allowed identity's GET gets 200, through the tunnel;
- tshark on the gateway's underlay decodes Geneve with the site's VNI and ztsim's class
  option carrying the (generation, class) the role gave that SIM, then its identity;
- the denied identity (an explicit deny rule) is refused, and a `net.flow` event, outcome
  denied, names that rule and the identity;
- suspending the allowed SIM through the inventory's use case stops its open TCP flow
  within a second and refuses a new connection; the refusal is audited too.
"""

from __future__ import annotations

import gc
import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from ztsim.events import store as event_store
from ztsim.events.schema import Event, Outcome, subject_of
from ztsim.feed import outbox
from ztsim.heap import freeze_startup
from ztsim.net.identity_option import OPTION_CLASS, TYPE_IDENTITY, TYPE_POLICY_CLASS
from ztsim.net.sites import TunnelKind
from ztsim.net.store import sites
from ztsim.net.store.network_policy import SIM_NOT_ACTIVE
from ztsim.node.net import NetRole, NetSettings
from ztsim.sealing import Sealer

from support.net_capture import TSHARK
from support.net_gateway_world import (
    ECHO_PORT,
    GW_UNDERLAY,
    HTTP_PORT,
    SITE_PREFIX,
    SITE_UNDERLAY,
    VNI,
    Echo,
    GatewayWorld,
    capture_geneve,
    why_skip,
)
from support.net_role_world import NetWorld, add_rule, build_world, start_session, suspend

ALICE, BOB = "10.45.0.2", "10.45.0.3"
_SKIP = why_skip()
pytestmark = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")


@dataclass
class Running:
    net: GatewayWorld
    world: NetWorld
    engine: Engine
    role: NetRole

    def flow_events(self, subject: str, at_least: int = 1, timeout: float = 5.0) -> list[Event]:
        """The `net.flow` events about `subject`, once there are `at_least` (the audit
        writes once a second)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as conn:
                found, _ = event_store.query(
                    conn, self.world.org_id, event_store.EventQuery("net.flow", subject)
                )
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def _declare_site(engine: Engine, world: NetWorld) -> int:
    """The site and its network through the net store's use cases; the feed position."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        site = sites.create_site(
            conn, world.org_id, name="hq", tunnel=TunnelKind.GENEVE, endpoint=SITE_UNDERLAY,
            vni=VNI, actor="test", now=now,
        )  # fmt: skip
        sites.add_network(
            conn, world.org_id, site.id, name="hq-lan", cidr=SITE_PREFIX, actor="test", now=now
        )
        return outbox.position(conn)


@pytest.fixture
def running(engine: Engine, sealer: Sealer) -> Iterator[Running]:
    world = build_world(engine, sealer, seed=11)
    add_rule(
        engine, world, "alice-site", "allow", identities=[world.alice.identity_id],
        cidrs=[SITE_PREFIX], protocol="tcp", ports=[str(HTTP_PORT), str(ECHO_PORT)],
    )  # fmt: skip
    add_rule(
        engine, world, "bob-no-site", "deny", identities=[world.bob.identity_id],
        cidrs=[SITE_PREFIX],
    )  # fmt: skip
    start_session(engine, world, world.alice, ALICE)
    start_session(engine, world, world.bob, BOB)
    net = GatewayWorld()
    try:
        net.open((ALICE, BOB))
        settings = NetSettings(
            enabled=True, nft_prefix=net.prefix, poll_seconds=0.05, underlay=GW_UNDERLAY
        )
        role = NetRole(engine, settings)
        role.start()
        # As `ztsim up` does once its roles started: without it a full collection of the
        # test process's heap (150-400 ms here, holding the GIL) lands in the timings.
        freeze_startup()
        try:
            started = time.monotonic()
            position = _declare_site(engine, world)
            assert role.wait_applied(position, 10.0), "the role did not carry the new site"
            print(f"\nsite declared -> carried in {1000 * (time.monotonic() - started):.0f} ms")
            yield Running(net, world, engine, role)
        finally:
            gc.unfreeze()
            role.stop()
    finally:
        net.close()


def test_private_connectivity_end_to_end(running: Running) -> None:
    r, net, world = running, running.net, running.world
    state = r.role.state
    assert state.tunnels is not None
    assert state.tunnels.pump is not None

    # Allowed: through the tunnel, with the SIM's class on the wire.
    geneve = capture_geneve(net) if TSHARK else None
    started = time.monotonic()
    assert net.curl(ALICE) == "200"
    print(f"allowed GET through the tunnel: {1000 * (time.monotonic() - started):.0f} ms")
    subject = state.subject_of_source(ipaddress.ip_address(ALICE).packed)
    assert subject is not None
    assert subject.identity == world.alice.identity_id
    if geneve is not None:
        out, err = geneve.communicate(timeout=15)
        vni, classes, types, data = out.strip().split("|")
        assert int(vni, 0) == VNI, err
        assert [int(c, 0) for c in classes.split(",")] == [OPTION_CLASS] * 2
        assert [int(t, 0) for t in types.split(",")] == [TYPE_POLICY_CLASS, TYPE_IDENTITY]
        tag = f"{subject.tag.generation:08x}{subject.tag.class_id:08x}"
        assert data.split(",") == [tag, world.alice.identity_id]
        print(f"tshark: vni {VNI}, class option {tag} (generation, class), identity")

    # Denied by an explicit rule: refused at once, and audited with the rule's name.
    started = time.monotonic()
    assert net.curl(BOB).startswith("failed")
    print(f"denied GET refused in {1000 * (time.monotonic() - started):.0f} ms (curl included)")
    bob = subject_of("identity", world.bob.identity_id)
    events = r.flow_events(bob)
    assert events, "no net.flow event for the denied identity"
    print(f"its net.flow event stored {1000 * (time.monotonic() - started):.0f} ms after")
    event = events[-1]  # the first attempt (newest first)
    assert event.outcome is Outcome.DENIED
    assert event.reason == "policy_denied"
    assert event.payload["rule"] == "bob-no-site"
    assert event.payload["iccid"] == world.bob.iccid
    assert event.payload["source"] == BOB
    assert (event.payload["protocol"], event.payload["port"]) == (6, HTTP_PORT)
    assert event.payload["chain"].startswith("class_")
    assert not r.flow_events(subject_of("identity", world.alice.identity_id), timeout=0)

    # Suspended: the open flow stops within a second, a new one is refused.
    echo = Echo(net, ALICE)
    try:
        echo.wait_for_echo(3.0)
        position = suspend(r.engine, world, world.alice)
        committed = time.monotonic()
        assert r.role.wait_applied(position, 5.0)
        applied_in = time.monotonic() - committed
        time.sleep(1.5)
        last = max(echo.echoes)
    finally:
        echo.close()
    stopped_after = max(0.0, last - committed)
    print(f"suspension applied {1000 * applied_in:.0f} ms after the commit; the open flow's "
          f"last echo {1000 * stopped_after:.0f} ms after it")  # fmt: skip
    assert stopped_after < 1.0
    started = time.monotonic()
    with pytest.raises(OSError, match=r"No route to host|refused|reset"):
        net.connect(ALICE)
    refused_in = time.monotonic() - started
    print(f"new connection refused in {1000 * refused_in:.1f} ms")
    assert refused_in < 0.1
    assert state.subject_of_source(ipaddress.ip_address(ALICE).packed) is None
    alice = r.flow_events(subject_of("identity", world.alice.identity_id))
    assert alice, "the suspended SIM's refused attempts were not audited"
    assert all(e.payload["policy_reasons"] == [SIM_NOT_ACTIVE] for e in alice)
    assert {e.payload["chain"] for e in alice} == {"forward"}  # in no class any more

    reader = r.role.audit.reader if r.role.audit is not None else None
    assert reader is not None
    assert reader.counts["received"] >= 2
    assert state.tunnels.pump.engine.sent > 0
