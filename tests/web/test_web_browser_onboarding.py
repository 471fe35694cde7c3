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
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ztsim.api.app import create_app
from ztsim.api.server import ServeOptions
from ztsim.esim import repository as orders
from ztsim.esim import service
from ztsim.identity.roles import Role

from api.edge_server import serving
from support.api import ApiHarness
from support.world import World

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ZBARIMG = shutil.which("zbarimg")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]
TIMEOUT_MS = 15_000
_ORDER_URL = re.compile(r".*/onboarding/orders/([0-9a-f]{32})$")


@pytest.fixture
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=TIMEOUT_MS)
        try:
            yield b
        finally:
            b.close()


def _watched(browser: object, problems: list[str], hosts: set[str]) -> object:
    """A phone-sized page that reports CSP violations, console errors, page errors and
    failed responses into `problems`, and every host it asks into `hosts`."""
    page = browser.new_page(viewport={"width": 375, "height": 740})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return page


def _sign_in(page: object, base: str, token: str) -> None:
    page.goto(base + "/login")  # type: ignore[attr-defined]
    page.get_by_label("API token").fill(token)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(base + "/overview")  # type: ignore[attr-defined]


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
    problems: list[str] = []
    hosts: set[str] = set()
    with _serving(api) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = _watched(browser, problems, hosts)
        _sign_in(page, base, alpha.org.tokens[Role.ADMIN])
        page.get_by_role("link", name="Onboarding").click()  # type: ignore[attr-defined]
        page.wait_for_url(base + "/onboarding")  # type: ignore[attr-defined]
        page.get_by_label("The person's email address").fill("u@alpha.test")  # type: ignore[attr-defined]
        page.get_by_role("button", name="Order an eSIM").click()  # type: ignore[attr-defined]
        page.wait_for_url(_ORDER_URL)  # type: ignore[attr-defined]
        found = _ORDER_URL.match(page.url)  # type: ignore[attr-defined]
        assert found is not None
        order_id = found.group(1)
        assert page.get_by_role("heading", name="eSIM for User alpha", level=1).is_visible()  # type: ignore[attr-defined]

        qr = page.get_by_role("img", name="QR code of the activation code shown below")  # type: ignore[attr-defined]
        qr.wait_for()
        page.wait_for_function("document.getElementById('qr').naturalWidth > 0")  # type: ignore[attr-defined]
        shot = tmp_path / "qr.png"
        qr.screenshot(path=str(shot))
        expected = _activation_code(api, alpha.org.id, order_id)
        assert expected.startswith("LPA:1$")
        assert _zbarimg(shot) == expected
        assert page.locator("#activation-code").inner_text() == expected  # type: ignore[attr-defined]
        width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
        assert width <= 375, width

        page.get_by_role("link", name="Print the pack").click()  # type: ignore[attr-defined]
        page.get_by_role("heading", name="Your work eSIM, User alpha").wait_for()  # type: ignore[attr-defined]
        # Its inline style is allowed by hash: the page is laid out, not bare.
        padding = page.evaluate("getComputedStyle(document.querySelector('.code')).paddingLeft")  # type: ignore[attr-defined]
        assert padding == "8px"
        page.close()  # type: ignore[attr-defined]
    assert problems == []
    assert hosts == {f"127.0.0.1:{server.port}"}


def test_bulk_packs_progress_then_offer_the_zip(
    api: ApiHarness, two_orgs: tuple[World, World], browser: object
) -> None:
    alpha, _ = two_orgs
    problems: list[str] = []
    hosts: set[str] = set()
    with _serving(api) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = _watched(browser, problems, hosts)
        _sign_in(page, base, alpha.org.tokens[Role.OPERATOR])
        page.goto(base + "/onboarding")  # type: ignore[attr-defined]
        page.get_by_role("link", name="Order for several people at once").click()  # type: ignore[attr-defined]
        page.get_by_label("A group").select_option(label="staff (1)")  # type: ignore[attr-defined]
        page.get_by_label("And/or email addresses, one a line").fill("u@alpha.test\n")  # type: ignore[attr-defined]
        page.get_by_role("button", name="Order and make the packs").click()  # type: ignore[attr-defined]
        page.get_by_role("heading", name="Onboarding packs").wait_for()  # type: ignore[attr-defined]
        link = page.get_by_role("link", name="Download the packs (zip)")  # type: ignore[attr-defined]
        link.wait_for()
        assert page.get_by_text("1 of 1: done.").is_visible()  # type: ignore[attr-defined]
        with page.expect_download() as download:  # type: ignore[attr-defined]
            link.click()
        assert download.value.suggested_filename == "onboarding-packs.zip"
        page.close()  # type: ignore[attr-defined]
    assert problems == []
    assert hosts == {f"127.0.0.1:{server.port}"}
