"""Accounting across orgs, sans I/O: a gateway is heard only about its own org's SIMs, and
only for the address ztsim leased to that SIM. Anything else is answered but makes no
session, copies nothing of the SIM into the gateway's org, and is recorded as refused."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Network, ip_network

import pytest

from ztsim.events.schema import NewEvent
from ztsim.radius import Code, Packet, SharedSecret, sign_request
from ztsim.radius.aaa.accounting import (
    SESSION_STARTED,
    SESSION_STOPPED,
    location_json,
    session_event,
    session_event_row,
)
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.engine import (
    AccessRequest,
    GatewayEntry,
    SimEntry,
    Snapshot,
    attach_text,
    imei_of,
)
from ztsim.radius.aaa.traffic import stored_event_row
from ztsim.radius.dictionary import decode_attributes, make_attribute
from ztsim.radius.uli import (
    EutranCellGlobalId,
    LocationType,
    Plmn,
    TrackingAreaId,
    UserLocationInfo,
)
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.table import Session, SessionIndex

SECRET = SharedSecret("accounting-secret-0123456789")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
IMSI_A, IMSI_B, IMSI_NOBODY = "001010000000001", "001010000000002", "001010000000009"
IMEI_B = "353490069873327"  # B's device, seen at B's last attach
GW_A = GatewayEntry(
    "gw-a", "org-a", "pgw-a", ip_network("127.0.0.1/32"), SECRET, frozenset({"corp"}), True, 3799
)
GW_B = GatewayEntry(
    "gw-b", "org-b", "pgw-b", ip_network("127.0.0.2/32"), SECRET, frozenset({"corp"}), True, 3799
)
POOL_A = PoolEntry("pool-a", "org-a", IPv4Network("10.231.0.0/24"), None)
POOL_B = PoolEntry("pool-b", "org-b", IPv4Network("10.232.0.0/24"), None)


class _Sink:
    def __init__(self) -> None:
        self.events: list[NewEvent] = []
        self.sessions: list[Session] = []
        self.generation = 0

    def access(self, record: object) -> None:
        pass

    def event(self, event: NewEvent, when: datetime) -> None:
        self.events.append(event)

    def session_event(self, session: Session, kind: str, when: datetime) -> None:
        self.events.append(session_event(session, kind))

    def session(self, session: Session) -> None:
        self.sessions.append(session)

    def lease(self, pool: object, imsi: str, address: str, when: datetime) -> None:
        pass

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        pass


def _core() -> tuple[AaaCore, _Sink]:
    ipam = Ipam("test")
    ipam.learn(POOL_A.id, IMSI_A, "10.231.0.1")
    ipam.learn(POOL_B.id, IMSI_B, "10.232.0.1")
    sink = _Sink()
    core = AaaCore(
        snapshot=Snapshot(
            sims={
                IMSI_A: SimEntry("8901", "org-a", IMSI_A, "active", "ident-a", "dev-a"),
                IMSI_B: SimEntry("8902", "org-b", IMSI_B, "active", "ident-b", "dev-b"),
            },
            device_imeis={"dev-b": IMEI_B},
            identities_enabled={"ident-a": True, "ident-b": True},
            gateways=(GW_A, GW_B),
            pools={"org-a": POOL_A, "org-b": POOL_B},
        ),
        sessions=SessionIndex(),
        ipam=ipam,
        sink=sink,
        clock=lambda: NOW,
    )
    # B's SIM attached through B's gateway: its IMEI and APN are remembered.
    core.accepted[IMSI_B] = attach_text(AccessRequest(IMSI_B, IMEI_B, "corp"))
    return core, sink


def _request(status: int, sid: str, imsi: str, address: str | None, *, imei: bool) -> Packet:
    attributes = [
        make_attribute("Acct-Status-Type", status),
        make_attribute("Acct-Session-Id", sid),
        make_attribute("User-Name", imsi),
        make_attribute("3GPP-IMSI", imsi),
    ]
    if imei:
        attributes.append(make_attribute("3GPP-IMEISV", "4901542032375100"))
    if address is not None:
        attributes.append(make_attribute("Framed-IP-Address", address))
    return Packet(Code.ACCOUNTING_REQUEST, 1, bytes(16), tuple(attributes))


def _send(core: AaaCore, gateway: GatewayEntry, packet: Packet) -> None:
    core._accounting(gateway, str(gateway.network.network_address), decode_attributes(packet))


def _texts(sink: _Sink) -> str:
    return repr(sink.events) + repr(sink.sessions)


@pytest.mark.parametrize("address", ["10.232.0.1", "10.231.0.1", None])
def test_another_orgs_sim_makes_no_session_and_leaks_nothing(address: str | None) -> None:
    core, sink = _core()
    _send(core, GW_A, _request(1, "steal-1", IMSI_B, address, imei=False))
    _send(core, GW_A, _request(3, "steal-1", IMSI_B, address, imei=False))
    assert len(core.sessions) == 0
    assert sink.sessions == []
    assert IMEI_B not in _texts(sink)
    assert "8902" not in _texts(sink)
    assert {e.org_id for e in sink.events} == {"org-a"}
    assert [(e.kind, e.reason) for e in sink.events] == [
        ("radius.accounting_refused", "unknown_imsi")
    ] * 2
    # B's SIM is not flagged a clone by A's gateway's fake session.
    assert core.sessions.live_imeis(IMSI_B) == set()


def test_another_orgs_sim_looks_exactly_like_an_unknown_imsi() -> None:
    core, sink = _core()
    _send(core, GW_A, _request(1, "x", IMSI_B, "10.231.0.9", imei=True))
    _send(core, GW_A, _request(1, "x", IMSI_NOBODY, "10.231.0.9", imei=True))
    foreign, unknown = sink.events
    assert foreign.payload == {**unknown.payload, "imsi": IMSI_B}
    assert (foreign.kind, foreign.reason, foreign.outcome) == (
        unknown.kind,
        unknown.reason,
        unknown.outcome,
    )
    assert foreign.subject == f"imsi:{IMSI_B}"


@pytest.mark.parametrize("address", ["10.231.0.2", "10.232.0.1"])
def test_own_sim_at_an_address_not_leased_to_it_is_a_clone_signal(address: str) -> None:
    core, sink = _core()
    _send(core, GW_A, _request(1, "c-1", IMSI_A, address, imei=True))
    assert len(core.sessions) == 0
    assert sink.sessions == []
    assert [(e.org_id, e.kind, e.reason, e.subject) for e in sink.events] == [
        ("org-a", "radius.accounting_refused", "address_not_leased", "sim:8901"),
        ("org-a", "risk.clone", "address_not_leased", "sim:8901"),
    ]
    assert sink.events[0].payload["ue_address"] == address
    # What the gateway said (the IMEISV's IMEI), for the investigation.
    assert sink.events[0].payload["imei"] == imei_of("4901542032375100")


def test_own_sim_at_its_leased_address_makes_the_session_and_a_wrong_interim_changes_nothing() -> (
    None
):
    core, sink = _core()
    _send(core, GW_A, _request(1, "ok-1", IMSI_A, "10.231.0.1", imei=True))
    (session,) = sink.sessions
    assert (session.org_id, session.iccid, session.ue_address) == ("org-a", "8901", "10.231.0.1")
    _send(core, GW_A, _request(3, "ok-1", IMSI_A, "10.231.0.7", imei=True))
    live = core.sessions.get(("gw-a", "ok-1"))
    assert live is not None
    assert live.ue_address == "10.231.0.1"
    assert [e.kind for e in sink.events] == [
        "radius.session_started",
        "radius.accounting_refused",
        "risk.clone",
    ]


def test_a_located_session_keeps_its_place_to_its_stop() -> None:
    plmn = Plmn("262", "01")
    uli = UserLocationInfo.build(
        LocationType.TAI_AND_ECGI, TrackingAreaId(plmn, 7), EutranCellGlobalId(plmn, 42)
    )
    core, sink = _core()
    start = _request(1, "loc-1", IMSI_A, "10.231.0.1", imei=True)
    located = (*start.attributes, make_attribute("3GPP-User-Location-Info", uli))
    _send(core, GW_A, Packet(start.code, start.identifier, start.authenticator, located))
    # An Interim-Update without a ULI changes nothing; then the Stop.
    _send(core, GW_A, _request(3, "loc-1", IMSI_A, "10.231.0.1", imei=True))
    _send(core, GW_A, _request(2, "loc-1", IMSI_A, "10.231.0.1", imei=True))
    started, stopped = sink.sessions
    assert started.location == location_json(uli)
    assert started.location is not None
    assert started.location["type"] == "TAI_AND_ECGI"
    # The Stop's row rewrites the session: the place the index kept comes with it.
    assert stopped.location == started.location
    assert (stopped.stop_cause, stopped.stopped_at) == ("stop", NOW)


def test_the_sims_own_gateway_still_gets_the_imei_of_the_attach() -> None:
    core, sink = _core()
    _send(core, GW_B, _request(1, "b-1", IMSI_B, "10.232.0.1", imei=False))
    (session,) = sink.sessions
    assert (session.org_id, session.imei, session.apn) == ("org-b", IMEI_B, "corp")


def test_a_refused_request_is_still_answered() -> None:
    core, sink = _core()
    wire = sign_request(_request(1, "steal-2", IMSI_B, "10.232.0.1", imei=False), SECRET).encode()
    assert core.handle_acct(wire, ("127.0.0.1", 1813)) is not None
    assert sink.sessions == []
    assert [e.kind for e in sink.events] == ["radius.accounting_refused"]


@pytest.mark.parametrize(
    ("iccid", "imsi", "stop_cause"),
    [("8900000000000000001", IMSI_A, None), (None, IMSI_A, "stop"), (None, None, "disconnected")],
)
def test_a_session_events_row_is_the_row_of_its_event(
    iccid: str | None, imsi: str | None, stop_cause: str | None
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = Session(
        "org-a", "gw-a", "s-1", "127.0.0.1", imsi, iccid, "id-1", None, "3520990017614823",
        "10.231.0.1", "corp.apn", "EUTRAN", None, now, now, now if stop_cause else None,
        stop_cause,
    )  # fmt: skip
    for kind in (SESSION_STARTED, SESSION_STOPPED):
        assert session_event_row(s, kind, "t") == stored_event_row(session_event(s, kind), "t")
