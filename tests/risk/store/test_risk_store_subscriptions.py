"""Subscriptions at rest: created on a number the org serves, seen only by their client,
the credential sealed and nowhere else, ended once with its notification queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.events import store as events
from ztsim.events.store import EventQuery
from ztsim.risk.cloudevents import ENDED, TerminationReason
from ztsim.risk.store import deliveries
from ztsim.risk.store import subscriptions as subs
from ztsim.risk.subscriptions import SinkCredential, Status, SubscriptionRequest
from ztsim.sealing import Sealer

from support.camara_sink import client_token, org_with_line, sink_token

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
SCOPES = ("sim-swap-subscriptions:read",)


def request(
    *,
    named: str | None,
    token: str | None = None,
    max_events: int | None = None,
    expire: datetime | None = None,
) -> SubscriptionRequest:
    credential = None if token is None else SinkCredential(token, NOW + timedelta(days=30))
    return SubscriptionRequest("https://sink.example.test/n", named, max_events, expire, credential)


def test_create_get_list_delete(engine: Engine, sealer: Sealer) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW)
    client, _ = client_token(engine, line.org_id, SCOPES, now=NOW)
    token = sink_token()
    with engine.begin() as conn:
        sub = subs.create(
            conn,
            sealer,
            org_id=line.org_id,
            client_id=client,
            phone_number=line.phone_number,
            request=request(
                named=line.phone_number, token=token, max_events=2, expire=NOW + timedelta(days=1)
            ),
            now=NOW,
        )
    assert sub.status is Status.ACTIVE
    assert (sub.max_events, sub.events_sent, sub.ends_at) == (2, 0, NOW + timedelta(days=1))
    answer = sub.as_json()
    assert answer["config"]["subscriptionDetail"] == {"phoneNumber": line.phone_number}
    assert answer["expiresAt"] == "2026-12-04T18:00:00.000Z"
    assert answer["startsAt"] == "2026-12-03T18:00:00.000Z"
    assert token not in str(answer)
    with engine.begin() as conn:
        assert subs.get(conn, line.org_id, client, sub.id) == sub
        assert subs.list_for(conn, line.org_id, client) == [sub]
        assert subs.list_for(conn, line.org_id, client, "+4900000000") == []
        assert subs.open_credential(conn, sealer, sub.id) == token
        sealed = conn.execute(select(schema.camara_subscriptions.c.sink_credential_sealed)).scalar()
        assert isinstance(sealed, bytes)
        assert token.encode() not in sealed
        deleted = subs.delete(conn, line.org_id, client, sub.id, now=NOW + timedelta(minutes=1))
    assert deleted.status is Status.DELETED
    assert deleted.ended_reason == TerminationReason.SUBSCRIPTION_DELETED.value
    with engine.begin() as conn:
        with pytest.raises(NotFound):
            subs.get(conn, line.org_id, client, sub.id)
        assert subs.list_for(conn, line.org_id, client) == []
        queued = deliveries.for_subscription(conn, sub.id)
        kinds = [e.kind for e in events.query(conn, line.org_id, EventQuery(), limit=1000)[0]]
    assert [(d.source, d.event["type"]) for d in queued] == [("ended", ENDED)]
    assert queued[0].event["data"]["terminationReason"] == "SUBSCRIPTION_DELETED"
    assert "camara.subscription_created" in kinds
    assert "camara.subscription_ended" in kinds


def test_another_client_or_org_sees_nothing(engine: Engine, sealer: Sealer) -> None:
    alpha = org_with_line(engine, sealer, "alpha", 1, NOW)
    bravo = org_with_line(engine, sealer, "bravo", 2, NOW)
    owner, _ = client_token(engine, alpha.org_id, SCOPES, now=NOW)
    other, _ = client_token(engine, alpha.org_id, SCOPES, now=NOW)
    stranger, _ = client_token(engine, bravo.org_id, SCOPES, now=NOW)
    with engine.begin() as conn:
        sub = subs.create(
            conn,
            sealer,
            org_id=alpha.org_id,
            client_id=owner,
            phone_number=alpha.phone_number,
            request=request(named=None),
            now=NOW,
        )
        for org_id, client in ((alpha.org_id, other), (bravo.org_id, stranger)):
            with pytest.raises(NotFound):
                subs.get(conn, org_id, client, sub.id)
            with pytest.raises(NotFound):
                subs.delete(conn, org_id, client, sub.id, now=NOW)
            assert subs.list_for(conn, org_id, client) == []
        assert subs.get(conn, alpha.org_id, owner, sub.id).status is Status.ACTIVE


def test_a_number_the_org_does_not_serve_is_refused_the_same_way(
    engine: Engine, sealer: Sealer
) -> None:
    alpha = org_with_line(engine, sealer, "alpha", 1, NOW)
    bravo = org_with_line(engine, sealer, "bravo", 2, NOW)
    client, _ = client_token(engine, alpha.org_id, SCOPES, now=NOW)
    for number in (bravo.phone_number, "+4912345678901"):
        with engine.begin() as conn, pytest.raises(subs.NumberNotServed) as refused:
            subs.create(
                conn,
                sealer,
                org_id=alpha.org_id,
                client_id=client,
                phone_number=number,
                request=request(named=number),
                now=NOW,
            )
        assert number not in str(refused.value)
    with engine.begin() as conn:
        assert conn.execute(select(schema.camara_subscriptions)).all() == []


def test_the_quota_of_active_subscriptions(
    engine: Engine, sealer: Sealer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subs, "MAX_ACTIVE_PER_CLIENT", 2)
    line = org_with_line(engine, sealer, "alpha", 1, NOW)
    client, _ = client_token(engine, line.org_id, SCOPES, now=NOW)

    def create() -> subs.Subscription:
        with engine.begin() as conn:
            return subs.create(
                conn,
                sealer,
                org_id=line.org_id,
                client_id=client,
                phone_number=line.phone_number,
                request=request(named=None),
                now=NOW,
            )

    first, _second = create(), create()
    with pytest.raises(subs.QuotaExceeded):
        create()
    with engine.begin() as conn:
        subs.delete(conn, line.org_id, client, first.id, now=NOW)
    create()  # an ended one no longer counts


def test_count_event_ends_at_max_events_and_end_happens_once(
    engine: Engine, sealer: Sealer
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW)
    client, _ = client_token(engine, line.org_id, SCOPES, now=NOW)
    with engine.begin() as conn:
        sub = subs.create(
            conn,
            sealer,
            org_id=line.org_id,
            client_id=client,
            phone_number=line.phone_number,
            request=request(named=None, max_events=2),
            now=NOW,
        )
        once = subs.count_event(conn, sub, NOW)
        assert (once.events_sent, once.status) == (1, Status.ACTIVE)
        twice = subs.count_event(conn, once, NOW)
        assert (twice.events_sent, twice.status) == (2, Status.EXPIRED)
        assert twice.ended_reason == "MAX_EVENTS_REACHED"
        assert not subs.end(conn, twice, TerminationReason.SUBSCRIPTION_EXPIRED, now=NOW, actor="t")
        queued = deliveries.for_subscription(conn, sub.id)
    assert [d.event["data"]["terminationReason"] for d in queued] == ["MAX_EVENTS_REACHED"]
    assert "phoneNumber" not in queued[0].event["data"]  # 3-legged: never named


def test_due_by_time_and_active_on(engine: Engine, sealer: Sealer) -> None:
    alpha = org_with_line(engine, sealer, "alpha", 1, NOW)
    bravo = org_with_line(engine, sealer, "bravo", 2, NOW)
    client, _ = client_token(engine, alpha.org_id, SCOPES, now=NOW)
    with engine.begin() as conn:
        soon = subs.create(
            conn,
            sealer,
            org_id=alpha.org_id,
            client_id=client,
            phone_number=alpha.phone_number,
            request=request(named=None, expire=NOW + timedelta(hours=1)),
            now=NOW,
        )
        later = subs.create(
            conn,
            sealer,
            org_id=alpha.org_id,
            client_id=client,
            phone_number=alpha.phone_number,
            request=request(named=None),
            now=NOW,
        )
        assert subs.due_by_time(conn, NOW + timedelta(minutes=59)) == []
        assert [s.id for s in subs.due_by_time(conn, NOW + timedelta(hours=1))] == [soon.id]
        watching = subs.active_on(conn, [(alpha.org_id, alpha.phone_number)])
        assert {s.id for s in watching} == {soon.id, later.id}
        # The same number under another org's id is not these subscriptions' number.
        assert subs.active_on(conn, [(bravo.org_id, alpha.phone_number)]) == []
        assert subs.active_on(conn, []) == []


def test_the_credential_never_reaches_an_event(engine: Engine, sealer: Sealer) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW)
    client, _ = client_token(engine, line.org_id, SCOPES, now=NOW)
    token = sink_token()
    with engine.begin() as conn:
        sub = subs.create(
            conn,
            sealer,
            org_id=line.org_id,
            client_id=client,
            phone_number=line.phone_number,
            request=request(named=None, token=token),
            now=NOW,
        )
        subs.delete(conn, line.org_id, client, sub.id, now=NOW)
        stored = events.query(conn, line.org_id, EventQuery(), limit=1000)[0]
    assert stored
    assert all(token not in str(e.payload) + e.reason for e in stored)
