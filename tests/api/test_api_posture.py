"""Device posture through the API: an MDM connector's `posture` token reports (ztsim's
shape, Intune's, Jamf's) and reads nothing back; admins read and forget reports, auditors
read, a `self` token reads its own devices' only; another org's devices stay unknown.
Devices carry the serial numbers MDMs name them by."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ztsim.api import routes_posture
from ztsim.feed.change import Topic
from ztsim.identity.roles import Role

from support.api import ApiHarness, OrgHandle
from support.traces import Mark
from support.world import World, populate

IMEI = "490154203237518"  # alpha's device (seed 1), owned by its user
BRAVO_IMEI = "352099001761481"
SERIAL = "F9FXK1ABCD7Q"
POSTURE = "/api/v1/posture"


@pytest.fixture
def posture_api(api: ApiHarness) -> ApiHarness:
    # Until app.py registers the router, the test's app includes it.
    if not any(getattr(r, "path", "") == POSTURE for r in api.app.routes):
        api.app.include_router(routes_posture.router, prefix="/api/v1")
    return api


def _connector(api: ApiHarness, org: OrgHandle) -> dict[str, str]:
    r = api.client.post(
        "/api/v1/tokens", json={"name": "mdm", "role": "posture"}, headers=org.auth()
    )
    assert r.status_code == 201, r.text
    org.tokens[Role.POSTURE] = r.json()["token"]
    return org.auth(Role.POSTURE)


def _generic(**device: str) -> dict[str, object]:
    return {"device": device, "attributes": {"managed": True, "os_version": "17.4"}}


def _path(world: World, device: str = "device_id") -> str:
    return f"/api/v1/devices/{world.ids[device]}/posture"


def test_a_connector_reports_and_readers_read(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha = populate(api, "alpha", 1)
    mdm = _connector(api, alpha.org)
    mark = Mark(api.engine)
    r = c.post(POSTURE, json=_generic(imei=IMEI), headers=mdm)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 1, "unmatched": [], "ignored": []}
    left = mark.left()
    assert left.topics == [(Topic.POSTURE, alpha.ids["device_id"])]
    assert left.kinds == ["device.posture"]

    # The connector reads nothing back, nor forgets; nor does anyone but an admin.
    assert c.get(_path(alpha), headers=mdm).status_code == 403
    assert c.delete(_path(alpha), headers=mdm).status_code == 403
    for role in (Role.OPERATOR, Role.ANALYST, Role.NETWORK, Role.SMDP):
        assert c.get(_path(alpha), headers=alpha.org.auth(role)).status_code == 403, role
        assert (
            c.post(POSTURE, json=_generic(imei=IMEI), headers=alpha.org.auth(role)).status_code
            == 403
        )
    for role in (Role.AUDITOR, Role.SELF):
        assert c.delete(_path(alpha), headers=alpha.org.auth(role)).status_code == 403, role
        assert (
            c.post(POSTURE, json=_generic(imei=IMEI), headers=alpha.org.auth(role)).status_code
            == 403
        )

    for role in (Role.ADMIN, Role.AUDITOR, Role.SELF):
        read = c.get(_path(alpha), headers=alpha.org.auth(role))
        assert read.status_code == 200, (role, read.text)
        body = read.json()
        assert body["attributes"] == {"managed": True, "os_version": "17.4"}
        assert (body["device_id"], body["source"], body["expired"]) == (
            alpha.ids["device_id"],
            "generic",
            False,
        )
    # A day on, the report has expired: shown as such, and checks reading it fail closed.
    api.clock.offset = timedelta(days=1, seconds=1)
    assert c.get(_path(alpha), headers=alpha.org.auth()).json()["expired"] is True


def test_self_reads_only_its_own_devices_posture(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha = populate(api, "alpha", 1)
    auth = alpha.org.auth()
    spare = c.post("/api/v1/devices", json={"imei": "356938035643809"}, headers=auth).json()
    mdm = _connector(api, alpha.org)
    reports = {"reports": [_generic(imei=IMEI), _generic(device_id=spare["id"])]}
    assert c.post(POSTURE, json=reports, headers=mdm).json()["applied"] == 2
    mine = c.get(_path(alpha), headers=alpha.org.auth(Role.SELF))
    assert mine.status_code == 200
    theirs = c.get(f"/api/v1/devices/{spare['id']}/posture", headers=alpha.org.auth(Role.SELF))
    assert theirs.status_code == 404
    assert c.get(f"/api/v1/devices/{spare['id']}/posture", headers=auth).status_code == 200


def test_another_orgs_devices_are_unknown(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha, bravo = populate(api, "alpha", 1), populate(api, "bravo", 2)
    mdm = _connector(api, alpha.org)
    reports = [
        _generic(imei=BRAVO_IMEI),
        _generic(device_id=bravo.ids["device_id"]),
        _generic(imei=IMEI),
    ]
    r = c.post(POSTURE, json={"reports": reports}, headers=mdm)
    assert r.json() == {"applied": 1, "unmatched": [0, 1], "ignored": []}
    bravo_admin = bravo.org.auth()
    assert c.get(_path(bravo), headers=bravo_admin).status_code == 404
    assert c.get(_path(alpha), headers=bravo_admin).status_code == 404
    assert c.delete(_path(alpha), headers=bravo_admin).status_code == 404
    assert c.get(_path(alpha), headers=alpha.org.auth()).status_code == 200


def test_intune_and_jamf_records_with_serial_numbers(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha = populate(api, "alpha", 1)
    auth = alpha.org.auth()
    created = c.post(
        "/api/v1/devices", json={"imei": "356938035643809", "serial_number": SERIAL}, headers=auth
    )
    assert created.status_code == 201, created.text
    tablet = created.json()
    assert tablet["serial_number"] == SERIAL
    assert c.get(f"/api/v1/devices/{tablet['id']}", headers=auth).json()["serial_number"] == SERIAL
    mdm = _connector(api, alpha.org)
    now = api.clock().isoformat()
    page = {
        "value": [
            {
                "id": "x",
                "imei": "",
                "serialNumber": SERIAL,
                "operatingSystem": "iPadOS",
                "complianceState": "noncompliant",
                "managementState": "managed",
                "jailBroken": "Unknown",
                "lastSyncDateTime": now,
            },
            {"imei": IMEI, "complianceState": "compliant", "lastSyncDateTime": now},
        ]
    }
    r = c.post(f"{POSTURE}?format=intune", json=page, headers=mdm)
    assert r.json() == {"applied": 2, "unmatched": [], "ignored": []}, r.text
    read = c.get(f"/api/v1/devices/{tablet['id']}/posture", headers=auth).json()
    assert (read["source"], read["attributes"]) == (
        "intune",
        {"managed": True, "compliant": False, "os": "ios"},
    )

    later = (api.clock() + timedelta(minutes=1)).isoformat()
    jamf = {"serialNumber": SERIAL, "managed": False, "lastInventoryUpdateTimestamp": later}
    assert c.post(f"{POSTURE}?format=jamf", json=jamf, headers=mdm).json()["applied"] == 1
    read = c.get(f"/api/v1/devices/{tablet['id']}/posture", headers=auth).json()
    assert (read["source"], read["attributes"]) == ("jamf", {"managed": False})


def test_serial_numbers_are_set_changed_and_unique(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha = populate(api, "alpha", 1)
    auth = alpha.org.auth()
    device = f"/api/v1/devices/{alpha.ids['device_id']}"
    assert c.get(device, headers=auth).json()["serial_number"] is None
    r = c.patch(device, json={"serial_number": SERIAL}, headers=auth)
    assert (r.status_code, r.json()["serial_number"], r.json()["name"]) == (200, SERIAL, "phone")
    other = {"imei": "356938035643809", "serial_number": SERIAL}
    assert c.post("/api/v1/devices", json=other, headers=auth).status_code == 409
    bad = {"imei": "356938035643809", "serial_number": "with space"}
    assert c.post("/api/v1/devices", json=bad, headers=auth).status_code == 422
    mdm = _connector(api, alpha.org)
    by_serial = c.post(POSTURE, json=_generic(serial_number=SERIAL), headers=mdm)
    assert by_serial.json()["applied"] == 1
    assert (
        c.patch(device, json={"serial_number": None}, headers=auth).json()["serial_number"] is None
    )
    again = c.post(POSTURE, json=_generic(serial_number=SERIAL), headers=mdm)
    assert again.json()["unmatched"] == [0]
    assert c.patch(device, json={"name": "renamed"}, headers=auth).json()["name"] == "renamed"
    assert c.patch(device, json={"name": "x"}, headers=alpha.org.auth(Role.SELF)).status_code == 403


def test_forgetting_a_report(posture_api: ApiHarness) -> None:
    api, c = posture_api, posture_api.client
    alpha = populate(api, "alpha", 1)
    auth = alpha.org.auth()
    assert c.delete(_path(alpha), headers=auth).status_code == 404
    c.post(POSTURE, json=_generic(imei=IMEI), headers=_connector(api, alpha.org))
    mark = Mark(api.engine)
    assert c.delete(_path(alpha), headers=auth).status_code == 204
    assert mark.left().topics == [(Topic.POSTURE, alpha.ids["device_id"])]
    assert c.get(_path(alpha), headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ("", {"device": {"imei": "490154203237517"}}, "body.device.imei"),
        ("", {"reports": [_generic(imei=IMEI), {"device": {}}]}, "reports[1].device"),
        ("?format=intune", {"value": [{"imei": "", "serialNumber": ""}]}, "value[0]"),
        ("?format=jamf", {"serialNumber": "S", "managed": "yes"}, "body.managed"),
        ("?format=mobileiron", _generic(imei=IMEI), "format"),
        ("", {"reports": [_generic(imei=IMEI)] * 1001}, "at most 1000"),
    ],
)
def test_a_bad_report_is_refused_naming_its_field(
    posture_api: ApiHarness, query: str, body: Any, field: str
) -> None:
    api = posture_api
    alpha = populate(api, "alpha", 1)
    mdm = _connector(api, alpha.org)
    mark = Mark(api.engine)
    r = api.client.post(POSTURE + query, json=body, headers=mdm)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.text
    assert mark.left().kinds == []  # nothing recorded


def test_the_api_body_limit_applies(posture_api: ApiHarness) -> None:
    api = posture_api
    alpha = populate(api, "alpha", 1)
    # A page of reports may be 8 MiB (an Intune page of 1,000 devices), not more.
    huge = {"reports": [_generic(imei=IMEI)], "padding": "x" * (8 * 1024 * 1024)}
    r = api.client.post(POSTURE, json=huge, headers=_connector(api, alpha.org))
    assert r.status_code == 413
