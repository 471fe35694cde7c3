"""Migrations build exactly the schema the code declares, on both backends, in one history."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

from ztsim.db.engine import alembic_config, upgrade
from ztsim.db.schema import metadata


def test_migrations_match_the_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_history_has_one_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    assert heads == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_a_database_left_on_the_three_old_heads_joins_the_one_history(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        for branch in ("0003_dns", "0003_esim", "0003_radius"):
            upgrade(engine, branch)
        with engine.connect() as conn:
            before = set(MigrationContext.configure(conn).get_current_heads())
        assert before == {"0003_dns", "0003_esim", "0003_radius"}
        upgrade(engine)
        with engine.connect() as conn:
            after = set(MigrationContext.configure(conn).get_current_heads())
        assert after == set(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert len(after) == 1
    finally:
        engine.dispose()
