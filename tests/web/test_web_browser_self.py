"""An employee in a real browser (Debian's Chromium through Playwright, on a loopback
server): they sign in with their own token, see the events about their SIM on /me, and
every admin page, and another person's SIM, answers 403. A wrong token is refused at
sign-in (401, the page says so) and leaves no session cookie."""

from __future__ import annotations

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity.roles import Role
from ztsim.web import session

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture

ADMIN_PAGES = [
    "/overview",
    "/sims",
    "/events",
    "/people",
    "/onboarding",
    "/dns",
    "/gateways",
    "/settings",
]
MY_REASON = "browser test: seen from the employee's own page"


def _events_about_my_sim(api: ApiHarness, world: World) -> None:
    sim = f"sim:{world.ids['iccid']}"
    with api.engine.begin() as conn:
        store.append(
            conn,
            [
                NewEvent(
                    world.org.id, "radius.access", "gateway:g", sim, Outcome.DENIED, MY_REASON
                ),
                NewEvent(
                    world.org.id, "radius.access", "gateway:g", "sim:not-mine", reason="other"
                ),
            ],
            api.clock(),
        )


def test_an_employee_sees_their_own_events_and_no_admin_page(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    _events_about_my_sim(api, alpha)
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        chromium.sign_in_page(page, base, alpha.org.tokens[Role.SELF])
        page.wait_for_url(base + "/me")
        assert page.get_by_role("heading", name="Events about you").is_visible()
        assert page.get_by_role("cell", name=MY_REASON, exact=True).is_visible()
        assert page.get_by_role("cell", name="other", exact=True).count() == 0
        statuses = {}
        for path in [*ADMIN_PAGES, f"/sims/{alpha.ids['esim_iccid']}"]:
            answer = page.goto(base + path)
            statuses[path] = None if answer is None else answer.status
        page.close()
    assert statuses == dict.fromkeys(statuses, 403)
    assert violations == []


def test_a_wrong_token_is_refused_and_leaves_no_session(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        context = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/login")
        page.get_by_label("API token").fill("zt_" + "x" * 40)
        with page.expect_response(
            lambda r: r.url == base + "/login" and r.request.method == "POST"
        ) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401
        assert page.get_by_role("alert").inner_text().startswith("That token is unknown")
        assert page.get_by_label("API token").get_attribute("aria-invalid") == "true"
        assert session.COOKIE not in {c["name"] for c in context.cookies()}
        refused = page.goto(base + "/me")
        assert refused is not None
        assert refused.url == base + "/login"  # still a stranger
        context.close()
