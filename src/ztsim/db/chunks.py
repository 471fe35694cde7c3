"""Reading rows by a list of keys, a chunk of keys per statement: the one way the stores
do it, so no store builds an IN list past what a backend takes."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select

Key = TypeVar("Key", str, int)  # text keys (ids, addresses) or integer ids

CHUNK = 500  # values per IN (...): well under every backend's parameter limit


def rows_in(
    conn: Connection,
    query: Select[Any],
    column: ColumnElement[Any],
    values: Collection[Key] | None,
) -> list[Any]:
    """The query's rows: all (`values` None), or those whose `column` is in `values`,
    asked a chunk at a time."""
    # Fetched whole (`all`): a row at a time, the driver's per-fetch cost adds seconds to
    # a start with 1M sessions.
    if values is None:
        return list(conn.execute(query).all())
    ordered = sorted(set(values))
    rows: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        rows += conn.execute(query.where(column.in_(ordered[start : start + CHUNK]))).all()
    return rows
