"""The overview's charts: the last 24 hours in hourly spans, counted in SQL from the
event log (`events.store.tally`): attaches accepted and refused, DNS queries and blocks.

The spans are whole clock hours, the last one the hour under way, so a chart read twice
in an hour shows the same spans. The page draws them with uPlot (`static/overview.js`,
from `/overview/series.json`) and prints the same figures as tables, the charts' text
alternative. Counts come from the event log, so a role without `events:read` gets no
chart at all (the overview says so), never zeros that would look like a quiet day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import Outcome
from ztsim.identity.roles import Permission
from ztsim.web.viewer import Viewer

SPAN = timedelta(hours=1)
SPANS = 24

# Event kinds, as the RADIUS server and the DNS gateway write them.
ACCESS = "radius.access"
DNS_STATS = "dns.stats"


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    values: list[int]


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # the element the page draws it in: `chart-<key>`
    title: str
    lines: list[Line]

    def rows(self, starts: list[datetime]) -> list[tuple[datetime, list[int]]]:
        """Per span, its start and each line's value: the table under the chart."""
        return [(start, [line.values[i] for line in self.lines]) for i, start in enumerate(starts)]


@dataclass(frozen=True, slots=True)
class Series:
    starts: list[datetime]  # each span's start, oldest first
    charts: list[Chart] = field(default_factory=list)
    hidden: bool = False  # the role may not read the event log

    def as_json(self) -> dict[str, Any]:
        return {
            "span_seconds": int(SPAN.total_seconds()),
            "times": [int(s.timestamp()) for s in self.starts],
            "charts": [
                {
                    "key": c.key,
                    "title": c.title,
                    "lines": [{"label": line.label, "values": line.values} for line in c.lines],
                }
                for c in self.charts
            ],
        }


def spans(now: datetime) -> list[datetime]:
    """The starts of the last `SPANS` whole hours, the current one last."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return [hour - SPAN * (SPANS - 1 - i) for i in range(SPANS)]


def _attaches(conn: Connection, org_id: str, since: datetime) -> Chart:
    accepted, refused = [0] * SPANS, [0] * SPANS
    for t in events.tally(conn, org_id, ACCESS, since=since, width=SPAN, buckets=SPANS):
        into = accepted if t.outcome is Outcome.SUCCESS else refused
        into[t.bucket] += t.events
    return Chart("attaches", "Attaches", [Line("Accepted", accepted), Line("Refused", refused)])


def _dns(conn: Connection, org_id: str, since: datetime) -> Chart:
    queries, blocked = [0] * SPANS, [0] * SPANS
    found = events.tally(
        conn,
        org_id,
        DNS_STATS,
        since=since,
        width=SPAN,
        buckets=SPANS,
        sums=("queries", "blocked"),
    )
    for t in found:
        queries[t.bucket] += t.sums["queries"]
        blocked[t.bucket] += t.sums["blocked"]
    return Chart("dns", "DNS queries", [Line("Queries", queries), Line("Blocked", blocked)])


def read(conn: Connection, viewer: Viewer, clock: Callable[[], datetime]) -> Series:
    starts = spans(clock())
    # A `self` token reads events about itself only: never the org's totals.
    if viewer.is_self or not viewer.may(Permission.EVENTS_READ):
        return Series(starts, hidden=True)
    org = viewer.principal.org_id
    return Series(starts, [_attaches(conn, org, starts[0]), _dns(conn, org, starts[0])])
