"""The outbox: changes written in the transaction that makes them, read in order.

Ordering. A follower remembers the highest `seq` it applied and asks for what lies
above it, so a number must never become visible after a higher one. Concurrent
writers could commit out of order (a sequence hands out 7, then 8, and 8 commits
first). On PostgreSQL every publishing transaction therefore takes one transaction-level
advisory lock before it inserts, held until it commits: the numbers are handed out
in commit order. Publish last in a transaction, so the lock is held briefly. SQLite
has one writer at a time, so its numbers are in commit order already.

Wake-ups. On PostgreSQL a publishing transaction also sends NOTIFY (delivered at
commit, never for a rollback); it is a hint only, the outbox is the truth. In one
process (any backend), a connection whose transaction published and committed wakes
this process's followers when it goes back to its pool (SQLAlchemy has no event after
a commit; the pool's checkin is the first moment the change is surely visible). A
connection kept checked out across transactions wakes them only at its checkin; the
followers' poll covers it meanwhile (0.1 s on SQLite, NOTIFY on PostgreSQL).

Cost. Rows go to the driver and come back from it without SQLAlchemy's per-row type
processing (`ztsim.feed.rows`): the AAA role publishes a change per accounting session.
A reader that wants some topics only (`scan`'s `topics`) builds only their changes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, event, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ztsim.db import schema
from ztsim.db.bulk import insert_rows, takes_driver_rows
from ztsim.feed import rows
from ztsim.feed.change import Change, NewChange, Topic

CHANNEL = "ztsim_changes"  # PostgreSQL LISTEN/NOTIFY channel
# pg_advisory_xact_lock's key: "ZTSIMFED" as a big-endian 64-bit integer, unlikely to
# collide with the address-claims lock or an application sharing the database.
ADVISORY_KEY = int.from_bytes(b"ZTSIMFED", "big") - (1 << 63)
# A pooled connection's info: its open transaction published (pending), then committed
# (published: wake followers at checkin). A rollback drops the pending mark.
_PENDING = "ztsim_feed_pending"
_PUBLISHED = "ztsim_feed_published"

# psycopg's placeholders: the statement is sent by the driver, PostgreSQL only.
_LOCK_AND_NOTIFY = "SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')"

_t = schema.change_outbox
_state = schema.change_feed_state

_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def on_local_publish(wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after any connection of this process that published is returned to
    its pool (see `install`). Returns the function that removes it."""
    with _wakers_lock:
        _wakers.append(wake)

    def remove() -> None:
        with _wakers_lock:
            if wake in _wakers:
                _wakers.remove(wake)

    return remove


def _wake_local() -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        wake()


def _checkin(_dbapi: Any, record: Any) -> None:
    if record is not None:
        record.info.pop(_PENDING, None)  # checked in mid-transaction: rolled back
        if record.info.pop(_PUBLISHED, False):
            _wake_local()


def _commit(conn: Connection) -> None:
    # Runs just before the commit: the wake itself waits for the checkin, after it.
    if conn.info.pop(_PENDING, False):
        conn.info[_PUBLISHED] = True


def _rollback(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)


def install(engine: Engine) -> None:
    """Wake this process's followers when a connection of `engine`'s pool whose
    transaction published and committed is checked in. Idempotent."""
    if not event.contains(engine.pool, "checkin", _checkin):
        event.listen(engine.pool, "checkin", _checkin)
    if not event.contains(engine, "commit", _commit):
        event.listen(engine, "commit", _commit)
        event.listen(engine, "rollback", _rollback)


