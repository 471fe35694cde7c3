"""The phones' side of the demo's site: their traffic carried through ztsim's gateway
(the net role, its Geneve tunnel) to the site's intranet, a person without a rule refused
and audited, an open connection cut by a suspension; the Demo PGW's two APNs sharing
one Disconnect port and numbering their sessions apart; and the report's lines."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.net.sites import TunnelKind
from ztsim.net.store import sites
from ztsim.node.net import NetRole, NetSettings
from ztsim.radius.store import registry
from ztsim.sealing import Sealer
from ztsim.simulator import demo_intranet
from ztsim.simulator.demo_intranet import Holder, SiteReport, fetch
from ztsim.simulator.demo_site import DemoSite
from ztsim.simulator.demo_world import (
    INTRANET,
    INTRANET_APN,
    SITE_NETWORK,
    SITE_UNDERLAY,
    SITE_VNI,
)
from ztsim.simulator.pgw import PacketGateway, Session
from ztsim.simulator.runner import Targets
from ztsim.simulator.scenario import Behaviour, Device

from support import radius_world
from support.demo_namespaces import needs_site
from support.net_role_world import add_rule, build_world, start_session, suspend


def _site(engine: Engine, org_id: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        made = sites.create_site(
            conn, org_id, name="hq", tunnel=TunnelKind.GENEVE, endpoint=SITE_UNDERLAY,
            vni=SITE_VNI, actor="test", now=now,
        )  # fmt: skip
        sites.add_network(
            conn, org_id, made.id, name="intranet", cidr=SITE_NETWORK, actor="test", now=now
        )


def _flow_events(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.subject, e.c.outcome, e.c.payload).where(e.c.kind == "net.flow")
        ).all()
    return [(str(s), str(o), dict(p)) for s, o, p in rows]


@needs_site
def test_phones_reach_the_intranet_through_ztsim_and_a_suspension_cuts_an_open_connection(
    sqlite_engine: Engine, sealer: Sealer, site: DemoSite
) -> None:
    engine = sqlite_engine
    world = build_world(engine, sealer)
    _site(engine, world.org_id)
    add_rule(
        engine, world, "alice", "allow", identities=[world.alice.identity_id],
        cidrs=[SITE_NETWORK], protocol="tcp", ports=["80"],
    )  # fmt: skip
    alice, bob = "127.80.0.2", "127.80.0.3"  # the demo's pool, on loopback
    start_session(engine, world, world.alice, alice)
    position = start_session(engine, world, world.bob, bob)
    settings = NetSettings(
        enabled=True, nft_prefix=site.gateway_prefix, underlay=site.underlay, audit=True
    )
    role = NetRole(engine, settings)
    site.on_close(role.stop)
    role.start()
    assert role.wait_applied(position, 5.0)
    assert all(role.state.held().get(a) for a in (alice, bob))

    status, took = fetch(site.ue, alice)
    assert (status, took < 1.0) == (200, True)
    with pytest.raises(OSError, match="Connection refused"):  # the role rejects, at once
        fetch(site.ue, bob)
    deadline = time.monotonic() + 5
    while not (denied := _flow_events(engine)) and time.monotonic() < deadline:
        time.sleep(0.05)
    [(subject, outcome, payload)] = denied
    assert (subject, outcome) == (f"identity:{world.bob.identity_id}", "denied")
    assert (payload["source"], payload["destination"], payload["port"]) == (bob, INTRANET, 80)
    assert payload["rule"] is None  # the default deny

    holder = Holder(site.ue, alice).start()
    try:
        assert holder.opened.wait(3.0)
        time.sleep(0.2)
        assert not holder.ended.is_set()
        assert holder.answers > 3
        suspend(engine, world, world.alice)
        committed = time.time()
        assert holder.ended.wait(3.0)
    finally:
        holder.stop()
    assert holder.error is not None
    assert holder.last_answer is not None
    assert holder.last_answer - committed < 1.0
    with pytest.raises(OSError, match="Connection refused"):  # and a new one is refused
        fetch(site.ue, alice, timeout=0.5)


@pytest.mark.skipif(shutil.which("radclient") is None, reason="needs radclient (freeradius-utils)")
def test_the_pgws_disconnect_port_serves_both_apns() -> None:
    """A SIM live on both APNs has a session on each at one address: a Disconnect-Request
    names the session it means (Acct-Session-Id), and that APN's gateway answers it."""
    secret = "coa-test-secret"
    device = Device("d", "001010000000077", "3534900698733277", None, Behaviour.EMPLOYEE)
    address = ipaddress.IPv4Address("127.80.0.5")

    async def disconnect(port: int, session_id: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", "disconnect", secret,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        attributes = (
            f'User-Name = "{device.imsi}"\nAcct-Session-Id = "{session_id}"\n'
            f"Framed-IP-Address = {address}\nMessage-Authenticator = 0x00\n"
        )
        out, _ = await proc.communicate(attributes.encode())
        return out.decode()

    async def run() -> None:
        nowhere = ("127.0.0.1", 9)
        targets = Targets(nowhere, nowhere, secret, nowhere, ("127.0.0.1", 0))
        corp, intranet, coa = await demo_intranet.start_gateways(targets, "corp.acme")
        try:
            assert (corp.apn, intranet.apn) == ("corp.acme", "intranet.acme")
            gateways: list[PacketGateway] = [corp, intranet]
            for gateway, session_id in zip(gateways, ("s-1", "s-1000001"), strict=True):
                gateway.sessions[device.imsi] = Session(
                    device, device.imeisv, address, session_id, 0.0
                )
            port = coa.get_extra_info("sockname")[1]
            assert "Received Disconnect-ACK" in await disconnect(port, "s-1000001")
            assert (list(corp.sessions), intranet.sessions) == ([device.imsi], {})
            assert "Received Disconnect-ACK" in await disconnect(port, "s-1")
            assert corp.sessions == {}
            assert [imsi for imsi, _ in corp.disconnects + intranet.disconnects] == [
                device.imsi,
                device.imsi,
            ]
        finally:
            coa.close()
            corp.close()
            intranet.close()

    asyncio.run(run())


