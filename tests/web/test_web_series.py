"""The overview's 24 hourly spans, counted in SQL (`events.store.tally`) on each backend:
per span, outcome and reason, payload sums, the org's own events only, and nothing for a
role that may not read the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity import repository
from ztsim.identity.roles import Principal, Role
from ztsim.web import series
from ztsim.web.viewer import Viewer

NOW = datetime(2024, 5, 1, 10, 20, 30, 250_000, tzinfo=UTC)


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        a = repository.create_org(conn, "A", "a", NOW).id
        b = repository.create_org(conn, "B", "b", NOW).id
    return a, b


def _access(org: str, outcome: Outcome = Outcome.SUCCESS, reason: str = "") -> NewEvent:
    return NewEvent(org, series.ACCESS, "radius", "sim:1", outcome, reason)


def _stats(org: str, queries: int, blocked: int) -> NewEvent:
    return NewEvent(
        org, series.DNS_STATS, "dns", f"org:{org}", payload={"queries": queries, "blocked": blocked}
    )


def _viewer(org: str, role: Role) -> Viewer:
    return Viewer(Principal(org, role, "t", "me" if role is Role.SELF else None), "csrf")


def test_spans_are_the_last_24_whole_hours() -> None:
    starts = series.spans(NOW)
    assert len(starts) == series.SPANS
    assert starts[-1] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert starts[0] == datetime(2024, 4, 30, 11, tzinfo=UTC)


def test_tally_counts_per_span_outcome_and_reason(engine: Engine) -> None:
    a, b = _orgs(engine)
    hour = datetime(2024, 5, 1, 8, tzinfo=UTC)
    with engine.begin() as conn:
        # The span's first instant belongs to it; its last microsecond too.
        store.append(conn, [_access(a), _access(b)], hour)
        store.append(conn, [_access(a, Outcome.DENIED, "SIM suspended")], hour)
        store.append(conn, [_access(a)], hour + timedelta(minutes=59, seconds=59.999999))
        store.append(conn, [_access(a)], hour + timedelta(hours=1))
        store.append(conn, [_access(a)], hour - timedelta(microseconds=1))  # before `since`
        store.append(conn, [_access(a)], hour + timedelta(hours=3))  # past the last span
        store.append(conn, [_stats(a, 10, 3), _stats(a, 5, 1), _stats(b, 99, 9)], hour)
        store.append(conn, [NewEvent(a, series.DNS_STATS, "dns", "org:a")], hour)  # no payload
    with engine.connect() as conn:
        found = store.tally(conn, a, series.ACCESS, since=hour, width=timedelta(hours=1), buckets=3)
        stats = store.tally(
            conn,
            a,
            series.DNS_STATS,
            since=hour,
            width=timedelta(hours=1),
            buckets=1,
            sums=("queries", "blocked"),
        )
    counted = sorted((t.bucket, t.outcome.value, t.reason, t.events) for t in found)
    assert counted == [
        (0, "denied", "SIM suspended", 1),
        (0, "success", "", 2),
        (1, "success", "", 1),
    ]
    assert [(t.events, t.sums) for t in stats] == [(3, {"queries": 15, "blocked": 4})]


def test_tally_refuses_a_width_of_part_seconds(engine: Engine) -> None:
    a, _ = _orgs(engine)
    with engine.connect() as conn, pytest.raises(ValueError, match="whole seconds"):
        store.tally(
            conn, a, series.ACCESS, since=NOW, width=timedelta(milliseconds=1500), buckets=1
        )


def test_the_charts_of_an_admin(engine: Engine) -> None:
    a, b = _orgs(engine)
    with engine.begin() as conn:
        store.append(conn, [_access(a), _access(a, Outcome.DENIED, "x"), _access(b)], NOW)
        store.append(conn, [_access(a)], NOW - timedelta(hours=2))
        store.append(conn, [_stats(a, 7, 2)], NOW - timedelta(hours=23))
        store.append(conn, [_stats(a, 1000, 1000)], NOW - timedelta(hours=24))  # too old
    with engine.connect() as conn:
        found = series.read(conn, _viewer(a, Role.ADMIN), lambda: NOW)
    attaches, dns = found.charts
    accepted, refused = attaches.lines
    assert accepted.values[-1] == 1
    assert accepted.values[-3] == 1
    assert sum(accepted.values) == 2
    assert refused.values[-1] == 1
    assert sum(refused.values) == 1
    queries, blocked = dns.lines
    assert queries.values[0] == 7
    assert sum(queries.values) == 7
    assert blocked.values[0] == 2
    assert sum(blocked.values) == 2
    body = found.as_json()
    assert body["times"][-1] == int(datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp())
    assert body["span_seconds"] == 3600
    assert [c["key"] for c in body["charts"]] == ["attaches", "dns"]
    assert attaches.rows(found.starts)[-1] == (found.starts[-1], [1, 1])


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SELF])
def test_no_chart_without_the_org_s_event_log(engine: Engine, role: Role) -> None:
    a, _ = _orgs(engine)
    with engine.begin() as conn:
        store.append(conn, [_access(a)], NOW)
    with engine.connect() as conn:
        found = series.read(conn, _viewer(a, role), lambda: NOW)
    assert found.hidden
    assert found.charts == []
