"""An org's risk settings: the two-person rule for swaps, the cooling-off after one, how
long number history is kept, and the response each detector triggers. Pure values.

Defaults are deliberately gentle (no approval, every detector alerts only): a response
that suspends SIMs is a decision an org makes, not one ztsim makes for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.policy.durations import format_duration, parse_duration

# The inventory sets `sims.swap_recent_until` from the same default when an org has no row.
DEFAULT_COOLING_OFF = timedelta(hours=24)
# CAMARA SIM Swap 2.1.0: `maxAge` is at most 2400 hours (100 days); keeping 120 days of
# history answers every `maxAge` the spec allows.
DEFAULT_MONITORED_DAYS = 120
MAX_COOLING_OFF = timedelta(days=30)
MONITORED_DAYS = range(1, 3651)


class Detector(StrEnum):
    TWIN_SESSION = "twin_session"  # the same SIM live in two places, or from an address not leased
    SQN_ANOMALY = "sqn_anomaly"  # the USIM's SQN is ahead of all we issued, or went back
    IMEI_FLAPPING = "imei_flapping"  # one SIM seen in several devices within a window
    IMPOSSIBLE_TRAVEL = "impossible_travel"  # two countries (MCC) faster than travel allows


class Response(StrEnum):
    ALERT = "alert"  # a `risk.finding` event only
    RESTRICT = "restrict"  # the SIM carries `sim.clone_suspected`: the org's rules restrict it
    SUSPEND = "suspend"  # the SIM is suspended: sessions cut, attaches and DNS refused


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """`devices` and `window` are read by the detectors that count within a time window
    (IMEI flapping: this many distinct devices; impossible travel: two countries within
    the window)."""

    response: Response = Response.ALERT
    devices: int = 3
    window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "response", Response(self.response))
        if not 2 <= self.devices <= 100:
            raise InvalidInput("devices must be between 2 and 100")
        if not timedelta(minutes=1) <= self.window <= timedelta(days=7):
            raise InvalidInput("window must be between 1m and 7d")

    def as_json(self) -> dict[str, Any]:
        return {
            "response": self.response.value,
            "devices": self.devices,
            "window": format_duration(self.window),
        }


def _default_detectors() -> Mapping[Detector, DetectorConfig]:
    return {detector: DetectorConfig() for detector in Detector}


@dataclass(frozen=True, slots=True)
class RiskSettings:
    approval_required: bool = False
    cooling_off: timedelta = DEFAULT_COOLING_OFF
    monitored_days: int = DEFAULT_MONITORED_DAYS
    detectors: Mapping[Detector, DetectorConfig] = field(default_factory=_default_detectors)

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.cooling_off <= MAX_COOLING_OFF:
            raise InvalidInput("cooling_off must be between 0s and 30d")
        if self.monitored_days not in MONITORED_DAYS:
            raise InvalidInput("monitored_days must be between 1 and 3650")
        complete = {**_default_detectors(), **{Detector(k): v for k, v in self.detectors.items()}}
        object.__setattr__(self, "detectors", complete)

    def detector(self, detector: Detector) -> DetectorConfig:
        return self.detectors[detector]

    @property
    def monitored_period(self) -> timedelta:
        return timedelta(days=self.monitored_days)

    def as_json(self) -> dict[str, Any]:
        return {
            "approval_required": self.approval_required,
            "cooling_off": format_duration(self.cooling_off),
            "monitored_days": self.monitored_days,
            "detectors": {d.value: c.as_json() for d, c in self.detectors.items()},
        }

    def updated(self, changes: Mapping[str, Any]) -> RiskSettings:
        """These settings with `changes` (the JSON form, any subset of its keys; a
        detector's entry may name only some of its fields)."""
        unknown = set(changes) - {"approval_required", "cooling_off", "monitored_days", "detectors"}
        if unknown:
            raise InvalidInput(f"unknown risk settings: {', '.join(sorted(unknown))}")
        merged = self.as_json()
        for key, value in changes.items():
            if key == "detectors":
                merged["detectors"] = _merged_detectors(merged["detectors"], value)
            else:
                merged[key] = value
        return settings_from_json(merged)


def _merged_detectors(current: dict[str, Any], changes: object) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise InvalidInput("detectors must be an object of detector names")
    out = dict(current)
    for name, change in changes.items():
        if name not in out:
            raise InvalidInput(f"unknown detector {name!r}: one of {', '.join(Detector)}")
        if not isinstance(change, Mapping):
            raise InvalidInput(f"detector {name}: an object with response, devices, window")
        out[name] = {**out[name], **change}
    return out


def _duration(value: object, name: str) -> timedelta:
    try:
        return parse_duration(value)
    except InvalidInput:
        raise InvalidInput(f"{name} {value!r}: a duration such as 90s, 15m, 24h or 7d") from None


def _detector_from_json(name: str, value: Mapping[str, Any]) -> DetectorConfig:
    unknown = set(value) - {"response", "devices", "window"}
    if unknown:
        raise InvalidInput(f"detector {name}: unknown fields {', '.join(sorted(unknown))}")
    response = value.get("response", Response.ALERT.value)
    if response not in set(Response):
        raise InvalidInput(f"detector {name}: response must be one of {', '.join(Response)}")
    devices = value.get("devices", 3)
    if not isinstance(devices, int) or isinstance(devices, bool):
        raise InvalidInput(f"detector {name}: devices must be a whole number")
    try:
        return DetectorConfig(
            Response(response), devices, _duration(value.get("window", "1h"), "window")
        )
    except InvalidInput as exc:
        raise InvalidInput(f"detector {name}: {exc}") from None


def settings_from_json(value: Mapping[str, Any]) -> RiskSettings:
    """The settings from their JSON form (the API's, the stored row's), checked."""
    approval = value.get("approval_required", False)
    if not isinstance(approval, bool):
        raise InvalidInput("approval_required must be true or false")
    days = value.get("monitored_days", DEFAULT_MONITORED_DAYS)
    if not isinstance(days, int) or isinstance(days, bool):
        raise InvalidInput("monitored_days must be a whole number of days")
    detectors = value.get("detectors", {})
    if not isinstance(detectors, Mapping):
        raise InvalidInput("detectors must be an object of detector names")
    parsed: dict[Detector, DetectorConfig] = {}
    for name, config in detectors.items():
        if name not in set(Detector):
            raise InvalidInput(f"unknown detector {name!r}: one of {', '.join(Detector)}")
        if not isinstance(config, Mapping):
            raise InvalidInput(f"detector {name}: an object with response, devices, window")
        parsed[Detector(name)] = _detector_from_json(name, config)
    cooling = value.get("cooling_off", format_duration(DEFAULT_COOLING_OFF))
    return RiskSettings(approval, _duration(cooling, "cooling_off"), days, parsed)


DEFAULT_SETTINGS = RiskSettings()


def with_response(settings: RiskSettings, detector: Detector, response: Response) -> RiskSettings:
    """The settings with one detector's response changed (the CLI's and the demo's use)."""
    configs = dict(settings.detectors)
    configs[detector] = replace(configs[detector], response=response)
    return replace(settings, detectors=configs)
