"""The onboarding routes' first steps: a stranger is sent to sign in, a role is checked
for each permission a page needs, a posted form must be a small form with the session's
CSRF secret, and the API's context is all the pages need to write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from web.signin import csrf_in, sign_in
from ztsim.api.app import create_app
from ztsim.identity.roles import Role
from ztsim.web.onboarding_forms import OnboardingContext

from support.api import ApiHarness
from support.world import World


@pytest.fixture
def pages(api: ApiHarness) -> Iterator[TestClient]:
    app = create_app(api.ctx)
    with TestClient(app) as client:
        yield client


def test_the_api_context_is_enough_to_write(api: ApiHarness) -> None:
    ctx: OnboardingContext = api.ctx  # mypy holds ApiContext to the protocol
    with ctx.tx() as conn:
        assert conn.in_transaction()
    assert len(ctx.random(16)) == 16


def test_a_stranger_is_sent_to_sign_in(api: ApiHarness, pages: TestClient) -> None:
    for path in ("/onboarding", "/onboarding/orders/x", "/onboarding/bulk", "/onboarding/bulk/x"):
        r = pages.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login"
    r = pages.post("/onboarding/orders", data={"email": "u@alpha.test"}, follow_redirects=False)
    assert r.headers["location"] == "/login"


def test_each_permission_is_checked(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    # An auditor reads orders, but may neither order nor print.
    assert sign_in(pages, alpha.org.tokens[Role.AUDITOR]) == 303
    assert pages.get("/onboarding").status_code == 200
    refused = pages.get("/onboarding/bulk")
    assert refused.status_code == 403
    assert "administrators and operators" in refused.text
    order = alpha.ids["order_id"]
    assert "may print" in pages.get(f"/onboarding/orders/{order}/qr.png").text


def test_a_post_must_be_a_small_form_with_the_secret(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, _ = two_orgs
    assert sign_in(pages, alpha.org.tokens[Role.ADMIN]) == 303
    csrf = csrf_in(pages.get("/onboarding").text)
    as_json = pages.post("/onboarding/orders", json={"csrf": csrf, "email": "u@alpha.test"})
    assert as_json.status_code == 400
    assert "expected a form" in as_json.text
    huge = pages.post("/onboarding/orders", data={"csrf": csrf, "email": "x" * 9000})
    assert huge.status_code == 400
    stale = pages.post("/onboarding/orders", data={"csrf": csrf + "x", "email": "u@alpha.test"})
    assert stale.status_code == 403
    assert "has expired" in stale.text
