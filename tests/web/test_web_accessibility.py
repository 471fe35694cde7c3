"""axe-core (Deque's accessibility engine, vendored in tests/web/vendor/axe-core with its
licence and version) run in Debian's Chromium over every page, signed in as who the
page is for: no violation of impact serious or critical (WCAG 2.x A and AA rules and
axe's best practices).

How axe gets in under the pages' CSP (script-src 'self', no inline script): the browser
asks the app's own origin for AXE_PATH, and `page.route` answers that request with the
vendored file, so the script loads as one of the site's own and the CSP stays as
served; `bypass_csp` is not used. The route exists only inside this test's browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.identity.roles import Role

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_PATH = "/__test__/axe.min.js"  # never served by the app itself
BLOCKING = {"serious", "critical"}
ANONYMOUS = ["/login", "/docs"]
# The admin console's pages, signed in as an admin.
PAGES = [
    "/overview",
    "/sims",
    "/people",
    "/onboarding",
    "/dns",
    "/events",
    "/gateways",
    "/settings",
]
OWN = ["/me"]
# Rules the vendored Swagger UI (unchanged, its own markup and stylesheet) breaks on
# /docs, each with what breaks it: the only exceptions (static/docs.css mends its
# contrast; the nesting is its markup's).
VENDORED_UI = {
    "/docs": {
        "nested-interactive": "Swagger UI nests each operation's copy button in its toggle",
    }
}


def _detail_pages(world: World) -> list[str]:
    """One of each page about one object, and the forms behind the list pages."""
    ids = world.ids
    return [
        f"/sims/{ids['iccid']}",
        f"/sims/{ids['iccid']}/suspend",
        f"/people/{ids['identity_id']}",
        "/groups",
        f"/onboarding/orders/{ids['order_id']}",
        "/onboarding/bulk",
        "/dns?name=example.com&person=" + ids["identity_id"],
    ]


def _violations(page: Any, url: str) -> tuple[int | None, list[str]]:
    answer = page.goto(url)
    page.wait_for_load_state("networkidle")
    # Tables behind <details> are read by assistive technology once opened: check them open.
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.add_script_tag(url=AXE_PATH)
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    known = VENDORED_UI.get(urlsplit(url).path, {})
    return (None if answer is None else answer.status), [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found["violations"]
        if v["impact"] in BLOCKING and v["id"] not in known
    ]


def test_no_serious_or_critical_accessibility_violation(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    # An open eSIM order: /me shows its QR code, which needs its text alternative too.
    created = api.client.post(
        "/api/v1/esim/orders",
        json={"identity_id": alpha.ids["identity_id"]},
        headers=alpha.org.auth(),
    )
    assert created.status_code == 201, created.text
    statuses: dict[str, int | None] = {}
    problems: dict[str, list[str]] = {}
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        for token, paths in (
            (None, ANONYMOUS),
            (alpha.org.tokens[Role.ADMIN], PAGES + _detail_pages(alpha)),
            (alpha.org.tokens[Role.SELF], OWN),
        ):
            context = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
            context.set_default_timeout(TIMEOUT_MS)
            context.route(
                base + AXE_PATH,
                lambda route: route.fulfill(
                    path=str(AXE), content_type="text/javascript; charset=utf-8"
                ),
            )
            page = context.new_page()
            if token is not None:
                chromium.sign_in_page(page, base, token)
            for path in paths:
                statuses[path], found = _violations(page, base + path)
                if found:
                    problems[path] = found
            context.close()
    not_shown = {path: status for path, status in statuses.items() if status != 200}
    assert (not_shown, problems) == ({}, {})
