"""Migration 0009: every site that exists carries bare IP, as it did before the column was
there, with no MAC; the downgrade takes the columns and keeps the sites and their networks
(with the foreign keys enforced, as ztsim's engine enforces them). On SQLite, and on
PostgreSQL in a schema of its own when ZTSIM_TEST_DATABASE_URL is set."""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from ztsim.db.engine import alembic_config, make_engine, upgrade

_WHEN = "2026-11-24 12:00:00.000000"


@pytest.fixture(params=["sqlite", "postgres"])
def bare(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database, no migration run yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'sites.db'}")
        yield engine
        engine.dispose()
        return
    url = os.environ.get("ZTSIM_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests need ZTSIM_TEST_DATABASE_URL")
    schema = f"ztsim_test_{secrets.token_hex(4)}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_existing_sites_carry_ip_and_the_downgrade_keeps_them(bare: Engine) -> None:
    upgrade(bare, "0008")
    with bare.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orgs (id, name, slug, tofu_binding, created_at) "
                "VALUES ('o', 'O', 'o', :f, :t)"
            ),
            {"t": _WHEN, "f": False},
        )
        conn.execute(
            text(
                "INSERT INTO net_sites VALUES "
                "('s', 'o', 'hq', 'geneve', '192.0.2.1', 6081, 100, :t, :t)"
            ),
            {"t": _WHEN},
        )
        conn.execute(
            text("INSERT INTO net_networks VALUES ('n', 'o', 's', 'lan', '10.1.0.0/16', :t)"),
            {"t": _WHEN},
        )
    upgrade(bare, "0009")
    with bare.connect() as conn:
        row = conn.execute(text('SELECT "inner", site_mac FROM net_sites')).one()
    assert tuple(row) == ("ip", None)
    config = alembic_config()
    with bare.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    columns = {c["name"] for c in inspect(bare).get_columns("net_sites")}
    assert {"inner", "site_mac"} & columns == set()
    assert "vni" in columns
    with bare.connect() as conn:
        assert conn.execute(text("SELECT id, vni FROM net_sites")).all() == [("s", 100)]
        assert conn.execute(text("SELECT site_id FROM net_networks")).all() == [("s",)]
