"""The condition language: grammar, how values compare, errors with columns, and `until`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy.conditions import MAX_LENGTH, is_device_path, is_sim_path, parse
from ztsim.policy.facts import IdentityKind, Posture, SimKind, SimSignals, Subject

from tests_clock import NOW

DEVICE = Posture(
    {
        "managed": True,
        "jailbroken": False,
        "os": "ios",
        "os_version": "17.2",
        "score": 7,
        "ratio": 0.5,
        "label": "true",
    },
    NOW,
)
WHO = Subject("o", "alice", IdentityKind.USER, sim_kind=SimKind.ESIM, posture=DEVICE)


def holds(text: str, who: Subject = WHO) -> bool:
    return parse(text).evaluate(who, NOW).holds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device.managed", True),
        ("device.jailbroken", False),
        ("device.os", False),  # a bare path holds only if it is true, not merely set
        ("device.label", False),  # nor if it is the string "true"
        ("device.absent", False),
        ("not device.absent", True),
        ("not not device.managed", True),
        ("device.managed and device.jailbroken", False),
        ("device.managed or device.jailbroken", True),
        ("device.jailbroken or device.managed and device.absent", False),  # and binds tighter
        ("(device.jailbroken or device.managed) and not device.absent", True),
        ('device.os in ["ios", "ipados"]', True),
        ('device.os in ["android"]', False),
        ("device.score in [1, 7]", True),
        ("device.os_version in []", False),
        ("device.managed == true", True),
        ("device.jailbroken != true", True),
        ('identity.kind == "user"', True),
        ('sim.kind == "esim"', True),
        ("sim.imei_mismatch", False),
        ("not sim.clone_suspected", True),
        ("true", True),
        ("false or 1 == 1", True),
    ],
)
def test_grammar(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('device.os_version >= "17.0"', True),
        ('device.os_version >= "17"', True),
        ('device.os_version == "17.2.0"', True),  # trailing zeros do not count
        ('device.os_version < "17.10"', True),  # versions, not text: 2 < 10
        ('device.os_version > "9.3.1"', True),
        ('"17.2" <= device.os_version', True),
        ('device.os_version > "17.2"', False),
        ('device.os < "zz"', True),  # not versions: compared as text
        ('device.os > "ios"', False),
        ("device.score > 6", True),
        ("device.score >= 7.0", True),  # ints and floats compare as numbers
        ("device.ratio < 1", True),
        ("device.score == -7", False),
    ],
)
def test_versions_numbers_and_text_compare_as_such(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        'device.score == "7"',  # a number is not a string
        "device.managed == 1",  # nor is true a number
        "device.managed > false",  # true and false have no order
        'device.absent != "x"',  # an absent value compares with nothing, even by !=
        "device.absent == device.absent",
        "device.os == 24h",
        "sim.swap_age < 5",  # a duration is not a number
        "device.os_version > 16",
    ],
)
def test_comparisons_across_types_or_with_absent_values_do_not_hold(text: str) -> None:
    assert holds(text) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1 to 500"),
        ("   ", "1 to 500"),
        ("x" * (MAX_LENGTH + 1), "1 to 500"),
        ("device.managed and", "a value is missing at the end"),
        ("device.managed && device.x", "unexpected text at column 16"),
        ("device.managed device.x", "unexpected token at column 16"),
        ("sim.swapped", "no such fact sim.swapped at column 1"),
        ("not identity.name", "no such fact identity.name at column 5"),
        ('device.os in "ios"', "`in` takes a list"),
        ("(device.managed", "`)` expected at the end"),
        ('device.os in ["a" "b"]', "`,` or `]` expected at column 19"),
        ("device.os in [device.x]", "a list holds strings, numbers or true/false at column 15"),
        ("device.os in [24h]", "a list holds strings, numbers or true/false"),
        ("managed", "unexpected 'managed' at column 1"),
        ("device.os == 'ios'", "unexpected text at column 14"),
    ],
)
def test_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse(text)


def test_allowed_limits_what_a_condition_may_read() -> None:
    assert parse("device.managed", allowed=is_device_path).paths == {"device.managed"}
    with pytest.raises(InvalidInput, match=r"sim\.swap_age cannot be used here"):
        parse("device.managed and sim.swap_age < 1h", allowed=is_device_path)
    with pytest.raises(InvalidInput, match=r"device\.managed cannot be used here"):
        parse("device.managed", allowed=is_sim_path)
    parsed = parse('  identity.kind == "service" or sim.imei_mismatch ', allowed=is_sim_path)
    assert parsed.text == 'identity.kind == "service" or sim.imei_mismatch'
    assert parsed.paths == {"identity.kind", "sim.imei_mismatch"}


def _swapped(ago: timedelta | None) -> Subject:
    return Subject("o", signals=SimSignals(swapped_at=None if ago is None else NOW - ago))


def test_a_sim_reissued_an_hour_ago_matches_a_recent_swap() -> None:
    recent = parse("sim.swap_age < 24h")
    outcome = recent.evaluate(_swapped(timedelta(hours=1)), NOW)
    assert outcome.holds
    assert outcome.until == NOW + timedelta(hours=23)  # when the swap stops being recent
    later = recent.evaluate(_swapped(timedelta(hours=1)), NOW + timedelta(hours=23))
    assert not later.holds
    assert later.until is None  # it only gets older


def test_swap_age_until_for_every_comparison_and_no_swap() -> None:
    who = _swapped(timedelta(hours=1))
    for text, holds_now in [
        ("sim.swap_age > 2h", False),
        ("sim.swap_age >= 2h", False),
        ("sim.swap_age <= 2h", True),
        ("2h > sim.swap_age", True),  # written the other way round
        ("sim.swap_age != 2h", True),
        ("not sim.swap_age < 2h", False),
        ("sim.swap_age < 2h or sim.swap_age > 3d", True),
    ]:
        outcome = parse(text).evaluate(who, NOW)
        assert outcome.holds is holds_now, text
        assert outcome.until == NOW + timedelta(hours=1), text
    never = parse("sim.swap_age < 24h").evaluate(_swapped(None), NOW)
    assert never == parse("sim.swap_age < 24h").evaluate(_swapped(None), NOW)
    assert not never.holds
    assert never.until is None
    assert parse("sim.swap_age > 30d").evaluate(_swapped(None), NOW).holds  # forever ago


def test_a_swap_reported_in_the_future_counts_as_just_now() -> None:
    ahead = Subject("o", signals=SimSignals(swapped_at=NOW + timedelta(minutes=5)))
    outcome = parse("sim.swap_age < 1h").evaluate(ahead, NOW)
    assert outcome.holds
    assert outcome.until == NOW + timedelta(hours=1, minutes=5)


def test_durations_units() -> None:
    who = _swapped(timedelta(seconds=100))
    assert holds("sim.swap_age > 90s", who)
    assert holds("sim.swap_age < 2m", who)
    assert holds("sim.swap_age < 1d", who)
    assert not holds("sim.swap_age >= 1h", who)
