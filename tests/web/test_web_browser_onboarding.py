"""Onboarding in a real browser (Debian's Chromium driven by Playwright, the app on a
loopback uvicorn server, as tests/web/test_web_browser.py): an admin orders an eSIM for a
person, and the QR code the page shows, photographed off the screen and read by Debian's
zbarimg, is the activation code the database holds. The printable pack and the bulk
packs' progress work under the CSP too; the browser reports no violation and no error.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.api.server import ServeOptions
from ztsim.esim import repository as orders
from ztsim.esim import service
from ztsim.identity.roles import Role

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

browser = chromium.browser  # the fixture
ZBARIMG = shutil.which("zbarimg")
_ORDER_URL = re.compile(r".*/onboarding/orders/([0-9a-f]{32})$")


def _zbarimg(image: Path) -> str:
    assert ZBARIMG is not None
    done = subprocess.run(
        [ZBARIMG, "--raw", "-q", str(image)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8").strip()


def _serving(api: ApiHarness) -> AbstractContextManager[ServeOptions]:
    app = create_app(api.ctx)
    return serving(app)


def _activation_code(api: ApiHarness, org_id: str, order_id: str) -> str:
    with api.engine.connect() as conn:
        order = orders.get_order(conn, org_id, order_id)
        return service.activation_code(api.ctx.sealer, conn, order).to_qr_text()


@pytest.mark.skipif(ZBARIMG is None, reason="zbarimg not installed (Debian zbar-tools)")
def test_an_admin_orders_an_esim_and_the_screen_shows_its_code(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object, tmp_path: Path
) -> None:
    alpha, _ = two_orgs
    with _serving(api) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)
        chromium.sign_in_page(page, base, alpha.org.tokens[Role.ADMIN])
        page.wait_for_url(base + "/overview")
        page.get_by_role("link", name="Onboarding").click()
        page.wait_for_url(base + "/onboarding")
        page.get_by_label("The person's email address").fill("u@alpha.test")
        page.get_by_role("button", name="Order an eSIM").click()
        page.wait_for_url(_ORDER_URL)
        found = _ORDER_URL.match(page.url)
        assert found is not None
        order_id = found.group(1)
        assert page.get_by_role("heading", name="eSIM for User alpha", level=1).is_visible()

        qr = page.get_by_role("img", name="QR code of the activation code shown below")
        qr.wait_for()
        page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
        shot = tmp_path / "qr.png"
        qr.screenshot(path=str(shot))
        expected = _activation_code(api, alpha.org.id, order_id)
        assert expected.startswith("LPA:1$")
        assert _zbarimg(shot) == expected
        assert page.locator("#activation-code").inner_text() == expected
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width

        page.get_by_role("link", name="Print the pack").click()
        page.get_by_role("heading", name="Your work eSIM, User alpha").wait_for()
        # Its inline style is allowed by hash: the page is laid out, not bare.
        padding = page.evaluate("getComputedStyle(document.querySelector('.code')).paddingLeft")
        assert padding == "8px"
        page.close()
    assert watched.problems == []
    assert watched.hosts == {f"127.0.0.1:{server.port}"}


def test_bulk_packs_progress_then_offer_the_zip(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    with _serving(api) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)
        chromium.sign_in_page(page, base, alpha.org.tokens[Role.OPERATOR])
        page.wait_for_url(base + "/overview")
        page.goto(base + "/onboarding")
        page.get_by_role("link", name="Order for several people at once").click()
        page.get_by_label("A group").select_option(label="staff (1)")
        page.get_by_label("And/or email addresses, one a line").fill("u@alpha.test\n")
        page.get_by_role("button", name="Order and make the packs").click()
        page.get_by_role("heading", name="Onboarding packs").wait_for()
        link = page.get_by_role("link", name="Download the packs (zip)")
        link.wait_for()
        assert page.get_by_text("1 of 1: done.").is_visible()
        with page.expect_download() as download:
            link.click()
        assert download.value.suggested_filename == "onboarding-packs.zip"
        page.close()
    assert watched.problems == []
    assert watched.hosts == {f"127.0.0.1:{server.port}"}
