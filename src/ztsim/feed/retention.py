"""Keeping the outbox short: dropping old changes in bounded chunks.

A follower needs only the changes above its position; one that fell further behind
than the outbox keeps loads a full snapshot instead (`Follower`'s resync), so old rows
can go. They go a chunk at a time, each chunk its own short write transaction: on
SQLite a write transaction holds the database's one write lock, and one delete of
millions of rows would hold every publisher (the API, the AAA writer) for its whole
length; on PostgreSQL it would hold a long transaction open (bloat, replication lag).
Between chunks other writers get their turn.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.feed import outbox

CHUNK = 5000  # rows per transaction: a few milliseconds of write lock on either backend

_t = schema.change_outbox


def prune_older_than(engine: Engine, keep: timedelta, now: datetime, *, chunk: int = CHUNK) -> int:
    """Drop the changes made before `now - keep` (and any numbered below them: the
    outbox is pruned as a prefix, so `pruned_through` says exactly what is gone), at
    most `chunk` rows per transaction. Returns how many rows went."""
    if chunk < 1:
        raise ValueError("a chunk is at least one row")
    if keep < timedelta(0):
        raise ValueError("keep is a duration, not negative")
    cutoff = now - keep
    # Fixed once: changes published while this runs are younger than the cutoff.
    with engine.connect() as conn:
        head = conn.execute(select(func.max(_t.c.seq)).where(_t.c.created_at < cutoff)).scalar()
    if head is None:
        return 0
    through = int(head)
    writer = for_writing(engine)
    gone = 0
    while True:
        with writer.begin() as conn:
            # The `chunk`-th oldest row still there, by the primary key (an index walk
            # of `chunk` entries), or the end when fewer are left.
            bound = conn.execute(
                select(_t.c.seq)
                .where(_t.c.seq <= through)
                .order_by(_t.c.seq)
                .offset(chunk - 1)
                .limit(1)
            ).scalar()
            upto = through if bound is None else int(bound)
            gone += outbox.prune_through(conn, upto)
        if upto >= through:
            return gone
