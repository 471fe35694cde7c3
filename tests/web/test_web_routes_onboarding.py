"""The onboarding pages end to end through the app: ordering by email through the API's
use case (same events and change-feed rows), the order's page by role, the QR code and
pack answers, cancelling with confirmation and CSRF, bulk packs with their progress, and
other orgs' orders staying 404."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from web.signin import csrf_in, sign_in
from ztsim.api.app import create_app
from ztsim.db import schema
from ztsim.feed import outbox
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.esim_decode import needs_zbarimg, zbar_decode_bytes
from support.world import World

_ORDER_PATH = re.compile(r"^/onboarding/orders/([0-9a-f]{32})$")


@pytest.fixture
def pages(api: ApiHarness) -> Iterator[TestClient]:
    """A browser's client on the app."""
    app = create_app(api.ctx)
    with TestClient(app) as client:
        yield client


def _signed_in(client: TestClient, world: World, role: Role = Role.ADMIN) -> str:
    """Signs in; the session's CSRF secret."""
    client.cookies.clear()
    assert sign_in(client, world.org.tokens[role]) == 303
    return csrf_in(client.get("/login", follow_redirects=True).text)


def _order(client: TestClient, csrf: str, email: str) -> str:
    r = client.post(
        "/onboarding/orders", data={"csrf": csrf, "email": email}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    found = _ORDER_PATH.match(r.headers["location"])
    assert found is not None, r.headers["location"]
    return found.group(1)


def _api_order(api: ApiHarness, world: World, order_id: str) -> dict[str, object]:
    r = api.client.get(f"/api/v1/esim/orders/{order_id}", headers=world.org.auth())
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _trail(api: ApiHarness, org_id: str, iccid: str, since: int) -> tuple[list[str], list[str]]:
    """The event kinds about a SIM, and the change-feed topics published since `since`."""
    with api.engine.connect() as conn:
        kinds = conn.scalars(
            select(schema.events.c.kind)
            .where(schema.events.c.org_id == org_id, schema.events.c.subject == f"sim:{iccid}")
            .order_by(schema.events.c.id)
        ).all()
        changes = [
            f"{c.topic.value}:{'same' if c.key == iccid else c.key}"
            for c in outbox.read_after(conn, since)
            if c.org_id == org_id
        ]
    return list(kinds), changes


def _position(api: ApiHarness) -> int:
    with api.engine.connect() as conn:
        return outbox.position(conn)


def test_ordering_on_the_page_is_the_api_use_case(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, bravo = two_orgs
    csrf = _signed_in(pages, alpha)
    start = _position(api)
    order_id = _order(pages, csrf, "u@alpha.test")
    by_page = _api_order(api, alpha, order_id)
    assert by_page["identity_id"] == alpha.ids["identity_id"]
    assert by_page["state"] == "issued"
    assert str(by_page["created_by"]).startswith("token:")
    page_trail = _trail(api, alpha.org.id, str(by_page["iccid"]), start)

    middle = _position(api)
    r = api.client.post(
        "/api/v1/esim/orders",
        json={"identity_id": bravo.ids["identity_id"]},
        headers=bravo.org.auth(),
    )
    assert r.status_code == 201, r.text
    api_trail = _trail(api, bravo.org.id, r.json()["iccid"], middle)
    assert page_trail == api_trail
    assert "esim.order_created" in page_trail[0]
    assert "sim:same" in page_trail[1]

    listing = pages.get("/onboarding")
    assert listing.status_code == 200
    first_row = listing.text.split("<tbody>")[1].split("</tr>")[0]
    assert "User alpha" in first_row  # newest first
    assert "Employee alpha" in listing.text
    assert "User bravo" not in listing.text


def test_the_order_page_shows_the_code_to_those_who_may_print_it(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    order_id = alpha.ids["order_id"]
    _signed_in(pages, alpha)
    page = pages.get(f"/onboarding/orders/{order_id}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store, private"
    code = re.search(r'<code id="activation-code">([^<]+)</code>', page.text)
    assert code is not None
    assert code.group(1).startswith("LPA:1$")
    assert f'src="/onboarding/orders/{order_id}/qr.png"' in page.text
    assert "Print the pack" in page.text

    _signed_in(pages, alpha, Role.AUDITOR)
    seen = pages.get(f"/onboarding/orders/{order_id}")
    assert seen.status_code == 200
    assert "Employee alpha" in seen.text
    assert "LPA:1$" not in seen.text
    assert "qr.png" not in seen.text
    assert pages.get(f"/onboarding/orders/{order_id}/qr.png").status_code == 403
    assert pages.get(f"/onboarding/orders/{order_id}/pack").status_code == 403


@needs_zbarimg
def test_the_qr_code_is_the_activation_code_and_never_cached(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    order_id = alpha.ids["order_id"]
    _signed_in(pages, alpha, Role.OPERATOR)
    page = pages.get(f"/onboarding/orders/{order_id}")
    code = re.search(r'<code id="activation-code">([^<]+)</code>', page.text)
    assert code is not None
    qr = pages.get(f"/onboarding/orders/{order_id}/qr.png")
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/png"
    assert qr.headers["cache-control"] == "no-store, private"
    assert zbar_decode_bytes(qr.content) == [code.group(1)]
    api_png = api.client.get(
        f"/api/v1/esim/orders/{order_id}/pack?format=png", headers=alpha.org.auth()
    )
    assert qr.content == api_png.content


def test_the_pack_page_is_the_api_pack_under_its_own_policy(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    order_id = alpha.ids["order_id"]
    _signed_in(pages, alpha)
    pack = pages.get(f"/onboarding/orders/{order_id}/pack")
    assert pack.status_code == 200
    assert pack.headers["cache-control"] == "no-store, private"
    from_api = api.client.get(f"/api/v1/esim/orders/{order_id}/pack", headers=alpha.org.auth())
    assert pack.content == from_api.content
    style = re.search(rb"<style>(.*?)</style>", pack.content, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1)).digest()).decode()
    policy = pack.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "script" not in policy
    pdf = pages.get(f"/onboarding/orders/{order_id}/pack?format=pdf")
    assert pdf.content.startswith(b"%PDF")
    assert pages.get(f"/onboarding/orders/{order_id}/pack?format=exe").status_code == 400


def test_cancel_asks_first_and_needs_the_form_secret(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    order_id = alpha.ids["order_id"]
    csrf = _signed_in(pages, alpha)
    ask = pages.get(f"/onboarding/orders/{order_id}/cancel")
    assert ask.status_code == 200
    assert f'action="/onboarding/orders/{order_id}/cancel"' in ask.text
    assert 'name="csrf"' in ask.text

    for forged in ({}, {"csrf": "forged"}):
        r = pages.post(
            f"/onboarding/orders/{order_id}/cancel",
            data={**forged, "reason": "no"},
            follow_redirects=False,
        )
        assert r.status_code == 403
        assert _api_order(api, alpha, order_id)["state"] == "issued"

    done = pages.post(
        f"/onboarding/orders/{order_id}/cancel",
        data={"csrf": csrf, "reason": "left before starting"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/onboarding/orders/{order_id}"
    after = _api_order(api, alpha, order_id)
    assert after["state"] == "cancelled"
    assert after["reason"] == "left before starting"
    shown = pages.get(f"/onboarding/orders/{order_id}")
    assert "LPA:1$" not in shown.text
    assert "esim.order_cancelled" in shown.text  # the order's history
    assert pages.get(f"/onboarding/orders/{order_id}/qr.png").status_code == 409
    again = pages.post(
        f"/onboarding/orders/{order_id}/cancel", data={"csrf": csrf}, follow_redirects=False
    )
    assert again.status_code == 409


def test_ordering_without_the_form_secret_changes_nothing(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    _signed_in(pages, alpha)
    start = _position(api)
    r = pages.post("/onboarding/orders", data={"email": "u@alpha.test"}, follow_redirects=False)
    assert r.status_code == 403
    assert _position(api) == start
    orders = api.client.get(
        f"/api/v1/esim/orders?identity_id={alpha.ids['identity_id']}", headers=alpha.org.auth()
    )
    assert orders.json()["items"] == []


def test_roles_without_esim_write_may_not_order(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    order_id = alpha.ids["order_id"]
    for role in (Role.ANALYST, Role.SELF):
        csrf = _signed_in(pages, alpha, role)
        r = pages.post(
            "/onboarding/orders",
            data={"csrf": csrf, "email": "u@alpha.test"},
            follow_redirects=False,
        )
        assert r.status_code == 403, role
        assert "<h1>Not for this sign-in</h1>" in r.text
        for path in ("/onboarding", f"/onboarding/orders/{order_id}", "/onboarding/bulk"):
            assert pages.get(path).status_code == 403, (role, path)
        cancel = pages.post(
            f"/onboarding/orders/{order_id}/cancel", data={"csrf": csrf}, follow_redirects=False
        )
        assert cancel.status_code == 403
    assert _api_order(api, alpha, order_id)["state"] == "issued"
    _signed_in(pages, alpha, Role.AUDITOR)
    assert 'action="/onboarding/orders"' not in pages.get("/onboarding").text


def test_another_orgs_order_is_not_found(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, bravo = two_orgs
    theirs = bravo.ids["order_id"]
    csrf = _signed_in(pages, alpha)
    for path in ("", "/qr.png", "/pack", "/cancel"):
        r = pages.get(f"/onboarding/orders/{theirs}{path}")
        assert r.status_code == 404, path
        assert "<h1>Not found</h1>" in r.text
        assert "Employee bravo" not in r.text
    r = pages.post(
        f"/onboarding/orders/{theirs}/cancel", data={"csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 404
    assert _api_order(api, bravo, theirs)["state"] == "issued"


def test_a_form_that_cannot_be_ordered_says_why(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    csrf = _signed_in(pages, alpha)
    unknown = pages.post("/onboarding/orders", data={"csrf": csrf, "email": "u@bravo.test"})
    assert unknown.status_code == 400
    assert "no identity" in unknown.text
    assert 'value="u@bravo.test"' in unknown.text
    _order(pages, csrf, "u@alpha.test")  # the last eSIM in stock
    twice = pages.post("/onboarding/orders", data={"csrf": csrf, "email": "u@alpha.test"})
    assert twice.status_code == 409
    assert "open eSIM order" in twice.text


def test_the_listing_pages_newest_first(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    _signed_in(pages, alpha)
    assert pages.get("/onboarding?cursor=junk").status_code == 400
    listing = pages.get("/onboarding")
    assert "Older orders" not in listing.text  # one order: one page
