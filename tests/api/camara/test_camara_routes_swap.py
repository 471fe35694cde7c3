"""SIM Swap 2.1.0 and Device Swap 1.0.0 through the app: every rule and error code of
the specs, each answer held to the spec document's own schema for its status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from ztsim.db import schema
from ztsim.inventory.number_history import ChangeKind
from ztsim.risk import specs
from ztsim.risk.settings import RiskSettings
from ztsim.risk.store.settings import put_settings

from api.camara.conftest import Camara
from api.camara.spec_bodies import body_errors

SIM_DATE, SIM_CHECK = "/sim-swap/v2/retrieve-date", "/sim-swap/v2/check"
DEVICE_DATE, DEVICE_CHECK = "/device-swap/v1/retrieve-date", "/device-swap/v1/check"
ALL = (SIM_DATE, SIM_CHECK, DEVICE_DATE, DEVICE_CHECK)


def ask(
    camara: Camara,
    path: str,
    body: Any,
    token: str | None,
    correlator: str | None = None,
) -> httpx2.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if correlator is not None:
        headers["x-correlator"] = correlator
    r = camara.h.client.post(path, json=body, headers=headers)
    spec = specs.SIM_SWAP if path.startswith("/sim-swap/") else specs.DEVICE_SWAP
    assert r.headers["content-type"] == "application/json"
    assert body_errors(spec, path.rsplit("/", 1)[1].join(("/", "")), r.status_code, r.json()) == []
    return r


def error(r: httpx2.Response, status: int, code: str) -> str:
    assert (r.status_code, r.json()["code"], r.json()["status"]) == (status, code, status), r.text
    message = r.json()["message"]
    assert isinstance(message, str)
    assert message
    return message


def test_retrieve_date_is_the_latest_change_within_the_monitored_period(camara: Camara) -> None:
    token = camara.token()
    now = camara.h.clock()
    camara.forget("active")
    camara.history("active", ChangeKind.SIM, now - timedelta(days=3))
    camara.history("active", ChangeKind.SIM, now - timedelta(days=2, microseconds=123456))
    r = ask(camara, SIM_DATE, {"phoneNumber": camara.numbers["active"]}, token)
    latest = (now - timedelta(days=2, microseconds=123456)).isoformat(timespec="milliseconds")
    assert r.json() == {"latestSimChange": latest.replace("+00:00", "Z")}
    camara.history("active", ChangeKind.DEVICE, now - timedelta(hours=5))
    r = ask(camara, DEVICE_DATE, {"phoneNumber": camara.numbers["active"]}, token)
    five = (now - timedelta(hours=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert r.json() == {"latestDeviceChange": five}


@pytest.mark.parametrize(
    ("path", "field"), [(SIM_DATE, "latestSimChange"), (DEVICE_DATE, "latestDeviceChange")]
)
def test_retrieve_date_beyond_the_monitored_period_is_null_with_the_period(
    camara: Camara, path: str, field: str
) -> None:
    token = camara.token()
    camara.forget("active")
    kind = ChangeKind.SIM if path == SIM_DATE else ChangeKind.DEVICE
    camara.history("active", kind, camara.h.clock() - timedelta(days=121))
    r = ask(camara, path, {"phoneNumber": camara.numbers["active"]}, token)
    assert r.json() == {field: None, "monitoredPeriod": 120}
    camara.forget("active")  # nothing kept at all: the same answer (SIM still in a device)
    r = ask(camara, path, {"phoneNumber": camara.numbers["active"]}, token)
    assert r.json() == {field: None, "monitoredPeriod": 120}


def test_check_answers_whether_the_latest_change_is_within_max_age(camara: Camara) -> None:
    token = camara.token()
    camara.forget("active")
    number = camara.numbers["active"]
    assert ask(camara, SIM_CHECK, {"phoneNumber": number}, token).json() == {"swapped": False}
    camara.history("active", ChangeKind.SIM, camara.h.clock() - timedelta(hours=10))
    for max_age, swapped in ((9, False), (11, True), (2400, True)):
        r = ask(camara, SIM_CHECK, {"phoneNumber": number, "maxAge": max_age}, token)
        assert r.json() == {"swapped": swapped}, max_age
    # maxAge defaults to 240 hours.
    assert ask(camara, SIM_CHECK, {"phoneNumber": number}, token).json() == {"swapped": True}
    camara.forget("active")
    camara.history("active", ChangeKind.SIM, camara.h.clock() - timedelta(hours=241))
    assert ask(camara, SIM_CHECK, {"phoneNumber": number}, token).json() == {"swapped": False}
    assert ask(camara, DEVICE_CHECK, {"phoneNumber": number, "maxAge": 1}, token).json() == {
        "swapped": False
    }
    camara.history("active", ChangeKind.DEVICE, camara.h.clock() - timedelta(minutes=30))
    r = ask(camara, DEVICE_CHECK, {"phoneNumber": number, "maxAge": 1}, token)
    assert r.json() == {"swapped": True}


def test_max_age_outside_1_to_2400_is_out_of_range(camara: Camara) -> None:
    token = camara.token()
    for path in (SIM_CHECK, DEVICE_CHECK):
        for max_age in (0, -1, 2401, 2**31):
            body = {"phoneNumber": camara.numbers["active"], "maxAge": max_age}
            message = error(ask(camara, path, body, token), 400, "OUT_OF_RANGE")
            assert "2400" in message


def test_max_age_beyond_the_orgs_monitored_period_is_out_of_range(camara: Camara) -> None:
    with camara.h.engine.begin() as conn:
        put_settings(
            conn, camara.org.id, RiskSettings(monitored_days=30), actor="t", now=camara.h.clock()
        )
    token, number = camara.token(), camara.numbers["active"]
    for path in (SIM_CHECK, DEVICE_CHECK):
        r = ask(camara, path, {"phoneNumber": number, "maxAge": 721}, token)
        assert "30 days" in error(r, 400, "OUT_OF_RANGE")
        assert ask(camara, path, {"phoneNumber": number, "maxAge": 720}, token).status_code == 200
    # The default maxAge (240 hours) is within it; retrieve-date reports the shorter period.
    assert ask(camara, SIM_CHECK, {"phoneNumber": number}, token).status_code == 200
    camara.forget("active")
    camara.history("active", ChangeKind.SIM, camara.h.clock() - timedelta(days=31))
    r = ask(camara, SIM_DATE, {"phoneNumber": number}, token)
    assert r.json() == {"latestSimChange": None, "monitoredPeriod": 30}


INVALID: list[Any] = [
    {"phoneNumber": "4917000000001"},  # no '+'
    {"phoneNumber": "+0491700000001"},  # a country code never starts with 0
    {"phoneNumber": "+4917"},  # too short
    {"phoneNumber": "+4917000000000001"},  # 16 digits
    {"phoneNumber": " +491700000001"},
    {"phoneNumber": "+49170000000\n"},
    {"phoneNumber": 4917000000001},
    {"phoneNumber": None},
    {"maxAge": "240"},
    {"maxAge": 24.5},
    {"maxAge": None},
    {"maxAge": True},
    [],
    "text",
    None,
]


def test_invalid_requests_are_invalid_argument(camara: Camara) -> None:
    token = camara.token()
    for path in ALL:
        for body in INVALID:
            if (
                isinstance(body, dict)
                and "maxAge" in body
                and path not in (SIM_CHECK, DEVICE_CHECK)
            ):
                body = {"phoneNumber": body["maxAge"]}  # the date operations take no maxAge
            message = error(ask(camara, path, body, token), 400, "INVALID_ARGUMENT")
            assert "49170000000" not in message  # fields and rules are named, never values


def test_a_body_that_is_not_json_is_invalid_argument(camara: Camara) -> None:
    headers = {"Authorization": f"Bearer {camara.token()}", "content-type": "application/json"}
    for content in (b"", b"{", b"\xff\xfe"):
        r = camara.h.client.post(SIM_CHECK, content=content, headers=headers)
        error(r, 400, "INVALID_ARGUMENT")


def test_properties_the_spec_does_not_name_are_ignored(camara: Camara) -> None:
    body = {"phoneNumber": camara.numbers["active"], "note": "the schema allows it"}
    assert ask(camara, SIM_DATE, body, camara.token()).status_code == 200


def test_unknown_and_other_orgs_numbers_are_the_same_identifier_not_found(
    camara: Camara,
) -> None:
    token = camara.token()
    for path in ALL:
        unknown = ask(camara, path, {"phoneNumber": "+4915199999999"}, token)
        others = ask(camara, path, {"phoneNumber": camara.numbers["bravo"]}, token)
        error(unknown, 404, "IDENTIFIER_NOT_FOUND")
        assert others.status_code == 404
        assert others.json() == unknown.json()


def test_a_number_without_a_line_in_service_is_not_applicable(camara: Camara) -> None:
    token = camara.token()
    for path in ALL:
        for state in ("stock", "assigned", "retired"):
            r = ask(camara, path, {"phoneNumber": camara.numbers[state]}, token)
            error(r, 422, "SERVICE_NOT_APPLICABLE")


def test_a_suspended_line_is_answered(camara: Camara) -> None:
    token = camara.token()
    for path in ALL:
        r = ask(camara, path, {"phoneNumber": camara.numbers["suspended"]}, token)
        assert r.status_code == 200


@pytest.mark.parametrize("path", [DEVICE_DATE, DEVICE_CHECK])
def test_a_number_never_in_a_device_is_not_applicable_for_device_swap(
    camara: Camara, path: str
) -> None:
    token = camara.token()
    r = ask(camara, path, {"phoneNumber": camara.numbers["unbound"]}, token)
    assert "device" in error(r, 422, "SERVICE_NOT_APPLICABLE")
    # SIM Swap has no such rule: the number has a SIM in service.
    sim_path = SIM_DATE if path == DEVICE_DATE else SIM_CHECK
    assert (
        ask(camara, sim_path, {"phoneNumber": camara.numbers["unbound"]}, token).status_code == 200
    )


def test_a_two_legged_token_needs_the_phone_number(camara: Camara) -> None:
    token = camara.token()
    for path in ALL:
        error(ask(camara, path, {}, token), 422, "MISSING_IDENTIFIER")
        error(ask(camara, path, {"maxAge": 24}, token), 422, "MISSING_IDENTIFIER")


def test_a_three_legged_token_is_bound_to_its_number(camara: Camara) -> None:
    number = camara.numbers["active"]
    token = camara.token(phone=number)
    for path in ALL:
        for named in (number, camara.numbers["suspended"]):  # even its own number
            r = ask(camara, path, {"phoneNumber": named}, token)
            error(r, 422, "UNNECESSARY_IDENTIFIER")
        assert ask(camara, path, {}, token).status_code == 200


def test_a_three_legged_answer_is_about_the_tokens_number(camara: Camara) -> None:
    camara.history("active", ChangeKind.SIM, camara.h.clock() - timedelta(hours=1))
    camara.forget("suspended")
    active = ask(camara, SIM_CHECK, {"maxAge": 2}, camara.token(phone=camara.numbers["active"]))
    other = ask(camara, SIM_CHECK, {"maxAge": 2}, camara.token(phone=camara.numbers["suspended"]))
    assert (active.json(), other.json()) == ({"swapped": True}, {"swapped": False})


def test_requests_without_a_valid_token_are_unauthenticated(camara: Camara) -> None:
    body = {"phoneNumber": camara.numbers["active"]}
    api_token = camara.org.tokens[next(iter(camara.org.tokens))]
    for path in ALL:
        for token in (None, "", "nonsense", "ztsimat_" + "A" * 43, api_token):
            r = ask(camara, path, body, token)
            error(r, 401, "UNAUTHENTICATED")
            assert r.headers["www-authenticate"] == "Bearer"
        r = camara.h.client.post(path, json=body, headers={"Authorization": "Basic eDp5"})
        assert r.status_code == 401


def test_an_expired_token_is_unauthenticated(camara: Camara) -> None:
    token = camara.token()
    body = {"phoneNumber": camara.numbers["active"]}
    assert ask(camara, SIM_CHECK, body, token).status_code == 200
    camara.h.clock.offset = timedelta(hours=1, seconds=1)
    error(ask(camara, SIM_CHECK, body, token), 401, "UNAUTHENTICATED")


def test_a_revoked_clients_tokens_are_unauthenticated(camara: Camara) -> None:
    token = camara.token()
    with camara.h.engine.connect() as conn:
        client_id = conn.scalar(select(schema.oauth_tokens.c.client_id))
    r = camara.h.client.delete(f"/api/v1/api-clients/{client_id}", headers=camara.org.auth())
    assert r.status_code == 200
    error(
        ask(camara, SIM_CHECK, {"phoneNumber": camara.numbers["active"]}, token),
        401,
        "UNAUTHENTICATED",
    )


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("sim-swap:check", {SIM_CHECK}),
        ("sim-swap:retrieve-date", {SIM_DATE}),
        ("sim-swap", {SIM_CHECK, SIM_DATE}),
        ("device-swap:check", {DEVICE_CHECK}),
        ("device-swap:retrieve-date", {DEVICE_DATE}),
        ("device-swap", {DEVICE_CHECK, DEVICE_DATE}),
        ("sim-swap-subscriptions:read", set()),
    ],
)
def test_each_operation_needs_its_scope(camara: Camara, scope: str, allowed: set[str]) -> None:
    token = camara.token([scope])
    for path in ALL:
        r = ask(camara, path, {"phoneNumber": camara.numbers["active"]}, token)
        if path in allowed:
            assert r.status_code == 200, (scope, path, r.text)
        else:
            error(r, 403, "PERMISSION_DENIED")


def test_a_valid_correlator_is_echoed_on_every_answer(camara: Camara) -> None:
    token, number = camara.token(), camara.numbers["active"]
    correlator = "b4333c46-49c0-4f62-80d7-f0ef930f1c46:{x}/<y>;z."
    answers = [
        ask(camara, SIM_CHECK, {"phoneNumber": number}, token, correlator),  # 200
        ask(camara, SIM_CHECK, {"phoneNumber": "49"}, token, correlator),  # 400
        ask(camara, SIM_CHECK, {"phoneNumber": number}, None, correlator),  # 401
        ask(camara, SIM_CHECK, {"phoneNumber": number}, camara.token(["device-swap"]), correlator),
        ask(camara, SIM_CHECK, {"phoneNumber": "+4915199999999"}, token, correlator),  # 404
        ask(camara, SIM_CHECK, {}, token, correlator),  # 422
    ]
    assert [r.status_code for r in answers] == [200, 400, 401, 403, 404, 422]
    assert all(r.headers["x-correlator"] == correlator for r in answers)
    assert "x-correlator" not in ask(camara, SIM_CHECK, {"phoneNumber": number}, token).headers


def test_an_invalid_correlator_is_invalid_argument(camara: Camara) -> None:
    token = camara.token()
    for correlator in ("has space", "a" * 257, "é", "semi;colon,comma"):
        headers = {
            b"authorization": f"Bearer {token}".encode(),
            b"x-correlator": correlator.encode(),
        }
        r = camara.h.client.post(
            SIM_CHECK, json={"phoneNumber": camara.numbers["active"]}, headers=headers
        )
        error(r, 400, "INVALID_ARGUMENT")
        assert "x-correlator" not in r.headers


def test_each_query_is_an_event_of_the_clients_org(camara: Camara) -> None:
    token, number = camara.token(), camara.numbers["active"]
    ask(camara, SIM_CHECK, {"phoneNumber": number, "maxAge": 24}, token)
    ask(camara, DEVICE_DATE, {"phoneNumber": camara.numbers["bravo"]}, token)
    ask(camara, SIM_DATE, {}, token)  # no number named: nothing to record about anyone
    e = schema.events
    with camara.h.engine.connect() as conn:
        rows = conn.execute(
            select(e.c.org_id, e.c.actor, e.c.subject, e.c.outcome, e.c.payload)
            .where(e.c.kind == "camara.query")
            .order_by(e.c.id)
        ).all()
        client_id = conn.scalar(select(schema.oauth_tokens.c.client_id))
    assert [(r.org_id, r.actor, r.subject, r.outcome) for r in rows] == [
        (camara.org.id, f"api_client:{client_id}", f"msisdn:{number[1:]}", "success"),
        (
            camara.org.id,
            f"api_client:{client_id}",
            f"msisdn:{camara.numbers['bravo'][1:]}",
            "denied",
        ),
    ]
    assert rows[0].payload == {
        "client_id": client_id,
        "operation": "sim-swap.check",
        "answer": {"swapped": True},
        "legs": 2,
    }
    assert rows[1].payload["answer"] == {"status": 404, "code": "IDENTIFIER_NOT_FOUND"}


def test_the_spec_documents_are_served_verbatim_without_a_token(camara: Camara) -> None:
    for path, name in specs.SERVED_AT.items():
        r = camara.h.client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/yaml"
        assert r.text == specs.spec_text(name)


def test_camara_routes_are_not_in_ztsims_own_schema(camara: Camara) -> None:
    paths = camara.h.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/sim-swap", "/device-swap", "/oauth2"))]
