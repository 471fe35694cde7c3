"""End to end: a twin session is cut within a second by the org's chosen response.

The AAA role runs on loopback as `ztsim up` runs it, the watcher beside it as the node
starts it. A SIM attaches and starts a session; the same SIM attaches from another device
(a clone). The AAA refuses it and records `risk.clone`; the watcher reads it and applies
the org's twin_session response: `suspend` suspends the SIM through the inventory's use
case; `restrict` marks it clone-suspected, and the org's attach rule refuses such SIMs.
Either SIM change reaches the AAA on the change feed, and the AAA sends the first
session's gateway a Disconnect-Request (RFC 5176). Measured from the twin's attach to the
Disconnect-Request's arrival: under 1 s (printed)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import rules as rule_store
from ztsim.radius import (
    Code,
    EutranCellGlobalId,
    LocationType,
    Packet,
    Plmn,
    SharedSecret,
    TrackingAreaId,
    UserLocationInfo,
    decode_attributes,
    encode_reply,
    make_attribute,
    make_reply,
    sign_request,
    verify_request,
)
from ztsim.risk.serve.watch import Watcher
from ztsim.risk.settings import DEFAULT_SETTINGS, Detector, Response, with_response
from ztsim.risk.store import findings
from ztsim.risk.store.settings import put_settings
from ztsim.sealing import Sealer

from support.radius_world import (
    APN,
    IMEISV,
    OTHER_IMEISV,
    SECRET,
    RunningAaa,
    World,
    build_world,
)

_SECRET = SharedSecret(SECRET)
_HERE = Plmn("001", "01")
_ULI = UserLocationInfo.build(
    LocationType.TAI_AND_ECGI, TrackingAreaId(_HERE, 1), EutranCellGlobalId(_HERE, 257)
)


@dataclass
class Setup:
    engine: Engine
    world: World
    aaa: RunningAaa
    watcher: Watcher
    coa: socket.socket  # the packet gateway's Dynamic Authorization Server
    gateway: socket.socket  # the packet gateway's RADIUS client
    response: Response  # the org's for twin sessions


# Restricted SIMs may not attach (an org could as well allow them one APN only).
NO_CLONES = PolicyRule.from_spec("attach", "no-clones", "deny", {"sim": ["sim.clone_suspected"]})


@pytest.fixture(params=[Response.SUSPEND, Response.RESTRICT])
def setup(engine: Engine, sealer: Sealer, request: pytest.FixtureRequest) -> Iterator[Setup]:
    world = build_world(engine, sealer)
    response = Response(request.param)
    settings = with_response(DEFAULT_SETTINGS, Detector.TWIN_SESSION, response)
    coa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    coa.bind(("127.0.0.1", 0))
    coa.settimeout(3.0)
    gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gateway.bind(("127.0.0.1", 0))
    gateway.settimeout(3.0)
    with engine.begin() as conn:
        put_settings(conn, world.org_id, settings, actor="token:admin", now=datetime.now(UTC))
        conn.execute(schema.radius_gateways.update().values(coa_port=coa.getsockname()[1]))
        if response is Response.RESTRICT:
            rule_store.create_rule(
                conn, world.org_id, NO_CLONES, None, actor="t", now=datetime.now(UTC)
            )
    aaa = RunningAaa(engine, sealer, coa_tries=3, coa_timeout=0.25)
    watcher = Watcher(engine, every=0.1)  # as the node starts it
    watcher.start()
    try:
        yield Setup(engine, world, aaa, watcher, coa, gateway, response)
    finally:
        watcher.stop()
        aaa.close()
        coa.close()
        gateway.close()


def _ask(s: Setup, port: int, packet: Packet, *, ma: bool) -> Packet:
    datagram = sign_request(packet, _SECRET, add_message_authenticator=ma).encode()
    s.gateway.sendto(datagram, ("127.0.0.1", port))
    reply, _ = s.gateway.recvfrom(4096)
    return Packet.decode(reply)


def _attach(s: Setup, imeisv: str) -> Packet:
    imsi = s.world.active
    attributes = (
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
        make_attribute("3GPP-IMEISV", imeisv),
        make_attribute("Called-Station-Id", APN),
        make_attribute("3GPP-User-Location-Info", _ULI),
    )
    return _ask(
        s, s.aaa.auth_port, Packet(Code.ACCESS_REQUEST, 1, os.urandom(16), attributes), ma=True
    )


def _start(s: Setup, address: str) -> Packet:
    imsi = s.world.active
    attributes = (
        make_attribute("Acct-Status-Type", 1),  # Start (RFC 2866 §5.1)
        make_attribute("Acct-Session-Id", "live-1"),
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
        make_attribute("3GPP-IMEISV", IMEISV),
        make_attribute("Called-Station-Id", APN),
        make_attribute("Framed-IP-Address", address),
    )
    packet = Packet(Code.ACCOUNTING_REQUEST, 2, bytes(16), attributes)
    return _ask(s, s.aaa.acct_port, packet, ma=False)


def _wait_cursor(s: Setup) -> None:
    deadline = time.monotonic() + 5
    while s.watcher.position is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.watcher.position is not None


def test_a_twin_session_gets_the_orgs_response_and_the_first_session_is_cut_within_1s(
    setup: Setup,
) -> None:
    s = setup
    _wait_cursor(s)
    accepted = _attach(s, IMEISV)
    assert accepted.code is Code.ACCESS_ACCEPT
    address = str(decode_attributes(accepted).get("Framed-IP-Address"))
    assert _start(s, address).code is Code.ACCOUNTING_RESPONSE

    began = time.monotonic()
    twin = _attach(s, OTHER_IMEISV)  # the same SIM, live, from another device
    assert twin.code is Code.ACCESS_REJECT
    datagram, peer = s.coa.recvfrom(4096)
    elapsed = time.monotonic() - began
    print(f"{s.response.value}: twin attach -> Disconnect-Request: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0

    request = Packet.decode(datagram)
    assert request.code is Code.DISCONNECT_REQUEST
    verify_request(request, _SECRET, require_message_authenticator=True)
    attributes = decode_attributes(request)
    assert attributes.get("Acct-Session-Id") == "live-1"
    assert str(attributes.get("Framed-IP-Address")) == address
    s.coa.sendto(encode_reply(make_reply(request, Code.DISCONNECT_ACK, ()), request, _SECRET), peer)

    # Why, as the log tells it: the finding, the response by the detector, the event
    # that started it with where the twin was.
    with s.engine.connect() as conn:
        (finding,), _ = findings.list_findings(conn, s.world.org_id)
        e, sims = schema.events, schema.sims
        suspended = conn.execute(
            select(e.c.actor, e.c.reason).where(
                e.c.kind == "sim.suspend", e.c.subject == f"sim:{s.world.active_iccid}"
            )
        ).all()
        source = conn.execute(
            select(e.c.kind, e.c.payload).where(e.c.id == finding.source_event_id)
        ).one()
        state, suspected = conn.execute(
            select(sims.c.state, sims.c.clone_suspected_at).where(
                sims.c.iccid == s.world.active_iccid
            )
        ).one()
    assert (finding.detector, finding.response) == (Detector.TWIN_SESSION, s.response)
    assert finding.iccid == s.world.active_iccid
    assert finding.detail["signal"] == "clone_suspected"
    assert source[0] == "risk.clone"
    assert source[1]["location"] == {"plmn": "001-01", "tac": 1, "eci": 257}
    if s.response is Response.SUSPEND:
        assert finding.detail["outcome"] == "suspended"
        why = "automatic response to a twin_session finding"
        assert suspended == [("risk:twin_session", why)]
        assert (state, suspected) == ("suspended", None)
    else:
        assert finding.detail["outcome"] == "restricted"
        assert suspended == []
        assert state == "active"
        assert suspected is not None
    # And the SIM stays refused, whichever device asks.
    refused = _attach(s, IMEISV)
    assert refused.code is Code.ACCESS_REJECT
