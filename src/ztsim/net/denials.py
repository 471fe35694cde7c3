"""The audit of the user plane's flows: denied attempts as events, rate-limited, none lost.

The gateway's deny rules log each refused new flow to NFLOG (`ztsim.net.nflog`), with
the chain that refused it as the prefix: `class_<name>` (the class's rules matched
nothing that allows it) or `forward` (the source is in no class: no session). The
listener hands each logged packet to `DenialLog.record`, which asks the net role who
the source is and which rule applied (`explain`, giving a `DenialContext`) and returns
a `net.flow` event (outcome denied, reason `policy_denied` or `no_session`) to append.

One source may try thousands of times a second (a scan, a retry loop), so each source
address has a token bucket: `rate` events per second, `burst` at once. An attempt
without a token is not explained, only counted; the count rides on the source's next
event (`suppressed`), or, if none comes, `flush(now)` writes it as a
`net.flow_suppressed` summary once the source has a token again (at the latest when
the listener stops: `flush(now, final=True)`). Attempts whose source the role cannot
attribute to any org (no event can be stored without one) and packets whose headers do
not parse are counted in `counts` for the role's metrics. The kernel's own limit on the
log rule (200/s, burst 400) bounds what reaches this log; what it drops is counted
only by the chain's counter.

Privacy: denials are always recorded (they are attempts against the org's private
networks: an audit, not a browsing history). Allowed flows (start and stop, from
conntrack events) are recorded only when the org's mode is `all`, with the values of
the DNS privacy mode (`ztsim.dns.policy.rules.PrivacyMode`). A pseudonymising org's
events carry a keyed pseudonym computed as its DNS events' (`ztsim.dns.querylog`): with
the same key, which `ztsim up` gives both roles, the same value. They carry neither the
SIM nor the UE address, which the session table would turn back into a person.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.net.nflog import Flow, NflogError, NflogPacket, flow_of

EVENT_KIND = "net.flow"
SUPPRESSED_KIND = "net.flow_suppressed"
ACTOR = "net-gateway"
POLICY_DENIED = "policy_denied"  # a class chain refused it: no rule of the class allows it
NO_SESSION = "no_session"  # the forward chain refused it: the source is in no class
FORWARD_CHAIN = "forward"  # ztsim.net.nft_names.FORWARD, the prefix of its deny rule
# 5 events a second per source after a burst of 10: every attempt of a person's app (a
# TCP connect retries at 1, 2, 4 s; a few hosts tried at once) is kept one by one, and
# a scan from one SIM writes at most 18,000 events an hour, the rest as counts.
RATE, BURST = 5.0, 10.0


class FlowLogMode(StrEnum):
    """The org's privacy mode, with the values of the DNS gateway's (`PrivacyMode`)."""

    NONE = "none"
    BLOCKED_ONLY = "blocked-only"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class FlowPrivacy:
    mode: FlowLogMode = FlowLogMode.BLOCKED_ONLY
    pseudonymise: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", FlowLogMode(self.mode))


@dataclass(frozen=True, slots=True)
class DenialContext:
    org_id: str
    identity_id: str | None
    iccid: str | None
    rule: str | None  # the rule's name, None: no rule allowed it (the plane's default deny)
    reasons: tuple[str, ...]  # policy reason codes, as ztsim.policy.reasons writes them


Explain = Callable[[str, str, int, int], DenialContext | None]


def pseudonym(key: bytes, org_id: str, real_subject: str) -> str:
    """The DNS query log's pseudonym (same key, same value): linkable within the org
    across both logs, not reversible without the key."""
    digest = hmac.new(key, f"{org_id}\0{real_subject}".encode(), hashlib.sha256).hexdigest()
    return subject_of("pseudonym", digest[:24])


class FlowEvents:
    """Builds the flow events of each org in its privacy mode (`privacy(org_id)`)."""

    def __init__(
        self,
        privacy: Callable[[str], FlowPrivacy],
        pseudonym_key: bytes,
        actor: str = ACTOR,
    ) -> None:
        self._privacy = privacy
        self._key = pseudonym_key
        self.actor = actor

    def _who(self, ctx: DenialContext, flow: Flow) -> tuple[str, dict[str, Any]]:
        if ctx.identity_id is not None:
            real = subject_of("identity", ctx.identity_id)
        elif ctx.iccid is not None:
            real = subject_of("sim", ctx.iccid)
        else:
            real = subject_of("org", ctx.org_id)
        if self._privacy(ctx.org_id).pseudonymise:
            return pseudonym(self._key, ctx.org_id, real), {}
        payload: dict[str, Any] = {"source": flow.source}
        if ctx.iccid is not None:
            payload["iccid"] = ctx.iccid
        return real, payload

    def _event(
        self, kind: str, ctx: DenialContext, flow: Flow, outcome: Outcome, reason: str, **more: Any
    ) -> NewEvent:
        subject, payload = self._who(ctx, flow)
        payload.update(destination=flow.destination, protocol=flow.protocol, port=flow.port)
        payload.update(more)
        return NewEvent(ctx.org_id, kind, self.actor, subject, outcome, reason, payload)

    def denied(self, ctx: DenialContext, flow: Flow, chain: str, suppressed: int) -> NewEvent:
        """One denied attempt, with the attempts of its source suppressed before it."""
        reason = NO_SESSION if chain == FORWARD_CHAIN else POLICY_DENIED
        return self._event(
            EVENT_KIND, ctx, flow, Outcome.DENIED, reason,
            rule=ctx.rule, policy_reasons=list(ctx.reasons), chain=chain, suppressed=suppressed,
        )  # fmt: skip

    def summary(self, ctx: DenialContext, last: Flow, chain: str, suppressed: int) -> NewEvent:
        """`suppressed` attempts of one source not written one by one; the flow fields
        and the rule are those of the last of them."""
        reason = NO_SESSION if chain == FORWARD_CHAIN else POLICY_DENIED
        return self._event(
            SUPPRESSED_KIND, ctx, last, Outcome.DENIED, reason,
            rule=ctx.rule, policy_reasons=list(ctx.reasons), chain=chain, suppressed=suppressed,
        )  # fmt: skip

    def allowed(
        self, ctx: DenialContext, flow: Flow, stage: str, **counters: int
    ) -> NewEvent | None:
        """An allowed flow's start or stop (`stage`, from conntrack's NEW and DESTROY
        events, with its counters), in an org whose mode is `all`; else None."""
        if self._privacy(ctx.org_id).mode is not FlowLogMode.ALL:
            return None
        return self._event(
            EVENT_KIND, ctx, flow, Outcome.SUCCESS, "",
            stage=stage, rule=ctx.rule, policy_reasons=list(ctx.reasons), **counters,
        )  # fmt: skip


@dataclass(slots=True)
class _Source:
    tokens: float
    stamp: float
    suppressed: int = 0
    last: tuple[Flow, str] | None = None  # the last suppressed attempt and its chain


class DenialLog:
    """Denied attempts in, events out; one thread (the listener's) uses it."""

    def __init__(
        self,
        explain: Explain,
        events: FlowEvents,
        rate: float = RATE,
        burst: float = BURST,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._explain = explain
        self._events = events
        self._rate, self._burst = rate, burst
        self._sources: dict[str, _Source] = {}
        # written, suppressed, summarised, unattributed, unparsed: for the role's metrics
        self.counts: Counter[str] = Counter()

    def _bucket(self, source: str, now: float) -> _Source:
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _Source(self._burst, now)
        elif now > state.stamp:
            state.tokens = min(self._burst, state.tokens + (now - state.stamp) * self._rate)
            state.stamp = now
        return state

    def record(self, packet: NflogPacket, now: float) -> list[NewEvent]:
        """The events for one logged packet at `now` (monotonic seconds): one, or none
        when its source is out of tokens, unattributed, or its headers do not parse."""
        try:
            flow = flow_of(packet.payload)
        except NflogError:
            self.counts["unparsed"] += 1
            return []
        state = self._bucket(flow.source, now)
        if state.tokens < 1:
            state.suppressed += 1
            state.last = (flow, packet.prefix)
            self.counts["suppressed"] += 1
            return []
        state.tokens -= 1
        ctx = self._explain(flow.source, flow.destination, flow.protocol, flow.port)
        if ctx is None:
            self.counts["unattributed"] += 1 + state.suppressed
            state.suppressed, state.last = 0, None
            return []
        event = self._events.denied(ctx, flow, packet.prefix, state.suppressed)
        state.suppressed, state.last = 0, None
        self.counts["written"] += 1
        return [event]

    def flush(self, now: float, final: bool = False) -> list[NewEvent]:
        """Summaries of the sources whose suppression is over (they have a token again,
        or `final`), and forgets sources with nothing pending and a full bucket."""
        out: list[NewEvent] = []
        for source in list(self._sources):
            state = self._bucket(source, now)
            if state.suppressed and state.last is not None and (final or state.tokens >= 1):
                state.tokens = max(0.0, state.tokens - 1)
                flow, chain = state.last
                ctx = self._explain(flow.source, flow.destination, flow.protocol, flow.port)
                if ctx is None:
                    self.counts["unattributed"] += state.suppressed
                else:
                    out.append(self._events.summary(ctx, flow, chain, state.suppressed))
                    self.counts["summarised"] += state.suppressed
                state.suppressed, state.last = 0, None
            if not state.suppressed and state.tokens >= self._burst:
                del self._sources[source]
        return out

    def __len__(self) -> int:
        """The sources tracked: each has tokens to regain or attempts to report."""
        return len(self._sources)
