"""What the gateway did with a query, counted per process for the metrics: a plain list
of ints indexed by `Verdict`, so a query pays one increment and no lock or dict.

REFUSED is split by why: the requester's SIM or identity is revoked (suspended, retired,
disabled), the source is unknown (no session, token or network default), or the query
is one the gateway does not serve (a class other than IN). `OTHER` is what the slow path
answers or drops (malformed queries, other opcodes, EDNS versions above 0).
"""

from __future__ import annotations

from enum import IntEnum


class Verdict(IntEnum):
    ALLOWED = 0  # answered from the cache or an upstream
    BLOCKED = 1
    OVERRIDDEN = 2  # an override rule's addresses or CNAME
    REFUSED_REVOKED = 3
    REFUSED_UNKNOWN_SOURCE = 4
    REFUSED_NOT_SERVED = 5
    SERVFAIL = 6  # no upstream answered and nothing stale to serve
    OTHER = 7

    @property
    def label(self) -> str:
        return self.name.lower()


def new_counts() -> list[int]:
    return [0] * len(Verdict)
