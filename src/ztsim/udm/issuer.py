"""Vectors for the Nudm endpoint at the rate of many AUSFs: SQN blocks reserved ahead
(`sqn_blocks`) and group commit (`batcher`) around the same rules as `service.generate`.

`service.generate` advances SEQ_HE with one committed UPDATE per vector, about a
thousand a second on PostgreSQL, bound by the commit's wait for the disk. A
`VectorIssuer` serves concurrent requests in batches, one flusher thread per process:

1. One read for the batch: each SIM's org, state, SEQ_HE (the row's `sqn_seq`) and
   sealed keys. Unknown SUPIs and SUPIs of another org are NotFound, as before.
2. Active SIMs whose block of reserved SEQs is still current (the row shows the
   block's top: no one else moved SEQ_HE) get the block's next SEQ, from memory.
3. The others, in one transaction for the whole batch: one `UPDATE ... RETURNING`
   reserves a new block for each SIM (as big as the batch needs, plus what demand says), and
   SIMs found not active get their `aka.refused` event; then the commit, and only then
   any answer. A batch needing neither writes nothing.
4. Each caller then computes its own vector (K and OPc unsealed for it and dropped).

Resynchronisations (AUTS) are rare and stay `service.generate` with its own
transaction, run by the flusher between batches; the SIM's block is dropped after it
commits, so every vector asked for after its answer comes from SEQ_MS on (Annex C.3).
Results, refusals, events and errors are those of `service.generate`; only the row's
`sqn_seq` may run ahead of the last SEQ issued, by the unused rest of a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy import Connection, Engine, Update, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ztsim.db import schema
from ztsim.db.engine import writing
from ztsim.errors import NotFound
from ztsim.inventory.lifecycle import SimState
from ztsim.sealing import Sealer
from ztsim.udm import service
from ztsim.udm.batcher import MAX_BATCH, MAX_WAIT, GroupCommit, LoopGroupCommit
from ztsim.udm.service import IssuedVector, Refusal, Resynchronization
from ztsim.udm.sqn_blocks import MAX_BLOCK, SqnBlocks

_s = schema.sims
_ACTIVE = SimState.ACTIVE.value


@dataclass(frozen=True, slots=True)
class VectorRequest:
    """One generate-auth-data request, for the SIM with `imsi` in `org_id`."""

    org_id: str
    imsi: str
    serving_network_name: str
    node_id: str
    now: datetime
    resync: Resynchronization | None = None


@dataclass(frozen=True, slots=True)
class _Grant:
    """A committed SEQ for one request, and what computing its vector needs."""

    iccid: str
    seq: int
    k_sealed: bytes
    opc_sealed: bytes


_Outcome = _Grant | IssuedVector | Refusal


# Each batch's read, built once (building and keying it cost as much as running it).
_READ = select(
    _s.c.id,
    _s.c.org_id,
    _s.c.imsi,
    _s.c.iccid,
    _s.c.state,
    _s.c.sqn_seq,
    _s.c.k_sealed,
    _s.c.opc_sealed,
).where(_s.c.imsi.in_(bindparam("imsis", expanding=True)))


def _reserve(sizes: dict[str, int]) -> Update:
    """One statement for the batch: each active SIM's SEQ_HE moved on by its block's size."""
    return (
        update(_s)
        .where(_s.c.imsi.in_(sorted(sizes)), _s.c.state == _ACTIVE)
        .values(sqn_seq=_s.c.sqn_seq + case(sizes, value=_s.c.imsi))
        .returning(_s.c.imsi, _s.c.sqn_seq, _s.c.iccid, _s.c.k_sealed, _s.c.opc_sealed)
    )


class VectorIssuer:
    """The Nudm endpoint's service function; one per process and database."""

    def __init__(
        self,
        engine: Engine,
        sealer: Sealer,
        *,
        rand: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.monotonic,
        max_block: int = MAX_BLOCK,
        max_batch: int = MAX_BATCH,
        max_wait: float = MAX_WAIT,
        async_engine: AsyncEngine | None = None,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._rand = rand
        self._clock = clock
        self._blocks = SqnBlocks(max_block)  # touched by one batch at a time
        self._one_batch = threading.Lock()
        self._batcher: GroupCommit[VectorRequest, _Outcome] = GroupCommit(
            self._run, max_batch=max_batch, max_wait=max_wait, name="udm-vectors"
        )
        self._async_engine = async_engine
        self._home: asyncio.AbstractEventLoop | None = None
        self._held: AsyncConnection | None = None  # the home loop's, between batches
        self._loop_batcher: LoopGroupCommit[VectorRequest, _Outcome] = LoopGroupCommit(
            self._run_async, max_batch=max_batch, name="udm-vectors"
        )

    def issue(self, request: VectorRequest) -> IssuedVector | Refusal:
        """A 5G HE AV, or why not; NotFound for an unknown SUPI. Blocks the caller."""
        return self._finish(request, self._batcher.call(request))

    async def issue_async(self, request: VectorRequest) -> IssuedVector | Refusal:
        """`issue` for a caller on an event loop. With an `async_engine`, the batches of
        the first loop that calls run on that loop; other loops' go to the thread."""
        if self._async_engine is not None:
            loop = asyncio.get_running_loop()
            if self._home is None:
                self._home = loop
            if loop is self._home:
                return self._finish(request, await self._loop_batcher.call(request))
        return self._finish(request, await self._batcher.call_async(request))

    def close(self) -> None:
        self._batcher.close()

    async def aclose(self) -> None:
        """`close`, and the loop's batches finished and their connections closed: on the
        loop that ran them."""
        await self._loop_batcher.aclose()
        if self._held is not None:
            await self._held.close()
            self._held = None
        if self._async_engine is not None:
            await self._async_engine.dispose()
        self.close()

    def __enter__(self) -> VectorIssuer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _finish(self, request: VectorRequest, outcome: _Outcome) -> IssuedVector | Refusal:
        if not isinstance(outcome, _Grant):
            return outcome
        milenage = service.milenage_for(
            self._sealer, outcome.iccid, outcome.k_sealed, outcome.opc_sealed
        )
        return service.issued_vector(
            milenage,
            request.imsi,
            outcome.iccid,
            outcome.seq,
            serving_network_name=request.serving_network_name,
            node_id=request.node_id,
            rand=self._rand,
        )

    # -- a batch: in the flusher thread, or awaited on the home loop ---------------------

    def _run(self, jobs: Sequence[VectorRequest]) -> list[_Outcome | Exception]:
        with self._engine.connect() as conn:
            return self._run_on(conn, jobs)

    async def _run_async(self, jobs: Sequence[VectorRequest]) -> list[_Outcome | Exception]:
        # One connection held from batch to batch: a checkout per batch cost two round
        # trips more (the pool's ping, the reset on return) than the batch's own.
        assert self._async_engine is not None
        if self._held is None:
            self._held = await self._async_engine.connect()
        conn = self._held
        try:
            # The same statements, their round trips awaited on the loop (a greenlet).
            return await conn.run_sync(self._run_on, jobs)
        except BaseException:
            self._held = None  # it may be broken: the next batch connects afresh
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    def _run_on(
        self, conn: Connection, jobs: Sequence[VectorRequest]
    ) -> list[_Outcome | Exception]:
        # Preset: unknown, or of another org (each its own exception: raised in its caller).
        results: list[_Outcome | Exception] = [
            NotFound("no subscriber with that SUPI") for _ in jobs
        ]
        with self._one_batch:
            plain = [i for i, job in enumerate(jobs) if job.resync is None]
            self._plain(conn, jobs, plain, results)
            for i, job in enumerate(jobs):
                if job.resync is not None:
                    results[i] = self._resync(conn, job, job.resync)
        return results

    def _plain(
        self,
        conn: Connection,
        jobs: Sequence[VectorRequest],
        indexes: list[int],
        results: list[_Outcome | Exception],
    ) -> None:
        if not indexes:
            return
        imsis = sorted({jobs[i].imsi for i in indexes})
        # A read: on SQLite it takes no write lock, and most batches need no write.
        with conn.begin():
            rows = {r.imsi: r for r in conn.execute(_READ, {"imsis": imsis})}
        waiting: dict[str, list[int]] = {}  # IMSI -> requests needing a reservation
        refused: list[int] = []
        for i in indexes:
            job = jobs[i]
            row = rows.get(job.imsi)
            if row is None or row.org_id != job.org_id:
                continue  # NotFound, as preset
            if row.state != _ACTIVE:
                refused.append(i)
                continue
            seq = self._blocks.take(job.imsi, row.sqn_seq)
            if seq is None:
                waiting.setdefault(job.imsi, []).append(i)
            else:
                results[i] = _Grant(row.iccid, seq, row.k_sealed, row.opc_sealed)
        if waiting or refused:
            self._write(conn, jobs, waiting, refused, results)

    def _write(
        self,
        conn: Connection,
        jobs: Sequence[VectorRequest],
        waiting: dict[str, list[int]],
        refused: list[int],
        results: list[_Outcome | Exception],
    ) -> None:
        """Reservations and refusals, committed together; blocks kept after the commit."""
        now = self._clock()
        sizes = {
            imsi: self._blocks.reservation_size(imsi, len(waiters), now)
            for imsi, waiters in waiting.items()
        }
        installs: list[tuple[str, int, int, int]] = []
        with writing(conn).begin() as tx:
            write = tx.connection
            reserved = {r.imsi: r for r in write.execute(_reserve(sizes))} if sizes else {}
            for imsi, waiters in waiting.items():
                got = reserved.get(imsi)
                if got is None:  # no longer active since the read
                    refused.extend(waiters)
                    continue
                size = sizes[imsi]
                for n, i in enumerate(waiters):
                    results[i] = _Grant(
                        got.iccid, got.sqn_seq - size + 1 + n, got.k_sealed, got.opc_sealed
                    )
                installs.append((imsi, got.sqn_seq, size, len(waiters)))
            for i in sorted(refused):
                job = jobs[i]
                try:
                    results[i] = service.refuse(write, job.org_id, job.imsi, job.now)
                except NotFound as exc:
                    results[i] = exc
        for imsi, top, size, used in installs:
            self._blocks.install(imsi, top, size, used, now)

    def _resync(
        self, conn: Connection, job: VectorRequest, resync: Resynchronization
    ) -> _Outcome | Exception:
        try:
            with writing(conn).begin() as tx:
                result = service.generate(
                    tx.connection,
                    self._sealer,
                    job.org_id,
                    job.imsi,
                    serving_network_name=job.serving_network_name,
                    node_id=job.node_id,
                    now=job.now,
                    rand=self._rand,
                    resync=resync,
                )
        except Exception as exc:  # this request's failure, not the batch's
            return exc
        finally:
            # Committed or not, SEQ_HE may have moved: the block must not outlive it.
            self._blocks.drop(job.imsi)
        return result
