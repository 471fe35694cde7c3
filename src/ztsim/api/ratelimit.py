"""Failed authentications per client: a token bucket each, in memory, sans I/O.

A client may fail `burst` times at once; its bucket refills at `per_minute` failures a
minute. While it is empty, the client's credentials are not even checked (a 429 with
Retry-After), so guessing tokens costs a minute per `per_minute` guesses. Memory is
bounded: at most `max_clients` buckets; full ones are forgotten first, then the oldest.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureLimiter:
    """`now` is a monotonic time in seconds, given by the caller on every call."""

    def __init__(self, per_minute: int, *, burst: int | None = None, max_clients: int = 10_000):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _level(self, client: str, now: float) -> float:
        bucket = self._buckets.get(client)
        if bucket is None:
            return self.burst
        return min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)

    def retry_after(self, client: str, now: float) -> int:
        """0 when `client` may try; otherwise whole seconds until its next try."""
        level = self._level(client, now)
        if level >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - level) / self.rate))

    def failed(self, client: str, now: float) -> None:
        level = self._level(client, now)
        self._buckets[client] = _Bucket(max(0.0, level - 1.0), now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > self.max_clients:
            self._forget(now)

    def _forget(self, now: float) -> None:
        full = [c for c in self._buckets if self._level(c, now) >= self.burst]
        for client in full:
            del self._buckets[client]
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