def publish(conn: Connection, changes: Iterable[NewChange], now: datetime) -> None:
    """Add changes to the outbox in `conn`'s transaction (which must write anyway)."""
    changes = list(changes)
    if not changes:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # One round trip for both: the lock before the insert takes its numbers, and the
        # NOTIFY is queued now but sent only at commit (one per transaction: PostgreSQL
        # folds identical notifications).
        conn.exec_driver_sql(_LOCK_AND_NOTIFY, (ADVISORY_KEY, CHANNEL))
        # The driver's executemany: psycopg pipelines one short statement that it parses
        # once, where a statement of many rows' placeholders is parsed anew every time
        # (it caches statements of at most 50 parameters), for as long as the rows take.
        conn.exec_driver_sql(_insert_sql(conn), rows.encode(changes, now, dialect))
    elif takes_driver_rows(dialect):
        # Many rows a statement (see `ztsim.db.bulk`; the rows' forms: `ztsim.feed.rows`).
        insert_rows(conn, _t, rows.COLUMNS, rows.encode(changes, now, dialect))
    else:
        conn.execute(
            insert(_t),
            [
                {
                    "org_id": c.org_id,
                    "topic": c.topic.value,
                    "key": c.key,
                    "payload": dict(c.payload),
                    "created_at": now,
                }
                for c in changes
            ],
        )
    conn.info[_PENDING] = True


def publish_one(
    conn: Connection,
    org_id: str,
    topic: Topic,
    key: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    publish(conn, [NewChange(org_id, topic, key, payload or {})], now)


def position(conn: Connection) -> int:
    """The highest sequence number visible to `conn`'s transaction (0: none yet)."""
    head = conn.execute(select(func.max(_t.c.seq))).scalar()
    return int(head) if head is not None else pruned_through(conn)


def pruned_through(conn: Connection) -> int:
    value = conn.execute(select(_state.c.pruned_through).where(_state.c.id == 1)).scalar()
    return int(value) if value is not None else 0


@dataclass(frozen=True, slots=True)
class Scan:
    """One read of the outbox above a position: the changes of the topics asked for, and
    the sequence numbers of the first and last rows read, whatever their topic (None:
    nothing above the position). A follower moves to `last`: every row up to it was
    seen in one statement's snapshot, and, numbers being visible in commit order, none
    at or below it can appear later."""

    changes: list[Change]
    first: int | None
    last: int | None
    rows: int  # rows read; fewer than the limit: the head was reached

    def __bool__(self) -> bool:
        return self.rows > 0


def scan(
    conn: Connection, seq: int, limit: int = 1000, topics: Collection[Topic] | None = None
) -> Scan:
    """The next `limit` rows above `seq`, in one statement, kept as changes when their
    topic is among `topics` (None: all). The rows skipped stay in the database."""
    dialect = conn.dialect.name
    wanted = rows.wanted_topics(topics)
    found: Sequence[Sequence[Any]]
    if not takes_driver_rows(dialect):
        query = (
            select(*(_t.c[name] for name in rows.READ_COLUMNS))
            .where(_t.c.seq > seq)
            .order_by(_t.c.seq)
            .limit(limit)
        )
        found = list(conn.execute(query))
    elif wanted is None:
        found = conn.exec_driver_sql(_read_sql(conn), (seq, limit)).fetchall()
    else:
        return _scan_topics(conn, seq, limit, tuple(sorted(wanted)))
    if not found:
        return Scan([], None, None, 0)
    changes = rows.decode(found, wanted)
    return Scan(changes, int(found[0][0]), int(found[-1][0]), len(found))


def _scan_topics(conn: Connection, seq: int, limit: int, wanted: tuple[str, ...]) -> Scan:
    # Most rows a follower reads are other planes' changes (the AAA's own sessions, say):
    # the database walks the window and hands over its bounds and the wanted rows only
    # (a skipped row cost a quarter of what it did as a row fetched and dropped here).
    sql = _read_topics_sql(conn, len(wanted))
    found = conn.exec_driver_sql(sql, (seq, limit, seq, *wanted)).fetchall()
    _, first, last, count, *_ = found[0]  # the window's row comes first
    if not count:
        return Scan([], None, None, 0)
    kept = [(row[1], *row[4:]) for row in found[1:]]
    return Scan(rows.decode(kept, None), int(first), int(last), int(count))


def read_after(
    conn: Connection, seq: int, limit: int = 1000, topics: Collection[Topic] | None = None
) -> list[Change]:
    """The changes of the next `limit` rows above `seq`. With `topics`, only theirs: the
    last change returned is then not where the read ended (use `scan` to follow)."""
    return scan(conn, seq, limit, topics).changes


def _insert_sql(conn: Connection) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return _insert_one_sql(quote(_t.name), tuple(quote(c) for c in rows.COLUMNS))


@functools.lru_cache(maxsize=8)
def _insert_one_sql(table: str, names: tuple[str, ...]) -> str:
    # Only quoted names and placeholders: the values are bound by the driver.
    marks = ", ".join(["%s"] * len(names))
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608


def _read_sql(conn: Connection) -> str:
    """The read of `scan` for every topic."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return _select_sql(quote(_t.name), tuple(quote(c) for c in rows.READ_COLUMNS), mark)


@functools.lru_cache(maxsize=32)
def _select_sql(table: str, names: tuple[str, ...], mark: str) -> str:
    seq, org_id, topic, key, payload, created_at = names
    # The payload as its text: psycopg would parse the JSON of every row; SQLite's is
    # text already. Only quoted names and placeholders: the values are bound by the driver.
    return (
        f"SELECT {seq}, {org_id}, {topic}, {key}, CAST({payload} AS TEXT), {created_at} "  # noqa: S608
        f"FROM {table} WHERE {seq} > {mark} ORDER BY {seq} LIMIT {mark}"
    )


def _read_topics_sql(conn: Connection, topics: int) -> str:
    """The read of `scan` for some topics: the window's bounds and size first (a row of
    its own, also when the window is empty), then the rows of the `topics` in it. One
    statement, so one snapshot on PostgreSQL too (READ COMMITTED)."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    names = tuple(quote(c) for c in rows.READ_COLUMNS)
    return _select_topics_sql(quote(_t.name), names, mark, topics)


