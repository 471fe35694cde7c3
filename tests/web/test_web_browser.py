"""The pages in a real browser: Debian's Chromium (/usr/bin/chromium, installed by the
project's scripts) driven by Playwright, against the app on a loopback uvicorn server.
Sign in, see the overview, open the API docs with their Authorize button; the browser
reports no CSP violation and no page error, and asks no host but the server.

Playwright's own browser download is never used (it does not work on these machines):
the test launches the system binary and skips when it or Playwright is missing.
"""

from __future__ import annotations

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.identity.roles import Role

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture


def test_sign_in_overview_and_docs_without_csp_violations(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)

        page.goto(base + "/")
        assert page.url == base + "/login"
        page.get_by_label("API token").fill(alpha.org.tokens[Role.ADMIN])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/overview")
        assert page.get_by_role("heading", name="Overview", level=1).is_visible()
        assert page.get_by_role("row", name="Devices attached now").is_visible()
        # Nothing wider than a phone's screen but the tables' own scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width

        page.goto(base + "/docs")
        page.get_by_role("button", name="Authorize").wait_for()
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("ztsim")

        page.goto(base + "/overview")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(base + "/login")
        page.close()
    assert watched.problems == []
    assert watched.hosts == {f"127.0.0.1:{server.port}"}


def test_an_employee_sees_their_record_and_no_admin_page(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(base + "/login")
        page.get_by_label("API token").fill(alpha.org.tokens[Role.SELF])
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/me")
        assert page.get_by_role("heading", name="Your SIMs").is_visible()
        assert page.get_by_role("cell", name=alpha.ids["iccid"], exact=True).is_visible()
        refused = page.goto(base + "/overview")
        assert refused is not None
        assert refused.status == 403
        page.close()
    assert violations == []
