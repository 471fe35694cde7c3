"""One use case, one transaction: its writes, its audit events and its outbox rows.

Every change of state (API, CLI, eSIM flows, first-attach bindings) runs inside
`use_case(conn, now)`: the function checks, writes, records its audit events
(`event`) and names what changed for the planes (`change`, per the topic contract of
`ztsim.feed.change`). Events are written at once; changes are published when the
OUTERMOST use case on the connection ends, so the outbox insert is the last statement
of the use case. On PostgreSQL `outbox.publish` takes an advisory lock held until
commit; taken mid-transaction, a later row lock could wait on a transaction that waits
for that advisory lock (a deadlock). Use cases therefore nest freely (an eSIM re-issue
retires one SIM and assigns another through `change_state`): the inner ones add their
changes to the outermost's list, and a caller that runs several use cases in one
transaction (a batch) wraps them in one more `use_case` so that it publishes once.

A use case that raises leaves nothing behind: its own pending changes are dropped (the
caller's savepoint or transaction rolls back its writes and events).

A layer of its own: above the event store and the outbox it writes to, below every
context whose use cases run in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import NewEvent
from ztsim.feed import outbox
from ztsim.feed.change import NewChange, Topic

# A connection's info: the changes of the outermost running use case. `Connection.info`
# belongs to the driver's connection, so it is cleared whatever happens (see below).
_PENDING = "ztsim_use_case_changes"


class UseCase:
    """What a running use case records: audit events now, plane changes at its end."""

    def __init__(self, conn: Connection, now: datetime, pending: list[NewChange]) -> None:
        self.conn = conn
        self.now = now
        self._pending = pending

    def event(self, *recorded: NewEvent) -> None:
        events.append(self.conn, recorded, self.now)

    def audit(self, org_id: str, kind: str, actor: str, subject: str, **payload: object) -> None:
        """One successful event (`kind` about `subject`) with `payload`."""
        self.event(NewEvent(org_id, kind, actor, subject, payload=dict(payload)))

    def change(
        self, org_id: str, topic: Topic, key: str, payload: Mapping[str, Any] | None = None
    ) -> None:
        self._pending.append(NewChange(org_id, topic, key, payload or {}))

    def changes(self, made: Iterable[NewChange]) -> None:
        """Changes already made into values (a batch's sessions)."""
        self._pending.extend(made)


@contextmanager
def use_case(conn: Connection, now: datetime) -> Iterator[UseCase]:
    pending: list[NewChange] | None = conn.info.get(_PENDING)
    if pending is not None:  # nested: the outermost publishes
        mark = len(pending)
        try:
            yield UseCase(conn, now, pending)
        except BaseException:
            del pending[mark:]
            raise
        return
    pending = conn.info[_PENDING] = []
    try:
        yield UseCase(conn, now, pending)
        outbox.publish(conn, pending, now)
    finally:
        conn.info.pop(_PENDING, None)
