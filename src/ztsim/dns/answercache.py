"""The gateway's answer cache: question -> stored wire answer, fresh or stale (RFC 8767).

Keyed on (name, type, class, DO bit). An entry is fresh for its smallest TTL;
after that it is kept for `max_stale` seconds more, to be served only when
every upstream fails, with TTLs of `STALE_TTL` (RFC 8767 §4 recommends 30 s).
Bounded: the oldest entries go first when `max_entries` is reached.

Read by the UDP thread and the event loop alike: lookups are single dict
operations; removals and insertions take a lock, because evicting the oldest
entry walks the dict, which another thread must not resize meanwhile.
"""

from __future__ import annotations

import struct
import threading
from typing import NamedTuple

from ztsim.dns.wire.cache import CachedAnswer, patch_id_and_ttls
from ztsim.dns.wire.constants import FLAG_AA, HEADER_LEN, Rcode
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError

STALE_TTL = 30  # RFC 8767 §4: TTL of a stale answer
DEFAULT_MAX_STALE = 86_400  # RFC 8767 §5 suggests 1-3 days
DEFAULT_MAX_TTL = 86_400  # cap, so a huge upstream TTL cannot pin an answer for weeks
_TTL = struct.Struct("!I")
_CACHEABLE_RCODES = (Rcode.NOERROR, Rcode.NXDOMAIN)

CacheKey = tuple[bytes, int, int, bool]


class _Entry(NamedTuple):
    answer: CachedAnswer
    stored_at: float
    fresh_until: float


class Hit(NamedTuple):
    answer: CachedAnswer
    age: int
    stale: bool
    until: float = 0.0  # when a replay would differ (the age ticks, or freshness ends)


class AnswerCache:
    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        max_stale: float = DEFAULT_MAX_STALE,
        max_ttl: int = DEFAULT_MAX_TTL,
    ) -> None:
        self._entries: dict[CacheKey, _Entry] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_stale = max_stale
        self.max_ttl = max_ttl

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float, *, allow_stale: bool = False) -> Hit | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now < entry.fresh_until:
            age = int(now - entry.stored_at)
            return Hit(entry.answer, age, False, min(entry.stored_at + age + 1, entry.fresh_until))
        if now - entry.fresh_until > self.max_stale:
            with self._lock:
                self._entries.pop(key, None)
            return None
        if not allow_stale:
            return None
        return Hit(entry.answer, int(now - entry.stored_at), True)

    def put(self, key: CacheKey, response: bytes, now: float) -> CachedAnswer | None:
        """Store an upstream response if it is cacheable; the stored form, or None."""
        if len(response) < HEADER_LEN or response[3] & 0x0F not in _CACHEABLE_RCODES:
            return None
        # Replayed answers come from us, a forwarder: never authoritative (RFC 1035 §4.1.1).
        response = response[:2] + bytes([response[2] & ~(FLAG_AA >> 8)]) + response[3:]
        try:
            answer = CachedAnswer.from_wire(response)
        except (DnsDecodeError, DnsEncodeError):
            return None
        ttl = min(answer.min_ttl, self.max_ttl)
        if ttl <= 0:
            return answer
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(answer, now, now + ttl)
        return answer


def replay(
    hit: Hit, new_id: int, flags: int, question: bytes, opt: bytes, *, stale: bool = False
) -> bytes:
    """The stored answer for a new query: its ID, RD/CD, letter case and OPT; aged TTLs."""
    answer = hit.answer
    wire = patch_id_and_ttls(answer, new_id, hit.age, query_flags=flags, question=question, opt=opt)
    if not stale:
        return wire
    buf = bytearray(wire)
    for offset in answer.ttl_offsets:
        _TTL.pack_into(buf, offset, STALE_TTL)
    return bytes(buf)
