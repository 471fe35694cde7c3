"""The server core under hostile input: whatever arrives, nothing raises, every drop is
counted, and a valid request is still answered afterwards. And a pool without a free
address: the request waits (unanswered) for the next block, or is refused when the pool
has none left. And rows re-read from the database: laid over the first-attach bindings
the core made in memory and the writer has not yet committed, never undoing them."""

from __future__ import annotations

import gc
import os
from dataclasses import replace
from datetime import UTC, datetime
from ipaddress import IPv4Network, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.radius import (
    Attribute,
    AttributeType,
    Code,
    EutranCellGlobalId,
    LocationType,
    Packet,
    Plmn,
    RadiusAuthError,
    RadiusDecodeError,
    SharedSecret,
    TrackingAreaId,
    UserLocationInfo,
    encode_reply,
    make_reply,
    sign_request,
    verify_request,
)
from ztsim.radius.aaa import core as core_module
from ztsim.radius.aaa.accounting import session_event
from ztsim.radius.aaa.core import AaaCore, accounting_response
from ztsim.radius.aaa.engine import (
    MESSAGES,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    SnapshotPatch,
)
from ztsim.radius.aaa.traffic import AfterCommit, access_events
from ztsim.radius.dictionary import decode_attributes, make_attribute
from ztsim.radius.fastpath import RawRequest, message_authenticator_ok, scan_request
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.table import Session, SessionIndex

from support.mutations import overwritten

SECRET = SharedSecret("fuzz-secret-0123456789")
IMSI = "001010000000001"
GATEWAY = GatewayEntry(
    "g1", "o1", "pgw", ip_network("127.0.0.1/32"), SECRET, frozenset({"corp"}), True, 3799
)
POOL = PoolEntry("p1", "o1", IPv4Network("10.64.0.0/24"), None)


class _Sink:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.sessions: list[object] = []
        self.generation = 0

    def access(self, record: object) -> None:
        self.events.append(record)

    def event(self, event: object, when: datetime) -> None:
        self.events.append(event)

    def session_event(self, session: Session, kind: str, when: datetime) -> None:
        self.events.append(session_event(session, kind))

    def session(self, session: object) -> None:
        self.sessions.append(session)

    def lease(self, pool: object, imsi: str, address: str, when: datetime) -> None:
        pass

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        pass


def _core(*, with_block: bool = True) -> AaaCore:
    ipam = Ipam("fuzz")
    if with_block:
        # A block handed over without a database, as the service does after a claim.
        ipam.add_block(POOL, POOL.network)
    snapshot = Snapshot(
        sims={IMSI: SimEntry("8944", "o1", IMSI, "active", "i1", "d1")},
        device_imeis={"d1": "353490069873327"},
        identities_enabled={"i1": True},
        gateways=(GATEWAY,),
        pools={"o1": POOL},
    )
    return AaaCore(
        snapshot=snapshot,
        sessions=SessionIndex(),
        ipam=ipam,
        sink=_Sink(),
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


def _valid_access() -> bytes:
    request = Packet(
        Code.ACCESS_REQUEST,
        1,
        os.urandom(16),
        (
            make_attribute("User-Name", IMSI),
            make_attribute("3GPP-IMSI", IMSI),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", "corp"),
            make_attribute("Proxy-State", b"\x01"),
        ),
    )
    return sign_request(request, SECRET, add_message_authenticator=True).encode()


def _valid_acct(session_id: str = "s", ident: int = 2, status: int = 1) -> bytes:
    request = Packet(
        Code.ACCOUNTING_REQUEST,
        ident,
        bytes(16),
        (
            make_attribute("Acct-Status-Type", status),
            make_attribute("Acct-Session-Id", session_id),
            make_attribute("User-Name", IMSI),
        ),
    )
    return sign_request(request, SECRET).encode()


def _acct_without_session_id() -> bytes:
    request = Packet(
        Code.ACCOUNTING_REQUEST, 3, bytes(16), (make_attribute("Acct-Status-Type", 1),)
    )
    return sign_request(request, SECRET).encode()


def _mutations() -> st.SearchStrategy[bytes]:
    bases = st.sampled_from([_valid_access(), _valid_acct()])
    truncated = bases.flatmap(lambda b: st.integers(0, len(b) - 1).map(lambda n: b[:n]))
    return st.one_of(
        st.binary(max_size=600),
        overwritten(bases, reach=400, min_spots=1),
        truncated,
        st.just(_acct_without_session_id()),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_mutations(), min_size=1, max_size=10))
