"""The delivery queue: once per source, one at a time per subscription in order, claimed
by one notifier, each attempt an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.risk.store import deliveries
from ztsim.risk.store import subscriptions as subs
from ztsim.risk.store.deliveries import State
from ztsim.risk.subscriptions import RETRY_DELAYS, Outcome, SubscriptionRequest
from ztsim.sealing import Sealer

from support.camara_sink import client_token, org_with_line

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def two_subscriptions(engine: Engine, sealer: Sealer) -> tuple[str, str, str]:
    line = org_with_line(engine, sealer, "alpha", 1, NOW)
    client, _ = client_token(engine, line.org_id, ("sim-swap-subscriptions:read",), now=NOW)
    made = []
    with engine.begin() as conn:
        for _ in range(2):
            sub = subs.create(
                conn,
                sealer,
                org_id=line.org_id,
                client_id=client,
                phone_number=line.phone_number,
                request=SubscriptionRequest("https://s.example.test/", None, None, None, None),
                now=NOW,
            )
            made.append(sub.id)
    return line.org_id, made[0], made[1]


def queue(engine: Engine, org_id: str, sub_id: str, source: str) -> bool:
    with engine.begin() as conn:
        return deliveries.enqueue(
            conn,
            org_id=org_id,
            subscription_id=sub_id,
            source=source,
            event={"id": f"{sub_id}-{source}", "type": "t"},
            now=NOW,
        )


def test_a_source_is_queued_once(engine: Engine, sealer: Sealer) -> None:
    org_id, a, b = two_subscriptions(engine, sealer)
    assert queue(engine, org_id, a, "sim:1")
    assert not queue(engine, org_id, a, "sim:1")
    assert queue(engine, org_id, b, "sim:1")  # the same change for another subscription
    with engine.begin() as conn:
        assert len(conn.execute(select(schema.camara_deliveries)).all()) == 2


def test_one_at_a_time_per_subscription_in_order(engine: Engine, sealer: Sealer) -> None:
    org_id, a, b = two_subscriptions(engine, sealer)
    for source in ("sim:1", "sim:2", "ended"):
        queue(engine, org_id, a, source)
    queue(engine, org_id, b, "sim:2")
    with engine.begin() as conn:
        due = deliveries.due(conn, NOW)
        assert sorted((d.subscription_id, d.source) for d in due) == sorted(
            [(a, "sim:1"), (b, "sim:2")]
        )
        first = next(d for d in due if d.subscription_id == a)
        deliveries.record(conn, first, Outcome.RETRY, now=NOW, http_status=503, error="HTTP 503")
        # Its retry waits, and nothing of the same subscription overtakes it.
        assert [d.subscription_id for d in deliveries.due(conn, NOW)] == [b]
        later = NOW + RETRY_DELAYS[0]
        retried = next(d for d in deliveries.due(conn, later) if d.subscription_id == a)
        assert (retried.source, retried.attempts) == ("sim:1", 1)
        deliveries.record(conn, retried, Outcome.DELIVERED, now=later, http_status=204)
        nxt = [d.source for d in deliveries.due(conn, later) if d.subscription_id == a]
        assert nxt == ["sim:2"]


def test_a_claim_is_taken_once(engine: Engine, sealer: Sealer) -> None:
    org_id, a, _ = two_subscriptions(engine, sealer)
    queue(engine, org_id, a, "sim:1")
    with engine.begin() as conn:
        (seen,) = deliveries.due(conn, NOW)
        assert deliveries.claim(conn, seen, NOW)
        assert not deliveries.claim(conn, seen, NOW)  # a second notifier read the same row
        assert deliveries.due(conn, NOW + timedelta(seconds=1)) == []
        # A claim left behind (a notifier that died mid-POST) runs out.
        assert len(deliveries.due(conn, NOW + deliveries.CLAIM)) == 1


def test_each_attempt_is_an_event_and_failures_end_the_row(engine: Engine, sealer: Sealer) -> None:
    org_id, a, b = two_subscriptions(engine, sealer)
    queue(engine, org_id, a, "sim:1")
    queue(engine, org_id, b, "sim:1")
    with engine.begin() as conn:
        for d in deliveries.due(conn, NOW):
            result = Outcome.FAILED if d.subscription_id == a else Outcome.DELIVERED
            deliveries.record(
                conn, d, result, now=NOW, http_status=400 if result is Outcome.FAILED else 204
            )
        states = {
            d.subscription_id: d.state
            for d in deliveries.for_subscription(conn, a) + deliveries.for_subscription(conn, b)
        }
        rows = conn.execute(
            select(schema.events).where(schema.events.c.kind == "camara.delivery")
        ).all()
    assert states == {a: State.FAILED, b: State.DELIVERED}
    payloads = sorted((r.payload["result"], r.payload["http_status"], r.outcome) for r in rows)
    assert payloads == [("delivered", 204, "success"), ("failed", 400, "failure")]


def test_abandon_pending(engine: Engine, sealer: Sealer) -> None:
    org_id, a, _ = two_subscriptions(engine, sealer)
    queue(engine, org_id, a, "sim:1")
    queue(engine, org_id, a, "sim:2")
    with engine.begin() as conn:
        assert deliveries.abandon_pending(conn, a, "gone") == 2
        assert deliveries.due(conn, NOW) == []
        assert {d.last_error for d in deliveries.for_subscription(conn, a)} == {"gone"}