@functools.lru_cache(maxsize=32)
def _select_topics_sql(table: str, names: tuple[str, ...], mark: str, topics: int) -> str:
    seq, org_id, topic, key, payload, created_at = names
    among = ", ".join([mark] * topics)
    # Columns: part (0 the window, 1 a change), seq (the window's first), the window's
    # last and size, then the change's other columns. Only quoted names and placeholders.
    return (
        f"WITH w AS (SELECT {seq} FROM {table} WHERE {seq} > {mark} "  # noqa: S608
        f"ORDER BY {seq} LIMIT {mark}) "
        f"SELECT 0, MIN(w.{seq}), MAX(w.{seq}), COUNT(*), NULL, NULL, NULL, NULL, NULL FROM w "
        f"UNION ALL SELECT 1, {seq}, NULL, NULL, {org_id}, {topic}, {key}, "
        f"CAST({payload} AS TEXT), {created_at} FROM {table} "
        f"WHERE {seq} > {mark} AND {seq} <= (SELECT MAX(w.{seq}) FROM w) "
        f"AND {topic} IN ({among}) ORDER BY 1, 2"
    )


def prune(conn: Connection, older_than: datetime) -> int:
    """Drop changes made before `older_than` in `conn`'s transaction, all at once (see
    `retention.prune_older_than` for bounded chunks); remembers how far, for late
    followers. Returns how many rows went."""
    through = conn.execute(select(func.max(_t.c.seq)).where(_t.c.created_at < older_than)).scalar()
    if through is None:
        return 0
    return prune_through(conn, int(through))


def prune_through(conn: Connection, through: int) -> int:
    """Drop every change numbered up to `through` and record it as pruned, in `conn`'s
    transaction (one commit makes both visible, so a follower that reads the rows
    first and `pruned_through` second never misses a gap). Returns how many went."""
    gone = conn.execute(delete(_t).where(_t.c.seq <= through)).rowcount
    values = {"id": 1, "pruned_through": through}
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(_state).values(values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_state.c.id],
                set_={"pruned_through": func.greatest(_state.c.pruned_through, through)},
            )
        )
    else:
        current = pruned_through(conn)
        conn.execute(delete(_state).where(_state.c.id == 1))
        conn.execute(insert(_state).values(id=1, pruned_through=max(current, through)))
    return int(gone or 0)
