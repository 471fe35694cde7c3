"""Bulk onboarding through the pages: a group or a list of emails ordered in one go, the
packs' progress fragment that htmx polls until done, the zip for its starter only, and
forms that cannot be done refused with nothing changed."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from web.signin import csrf_in, sign_in
from ztsim.api.app import create_app
from ztsim.esim.activation import ActivationCode
from ztsim.esim.pack import PackPage
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.web.onboarding_bulk import jobs

from support.api import ApiHarness
from support.world import World


@pytest.fixture
def app_and_pages(api: ApiHarness) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(api.ctx)
    with TestClient(app) as client:
        yield app, client


@pytest.fixture
def pages(app_and_pages: tuple[FastAPI, TestClient]) -> TestClient:
    return app_and_pages[1]


def _signed_in(client: TestClient, world: World, role: Role = Role.ADMIN) -> str:
    client.cookies.clear()
    assert sign_in(client, world.org.tokens[role]) == 303
    return csrf_in(client.get("/login", follow_redirects=True).text)


def _wait_done(client: TestClient, path: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        fragment = client.get(path)
        assert fragment.status_code == 200
        if "hx-trigger" not in fragment.text:
            return fragment.text
        assert 'hx-trigger="every 1s"' in fragment.text
        assert time.monotonic() < deadline, "the packs were not made in time"
        time.sleep(0.1)


def test_bulk_packs_show_progress_until_the_zip_is_ready(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, bravo = two_orgs
    csrf = _signed_in(pages, alpha, Role.OPERATOR)
    form = pages.get("/onboarding/bulk")
    assert form.status_code == 200
    assert f'value="{alpha.ids["group_id"]}"' in form.text
    started = pages.post(
        "/onboarding/bulk",
        data={"csrf": csrf, "group": alpha.ids["group_id"], "emails": ""},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    job = started.headers["location"]
    shown = pages.get(job)
    assert shown.status_code == 200
    assert "1 new eSIM order;" in shown.text
    done = _wait_done(pages, job + "/progress")
    assert "1 of 1: done." in done
    download = pages.get(job + "/packs.zip")
    assert download.status_code == 200
    assert download.headers["cache-control"] == "no-store, private"
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert len(names) == 4
    assert all(n.startswith("user-alpha-") for n in names)
    orders = api.client.get(
        f"/api/v1/esim/orders?identity_id={alpha.ids['identity_id']}", headers=alpha.org.auth()
    )
    assert [o["state"] for o in orders.json()["items"]] == ["issued"]

    # Another sign-in, even of the same org, does not get this zip.
    _signed_in(pages, alpha)
    assert pages.get(job + "/packs.zip").status_code == 404
    _signed_in(pages, bravo, Role.OPERATOR)
    assert pages.get(job + "/progress").status_code == 404


def test_bulk_refuses_what_it_cannot_do(
    api: ApiHarness, two_orgs: tuple[World, World], pages: TestClient
) -> None:
    alpha, bravo = two_orgs
    csrf = _signed_in(pages, alpha)
    for data, words in (
        ({"group": "", "emails": ""}, "choose a group"),
        ({"group": bravo.ids["group_id"], "emails": ""}, "not in this organisation"),
        ({"group": "", "emails": "u@bravo.test"}, "no identity"),
        ({"group": "", "emails": "\n".join(f"p{i}@x.test" for i in range(201))}, "at most 200"),
    ):
        r = pages.post("/onboarding/bulk", data={"csrf": csrf, **data}, follow_redirects=False)
        assert r.status_code == 400, data
        assert words in r.text
    r = pages.post("/onboarding/bulk", data={"group": alpha.ids["group_id"]})
    assert r.status_code == 403
    orders = api.client.get(
        f"/api/v1/esim/orders?identity_id={alpha.ids['identity_id']}", headers=alpha.org.auth()
    )
    assert orders.json()["items"] == []


def test_the_fragment_asks_again_until_the_packs_are_made(
    api: ApiHarness, two_orgs: tuple[World, World], app_and_pages: tuple[FastAPI, TestClient]
) -> None:
    alpha, _ = two_orgs
    app, pages = app_and_pages
    _signed_in(pages, alpha, Role.OPERATOR)
    with api.engine.connect() as conn:
        operator = token_store.authenticate(conn, alpha.org.tokens[Role.OPERATOR], api.clock())
    assert operator is not None
    code = ActivationCode("smdp.example.test", "ABCDE-FGHJK-MNPQR-STVWX-YZ012", None, False)
    many = [PackPage(f"P{n}", "Alpha", code, api.clock(), f"{n:032x}") for n in range(40)]
    job = jobs(app).start(alpha.org.id, operator.token_id, many, ordered=0, skipped=[])
    path = f"/onboarding/bulk/{job.id}/progress"
    first = pages.get(path)
    assert f'hx-get="{path}"' in first.text
    assert 'hx-trigger="every 1s"' in first.text
    assert "Download the packs" not in first.text
    last = _wait_done(pages, path)
    assert "40 of 40: done." in last
    assert 'href="/onboarding/bulk/' in last
