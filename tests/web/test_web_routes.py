"""The pages end to end through the app: sign-in and sign-out, cookie flags, CSRF, and
the role deciding what is shown."""

from __future__ import annotations

from fastapi.testclient import TestClient

from web.signin import csrf_in, sign_in
from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge
from ztsim.identity.roles import Role
from ztsim.web import session

from support.api import ApiHarness
from support.leaks import LEAKS
from support.world import World


def test_start_sends_a_stranger_to_sign_in(api: ApiHarness) -> None:
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    for path in ("/overview", "/me"):
        assert api.client.get(path, follow_redirects=False).headers["location"] == "/login"


def test_admin_signs_in_sees_the_overview_and_signs_out(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    world, _ = two_orgs
    client = api.client  # two_orgs built its world through this harness
    assert sign_in(client, world.org.tokens[Role.ADMIN]) == 303
    start = client.get("/", follow_redirects=False)
    assert start.headers["location"] == "/overview"
    page = client.get("/overview")
    assert page.status_code == 200
    assert "Devices attached now" in page.text
    assert "Attaches refused" in page.text
    assert world.org.tokens[Role.ADMIN] not in page.text
    out = client.post("/logout", data={"csrf": csrf_in(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert session.COOKIE not in client.cookies
    assert client.get("/overview", follow_redirects=False).headers["location"] == "/login"


def test_session_cookie_flags_and_no_token_in_it(api: ApiHarness) -> None:
    org = api.new_org("flags")
    token = org.tokens[Role.ADMIN]
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(api.app, base_url=base) as client:
            form = client.get("/login")
            r = client.post(
                "/login",
                data={"csrf": csrf_in(form.text), "token": token},
                follow_redirects=False,
            )
            assert r.status_code == 303
            cookies = r.headers.get_list("set-cookie")
            [line] = [c for c in cookies if c.startswith(session.COOKIE + "=")]
            attributes = {a.strip().lower() for a in line.split(";")}
            assert "httponly" in attributes
            assert "samesite=strict" in attributes
            assert "path=/" in attributes
            assert ("secure" in attributes) is secure
            assert token not in line


def test_a_wrong_token_is_refused(api: ApiHarness) -> None:
    assert sign_in(api.client, "zt_" + "x" * 40) == 401
    assert session.COOKIE not in api.client.cookies
    page = api.client.get("/login")
    assert "unknown" not in page.text  # the error is shown once, with the refusal


def test_a_machine_token_cannot_sign_in(api: ApiHarness) -> None:
    org = api.new_org("machines")
    for role in (Role.NETWORK, Role.SMDP, Role.POSTURE):
        assert sign_in(api.client, org.tokens[role]) == 401


def test_sign_in_without_the_form_secret_is_refused(api: ApiHarness) -> None:
    org = api.new_org("csrf")
    api.client.get("/login")
    r = api.client.post(
        "/login", data={"csrf": "forged", "token": org.tokens[Role.ADMIN]}, follow_redirects=False
    )
    assert r.status_code == 403
    assert session.COOKIE not in api.client.cookies


def test_sign_out_without_the_session_secret_is_refused(api: ApiHarness) -> None:
    org = api.new_org("csrfout")
    assert sign_in(api.client, org.tokens[Role.ADMIN]) == 303
    r = api.client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert api.client.get("/overview").status_code == 200  # still signed in


def test_a_revoked_token_ends_its_session(api: ApiHarness) -> None:
    org = api.new_org("revoked")
    assert sign_in(api.client, org.tokens[Role.ADMIN]) == 303
    victim = api.client.post(
        "/api/v1/tokens", json={"name": "t", "role": "auditor"}, headers=org.auth()
    ).json()
    api.client.cookies.clear()
    assert sign_in(api.client, victim["token"]) == 303
    assert api.client.get("/overview").status_code == 200
    revoke = api.client.delete(f"/api/v1/tokens/{victim['id']}", headers=org.auth())
    assert revoke.status_code in (200, 204), revoke.text
    assert api.client.get("/overview", follow_redirects=False).headers["location"] == "/login"


def test_self_sees_only_their_own_record(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    client = api.client  # two_orgs built its world through this harness
    assert sign_in(client, alpha.org.tokens[Role.SELF]) == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/me"
    me = client.get("/me")
    assert me.status_code == 200
    assert alpha.ids["iccid"] in me.text
    assert "User alpha" in me.text
    # Not the org's other SIMs, not the other employee, nothing of the other org.
    assert alpha.ids["spare_iccid"] not in me.text
    assert alpha.ids["esim_iccid"] not in me.text
    assert "Employee alpha" not in me.text
    assert bravo.ids["iccid"] not in me.text
    assert "administrators" in me.text  # who can read their events
    assert client.get("/overview").status_code == 403


def test_an_admin_has_no_own_record_page(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    client = api.client  # two_orgs built its world through this harness
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    assert client.get("/me").status_code == 403


def test_an_operator_sees_what_its_role_reads(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    client = api.client  # two_orgs built its world through this harness
    assert sign_in(client, alpha.org.tokens[Role.OPERATOR]) == 303
    page = client.get("/overview")
    assert page.status_code == 200
    assert "Devices attached now" in page.text  # sessions:read
    assert "Attaches accepted" not in page.text  # no events:read
    assert "Your role does not show" in page.text


def test_csp_on_every_web_response(api: ApiHarness) -> None:
    org = api.new_org("csp")
    paths = ["/", "/login", "/docs", "/static/app.css", "/static/docs.js", "/nowhere"]
    for path in paths:
        r = api.client.get(path, follow_redirects=False)
        assert "default-src 'self'" in r.headers["content-security-policy"], path
        assert "'unsafe-inline'" not in r.headers["content-security-policy"]
    assert sign_in(api.client, org.tokens[Role.ADMIN]) == 303
    assert "content-security-policy" in api.client.get("/overview").headers


def test_failed_sign_ins_share_the_bearer_tokens_budget(api: ApiHarness) -> None:
    """The sign-in form takes a token: guessing through it is limited like the API's."""
    org = api.new_org("alpha")
    app = create_app(api.ctx, edge=HttpEdge(auth_failures_per_minute=3))
    with TestClient(app, client=("192.0.2.9", 40000)) as guesser:
        for _ in range(3):
            assert sign_in(guesser, "zt_" + "x" * 40) == 401
        form = guesser.get("/login")
        refused = guesser.post(
            "/login",
            data={"csrf": csrf_in(form.text), "token": org.tokens[Role.ADMIN]},
            follow_redirects=False,
        )
        assert refused.status_code == 429  # not even a good token is checked from there
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert session.COOKIE not in guesser.cookies
        # The API's bearer tokens are refused the same way from that client.
        assert guesser.get("/api/v1/me", headers=org.auth()).status_code == 429


def test_the_overview_s_charts_come_from_its_json_with_the_same_checks(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    client = api.client
    assert client.get("/overview/series.json", follow_redirects=False).status_code == 303
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    page = client.get("/overview")
    assert 'data-series-url="/overview/series.json"' in page.text
    assert '<script src="/static/overview.js" defer></script>' in page.text
    assert "Attaches per hour, as a table" in page.text  # the charts' text alternative
    assert "Recent risk events" in page.text
    assert "pgw" in page.text  # the org's gateway, with its health
    data = client.get("/overview/series.json")
    assert data.status_code == 200
    assert data.headers["content-type"] == "application/json"
    body = data.json()
    assert len(body["times"]) == 24
    assert [c["key"] for c in body["charts"]] == ["attaches", "dns"]
    for role, status in ((Role.OPERATOR, 403), (Role.SELF, 403), (Role.AUDITOR, 200)):
        client.cookies.clear()
        assert sign_in(client, alpha.org.tokens[role]) == 303
        assert client.get("/overview/series.json").status_code == status, role


def _order_for(api: ApiHarness, world: World, identity_id: str) -> dict[str, str]:
    created = api.client.post(
        "/api/v1/esim/orders", json={"identity_id": identity_id}, headers=world.org.auth()
    )
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


def test_an_employee_sees_their_open_order_s_qr_code(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    mine = _order_for(api, alpha, alpha.ids["identity_id"])
    client = api.client
    assert sign_in(client, alpha.org.tokens[Role.SELF]) == 303
    me = client.get("/me")
    LEAKS.allow_once("api GET /me", me.text)  # the person's own code, as the pack shows it
    assert me.status_code == 200
    assert mine["activation_code"] in me.text
    assert f'src="/me/onboarding/{mine["id"]}/qr.svg"' in me.text
    assert me.headers["cache-control"] == "no-store, private"
    qr = client.get(f"/me/onboarding/{mine['id']}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.headers["cache-control"] == "no-store, private"
    # Another employee's order, another org's, and nonsense: not found alike.
    for other in (alpha.ids["order_id"], bravo.ids["order_id"], "x"):
        assert client.get(f"/me/onboarding/{other}/qr.svg").status_code == 404
    client.cookies.clear()
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    assert client.get(f"/me/onboarding/{mine['id']}/qr.svg").status_code == 403
