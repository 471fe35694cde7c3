"""What a use case left behind: the audit events and outbox rows written since a mark.

`Mark(engine)` remembers the newest event and outbox row; `left()` reads what came after,
across all orgs (a use case that wrote into another org's rows must show up too). `run`
calls a use case in a write transaction of its own and says what it left; `refused`
checks that a refused one left nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.errors import ZtsimError
from ztsim.feed import outbox
from ztsim.feed.change import Change, Topic

_e = schema.events


@dataclass(frozen=True)
class Left:
    events: list[tuple[str, str, str]]  # (org, kind, subject), in write order
    changes: list[Change]  # in sequence order
    actors: list[str]  # of the events, in write order

    @property
    def kinds(self) -> list[str]:
        return [kind for _org, kind, _subject in self.events]

    @property
    def topics(self) -> list[tuple[Topic, str]]:
        return [(c.topic, c.key) for c in self.changes]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [dict(c.payload) for c in self.changes]

    @property
    def empty(self) -> bool:
        return not self.events and not self.changes


class Mark:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self.event_id = int(
                conn.execute(select(func.coalesce(func.max(_e.c.id), 0))).scalar_one()
            )
            self.seq = outbox.position(conn)

    def left(self) -> Left:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_e.c.org_id, _e.c.kind, _e.c.subject, _e.c.actor)
                .where(_e.c.id > self.event_id)
                .order_by(_e.c.id)
            ).all()
            changes = outbox.read_after(conn, self.seq, 100_000)
        events = [(r.org_id, r.kind, r.subject) for r in rows]
        return Left(events, changes, [r.actor for r in rows])


def run(engine: Engine, call: Callable[[Connection], Any]) -> tuple[Any, Left]:
    """`call`'s result, and what it left once committed."""
    mark = Mark(engine)
    with for_writing(engine).begin() as conn:
        result = call(conn)
    return result, mark.left()


def refused(engine: Engine, error: type[ZtsimError], call: Callable[[Connection], Any]) -> None:
    """`call` raises `error`, and no event and no outbox row is left of it."""
    mark = Mark(engine)
    with pytest.raises(error), for_writing(engine).begin() as conn:
        call(conn)
    left = mark.left()
    assert left.empty, left
