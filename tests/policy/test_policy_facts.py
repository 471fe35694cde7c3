"""Subjects, SIM signals and posture reports check themselves and compare by value."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy.facts import (
    MAX_ATTRIBUTES,
    MAX_TEXT,
    IdentityKind,
    Posture,
    SimKind,
    SimSignals,
    Subject,
    check_attribute,
)

from tests_clock import NOW


def test_posture_keeps_scalars_and_compares_by_value_whatever_the_order() -> None:
    a = Posture({"managed": True, "os_version": "17.2", "score": 3}, NOW)
    b = Posture({"score": 3, "os_version": "17.2", "managed": True}, NOW)
    assert a == b
    assert hash(a) == hash(b)
    assert a != Posture({"managed": False, "os_version": "17.2", "score": 3}, NOW)
    assert a != Posture(dict(a.attributes), NOW, source="intune")
    assert a != Posture(dict(a.attributes), NOW, NOW + timedelta(hours=1))
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Managed", True, "lower-case"),
        ("1st", True, "lower-case"),
        ("x" * 65, True, "lower-case"),
        ("ratio", math.inf, "finite"),
        ("ratio", math.nan, "finite"),
        ("os", "x" * (MAX_TEXT + 1), "longer than"),
        ("tags", ["a"], "string, number or true/false"),
        ("none", None, "string, number or true/false"),
    ],
)
def test_a_bad_attribute_is_named(name: str, value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_attribute(name, value)
    with pytest.raises(InvalidInput, match=message):
        Posture({name: value}, NOW)  # type: ignore[dict-item]


def test_good_attributes_pass_unchanged() -> None:
    assert check_attribute("managed", True) is True
    assert check_attribute("score", 2.5) == 2.5
    assert check_attribute("os", "x" * MAX_TEXT) == "x" * MAX_TEXT


def test_a_posture_report_is_bounded_and_its_times_are_sane() -> None:
    Posture({f"a{i}": i for i in range(MAX_ATTRIBUTES)}, NOW)
    with pytest.raises(InvalidInput, match="at most"):
        Posture({f"a{i}": i for i in range(MAX_ATTRIBUTES + 1)}, NOW)
    with pytest.raises(InvalidInput, match="time zone"):
        Posture({}, datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="time zone"):
        Posture({}, NOW, datetime(2027, 1, 1))
    with pytest.raises(InvalidInput, match="expires after"):
        Posture({}, NOW, NOW)


def test_sim_signals_need_aware_times() -> None:
    assert SimSignals(swapped_at=NOW).swapped_at == NOW
    with pytest.raises(InvalidInput, match="swapped_at"):
        SimSignals(swapped_at=datetime(2026, 1, 1))
    assert SimSignals(swap_recent_until=NOW).swap_recent_until == NOW
    with pytest.raises(InvalidInput, match="swap_recent_until"):
        SimSignals(swap_recent_until=datetime(2026, 1, 1))


def test_a_subject_belongs_to_an_org_and_normalises_its_values() -> None:
    with pytest.raises(InvalidInput, match="org"):
        Subject("")
    who = Subject(
        "o",
        "alice",
        "user",  # type: ignore[arg-type]
        {"staff"},  # type: ignore[arg-type]
        ["trucks"],  # type: ignore[arg-type]
        "esim",  # type: ignore[arg-type]
    )
    assert who.identity_kind is IdentityKind.USER
    assert who.sim_kind is SimKind.ESIM
    assert who.group_ids == frozenset({"staff"})
    assert who.fleet_ids == frozenset({"trucks"})
    assert hash(who) == hash(
        Subject(
            "o",
            "alice",
            IdentityKind.USER,
            frozenset({"staff"}),
            frozenset({"trucks"}),
            SimKind.ESIM,
        )
    )
    with pytest.raises(ValueError, match="robot"):
        Subject("o", identity_kind="robot")  # type: ignore[arg-type]
