"""Migrations build exactly the schema the code declares, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ztsim.db.engine import alembic_config, upgrade
from ztsim.db.schema import metadata


def test_migrations_match_the_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    assert heads == set(ScriptDirectory.from_config(alembic_config()).get_heads())
