"""Gateways, IP pools and sessions through the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx2 import Response
from sqlalchemy import select

from ztsim.db import schema
from ztsim.identity.roles import Role
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.table import Session

from support.api import ApiHarness
from support.leaks import LEAKS

SECRET = "api-test-gateway-secret-42"
LEAKS.add_secret(SECRET)


def test_gateway_secret_goes_in_sealed_and_never_comes_out(api: ApiHarness) -> None:
    org = api.new_org("gw")
    body = {
        "name": "pgw-1",
        "address": "192.0.2.10",
        "secret": SECRET,
        "apns": ["Corp.APN", "corp.apn"],
        "require_message_authenticator": False,
        "coa_port": 3799,
    }
    r = api.client.post("/api/v1/gateways", json=body, headers=org.auth())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["address"] == "192.0.2.10/32"
    assert created["apns"] == ["corp.apn"]
    assert created["secret_set"] is True
    assert SECRET not in r.text
    listed = api.client.get("/api/v1/gateways", headers=org.auth(Role.AUDITOR))
    assert [g["id"] for g in listed.json()] == [created["id"]]
    with api.engine.connect() as conn:
        sealed = conn.execute(select(schema.radius_gateways.c.secret_sealed)).scalar_one()
    assert SECRET.encode() not in sealed
    assert api.ctx.sealer.open(sealed, created["id"].encode()) == SECRET.encode()
    # Same address again, or a short secret, or a prefix with host bits: refused.
    again = api.client.post("/api/v1/gateways", json={**body, "name": "x"}, headers=org.auth())
    assert again.status_code == 409
    short = {**body, "name": "y", "address": "192.0.2.11", "secret": "short"}
    assert api.client.post("/api/v1/gateways", json=short, headers=org.auth()).status_code == 422
    hosty = {**body, "name": "z", "address": "192.0.2.1/24"}
    assert api.client.post("/api/v1/gateways", json=hosty, headers=org.auth()).status_code == 422
    gone = api.client.delete(f"/api/v1/gateways/{created['id']}", headers=org.auth())
    assert gone.status_code == 204
    assert (
        api.client.get(f"/api/v1/gateways/{created['id']}", headers=org.auth()).status_code == 404
    )


def test_one_pool_per_org(api: ApiHarness) -> None:
    org = api.new_org("pool")
    body = {"cidr": "10.64.0.0/16", "static_cidr": "10.65.0.0/24"}
    r = api.client.post("/api/v1/ip-pools", json=body, headers=org.auth())
    assert r.status_code == 201, r.text
    assert api.client.post("/api/v1/ip-pools", json=body, headers=org.auth()).status_code == 409
    overlap = {"cidr": "10.64.0.0/16", "static_cidr": "10.64.1.0/24"}
    other = api.new_org("pool2")
    assert (
        api.client.post("/api/v1/ip-pools", json=overlap, headers=other.auth()).status_code == 422
    )
    pools = api.client.get("/api/v1/ip-pools", headers=org.auth(Role.OPERATOR)).json()
    assert [p["cidr"] for p in pools] == ["10.64.0.0/16"]


def test_sessions_list_live_and_who_held_an_address_at_a_time(api: ApiHarness) -> None:
    org = api.new_org("sess")
    other = api.new_org("sess2")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def session(org_id: str, sid: str, ue: str, stopped: datetime | None) -> Session:
        return Session(
            org_id=org_id,
            gateway_id="g" * 32,
            acct_session_id=sid,
            nas_address="192.0.2.1",
            imsi="001010000000001",
            iccid=None,
            identity_id=None,
            device_id=None,
            imei=None,
            ue_address=ue,
            apn="corp",
            rat="EUTRAN",
            location=None,
            started_at=t0,
            updated_at=t0,
            stopped_at=stopped,
            stop_cause="stop" if stopped else None,
        )

    with api.engine.begin() as conn:
        sessions_repo.save(
            conn,
            [
                session(org.id, "old", "10.64.0.9", t0 + timedelta(hours=1)),
                session(org.id, "now", "10.64.0.1", None),
                session(other.id, "theirs", "10.64.0.1", None),
            ],
        )
    live = api.client.get("/api/v1/sessions", headers=org.auth(Role.ANALYST)).json()
    assert [s["acct_session_id"] for s in live["items"]] == ["now"]
    at = (t0 + timedelta(minutes=30)).isoformat()
    then = api.client.get(
        "/api/v1/sessions",
        params={"live": "false", "ue_address": "10.64.0.9", "at": at},
        headers=org.auth(),
    ).json()
    assert [s["acct_session_id"] for s in then["items"]] == ["old"]
    later = (t0 + timedelta(hours=2)).isoformat()
    none = api.client.get(
        "/api/v1/sessions",
        params={"live": "false", "ue_address": "10.64.0.9", "at": later},
        headers=org.auth(),
    ).json()
    assert none["items"] == []
    assert api.client.get("/api/v1/sessions", headers=org.auth(Role.NETWORK)).status_code == 403


def _gateway_body(name: str, address: str) -> dict[str, object]:
    return {"name": name, "address": address, "secret": SECRET, "apns": ["corp"]}


def _refused_without_naming(r: Response, *hidden: str) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "this address space is already claimed"
    for text in hidden:
        assert text not in r.text


def test_a_gateway_inside_another_orgs_prefix_is_refused(api: ApiHarness) -> None:
    alpha, bravo = api.new_org("alpha-gw"), api.new_org("bravo-gw")
    c = api.client
    held = c.post(
        "/api/v1/gateways", json=_gateway_body("pgw", "10.20.0.0/16"), headers=alpha.auth()
    )
    assert held.status_code == 201, held.text
    # More specific (it would win the RADIUS lookup), the same, around it, IPv4-mapped.
    for address in ("10.20.3.4", "10.20.0.0/16", "10.0.0.0/8", "::ffff:10.20.3.4"):
        r = c.post("/api/v1/gateways", json=_gateway_body("take", address), headers=bravo.auth())
        _refused_without_naming(r, alpha.id, "alpha", "10.20.0.0", held.json()["id"])
    assert c.get("/api/v1/gateways", headers=bravo.auth()).json() == []
    # Another org's pool is a claim too; the org's own nested gateway keeps today's rule.
    pool = c.post("/api/v1/ip-pools", json={"cidr": "10.30.0.0/16"}, headers=alpha.auth())
    assert pool.status_code == 201, pool.text
    r = c.post("/api/v1/gateways", json=_gateway_body("in-pool", "10.30.0.9"), headers=bravo.auth())
    _refused_without_naming(r, alpha.id, "10.30.0.0")
    own = c.post("/api/v1/gateways", json=_gateway_body("own", "10.20.3.4"), headers=alpha.auth())
    assert own.status_code == 201, own.text


def test_an_ip_pool_overlapping_another_orgs_claims_is_refused(api: ApiHarness) -> None:
    alpha, bravo = api.new_org("alpha-pool"), api.new_org("bravo-pool")
    c = api.client
    body = {"cidr": "10.231.0.0/16", "static_cidr": "10.232.0.0/24"}
    assert c.post("/api/v1/ip-pools", json=body, headers=alpha.auth()).status_code == 201
    for taken in (
        {"cidr": "10.231.0.0/16"},  # the same pool: both would hand out 10.231.0.1
        {"cidr": "10.231.128.0/17"},
        {"cidr": "10.240.0.0/16", "static_cidr": "10.232.0.0/28"},
    ):
        r = c.post("/api/v1/ip-pools", json=taken, headers=bravo.auth())
        _refused_without_naming(r, alpha.id, "alpha", "10.231.0.0")
    assert c.get("/api/v1/ip-pools", headers=bravo.auth()).json() == []
    r = c.post("/api/v1/ip-pools", json={"cidr": "10.233.0.0/16"}, headers=bravo.auth())
    assert r.status_code == 201, r.text