def test_hostile_datagrams_are_dropped_and_counted(datagrams: list[bytes]) -> None:
    core = _core()
    answered = 0
    for n, datagram in enumerate(datagrams):
        if core.handle_auth(datagram, ("127.0.0.1", 1000 + n)) is not None:
            answered += 1
        if core.handle_acct(datagram, ("127.0.0.1", 1000 + n)) is not None:
            answered += 1
    c = core.counters
    assert c.received == 2 * len(datagrams)
    assert c.received == c.dropped + c.answered + c.duplicates
    assert answered == c.answered + c.duplicates
    reply = core.handle_auth(_valid_access(), ("127.0.0.1", 9))
    assert reply is not None
    assert Packet.decode(reply).code is Code.ACCESS_ACCEPT


@settings(max_examples=500, deadline=None)
@given(_mutations())
def test_fast_path_reads_what_the_codec_reads(datagram: bytes) -> None:
    try:
        packet: Packet | None = Packet.decode(datagram)
    except RadiusDecodeError:
        packet = None
    try:
        raw: RawRequest | None = scan_request(datagram)
    except RadiusDecodeError:
        raw = None
    if packet is None:
        # The fast path does not check the code: the server does, right after.
        assert raw is None or raw.code not in {int(c) for c in Code}
        return
    assert raw is not None
    assert (raw.code, raw.identifier, raw.authenticator) == (
        packet.code,
        packet.identifier,
        packet.authenticator,
    )
    assert list(raw.access.proxy_states) == [
        a.encode() for a in packet.attributes if a.type == AttributeType.PROXY_STATE
    ]
    user = packet.get(AttributeType.USER_NAME)
    if user is not None and raw.access.user_name is not None:
        assert raw.access.user_name.encode() == user
    if packet.code is Code.ACCESS_REQUEST:
        try:
            verify_request(packet, SECRET, require_message_authenticator=True)
            codec_ok = True
        except RadiusAuthError:
            codec_ok = False
        assert message_authenticator_ok(datagram, raw, SECRET.reveal(), required=True) is codec_ok


def test_decision_records_are_left_for_the_writer_untracked_by_the_cyclic_gc() -> None:
    # Records wait in memory for the writer. Were they tracked, they would pile up in the
    # old generation, and full collections (scans of the whole heap) would stall the hot
    # path every few tens of thousands of requests.
    core = _core()
    assert core.handle_auth(_valid_access(), ("127.0.0.1", 5000)) is not None
    sink = core.sink
    assert isinstance(sink, _Sink)
    record = sink.events[-1]
    gc.collect(0)
    assert not gc.is_tracked(record)


def test_a_dry_pool_leaves_the_request_unanswered_until_its_next_block_is_in() -> None:
    core = _core(with_block=False)
    asked: list[PoolEntry] = []
    core.need_block = asked.append
    datagram = _valid_access()
    assert core.handle_auth(datagram, ("127.0.0.1", 7)) is None
    assert asked == [POOL]
    assert core.counters.no_address_yet == 1
    assert core.counters.dropped == 1
    sink = core.sink
    assert isinstance(sink, _Sink)
    assert sink.events == []  # no decision yet: the retransmission is decided
    core.ipam.add_block(POOL, POOL.network)
    # RFC 2865 §2.4: the gateway retransmits the same datagram.
    reply = core.handle_auth(datagram, ("127.0.0.1", 7))
    assert reply is not None
    answer = Packet.decode(reply)
    assert answer.code is Code.ACCESS_ACCEPT
    assert str(decode_attributes(answer).get("Framed-IP-Address")) == "10.64.0.1"
    assert core.counters.duplicates == 0
    assert len(sink.events) == 1
    # The block has 254 addresses, under the low-water mark: the next one is asked for.
    assert asked == [POOL, POOL]


