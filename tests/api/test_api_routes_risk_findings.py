"""Risk findings through the API: readers list their org's findings newest first, a page
at a time, by SIM or detector; another org's stay unseen; an admin lifts a clone
suspicion (the SIM's change published), idempotently; others may not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from ztsim.db import schema
from ztsim.feed.change import Topic
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.risk.detectors import Finding
from ztsim.risk.settings import Detector, Response
from ztsim.risk.store.responses import respond
from ztsim.sealing import Sealer

from support.api import ApiHarness
from support.leaks import LEAKS
from support.radius_world import World, build_world
from support.traces import Mark

FINDINGS = "/api/v1/risk/findings"


def _org(api: ApiHarness, sealer: Sealer, seed: int) -> tuple[World, dict[Role, str]]:
    # Orgs' address claims may not overlap: each its own gateway address and pools.
    n = seed % 10
    pools = (f"10.{64 + 2 * n}.0.0/16", f"10.{65 + 2 * n}.0.0/24")
    world = build_world(api.engine, sealer, seed=seed, address=f"127.0.0.{n + 1}", pool=pools)
    tokens = {}
    with api.engine.begin() as conn:
        for role in (Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AUDITOR):
            _, token = token_store.issue(
                conn, world.org_id, name=role.value, role=role, identity_id=None,
                created_by="test", now=datetime.now(UTC),
            )  # fmt: skip
            LEAKS.add_secret(token)
            tokens[role] = token
    return world, tokens


def _auth(tokens: dict[Role, str], role: Role = Role.ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _find(api: ApiHarness, w: World, event: int, detector: Detector, response: Response) -> None:
    finding = Finding(detector, w.org_id, w.active_iccid, event, datetime.now(UTC), {"n": event})
    with api.engine.begin() as conn:
        respond(conn, finding, response, now=datetime.now(UTC))


def test_readers_list_their_orgs_findings_in_pages(api: ApiHarness, sealer: Sealer) -> None:
    alpha, tokens = _org(api, sealer, 41)
    bravo, bravo_tokens = _org(api, sealer, 42)
    _find(api, alpha, 1, Detector.SQN_ANOMALY, Response.ALERT)
    _find(api, alpha, 2, Detector.TWIN_SESSION, Response.RESTRICT)
    _find(api, alpha, 3, Detector.IMEI_FLAPPING, Response.ALERT)
    _find(api, bravo, 4, Detector.TWIN_SESSION, Response.ALERT)
    c = api.client
    r = c.get(FINDINGS, params={"limit": 2}, headers=_auth(tokens, Role.AUDITOR))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [f["source_event_id"] for f in page["items"]] == [3, 2]
    assert page["items"][1] == {
        "id": page["items"][1]["id"],
        "detector": "twin_session",
        "iccid": alpha.active_iccid,
        "at": page["items"][1]["at"],
        "source_event_id": 2,
        "response": "restrict",
        "detail": {"n": 2, "outcome": "restricted"},
    }
    rest = c.get(
        FINDINGS, params={"limit": 2, "cursor": page["next_cursor"]}, headers=_auth(tokens)
    ).json()
    assert [f["source_event_id"] for f in rest["items"]] == [1]
    assert rest["next_cursor"] is None
    by_detector = c.get(
        FINDINGS, params={"detector": "sqn_anomaly"}, headers=_auth(tokens, Role.OPERATOR)
    ).json()
    assert [f["source_event_id"] for f in by_detector["items"]] == [1]
    by_sim = c.get(FINDINGS, params={"iccid": bravo.active_iccid}, headers=_auth(tokens)).json()
    assert by_sim["items"] == []
    assert [
        f["source_event_id"] for f in c.get(FINDINGS, headers=_auth(bravo_tokens)).json()["items"]
    ] == [4]
    assert c.get(FINDINGS, headers=_auth(tokens, Role.ANALYST)).status_code == 403
    assert c.get(FINDINGS, params={"detector": "nope"}, headers=_auth(tokens)).status_code == 422


def test_an_admin_lifts_a_clone_suspicion(api: ApiHarness, sealer: Sealer) -> None:
    alpha, tokens = _org(api, sealer, 43)
    _, bravo_tokens = _org(api, sealer, 44)
    _find(api, alpha, 1, Detector.TWIN_SESSION, Response.RESTRICT)
    path = f"/api/v1/sims/{alpha.active_iccid}/clone-suspicion"
    c = api.client
    assert c.delete(path, headers=_auth(tokens, Role.OPERATOR)).status_code == 403
    # Another org's admin: the SIM does not exist for it.
    assert c.delete(path, headers=_auth(bravo_tokens)).status_code == 404
    mark = Mark(api.engine)
    r = c.delete(path, headers=_auth(tokens))
    assert r.status_code == 204, r.text
    left = mark.left()
    assert left.kinds == ["risk.suspicion_cleared"]
    assert left.topics == [(Topic.SIM, alpha.active_iccid)]
    s = schema.sims
    with api.engine.connect() as conn:
        since = conn.execute(
            select(s.c.clone_suspected_at).where(s.c.iccid == alpha.active_iccid)
        ).scalar()
    assert since is None
    mark = Mark(api.engine)
    assert c.delete(path, headers=_auth(tokens)).status_code == 204
    assert mark.left().empty
