"""The live-session index: idempotent under duplicates, Stop and Accounting-On."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ztsim.sessions.table import Session, SessionIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(sid: str, imsi: str = "001010000000001", gateway: str = "g1", **kw: object) -> Session:
    fields: dict[str, object] = {
        "org_id": "o",
        "gateway_id": gateway,
        "acct_session_id": sid,
        "nas_address": "192.0.2.1",
        "imsi": imsi,
        "iccid": None,
        "identity_id": None,
        "device_id": None,
        "imei": "353490069873320",
        "ue_address": "10.64.0.1",
        "apn": "corp",
        "rat": "EUTRAN",
        "location": None,
        "started_at": T0,
        "updated_at": T0,
        **kw,
    }
    return Session(**fields)  # type: ignore[arg-type]


def test_duplicates_change_nothing_and_updates_keep_the_start() -> None:
    index = SessionIndex()
    assert index.upsert(_session("a")) is not None
    assert index.upsert(_session("a")) is None
    later = T0 + timedelta(minutes=5)
    updated = index.upsert(_session("a", rat="NR", started_at=later, updated_at=later))
    assert updated is not None
    assert (updated.rat, updated.started_at, updated.updated_at) == ("NR", T0, later)
    assert len(index) == 1


def test_stop_and_gateway_wide_stop() -> None:
    index = SessionIndex(
        [_session("a"), _session("b", imsi="001010000000002"), _session("c", gateway="g2")]
    )
    stopped = index.stop(("g1", "a"), T0, "stop")
    assert stopped is not None
    assert (stopped.stopped_at, stopped.stop_cause, stopped.live) == (T0, "stop", False)
    assert index.stop(("g1", "a"), T0, "stop") is None
    assert index.for_imsi("001010000000001") == [_session("c", gateway="g2")]
    assert index.stop_where(gateway_id="g1") == [("g1", "b")]
    assert index.live_imeis("001010000000002") == {"353490069873320"}


_GATEWAYS = st.sampled_from(["g1", "g2", "g3"])
_IMSIS = st.sampled_from(["001010000000001", "001010000000002", "001010000000003", None])
_SIDS = st.sampled_from(["a", "b", "c", "d"])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), _GATEWAYS, _SIDS, _IMSIS),
        st.tuples(st.just("stop"), _GATEWAYS, _SIDS, _IMSIS),
    ),
    max_size=40,
)


@given(_OPS)
def test_the_indexes_answer_as_a_walk_over_every_live_session_would(
    ops: list[tuple[str, str, str, str | None]],
) -> None:
    index = SessionIndex()
    for op, gateway, sid, imsi in ops:
        if op == "upsert":
            index.upsert(_session(sid, imsi=imsi, gateway=gateway))  # type: ignore[arg-type]
        else:
            index.stop((gateway, sid), T0, "stop")
        live = list(index)
        for g in ("g1", "g2", "g3"):
            walked = {s.key for s in live if s.gateway_id == g}
            assert set(index.stop_where(gateway_id=g)) == walked
            for i in ("001010000000001", "001010000000002", "001010000000003"):
                of_imsi = {s.key for s in live if s.gateway_id == g and s.imsi == i}
                assert set(index.stop_where(gateway_id=g, imsi=i)) == of_imsi
        for i in ("001010000000001", "001010000000002", "001010000000003"):
            assert {s.key for s in index.for_imsi(i)} == {s.key for s in live if s.imsi == i}


_PLACE = {"type": "TAI_ECGI", "parts": [{"kind": "Tai", "mcc": "001", "tac": 1}], "raw": "82"}


def test_locations_come_back_as_they_went_in_and_a_later_one_wins() -> None:
    index = SessionIndex([_session("a", location=_PLACE)])
    assert index.get(("g1", "a")) == _session("a", location=_PLACE)
    later = T0 + timedelta(minutes=1)
    # An update without a location keeps the one known; a new one replaces it.
    kept = index.upsert(_session("a", rat="NR", updated_at=later))
    assert kept is not None
    assert (kept.location, kept.rat) == (_PLACE, "NR")
    moved = {**_PLACE, "raw": "83"}
    updated = index.upsert(_session("a", location=moved, updated_at=later))
    assert updated is not None
    assert updated.location == moved
    assert index.upsert(_session("a", location=moved, updated_at=later)) is None
    stopped = index.stop(("g1", "a"), later, "stop")
    assert stopped is not None
    assert (stopped.location, stopped.rat, stopped.started_at) == (moved, "EUTRAN", T0)


def test_ue_address_of_a_live_session_only() -> None:
    index = SessionIndex([_session("a"), _session("b", ue_address=None)])
    assert index.ue_address(("g1", "a")) == "10.64.0.1"
    assert index.ue_address(("g1", "b")) is None
    assert index.ue_address(("g1", "c")) is None
    index.stop(("g1", "a"), T0, "stop")
    assert index.ue_address(("g1", "a")) is None


def test_a_full_collection_walks_none_of_the_live_sessions() -> None:
    # A million live sessions held as objects made every full collection take seconds.
    index = SessionIndex()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(5000):
        index.upsert(_session(f"s{n}", imsi=f"00101{n:010d}", gateway=f"g{n % 3}", location=_PLACE))
    gc.collect()
    assert len(index) == 5000
    assert len(gc.get_objects()) - before < 50
    # And they are all still there to find, by key, IMSI and gateway.
    assert index.live_imeis("001010000004999") == {"353490069873320"}
    assert len(index.stop_where(gateway_id="g1")) == 1667
    stopped = index.stop(("g2", "s5"), T0, "stop")
    assert stopped is not None
    assert stopped.location == _PLACE


def test_any_acct_session_id_keys_a_session() -> None:
    # RFC 2866 §5.5: the gateway chooses it; a NUL or a separator is no key of ours.
    odd = ["a\x00b", "\x00", "a\x01", "ü/;", "x" * 253]
    index = SessionIndex(_session(sid, imsi=f"00101000000000{n}") for n, sid in enumerate(odd))
    assert sorted(index.stop_where(gateway_id="g1")) == sorted(("g1", sid) for sid in odd)
    for n, sid in enumerate(odd):
        assert index.stop_where(gateway_id="g1", imsi=f"00101000000000{n}") == [("g1", sid)]
        stopped = index.stop(("g1", sid), T0, "stop")
        assert stopped is not None
        assert stopped.key == ("g1", sid)
    assert len(index) == 0


def test_one_imsi_with_thousands_of_sessions() -> None:
    # A gateway may name any number of Acct-Session-Ids for one IMSI.
    index = SessionIndex()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(3000):
        index.upsert(_session(f"s{n}", gateway=f"g{n % 2}"))
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    imsi = "001010000000001"
    assert len(index.for_imsi(imsi)) == 3000
    assert len(index.stop_where(gateway_id="g1", imsi=imsi)) == 1500
    assert index.live_imeis(imsi) == {"353490069873320"}
    for n in range(2999):
        assert index.stop((f"g{n % 2}", f"s{n}"), T0, "stop") is not None
    assert [s.key for s in index.for_imsi(imsi)] == [("g1", "s2999")]
    assert index.stop(("g1", "s2999"), T0, "stop") is not None
    assert index.for_imsi(imsi) == []
    assert index.live_imeis(imsi) == set()