def test_an_exhausted_pool_refuses_new_sims_and_asks_for_nothing() -> None:
    core = _core(with_block=False)
    asked: list[PoolEntry] = []
    core.need_block = asked.append
    core.exhausted_pools.add(POOL.id)
    reply = core.handle_auth(_valid_access(), ("127.0.0.1", 7))
    assert reply is not None
    answer = Packet.decode(reply)
    assert answer.code is Code.ACCESS_REJECT
    assert decode_attributes(answer).get("Reply-Message") == MESSAGES[Reason.NO_ADDRESS]
    assert asked == []
    assert core.counters.rejects == 1
    assert core.counters.no_address_yet == 0


def test_an_exhausted_pool_still_gives_a_sim_its_leased_address() -> None:
    core = _core(with_block=False)
    core.exhausted_pools.add(POOL.id)
    core.ipam.learn(POOL.id, IMSI, "10.64.0.77")
    reply = core.handle_auth(_valid_access(), ("127.0.0.1", 7))
    assert reply is not None
    answer = Packet.decode(reply)
    assert answer.code is Code.ACCESS_ACCEPT
    assert str(decode_attributes(answer).get("Framed-IP-Address")) == "10.64.0.77"


# -- accounting is answered once its records are durable (RFC 2866 §2) --------------------


def test_an_accounting_reply_waits_for_the_commit_of_its_records() -> None:
    core = _core()
    sink = core.sink
    assert isinstance(sink, _Sink)
    sink.generation = 7
    peer = ("127.0.0.1", 1813)
    after = core.handle_acct(_valid_acct(), peer)
    assert isinstance(after, AfterCommit)
    assert (after.peer, after.generation) == (peer, 7)
    assert Packet.decode(after.reply).code is Code.ACCOUNTING_RESPONSE
    assert len(sink.sessions) == 1  # recorded before the reply was handed out
    # An earlier batch's commit does not release it.
    assert core.committed(6) == []
    # Its retransmission before the commit gets nothing, and records nothing again.
    assert core.handle_acct(_valid_acct(), peer) is None
    assert len(sink.sessions) == 1
    assert core.counters.duplicates == 1
    assert core.committed(7) == [after]
    assert core.committed(7) == []
    # Once durable, a retransmission gets the same reply from the cache.
    assert core.handle_acct(_valid_acct(), peer) == after.reply
    assert core.counters.duplicates == 2


def test_replies_come_out_in_order_up_to_the_committed_generation() -> None:
    core = _core()
    sink = core.sink
    assert isinstance(sink, _Sink)
    handed: list[AfterCommit] = []
    for n in range(6):
        sink.generation = n // 2
        after = core.handle_acct(_valid_acct(f"s{n}", ident=n), ("127.0.0.1", 1813))
        assert isinstance(after, AfterCommit)
        handed.append(after)
    assert core.committed(1) == handed[:4]
    assert len(core.awaiting) == 2
    assert core.committed(5) == handed[4:]


def test_past_the_bound_accounting_is_left_unanswered_and_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(core_module, "MAX_AWAITING", 3)
    core = _core()
    sink = core.sink
    assert isinstance(sink, _Sink)
    for n in range(3):
        assert isinstance(
            core.handle_acct(_valid_acct(f"s{n}", ident=n), ("127.0.0.1", 9)), AfterCommit
        )
    assert core.handle_acct(_valid_acct("s3", ident=3), ("127.0.0.1", 9)) is None
    assert core.counters.acct_deferred == 1
    assert core.counters.dropped == 1
    assert len(sink.sessions) == 3
    assert len(core.committed(0)) == 3
    # Its retransmission, once the backlog is written, is handled.
    assert isinstance(core.handle_acct(_valid_acct("s3", ident=3), ("127.0.0.1", 9)), AfterCommit)
    assert len(sink.sessions) == 4


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=4),
    st.integers(0, 255),
    st.sampled_from([b"", b"x" * 200]),
)
def test_the_accounting_response_is_the_codecs(
    proxy_states: list[bytes], ident: int, padding: bytes
) -> None:
    attributes = [make_attribute("Acct-Session-Id", "s")]
    if padding:
        attributes.append(make_attribute("Class", padding))
    attributes += [Attribute(AttributeType.PROXY_STATE, p) for p in proxy_states]
    request = sign_request(
        Packet(Code.ACCOUNTING_REQUEST, ident, bytes(16), tuple(attributes)), SECRET
    )
    expected = encode_reply(make_reply(request, Code.ACCOUNTING_RESPONSE), request, SECRET)
    assert accounting_response(request, SECRET.reveal()) == expected


