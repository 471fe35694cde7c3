"""The issuer's two batch statements on PostgreSQL, each one round trip in autocommit:
the read of a batch's SIMs, and the reservation of blocks for the active ones,
committed when it returns; a lost connection is made again for the next batch."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import Engine, update

from ztsim.db import schema
from ztsim.db.engine import psycopg_conninfo
from ztsim.identity import repository as identities
from ztsim.inventory.lifecycle import SimState
from ztsim.sealing import Sealer
from ztsim.udm.pg_batches import PgBatches

from support.factories import SimSpec, activate, make_sims, sqn_seq
from support.pg_backends import terminate
from tests_clock import NOW

APPLICATION = "ztsim-test-batches"


@pytest.fixture
def pg(engine: Engine) -> str:
    conninfo = psycopg_conninfo(engine, APPLICATION)
    if conninfo is None:
        pytest.skip("PostgreSQL only: SQLite has the issuer's thread path")
    return conninfo


def _sims(engine: Engine, sealer: Sealer, count: int) -> list[SimSpec]:
    specs = make_sims(count, seed=5)
    with engine.begin() as conn:
        for n, spec in enumerate(specs):
            org = identities.create_org(conn, f"Acme {n}", f"acme-{n}", NOW).id
            activate(conn, sealer, org, spec, NOW)
    return specs


def test_a_batch_reads_its_sims_and_reserves_for_the_active_ones(
    engine: Engine, sealer: Sealer, pg: str
) -> None:
    a, b, c = _sims(engine, sealer, 3)
    with engine.begin() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.imsi == c.imsi)
            .values(state=SimState.SUSPENDED.value)
        )
    batches = PgBatches(pg)

    async def run() -> tuple[list[object], list[object]]:
        found = await batches.read([a.imsi, b.imsi, c.imsi, "001019999999999"])
        reserved = await batches.reserve({a.imsi: 3, b.imsi: 1, c.imsi: 2})
        await batches.aclose()
        return found, reserved

    found, reserved = asyncio.run(run())
    assert {(r.imsi, r.iccid, r.state) for r in found} == {  # type: ignore[attr-defined]
        (a.imsi, a.iccid, "active"),
        (b.imsi, b.iccid, "active"),
        (c.imsi, c.iccid, "suspended"),
    }
    assert {(r.imsi, r.sqn_seq) for r in reserved} == {(a.imsi, 3), (b.imsi, 1)}  # type: ignore[attr-defined]
    # Committed when it returned: another connection sees it; the suspended SIM is untouched.
    assert (sqn_seq(engine, a), sqn_seq(engine, b), sqn_seq(engine, c)) == (3, 1, 0)


def test_a_lost_connection_fails_one_batch_and_is_made_again(
    engine: Engine, sealer: Sealer, pg: str
) -> None:
    (a,) = _sims(engine, sealer, 1)
    batches = PgBatches(pg)

    async def run() -> None:
        assert len(await batches.read([a.imsi])) == 1
        killed = terminate(engine, APPLICATION)
        assert killed == 1
        with pytest.raises(psycopg.OperationalError):
            await batches.reserve({a.imsi: 1})
        assert [r.sqn_seq for r in await batches.reserve({a.imsi: 1})] == [1]
        await batches.aclose()

    asyncio.run(run())
    assert sqn_seq(engine, a) == 1  # the failed reservation wrote nothing


def test_it_never_shows_its_conninfo(pg: str) -> None:
    assert pg not in repr(PgBatches(pg))
    assert "postgres" not in repr(PgBatches(pg))
