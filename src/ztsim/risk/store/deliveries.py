"""CloudEvents waiting for their sink, in `camara_deliveries`.

One row per (subscription, source): a number change read twice queues once. A
subscription's deliveries go out one at a time in the order they were queued, so its
subscription-ended event never overtakes a `swapped` one still being retried. A
notifier claims a delivery (moves its next attempt past the POST's duration) before
sending it, so two notifiers do not both send it; a claim left by a crashed notifier
simply runs out. Every attempt is a `camara.delivery` event (never the credential).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from ztsim.db import schema
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.risk.subscriptions import Outcome as Result
from ztsim.risk.subscriptions import retry_at
from ztsim.usecase import use_case

_d = schema.camara_deliveries
CLAIM = timedelta(minutes=2)  # longer than a POST may take (the outbound timeout)


class State(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    org_id: str
    subscription_id: str
    source: str
    event: dict[str, Any]
    state: State
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _delivery(m: Any) -> Delivery:
    return Delivery(
        id=m["id"],
        org_id=m["org_id"],
        subscription_id=m["subscription_id"],
        source=m["source"],
        event=dict(m["event"]),
        state=State(m["state"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        created_at=m["created_at"],
        delivered_at=m["delivered_at"],
    )


def enqueue(
    conn: Connection,
    *,
    org_id: str,
    subscription_id: str,
    source: str,
    event: dict[str, Any],
    now: datetime,
) -> bool:
    """Queue `event` for the subscription's sink; False if this source was queued before."""
    values = {
        "org_id": org_id,
        "subscription_id": subscription_id,
        "source": source,
        "event": event,
        "state": State.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_d)
        .values(values)
        .on_conflict_do_nothing(index_elements=["subscription_id", "source"])
        .returning(_d.c.id)  # rowcount is no answer here: PostgreSQL's RETURNING hides it
    )
    return conn.execute(statement).first() is not None


def due(conn: Connection, now: datetime, limit: int = 50) -> list[Delivery]:
    """Pending deliveries whose time has come, each the oldest pending of its subscription."""
    earlier = aliased(_d)
    blocked = exists().where(
        and_(
            earlier.c.subscription_id == _d.c.subscription_id,
            earlier.c.state == State.PENDING.value,
            earlier.c.id < _d.c.id,
        )
    )
    rows = conn.execute(
        select(_d)
        .where(_d.c.state == State.PENDING.value, _d.c.next_attempt_at <= now, ~blocked)
        .order_by(_d.c.next_attempt_at, _d.c.id)
        .limit(limit)
    ).all()
    return [_delivery(r._mapping) for r in rows]


def for_subscription(conn: Connection, subscription_id: str) -> list[Delivery]:
    rows = conn.execute(
        select(_d).where(_d.c.subscription_id == subscription_id).order_by(_d.c.id)
    ).all()
    return [_delivery(r._mapping) for r in rows]


def claim(conn: Connection, delivery: Delivery, now: datetime) -> bool:
    """Take `delivery` for one attempt; False if another notifier took it first."""
    taken = conn.execute(
        update(_d)
        .where(
            _d.c.id == delivery.id,
            _d.c.state == State.PENDING.value,
            _d.c.next_attempt_at == delivery.next_attempt_at,
        )
        .values(next_attempt_at=now + CLAIM)
    ).rowcount
    return bool(taken)


def record(
    conn: Connection,
    delivery: Delivery,
    result: Result,
    *,
    now: datetime,
    http_status: int | None = None,
    error: str | None = None,
) -> None:
    """The attempt's outcome: delivered, retried later, or given up; one event each."""
    attempts = delivery.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    next_at = None
    if result is Result.DELIVERED:
        values.update(state=State.DELIVERED.value, delivered_at=now)
    elif result is Result.RETRY:
        next_at = retry_at(attempts, now)
        values.update(next_attempt_at=next_at)
    else:
        values.update(state=State.FAILED.value)
    with use_case(conn, now) as uc:
        conn.execute(update(_d).where(_d.c.id == delivery.id).values(values))
        uc.event(
            NewEvent(
                delivery.org_id,
                "camara.delivery",
                "ztsim",
                subject_of("subscription", delivery.subscription_id),
                Outcome.SUCCESS if result is Result.DELIVERED else Outcome.FAILURE,
                reason="" if error is None else error,
                payload={
                    "delivery_id": delivery.id,
                    "event_id": delivery.event.get("id"),
                    "type": delivery.event.get("type"),
                    "attempt": attempts,
                    "result": result.value,
                    "http_status": http_status,
                    "next_attempt_at": None if next_at is None else next_at.isoformat(),
                },
            )
        )


def abandon_pending(conn: Connection, subscription_id: str, reason: str) -> int:
    """Give up every pending delivery of a subscription whose sink is gone."""
    return conn.execute(
        update(_d)
        .where(_d.c.subscription_id == subscription_id, _d.c.state == State.PENDING.value)
        .values(state=State.FAILED.value, last_error=reason)
    ).rowcount
