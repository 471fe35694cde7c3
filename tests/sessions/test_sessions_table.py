"""The live-session index: idempotent under duplicates, Stop and Accounting-On."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
