"""Changes made the way another process (the CLI, a separate API) makes them: the state
change and its outbox row in one transaction of the test's own, for the AAA role to
learn from the change feed only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction


def publish(
    conn: Connection, org_id: str, topic: Topic, key: str, payload: dict[str, Any] | None = None
) -> int:
    """Publish one change in `conn`'s transaction (last, as the feed asks); its number."""
    outbox.publish_one(conn, org_id, topic, key, datetime.now(UTC), payload)
    return outbox.position(conn)


def change_sim(engine: Engine, org_id: str, iccid: str, action: SimAction) -> int:
    """A lifecycle action on a SIM and its SIM change, committed; the change's number.
    (Once the use case publishes by itself, the second row only repeats it: harmless.)"""
    with engine.begin() as conn:
        sim = service.change_state(
            conn, org_id, iccid, action, actor="cli", reason="test", now=datetime.now(UTC)
        )
        return publish(conn, org_id, Topic.SIM, iccid, {"state": sim.state.value})