def _acct_variants() -> st.SearchStrategy[bytes]:
    """Accounting-Requests as gateways send them (with an address, a RAT, Proxy-States,
    a Message-Authenticator now and then), damaged or not."""

    def build(session: int, status: int, ident: int, extras: list[int]) -> bytes:
        optional = [
            make_attribute("3GPP-IMSI", IMSI),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", "corp"),
            make_attribute("Framed-IP-Address", "10.64.0.1"),
            make_attribute("3GPP-RAT-Type", 6),
            make_attribute("3GPP-Session-Stop-Indicator", 255),
            make_attribute("Proxy-State", b"\x07"),
        ]
        attributes = (
            make_attribute("Acct-Status-Type", status),
            make_attribute("Acct-Session-Id", f"s{session}"),
            make_attribute("User-Name", IMSI),
            *(optional[i] for i in extras),
        )
        packet = Packet(Code.ACCOUNTING_REQUEST, ident, bytes(16), attributes)
        signed = sign_request(packet, SECRET, add_message_authenticator=len(extras) == 7)
        return signed.encode()

    bases = st.builds(
        build,
        st.integers(0, 2),
        st.sampled_from([1, 2, 3, 7, 8]),
        st.integers(0, 3),
        st.lists(st.integers(0, 6), max_size=7),
    )
    return st.one_of(bases, bases, overwritten(bases, reach=120, min_spots=1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_acct_variants(), st.integers(0, 2)), min_size=1, max_size=12))
def test_accounting_on_the_scanned_values_is_accounting_on_the_codecs(
    requests: list[tuple[bytes, int]],
) -> None:
    # The same requests, from the same peers, into a core on the scan and one whose scan
    # finds nothing to read (so every request takes the codec's path): the same replies,
    # records and counts. Gateway 127.0.0.2 is unknown.
    fast, general = _core(), _core()
    for datagram, port in requests:
        peer = ("127.0.0.1" if port else "127.0.0.2", 1000 + port)
        got = fast.handle_acct(datagram, peer)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(core_module, "scan_accounting", lambda _datagram: None)
            expected = general.handle_acct(datagram, peer)
        assert got == expected
    assert fast.counters.as_dict() == general.counters.as_dict()
    assert fast.sink.events == general.sink.events  # type: ignore[attr-defined]
    assert fast.sink.sessions == general.sink.sessions  # type: ignore[attr-defined]


def test_accounting_with_a_wrong_message_authenticator_is_dropped() -> None:
    # The Request Authenticator is right, the Message-Authenticator (RFC 3579 §3.2) not.
    packet = Packet(
        Code.ACCOUNTING_REQUEST,
        9,
        bytes(16),
        (
            make_attribute("Acct-Status-Type", 1),
            make_attribute("Acct-Session-Id", "s"),
            make_attribute("User-Name", IMSI),
            Attribute(AttributeType.MESSAGE_AUTHENTICATOR, bytes(16)),
        ),
    )
    core = _core()
    assert core.handle_acct(sign_request(packet, SECRET).encode(), ("127.0.0.1", 5)) is None
    assert core.counters.bad_authenticator == 1
    assert core.sink.sessions == []  # type: ignore[attr-defined]


# -- rows re-read from the database, laid over what the core did meanwhile ----------------

UNBOUND = "001010000000002"
IMEI_A = "353490069873327"  # from IMEISV 3534900698733201
IMEISV_B = "4901542032375100"


