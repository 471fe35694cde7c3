"""PostgreSQL's side of a test: its backends, found by their application name."""

from __future__ import annotations

from sqlalchemy import Engine, text


def terminate(engine: Engine, application_name: str) -> int:
    """Kill the database's backends named `application_name` (a lost connection, as a
    restart or a network cut gives it); how many there were."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": application_name},
            ).scalar_one()
        )
