"""The notifier against a real HTTPS sink on loopback: SIM swaps become CloudEvents, with
the bearer credential, retries, limits and endings as the spec says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from ztsim.db import schema
from ztsim.inventory.number_history import ChangeKind, record
from ztsim.risk.serve.notify import Notifier
from ztsim.risk.store import deliveries
from ztsim.risk.store import subscriptions as subs
from ztsim.risk.store.deliveries import State
from ztsim.risk.subscriptions import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    SinkCredential,
    Status,
    SubscriptionRequest,
)
from ztsim.sealing import Sealer

from support.camara_schemas import errors
from support.camara_sink import Line, Sink, client_token, https_sink, org_with_line, sink_token
from support.leaks import LEAKS

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
ENDED = "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with https_sink(tmp_path) as running:
        yield running


def subscribe(
    engine: Engine,
    sealer: Sealer,
    line: Line,
    sink: Sink,
    *,
    token: str | None = None,
    named: bool = True,
    max_events: int | None = None,
    expire: datetime | None = None,
    at: datetime = NOW,
) -> subs.Subscription:
    client, _ = client_token(engine, line.org_id, ("sim-swap-subscriptions:read",), now=at)
    credential = None if token is None else SinkCredential(token, at + timedelta(days=30))
    request = SubscriptionRequest(
        sink.url, line.phone_number if named else None, max_events, expire, credential
    )
    with engine.begin() as conn:
        return subs.create(
            conn,
            sealer,
            org_id=line.org_id,
            client_id=client,
            phone_number=line.phone_number,
            request=request,
            now=at,
        )


def swap(engine: Engine, line: Line, at: datetime, new_iccid: str = "8944000000000000999") -> None:
    """A number change as the inventory records it (the API test makes a real re-issue)."""
    with engine.begin() as conn:
        record(
            conn,
            line.org_id,
            line.phone_number,
            ChangeKind.SIM,
            iccid=new_iccid,
            previous=line.iccid,
            current=new_iccid,
            actor="test",
            now=at,
        )


def notifier(engine: Engine, sealer: Sealer, sink: Sink, **kw: bool) -> Notifier:
    return Notifier(engine, sealer, sink.client(**kw))


def sub_state(engine: Engine, sub_id: str) -> subs.Subscription:
    with engine.begin() as conn:
        return subs.get_any(conn, sub_id)


def test_a_swap_reaches_the_sink_as_a_cloudevent_with_the_bearer_token(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    token = sink_token()
    sub = subscribe(engine, sealer, line, sink, token=token)
    swap(engine, line, NOW + timedelta(seconds=1))
    done = notifier(engine, sealer, sink).run_once(NOW + timedelta(seconds=2))
    assert (done.queued, done.attempts) == (1, 1)
    (got,) = sink.received
    assert got.path == "/sink"
    assert got.headers["authorization"] == f"Bearer {token}"
    assert got.headers["content-type"] == "application/cloudevents+json"
    assert got.headers["x-correlator"] == got.body["id"]
    assert errors("EventSimSwap", got.body) == []
    assert got.body["type"] == SWAPPED
    assert got.body["data"] == {"subscriptionId": sub.id, "phoneNumber": line.phone_number}
    assert got.body["time"] == "2026-12-03T18:00:01.000Z"
    with engine.begin() as conn:
        (delivery,) = deliveries.for_subscription(conn, sub.id)
        events = conn.execute(
            select(schema.events).where(schema.events.c.kind == "camara.delivery")
        ).all()
    assert (delivery.state, delivery.attempts) == (State.DELIVERED, 1)
    assert [(e.payload["result"], e.payload["http_status"]) for e in events] == [("delivered", 204)]
    assert all(token not in str(e.payload) for e in events)
    assert sub_state(engine, sub.id).events_sent == 1
    # A second pass re-reads the overlap and sends nothing twice.
    again = notifier(engine, sealer, sink).run_once(NOW + timedelta(seconds=3))
    assert (again.queued, again.attempts, len(sink.received)) == (0, 0, 1)


def test_failures_are_retried_with_backoff_then_given_up(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink, named=False)
    swap(engine, line, NOW)
    sink.answers.extend([503, 500])
    runner = notifier(engine, sealer, sink)
    at = NOW
    runner.run_once(at)
    at += RETRY_DELAYS[0] - timedelta(seconds=1)
    assert runner.run_once(at).attempts == 0  # not yet
    at += timedelta(seconds=1)
    assert runner.run_once(at).attempts == 1  # 500
    at += RETRY_DELAYS[1]
    assert runner.run_once(at).attempts == 1  # delivered
    assert [r.body["type"] for r in sink.received] == [SWAPPED] * 3
    assert "phoneNumber" not in sink.received[0].body["data"]  # 3-legged
    with engine.begin() as conn:
        (delivery,) = deliveries.for_subscription(conn, sub.id)
    assert (delivery.state, delivery.attempts) == (State.DELIVERED, 3)

    # A sink that keeps failing is given up after the bounded attempts.
    sink.received.clear()
    sink.answers.extend([500] * (MAX_ATTEMPTS + 2))
    swap(engine, line, at, new_iccid="8944000000000000998")
    for _ in range(MAX_ATTEMPTS + 2):
        runner.run_once(at)
        at += RETRY_DELAYS[-1]
    assert len(sink.received) == MAX_ATTEMPTS
    with engine.begin() as conn:
        last = deliveries.for_subscription(conn, sub.id)[-1]
    assert (last.state, last.attempts, last.last_error) == (
        State.FAILED,
        MAX_ATTEMPTS,
        "the sink answered HTTP 500",
    )


def test_max_events_ends_the_subscription_after_the_last_event(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink, max_events=1)
    swap(engine, line, NOW + timedelta(seconds=1))
    swap(engine, line, NOW + timedelta(seconds=2), new_iccid="8944000000000000998")
    runner = notifier(engine, sealer, sink)
    runner.run_once(NOW + timedelta(seconds=3))
    runner.run_once(NOW + timedelta(seconds=4))
    assert sink.types() == [SWAPPED, ENDED]
    ended = sink.received[1].body
    assert errors("EventSubscriptionEnded", ended) == []
    assert ended["data"]["terminationReason"] == "MAX_EVENTS_REACHED"
    state = sub_state(engine, sub.id)
    assert (state.status, state.events_sent) == (Status.EXPIRED, 1)


def test_expiry_ends_the_subscription_at_its_time(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink, expire=NOW + timedelta(hours=1))
    runner = notifier(engine, sealer, sink)
    assert runner.run_once(NOW + timedelta(minutes=59)).ended == 0
    assert runner.run_once(NOW + timedelta(hours=1)).ended == 1
    runner.run_once(NOW + timedelta(hours=1, seconds=1))
    assert sink.types() == [ENDED]
    assert sink.received[0].body["data"]["terminationReason"] == "SUBSCRIPTION_EXPIRED"
    assert sub_state(engine, sub.id).status is Status.EXPIRED
    # A swap after the end is nobody's business here.
    swap(engine, line, NOW + timedelta(hours=2))
    runner.run_once(NOW + timedelta(hours=2, seconds=1))
    assert sink.types() == [ENDED]


def test_the_token_expiry_ends_it_before_the_token_is_useless(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    token = sink_token()
    sub = subscribe(engine, sealer, line, sink, token=token)
    runner = notifier(engine, sealer, sink)
    runner.run_once(NOW + timedelta(days=30) - timedelta(seconds=59))
    (got,) = sink.received
    assert got.body["data"]["terminationReason"] == "ACCESS_TOKEN_EXPIRED"
    assert got.headers["authorization"] == f"Bearer {token}"
    assert sub_state(engine, sub.id).status is Status.EXPIRED


def test_deletion_sends_subscription_ended(engine: Engine, sealer: Sealer, sink: Sink) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink)
    with engine.begin() as conn:
        subs.delete(conn, line.org_id, sub.client_id, sub.id, now=NOW)
    notifier(engine, sealer, sink).run_once(NOW)
    assert sink.types() == [ENDED]
    assert sink.received[0].body["data"]["terminationReason"] == "SUBSCRIPTION_DELETED"


def test_a_gone_sink_ends_the_subscription_without_more_posts(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink)
    swap(engine, line, NOW)
    swap(engine, line, NOW, new_iccid="8944000000000000998")
    sink.answers.append(410)
    runner = notifier(engine, sealer, sink)
    runner.run_once(NOW)
    runner.run_once(NOW + timedelta(hours=3))
    assert sink.types() == [SWAPPED]
    state = sub_state(engine, sub.id)
    assert (state.status, state.ended_reason) == (Status.INACTIVE, "NETWORK_TERMINATED")
    with engine.begin() as conn:
        assert {d.state for d in deliveries.for_subscription(conn, sub.id)} == {State.FAILED}


def test_a_loopback_sink_is_refused_unless_allowed_and_never_contacted(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink)
    swap(engine, line, NOW)
    notifier(engine, sealer, sink, allow_loopback=False).run_once(NOW)
    assert sink.received == []
    with engine.begin() as conn:
        (delivery,) = deliveries.for_subscription(conn, sub.id)
    assert (delivery.state, delivery.last_error) == (
        State.FAILED,
        "the sink's address is not allowed",
    )


def test_only_the_same_orgs_subscriptions_created_before_the_swap(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    alpha = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    bravo = org_with_line(engine, sealer, "bravo", 2, NOW - timedelta(days=1))
    watching = subscribe(engine, sealer, alpha, sink)
    subscribe(engine, sealer, alpha, sink, at=NOW + timedelta(minutes=1))  # after the swap
    subscribe(engine, sealer, bravo, sink)
    # The same digits recorded under bravo's org id reach bravo's subscribers only.
    swap(engine, alpha, NOW)
    notifier(engine, sealer, sink).run_once(NOW + timedelta(minutes=2))
    assert [r.body["data"]["subscriptionId"] for r in sink.received] == [watching.id]


def test_a_change_committed_late_below_the_cursor_is_still_sent(
    engine: Engine, sealer: Sealer, sink: Sink
) -> None:
    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    sub = subscribe(engine, sealer, line, sink)
    swap(engine, line, NOW + timedelta(seconds=1))
    swap(engine, line, NOW + timedelta(seconds=1), new_iccid="8944000000000000998")
    n = schema.number_changes
    with engine.begin() as conn:
        late = conn.execute(select(n).order_by(n.c.id.desc())).all()[1]._mapping
        # Its id was taken before the other's, but its transaction had not committed yet.
        conn.execute(n.delete().where(n.c.id == late["id"]))
    runner = notifier(engine, sealer, sink)
    runner.run_once(NOW + timedelta(seconds=2))
    assert len(sink.received) == 1
    with engine.begin() as conn:
        conn.execute(insert(n).values(dict(late)))  # now it commits, below the cursor
    runner.run_once(NOW + timedelta(seconds=3))
    sent = sorted(r.body["id"] for r in sink.received)
    assert len(sent) == 2
    assert f"{sub.id}-sim-{late['id']}" in sent
    # A fresh notifier (a restart) re-reads the overlap: nothing is sent twice.
    notifier(engine, sealer, sink).run_once(NOW + timedelta(seconds=4))
    assert len(sink.received) == 2


def test_the_thread_starts_and_stops(engine: Engine, sealer: Sealer, sink: Sink) -> None:
    import time

    line = org_with_line(engine, sealer, "alpha", 1, NOW - timedelta(days=1))
    subscribe(engine, sealer, line, sink, at=datetime.now(UTC) - timedelta(seconds=5))
    swap(engine, line, datetime.now(UTC))
    runner = Notifier(engine, sealer, sink.client(), every=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert sink.types() == [SWAPPED]
    LEAKS.add_text("notifier test", str(sink.received[0].body))
