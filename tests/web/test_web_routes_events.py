"""`/events` and its exports through the app: who may open them, the filters and paging
links in the page, the downloads, and malformed filters answered 400 with the form."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from web.events_world import FORMULA, Written, console_app, ids_of, signed_in_client, write
from ztsim.identity.roles import Role
from ztsim.web import events_export

from support.api import ApiHarness
from support.world import World

_ROW = re.compile(r'<tr id="event-(\d+)">')
_LINK = re.compile(r'<a href="([^"]+)" rel="(prev|next)">')


@pytest.fixture
def written(api: ApiHarness, two_orgs: tuple[World, World]) -> Written:
    return write(api, *two_orgs)


def _ids(html: str) -> list[int]:
    return [int(i) for i in _ROW.findall(html)]


def _links(html: str) -> dict[str, str]:
    return {rel: unescape(href) for href, rel in _LINK.findall(html)}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST, Role.AUDITOR])
def test_the_roles_that_read_events_see_their_own_orgs(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written, role: Role
) -> None:
    alpha, bravo = two_orgs
    client = signed_in_client(api, alpha, role)
    r = client.get("/events?limit=200")
    assert r.status_code == 200, r.text
    assert _ids(r.text) == ids_of(api, alpha.org.id)
    assert bravo.ids["iccid"] not in r.text
    assert 'aria-current="page"' in r.text
    assert f"at most {events_export.MAX_ROWS:,}" in r.text  # the export's bound is stated
    assert 'option value="radius.access"' in r.text  # the org's kinds to choose from


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SELF])
def test_roles_without_the_event_log_get_403_on_page_and_exports(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written, role: Role
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, role)
    for path in ("/events", "/events.csv", "/events.json"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "sim:" not in r.text


def test_a_stranger_is_sent_to_sign_in(api: ApiHarness) -> None:
    client = TestClient(console_app(api))
    for path in ("/events", "/events.csv", "/events.json"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"


def test_the_paging_links_walk_every_event_once_and_keep_the_filters(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.ANALYST)
    url: str | None = "/events?prefix=&outcome=&limit=3"
    seen: list[int] = []
    pages: list[str] = []
    while url is not None:
        r = client.get(url)
        assert r.status_code == 200, r.text
        seen += _ids(r.text)
        pages.append(url)
        url = _links(r.text).get("next")
        if url is not None:
            assert "limit=3" in url
    assert seen == ids_of(api, alpha.org.id)
    # A filtered walk back: newer links carry the filter too.
    first = client.get("/events?prefix=radius.&limit=1")
    older = _links(first.text)["next"]
    second = client.get(older)
    newer = _links(second.text)["prev"]
    assert "prefix=radius." in older
    assert "prefix=radius." in newer
    assert _ids(client.get(newer).text) == _ids(first.text)


def test_a_filter_shows_only_what_passes_it(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.ADMIN)
    r = client.get("/events", params={"kind": "radius.access", "outcome": "denied"})
    assert r.status_code == 200
    assert len(_ids(r.text)) == 1
    assert "SIM suspended" in r.text
    assert 'value="radius.access" selected' in r.text  # the form shows what was asked


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "last tuesday"}, "from: a date and time"),
        ({"kind": "Radius Access"}, "kind: lower-case letters"),
        ({"outcome": "maybe"}, "outcome: one of"),
        ({"sim": "12"}, "SIM: an ICCID"),
        ({"older": "garbage"}, "cursor"),
    ],
)
def test_a_malformed_filter_is_a_400_with_the_form(
    api: ApiHarness,
    two_orgs: tuple[World, World],
    written: Written,
    params: dict[str, str],
    message: str,
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.ADMIN)
    r = client.get("/events", params=params)
    assert r.status_code == 400
    assert message in unescape(r.text)
    assert 'action="/events"' in r.text
    if "older" not in params:
        for path in ("/events.csv", "/events.json"):
            bad = client.get(path, params=params)
            assert bad.status_code == 400, path
            assert message in unescape(bad.text)


def test_another_orgs_person_reads_as_nobody(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, bravo = two_orgs
    client = signed_in_client(api, alpha, Role.ADMIN)
    theirs = client.get("/events", params={"person": bravo.ids["identity_id"]})
    nobody = client.get("/events", params={"person": "0" * 32})
    assert theirs.status_code == nobody.status_code == 400
    assert "no person" in unescape(theirs.text)
    assert bravo.ids["iccid"] not in theirs.text


def test_the_csv_download_is_an_attachment_of_the_filtered_events(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.AUDITOR)
    r = client.get("/events.csv", params={"kind": "audit.note"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="events-')
    assert r.headers["x-export-truncated"] == "false"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["kind"], row["reason"]) for row in rows] == [("audit.note", "'" + FORMULA)]


def test_the_json_download_is_what_the_api_gives(
    api: ApiHarness, two_orgs: tuple[World, World], written: Written
) -> None:
    alpha, bravo = two_orgs
    client = signed_in_client(api, alpha, Role.ANALYST)
    r = client.get("/events.json", params={"kind": "radius.access"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith('.json"')
    from_api = api.client.get(
        "/api/v1/events", params={"kind": "radius.access"}, headers=alpha.org.auth(Role.ANALYST)
    )
    assert r.json() == from_api.json()["items"]
    assert len(r.json()) == 2
    assert bravo.ids["iccid"] not in r.text
