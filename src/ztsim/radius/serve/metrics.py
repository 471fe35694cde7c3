"""The AAA role's Prometheus metrics, read at scrape time from what the service and its
core count anyway (`counting`, `ztsim.radius.aaa.traffic.Counters`, the writer, the
feed's follower). No label names an org, a gateway, a SIM or an address."""

from __future__ import annotations

from ztsim.metrics.feed import feed_families
from ztsim.metrics.registry import Collector, Family, HistogramValue, Kind, Spec
from ztsim.radius.codes import Code
from ztsim.radius.serve.counting import COMMIT_BUCKETS, REQUEST_BUCKETS, Timings
from ztsim.radius.serve.service import AaaService

ROLE = "radius"

REQUESTS = Spec(
    "ztsim_radius_requests_total",
    "RADIUS datagrams received, by port (auth: 1812, acct: 1813).",
    Kind.COUNTER,
    ("port",),
)
RESPONSES = Spec(
    "ztsim_radius_responses_total",
    "RADIUS responses sent, by code (retransmissions answered from the cache included).",
    Kind.COUNTER,
    ("code",),
)
DROPPED = Spec(
    "ztsim_radius_dropped_total",
    "RADIUS requests left unanswered, by reason.",
    Kind.COUNTER,
    ("reason",),
)
DUPLICATES = Spec(
    "ztsim_radius_duplicates_total",
    "Retransmissions: answered from the replay cache, or ignored while their reply waits "
    "for its commit.",
    Kind.COUNTER,
)
DURATION = Spec(
    "ztsim_radius_request_duration_seconds",
    "Seconds the AAA core took for one request, by port (an Accounting-Response then "
    "also waits for its commit: ztsim_radius_commit_duration_seconds).",
    Kind.HISTOGRAM,
    ("port",),
    REQUEST_BUCKETS,
)
SEND_FAILURES = Spec(
    "ztsim_radius_send_failures_total",
    "Responses the system would not send, by port (the gateway retransmits).",
    Kind.COUNTER,
    ("port",),
)
COMMITS = Spec(
    "ztsim_radius_commits_total",
    "Commits of the AAA records' writer, by result (failed: the database is unreachable; "
    "the records are kept and retried).",
    Kind.COUNTER,
    ("result",),
)
COMMIT_DURATION = Spec(
    "ztsim_radius_commit_duration_seconds",
    "Seconds per successful commit of the AAA records' writer.",
    Kind.HISTOGRAM,
    (),
    COMMIT_BUCKETS,
)
AWAITING = Spec(
    "ztsim_radius_accounting_awaiting_commit",
    "Accounting-Responses waiting for their records to be committed.",
    Kind.GAUGE,
)
JOURNAL_BACKLOG = Spec(
    "ztsim_radius_accounting_journal_backlog_bytes",
    "Octets of accounting journaled (and answered) whose commit has not happened yet.",
    Kind.GAUGE,
)
RETAINED = Spec(
    "ztsim_radius_records_retained",
    "AAA events kept in memory because their commit failed.",
    Kind.GAUGE,
)
RECORDS_DROPPED = Spec(
    "ztsim_radius_records_dropped_total",
    "Access decision events given up during a database outage (past the writer's bound).",
    Kind.COUNTER,
)
DISCONNECTS = Spec(
    "ztsim_radius_disconnects_total",
    "Disconnect-Requests (RFC 5176) finished, by result (ack, nak, timeout).",
    Kind.COUNTER,
    ("result",),
)
DISCONNECTS_IN_FLIGHT = Spec(
    "ztsim_radius_disconnects_in_flight",
    "Disconnect-Requests sent and not yet answered or given up.",
    Kind.GAUGE,
)
EXHAUSTED_POOLS = Spec(
    "ztsim_radius_exhausted_pools",
    "Address pools with no block left: their new SIMs are refused.",
    Kind.GAUGE,
)


def _code_name(code: int) -> str:
    try:
        return Code(code).name.lower()
    except ValueError:
        return str(code)


def _histogram(timings: Timings) -> HistogramValue:
    return HistogramValue(tuple(timings.counts), timings.sum)


def radius_collector(service: AaaService) -> Collector:
    """The service's metrics, for `Registry.register`; nothing but the feed before start."""

    def collect() -> list[Family]:
        follower = service.follower
        families = feed_families(
            ROLE,
            follower.lag_seconds() if follower is not None else 0.0,
            service.applied_seq,
            follower.connected if follower is not None else True,
        )
        core, counted, server = service.core, service.counted, service.server
        if core is None or counted is None or server is None:
            return families
        c = core.counters
        commits = service.commits
        ports = (("auth", counted.auth), ("acct", counted.acct))
        families += [
            REQUESTS.family([((port,), counts.requests) for port, counts in ports]),
            RESPONSES.family(
                [((_code_name(code),), n) for code, n in sorted(counted.responses().items())]
            ),
            DROPPED.family(
                [
                    (("unknown_client",), c.unknown_client),
                    (("malformed",), c.malformed),
                    (("bad_authenticator",), c.bad_authenticator),
                    (("unexpected_code",), c.unexpected_code),
                    (("no_address_yet",), c.no_address_yet),
                    (("accounting_deferred",), c.acct_deferred),
                ]
            ),
            DUPLICATES.family([((), c.duplicates)]),
            DURATION.histogram([((port,), _histogram(n.timings)) for port, n in ports]),
            SEND_FAILURES.family(
                [
                    (("auth",), server.auth.send_failures),
                    (("acct",), server.acct.send_failures + server.acct_send_failures),
                ]
            ),
            COMMITS.family([(("ok",), commits.ok), (("failed",), commits.failed)]),
            COMMIT_DURATION.histogram([((), _histogram(commits.timings))]),
            AWAITING.family([((), len(core.awaiting))]),
            JOURNAL_BACKLOG.family(
                [((), service.journal.backlog if service.journal is not None else 0)]
            ),
            RETAINED.family([((), service.writer.retained)]),
            RECORDS_DROPPED.family([((), service.writer.dropped_access)]),
            DISCONNECTS.family(
                [((outcome.value,), n) for outcome, n in service.coa.outcomes.items()]
            ),
            DISCONNECTS_IN_FLIGHT.family([((), len(service.revoker.in_flight))]),
            EXHAUSTED_POOLS.family([((), len(core.exhausted_pools))]),
        ]
        return families

    return collect
