"""When entries of the identity table must be read again because time alone changes them.

A requester's tags can flip with no change on the feed: a posture report goes stale (and
fails closed), a SIM swap ages past a rule's duration, a swap's cooling-off ends. Each
entry read says when its next flip is (`Entry.until`); this schedule keeps those instants
and tells which keys are due.

A heap of (instant, key) with lazy removal: `set` records a key's current instant (None:
none any more) and pushes it; a heap item whose instant is no longer its key's current
one is dropped when it reaches the top. `due` only reads: a key stays due until a fresh
read of it sets a later instant (or none), so a read that fails is tried again. Not
thread-safe: the identity table calls it under its lock.
"""

from __future__ import annotations

import heapq
from datetime import datetime

Key = tuple[str, str]  # ("address", canonical address) or ("token", token id)


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, Key]] = []
        self._at: dict[Key, datetime] = {}

    def set(self, key: Key, until: datetime | None) -> None:
        """`key` is next due at `until` (None: not due any more)."""
        if until is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == until:
            return
        self._at[key] = until
        heapq.heappush(self._heap, (until, key))
        if len(self._heap) > 2 * len(self._at) + 64:
            # Keys re-read often leave many dead items: keep the heap within twice the live.
            self._heap = [(at, k) for k, at in self._at.items()]
            heapq.heapify(self._heap)

    def next(self) -> datetime | None:
        """The earliest instant a key is due (None: none is)."""
        heap = self._heap
        while heap and self._at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: datetime) -> list[Key]:
        """The keys due at `now`, earliest first; they stay until `set` moves them."""
        self.next()
        heap, found = self._heap, []
        # The items at or before `now` form a subtree at the heap's root: walk only it.
        stack = [0]
        while stack:
            index = stack.pop()
            if index < len(heap) and heap[index][0] <= now:
                at, key = heap[index]
                if self._at.get(key) == at:
                    found.append((at, key))
                stack += (2 * index + 1, 2 * index + 2)
        return list(dict.fromkeys(key for _, key in sorted(found)))

    def clear(self) -> None:
        self._heap, self._at = [], {}

    def __len__(self) -> int:
        return len(self._at)