def _access(imsi: str, imeisv: str) -> bytes:
    request = Packet(
        Code.ACCESS_REQUEST,
        1,
        os.urandom(16),
        (
            make_attribute("User-Name", imsi),
            make_attribute("3GPP-IMSI", imsi),
            make_attribute("3GPP-IMEISV", imeisv),
            make_attribute("Called-Station-Id", "corp"),
        ),
    )
    return sign_request(request, SECRET, add_message_authenticator=True).encode()


def _reason(core: AaaCore, imeisv: str) -> str:
    reply = core.handle_auth(_access(UNBOUND, imeisv), ("127.0.0.1", 7))
    assert reply is not None
    answer = Packet.decode(reply)
    if answer.code is Code.ACCESS_ACCEPT:
        return "accepted"
    message = decode_attributes(answer).get("Reply-Message")
    return next(r.value for r in Reason if MESSAGES[r] == message and r.value != "accepted")


def _unbound(device_id: str | None = None) -> SimEntry:
    return SimEntry("8945", "o1", UNBOUND, "active", "i1", device_id)


def _tofu_core() -> AaaCore:
    core = _core()
    core.snapshot.sims[UNBOUND] = _unbound()
    core.snapshot = replace(core.snapshot, tofu_orgs=frozenset({"o1"}))
    sink = core.sink
    assert isinstance(sink, _Sink)
    sink.generation = 4
    return core


def test_a_refresh_read_before_the_bindings_commit_does_not_undo_it() -> None:
    core = _tofu_core()
    assert _reason(core, "3534900698733201") == "accepted"  # bound on first attach
    assert core.pending_bindings == {UNBOUND: ("8945", IMEI_A, 4)}
    # Rows read while batch 4 was not yet committed: the SIM has no device there.
    core.patch(SnapshotPatch(sims=(_unbound(),)), read_after=3)
    assert _reason(core, IMEISV_B) == "imei_mismatch"
    assert _reason(core, "3534900698733201") == "accepted"
    # Batch 4 committed; rows read after it hold the binding, and take over.
    core.committed(4)
    assert core.committed_generation == 4
    core.patch(SnapshotPatch(sims=(_unbound("d9"),), device_imeis={"d9": IMEI_A}), read_after=4)
    assert core.pending_bindings == {}
    assert "pending:8945" not in core.snapshot.device_imeis
    assert core.snapshot.sims[UNBOUND].device_id == "d9"
    assert _reason(core, IMEISV_B) == "imei_mismatch"


def test_rows_read_after_the_commit_stand_even_without_the_binding() -> None:
    # The background write found the SIM changed meanwhile and bound nothing: the
    # database says unbound, and that is what stands once read after the commit.
    core = _tofu_core()
    assert _reason(core, "3534900698733201") == "accepted"
    core.patch(SnapshotPatch(sims=(replace(_unbound(), state="suspended"),)), read_after=4)
    assert core.pending_bindings == {}
    assert core.snapshot.sims[UNBOUND].device_id is None
    assert _reason(core, "3534900698733201") == "sim_not_active"


def test_a_device_bound_in_the_database_meanwhile_wins() -> None:
    core = _tofu_core()
    assert _reason(core, "3534900698733201") == "accepted"
    b = "490154203237518"
    core.patch(SnapshotPatch(sims=(_unbound("d5"),), device_imeis={"d5": b}), read_after=3)
    assert _reason(core, IMEISV_B) == "accepted"
    assert _reason(core, "3534900698733201") == "imei_mismatch"


def test_a_whole_snapshot_gets_the_pending_bindings_too() -> None:
    core = _tofu_core()
    assert _reason(core, "3534900698733201") == "accepted"
    fresh = Snapshot(
        sims={IMSI: core.snapshot.sims[IMSI], UNBOUND: _unbound()},
        device_imeis={"d1": "353490069873327"},
        identities_enabled={"i1": True},
        tofu_orgs=frozenset({"o1"}),
        gateways=(GATEWAY,),
        pools={"o1": POOL},
    )
    core.install(fresh, read_after=3)
    assert core.snapshot is fresh
    assert _reason(core, IMEISV_B) == "imei_mismatch"


