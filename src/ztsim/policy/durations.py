"""Durations as the policy writes them: one number and one unit (`90s`, `15m`, `24h`, `7d`).

A posture check's `max_age` is one, in the policy file and in the API alike; the same
spelling as conditions (`sim.swap_age < 24h`), so a reader learns one form. Pure.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ztsim.errors import InvalidInput

DURATION = re.compile(r"(\d{1,9})([smhd])")
# Largest first: formatting picks the first unit that divides the value.
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: object) -> timedelta:
    """`90s`, `15m`, `24h`, `7d` (one number and one unit, as conditions write them)."""
    match = DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"max_age {text!r}: a duration such as 90s, 15m, 24h or 7d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def format_duration(value: timedelta) -> str:
    """The largest whole unit: 86400 s is `1d`, 5400 s is `90m`."""
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("every whole number of seconds has a unit")  # pragma: no cover
