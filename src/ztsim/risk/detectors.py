"""The detectors, sans I/O: signals (events the planes recorded) in, findings out.

Twin sessions and SQN anomalies are one finding per signal. IMEI flapping and impossible
travel count within the org's window, from what each SIM was seen doing: a finding is
made by the observation that crosses the line (the device that makes `devices` distinct
ones, the attach from a country other than the one just before), judged against the
observations with lower event ids only. So feeding a signal again (a restart, an
overlapping read) gives the same answer, and signals arriving out of id order (ids
committed out of order on PostgreSQL) are judged as if they had come in order, as far as
the observations kept allow.

Memory is bounded: at most `per_sim` observations per SIM (the lowest ids dropped) and
`sims` SIMs (the least recently seen dropped), and observations older than the widest
window any org uses are dropped as they age.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ztsim.risk.settings import Detector, RiskSettings

# The event kinds the detectors read (see `ztsim.radius.aaa.traffic`, `accounting`, and
# `ztsim.udm.service`).
ACCESS = "radius.access"
CLONE = "risk.clone"
DEVICE_SWAP = "risk.device_swap"
SQN_AHEAD = "aka.sqn_ahead"
SQN_BACKWARDS = "aka.sqn_backwards"
SIGNAL_KINDS = (ACCESS, CLONE, DEVICE_SWAP, SQN_AHEAD, SQN_BACKWARDS)

# Flapping at the highest setting (`DetectorConfig.devices`: 100) needs the 99 devices
# before the one that crosses it; travel needs only the last observation.
PER_SIM = 100
SIMS = 100_000
# The widest window a setting allows (`DetectorConfig`): nothing older is ever read.
MAX_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Signal:
    """One event of a signal kind about a SIM (`subject` `sim:<iccid>`)."""

    event_id: int
    org_id: str
    kind: str
    iccid: str
    time: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    detector: Detector
    org_id: str
    iccid: str
    source_event_id: int
    at: datetime
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Seen:
    time: datetime
    imei: str | None
    mcc: str | None


def signal_of(
    event_id: int,
    org_id: str,
    kind: str,
    subject: str,
    time: datetime,
    reason: str,
    payload: Mapping[str, Any],
) -> Signal | None:
    """The signal an event row makes; None for an event that is not about a known SIM."""
    prefix, _, iccid = subject.partition(":")
    if prefix != "sim" or not iccid or kind not in SIGNAL_KINDS:
        return None
    return Signal(event_id, org_id, kind, iccid, time, payload, reason)


def _mcc(payload: Mapping[str, Any]) -> str | None:
    location = payload.get("location")
    if not isinstance(location, Mapping):
        return None
    plmn = location.get("plmn")
    # "262-01": MCC, a dash, MNC (see `ztsim.radius.uli.location_summary`).
    if isinstance(plmn, str) and len(plmn) >= 3 and plmn[:3].isdigit():
        return plmn[:3]
    return None


def _imei(payload: Mapping[str, Any]) -> str | None:
    imei = payload.get("imei")
    return imei if isinstance(imei, str) and imei else None


class Detectors:
    """The detectors' state across signals: what each SIM was seen doing lately."""

    def __init__(self, *, per_sim: int = PER_SIM, sims: int = SIMS) -> None:
        self._per_sim = per_sim
        self._sims = sims
        # (org, ICCID) -> event id -> what it showed; least recently fed SIM first.
        self._seen: OrderedDict[tuple[str, str], dict[int, _Seen]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def observations(self, org_id: str, iccid: str) -> int:
        return len(self._seen.get((org_id, iccid), ()))

    def feed(self, signal: Signal, settings: RiskSettings) -> list[Finding]:
        """The findings `signal` makes under its org's `settings`."""
        kind = signal.kind
        if kind == CLONE:
            return [self._finding(Detector.TWIN_SESSION, signal, _twin_detail(signal))]
        if kind in (SQN_AHEAD, SQN_BACKWARDS):
            return [self._finding(Detector.SQN_ANOMALY, signal, _sqn_detail(signal))]
        imei = _imei(signal.payload)
        mcc = _mcc(signal.payload) if kind == ACCESS else None
        if imei is None and mcc is None:
            return []
        history = self._history(signal)
        found = []
        if imei is not None:
            flapping = _flapping(history, signal, imei, settings)
            if flapping is not None:
                found.append(self._finding(Detector.IMEI_FLAPPING, signal, flapping))
        if mcc is not None:
            travel = _travel(history, signal, mcc, settings)
            if travel is not None:
                found.append(self._finding(Detector.IMPOSSIBLE_TRAVEL, signal, travel))
        self._remember(history, signal, _Seen(signal.time, imei, mcc))
        return found

    def _history(self, signal: Signal) -> dict[int, _Seen]:
        key = (signal.org_id, signal.iccid)
        history = self._seen.get(key)
        if history is None:
            history = self._seen[key] = {}
            while len(self._seen) > self._sims:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        return history

    def _remember(self, history: dict[int, _Seen], signal: Signal, seen: _Seen) -> None:
        # A SIM mostly repeats itself: the latest of a run of equal observations stands
        # for the run (what the windows need is when each device or country was last seen).
        if history:
            latest = max(history)
            same = history[latest]
            if latest < signal.event_id and (same.imei, same.mcc) == (seen.imei, seen.mcc):
                del history[latest]
        history[signal.event_id] = seen
        horizon = signal.time - MAX_WINDOW
        for old in [i for i, s in history.items() if s.time < horizon]:
            del history[old]
        while len(history) > self._per_sim:
            del history[min(history)]

    @staticmethod
    def _finding(detector: Detector, signal: Signal, detail: dict[str, Any]) -> Finding:
        return Finding(detector, signal.org_id, signal.iccid, signal.event_id, signal.time, detail)


def _before(history: dict[int, _Seen], signal: Signal, window: timedelta) -> list[_Seen]:
    """The observations before `signal` (lower ids) within `window` of it, oldest first."""
    start = signal.time - window
    return [
        history[i]
        for i in sorted(history)
        if i < signal.event_id and start <= history[i].time <= signal.time
    ]


def _flapping(
    history: dict[int, _Seen], signal: Signal, imei: str, settings: RiskSettings
) -> dict[str, Any] | None:
    config = settings.detector(Detector.IMEI_FLAPPING)
    earlier = {s.imei for s in _before(history, signal, config.window) if s.imei is not None}
    if imei in earlier or len(earlier) + 1 < config.devices:
        return None
    return {
        "devices": sorted(earlier | {imei}),
        "threshold": config.devices,
        "window_s": int(config.window.total_seconds()),
    }


def _travel(
    history: dict[int, _Seen], signal: Signal, mcc: str, settings: RiskSettings
) -> dict[str, Any] | None:
    config = settings.detector(Detector.IMPOSSIBLE_TRAVEL)
    located = [s for s in _before(history, signal, config.window) if s.mcc is not None]
    if not located or located[-1].mcc == mcc:
        return None
    last = located[-1]
    return {
        "from_mcc": last.mcc,
        "to_mcc": mcc,
        "elapsed_s": int((signal.time - last.time).total_seconds()),
        "window_s": int(config.window.total_seconds()),
    }


def _twin_detail(signal: Signal) -> dict[str, Any]:
    # `clone_suspected`: an attach while the SIM is live on another device;
    # `address_not_leased`: accounting for an address ztsim never leased to it.
    p = signal.payload
    detail: dict[str, Any] = {"signal": signal.reason or "clone_suspected"}
    for key in ("gateway_id", "imei", "ue_address", "acct_session_id"):
        if p.get(key) is not None:
            detail[key] = p[key]
    return detail


def _sqn_detail(signal: Signal) -> dict[str, Any]:
    p = signal.payload
    detail: dict[str, Any] = {"signal": "ahead" if signal.kind == SQN_AHEAD else "backwards"}
    for key in ("seq_he", "seq_ms"):
        if isinstance(p.get(key), int):
            detail[key] = p[key]
    return detail
