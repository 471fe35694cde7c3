"""Named posture checks: `managed-modern: device.managed and device.os_version >= "17.0"`,
each with the oldest report it trusts. A check passes, fails, or says nothing because the
device has no report (`missing`) or an old one (`stale`); only `passed` lets a rule that
requires it apply, so stale posture fails closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ztsim.errors import InvalidInput
from ztsim.policy.conditions import Condition, is_device_path, parse
from ztsim.policy.facts import Subject

CHECK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DEFAULT_MAX_AGE = timedelta(hours=24)
MAX_MAX_AGE = timedelta(days=90)


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    STALE = "stale"  # the report is past its expiry or older than the check's maximum age
    MISSING = "missing"  # the device never reported (or is not known to any MDM)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: CheckStatus
    until: datetime | None = None  # when the report goes stale (None: only new facts change it)

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED


def check_name(name: str) -> str:
    if not CHECK_NAME.fullmatch(name):
        raise InvalidInput(
            f"posture check name {name!r}: 1-63 of a-z, 0-9 and -, starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class PostureCheck:
    name: str
    expression: str
    max_age: timedelta = DEFAULT_MAX_AGE
    condition: Condition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not timedelta(seconds=1) <= self.max_age <= MAX_MAX_AGE:
            raise InvalidInput(f"posture check {self.name}: max_age is 1 s to 90 days")
        condition = parse(self.expression, allowed=is_device_path)
        object.__setattr__(self, "expression", condition.text)
        object.__setattr__(self, "condition", condition)

    def evaluate(self, subject: Subject, now: datetime) -> CheckResult:
        posture = subject.posture
        if posture is None:
            return _MISSING
        stale_at = posture.observed_at + self.max_age
        expires_at = posture.expires_at
        if expires_at is not None and expires_at < stale_at:
            stale_at = expires_at
        if now >= stale_at:
            return _STALE
        holds = self.condition.holds(subject, now)
        return CheckResult(CheckStatus.PASSED if holds else CheckStatus.FAILED, stale_at)


# Results without an instant are the same for every device: made once (they are immutable).
_MISSING, _STALE = CheckResult(CheckStatus.MISSING), CheckResult(CheckStatus.STALE)
