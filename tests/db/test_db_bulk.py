"""The bulk insert on both backends: every row lands, in statements under SQLite's limit
of bound parameters, through the driver or through SQLAlchemy's insert()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, event, select

from ztsim.db import bulk

_probe = Table(
    "bulk_probe",
    MetaData(),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("label", String(20), nullable=False),
    # A reserved word as a column name: the helper quotes names.
    Column("order", String(20)),
)
COLUMNS = ("n", "label", "order")


@pytest.fixture
def probe(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as conn:
        _probe.create(conn)
    yield engine
    with engine.begin() as conn:
        _probe.drop(conn)


def _statements(engine: Engine) -> list[int]:
    """The number of bound parameters of each INSERT the engine runs from now on."""
    seen: list[int] = []

    def count(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO"):
            seen.append(len(params) if isinstance(params, (tuple, list)) else 1)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def _rows(n: int) -> list[tuple[object, ...]]:
    return [(i, f"row {i}", None if i % 3 else f"o{i}") for i in range(n)]


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(_probe).order_by(_probe.c.n))]


def test_rows_per_statement_keeps_under_sqlites_parameter_limit() -> None:
    assert bulk.rows_per_statement(8) == 124
    assert bulk.rows_per_statement(6) == 166
    assert bulk.rows_per_statement(2000) == 1
    for columns in range(1, 40):
        assert bulk.rows_per_statement(columns) * columns <= bulk.MAX_PARAMETERS
    with pytest.raises(ValueError, match="column"):
        bulk.rows_per_statement(0)


def test_the_driver_takes_the_rows_on_sqlite_and_postgresql_only() -> None:
    assert bulk.takes_driver_rows("sqlite")
    assert bulk.takes_driver_rows("postgresql")
    assert not bulk.takes_driver_rows("mysql")


def test_rows_land_in_as_many_statements_as_the_limit_needs(probe: Engine) -> None:
    rows = _rows(1000)  # 3 columns: 333 rows a statement, so 4 statements
    seen = _statements(probe)
    with probe.begin() as conn:
        assert bulk.insert_rows(conn, _probe, COLUMNS, rows) == 1000
    assert _stored(probe) == rows
    assert seen == [999, 999, 999, 3]


def test_without_the_driver_path_sqlalchemy_inserts_the_same_rows(
    probe: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_DRIVER_DIALECTS", frozenset())
    rows = _rows(500)
    with probe.begin() as conn:
        assert bulk.insert_rows(conn, _probe, COLUMNS, rows) == 500
    assert _stored(probe) == rows


def test_nothing_to_insert_runs_no_statement(probe: Engine) -> None:
    seen = _statements(probe)
    with probe.begin() as conn:
        assert bulk.insert_rows(conn, _probe, COLUMNS, []) == 0
    assert seen == []


def test_a_row_of_the_wrong_width_is_refused_before_anything_is_written(probe: Engine) -> None:
    with probe.begin() as conn, pytest.raises(ValueError, match="3 values"):
        bulk.insert_rows(conn, _probe, COLUMNS, [(1, "a", None), (2, "b")])
    assert _stored(probe) == []
