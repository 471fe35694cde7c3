"""The bulk insert on both backends: every row lands, in statements under SQLite's limit
of bound parameters, through the driver or through SQLAlchemy's insert()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    select,
)

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


# -- upserts -------------------------------------------------------------------------------

_keyed = Table(
    "bulk_keyed",
    MetaData(),
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("a", String(20), nullable=False),
    Column("b", String(20), nullable=False),
    Column("first", String(20)),
    Column("order", String(20)),
    UniqueConstraint("a", "b"),
)
KEYED = ("a", "b", "first", "order")


@pytest.fixture
def keyed(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as conn:
        _keyed.create(conn)
    yield engine
    with engine.begin() as conn:
        _keyed.drop(conn)


def _keyed_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(*(_keyed.c[c] for c in KEYED)).order_by(_keyed.c.n))
        return [tuple(r) for r in rows]


def test_an_upsert_inserts_new_keys_and_updates_known_ones_but_their_kept_columns(
    keyed: Engine,
) -> None:
    first = [(f"g{i % 2}", f"s{i}", f"first {i}", f"v{i}") for i in range(600)]
    with keyed.begin() as conn:
        assert bulk.upsert_rows(conn, _keyed, KEYED, first, key=("a", "b"), kept=("first",)) == 600
    assert _keyed_rows(keyed) == first
    # Half known (updated, their "first" kept), half new; over two statements (4 columns:
    # 249 rows a statement).
    second = [(f"g{i % 2}", f"s{i}", f"later {i}", f"w{i}") for i in range(300, 900)]
    seen = _statements(keyed)
    with keyed.begin() as conn:
        assert bulk.upsert_rows(conn, _keyed, KEYED, second, key=("a", "b"), kept=("first",)) == 600
    assert seen == [996, 996, 408]
    expected = first[:300] + [(a, b, f, f"w{b[1:]}") for a, b, f, _ in first[300:]] + second[300:]
    assert _keyed_rows(keyed) == expected


def test_an_upsert_with_nothing_to_update_keeps_the_known_row(keyed: Engine) -> None:
    with keyed.begin() as conn:
        bulk.upsert_rows(conn, _keyed, ("a", "b"), [("x", "y")], key=("a", "b"))
        bulk.upsert_rows(conn, _keyed, ("a", "b"), [("x", "y"), ("x", "z")], key=("a", "b"))
    assert _keyed_rows(keyed) == [("x", "y", None, None), ("x", "z", None, None)]


def test_an_upsert_refuses_bad_input_and_other_backends_before_writing(
    keyed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with keyed.begin() as conn:
        with pytest.raises(ValueError, match="4 values"):
            bulk.upsert_rows(
                conn, _keyed, KEYED, [("a", "b", None, None), ("a", "c")], key=("a", "b")
            )
        with pytest.raises(ValueError, match="key"):
            bulk.upsert_rows(conn, _keyed, ("a", "first"), [("a", "b")], key=("a", "b"))
        assert bulk.upsert_rows(conn, _keyed, KEYED, [], key=("a", "b")) == 0
        monkeypatch.setattr(bulk, "_DRIVER_DIALECTS", frozenset())
        with pytest.raises(ValueError, match="no bulk upsert"):
            bulk.upsert_rows(conn, _keyed, KEYED, [("a", "b", None, None)], key=("a", "b"))
    assert _keyed_rows(keyed) == []
