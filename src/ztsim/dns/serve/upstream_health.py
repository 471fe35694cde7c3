"""Active health checks of upstreams (sans-I/O): the probe query and when to send it.

A failure marks an upstream down for `down_for` seconds (the passive check, see
`upstream`). While it is down, the pool asks it `. NS` every `interval` seconds, with
at most one probe in flight per upstream, and puts it back in front as soon as a
probe is answered (any rcode: the server is reachable and speaking DNS). A failed
probe keeps it down for another `down_for`, so clients' queries do not wait on a dead
upstream's timeout while the probes do.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ztsim.dns.wire.constants import FLAG_RD, RRClass, RRType

_HEADER = struct.Struct("!6H")
# The root's NS set: every recursive resolver has it at hand (its priming query,
# RFC 8109), so the probe costs the upstream nothing.
PROBE_QUESTION = b"\x00" + struct.pack("!HH", RRType.NS, RRClass.IN)
PROBE = _HEADER.pack(0, FLAG_RD, 1, 0, 0, 0) + PROBE_QUESTION


class ProbeSchedule:
    """Which upstreams (by index) to probe when, given when each is down until."""

    def __init__(self, count: int, interval: float) -> None:
        self.interval = interval
        self._next = [0.0] * count
        self._busy = [False] * count

    def marked_down(self, index: int, now: float) -> None:
        """An upstream just failed: its first probe is `interval` later, not at once."""
        if not self._busy[index] and self._next[index] <= now:
            self._next[index] = now + self.interval

    def due(self, down_until: Sequence[float], now: float) -> list[int]:
        """The upstreams to probe now; each counts as in flight until `finished`."""
        due = [
            index
            for index, until in enumerate(down_until)
            if until > now and not self._busy[index] and self._next[index] <= now
        ]
        for index in due:
            self._busy[index] = True
            self._next[index] = now + self.interval
        return due

    def finished(self, index: int) -> None:
        self._busy[index] = False

    def wait(self, down_until: Sequence[float], now: float) -> float | None:
        """Seconds until the next probe may be due; None when nothing is down or in flight."""
        waiting = [
            self._next[index] - now
            for index, until in enumerate(down_until)
            if until > now and not self._busy[index]
        ]
        if waiting:
            return max(min(waiting), 0.0)
        return self.interval if any(self._busy) else None
