"""Status-Server (RFC 5997) in the AAA core, sans I/O: answered on the authentication port
with an Access-Accept and on the accounting port with an Accounting-Response, both signed
with a Message-Authenticator; discarded without a valid one or from an unknown client;
a retransmission gets the same reply; nothing is recorded; and no input makes it raise."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from ipaddress import IPv4Network, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.radius import (
    Attribute,
    AttributeType,
    Code,
    Packet,
    SharedSecret,
    sign_request,
    verify_reply,
)
from ztsim.radius.aaa.accounting import session_event
from ztsim.radius.aaa.core import MAX_AWAITING, AaaCore
from ztsim.radius.aaa.engine import GatewayEntry, SimEntry, Snapshot
from ztsim.radius.aaa.traffic import AfterCommit
from ztsim.radius.dictionary import make_attribute
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.table import Session, SessionIndex

from support.mutations import overwritten

SECRET = SharedSecret("status-secret-0123456789")
WRONG = SharedSecret("not-the-gateways-secret")
IMSI = "001010000000001"
PEER = ("127.0.0.1", 40000)
STRANGER = ("127.0.0.2", 40000)
POOL = PoolEntry("p1", "o1", IPv4Network("10.64.0.0/24"), None)


class _Sink:
    """Records whatever the core leaves for the writer: a Status-Server must leave nothing."""

    def __init__(self) -> None:
        self.records: list[object] = []
        self.generation = 0

    def access(self, record: object) -> None:
        self.records.append(record)

    def event(self, event: object, when: datetime) -> None:
        self.records.append(event)

    def session_event(self, session: Session, kind: str, when: datetime) -> None:
        self.records.append(session_event(session, kind))

    def session(self, session: object) -> None:
        self.records.append(session)

    def lease(self, pool: object, imsi: str, address: str, when: datetime) -> None:
        self.records.append((pool, imsi, address))

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        self.records.append((org_id, iccid, imei))


def _core(*, require_message_authenticator: bool = True) -> tuple[AaaCore, _Sink]:
    gateway = GatewayEntry(
        "g1",
        "o1",
        "pgw",
        ip_network("127.0.0.1/32"),
        SECRET,
        frozenset({"corp"}),
        require_message_authenticator,
        3799,
    )
    ipam = Ipam("status")
    ipam.add_block(POOL, POOL.network)
    sink = _Sink()
    snapshot = Snapshot(
        sims={IMSI: SimEntry("8944", "o1", IMSI, "active", "i1", "d1")},
        device_imeis={"d1": "353490069873327"},
        identities_enabled={"i1": True},
        gateways=(gateway,),
        pools={"o1": POOL},
    )
    core = AaaCore(
        snapshot=snapshot,
        sessions=SessionIndex(),
        ipam=ipam,
        sink=sink,
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    return core, sink


def _status(
    *, identifier: int = 7, attributes: tuple[Attribute, ...] = (), secret: SharedSecret = SECRET
) -> Packet:
    # RFC 5997 §3: a random Request Authenticator, as an Access-Request's.
    request = Packet(Code.STATUS_SERVER, identifier, os.urandom(16), attributes)
    return sign_request(request, secret)


def _without_message_authenticator(identifier: int = 8) -> bytes:
    return Packet(
        Code.STATUS_SERVER, identifier, os.urandom(16), (make_attribute("NAS-Identifier", "pgw"),)
    ).encode()


def _acct_reply(core: AaaCore, datagram: bytes, peer: tuple[str, int] = PEER) -> bytes | None:
    reply = core.handle_acct(datagram, peer)
    assert not isinstance(reply, AfterCommit), "a Status-Server waits for no commit"
    return reply


def _checked(reply: bytes | None, request: Packet, code: Code) -> Packet:
    assert reply is not None
    answer = Packet.decode(reply)
    assert answer.code is code
    verify_reply(answer, request, SECRET, require_message_authenticator=True)
    # The Message-Authenticator first (BlastRADIUS guidance), and nothing else.
    assert [a.type for a in answer.attributes] == [AttributeType.MESSAGE_AUTHENTICATOR]
    return answer


def test_the_authentication_port_answers_with_a_signed_access_accept() -> None:
    core, _ = _core()
    request = _status()
    _checked(core.handle_auth(request.encode(), PEER), request, Code.ACCESS_ACCEPT)
    c = core.counters
    assert (c.received, c.answered, c.status_server, c.dropped) == (1, 1, 1, 0)
    assert (c.accepts, c.rejects, c.accounting) == (0, 0, 0)


def test_the_accounting_port_answers_with_a_signed_accounting_response_at_once() -> None:
    core, _ = _core()
    request = _status()
    _checked(_acct_reply(core, request.encode()), request, Code.ACCOUNTING_RESPONSE)
    assert len(core.awaiting) == 0
    c = core.counters
    assert (c.received, c.answered, c.status_server, c.accounting) == (1, 1, 1, 0)


def test_it_is_answered_even_while_accounting_is_held_back() -> None:
    # Accounting-Requests go unanswered past MAX_AWAITING (the database is behind); the
    # health check reads nothing that waits for the database, so it still says "alive".
    core, _ = _core()
    for n in range(MAX_AWAITING):
        core.awaiting.add((PEER, n, bytes(16)), AfterCommit(PEER, b"", 1))
    request = _status()
    _checked(_acct_reply(core, request.encode()), request, Code.ACCOUNTING_RESPONSE)
    assert core.counters.acct_deferred == 0


def test_proxy_states_are_echoed() -> None:
    core, _ = _core()
    request = _status(attributes=(make_attribute("Proxy-State", b"\x01\x02"),))
    reply = core.handle_auth(request.encode(), PEER)
    assert reply is not None
    answer = Packet.decode(reply)
    verify_reply(answer, request, SECRET, require_message_authenticator=True)
    assert answer.get_all(AttributeType.PROXY_STATE) == (b"\x01\x02",)


def test_without_a_message_authenticator_it_is_discarded_on_both_ports() -> None:
    # RFC 5997 §3: even from a gateway not required to send one on Access-Requests.
    core, _ = _core(require_message_authenticator=False)
    assert core.handle_auth(_without_message_authenticator(), PEER) is None
    assert _acct_reply(core, _without_message_authenticator(9)) is None
    c = core.counters
    assert (c.bad_authenticator, c.answered, c.status_server) == (2, 0, 0)


def test_a_wrong_message_authenticator_is_discarded_on_both_ports() -> None:
    core, _ = _core()
    forged = _status(secret=WRONG).encode()
    assert core.handle_auth(forged, PEER) is None
    assert _acct_reply(core, forged) is None
    # A flipped bit after signing: the HMAC covers every attribute.
    signed = bytearray(_status(attributes=(make_attribute("NAS-Identifier", "pgw"),)).encode())
    signed[-1] ^= 1
    assert core.handle_auth(bytes(signed), PEER) is None
    assert core.counters.bad_authenticator == 3
    assert core.counters.answered == 0


def test_an_unknown_client_is_dropped_on_both_ports() -> None:
    core, _ = _core()
    request = _status().encode()
    assert core.handle_auth(request, STRANGER) is None
    assert _acct_reply(core, request, STRANGER) is None
    assert core.counters.unknown_client == 2
    assert core.counters.answered == 0


def test_a_retransmission_gets_the_same_reply() -> None:
    core, _ = _core()
    on_auth = _status().encode()
    first = core.handle_auth(on_auth, PEER)
    assert first is not None
    assert core.handle_auth(on_auth, PEER) == first
    on_acct = _status().encode()
    first = _acct_reply(core, on_acct)
    assert first is not None
    assert _acct_reply(core, on_acct) == first
    c = core.counters
    assert (c.answered, c.duplicates, c.status_server) == (2, 2, 2)


def test_the_same_packet_on_each_port_gets_that_ports_answer() -> None:
    # One retransmission cache serves both ports; its entry for one must not answer the other.
    core, _ = _core()
    request = _status()
    _checked(core.handle_auth(request.encode(), PEER), request, Code.ACCESS_ACCEPT)
    _checked(_acct_reply(core, request.encode()), request, Code.ACCOUNTING_RESPONSE)


def test_nothing_is_recorded_and_nothing_changes() -> None:
    core, sink = _core()
    free = core.ipam.free_count(POOL)
    request = _status(attributes=(make_attribute("User-Name", IMSI),))
    core.handle_auth(request.encode(), PEER)
    _acct_reply(core, _status(attributes=(make_attribute("User-Name", IMSI),)).encode())
    assert sink.records == []
    assert len(core.sessions) == 0
    assert core.accepted == {}
    assert core.ipam.free_count(POOL) == free
    assert core.pending_bindings == {}


def test_access_and_accounting_requests_are_answered_as_before_after_one() -> None:
    core, sink = _core()
    core.handle_auth(_status().encode(), PEER)
    access = Packet(
        Code.ACCESS_REQUEST,
        1,
        os.urandom(16),
        (
            make_attribute("3GPP-IMSI", IMSI),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", "corp"),
        ),
    )
    reply = core.handle_auth(
        sign_request(access, SECRET, add_message_authenticator=True).encode(), PEER
    )
    assert reply is not None
    assert Packet.decode(reply).code is Code.ACCESS_ACCEPT
    assert len(sink.records) == 2  # the decision and the lease


# -- whatever the attributes or the damage, nothing raises --------------------------------

_ATTRIBUTES = st.lists(
    st.builds(Attribute, st.integers(0, 255), st.binary(max_size=40)), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(_ATTRIBUTES, st.integers(0, 255))
def test_a_signed_status_server_with_any_attributes_is_answered(
    attributes: list[Attribute], identifier: int
) -> None:
    core, sink = _core()
    request = _status(identifier=identifier, attributes=tuple(attributes))
    datagram = request.encode()
    auth = core.handle_auth(datagram, PEER)
    acct = _acct_reply(core, datagram)
    for reply, code in ((auth, Code.ACCESS_ACCEPT), (acct, Code.ACCOUNTING_RESPONSE)):
        assert reply is not None
        answer = Packet.decode(reply)
        assert answer.code is code
        verify_reply(answer, request, SECRET, require_message_authenticator=True)
    assert sink.records == []


def _damaged() -> st.SearchStrategy[bytes]:
    bases = st.builds(
        lambda attributes: _status(attributes=tuple(attributes)).encode(), _ATTRIBUTES
    )
    cut = bases.flatmap(lambda b: st.integers(0, len(b) - 1).map(lambda n: b[:n]))
    return st.one_of(overwritten(bases, reach=200, min_spots=1), cut)


@settings(max_examples=300, deadline=None)
@given(st.lists(_damaged(), min_size=1, max_size=6))
def test_a_damaged_status_server_never_raises_and_every_drop_is_counted(
    datagrams: list[bytes],
) -> None:
    core, sink = _core()
    for n, datagram in enumerate(datagrams):
        peer = ("127.0.0.1", 2000 + n)
        core.handle_auth(datagram, peer)
        core.handle_acct(datagram, peer)
    c = core.counters
    assert c.received == 2 * len(datagrams)
    assert c.received == c.dropped + c.answered + c.duplicates
    assert sink.records == []
