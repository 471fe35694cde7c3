"""The DNS gateway process's Prometheus metrics, read at scrape time from what the
process keeps anyway: nothing is added to the query path.

`dns_collector(process)` serves one process (`ztsim serve dns` with one worker, the
gateway of `ztsim up`). With workers, each sends its families to the parent every second
(`relay`), and the parent serves them merged (`host_collector`: counters summed, gauges
per process). No label names an org, a requester or an address.
"""

from __future__ import annotations

import time

from ztsim.dns.serve.runner import GatewayProcess
from ztsim.dns.serve.workers import WorkerPool
from ztsim.dns.verdict import Verdict
from ztsim.metrics.feed import feed_families
from ztsim.metrics.registry import Collector, Family, Kind, Spec, merge

ROLE = "dns"

QUERIES = Spec(
    "ztsim_dns_queries_total",
    "Queries handled, by transport: udp, or tcp (TCP, DNS over TLS and DNS over HTTPS).",
    Kind.COUNTER,
    ("transport",),
)
RESPONSES = Spec(
    "ztsim_dns_responses_total",
    "Queries by what the gateway did: allowed, blocked, overridden, refused_revoked (SIM "
    "suspended or retired, identity disabled), refused_unknown_source, refused_not_served, "
    "servfail (no upstream answered, nothing stale), other (malformed, other opcodes).",
    Kind.COUNTER,
    ("verdict",),
)

DROPPED = Spec(
    "ztsim_dns_dropped_total",
    "Queries dropped, by transport: past the bound of queries waiting for an upstream, "
    "or answers the system would not send (the client retries).",
    Kind.COUNTER,
    ("transport",),
)
UNKNOWN_SOURCES = Spec(
    "ztsim_dns_unknown_source_total",
    "Queries from a source not known yet, by result: waited for the change feed's next "
    "read, or turned away (every place to wait taken) and answered at once.",
    Kind.COUNTER,
    ("result",),
)
UNKNOWN_WAITING = Spec(
    "ztsim_dns_unknown_source_waiting",
    "Queries from unknown sources waiting for the change feed's next read now.",
    Kind.GAUGE,
)
LOG_PENDING = Spec(
    "ztsim_dns_querylog_pending",
    "Query log events waiting for the writer.",
    Kind.GAUGE,
)
LOG_BACKLOG = Spec(
    "ztsim_dns_querylog_backlog",
    "Query log events kept because the database is unreachable.",
    Kind.GAUGE,
)
LOG_DROPPED = Spec(
    "ztsim_dns_querylog_dropped_total",
    "Query log events given up past the log's bound (reported as dns.events_dropped).",
    Kind.COUNTER,
)
CACHE_ENTRIES = Spec(
    "ztsim_dns_cache_entries",
    "Upstream answers in the answer cache.",
    Kind.GAUGE,
)
UPSTREAMS = Spec(
    "ztsim_dns_upstreams",
    "Configured upstream resolvers, by state (down: failed lately, probed until it answers).",
    Kind.GAUGE,
    ("state",),
)


def dns_collector(process: GatewayProcess) -> Collector:
    """The process's metrics, for `Registry.register` (or per worker, for `merge`)."""

    def collect() -> list[Family]:
        gateway = process.gateway
        families = feed_families(
            ROLE, process.lag_seconds(), process.position(), process.feed.connected
        )
        late = gateway.late
        now = time.monotonic()  # the upstream pool's clock
        down = sum(u.down_until > now for u in gateway.upstreams.upstreams)
        engine = gateway.engine
        tcp, udp = engine.queries
        families += [
            QUERIES.family([(("udp",), udp), (("tcp",), tcp)]),
            RESPONSES.family(((v.label,), engine.verdicts[v]) for v in Verdict),
            DROPPED.family([(("udp",), process.udp_dropped)]),
            UNKNOWN_SOURCES.family(
                []
                if late is None
                else [(("waited",), late.waited), (("turned_away",), late.turned_away)]
            ),
            UNKNOWN_WAITING.family([((), 0 if late is None else late.waiting)]),
            LOG_PENDING.family([((), len(process.querylog))]),
            LOG_BACKLOG.family([((), len(process.unwritten))]),
            LOG_DROPPED.family([((), process.querylog.dropped)]),
            CACHE_ENTRIES.family([((), len(gateway.engine.cache))]),
            UPSTREAMS.family(
                [(("up",), len(gateway.upstreams.upstreams) - down), (("down",), down)]
            ),
        ]
        return families

    return collect


def host_collector(pool: WorkerPool) -> Collector:
    """A host of `serve dns --workers N`: the parent's feed (it follows the feed for the
    host) and each worker's metrics as it last sent them (every `PUSH_SECONDS`), merged:
    counters summed, gauges one series per process."""

    def collect() -> tuple[Family, ...]:
        process = pool.process
        parent = feed_families(
            ROLE, process.lag_seconds(), process.position(), process.feed.connected
        )
        return merge({"parent": parent, **pool.hub.worker_metrics()})

    return collect


PUSH_SECONDS = 1.0  # how often a worker sends its parent its metrics
