"""The SIM pages through the app: search, a SIM's page and its live-session fragment,
and the lifecycle actions (confirmation, CSRF, roles, domain errors), each action
writing what the API's route writes."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from web.signin import csrf_in, sign_in
from ztsim.db import schema
from ztsim.identity.roles import Role
from ztsim.sessions import repository as sessions
from ztsim.sessions.table import Session

from support.api import ApiHarness
from support.factories import make_sims
from support.world import World


@pytest.fixture
def web(client: TestClient, two_orgs: tuple[World, World]) -> TestClient:
    """The scanned client (conftest), on an app with the two orgs."""
    return client


def _as(web: TestClient, world: World, role: Role) -> TestClient:
    web.cookies.clear()
    assert sign_in(web, world.org.tokens[role]) == 303
    return web


def _state(api: ApiHarness, world: World, iccid: str) -> str:
    r = api.client.get(f"/api/v1/sims/{iccid}", headers=world.org.auth())
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def _csrf(web: TestClient) -> str:
    return csrf_in(web.get("/sims").text)


def _post(web: TestClient, iccid: str, action: str, **fields: str) -> httpx2.Response:
    return web.post(f"/sims/{iccid}/{action}", data=fields, follow_redirects=False)


@pytest.mark.parametrize("key", ["iccid", "imsi", "msisdn", "name", "email"])
def test_the_search_box_finds_a_sim_by_each_key(
    web: TestClient, two_orgs: tuple[World, World], key: str
) -> None:
    alpha, bravo = two_orgs
    query = {
        "iccid": alpha.ids["iccid"],
        "imsi": alpha.ids["supiOrSuci"].removeprefix("imsi-"),
        "msisdn": alpha.ids["msisdn"],
        "name": "User alpha",
        "email": "u@alpha.test",
    }[key]
    page = _as(web, alpha, Role.OPERATOR).get("/sims", params={"q": query})
    assert page.status_code == 200
    assert f'href="/sims/{alpha.ids["iccid"]}"' in page.text
    assert 'hx-trigger="input changed delay:300ms, search"' in page.text
    assert bravo.ids["iccid"] not in page.text


def test_the_search_never_shows_another_orgs_sim(
    web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    page = _as(web, alpha, Role.ADMIN).get("/sims", params={"q": bravo.ids["iccid"]})
    assert page.status_code == 200
    assert "No SIM of this organisation matches." in page.text
    assert _as(web, alpha, Role.ADMIN).get("/sims", params={"cursor": "x"}).status_code == 400


def test_a_sims_page_shows_its_facts_person_session_and_timeline(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    page = _as(web, alpha, Role.ADMIN).get(f"/sims/{iccid}")
    assert page.status_code == 200
    text = page.text
    assert "u@alpha.test" in text
    assert alpha.ids["supiOrSuci"].removeprefix("imsi-") in text
    assert "No live session." in text
    assert f'hx-get="/sims/{iccid}/session" hx-trigger="every 2s" hx-swap="outerHTML"' in text
    assert re.search(r"<th scope=\"row\">Activated</th>", text)
    assert f'href="/sims/{iccid}/suspend"' in text
    assert f'href="/sims/{iccid}/resume"' not in text
    spec = make_sims(3, seed=1)[0]  # the world's first SIM: its K and OPc are never shown
    assert spec.iccid == iccid
    for secret in (spec.k.hex(), spec.opc.hex(), spec.k.hex().upper(), spec.opc.hex().upper()):
        assert secret not in text

    now = api.clock()
    with api.engine.begin() as conn:
        sessions.save(conn, [Session(
            alpha.org.id, alpha.ids["gateway_id"], "acct-1", "192.0.2.1", None, iccid, None,
            None, "490154203237518", "10.64.0.9", "corp", None, None,
            now - timedelta(minutes=1), now,
        )])  # fmt: skip
    fragment = web.get(f"/sims/{iccid}/session")
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="live-session"')
    assert "10.64.0.9" in fragment.text
    assert "pgw" in fragment.text
    assert "<html" not in fragment.text
    listed = web.get("/sims", params={"q": iccid}).text
    assert re.search(r"<td>yes</td>\s*</tr>", listed)


def test_a_stranger_is_sent_to_sign_in_and_htmx_too(
    web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    for path in ("/sims", f"/sims/{iccid}", f"/sims/{iccid}/suspend"):
        r = web.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/login"), path
    posted = web.post(f"/sims/{iccid}/suspend", data={"reason": "x"}, follow_redirects=False)
    assert (posted.status_code, posted.headers["location"]) == (303, "/login")
    fragment = web.get(f"/sims/{iccid}/session", follow_redirects=False)
    assert (fragment.status_code, fragment.headers["hx-redirect"]) == (401, "/login")


def test_an_operator_sees_no_timeline_it_may_not_read(
    web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    page = _as(web, alpha, Role.OPERATOR).get(f"/sims/{alpha.ids['iccid']}")
    assert page.status_code == 200
    assert "Your role does not show the event log." in page.text
    assert "Change the SIM" in page.text


def test_another_orgs_sim_and_an_unknown_one_are_the_same_404(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    _as(web, alpha, Role.ADMIN)
    csrf = _csrf(web)
    answers = []
    for iccid in (bravo.ids["iccid"], "89440000000000000000"):
        for path in ("", "/session", "/suspend"):
            r = web.get(f"/sims/{iccid}{path}")
            assert r.status_code == 404, path
            assert "No SIM with that ICCID in this organisation." in r.text
            answers.append(r.text.replace(iccid, "ICCID"))
        posted = _post(web, iccid, "suspend", csrf=csrf, reason="stolen")
        assert posted.status_code == 404
        answers.append(posted.text.replace(iccid, "ICCID"))
    assert answers[:4] == answers[4:]
    assert _state(api, bravo, bravo.ids["iccid"]) == "active"


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
def test_roles_without_sims_write_see_no_actions_and_may_not_post(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _as(web, alpha, role)
    page = web.get(f"/sims/{iccid}")
    if role is Role.ANALYST:
        assert page.status_code == 403  # no sims:read at all
        assert web.get("/sims").status_code == 403
    else:
        assert page.status_code == 200
        assert "Change the SIM" not in page.text
        assert f'href="/sims/{iccid}/suspend"' not in page.text
    assert web.get(f"/sims/{iccid}/suspend").status_code == 403
    csrf = csrf_in(web.get("/overview").text)
    assert _post(web, iccid, "suspend", csrf=csrf, reason="x").status_code == 403
    assert _state(api, alpha, iccid) == "active"


def test_a_self_sign_in_has_no_sim_pages(web: TestClient, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    _as(web, alpha, Role.SELF)
    assert web.get("/sims").status_code == 403
    assert web.get(f"/sims/{alpha.ids['esim_iccid']}").status_code == 403  # another person's
    assert web.get(f"/sims/{alpha.ids['iccid']}").status_code == 403  # even their own: /me


@pytest.mark.parametrize("csrf", [None, "", "forged"])
def test_a_post_without_the_session_secret_changes_nothing(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World], csrf: str | None
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _as(web, alpha, Role.ADMIN)
    fields = {"reason": "stolen"} | ({} if csrf is None else {"csrf": csrf})
    r = _post(web, iccid, "suspend", **fields)
    assert r.status_code == 403
    assert _state(api, alpha, iccid) == "active"


def test_a_suspend_without_a_reason_is_400_and_changes_nothing(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _as(web, alpha, Role.OPERATOR)
    confirm = web.get(f"/sims/{iccid}/suspend")
    assert confirm.status_code == 200
    assert re.search(r'<textarea id="reason" name="reason"[^>]* required', confirm.text)
    r = _post(web, iccid, "suspend", csrf=csrf_in(confirm.text), reason="   ")
    assert r.status_code == 400
    assert "a reason is required to suspend a SIM" in r.text
    assert _state(api, alpha, iccid) == "active"


def test_an_invalid_transition_is_400_with_the_domains_words(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _as(web, alpha, Role.ADMIN)
    expected = "cannot resume a SIM that is active (allowed from active: suspend, retire)"
    assert expected in web.get(f"/sims/{iccid}/resume").text
    r = _post(web, iccid, "resume", csrf=_csrf(web))
    assert r.status_code == 400
    assert expected in r.text
    assert _post(web, iccid, "explode", csrf=_csrf(web)).status_code == 404
    assert _state(api, alpha, iccid) == "active"


def _suspensions(api: ApiHarness, iccid: str) -> list[tuple[object, ...]]:
    e = schema.events
    with api.engine.connect() as conn:
        rows = conn.execute(
            select(e.c.org_id, e.c.kind, e.c.actor, e.c.subject, e.c.outcome, e.c.reason,
                   e.c.payload)
            .where(e.c.kind == "sim.suspend", e.c.subject == f"sim:{iccid}")
            .order_by(e.c.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


def _sim_changes(api: ApiHarness, iccid: str) -> list[object]:
    o = schema.change_outbox
    with api.engine.connect() as conn:
        return list(
            conn.scalars(
                select(o.c.payload).where(o.c.topic == "sim", o.c.key == iccid).order_by(o.c.seq)
            )
        )


def test_a_suspend_through_the_page_writes_what_the_api_writes(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    _as(web, alpha, Role.ADMIN)
    changes_before = len(_sim_changes(api, iccid))
    r = _post(web, iccid, "suspend", csrf=_csrf(web), reason="phone stolen")
    assert r.status_code == 303
    assert r.headers["location"] == f"/sims/{iccid}?done=suspend"
    assert "The SIM is suspended." in web.get(r.headers["location"]).text
    assert _sim_changes(api, iccid)[changes_before:] == [{"state": "suspended"}]
    resumed = _post(web, iccid, "resume", csrf=_csrf(web))
    assert resumed.status_code == 303
    api_suspend = api.client.post(
        f"/api/v1/sims/{iccid}/suspend", json={"reason": "phone stolen"}, headers=alpha.org.auth()
    )
    assert api_suspend.status_code == 200, api_suspend.text
    through_page, through_api = _suspensions(api, iccid)
    assert through_page == through_api  # same org, kind, actor (the token), reason, payload
    assert through_page[2] == f"token:{_token_id(api, alpha)}"
    assert through_page[6] == {"from": "active", "to": "suspended"}


def _token_id(api: ApiHarness, world: World) -> str:
    r = api.client.get("/api/v1/tokens", headers=world.org.auth())
    assert r.status_code == 200, r.text
    return next(str(t["id"]) for t in r.json() if t["name"] == "admin")


def test_the_whole_lifecycle_through_the_pages(
    api: ApiHarness, web: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    spare = alpha.ids["spare_iccid"]
    _as(web, alpha, Role.OPERATOR)
    nobody = _post(web, spare, "assign", csrf=_csrf(web), person="nobody@alpha.test")
    assert nobody.status_code == 400
    assert "No person in this organisation has that email or id." in nobody.text
    other_org = _post(web, spare, "assign", csrf=_csrf(web), person="u@bravo.test")
    assert other_org.status_code == 400
    assert _state(api, alpha, spare) == "stock"
    confirm = web.get(f"/sims/{spare}/assign")
    assert '<label for="person">' in confirm.text
    steps = [
        ("assign", {"person": "U@alpha.test"}, "assigned"),
        ("activate", {}, "active"),
        ("suspend", {"reason": "lost"}, "suspended"),
        ("resume", {"reason": ""}, "active"),
        ("retire", {"reason": "worn out"}, "retired"),
    ]
    for action, fields, state in steps:
        r = _post(web, spare, action, csrf=_csrf(web), **fields)
        assert r.status_code == 303, (action, r.text)
        assert _state(api, alpha, spare) == state
    page = web.get(f"/sims/{spare}").text
    assert "A retired SIM cannot be changed." in page
    assert "u@alpha.test" in page
    for words in ("Assigned", "Activated", "Suspended", "Resumed", "Retired"):
        assert f'<th scope="row">{words}</th>' not in page  # an operator reads no events
