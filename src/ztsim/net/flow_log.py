"""Allowed flows as events: conntrack's start and stop of a SIM's flow to a site, bounded.

The gateway's forward chain accepts a flow's later packets by conntrack state, so each
flow it allowed is one conntrack entry, announced when it is confirmed (NEW) and when it
goes (DESTROY: closed, timed out, cut by a revocation). The conntrack listener hands each
event to `FlowLog.record`, which keeps only flows from a SIM (the role's `explain` knows
the source) towards a site (`routes`: the sites' prefixes) and returns the `net.flow`
events to append: outcome success, stage `start` or `stop`. Whether anything is written
is the org's privacy mode's call (`FlowEvents.allowed`: mode `all` only), asked at the
start and again at the stop.

Bounds. Each source has a token bucket like the denial log's (a SIM opening hundreds of
connections a second must not write hundreds of events): a start without a token is not
written, its flow is remembered as suppressed (so its stop is not written either) and
the count rides on the source's next written event (`suppressed`), or on a `net.flow`
event of stage `suppressed` that `flush` writes once the source has a token again. A
written start's stop is always written: stops never outnumber starts. The open flows
are a table of at most `max_open` entries, the oldest evicted first; a stop whose start
was not seen (evicted, or the flow began before the listener) is written once with what
it carries, through the source's bucket, with `start_seen` 0.

Who a flow belongs to is looked up at its start and kept: at the stop the SIM may have
lost its session already (a revocation cuts its flows after moving it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ztsim.events.schema import NewEvent
from ztsim.net.ctnetlink import ConntrackEvent, Kind
from ztsim.net.denials import BURST, RATE, DenialContext, Explain, FlowEvents
from ztsim.net.nflog import Flow
from ztsim.net.tunnel_routes import TunnelRoutes

START, STOP, SUPPRESSED = "start", "stop", "suppressed"
# About 100 octets an entry: 100,000 open flows of logged orgs are some 10-20 MB.
MAX_OPEN = 100_000


@dataclass(slots=True)
class _Open:
    ctx: DenialContext
    since: float  # monotonic seconds when the start was seen
    written: bool  # False: the start was suppressed, and so is the stop


@dataclass(slots=True)
class _Source:
    tokens: float
    stamp: float
    suppressed: int = 0
    last: tuple[DenialContext, Flow] | None = None


def _flow(event: ConntrackEvent) -> Flow:
    t = event.original
    return Flow(t.source, t.destination, t.protocol, t.destination_port, t.source_port)


class FlowLog:
    """Conntrack events in, allowed-flow events out; one thread (the listener's) uses it.
    `routes`: the sites' prefixes (replace it when the sites change)."""

    def __init__(
        self,
        explain: Explain,
        events: FlowEvents,
        routes: TunnelRoutes,
        *,
        rate: float = RATE,
        burst: float = BURST,
        max_open: int = MAX_OPEN,
    ) -> None:
        if rate <= 0 or burst < 1 or max_open < 1:
            raise ValueError("rate must be positive, burst and max_open at least 1")
        self._explain = explain
        self._events = events
        self.routes = routes
        self._rate, self._burst, self._max_open = rate, burst, max_open
        self._open: dict[tuple[int | None, Flow], _Open] = {}
        self._sources: dict[str, _Source] = {}
        # started, stopped, suppressed, private, unattributed, off_site, evicted, ignored,
        # forgotten
        self.counts: Counter[str] = Counter()

    def set_sites(self, prefixes: Iterable[tuple[str, str]]) -> None:
        """The sites' prefixes as (CIDR, site) pairs, e.g. from `read_site_tunnels`."""
        self.routes = TunnelRoutes(prefixes)

    def _bucket(self, source: str, now: float) -> _Source:
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _Source(self._burst, now)
        elif now > state.stamp:
            state.tokens = min(self._burst, state.tokens + (now - state.stamp) * self._rate)
            state.stamp = now
        return state

    def _take(self, ctx: DenialContext, flow: Flow, now: float) -> int | None:
        """The source's suppressed count to report with a written event, or None: no
        token, the event is suppressed (and counted)."""
        state = self._bucket(flow.source, now)
        if state.tokens < 1:
            state.suppressed += 1
            state.last = (ctx, flow)
            self.counts["suppressed"] += 1
            return None
        state.tokens -= 1
        carried, state.suppressed, state.last = state.suppressed, 0, None
        return carried

    def _context(self, flow: Flow) -> DenialContext | None:
        if self.routes.lookup_text(flow.destination) is None:
            self.counts["off_site"] += 1  # the SIM's internet traffic: not this log's business
            return None
        ctx = self._explain(flow.source, flow.destination, flow.protocol, flow.port)
        if ctx is None:
            self.counts["unattributed"] += 1  # not a SIM's address, or no session now
        return ctx

    def record(self, event: ConntrackEvent, now: float) -> list[NewEvent]:
        """The events for one conntrack event at `now` (monotonic seconds): at most one."""
        if event.kind is Kind.NEW:
            return self._start(event, now)
        if event.kind is Kind.DESTROY:
            return self._stop(event, now)
        self.counts["ignored"] += 1
        return []

    def _start(self, event: ConntrackEvent, now: float) -> list[NewEvent]:
        flow = _flow(event)
        ctx = self._context(flow)
        if ctx is None:
            return []
        built = self._events.allowed(ctx, flow, START, suppressed=0)
        if built is None:
            self.counts["private"] += 1  # the org's mode keeps allowed flows out of the log
            return []
        carried = self._take(ctx, flow, now)
        key = (event.id, flow)
        self._open.pop(key, None)  # an id the kernel reused: the newer flow counts
        if len(self._open) >= self._max_open:
            del self._open[next(iter(self._open))]  # the oldest: its stop will be unmatched
            self.counts["evicted"] += 1
        self._open[key] = _Open(ctx, now, carried is not None)
        if carried is None:
            return []
        if carried:  # built again only to carry the count: most starts carry none
            built = self._events.allowed(ctx, flow, START, suppressed=carried) or built
        self.counts["started"] += 1
        return [built]

    def _stop(self, event: ConntrackEvent, now: float) -> list[NewEvent]:
        flow = _flow(event)
        known = self._open.pop((event.id, flow), None)
        if known is not None and not known.written:
            self.counts["suppressed"] += 1
            return []
        details: dict[str, int] = {}
        if known is None:
            ctx = self._context(flow)
            if ctx is None:
                return []
            carried = self._take(ctx, flow, now)
            if carried is None:
                return []
            details.update(start_seen=0, suppressed=carried)
        else:
            ctx = known.ctx
        duration = event.duration
        if duration is None and known is not None:
            duration = max(0.0, now - known.since)
        if duration is not None:
            details["duration_ms"] = round(duration * 1000)
        for prefix, counters in (("out", event.original_counters), ("in", event.reply_counters)):
            if counters is not None:  # out: from the SIM, as the flow's first packet went
                details[f"packets_{prefix}"] = counters.packets
                details[f"bytes_{prefix}"] = counters.bytes
        built = self._events.allowed(ctx, flow, STOP, **details)
        if built is None:
            self.counts["private"] += 1  # the org left mode `all` while the flow was open
            return []
        self.counts["stopped"] += 1
        return [built]

    def flush(self, now: float, final: bool = False) -> list[NewEvent]:
        """Summaries of the sources whose suppression is over (a token again, or `final`);
        forgets sources with nothing pending and a full bucket."""
        out: list[NewEvent] = []
        for source in list(self._sources):
            state = self._bucket(source, now)
            if state.suppressed and state.last is not None and (final or state.tokens >= 1):
                state.tokens = max(0.0, state.tokens - 1)
                ctx, flow = state.last
                built = self._events.allowed(ctx, flow, SUPPRESSED, suppressed=state.suppressed)
                if built is not None:
                    out.append(built)
                state.suppressed, state.last = 0, None
            if not state.suppressed and state.tokens >= self._burst:
                del self._sources[source]
        return out

    def forget(self) -> int:
        """Forget the open flows and the sources' buckets (the listener closed: no org
        logs allowed flows, and the stops it will not hear of are not owed); how many
        open flows were forgotten."""
        forgotten = len(self._open)
        self._open.clear()
        self._sources.clear()
        self.counts["forgotten"] += forgotten
        return forgotten

    @property
    def open_flows(self) -> int:
        return len(self._open)

    def __len__(self) -> int:
        """The sources tracked: each has tokens to regain or flows to report."""
        return len(self._sources)
