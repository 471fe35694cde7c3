"""Shared fixtures: databases on both backends, sealing, the API, and the secret-leak watch."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ztsim.db.engine import make_engine, upgrade
from ztsim.db.schema import metadata
from ztsim.sealing import Sealer

from support.leaks import LEAKS

PG_URL_ENV = "ZTSIM_TEST_DATABASE_URL"
TEST_KEK = bytes(range(32))


# -- the secret-leak watch: every log line of the run is kept for the final scan ----------


class _KeepEverything(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LEAKS.add_text("log", self.format(record))


@pytest.fixture(autouse=True, scope="session")
def _watch_logs() -> Iterator[None]:
    handler = _KeepEverything(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(previous)


# -- databases ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run; each test gets a copy (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "ztsim.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run in one
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema for this run on the PostgreSQL server; dropped at the end."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_URL_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    schema = f"ztsim_test_{secrets.token_hex(4)}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, schema=schema)
    upgrade(engine)
    engine.dispose()
    yield url, schema
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _sqlite_engine(template: Path, tmp_path: Path) -> Engine:
    path = tmp_path / "ztsim.db"
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database, on each backend in turn."""
    if request.param == "sqlite":
        eng = _sqlite_engine(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url, schema = request.getfixturevalue("pg_schema")
        eng = make_engine(url, schema=schema)
        _truncate_all(eng)
    yield eng
    LEAKS.add_events(eng)
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: for API-level tests where the backend is not the point."""
    eng = _sqlite_engine(sqlite_template, tmp_path)
    yield eng
    LEAKS.add_events(eng)
    eng.dispose()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(TEST_KEK)


# API fixtures for every folder: `api` (a harness on SQLite) and `two_orgs`.
from support.world import api, two_orgs  # noqa: E402, F401
