"""Principals of recently presented bearer tokens, so a busy client's requests do not
each pay a database transaction to be authenticated.

A token lookup costs more than the rest of a small request (a thread hop, a pooled
connection and three statements: about two thirds of a Nudm vector request's CPU). An
entry is kept for `ttl` seconds at most, and never past the token's own expiry. This
process forgets every entry when it revokes a token or changes an identity (`forget_all`,
called by those use cases' routes after their commit), so here a revocation is refused
from the next request on; another process (the CLI, a second API server) is followed
within `ttl`. Only successful lookups are kept: an unknown token is looked up every
time, and counted by the failure limiter every time.

Keys are the tokens' hashes, never the tokens. A lookup that began before a
`forget_all` is not stored (the generation moved), so it cannot bring back a principal
the forgetting was about.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from ztsim.identity.roles import Principal

TTL_SECONDS = 1.0
CAPACITY = 10_000


class PrincipalCache:
    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or capacity < 1:
            raise ValueError("a principal cache needs ttl >= 0 and capacity >= 1")
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._entries: dict[bytes, tuple[Principal, float, datetime | None]] = {}
        self._generation = 0
        # `put`'s check of the generation and its store must not straddle a forget_all
        # (which the routes call from their worker threads).
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Take it before a lookup starts; `put` it back with the lookup's result."""
        return self._generation

    def get(self, token_hash: bytes, now: datetime) -> Principal | None:
        """The principal if the token was seen valid within the ttl and has not expired."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        principal, until, expires_at = entry
        if self._clock() >= until or (expires_at is not None and expires_at <= now):
            self._entries.pop(token_hash, None)
            return None
        return principal

    def put(
        self,
        token_hash: bytes,
        principal: Principal,
        expires_at: datetime | None,
        generation: int,
    ) -> None:
        with self._lock:
            if generation != self._generation or self._ttl == 0:
                return
            if len(self._entries) >= self._capacity:
                self._entries.clear()  # a flood of distinct valid tokens: stay bounded
            self._entries[token_hash] = (principal, self._clock() + self._ttl, expires_at)

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