def test_revoked_names_the_live_sessions_no_longer_accepted() -> None:
    core = _core()
    peer = ("127.0.0.1", 1813)
    assert core.handle_auth(_valid_access(), ("127.0.0.1", 7)) is not None
    start = Packet(
        Code.ACCOUNTING_REQUEST,
        5,
        bytes(16),
        (
            make_attribute("Acct-Status-Type", 1),
            make_attribute("Acct-Session-Id", "s1"),
            make_attribute("User-Name", IMSI),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", "corp"),
        ),
    )
    assert isinstance(core.handle_acct(sign_request(start, SECRET).encode(), peer), AfterCommit)
    (session,) = core.sessions.for_imsi(IMSI)
    assert core.revoked([session]) == []
    core.patch(
        SnapshotPatch(sims=(SimEntry("8944", "o1", IMSI, "suspended", "i1", "d1"),)),
        read_after=-1,
    )
    assert core.revoked([session]) == [(session, GATEWAY, Reason.SIM_NOT_ACTIVE, ())]
    core.patch(
        SnapshotPatch(
            sims=(SimEntry("8944", "o1", IMSI, "active", "i1", "d1"),),
            identities_enabled={"i1": None},
        ),
        read_after=-1,
    )
    assert core.revoked([session]) == [(session, GATEWAY, Reason.IDENTITY_DISABLED, ())]


def test_a_retransmission_after_a_suspend_is_decided_again_not_accepted_from_the_cache() -> None:
    core = _core()
    peer = ("127.0.0.1", 7)
    request = _valid_access()
    accepted = core.handle_auth(request, peer)
    assert accepted is not None
    assert Packet.decode(accepted).code is Code.ACCESS_ACCEPT
    assert core.handle_auth(request, peer) == accepted  # RFC 5080 §2.2.2: the same reply
    suspended = SimEntry("8944", "o1", IMSI, "suspended", "i1", "d1")
    core.patch(SnapshotPatch(sims=(suspended,)), read_after=-1)
    again = core.handle_auth(request, peer)
    assert again is not None
    assert Packet.decode(again).code is Code.ACCESS_REJECT
    assert core.handle_auth(request, peer) == again  # and that reply is kept in its turn
    # A whole snapshot (a resync) drops every kept reply of a SIM as well.
    core.install(
        replace(core.snapshot, sims={IMSI: replace(suspended, state="active")}), read_after=-1
    )
    resumed = core.handle_auth(request, peer)
    assert resumed is not None
    assert Packet.decode(resumed).code is Code.ACCESS_ACCEPT


def test_a_change_to_another_sim_leaves_the_kept_reply_alone() -> None:
    core = _core()
    peer = ("127.0.0.1", 7)
    request = _valid_access()
    accepted = core.handle_auth(request, peer)
    duplicates = core.counters.duplicates
    core.patch(SnapshotPatch(sims=(_unbound(),)), read_after=-1)
    assert core.handle_auth(request, peer) == accepted
    assert core.counters.duplicates == duplicates + 1


# -- where the UE was: carried to the writer, read off the hot path ------------------------


def test_an_access_record_keeps_a_located_request_for_the_writer() -> None:
    plmn = Plmn("262", "01")
    uli = UserLocationInfo.build(
        LocationType.TAI_AND_ECGI, TrackingAreaId(plmn, 7), EutranCellGlobalId(plmn, 42)
    )
    located = Packet(
        Code.ACCESS_REQUEST,
        1,
        os.urandom(16),
        (
            make_attribute("User-Name", IMSI),
            make_attribute("3GPP-IMSI", IMSI),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", "corp"),
            make_attribute("3GPP-User-Location-Info", uli),
        ),
    )
    core = _core()
    assert core.handle_auth(
        sign_request(located, SECRET, add_message_authenticator=True).encode(), ("127.0.0.1", 9)
    )
    assert core.handle_auth(_valid_access(), ("127.0.0.1", 9))
    sink = core.sink
    assert isinstance(sink, _Sink)
    with_location, without = sink.events
    assert isinstance(with_location, tuple)
    assert isinstance(without, tuple)
    (event,) = access_events(with_location)
    assert event.payload["location"] == {"plmn": "262-01", "tac": 7, "eci": 42}
    # A request without the attribute keeps nothing of its octets.
    assert without[10] is None
