"""Migrations build exactly the schema the code declares, on both backends, in one history."""

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

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


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_dns_rules_become_the_dns_planes_policy_rules_and_back(tmp_path: Path) -> None:
    """0006 keeps every DNS rule (id, name, order, selectors); its downgrade gives them back."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rules.db'}")
    when = "2026-11-24 12:00:00.000000"
    rows = [
        ("r1", "no-ads", 0, "block", '{"domains": [".ads.test"]}'),
        ("r2", "lab", 1, "override", '{"domains": ["lab.test"], "answer": ["10.0.0.9"]}'),
    ]
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orgs (id, name, slug, tofu_binding, created_at) "
                    "VALUES ('o', 'O', 'o', 0, :t)"
                ),
                {"t": when},
            )
            for rule_id, name, position, action, spec in rows:
                conn.execute(
                    text("INSERT INTO dns_rules VALUES (:i, 'o', :n, :p, :a, :s, :t, :t)"),
                    {"i": rule_id, "n": name, "p": position, "a": action, "s": spec, "t": when},
                )
        upgrade(engine, "0006")
        with engine.connect() as conn:
            moved = conn.execute(
                text("SELECT id, name, position, action, spec, plane FROM policy_rules ORDER BY id")
            ).all()
        assert [tuple(r) for r in moved] == [(*row, "dns") for row in rows]
        downgrade(engine, "0005")
        with engine.connect() as conn:
            back = conn.execute(
                text("SELECT id, name, position, action, spec FROM dns_rules ORDER BY id")
            ).all()
        assert [tuple(r) for r in back] == rows
    finally:
        engine.dispose()
