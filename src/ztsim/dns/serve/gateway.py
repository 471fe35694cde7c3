"""The gateway's asynchronous core: one `answer` coroutine shared by every transport.

It ties the sans-I/O `Engine` to an `IdentityResolver` and an `UpstreamPool`.
Snapshots (policy, identities) are swapped by assigning new ones; requests in
flight finish with the snapshot they started with. A source with no entry gets one more
look at the change feed before it is refused (`late`, `identify`).

`on_answer`, when set, is told each A/AAAA answer sent to a requester known by its
address (a SIM session's UE address: `observe`, called by the transports), so the net
role can open a `network` rule's domains to the addresses given for them. Only then is
an answer read again (`ztsim.dns.answered`, once per answer); the observer must be cheap
(the net role's `learn` queues). Its failures are counted and logged, never answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ztsim.dns.answered import resolved
from ztsim.dns.engine import Answer, Engine
from ztsim.dns.policy.identity import IdentityResolver, Requester
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.late import LateSources
from ztsim.dns.serve.upstream import UpstreamPool

log = logging.getLogger("ztsim.dns")
# (requester address, asked name, addresses, TTL): what an answer told a SIM session
AnswerObserver = Callable[[str, str, tuple[str, ...], int], None]


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
        self.on_answer: AnswerObserver | None = None
        self.observer_failures = 0

    def observe(self, source: str, reply: bytes | None) -> None:
        """Tell `on_answer` what `reply`, sent to `source`, resolved (if it resolved
        anything). Cheap when no observer is set, or the reply is no NOERROR answer."""
        observer = self.on_answer
        # Octet 3's low nibble is the RCODE, octets 6-7 ANCOUNT (RFC 1035 §4.1.1).
        if observer is None or reply is None or len(reply) < 12 or reply[3] & 0xF:
            return
        if not (reply[6] or reply[7]):
            return
        found = resolved(reply)
        if found is None:
            return
        try:
            observer(source, found.qname, found.addresses, found.ttl)
        except Exception:  # an observer's failure is never the requester's
            self.observer_failures += 1
            if self.observer_failures == 1:
                log.exception("the answer observer failed (counted from now on)")

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

    def answer_now(
        self, wire: bytes, who: Requester | None, *, udp: bool, source: str | None = None
    ) -> bytes | None:
        """The answer if it needs no upstream (the common case), else None: use `answer`.
        `source`: the requester's address when it was known by it (see `observe`)."""
        step = self.engine.handle(wire, who, self.clock(), udp=udp)
        if not isinstance(step, Answer):
            return None
        if source is not None and who is not None:
            self.observe(source, step.wire)
        return step.wire

    async def answer(
        self, wire: bytes, who: Requester | None, *, udp: bool, source: str | None = None
    ) -> bytes | None:
        """The answer to one query from `who`, or None to stay silent."""
        step = self.engine.handle(wire, who, self.clock(), udp=udp)
        if step is None or isinstance(step, Answer):
            reply = None if step is None else step.wire
        else:
            response = await self.upstreams.query(step.upstream_query)
            reply = self.engine.resolved(step, response, self.clock())
        if source is not None and who is not None:
            self.observe(source, reply)
        return reply
