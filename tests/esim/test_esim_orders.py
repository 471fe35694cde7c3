"""The pure order lifecycle: every allowed step, every refusal, and no way back."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import Conflict
from ztsim.esim.orders import (
    MatchingIdUsed,
    NotificationPoint,
    OrderRefused,
    OrderState,
    ProgressStatus,
    effective_state,
    on_cancel,
    on_progress,
    on_reissue,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)
S, P, St = OrderState, NotificationPoint, ProgressStatus
OK = St.SUCCESS


def test_errors_are_conflicts() -> None:
    assert issubclass(MatchingIdUsed, OrderRefused)
    assert issubclass(OrderRefused, Conflict)


def test_the_happy_path() -> None:
    state = S.ISSUED
    for point, expected in (
        (P.ELIGIBILITY_CHECK, S.ISSUED),
        (P.BPP_DOWNLOAD, S.DOWNLOADED),
        (P.BPP_INSTALLATION, S.INSTALLED),
        (P.PROFILE_ENABLED, S.ENABLED),
    ):
        state = on_progress(state, LATER, NOW, point, OK)
        assert state is expected


@pytest.mark.parametrize(
    ("state", "point", "target"),
    [
        (S.ISSUED, P.BPP_INSTALLATION, S.INSTALLED),
        (S.ISSUED, P.PROFILE_ENABLED, S.ENABLED),
        (S.DOWNLOADED, P.PROFILE_ENABLED, S.ENABLED),
    ],
)
def test_lost_reports_may_be_skipped(
    state: OrderState, point: NotificationPoint, target: OrderState
) -> None:
    assert on_progress(state, LATER, NOW, point, St.WARNING) is target


@pytest.mark.parametrize("state", [S.DOWNLOADED, S.INSTALLED])
def test_a_matching_id_cannot_be_used_twice(state: OrderState) -> None:
    with pytest.raises(MatchingIdUsed):
        on_progress(state, LATER, NOW, P.BPP_DOWNLOAD, OK)


@pytest.mark.parametrize("state", [S.EXPIRED, S.CANCELLED, S.FAILED, S.ENABLED])
@pytest.mark.parametrize("point", list(NotificationPoint))
@pytest.mark.parametrize("status", list(ProgressStatus))
def test_closed_orders_refuse_every_report(
    state: OrderState, point: NotificationPoint, status: ProgressStatus
) -> None:
    with pytest.raises(OrderRefused, match=state.value):
        on_progress(state, LATER, NOW, point, status)


def test_an_issued_order_past_its_expiry_is_expired() -> None:
    assert effective_state(S.ISSUED, NOW, NOW) is S.EXPIRED
    assert effective_state(S.ISSUED, NOW + timedelta(seconds=1), NOW) is S.ISSUED
    # Once downloaded, the code's expiry no longer matters.
    assert effective_state(S.DOWNLOADED, NOW, NOW + timedelta(days=1)) is S.DOWNLOADED
    with pytest.raises(OrderRefused, match="expired"):
        on_progress(S.ISSUED, NOW, NOW, P.BPP_DOWNLOAD, OK)


@pytest.mark.parametrize("state", [S.ISSUED, S.DOWNLOADED, S.INSTALLED])
def test_failures_and_expiry_reported_by_the_smdp(state: OrderState) -> None:
    assert on_progress(state, LATER, NOW, P.BPP_INSTALLATION, St.FAILED) is S.FAILED
    assert on_progress(state, LATER, NOW, P.BPP_DOWNLOAD, St.EXPIRED) is S.EXPIRED


def test_pre_download_steps_come_before_the_download() -> None:
    assert on_progress(S.ISSUED, LATER, NOW, P.CONFIRMATION_FAILURE, OK) is S.ISSUED
    with pytest.raises(OrderRefused):
        on_progress(S.INSTALLED, LATER, NOW, P.ELIGIBILITY_CHECK, OK)
    with pytest.raises(OrderRefused):
        on_progress(S.INSTALLED, LATER, NOW, P.BPP_INSTALLATION, OK)


def test_cancel() -> None:
    assert on_cancel(S.ISSUED, LATER, NOW) is S.CANCELLED
    assert on_cancel(S.DOWNLOADED, LATER, NOW) is S.CANCELLED
    for state in (S.INSTALLED, S.ENABLED):
        with pytest.raises(OrderRefused, match="re-issue"):
            on_cancel(state, LATER, NOW)
    for state in (S.CANCELLED, S.FAILED, S.EXPIRED):
        with pytest.raises(OrderRefused):
            on_cancel(state, LATER, NOW)
    with pytest.raises(OrderRefused, match="expired"):
        on_cancel(S.ISSUED, NOW, NOW)


def test_reissue() -> None:
    for state in (S.ISSUED, S.DOWNLOADED, S.INSTALLED, S.ENABLED):
        assert on_reissue(state, LATER, NOW) is S.CANCELLED
    assert on_reissue(S.FAILED, LATER, NOW) is S.FAILED
    assert on_reissue(S.ISSUED, NOW, NOW) is S.EXPIRED
    with pytest.raises(OrderRefused):
        on_reissue(S.CANCELLED, LATER, NOW)


_RANK = {S.ISSUED: 0, S.DOWNLOADED: 1, S.INSTALLED: 2, S.ENABLED: 3}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(NotificationPoint)),
            st.sampled_from(list(ProgressStatus)),
            st.integers(min_value=0, max_value=60),
        ),
        max_size=12,
    )
)
def test_any_report_sequence_moves_forward_or_is_refused(
    reports: list[tuple[NotificationPoint, ProgressStatus, int]],
) -> None:
    state = S.ISSUED
    for point, status, day in reports:
        now = NOW + timedelta(days=day)
        try:
            nxt = on_progress(state, LATER, now, point, status)
        except OrderRefused:
            continue
        if nxt in _RANK and state in _RANK:
            assert _RANK[nxt] >= _RANK[state]
        if state is not S.ISSUED:
            # Once a closed state is reached, nothing leaves it.
            assert state in _RANK
        state = nxt
