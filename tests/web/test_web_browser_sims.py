"""The SIM pages in a real browser (Debian's Chromium through Playwright, as in
test_web_browser.py), against a real session: the AAA role runs on the same database,
radclient attaches a SIM and starts its accounting, and the test plays the packet
gateway's Dynamic Authorization Server.

An admin finds the SIM with the search box, opens its page, suspends it with a reason
through the confirmation page; the AAA learns of it from the change feed and sends a
Disconnect-Request; the gateway acknowledges it only once the page has been seen still
showing the session, and the page's session fragment, refreshing itself, then says
there is no live session, with no reload.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import update

from web import chromium
from web.chromium import PHONE, TIMEOUT_MS
from ztsim.api.app import create_app
from ztsim.db import schema
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.radius import Code, Packet, SharedSecret, encode_reply, make_reply
from ztsim.sealing import Sealer

from api.edge_server import serving
from support.api import ApiHarness
from support.leaks import LEAKS
from support.radius_world import (
    RADCLIENT,
    SECRET,
    RunningAaa,
    World,
    access,
    accounting,
    build_world,
    radclient,
)

sync_api = pytest.importorskip("playwright.sync_api")
browser = chromium.browser  # the fixture
UE_ADDRESS = "10.64.0.1"  # what `accounting` reports, leased by the Access-Accept

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


@dataclass
class Gateway:
    """The packet gateway's Dynamic Authorization Server (RFC 5176): it holds its answer
    to the first Disconnect-Request until `release` is set, then acknowledges it."""

    sock: socket.socket
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    codes: list[Code] = field(default_factory=list)

    def serve(self) -> None:
        try:
            datagram, peer = self.sock.recvfrom(4096)
        except OSError:
            return  # closed, or nothing came
        request = Packet.decode(datagram)
        self.codes.append(request.code)
        self.received.set()
        if self.release.wait(30):
            reply = make_reply(request, Code.DISCONNECT_ACK, ())
            self.sock.sendto(encode_reply(reply, request, SharedSecret(SECRET)), peer)


@dataclass
class Live:
    world: World
    admin_token: str
    gateway: Gateway


@pytest.fixture
def live(api: ApiHarness, sealer: Sealer) -> Iterator[Live]:
    world = build_world(api.engine, sealer)
    with api.engine.begin() as conn:
        _, token = token_store.issue(
            conn, world.org_id, name="admin", role=Role.ADMIN, identity_id=None,
            created_by="test", now=api.clock(),
        )  # fmt: skip
    LEAKS.add_secret(token)
    das = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    das.bind(("127.0.0.1", 0))
    das.settimeout(60)
    with api.engine.begin() as conn:
        conn.execute(update(schema.radius_gateways).values(coa_port=das.getsockname()[1]))
    gateway = Gateway(das)
    serving_thread = threading.Thread(target=gateway.serve, daemon=True)
    serving_thread.start()
    # Long waits before a retransmission: the gateway answers the first request.
    aaa = RunningAaa(api.engine, sealer, coa_tries=2, coa_timeout=10.0)
    try:
        out = radclient(aaa.auth_port, "auth", access(world.active), tries=3)
        assert "Received Access-Accept" in out, out
        start = accounting("Start", "browser-1", world.active)
        out = radclient(aaa.acct_port, "acct", start, tries=3)
        assert "Received Accounting-Response" in out, out
        yield Live(world, token, gateway)
    finally:
        gateway.release.set()
        aaa.close()
        das.close()
        serving_thread.join(timeout=5)


def test_an_admin_suspends_a_sim_and_watches_its_session_end(
    api: ApiHarness, live: Live, browser: object
) -> None:
    iccid = live.world.active_iccid
    app = create_app(api.ctx)
    with serving(app) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
        page.set_default_timeout(TIMEOUT_MS)
        watched = chromium.watch(page)

        chromium.sign_in_page(page, base, live.admin_token)
        page.wait_for_url(base + "/overview")

        page.goto(base + "/sims")
        rows = page.locator("#sim-results tbody tr")
        assert rows.count() == 6  # every SIM of the org before a search
        page.get_by_label("Find a SIM").fill(iccid)
        sync_api.expect(rows).to_have_count(1)  # htmx swapped the results in as typed
        assert page.url == f"{base}/sims?q={iccid}"
        page.get_by_role("link", name=iccid).click()
        page.wait_for_url(f"{base}/sims/{iccid}")
        session = page.locator("#live-session")
        sync_api.expect(session).to_contain_text(UE_ADDRESS)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.get_by_role("link", name="Suspend").click()
        page.wait_for_url(f"{base}/sims/{iccid}/suspend")
        page.get_by_label("Reason").fill("phone reported stolen")
        page.get_by_role("button", name="Suspend SIM").click()
        page.wait_for_url(f"{base}/sims/{iccid}?done=suspend")
        sync_api.expect(page.get_by_role("status")).to_contain_text("The SIM is suspended.")
        sync_api.expect(page.locator(".facts")).to_contain_text("suspended")

        # The AAA learned of the suspend from the feed and asked the gateway to disconnect;
        # unanswered yet, the session is still live, and the page says so.
        assert live.gateway.received.wait(10), "no Disconnect-Request reached the gateway"
        assert live.gateway.codes == [Code.DISCONNECT_REQUEST]
        sync_api.expect(session).to_contain_text(UE_ADDRESS)
        navigations: list[str] = []
        page.on("framenavigated", lambda f: navigations.append(f.url))
        live.gateway.release.set()  # the gateway acknowledges: the session ends
        sync_api.expect(page.locator("#live-session")).to_contain_text(
            "No live session.", timeout=TIMEOUT_MS
        )
        assert navigations == []  # the fragment refreshed itself: no reload

        page.reload()
        timeline = page.locator("table.timeline")
        sync_api.expect(timeline).to_contain_text("phone reported stolen")
        sync_api.expect(timeline).to_contain_text("Disconnect-Request to the gateway")
        page.close()
    assert watched.problems == []
    assert watched.hosts == {f"127.0.0.1:{server.port}"}
