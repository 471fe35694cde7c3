"""The outbox's rows in the forms the database driver takes and gives (issue 15).

The AAA writer publishes a SESSION change per session it writes, thousands a second at
benchmark rates, and every follower reads them back. Through SQLAlchemy's types each row
cost about as much as the rest of the write (the JSON and UtcDateTime processors, the
`Row` objects), so both directions skip them on SQLite and PostgreSQL: rows are encoded
here into exactly what those types would have bound, and decoded from exactly what they
would have read, so either way of writing reads back the same through the other.

- payload: `json.dumps` with its defaults (SQLAlchemy's JSON type and psycopg's `Json`
  both call it so): text on SQLite, the `json` column's text on PostgreSQL (which keeps
  it verbatim and hands it back parsed).
- created_at: naive UTC text with microseconds on SQLite (SQLAlchemy's storage format),
  an aware UTC datetime on PostgreSQL (timestamptz).

Decoding also skips the topics a follower does not want without building them (on the
backends where `outbox.scan` cannot leave them in the database).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ztsim.db.jsontext import json_text
from ztsim.feed.change import Change, NewChange, Topic

COLUMNS = ("org_id", "topic", "key", "payload", "created_at")
READ_COLUMNS = ("seq", *COLUMNS)
_EMPTY = "{}"
_TOPICS: dict[str, Topic] = {t.value: t for t in Topic}
_loads = json.JSONDecoder().decode  # json.loads without its per-call checks: text only


def stored_time(now: datetime, dialect: str) -> object:
    """`now` as UtcDateTime binds it on `dialect` (the driver's form)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    utc = now.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if dialect == "sqlite" else utc


def dumps(payload: Mapping[str, Any]) -> str:
    """The JSON text SQLAlchemy's JSON type (and psycopg's `Json`) writes for `payload`."""
    return json_text(dict(payload)) if payload else _EMPTY


def encode(changes: Iterable[NewChange], now: datetime, dialect: str) -> list[tuple[object, ...]]:
    """Rows of `COLUMNS` for `ztsim.db.bulk.insert_rows`."""
    created = stored_time(now, dialect)
    return [(c.org_id, c.topic.value, c.key, dumps(c.payload), created) for c in changes]


def wanted_topics(topics: Collection[Topic] | None) -> frozenset[str] | None:
    """The topics' stored values (None: every topic)."""
    return None if topics is None else frozenset(Topic(t).value for t in topics)


class _Times:
    """Decodes created_at. The rows of one transaction share one time, so the last one
    decoded is kept: a batch of a thousand changes usually parses one or two."""

    __slots__ = ("_raw", "_value")

    def __init__(self) -> None:
        self._raw: object = None
        self._value = datetime.min.replace(tzinfo=UTC)

    def __call__(self, raw: object) -> datetime:
        if raw == self._raw:
            return self._value
        if isinstance(raw, str):  # SQLite: naive UTC text
            value = datetime.fromisoformat(raw)
        elif isinstance(raw, datetime):
            value = raw
        else:
            raise TypeError(f"created_at read as {type(raw).__name__}")
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        self._raw, self._value = raw, value
        return value


def _payload(raw: object) -> dict[str, Any]:
    # Text on SQLite; already parsed on PostgreSQL (psycopg loads json columns) and
    # through SQLAlchemy's JSON type (other backends). `Change` freezes it.
    if raw == _EMPTY or raw is None:
        return {}
    value = _loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise TypeError(f"a change's payload read as {type(value).__name__}")
    return value


def decode(rows: Iterable[Sequence[Any]], topics: frozenset[str] | None) -> list[Change]:
    """Changes from rows of `READ_COLUMNS`, in their order; those whose topic is not in
    `topics` (when given) are left out."""
    times = _Times()
    changes: list[Change] = []
    for seq, org_id, topic, key, payload, created_at in rows:
        if topics is not None and topic not in topics:
            continue
        changes.append(
            Change(
                int(seq),
                org_id,
                _TOPICS.get(topic) or Topic(topic),  # an unknown topic: ValueError, as ever
                key,
                _payload(payload),
                times(created_at),
            )
        )
    return changes
