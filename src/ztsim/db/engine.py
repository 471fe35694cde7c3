"""Engines for the two supported backends, and schema upgrades via Alembic."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

_MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("ztsim.db")


def private_sqlite_files(database: Path) -> None:
    """The database holds IMSIs, IMEIs, locations, names and emails: its owner's only.
    A new file is created 0600 before SQLite opens it (SQLite gives the -wal and -shm
    files the database file's mode); existing ones are tightened."""
    if not database.parent.exists():
        database.parent.mkdir(mode=0o700, parents=True)
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if not path.exists():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(mode & 0o600)
            log.warning("database file %s was mode %o; now %o", path, mode, mode & 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions begin (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API) and one writer (imports, events) work at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin(conn: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another connection wrote meanwhile (SQLite cannot upgrade a stale
    # snapshot); writers take the write lock up front and wait (busy_timeout) instead.
    # Readers stay deferred, so they never hold up the writers.
    immediate = conn.get_execution_options().get(_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_IMMEDIATE = "ztsim_sqlite_immediate"


def for_writing(engine: Engine) -> Engine:
    """The same engine (and pool), whose transactions take SQLite's write lock at BEGIN.
    Use it for transactions that write; PostgreSQL ignores the option."""
    return engine.execution_options(**{_IMMEDIATE: True})


def writing(conn: Connection) -> Connection:
    """`for_writing` for one connection (its next transactions take the write lock at
    BEGIN): for a connection that also works outside the write lock first."""
    return conn.execution_options(**{_IMMEDIATE: True})


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """Build an engine. `schema` pins PostgreSQL's search_path (tests use a fresh one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_files(Path(parsed.database))
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if schema is not None:
            # In the URL rather than connect_args, so that `psycopg_conninfo` has it.
            parsed = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    raise ValueError(f"unsupported database backend: {parsed.get_backend_name()}")


def psycopg_conninfo(engine: Engine, application_name: str) -> str | None:
    """The libpq URI of a PostgreSQL engine's database (its search_path too), for a
    psycopg connection of its own named `application_name` in pg_stat_activity; None for
    another backend. It carries the password: never log it."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    url = engine.url.set(drivername="postgresql").update_query_dict(
        {"application_name": application_name}
    )
    return url.render_as_string(hide_password=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
