"""Fixtures of the change feed's tests: where the test database is (for another engine
or another process), and a second engine on it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from ztsim.db.engine import make_engine


@pytest.fixture
def database(engine: Engine, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The URL and (PostgreSQL) schema of `engine`'s database."""
    if engine.dialect.name == "postgresql":
        url, schema = request.getfixturevalue("pg_schema")
        return str(url), str(schema)
    return engine.url.render_as_string(hide_password=False), None


@pytest.fixture
def app_name() -> str:
    """A PostgreSQL application_name no other connection on the server has: a test finds
    (and may terminate) its own connections by it, never another test run's."""
    return f"ztsim-feed-test-{secrets.token_hex(4)}"


@pytest.fixture
def other_engine(database: tuple[str, str | None], app_name: str) -> Iterator[Engine]:
    """A second engine (its own pool, none of the first one's events) on the same
    database; on PostgreSQL its connections carry `app_name`."""
    url, schema = database
    if schema is not None:
        url = (
            make_url(url)
            .update_query_dict({"application_name": app_name})
            .render_as_string(hide_password=False)
        )
    eng = make_engine(url, schema=schema)
    yield eng
    eng.dispose()
