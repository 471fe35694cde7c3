"""What the admin overview shows: devices attached now, and the last hour's attaches,
refusals, DNS queries and blocks, counted from the event log and the session table
through the same store functions the API reads.

Counting walks the stores' pages, bounded: past `CAP` rows a count is shown as "at
least" rather than read without end (a count query in the event store would lift it).
Each figure is read only when the viewer's role may read its source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import Event, Outcome
from ztsim.identity.roles import Permission
from ztsim.sessions import repository as sessions
from ztsim.web.viewer import Viewer

WINDOW = timedelta(hours=1)
_PAGE = 1000  # the stores' largest page
CAP = 50 * _PAGE

# Event kinds, as the RADIUS server and the DNS gateway write them.
ACCESS = "radius.access"
DNS_STATS = "dns.stats"


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
    figures: list[Figure] = field(default_factory=list)
    refusals: list[Figure] = field(default_factory=list)  # per reason
    hidden: list[str] = field(default_factory=list)  # what the role may not read


def _events(conn: Connection, org_id: str, kind: str, since: datetime) -> Iterator[Event]:
    cursor: str | None = None
    for _ in range(CAP // _PAGE):
        q = events.EventQuery(kind=kind, since=since)
        page, cursor = events.query(conn, org_id, q, limit=_PAGE, cursor=cursor)
        yield from page
        if cursor is None:
            return


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
    accepted, refused, seen = 0, Counter[str](), 0
    for e in _events(conn, org_id, ACCESS, since):
        seen += 1
        if e.outcome is Outcome.SUCCESS:
            accepted += 1
        else:
            refused[e.reason or "no reason given"] += 1
    capped = seen >= CAP
    queries = blocked = stats = 0
    for e in _events(conn, org_id, DNS_STATS, since):
        stats += 1
        queries += int(e.payload.get("queries", 0))
        blocked += int(e.payload.get("blocked", 0))
    figures = [
        Figure("Attaches accepted", accepted, capped),
        Figure("Attaches refused", sum(refused.values()), capped),
        Figure("DNS queries", queries, stats >= CAP),
        Figure("DNS queries blocked", blocked, stats >= CAP),
    ]
    reasons = [Figure(reason, n, capped) for reason, n in refused.most_common()]
    return figures, reasons


def read(conn: Connection, viewer: Viewer, clock: Callable[[], datetime]) -> Overview:
    org = viewer.principal.org_id
    since = clock() - WINDOW
    out = Overview(since)
    if viewer.may(Permission.SESSIONS_READ):
        out.figures.append(_attached(conn, org))
    else:
        out.hidden.append("devices attached now")
    if viewer.may(Permission.EVENTS_READ):
        figures, reasons = _hour(conn, org, since)
        out.figures.extend(figures)
        out.refusals.extend(reasons)
    else:
        out.hidden.append("attaches, refusals and DNS counts (they come from the event log)")
    return out
