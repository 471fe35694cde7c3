"""What the admin overview shows: devices attached now; the last hour's attaches,
refusals, DNS queries and blocks; the last 24 hours as charts (`series`); the newest
risk events (`risk_events`); the gateways with their health (`gateway_health`). Read
through the same store functions the API reads, each part only when the viewer's role
may read its source.

The hour's figures and the charts are counted in SQL (`events.store.tally`), exact
however many events there are. Live sessions are counted by walking the session store's
pages, bounded: past `CAP` rows the count is shown as "at least".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import Outcome
from ztsim.identity.roles import Permission
from ztsim.sessions import repository as sessions
from ztsim.web import gateway_health, risk_events, series
from ztsim.web.gateway_health import GatewayHealth
from ztsim.web.risk_events import RiskEvent
from ztsim.web.series import ACCESS, DNS_STATS, Series
from ztsim.web.viewer import Viewer

__all__ = ["ACCESS", "CAP", "DNS_STATS", "Figure", "Overview", "read"]

WINDOW = timedelta(hours=1)
_PAGE = 1000  # the stores' largest page
CAP = 50 * _PAGE


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: int
    capped: bool = False  # the true value is at least `value`

    @property
    def shown(self) -> str:
        return f"at least {self.value:,}" if self.capped else f"{self.value:,}"


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    series: Series
    figures: list[Figure] = field(default_factory=list)
    refusals: list[Figure] = field(default_factory=list)  # per reason
    risks: list[RiskEvent] | None = None  # None: the role may not read them
    gateways: list[GatewayHealth] | None = None  # None: the role may not read them
    hidden: list[str] = field(default_factory=list)  # what the role may not read


def _attached(conn: Connection, org_id: str) -> Figure:
    count, cursor = 0, None
    for _ in range(CAP // _PAGE):
        page, cursor = sessions.list_sessions(
            conn, org_id, sessions.SessionFilter(live=True), limit=_PAGE, cursor=cursor
        )
        count += len(page)
        if cursor is None:
            return Figure("Devices attached now", count)
    return Figure("Devices attached now", count, capped=True)


def _hour(conn: Connection, org_id: str, since: datetime) -> tuple[list[Figure], list[Figure]]:
    accepted, refused = 0, Counter[str]()
    for t in events.tally(conn, org_id, ACCESS, since=since, width=WINDOW, buckets=1):
        if t.outcome is Outcome.SUCCESS:
            accepted += t.events
        else:
            refused[t.reason or "no reason given"] += t.events
    stats = events.tally(
        conn, org_id, DNS_STATS, since=since, width=WINDOW, buckets=1, sums=("queries", "blocked")
    )
    figures = [
        Figure("Attaches accepted", accepted),
        Figure("Attaches refused", sum(refused.values())),
        Figure("DNS queries", sum(t.sums["queries"] for t in stats)),
        Figure("DNS queries blocked", sum(t.sums["blocked"] for t in stats)),
    ]
    reasons = [Figure(reason, n) for reason, n in refused.most_common()]
    return figures, reasons


def read(conn: Connection, viewer: Viewer, clock: Callable[[], datetime]) -> Overview:
    org = viewer.principal.org_id
    now = clock()
    out = Overview(now - WINDOW, series.read(conn, viewer, clock))
    if viewer.may(Permission.SESSIONS_READ):
        out.figures.append(_attached(conn, org))
    else:
        out.hidden.append("devices attached now")
    if viewer.may(Permission.EVENTS_READ):
        figures, reasons = _hour(conn, org, out.since)
        out.figures.extend(figures)
        out.refusals.extend(reasons)
        out = replace(out, risks=risk_events.newest(conn, org))
    else:
        out.hidden.append(
            "attaches, refusals, DNS counts, their charts and risk events "
            "(they come from the event log)"
        )
    if viewer.may(Permission.GATEWAYS_READ) and viewer.may(Permission.SESSIONS_READ):
        out = replace(out, gateways=gateway_health.read(conn, org, now))
    else:
        out.hidden.append("gateways and their sessions")
    return out
