"""A PostgreSQL engine's libpq URI, for a psycopg connection of its own: the same
database and search_path, named in pg_stat_activity; none for SQLite."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, text

from ztsim.db.engine import psycopg_conninfo


def test_a_conninfo_reaches_the_same_schema_under_its_name(engine: Engine) -> None:
    conninfo = psycopg_conninfo(engine, "ztsim-test-conninfo")
    if engine.dialect.name == "sqlite":
        assert conninfo is None
        return
    assert conninfo is not None
    with engine.connect() as conn:
        expected = conn.execute(text("SHOW search_path")).scalar_one()
    with psycopg.connect(conninfo) as own:
        path = own.execute("SHOW search_path").fetchone()
        name = own.execute("SHOW application_name").fetchone()
    assert (path, name) == ((expected,), ("ztsim-test-conninfo",))
