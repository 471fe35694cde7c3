"""The gateway's asynchronous core: one `answer` coroutine shared by every transport.

It ties the sans-I/O `Engine` to an `IdentityResolver` and an `UpstreamPool`.
Snapshots (policy, identities) are swapped by assigning new ones; requests in
flight finish with the snapshot they started with. A source with no entry gets one more
look at the change feed before it is refused (`late`, `identify`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ztsim.dns.engine import Answer, Engine
from ztsim.dns.policy.identity import IdentityResolver, Requester
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.late import LateSources
from ztsim.dns.serve.upstream import UpstreamPool


class Gateway:
    def __init__(
        self,
        engine: Engine,
        identities: IdentityResolver,
        upstreams: UpstreamPool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.identities = identities
        self.upstreams = upstreams
        self.clock = clock
        # Set by a process that follows the change feed; None: an unknown source is unknown.
        self.late: LateSources | None = None

    def swap_policy(self, policy: PolicySnapshot) -> None:
        self.engine.policy = policy
        if self.engine.log is not None:
            self.engine.log.policy = policy

    async def identify(self, address: str) -> Requester | None:
        """The requester behind `address`; if it has none, the same after the feed's next
        read (bounded: see `late`), so a session committed just now is found."""
        who = self.identities.by_source(address)
        late = self.late
        if who is not None or late is None or not late.enter():
            return who
        try:
            await late.wait()
        finally:
            late.leave()
        return self.identities.by_source(address)

    def answer_now(self, wire: bytes, who: Requester | None, *, udp: bool) -> bytes | None:
        """The answer if it needs no upstream (the common case), else None: use `answer`."""
        step = self.engine.handle(wire, who, self.clock(), udp=udp)
        return step.wire if isinstance(step, Answer) else None

    async def answer(self, wire: bytes, who: Requester | None, *, udp: bool) -> bytes | None:
        """The answer to one query from `who`, or None to stay silent."""
        step = self.engine.handle(wire, who, self.clock(), udp=udp)
        if step is None or isinstance(step, Answer):
            return None if step is None else step.wire
        response = await self.upstreams.query(step.upstream_query)
        return self.engine.resolved(step, response, self.clock())
