"""A subscription request checked per SIM Swap Subscriptions 0.3.0, its lifecycle and
the delivery backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.risk.cloudevents import SWAPPED, TerminationReason
from ztsim.risk.subscriptions import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    TOKEN_MARGIN,
    Outcome,
    RequestRefused,
    SinkCredential,
    Status,
    outcome,
    parse_request,
    reason_by_count,
    reason_by_time,
    retry_at,
    status_after,
)

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
TOKEN = "yJ2ZXIiOiIxLjAiLCJ0eXAiO.abc-_~+/="


def body(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "protocol": "HTTP",
        "sink": "https://endpoint.example.com/sink",
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN",
            "accessToken": TOKEN,
            "accessTokenExpiresUtc": "2027-01-01T00:00:00Z",
            "accessTokenType": "bearer",
        },
        "types": [SWAPPED],
        "config": {
            "subscriptionDetail": {"phoneNumber": "+123456789"},
            "subscriptionMaxEvents": 10,
            "subscriptionExpireTime": "2026-12-31T13:18:23.682+01:00",
        },
    }
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


def code_of(request: object) -> str:
    with pytest.raises(RequestRefused) as refused:
        parse_request(request, NOW)
    assert TOKEN not in refused.value.message
    return refused.value.code


def test_the_specs_example_request_is_accepted() -> None:
    got = parse_request(body(), NOW)
    assert got.sink == "https://endpoint.example.com/sink"
    assert got.phone_number == "+123456789"
    assert got.max_events == 10
    assert got.expire_time == datetime(2026, 12, 31, 12, 18, 23, 682_000, tzinfo=UTC)
    assert got.credential == SinkCredential(TOKEN, datetime(2027, 1, 1, tzinfo=UTC))
    assert got.types == (SWAPPED,)
    assert got.config() == {
        "subscriptionDetail": {"phoneNumber": "+123456789"},
        "subscriptionMaxEvents": 10,
        "subscriptionExpireTime": "2026-12-31T12:18:23.682Z",
    }
    assert got.ends_at() == got.expire_time


def test_a_minimal_three_legged_request() -> None:
    got = parse_request(
        {
            "protocol": "HTTP",
            "sink": "https://a.test/",
            "types": [SWAPPED],
            "config": {"subscriptionDetail": {}},
        },
        NOW,
    )
    assert (got.phone_number, got.credential, got.max_events, got.ends_at()) == (
        None,
        None,
        None,
        None,
    )
    assert got.config() == {"subscriptionDetail": {}}


def test_the_token_ends_the_subscription_a_margin_before_it_expires() -> None:
    credential = dict(body()["sinkCredential"], accessTokenExpiresUtc="2026-12-10T00:00:00Z")
    got = parse_request(body(sinkCredential=credential), NOW)
    assert got.ends_at() == datetime(2026, 12, 10, tzinfo=UTC) - TOKEN_MARGIN


def test_unix_seconds_as_in_the_specs_example_are_read_as_the_token_expiry() -> None:
    credential = dict(body()["sinkCredential"], accessTokenExpiresUtc="1828800000")
    got = parse_request(body(sinkCredential=credential), NOW)
    assert got.credential is not None
    assert got.credential.expires_at == datetime.fromtimestamp(1828800000, UTC)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"protocol": "MQTT3"}, "INVALID_PROTOCOL"),
        ({"protocol": "KAFKA"}, "INVALID_PROTOCOL"),
        ({"protocol": "SMTP"}, "INVALID_ARGUMENT"),
        ({"sink": "http://endpoint.example.com/sink"}, "INVALID_SINK"),
        ({"sink": "https://user:pw@endpoint.example.com/sink"}, "INVALID_SINK"),
        ({"sink": "https://[fe80::1%25eth0]/sink"}, "INVALID_SINK"),
        ({"sink": "https:///nohost"}, "INVALID_SINK"),
        ({"sink": "https://a.test/" + "x" * 2048}, "INVALID_SINK"),
        ({"sink": 7}, "INVALID_SINK"),
        ({"types": []}, "INVALID_ARGUMENT"),
        ({"types": [SWAPPED, SWAPPED]}, "INVALID_ARGUMENT"),
        (
            {"types": ["org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"]},
            "INVALID_ARGUMENT",
        ),
        ({"config": {}}, "INVALID_ARGUMENT"),
        ({"config": {"subscriptionDetail": {"phoneNumber": "123456789"}}}, "INVALID_ARGUMENT"),
        ({"config": {"subscriptionDetail": {}, "subscriptionMaxEvents": 0}}, "OUT_OF_RANGE"),
        ({"config": {"subscriptionDetail": {}, "subscriptionMaxEvents": True}}, "INVALID_ARGUMENT"),
        ({"config": {"subscriptionDetail": {}, "subscriptionMaxEvents": 1.5}}, "INVALID_ARGUMENT"),
        (
            {
                "config": {
                    "subscriptionDetail": {},
                    "subscriptionExpireTime": "2025-01-17T13:18:23Z",
                }
            },
            "OUT_OF_RANGE",
        ),
        (
            {"config": {"subscriptionDetail": {}, "subscriptionExpireTime": "2027-01-17T13:18:23"}},
            "INVALID_ARGUMENT",
        ),
        (
            {
                "config": {
                    "subscriptionDetail": {},
                    "subscriptionExpireTime": "2027-02-30T13:18:23Z",
                }
            },
            "INVALID_ARGUMENT",
        ),
        (
            {"sinkCredential": {"credentialType": "PLAIN", "identifier": "a", "secret": "b"}},
            "INVALID_CREDENTIAL",
        ),
        ({"sinkCredential": {"credentialType": "REFRESHTOKEN"}}, "INVALID_CREDENTIAL"),
        ({"sinkCredential": {"credentialType": "BASIC"}}, "INVALID_ARGUMENT"),
        ({"sinkCredential": {"credentialType": "ACCESSTOKEN"}}, "INVALID_ARGUMENT"),
        ({"protocolSettings": {"method": "PUT"}}, "INVALID_ARGUMENT"),
        ({"protocolSettings": {"headers": {"X-A": "b"}}}, "INVALID_ARGUMENT"),
    ],
)
def test_each_refusal_has_the_specs_code(changes: dict[str, Any], code: str) -> None:
    assert code_of(body(**changes)) == code


@pytest.mark.parametrize("missing", ["protocol", "sink", "types", "config"])
def test_a_missing_required_property_is_an_invalid_argument(missing: str) -> None:
    request = body()
    del request[missing]
    assert code_of(request) == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("credential_changes", "code"),
    [
        ({"accessTokenType": "mac"}, "INVALID_TOKEN"),
        ({"accessToken": "two words"}, "INVALID_TOKEN"),
        ({"accessToken": "x\r\nInjected: 1"}, "INVALID_TOKEN"),
        ({"accessToken": 12}, "INVALID_TOKEN"),
        ({"accessToken": "a" * 5000}, "INVALID_TOKEN"),
        ({"accessTokenExpiresUtc": "2026-12-03T18:00:30Z"}, "INVALID_CREDENTIAL"),
        ({"accessTokenExpiresUtc": "soon"}, "INVALID_ARGUMENT"),
    ],
)
def test_the_access_token_credential(credential_changes: dict[str, Any], code: str) -> None:
    credential = dict(body()["sinkCredential"], **credential_changes)
    assert code_of(body(sinkCredential=credential)) == code


def test_not_an_object_is_an_invalid_argument() -> None:
    not_objects: list[object] = [[], "x", None, 3]
    for request in not_objects:
        assert code_of(request) == "INVALID_ARGUMENT"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "protocol": st.sampled_from(["HTTP", "MQTT5", "x"]) | JSON,
            "sink": st.sampled_from(["https://a.test/s", "https://127.0.0.1:1/"]) | JSON,
            "types": st.just([SWAPPED]) | JSON,
            "config": st.fixed_dictionaries(
                {"subscriptionDetail": st.just({}) | JSON},
                optional={"subscriptionMaxEvents": JSON, "subscriptionExpireTime": JSON},
            )
            | JSON,
            "sinkCredential": st.fixed_dictionaries(
                {"credentialType": st.just("ACCESSTOKEN") | JSON},
                optional={
                    "accessToken": st.text(max_size=30) | JSON,
                    "accessTokenExpiresUtc": st.text(max_size=30) | JSON,
                    "accessTokenType": st.just("bearer") | JSON,
                },
            )
            | JSON,
        },
    )
)
def test_any_json_is_accepted_or_refused_with_a_spec_code(request: dict[str, Any]) -> None:
    codes = {
        "INVALID_ARGUMENT",
        "OUT_OF_RANGE",
        "INVALID_PROTOCOL",
        "INVALID_CREDENTIAL",
        "INVALID_TOKEN",
        "INVALID_SINK",
    }
    try:
        got = parse_request(request, NOW)
    except RequestRefused as refused:
        code = refused.code
    else:
        code = "accepted"
        assert got.sink.startswith("https://")
        assert parse_request({**request, "config": got.config()}, NOW).config() == got.config()
    assert code in {*codes, "accepted"}


@given(st.text(max_size=40))
def test_any_instant_text_is_read_or_refused(text: str) -> None:
    from ztsim.risk.subscriptions import parse_instant

    try:
        at = parse_instant(text, "t")
    except RequestRefused as refused:
        code = refused.code
    else:
        code = "read"
        assert at.tzinfo is not None
    assert code in {"INVALID_ARGUMENT", "read"}


def test_status_after_each_reason() -> None:
    assert status_after(TerminationReason.SUBSCRIPTION_DELETED) is Status.DELETED
    assert status_after(TerminationReason.NETWORK_TERMINATED) is Status.INACTIVE
    for reason in (
        TerminationReason.SUBSCRIPTION_EXPIRED,
        TerminationReason.MAX_EVENTS_REACHED,
        TerminationReason.ACCESS_TOKEN_EXPIRED,
    ):
        assert status_after(reason) is Status.EXPIRED


def test_which_limit_ended_it() -> None:
    assert reason_by_time(NOW, NOW) is TerminationReason.SUBSCRIPTION_EXPIRED
    assert reason_by_time(NOW + timedelta(days=1), NOW) is TerminationReason.ACCESS_TOKEN_EXPIRED
    assert reason_by_time(None, NOW) is TerminationReason.ACCESS_TOKEN_EXPIRED
    assert reason_by_count(2, 3) is None
    assert reason_by_count(3, 3) is TerminationReason.MAX_EVENTS_REACHED
    assert reason_by_count(10**6, None) is None


def test_outcomes_of_an_attempt() -> None:
    assert outcome(204, 1) is Outcome.DELIVERED
    assert outcome(200, MAX_ATTEMPTS) is Outcome.DELIVERED
    assert outcome(410, 1) is Outcome.GONE
    for transient in (None, 500, 503, 408, 429):
        assert outcome(transient, 1) is Outcome.RETRY
        assert outcome(transient, MAX_ATTEMPTS) is Outcome.FAILED
    for permanent in (301, 400, 401, 403, 404):
        assert outcome(permanent, 1) is Outcome.FAILED


def test_the_backoff_grows_and_is_bounded() -> None:
    waits = [retry_at(n, NOW) - NOW for n in range(1, MAX_ATTEMPTS)]
    assert waits == list(RETRY_DELAYS)
    assert waits == sorted(waits)
    assert sum(waits, timedelta()) < timedelta(hours=2)
