"""Posture checks pass only on a fresh report; missing, stale and expired reports fail closed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy.checks import CheckStatus, PostureCheck, check_name
from ztsim.policy.facts import Posture, Scalar, Subject

from tests_clock import NOW

MODERN = PostureCheck("modern", 'device.managed and device.os_version >= "17.0"')


def _device(ago: timedelta, expires_in: timedelta | None = None, **attributes: Scalar) -> Subject:
    observed = NOW - ago
    expires = None if expires_in is None else NOW + expires_in
    facts: dict[str, Scalar] = {"managed": True, "os_version": "17.1", **attributes}
    posture = Posture(facts, observed, expires)
    return Subject("o", "d", posture=posture)


def test_a_fresh_report_passes_or_fails_and_says_when_it_goes_stale() -> None:
    passed = MODERN.evaluate(_device(timedelta(hours=1)), NOW)
    assert passed.status is CheckStatus.PASSED
    assert passed.passed
    assert passed.until == NOW + timedelta(hours=23)  # the default max age is a day
    failed = MODERN.evaluate(_device(timedelta(hours=1), os_version="16.7"), NOW)
    assert failed.status is CheckStatus.FAILED
    assert not failed.passed
    assert failed.until == NOW + timedelta(hours=23)


def test_no_report_is_missing() -> None:
    result = MODERN.evaluate(Subject("o", "d"), NOW)
    assert result.status is CheckStatus.MISSING
    assert not result.passed
    assert result.until is None


def test_a_posture_fact_past_its_age_fails_closed() -> None:
    check = PostureCheck("modern", MODERN.expression, max_age=timedelta(hours=4))
    young = _device(timedelta(hours=3, minutes=59))
    assert check.evaluate(young, NOW).status is CheckStatus.PASSED
    old = _device(timedelta(hours=4))  # exactly its maximum age: no longer trusted
    assert check.evaluate(old, NOW).status is CheckStatus.STALE
    assert check.evaluate(old, NOW).until is None
    assert not check.evaluate(_device(timedelta(days=3)), NOW).passed


def test_a_report_past_its_own_expiry_is_stale_even_if_young() -> None:
    expiring = _device(timedelta(minutes=10), expires_in=timedelta(minutes=5))
    result = MODERN.evaluate(expiring, NOW)
    assert result.status is CheckStatus.PASSED
    assert result.until == NOW + timedelta(minutes=5)  # the expiry comes before max age
    assert MODERN.evaluate(expiring, NOW + timedelta(minutes=5)).status is CheckStatus.STALE


def test_a_stale_report_is_stale_whatever_it_says() -> None:
    failing = _device(timedelta(days=2), os_version="1.0")
    assert MODERN.evaluate(failing, NOW).status is CheckStatus.STALE


@pytest.mark.parametrize(
    ("name", "expression", "max_age", "message"),
    [
        ("Modern", "device.managed", timedelta(hours=1), "posture check name"),
        ("-modern", "device.managed", timedelta(hours=1), "posture check name"),
        ("m" * 64, "device.managed", timedelta(hours=1), "posture check name"),
        ("modern", "device.managed", timedelta(0), "max_age is 1 s to 90 days"),
        ("modern", "device.managed", timedelta(days=91), "max_age is 1 s to 90 days"),
        ("modern", "sim.swap_age < 1h", timedelta(hours=1), "cannot be used here"),
        ("modern", "device.managed and", timedelta(hours=1), "a value is missing"),
    ],
)
def test_a_bad_check_is_refused(
    name: str, expression: str, max_age: timedelta, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        PostureCheck(name, expression, max_age)


def test_names_and_expressions_are_kept_normalised() -> None:
    assert check_name("a") == "a"
    assert check_name("9-lives") == "9-lives"
    check = PostureCheck("c", "  device.managed  ", timedelta(seconds=1))
    assert check.expression == "device.managed"
    assert check == PostureCheck("c", "device.managed", timedelta(seconds=1))