def test_the_two_apns_number_their_sessions_apart(sqlite_engine: Engine, sealer: Sealer) -> None:
    """One NAS address, two emulated gateways: the AAA server keys sessions by (gateway,
    Acct-Session-Id), so the intranet APN's ids start at 1000001, the scenario's at 1."""
    world = radius_world.build_world(sqlite_engine, sealer)
    with sqlite_engine.begin() as conn:  # the registered gateway also serves the intranet APN
        registry.delete_gateway(conn, world.org_id, world.gateway_id)
        registry.create_gateway(
            conn, sealer, world.org_id, name="pgw-1", address="127.0.0.1",
            secret=radius_world.SECRET, apns=[radius_world.APN, INTRANET_APN],
            require_message_authenticator=True, coa_port=3799, now=datetime.now(UTC),
        )  # fmt: skip
    device = Device("p", world.active, radius_world.IMEISV, None, Behaviour.EMPLOYEE)
    aaa = radius_world.RunningAaa(sqlite_engine, sealer)

    async def run() -> list[str]:
        auth, acct = ("127.0.0.1", aaa.auth_port), ("127.0.0.1", aaa.acct_port)
        targets = Targets(auth, acct, radius_world.SECRET, ("127.0.0.1", 9), ("127.0.0.1", 0))
        corp, intranet, coa = await demo_intranet.start_gateways(targets, radius_world.APN)
        try:
            assert (corp.first_session_id, intranet.first_session_id) == (1, 1_000_001)
            for gateway in (corp, intranet):
                assert (await gateway.attach(device)).accepted
            return [g.sessions[device.imsi].session_id for g in (corp, intranet)]
        finally:
            coa.close()
            corp.close()
            intranet.close()

    try:
        ids = asyncio.run(run())
        aaa.flush()
    finally:
        aaa.close()
    assert ids == [f"{device.imsi}-1", f"{device.imsi}-1000001"]
    s = schema.radius_sessions
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(s.c.acct_session_id, s.c.apn).order_by(s.c.id)).all()
    assert [tuple(r) for r in rows] == [(ids[0], radius_world.APN), (ids[1], INTRANET_APN)]


def test_the_report_tells_each_check_and_what_went_wrong() -> None:
    report = SiteReport("Ada", "John", "Barbara", reached=200, reached_ms=4.2)
    report.refused = "[Errno 113] No route to host"
    report.denial = {"outcome": "denied", "payload": {"rule": None}}
    report.cut_ms, report.last_answer_ms = 61.4, 48.6
    assert report.lines() == [
        "site: Ada reached the intranet at 10.80.0.10 over APN intranet.acme (200 in 4 ms)",
        "site: John, a contractor, was refused (net.flow denied, rule default deny)",
        "site: the cloned SIM's open connection to the intranet (Barbara's) was cut 61 ms "
        "after the suspension (its last answer: +49 ms)",
    ]
    silent = SiteReport("Ada", "John", "Barbara", refused="timed out")
    silent.problems.append("Barbara's open connection was not cut")
    assert silent.lines() == [
        "site: John, a contractor, was refused (no net.flow event names them)",
        "site: Barbara's open connection was not cut",
    ]
