"""The overview's charts in a real browser (Debian's Chromium through Playwright, on a
loopback server): uPlot draws both from /overview/series.json under the pages' CSP,
with no console error, nothing wider than a phone, and their tables beside them."""

from __future__ import annotations

from datetime import timedelta

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity.roles import Role
from ztsim.web import series

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture


def test_the_charts_are_drawn_under_the_csp(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    org, now = alpha.org.id, api.clock()
    with api.engine.begin() as conn:
        for hours in range(0, 24, 3):
            store.append(
                conn,
                [NewEvent(org, series.ACCESS, "gateway:g", "sim:1")] * (hours + 1)
                + [NewEvent(org, series.ACCESS, "gateway:g", "sim:1", Outcome.DENIED, "x")]
                + [
                    NewEvent(
                        org, series.DNS_STATS, "dns", "org:a", payload={"queries": 50, "blocked": 4}
                    )
                ],
                now - timedelta(hours=hours),
            )
    with serving(create_app(api.ctx)) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)
        chromium.sign_in_page(page, base, alpha.org.tokens[Role.ADMIN])
        page.wait_for_url(base + "/overview")
        for key in ("attaches", "dns"):
            page.locator(f"#chart-{key} canvas").wait_for()
        assert page.locator(".chart-status").inner_text() == ""
        page.get_by_text("Attaches per hour, as a table").click()
        assert page.get_by_role("table", name="Attaches per hour (UTC)").is_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        page.close()
    assert watched.problems == []
