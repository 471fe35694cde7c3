"""The settings page through the app: the viewer's org only, 403 for a `self` sign-in,
and the privacy mode's change: reviewed first, then written through the same use case as
PUT /api/v1/dns/settings (what the API then reads, the same audit event and change on
the feed), refused without the form's secret or with a mode that is not one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from web.signin import csrf_in, sign_in
from ztsim.api.app import create_app
from ztsim.db import schema
from ztsim.events import store as events
from ztsim.events.schema import Event
from ztsim.identity.roles import Role

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture

DNS_SETTINGS = "/api/v1/dns/settings"


def _dns(api: ApiHarness, world: World) -> dict[str, object]:
    r = api.client.get(DNS_SETTINGS, headers=world.org.auth())
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _updates(api: ApiHarness, world: World) -> list[Event]:
    with api.engine.connect() as conn:
        found, _ = events.query(
            conn, world.org.id, events.EventQuery(kind="dns.settings.updated"), limit=100
        )
    return sorted(found, key=lambda e: e.id)


def _dns_changes(api: ApiHarness, world: World) -> int:
    o = schema.change_outbox
    with api.engine.connect() as conn:
        keys = conn.scalars(
            select(o.c.key).where(o.c.org_id == world.org.id, o.c.topic == "dns")
        ).all()
    return len(keys)


def test_settings_show_the_org_the_modes_and_swap_protection(
    client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    page = client.get("/settings")
    assert page.status_code == 200
    assert "Alpha" in page.text
    assert "Bravo" not in page.text
    for label in ("Record nothing", "Record blocked look-ups only", "Record every look-up"):
        assert label in page.text
    assert 'value="blocked-only" checked' in page.text
    assert 'action="/settings/privacy"' in page.text
    assert "SIM-swap protection" in page.text
    assert "1d" in page.text  # the default cooling-off


def test_an_auditor_reads_without_a_form_and_may_not_change(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.AUDITOR]) == 303
    page = client.get("/settings")
    assert page.status_code == 200
    assert "Record every look-up" in page.text
    assert 'action="/settings/privacy"' not in page.text
    r = client.post(
        "/settings/privacy",
        data={"csrf": csrf_in(page.text), "privacy": "all", "confirm": "yes"},
    )
    assert r.status_code == 403
    assert _dns(api, alpha)["privacy"] == "blocked-only"


def test_self_is_refused(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.SELF]) == 303
    assert client.get("/settings").status_code == 403
    csrf = csrf_in(client.get("/settings").text)  # the sign-out form's secret
    r = client.post("/settings/privacy", data={"csrf": csrf, "privacy": "all", "confirm": "yes"})
    assert r.status_code == 403
    assert _dns(api, alpha)["privacy"] == "blocked-only"


def test_a_change_is_reviewed_then_written_as_the_api_writes_it(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    kept = {"block_answer": "nxdomain", "pseudonymise": True, "networks": ["10.77.0.0/16"]}
    assert api.client.put(DNS_SETTINGS, json=kept, headers=alpha.org.auth()).status_code == 200
    before = _dns(api, alpha)
    by_api = _updates(api, alpha)[-1]
    feed_before = _dns_changes(api, alpha)
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    csrf = csrf_in(client.get("/settings").text)

    review = client.post("/settings/privacy", data={"csrf": csrf, "privacy": "all"})
    assert review.status_code == 200
    assert "Change the DNS privacy mode?" in review.text
    assert "records more" in review.text
    assert 'name="confirm" value="yes"' in review.text
    assert _dns(api, alpha) == before  # reviewing writes nothing

    done = client.post(
        "/settings/privacy",
        data={"csrf": csrf, "privacy": "all", "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/settings?saved=privacy"
    assert _dns(api, alpha) == {**before, "privacy": "all"}
    assert _dns(api, bravo)["privacy"] == "blocked-only"
    by_form = _updates(api, alpha)[-1]
    assert by_form.id != by_api.id
    assert (by_form.kind, by_form.actor, by_form.subject, by_form.outcome) == (
        by_api.kind,
        by_api.actor,
        by_api.subject,
        by_api.outcome,
    )
    assert by_form.payload == {**by_api.payload, "privacy": "all"}
    assert _dns_changes(api, alpha) == feed_before + 1  # the gateways hear of it
    shown = client.get("/settings?saved=privacy")
    assert "The DNS privacy mode is changed." in shown.text
    assert 'value="all" checked' in shown.text


def test_without_the_form_secret_nothing_changes(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    before, updates = _dns(api, alpha), len(_updates(api, alpha))
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    for data in (
        {"privacy": "all", "confirm": "yes"},
        {"csrf": "forged", "privacy": "all", "confirm": "yes"},
    ):
        assert client.post("/settings/privacy", data=data).status_code == 403
    assert _dns(api, alpha) == before
    assert len(_updates(api, alpha)) == updates


@pytest.mark.parametrize("mode", ["everything", "", "ALL"])
def test_a_bad_mode_is_400_and_nothing_changes(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World], mode: str
) -> None:
    alpha, _ = two_orgs
    before, updates = _dns(api, alpha), len(_updates(api, alpha))
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    csrf = csrf_in(client.get("/settings").text)
    r = client.post("/settings/privacy", data={"csrf": csrf, "privacy": mode, "confirm": "yes"})
    assert r.status_code == 400
    assert "Nothing changed" in r.text
    assert _dns(api, alpha) == before
    assert len(_updates(api, alpha)) == updates


def test_a_body_that_is_not_a_form_is_400(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    r = client.post("/settings/privacy", json={"privacy": "all", "confirm": "yes"})
    assert r.status_code == 400
    assert _dns(api, alpha)["privacy"] == "blocked-only"


def test_the_change_in_a_browser_on_a_phone(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    """Chromium at 375 px: pick a mode, review, confirm; no CSP violation, nothing wider
    than the screen, and the API reads the new mode."""
    alpha, _ = two_orgs
    app = create_app(api.ctx)
    with serving(app) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)
        page.goto(base + "/login")
        page.get_by_label("API token").fill(alpha.org.tokens[Role.ADMIN])
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/overview")
        page.goto(base + "/settings")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_label("Record nothing").check()
        page.get_by_role("button", name="Review the change").click()
        assert page.get_by_role("heading", name="Change the DNS privacy mode?").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_role("button", name="Change to “Record nothing”").click()
        page.wait_for_url(base + "/settings?saved=privacy")
        assert page.get_by_role("status").inner_text() == "The DNS privacy mode is changed."
        page.close()
    assert watched.problems == []
    assert _dns(api, alpha)["privacy"] == "none"
