"""Many rows into one table in a few statements: the AAA process's bulk writes (decision
events, the leases of a burst of first attaches, the session table's upserts).

On SQLite and PostgreSQL the rows go straight to the driver, many per statement: at
benchmark rates SQLAlchemy's per-row type processing was the writer's main cost, and
held the GIL long enough to stall the RADIUS thread; a statement per row also made the
writer thread take and give back the GIL for each row, in turn with the hot path's
thread. Other backends get SQLAlchemy's `insert()`, whose types bind the values.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

from sqlalchemy import Connection, Table, insert

_DRIVER_DIALECTS = frozenset({"sqlite", "postgresql"})
# SQLite's oldest limit of bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER
# before 3.32.0); PostgreSQL's is 65,535, so SQLite's fits both.
MAX_PARAMETERS = 999


def takes_driver_rows(dialect_name: str) -> bool:
    """Whether `insert_rows` hands rows to the driver as they are on this backend. Then
    they must already be in the forms SQLAlchemy's types would bind: on SQLite, times as
    naive UTC text and booleans as 0 or 1."""
    return dialect_name in _DRIVER_DIALECTS


def rows_per_statement(columns: int) -> int:
    """How many rows of this many columns one statement takes."""
    if columns < 1:
        raise ValueError("a row has at least one column")
    return max(1, MAX_PARAMETERS // columns)


@functools.lru_cache(maxsize=32)
def _insert_sql(table: str, columns: tuple[str, ...], mark: str, rows: int) -> str:
    values = "(" + ", ".join([mark] * len(columns)) + ")"
    names = ", ".join(columns)
    # Only quoted names and placeholders: the values are bound by the driver.
    return f"INSERT INTO {table} ({names}) VALUES " + ", ".join([values] * rows)  # noqa: S608


@functools.lru_cache(maxsize=32)
def _upsert_sql(
    table: str,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    kept: tuple[str, ...],
    mark: str,
    rows: int,
) -> str:
    # The same clause on SQLite (3.24+) and PostgreSQL (9.5+); "excluded" is the row
    # that was to be inserted.
    updated = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key + kept)
    action = f"DO UPDATE SET {updated}" if updated else "DO NOTHING"
    conflict = f" ON CONFLICT ({', '.join(key)}) {action}"
    return _insert_sql(table, columns, mark, rows) + conflict


def upsert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    key: Sequence[str],
    kept: Sequence[str] = (),
) -> int:
    """Insert `rows`, or update the row already there with the same `key` (a unique
    constraint of `table`), leaving its `kept` columns (and the key) as they were; how
    many. At most one row per key. Only on the backends that `takes_driver_rows`, in the
    same forms: the others have no common upsert (`ValueError`)."""
    if not rows:
        return 0
    if not takes_driver_rows(conn.dialect.name):
        raise ValueError(f"no bulk upsert on {conn.dialect.name}")
    quote = conn.dialect.identifier_preparer.quote
    names = tuple(quote(c) for c in columns)
    key_names = tuple(quote(c) for c in key)
    kept_names = tuple(quote(c) for c in kept)
    if not set(key_names) <= set(names):
        raise ValueError("the key columns must be among the columns")
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    width = len(names)
    if any(len(row) != width for row in rows):
        raise ValueError(f"every row must have {width} values")
    table_name = quote(table.name)
    per_statement = rows_per_statement(width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params = tuple(itertools.chain.from_iterable(chunk))
        sql = _upsert_sql(table_name, names, key_names, kept_names, mark, len(chunk))
        conn.exec_driver_sql(sql, params)
    return len(rows)


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> int:
    """Insert `rows` (values in the order of `columns`) into `table`; how many. See
    `takes_driver_rows` for the form of the values."""
    if not rows:
        return 0
    if not takes_driver_rows(conn.dialect.name):
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return len(rows)
    quote = conn.dialect.identifier_preparer.quote
    table_name = quote(table.name)
    names = tuple(quote(c) for c in columns)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    width = len(names)
    if any(len(row) != width for row in rows):
        raise ValueError(f"every row must have {width} values")
    per_statement = rows_per_statement(width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params = tuple(itertools.chain.from_iterable(chunk))
        conn.exec_driver_sql(_insert_sql(table_name, names, mark, len(chunk)), params)
    return len(rows)
