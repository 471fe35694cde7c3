"""Risk settings: defaults, the checks and their messages, the JSON form both ways, and
partial updates (a detector's entry may name some of its fields)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.risk.settings import (
    DEFAULT_COOLING_OFF,
    DEFAULT_MONITORED_DAYS,
    DEFAULT_SETTINGS,
    Detector,
    DetectorConfig,
    Response,
    RiskSettings,
    settings_from_json,
    with_response,
)


def test_defaults_are_gentle() -> None:
    s = RiskSettings()
    assert s == DEFAULT_SETTINGS
    assert s.approval_required is False
    assert s.cooling_off == DEFAULT_COOLING_OFF == timedelta(hours=24)
    assert s.monitored_days == DEFAULT_MONITORED_DAYS == 120
    assert s.monitored_period == timedelta(days=120)
    assert set(s.detectors) == set(Detector)
    assert all(s.detector(d) == DetectorConfig() for d in Detector)
    assert DetectorConfig().response is Response.ALERT
    assert settings_from_json({}) == s
    assert s.as_json() == {
        "approval_required": False,
        "cooling_off": "1d",
        "monitored_days": 120,
        "detectors": {
            d.value: {"response": "alert", "devices": 3, "window": "1h"} for d in Detector
        },
    }


def test_missing_detectors_are_filled_with_defaults() -> None:
    s = RiskSettings(detectors={Detector.SQN_ANOMALY: DetectorConfig(Response.SUSPEND)})
    assert s.detector(Detector.SQN_ANOMALY).response is Response.SUSPEND
    assert s.detector(Detector.TWIN_SESSION) == DetectorConfig()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"approval_required": "yes"}, "approval_required must be true or false"),
        ({"approval_required": 1}, "approval_required must be true or false"),
        ({"cooling_off": "soon"}, "cooling_off 'soon': a duration such as 90s, 15m, 24h or 7d"),
        ({"cooling_off": "31d"}, "cooling_off must be between 0s and 30d"),
        ({"monitored_days": 0}, "monitored_days must be between 1 and 3650"),
        ({"monitored_days": 3651}, "monitored_days must be between 1 and 3650"),
        ({"monitored_days": True}, "monitored_days must be a whole number of days"),
        ({"monitored_days": "30"}, "monitored_days must be a whole number of days"),
        ({"detectors": []}, "detectors must be an object of detector names"),
        ({"detectors": {"ghost": {}}}, "unknown detector 'ghost'"),
        ({"detectors": {"sqn_anomaly": "suspend"}}, "detector sqn_anomaly: an object"),
        (
            {"detectors": {"sqn_anomaly": {"response": "shoot"}}},
            "detector sqn_anomaly: response must be one of alert, restrict, suspend",
        ),
        (
            {"detectors": {"imei_flapping": {"devices": 1}}},
            "detector imei_flapping: devices must be between 2 and 100",
        ),
        (
            {"detectors": {"imei_flapping": {"devices": 2.5}}},
            "detector imei_flapping: devices must be a whole number",
        ),
        (
            {"detectors": {"impossible_travel": {"window": "10s"}}},
            "detector impossible_travel: window must be between 1m and 7d",
        ),
        (
            {"detectors": {"twin_session": {"colour": "red"}}},
            "detector twin_session: unknown fields colour",
        ),
    ],
)
def test_invalid_settings_say_what_is_wrong(value: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        settings_from_json(value)
    assert message in str(caught.value)


def test_partial_updates_keep_everything_not_named() -> None:
    s = DEFAULT_SETTINGS.updated({"approval_required": True})
    assert s.approval_required is True
    assert s.cooling_off == DEFAULT_COOLING_OFF
    s = s.updated({"cooling_off": "2h", "detectors": {"imei_flapping": {"devices": 5}}})
    assert (s.approval_required, s.cooling_off) == (True, timedelta(hours=2))
    flapping = s.detector(Detector.IMEI_FLAPPING)
    assert (flapping.response, flapping.devices, flapping.window) == (
        Response.ALERT,
        5,
        timedelta(hours=1),
    )
    s = s.updated({"detectors": {"imei_flapping": {"response": "restrict"}}})
    assert s.detector(Detector.IMEI_FLAPPING) == DetectorConfig(Response.RESTRICT, 5)
    assert s.updated({}) == s


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"approval": True}, "unknown risk settings: approval"),
        ({"detectors": {"ghost": {}}}, "unknown detector 'ghost'"),
        ({"detectors": "none"}, "detectors must be an object"),
        ({"detectors": {"twin_session": 3}}, "detector twin_session: an object"),
    ],
)
def test_invalid_updates_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        DEFAULT_SETTINGS.updated(changes)


def test_with_response_changes_one_detector() -> None:
    s = with_response(DEFAULT_SETTINGS, Detector.TWIN_SESSION, Response.SUSPEND)
    assert s.detector(Detector.TWIN_SESSION).response is Response.SUSPEND
    assert s.detector(Detector.SQN_ANOMALY).response is Response.ALERT


_durations = st.sampled_from(["0s", "90s", "15m", "24h", "7d", "30d"])
_detector_json = st.fixed_dictionaries(
    {},
    optional={
        "response": st.sampled_from([r.value for r in Response]),
        "devices": st.integers(2, 100),
        "window": st.sampled_from(["1m", "15m", "1h", "7d"]),
    },
)
_settings_json = st.fixed_dictionaries(
    {},
    optional={
        "approval_required": st.booleans(),
        "cooling_off": _durations,
        "monitored_days": st.integers(1, 3650),
        "detectors": st.dictionaries(st.sampled_from([d.value for d in Detector]), _detector_json),
    },
)


@given(_settings_json)
def test_the_json_form_round_trips(value: dict[str, Any]) -> None:
    s = settings_from_json(value)
    assert settings_from_json(s.as_json()) == s
    assert DEFAULT_SETTINGS.updated(value) == s


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_keys = st.sampled_from(["approval_required", "cooling_off", "monitored_days", "detectors"])


@given(st.dictionaries(_keys, _json | _settings_json))
def test_any_json_is_settings_or_invalid_input(value: dict[str, Any]) -> None:
    try:
        s = settings_from_json(value)
    except InvalidInput:
        return
    assert settings_from_json(s.as_json()) == s
