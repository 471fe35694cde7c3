"""The answers of retrieve-date and check from a line, the monitored period and a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.risk.swap_answers import (
    DateAnswer,
    Kind,
    Line,
    NotApplicable,
    OutOfRange,
    check,
    checked_max_age,
    retrieve_date,
    rfc3339,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def line(ago: timedelta | None, state: str = "active", in_device: bool = True) -> Line:
    return Line(state, in_device, None if ago is None else NOW - ago)


def test_retrieve_date_gives_the_latest_change_within_the_period() -> None:
    answer = retrieve_date(line(timedelta(days=119)), Kind.SIM, 120, NOW)
    assert answer == DateAnswer(NOW - timedelta(days=119), None)
    assert answer.body("latestSimChange") == {"latestSimChange": "2026-02-02T12:00:00.000Z"}
    edge = retrieve_date(line(timedelta(days=120)), Kind.SIM, 120, NOW)
    assert edge.latest == NOW - timedelta(days=120)  # the period's first instant is in it


def test_retrieve_date_beyond_the_period_or_without_history_is_null_with_the_period() -> None:
    for ago in (timedelta(days=120, seconds=1), None):
        answer = retrieve_date(line(ago), Kind.DEVICE, 120, NOW)
        assert answer == DateAnswer(None, 120)
        assert answer.body("latestDeviceChange") == {
            "latestDeviceChange": None,
            "monitoredPeriod": 120,
        }


@given(
    ago=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=200)),
    max_age=st.integers(min_value=1, max_value=2400),
)
def test_check_is_true_exactly_when_the_change_is_younger_than_max_age(
    ago: timedelta, max_age: int
) -> None:
    swapped = check(line(ago), Kind.SIM, max_age, 120, NOW)
    assert swapped is (ago < timedelta(hours=max_age))


def test_check_without_history_is_false() -> None:
    assert check(line(None), Kind.SIM, 2400, 120, NOW) is False


@pytest.mark.parametrize("max_age", [0, -5, 2401, 10**12])
def test_max_age_outside_the_spec_range_is_out_of_range(max_age: int) -> None:
    with pytest.raises(OutOfRange, match="between 1 and 2400"):
        checked_max_age(max_age, 3650)


def test_max_age_beyond_the_monitored_period_names_the_limit() -> None:
    assert checked_max_age(720, 30) == 720
    with pytest.raises(OutOfRange, match=r"30 days \(720 hours\)"):
        checked_max_age(721, 30)
    with pytest.raises(OutOfRange):
        check(line(None), Kind.SIM, 721, 30, NOW)


@pytest.mark.parametrize("state", ["stock", "assigned", "retired"])
def test_a_sim_not_in_service_is_not_applicable(state: str) -> None:
    for kind in Kind:
        with pytest.raises(NotApplicable):
            retrieve_date(line(timedelta(hours=1), state), kind, 120, NOW)
        with pytest.raises(NotApplicable):
            check(line(timedelta(hours=1), state), kind, 240, 120, NOW)


def test_a_number_just_swapped_onto_a_sim_not_yet_active_is_answered() -> None:
    # A re-issued eSIM whose profile is not installed yet: the swap is what matters.
    swapping = Line("assigned", False, NOW - timedelta(minutes=5), moved_here=True)
    assert check(swapping, Kind.SIM, 1, 120, NOW) is True
    assert retrieve_date(swapping, Kind.SIM, 120, NOW).latest == NOW - timedelta(minutes=5)
    # Assigned with a new subscription (the number came with it), or retired: not a line.
    for state, moved in (("assigned", False), ("retired", True), ("stock", True)):
        with pytest.raises(NotApplicable):
            check(Line(state, False, NOW, moved_here=moved), Kind.SIM, 1, 120, NOW)


def test_a_suspended_line_is_answered() -> None:
    assert check(line(timedelta(hours=1), "suspended"), Kind.SIM, 2, 120, NOW) is True


def test_device_swap_needs_a_number_that_was_ever_in_a_device() -> None:
    never = line(None, in_device=False)
    with pytest.raises(NotApplicable, match="never been in a device"):
        check(never, Kind.DEVICE, 240, 120, NOW)
    with pytest.raises(NotApplicable):
        retrieve_date(never, Kind.DEVICE, 120, NOW)
    assert check(never, Kind.SIM, 240, 120, NOW) is False  # SIM Swap has no such rule
    seen = line(timedelta(days=1), in_device=False)  # a device change kept, binding gone
    assert check(seen, Kind.DEVICE, 240, 120, NOW) is True


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_rfc3339_is_utc_with_milliseconds_and_a_zone(at: datetime) -> None:
    text = rfc3339(at)
    assert text.endswith("Z")
    assert len(text) == 24
    parsed = datetime.fromisoformat(text)
    assert abs(parsed - at) < timedelta(milliseconds=1)
