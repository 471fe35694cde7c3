"""An engine's asyncio twin: the same PostgreSQL database and search_path, named in
pg_stat_activity; none for SQLite."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine, text

from ztsim.db.engine import async_twin


def test_the_async_twin_reaches_the_same_schema_under_its_name(engine: Engine) -> None:
    twin = async_twin(engine, "ztsim-test-twin")
    if engine.dialect.name == "sqlite":
        assert twin is None
        return
    assert twin is not None
    with engine.connect() as conn:
        expected = conn.execute(text("SHOW search_path")).scalar_one()

    async def read() -> tuple[str, str]:
        async with twin.connect() as conn:
            path = (await conn.execute(text("SHOW search_path"))).scalar_one()
            name = (await conn.execute(text("SHOW application_name"))).scalar_one()
        await twin.dispose()
        return str(path), str(name)

    assert asyncio.run(read()) == (expected, "ztsim-test-twin")
