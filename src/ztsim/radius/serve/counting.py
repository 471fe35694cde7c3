"""What the AAA service counts besides the core's own counters: requests and responses
per port, how long the core takes per request, commits, and Disconnect outcomes.

`CountedCore` stands between the endpoints and the core. Each port's counts are written
by that port's serving thread alone (and the accounting replies sent after a commit by
the writer's thread alone), as plain ints and list cells: no lock, no dict on the hot
path; a scrape reads them as they are (a statistic, not an invariant).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime

from ztsim.clock import Clock
from ztsim.datagram import Peer
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.traffic import AfterCommit
from ztsim.radius.packet import Attribute
from ztsim.radius.secret import SharedSecret
from ztsim.radius.serve.coa import CoaClient, Outcome, Result

# Seconds the core takes for one request: tens of microseconds typically; the top
# buckets catch a stall (a GC pause, a lock held by a feed patch).
REQUEST_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
# Seconds per commit of the records' writer (one transaction per batch).
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_CODES = 256  # a RADIUS code is one octet (RFC 2865 §3)


class Timings:
    """A histogram's cells for one writer thread: counts per bucket (+Inf last), sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds


class PortCounts:
    """One port's requests, its responses by RADIUS code and its timings."""

    __slots__ = ("requests", "responses", "timings")

    def __init__(self) -> None:
        self.requests = 0
        self.responses = [0] * _CODES
        self.timings = Timings(REQUEST_BUCKETS)


class CountedCore:
    """The core as the endpoints see it (`server.Core`), counting on the way."""

    def __init__(self, core: AaaCore) -> None:
        self.core = core
        self.auth = PortCounts()
        self.acct = PortCounts()
        # Accounting-Responses sent after their commit (the writer's thread).
        self.acct_after_commit = 0

    @property
    def clock(self) -> Clock:
        return self.core.clock

    def handle_auth(self, datagram: bytes, peer: Peer, now: datetime) -> bytes | None:
        started = time.perf_counter()
        reply = self.core.handle_auth(datagram, peer, now)
        counts = self.auth
        counts.timings.observe(time.perf_counter() - started)
        counts.requests += 1
        if reply is not None:
            counts.responses[reply[0]] += 1
        return reply

    def handle_acct(self, datagram: bytes, peer: Peer, now: datetime) -> bytes | AfterCommit | None:
        started = time.perf_counter()
        reply = self.core.handle_acct(datagram, peer, now)
        counts = self.acct
        counts.timings.observe(time.perf_counter() - started)
        counts.requests += 1
        if isinstance(reply, bytes):
            counts.responses[reply[0]] += 1  # a retransmission, answered from the cache
        return reply

    def journaled(self, afters: list[AfterCommit]) -> list[AfterCommit]:
        done = self.core.journaled(afters)
        self.acct.responses[5] += len(done)  # Accounting-Response (RFC 2866 §4.2)
        return done

    def may_journal(self) -> bool:
        return self.core.may_journal()

    def unjournaled(self, afters: list[AfterCommit]) -> None:
        self.core.unjournaled(afters)

    def responses(self) -> dict[int, int]:
        """Responses by code, both ports and the replies sent after commits."""
        total = [a + b for a, b in zip(self.auth.responses, self.acct.responses, strict=True)]
        total[5] += self.acct_after_commit  # Accounting-Response (RFC 2866 §4.2)
        return {code: n for code, n in enumerate(total) if n}


class Commits:
    """The writer's commits: counted and timed on its thread."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.timings = Timings(COMMIT_BUCKETS)


class CountedCoaClient(CoaClient):
    """The CoA client, counting the outcome of each Disconnect-Request (on the loop)."""

    def __init__(self, *, tries: int, timeout: float) -> None:
        super().__init__(tries=tries, timeout=timeout)
        self.outcomes = dict.fromkeys(Outcome, 0)

    async def disconnect(
        self, host: str, port: int, secret: SharedSecret, attributes: Iterable[Attribute]
    ) -> Result:
        result = await super().disconnect(host, port, secret, attributes)
        self.outcomes[result.outcome] += 1
        return result
