"""The issuer's two batch statements on PostgreSQL, awaited on an event loop.

In a server the issuer's batches run on the loop that serves the requests (a flusher
thread beside a busy loop waited for the GIL at every round trip). Through SQLAlchemy's
asyncio layer (statements run in a greenlet, a transaction's BEGIN and COMMIT their
own round trips) a batch cost as much CPU as the HTTP requests of its vectors. Here
each statement is one round trip on one asyncio psycopg connection in autocommit, held
from batch to batch: the read takes the batch's IMSIs as one array, and a reservation
is one `UPDATE ... FROM unnest(...)` for every SIM of the batch, committed when it
returns (a batch that only reads writes nothing, so waits for no disk). They are the
statements of `issuer._READ` and `issuer._reserve`, which the thread's path (and
SQLite) runs through SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from ztsim.inventory.lifecycle import SimState

_READ = (
    "SELECT id, org_id, imsi, iccid, state, sqn_seq, k_sealed, opc_sealed"
    " FROM sims WHERE imsi = ANY(%s)"
)
_RESERVE = (
    "UPDATE sims SET sqn_seq = sims.sqn_seq + wanted.size"
    " FROM unnest(%s::text[], %s::bigint[]) AS wanted(imsi, size)"
    " WHERE sims.imsi = wanted.imsi AND sims.state = %s"
    " RETURNING sims.imsi, sims.sqn_seq, sims.iccid, sims.k_sealed, sims.opc_sealed"
)


class PgBatches:
    """One asyncio connection to the database of `conninfo` (a libpq URI: it may carry a
    password, so it is never shown), made at first use and again after a failure."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def __repr__(self) -> str:
        return "PgBatches()"

    async def read(self, imsis: Sequence[str]) -> list[Any]:
        """The SIMs' rows: id, org_id, imsi, iccid, state, sqn_seq and sealed keys."""
        return await self._fetch(_READ, (list(imsis),))

    async def reserve(self, sizes: dict[str, int]) -> list[Any]:
        """Each active SIM's SEQ_HE moved on by its size, committed: imsi, the new
        sqn_seq (the block's top), iccid and sealed keys. A SIM not active is absent."""
        imsis = sorted(sizes)
        return await self._fetch(
            _RESERVE, (imsis, [sizes[imsi] for imsi in imsis], SimState.ACTIVE.value)
        )

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _fetch(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, row_factory=namedtuple_row
            )
        conn = self._conn
        try:
            cursor = await conn.execute(statement, params, prepare=True)
            return await cursor.fetchall()
        except BaseException:
            # Broken, or cancelled mid-statement: the next batch connects afresh.
            self._conn = None
            await conn.close()
            raise
