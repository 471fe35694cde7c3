"""The live-session index: idempotent under duplicates, Stop and Accounting-On."""

from __future__ import annotations

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
