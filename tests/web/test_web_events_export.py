"""The explorer's exports: CSV that parses back to the events with formulas neutralised,
JSON that is the API's own items, and the bound on how many rows a file holds."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from web.events_world import FORMULA, Written, write
from ztsim.events import store
from ztsim.events.schema import NewEvent
from ztsim.identity.roles import Role
from ztsim.web import events_explorer as explorer
from ztsim.web import events_export as export

from support.api import ApiHarness
from support.world import World

_NONE = explorer.parse(explorer.typed({}))


@pytest.fixture
def written(api: ApiHarness, two_orgs: tuple[World, World]) -> Written:
    return write(api, *two_orgs)


def test_the_csv_parses_back_to_the_events(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        events, truncated = export.collect(conn, alpha.org.id, _NONE)
    assert not truncated
    rows = list(csv.reader(io.StringIO(export.to_csv(events))))
    assert rows[0] == list(export.COLUMNS)
    assert len(rows) == len(events) + 1
    for row, event in zip(rows[1:], events, strict=True):
        parsed = dict(zip(export.COLUMNS, row, strict=True))
        assert int(parsed["id"]) == event.id
        assert (parsed["kind"], parsed["subject"], parsed["actor"]) == (
            event.kind,
            event.subject,
            event.actor,
        )
        assert parsed["outcome"] == event.outcome.value
        assert json.loads(parsed["payload"]) == event.payload
        if event.reason == FORMULA:
            assert parsed["reason"] == "'" + FORMULA  # neutralised: a spreadsheet shows text
        else:
            assert parsed["reason"] == event.reason
    assert "'" + FORMULA in {r[6] for r in rows[1:]}


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_neutralised(start: str) -> None:
    assert export.neutralised(start + "1+1") == "'" + start + "1+1"


def test_plain_cells_stay_as_they_are() -> None:
    for cell in ("radius.access", "sim:8944", "", "2025-01-31T14:00:00Z", "a=b"):
        assert export.neutralised(cell) == cell


def test_the_json_is_the_apis_list_of_the_same_events(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        events, _ = export.collect(conn, alpha.org.id, _NONE)
    shown = json.loads(export.to_json(events))
    r = api.client.get("/api/v1/events?limit=1000", headers=alpha.org.auth(Role.AUDITOR))
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    assert shown == r.json()["items"]


def test_an_export_stops_at_its_bound_and_says_so(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    now = api.clock()
    many = [
        NewEvent(alpha.org.id, "load.test", "test", f"sim:{i}") for i in range(export.MAX_ROWS + 1)
    ]
    with api.engine.begin() as conn:
        store.append(conn, many, now + timedelta(seconds=1))
    load = explorer.parse(explorer.typed({"kind": "load.test"}))
    with api.engine.connect() as conn:
        events, truncated = export.collect(conn, alpha.org.id, load)
        fewer, fits = export.collect(
            conn, alpha.org.id, explorer.parse(explorer.typed({"prefix": "radius."}))
        )
    assert truncated
    assert len(events) == export.MAX_ROWS
    assert events[0].subject == f"sim:{export.MAX_ROWS}"  # the newest kept, the oldest left out
    assert len({e.id for e in events}) == export.MAX_ROWS
    assert not fits
    assert fewer == []


def test_the_file_name_says_when() -> None:
    when = datetime(2025, 1, 31, 14, 5, 9, tzinfo=UTC)
    assert export.filename(when, "csv") == "events-20250131T140509Z.csv"
