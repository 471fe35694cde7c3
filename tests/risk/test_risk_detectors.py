"""The detectors, without a database: one finding per twin session and SQN anomaly; IMEI
flapping and impossible travel once their line is crossed within the org's window, the
same answer for a signal fed twice or out of id order, and bounded memory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ztsim.risk.detectors import (
    ACCESS,
    CLONE,
    DEVICE_SWAP,
    SQN_AHEAD,
    SQN_BACKWARDS,
    Detectors,
    Signal,
    signal_of,
)
from ztsim.risk.settings import DEFAULT_SETTINGS, Detector, RiskSettings

from tests_clock import NOW

ICCID = "8944000000000000001"
IMEIS = [f"35349006987332{n}" for n in range(10)]


def _settings(devices: int = 3, window: str = "1h", travel: str = "1h") -> RiskSettings:
    return DEFAULT_SETTINGS.updated(
        {
            "detectors": {
                "imei_flapping": {"devices": devices, "window": window},
                "impossible_travel": {"window": travel},
            }
        }
    )


def _access(
    event_id: int, minutes: float, imei: str | None = None, plmn: str | None = None, **kw: Any
) -> Signal:
    payload: dict[str, Any] = {"imsi": "001010000000001", "imei": imei, "apn": "corp"}
    if plmn is not None:
        payload["location"] = {"plmn": plmn, "tac": 1}
    return Signal(
        event_id,
        kw.get("org", "o1"),
        kw.get("kind", ACCESS),
        kw.get("iccid", ICCID),
        NOW + timedelta(minutes=minutes),
        payload,
    )


def test_a_twin_session_is_a_finding_each_time_with_what_the_gateway_sent() -> None:
    d = Detectors()
    payload = {"gateway_id": "g2", "imei": IMEIS[1], "imsi": "001", "ue_address": "10.0.0.9"}
    twin = Signal(7, "o1", CLONE, ICCID, NOW, payload, "address_not_leased")
    (found,) = d.feed(twin, DEFAULT_SETTINGS)
    assert (found.detector, found.org_id, found.iccid, found.source_event_id) == (
        Detector.TWIN_SESSION,
        "o1",
        ICCID,
        7,
    )
    assert found.detail == {
        "signal": "address_not_leased",
        "gateway_id": "g2",
        "imei": IMEIS[1],
        "ue_address": "10.0.0.9",
    }
    assert found.at == NOW


def test_sqn_ahead_and_backwards_are_anomalies() -> None:
    d = Detectors()
    ahead = Signal(1, "o1", SQN_AHEAD, ICCID, NOW, {"seq_he": 5, "seq_ms": 90})
    back = Signal(2, "o1", SQN_BACKWARDS, ICCID, NOW, {"seq_he": 90, "seq_ms": 5})
    assert [(f.detector, f.detail) for f in d.feed(ahead, DEFAULT_SETTINGS)] == [
        (Detector.SQN_ANOMALY, {"signal": "ahead", "seq_he": 5, "seq_ms": 90})
    ]
    assert [f.detail["signal"] for f in d.feed(back, DEFAULT_SETTINGS)] == ["backwards"]


def test_imei_flapping_fires_on_the_device_that_reaches_the_threshold_once() -> None:
    d, s = Detectors(), _settings(devices=3)
    fed = [
        d.feed(_access(1, 0, IMEIS[0]), s),
        d.feed(_access(2, 1, IMEIS[1]), s),
        d.feed(_access(3, 2, IMEIS[0]), s),
        d.feed(_access(4, 3, IMEIS[2], kind=DEVICE_SWAP), s),  # the third device
        d.feed(_access(5, 4, IMEIS[1]), s),  # already counted
    ]
    assert [len(f) for f in fed] == [0, 0, 0, 1, 0]
    (found,) = fed[3]
    assert found.detector is Detector.IMEI_FLAPPING
    assert found.source_event_id == 4
    assert found.detail == {"devices": sorted(IMEIS[:3]), "threshold": 3, "window_s": 3600}
    # A fourth device within the window is another finding.
    assert [f.detector for f in d.feed(_access(6, 5, IMEIS[3]), s)] == [Detector.IMEI_FLAPPING]


def test_imei_flapping_counts_within_the_window_only() -> None:
    d, s = Detectors(), _settings(devices=3, window="10m")
    assert d.feed(_access(1, 0, IMEIS[0]), s) == []
    assert d.feed(_access(2, 5, IMEIS[1]), s) == []
    # 11 minutes after the first: only two devices within 10 minutes.
    assert d.feed(_access(3, 11, IMEIS[2]), s) == []
    assert len(d.feed(_access(4, 12, IMEIS[3]), s)) == 1


def test_impossible_travel_fires_when_the_country_changes_within_the_window() -> None:
    d, s = Detectors(), _settings(travel="2h")
    assert d.feed(_access(1, 0, IMEIS[0], "262-01"), s) == []
    assert d.feed(_access(2, 30, IMEIS[0], "262-02"), s) == []  # same MCC, other network
    (found,) = d.feed(_access(3, 45, IMEIS[0], "310-410"), s)
    assert found.detector is Detector.IMPOSSIBLE_TRAVEL
    assert found.detail == {
        "from_mcc": "262",
        "to_mcc": "310",
        "elapsed_s": 15 * 60,
        "window_s": 7200,
    }
    assert d.feed(_access(4, 50, IMEIS[0], "310-410"), s) == []  # still there
    # Long after the window: a flight, not a clone.
    assert d.feed(_access(5, 50 + 121, IMEIS[0], "262-01"), s) == []


def test_orgs_and_sims_are_kept_apart() -> None:
    d, s = Detectors(), _settings(devices=2)
    assert d.feed(_access(1, 0, IMEIS[0]), s) == []
    assert d.feed(_access(2, 1, IMEIS[1], org="o2"), s) == []
    assert d.feed(_access(3, 1, IMEIS[1], iccid="8944000000000000002"), s) == []
    assert len(d.feed(_access(4, 2, IMEIS[1]), s)) == 1


def test_a_signal_fed_again_or_late_gets_the_same_answer() -> None:
    s = _settings(devices=3)
    signals = [_access(n, n, IMEIS[n % 4]) for n in range(1, 6)]
    once = Detectors()
    first = [once.feed(x, s) for x in signals]
    # Again (an overlapping read): the same findings, judged on lower ids only.
    assert [once.feed(x, s) for x in signals] == first
    # Event 3 committed late (PostgreSQL): read after 4 and 5, it is still the third device.
    late = Detectors()
    order = [signals[0], signals[1], signals[3], signals[4], signals[2]]
    results = {x.event_id: late.feed(x, s) for x in order}
    assert [f.source_event_id for f in results[3]] == [3]


def test_memory_is_bounded_per_sim_and_overall() -> None:
    d = Detectors(per_sim=5, sims=3)
    s = _settings(devices=100, window="7d")
    for n in range(50):
        d.feed(_access(n + 1, n, f"3534900698{n:06d}"), s)
    assert d.observations("o1", ICCID) == 5
    for n in range(10):
        d.feed(_access(100 + n, 60, IMEIS[0], iccid=f"89440000000000001{n:02d}"), s)
    assert len(d) == 3
    # A SIM repeating itself keeps one observation for the run.
    d2 = Detectors()
    for n in range(20):
        d2.feed(_access(n + 1, n, IMEIS[0], "262-01"), s)
    assert d2.observations("o1", ICCID) == 1


def test_signal_of_takes_sims_of_signal_kinds_only() -> None:
    assert signal_of(1, "o", ACCESS, "imsi:001", NOW, "", {}) is None
    assert signal_of(1, "o", "dns.query", "sim:8944", NOW, "", {}) is None
    got = signal_of(1, "o", SQN_BACKWARDS, "sim:8944", NOW, "r", {"seq_he": 1})
    assert got == Signal(1, "o", SQN_BACKWARDS, "8944", NOW, {"seq_he": 1}, "r")


@given(
    st.lists(
        st.tuples(
            st.sampled_from([ACCESS, DEVICE_SWAP, CLONE]),
            st.none() | st.sampled_from(IMEIS[:4]),
            st.none() | st.sampled_from(["262-01", "310-410", "2", "", "abc-01"]),
            st.integers(0, 300),
        ),
        max_size=30,
    )
)
def test_any_signals_give_findings_of_their_own_sim_and_event(
    items: list[tuple[str, str | None, str | None, int]],
) -> None:
    d, s = Detectors(per_sim=4, sims=2), _settings(devices=2, window="1h")
    for n, (kind, imei, plmn, minutes) in enumerate(items, start=1):
        for found in d.feed(_access(n, minutes, imei, plmn, kind=kind), s):
            assert (found.source_event_id, found.iccid, found.org_id) == (n, ICCID, "o1")
    assert d.observations("o1", ICCID) <= 4
