"""The answers of CAMARA SIM Swap 2.1.0 and Device Swap 1.0.0 (`retrieve-date`, `check`)
from a number's history, the org's monitored period and the clock. Pure.

A SIM swap is any change of the SIM behind a number, a new subscription included (SIM
Swap 2.1.0, "Relevant terms"); a device swap is any change of the device a number's SIM
is in, its first device included (Device Swap 1.0.0). Both are rows of `number_changes`:
the caller hands in the latest one's time.

Which numbers get an answer at all (`Line`):
- a number of a SIM that is active or suspended does: a suspended line keeps its number
  and its history, and a swap on it still matters to whoever trusts it;
- so does a number just moved onto a SIM that is assigned but not yet active (a swap in
  progress: a re-issued eSIM whose profile is not installed yet): the line was in service
  and its swap is exactly what the asker must hear about;
- a number of a SIM in stock, assigned but never activated (a new subscription), or
  retired does not: 422 SERVICE_NOT_APPLICABLE (there is no line in service whose swaps
  we could vouch for);
- for Device Swap, a number whose SIM was never seen in a device does not either: 422
  SERVICE_NOT_APPLICABLE, as Device Swap 1.0.0 says for `check` ("never been installed
  in a device ... API will return a 422 error"), and `retrieve-date` the same, so the two
  operations never disagree about one number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ztsim.errors import InvalidInput, ZtsimError

# SIM Swap 2.1.0 and Device Swap 1.0.0, CreateCheck*: maxAge in hours, 1..2400, default 240.
MAX_AGE_MIN = 1
MAX_AGE_MAX = 2400
MAX_AGE_DEFAULT = 240
_IN_SERVICE = frozenset({"active", "suspended"})


class Kind(StrEnum):
    """`number_changes.kind`."""

    SIM = "sim"
    DEVICE = "device"


class OutOfRange(InvalidInput):
    """`maxAge` outside 1..2400, or longer than the monitored period (400 OUT_OF_RANGE)."""


class NotApplicable(ZtsimError):
    """The number has no line in service to answer for (422 SERVICE_NOT_APPLICABLE)."""


@dataclass(frozen=True, slots=True)
class Line:
    """What is known about a number of the asking org: its SIM's state, whether that SIM
    was ever seen in a device (a bound device or a device change), and the time of the
    latest change of the kind asked about (None: none kept); `moved_here`: the number
    came to this SIM from another one (a swap), rather than with a new subscription."""

    sim_state: str
    ever_in_device: bool
    latest_change: datetime | None
    moved_here: bool = False


@dataclass(frozen=True, slots=True)
class DateAnswer:
    """`latest` None with `monitored_days`: no change within the monitored period."""

    latest: datetime | None
    monitored_days: int | None

    def body(self, field: str) -> dict[str, Any]:
        """The response body: `field` is `latestSimChange` or `latestDeviceChange`."""
        out: dict[str, Any] = {field: None if self.latest is None else rfc3339(self.latest)}
        if self.monitored_days is not None:
            out["monitoredPeriod"] = self.monitored_days
        return out


def rfc3339(at: datetime) -> str:
    """RFC 3339 §5.6 with its time zone (the specs require one): UTC, milliseconds."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def applicable(line: Line, kind: Kind) -> None:
    swapping = line.sim_state == "assigned" and line.moved_here
    if line.sim_state not in _IN_SERVICE and not swapping:
        raise NotApplicable(
            "the service is not available for this phone number: no line in service"
        )
    if kind is Kind.DEVICE and not line.ever_in_device and line.latest_change is None:
        raise NotApplicable("the phone number has never been in a device")


def retrieve_date(line: Line, kind: Kind, monitored_days: int, now: datetime) -> DateAnswer:
    """The latest change if it lies within the monitored period; otherwise null with the
    period, which the specs say means "no change during the monitored period". The first
    change (activation, first device) is a change too, so no separate case is needed."""
    applicable(line, kind)
    since = now - timedelta(days=monitored_days)
    if line.latest_change is not None and line.latest_change >= since:
        return DateAnswer(line.latest_change, None)
    return DateAnswer(None, monitored_days)


def checked_max_age(max_age: int, monitored_days: int) -> int:
    """`maxAge` in hours, within the spec's range and the org's monitored period."""
    if not MAX_AGE_MIN <= max_age <= MAX_AGE_MAX:
        raise OutOfRange(f"maxAge must be between {MAX_AGE_MIN} and {MAX_AGE_MAX} hours")
    if max_age > monitored_days * 24:
        raise OutOfRange(
            f"maxAge may not exceed the monitored period of {monitored_days} days "
            f"({monitored_days * 24} hours)"
        )
    return max_age


def check(line: Line, kind: Kind, max_age: int, monitored_days: int, now: datetime) -> bool:
    """Whether the number's SIM (or device) changed within the last `max_age` hours."""
    checked_max_age(max_age, monitored_days)
    applicable(line, kind)
    if line.latest_change is None:
        return False
    return line.latest_change > now - timedelta(hours=max_age)
