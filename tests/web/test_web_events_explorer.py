"""The explorer's filters, each narrowing to exactly the events that pass it, its keyset
paging both ways, and malformed filters refused with the field named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from web.events_world import Written, ids_of, write
from ztsim.errors import InvalidInput
from ztsim.events.schema import Event, Outcome
from ztsim.web import events_explorer as explorer

from support.api import ApiHarness
from support.world import World


def _filters(**given: str) -> explorer.Filters:
    return explorer.parse(explorer.typed(given))


def _all(api: ApiHarness, org_id: str, filters: explorer.Filters) -> list[Event]:
    with api.engine.connect() as conn:
        found = explorer.search(conn, org_id, replace(filters, limit=1000))
    assert found.older is None, "the test's events fit on one page"
    return found.events


def _shape(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.subject, e.outcome.value) for e in events]


@pytest.fixture
def written(api: ApiHarness, two_orgs: tuple[World, World]) -> Written:
    return write(api, *two_orgs)


def test_each_filter_narrows_to_what_passes_it(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    org, sim = alpha.org.id, f"sim:{alpha.ids['iccid']}"
    person = f"identity:{alpha.ids['identity_id']}"
    everything = _all(api, org, _filters())

    def only(keep: Callable[[Event], bool]) -> list[Event]:
        return [e for e in everything if keep(e)]

    by_kind = _all(api, org, _filters(kind="radius.access"))
    assert _shape(by_kind) == [
        ("radius.access", sim, "denied"),
        ("radius.access", sim, "success"),
    ]
    assert _all(api, org, _filters(prefix="radius.")) == only(
        lambda e: e.kind.startswith("radius.")
    )
    assert len(_all(api, org, _filters(prefix="radius."))) == 3
    assert _all(api, org, _filters(prefix="radius_")) == []  # "_" is no LIKE wildcard here

    by_sim = _all(api, org, _filters(sim=alpha.ids["iccid"]))
    assert by_sim == only(lambda e: e.subject == sim)
    assert {"radius.access", "radius.disconnect"} <= {e.kind for e in by_sim}

    by_outcome = _all(api, org, _filters(outcome="denied"))
    assert by_outcome == only(lambda e: e.outcome is Outcome.DENIED)
    assert len(by_outcome) == 3

    # A person: the events about them, their SIMs and devices, by identity id or by email.
    device = f"device:{alpha.ids['device_id']}"
    by_person = _all(api, org, _filters(person=alpha.ids["identity_id"]))
    assert by_person == only(lambda e: e.subject in (person, sim, device))
    assert {person, sim} <= {e.subject for e in by_person}
    assert _all(api, org, _filters(person="u@alpha.test")) == by_person

    combined = _all(api, org, _filters(person="u@alpha.test", kind="dns.query", outcome="denied"))
    assert _shape(combined) == [("dns.query", person, "denied")]


def test_a_time_range_keeps_from_and_drops_to(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    old = written.old
    only_old = _all(
        api,
        alpha.org.id,
        _filters(**{"from": old.isoformat(), "to": (old + timedelta(seconds=1)).isoformat()}),
    )
    assert [e.kind for e in only_old] == ["audit.note"]
    until_old = _all(api, alpha.org.id, _filters(to=old.isoformat()))
    assert "audit.note" not in {e.kind for e in until_old}
    # A datetime-local value names no offset: it is UTC.
    naive = _filters(**{"from": "2025-01-31T14:00"})
    assert naive.since == datetime(2025, 1, 31, 14, 0, tzinfo=UTC)
    offset = _filters(**{"from": "2025-01-31T15:00:00+01:00"})
    assert offset.since == naive.since


def test_another_orgs_events_never_appear(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, bravo = two_orgs
    everything = _all(api, alpha.org.id, _filters())
    assert {e.org_id for e in everything} == {alpha.org.id}
    assert _all(api, alpha.org.id, _filters(sim=bravo.ids["iccid"])) == []
    with pytest.raises(InvalidInput, match="no person"):
        _all(api, alpha.org.id, _filters(person=bravo.ids["identity_id"]))


def test_paging_walks_every_event_once_each_way(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    expected = ids_of(api, alpha.org.id)
    assert len(expected) > 3 * 4  # several pages of four
    filters = _filters(limit="4")
    pages: list[list[int]] = []
    older: str | None = None
    with api.engine.connect() as conn:
        while True:
            page = explorer.search(conn, alpha.org.id, filters, older=older)
            pages.append([e.id for e in page.events])
            assert (page.newer is None) == (older is None)
            if page.older is None:
                break
            older = page.older
        assert [i for p in pages for i in p] == expected
        # And back again: each newer page is the page before it.
        newer = explorer.search(conn, alpha.org.id, filters, older=older).newer
        for want in reversed(pages[:-1]):
            assert newer is not None
            page = explorer.search(conn, alpha.org.id, filters, newer=newer)
            assert [e.id for e in page.events] == want
            newer = page.newer
        assert newer is None


def test_the_paging_links_carry_the_filters(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    filters = _filters(prefix="radius.", outcome="success", limit="1")
    with api.engine.connect() as conn:
        first = explorer.explore(conn, alpha.org.id, filters)
    assert first.newer is None
    assert first.older is not None
    assert first.older.startswith("/events?prefix=radius.&outcome=success&limit=1&older=")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("kind", "Radius Access", "kind"),
        ("prefix", "radius.*;drop", "kind prefix"),
        ("sim", "1234", "SIM"),
        ("outcome", "maybe", "outcome"),
        ("from", "yesterday", "from"),
        ("to", "2025-13-01T00:00", "to"),
        ("limit", "0", "limit"),
        ("limit", "5000", "limit"),
    ],
)
def test_a_malformed_filter_names_its_field(field: str, value: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{named}"):
        _filters(**{field: value})


def test_from_must_come_before_to() -> None:
    with pytest.raises(InvalidInput, match="before"):
        _filters(**{"from": "2025-02-01T00:00", "to": "2025-01-01T00:00"})


def test_cursors_not_issued_here_or_both_at_once_are_refused(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        with pytest.raises(InvalidInput, match="cursor"):
            explorer.search(conn, alpha.org.id, _filters(), older="not-a-cursor")
        with pytest.raises(InvalidInput, match="not both"):
            explorer.search(conn, alpha.org.id, _filters(), older="a", newer="b")


def test_a_time_with_an_offset_stays_in_a_text_field() -> None:
    assert explorer.time_input("") == "datetime-local"
    assert explorer.time_input("2025-01-31T14:00") == "datetime-local"
    assert explorer.time_input("2025-01-31T14:00:05") == "datetime-local"
    assert explorer.time_input("2025-01-31T14:00:00+01:00") == "text"
