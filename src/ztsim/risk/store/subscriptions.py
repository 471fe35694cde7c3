"""CAMARA SIM swap subscriptions in `camara_subscriptions`: created, read and deleted by
the API client that owns them, ended by the notifier.

The sink credential is sealed (associated data: the subscription id, as key rotation
re-wraps it) and is opened only by the notifier; no answer, event or error carries it.
Ending a subscription queues its `subscription-ended` notification in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import Conflict, NotFound
from ztsim.events.schema import subject_of
from ztsim.risk import cloudevents
from ztsim.risk.cloudevents import TerminationReason
from ztsim.risk.store import deliveries
from ztsim.risk.subscriptions import (
    Status,
    SubscriptionRequest,
    parse_instant,
    status_after,
)
from ztsim.sealing import Sealer
from ztsim.usecase import use_case

_s = schema.camara_subscriptions
_sims = schema.sims
# A SIM in these states holds its number in service (inventory's lifecycle).
_IN_SERVICE = ("assigned", "active", "suspended")
MAX_ACTIVE_PER_CLIENT = 1000  # a bound of ours: past it, 429 QUOTA_EXCEEDED
ENDED_SOURCE = "ended"  # the delivery source of a subscription's subscription-ended event


class NumberNotServed(NotFound):
    """No SIM of the org holds the number in service (another org's number included)."""

    def __init__(self) -> None:
        super().__init__("the service is not available for the provided identifier")


class QuotaExceeded(Conflict):
    def __init__(self) -> None:
        super().__init__("too many active subscriptions for this client")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    org_id: str
    client_id: str
    phone_number: str  # +E.164: the number watched, whether or not the request named it
    sink: str
    types: tuple[str, ...]
    config: dict[str, Any]  # the spec's Config, as accepted
    max_events: int | None
    ends_at: datetime | None  # when time ends it (its expire time, or its token's)
    events_sent: int
    status: Status
    created_at: datetime
    ended_at: datetime | None
    ended_reason: str | None

    @property
    def named_number(self) -> str | None:
        """The number as the request named it: None for a 3-legged subscription."""
        number = self.config["subscriptionDetail"].get("phoneNumber")
        return None if number is None else str(number)

    @property
    def expire_time(self) -> datetime | None:
        text = self.config.get("subscriptionExpireTime")
        return None if text is None else parse_instant(text, "subscriptionExpireTime")

    def as_json(self) -> dict[str, Any]:
        """The spec's Subscription (HTTPSubscriptionResponse); never the credential."""
        answer: dict[str, Any] = {
            "id": self.id,
            "protocol": "HTTP",
            "sink": self.sink,
            "types": list(self.types),
            "config": self.config,
            "startsAt": cloudevents.rfc3339(self.created_at),
            "status": self.status.value,
        }
        if "subscriptionExpireTime" in self.config:
            answer["expiresAt"] = self.config["subscriptionExpireTime"]
        return answer


def _subscription(m: Any) -> Subscription:
    return Subscription(
        id=m["id"],
        org_id=m["org_id"],
        client_id=m["client_id"],
        phone_number=m["phone_number"],
        sink=m["sink"],
        types=tuple(m["types"]),
        config=dict(m["config"]),
        max_events=m["max_events"],
        ends_at=m["expires_at"],
        events_sent=m["events_sent"],
        status=Status(m["state"]),
        created_at=m["created_at"],
        ended_at=m["ended_at"],
        ended_reason=m["ended_reason"],
    )


def _number_served(conn: Connection, org_id: str, phone_number: str) -> bool:
    found = conn.execute(
        select(_sims.c.id).where(
            _sims.c.org_id == org_id,
            _sims.c.msisdn == phone_number.removeprefix("+"),  # sims keep digits only
            _sims.c.state.in_(_IN_SERVICE),
        )
    ).first()
    return found is not None


def create(
    conn: Connection,
    sealer: Sealer,
    *,
    org_id: str,
    client_id: str,
    phone_number: str,
    request: SubscriptionRequest,
    now: datetime,
    make_id: Callable[[], str] = new_id,
) -> Subscription:
    """A new ACTIVE subscription on `phone_number` (+E.164) for the client; NumberNotServed
    unless a SIM of the org holds it in service, QuotaExceeded past the client's bound."""
    with use_case(conn, now) as uc:
        if not _number_served(conn, org_id, phone_number):
            raise NumberNotServed()
        active = conn.execute(
            select(func.count())
            .select_from(_s)
            .where(_s.c.client_id == client_id, _s.c.state == Status.ACTIVE.value)
        ).scalar_one()
        if active >= MAX_ACTIVE_PER_CLIENT:
            raise QuotaExceeded()
        sub_id = make_id()
        ends_at = request.ends_at()
        sealed = None
        if request.credential is not None:
            token = request.credential.access_token.encode("ascii")
            sealed = sealer.seal(token, sub_id.encode())
        conn.execute(
            insert(_s).values(
                id=sub_id,
                org_id=org_id,
                client_id=client_id,
                phone_number=phone_number,
                types=list(request.types),
                sink=request.sink,
                sink_credential_sealed=sealed,
                config=request.config(),
                max_events=request.max_events,
                expires_at=ends_at,
                events_sent=0,
                state=Status.ACTIVE.value,
                created_at=now,
            )
        )
        uc.audit(
            org_id,
            "camara.subscription_created",
            f"api_client:{client_id}",
            subject_of("subscription", sub_id),
            phone_number=phone_number,
            sink=request.sink,
            types=list(request.types),
            max_events=request.max_events,
            ends_at=None if ends_at is None else cloudevents.rfc3339(ends_at),
            sink_credential=request.credential is not None,
        )
        return get_any(conn, sub_id)


def get_any(conn: Connection, sub_id: str) -> Subscription:
    """Any org's subscription by id (the notifier's read); NotFound."""
    row = conn.execute(select(_s).where(_s.c.id == sub_id)).first()
    if row is None:
        raise NotFound("subscription not found")
    return _subscription(row._mapping)


def get(conn: Connection, org_id: str, client_id: str, sub_id: str) -> Subscription:
    """The client's own subscription, unless deleted; NotFound for any other."""
    row = conn.execute(
        select(_s).where(
            _s.c.id == sub_id,
            _s.c.org_id == org_id,
            _s.c.client_id == client_id,
            _s.c.state != Status.DELETED.value,
        )
    ).first()
    if row is None:
        raise NotFound("subscription not found")
    return _subscription(row._mapping)


def list_for(
    conn: Connection, org_id: str, client_id: str, phone_number: str | None = None
) -> list[Subscription]:
    """The client's subscriptions (deleted ones left out), oldest first; only those on
    `phone_number` when given (a 3-legged token's number)."""
    query = select(_s).where(
        _s.c.org_id == org_id,
        _s.c.client_id == client_id,
        _s.c.state != Status.DELETED.value,
    )
    if phone_number is not None:
        query = query.where(_s.c.phone_number == phone_number)
    rows = conn.execute(query.order_by(_s.c.created_at, _s.c.id)).all()
    return [_subscription(r._mapping) for r in rows]


def active_on(conn: Connection, numbers: Sequence[tuple[str, str]]) -> list[Subscription]:
    """ACTIVE subscriptions on any of the (org id, +E.164 number) pairs."""
    if not numbers:
        return []
    wanted = set(numbers)
    rows = conn.execute(
        select(_s).where(
            _s.c.state == Status.ACTIVE.value,
            _s.c.phone_number.in_(sorted({n for _, n in wanted})),
        )
    ).all()
    subs = [_subscription(r._mapping) for r in rows]
    return [s for s in subs if (s.org_id, s.phone_number) in wanted]


def due_by_time(conn: Connection, now: datetime, limit: int = 100) -> list[Subscription]:
    """ACTIVE subscriptions whose end time has come."""
    rows = conn.execute(
        select(_s)
        .where(_s.c.state == Status.ACTIVE.value, _s.c.expires_at <= now)
        .order_by(_s.c.expires_at)
        .limit(limit)
    ).all()
    return [_subscription(r._mapping) for r in rows]


def open_credential(conn: Connection, sealer: Sealer, sub_id: str) -> str | None:
    """The sink's bearer token, for the notifier's POST only."""
    sealed = conn.execute(select(_s.c.sink_credential_sealed).where(_s.c.id == sub_id)).scalar()
    return None if sealed is None else sealer.open(sealed, sub_id.encode()).decode("ascii")


def count_event(conn: Connection, sub: Subscription, now: datetime) -> Subscription:
    """One more notification generated for `sub`; ends it when that was its last."""
    conn.execute(update(_s).where(_s.c.id == sub.id).values(events_sent=_s.c.events_sent + 1))
    counted = get_any(conn, sub.id)
    if counted.max_events is not None and counted.events_sent >= counted.max_events:
        end(conn, counted, TerminationReason.MAX_EVENTS_REACHED, now=now, actor="ztsim")
        return get_any(conn, sub.id)
    return counted


def end(
    conn: Connection,
    sub: Subscription,
    reason: TerminationReason,
    *,
    now: datetime,
    actor: str,
    notify: bool = True,
) -> bool:
    """End an ACTIVE subscription with `reason`, queueing its subscription-ended event
    unless `notify` is off (the sink said it is gone); False if it had ended already."""
    with use_case(conn, now) as uc:
        ended = conn.execute(
            update(_s)
            .where(_s.c.id == sub.id, _s.c.state == Status.ACTIVE.value)
            .values(state=status_after(reason).value, ended_at=now, ended_reason=reason.value)
        ).rowcount
        if not ended:
            return False
        if notify:
            event = cloudevents.subscription_ended(
                event_id=f"{sub.id}-{ENDED_SOURCE}",
                subscription_id=sub.id,
                phone_number=sub.named_number,
                reason=reason,
                at=now,
            )
            deliveries.enqueue(
                conn,
                org_id=sub.org_id,
                subscription_id=sub.id,
                source=ENDED_SOURCE,
                event=event,
                now=now,
            )
        uc.audit(
            sub.org_id,
            "camara.subscription_ended",
            actor,
            subject_of("subscription", sub.id),
            phone_number=sub.phone_number,
            reason=reason.value,
            events_sent=sub.events_sent,
        )
        return True


def delete(
    conn: Connection, org_id: str, client_id: str, sub_id: str, *, now: datetime
) -> Subscription:
    """The client deletes its own subscription (NotFound otherwise): DELETED, and a
    subscription-ended event with SUBSCRIPTION_DELETED if it was still active."""
    with use_case(conn, now) as uc:
        sub = get(conn, org_id, client_id, sub_id)
        actor = f"api_client:{client_id}"
        if sub.status is Status.ACTIVE:
            end(conn, sub, TerminationReason.SUBSCRIPTION_DELETED, now=now, actor=actor)
        else:  # ended already (expired): only hidden from now on
            conn.execute(update(_s).where(_s.c.id == sub.id).values(state=Status.DELETED.value))
            uc.audit(
                org_id, "camara.subscription_deleted", actor, subject_of("subscription", sub.id)
            )
        return get_any(conn, sub.id)
