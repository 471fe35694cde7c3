"""The eSIM order lifecycle, pure: states in, state out, no I/O.

`issued -> downloaded -> installed -> enabled`, plus `expired`, `cancelled` and
`failed`. The SM-DP+ reports progress as ES2+ HandleDownloadProgressInfo does
(SGP.22 §5.3.5): a notification point and its status.

Decisions beyond the diagram:
- Progress may skip steps (a lost callback must not wedge an order), never go back.
- The matching ID is used up by the profile download: a second download report for
  the same order is refused (`MatchingIdUsed`), so is any report that does not move
  the order forward, and every report on an expired, cancelled, failed or enabled order.
- An issued order past its expiry is `expired` whatever the database still says
  (`effective_state`); nothing has to sweep it first for callbacks to be refused.
- Cancel is for orders not yet on a phone (`issued`, `downloaded`); an installed or
  enabled profile is replaced with a re-issue, which records a SIM swap.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from ztsim.errors import Conflict


class OrderState(StrEnum):
    ISSUED = "issued"
    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    ENABLED = "enabled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


class NotificationPoint(IntEnum):
    # SGP.22 §5.3.5 ES2+.HandleDownloadProgressInfo, notificationPointId values.
    ELIGIBILITY_CHECK = 1
    CONFIRMATION_FAILURE = 2
    BPP_DOWNLOAD = 3
    BPP_INSTALLATION = 4
    # Local value: the eUICC's "enable" notification as the SM-DP+ relays it (SGP.22 §3.5).
    PROFILE_ENABLED = 101


class ProgressStatus(StrEnum):
    # SGP.22 §5.3.5 / §5.2.6: notificationPointStatus.status values.
    SUCCESS = "Executed-Success"
    WARNING = "Executed-WithWarning"
    FAILED = "Failed"
    EXPIRED = "Expired"


class OrderRefused(Conflict):
    """The order's state does not admit the report or action."""


class MatchingIdUsed(OrderRefused):
    """The profile of this order was downloaded already: its matching ID is spent."""


_FORWARD = (OrderState.ISSUED, OrderState.DOWNLOADED, OrderState.INSTALLED, OrderState.ENABLED)
_TARGET = {
    NotificationPoint.BPP_DOWNLOAD: OrderState.DOWNLOADED,
    NotificationPoint.BPP_INSTALLATION: OrderState.INSTALLED,
    NotificationPoint.PROFILE_ENABLED: OrderState.ENABLED,
}
ACCEPTS_PROGRESS = frozenset({OrderState.ISSUED, OrderState.DOWNLOADED, OrderState.INSTALLED})
CANCELLABLE = frozenset({OrderState.ISSUED, OrderState.DOWNLOADED})
REISSUABLE = frozenset(OrderState) - {OrderState.CANCELLED}


def effective_state(state: OrderState, expires_at: datetime, now: datetime) -> OrderState:
    """The state as of `now`: an issued order past its expiry is expired."""
    if state is OrderState.ISSUED and now >= expires_at:
        return OrderState.EXPIRED
    return state


def on_progress(
    state: OrderState,
    expires_at: datetime,
    now: datetime,
    point: NotificationPoint,
    status: ProgressStatus,
) -> OrderState:
    """The state after a progress report, or OrderRefused / MatchingIdUsed."""
    current = effective_state(state, expires_at, now)
    if current not in ACCEPTS_PROGRESS:
        raise OrderRefused(f"the order is {current.value} and takes no progress reports")
    if status is ProgressStatus.FAILED:
        return OrderState.FAILED
    if status is ProgressStatus.EXPIRED:
        return OrderState.EXPIRED
    target = _TARGET.get(point)
    if target is None:
        # Eligibility and confirmation steps happen before the download.
        if current is not OrderState.ISSUED:
            raise OrderRefused(f"the order is {current.value}: {point.name.lower()} comes earlier")
        return current
    if _FORWARD.index(target) <= _FORWARD.index(current):
        if target is OrderState.DOWNLOADED:
            raise MatchingIdUsed("the matching ID of this order was used already")
        raise OrderRefused(f"the order is {current.value} already")
    return target


def on_cancel(state: OrderState, expires_at: datetime, now: datetime) -> OrderState:
    current = effective_state(state, expires_at, now)
    if current not in CANCELLABLE:
        raise OrderRefused(
            f"an order that is {current.value} cannot be cancelled"
            + (" (re-issue it instead)" if current in REISSUABLE else "")
        )
    return OrderState.CANCELLED


def on_reissue(state: OrderState, expires_at: datetime, now: datetime) -> OrderState:
    """The old order's state once a new one replaces it."""
    current = effective_state(state, expires_at, now)
    if current not in REISSUABLE:
        raise OrderRefused(f"an order that is {current.value} cannot be re-issued")
    if current in (OrderState.EXPIRED, OrderState.FAILED):
        return current
    return OrderState.CANCELLED
