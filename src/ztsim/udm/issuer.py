"""Vectors for the Nudm endpoint at the rate of many AUSFs: SQN blocks reserved ahead
(`sqn_blocks`, handed out per batch by `grants`) and group commit (`batcher`) around the
same rules as `service.generate`.

`service.generate` advances SEQ_HE with one committed UPDATE per vector, about a
thousand a second on PostgreSQL, bound by the commit's wait for the disk. A
`VectorIssuer` serves concurrent requests in batches, one at a time per process: in a
flusher thread (SQLAlchemy Core; SQLite, or callers in threads), or, given a
`PgBatches`, awaited on the event loop of the first caller there (a server's), with
its two statements on one asyncio PostgreSQL connection (`pg_batches`):

1. One read for the batch: each SIM's org, state, SEQ_HE (the row's `sqn_seq`) and
   sealed keys. Unknown SUPIs and SUPIs of another org are NotFound, as before.
2. Active SIMs whose block of reserved SEQs is still current (the row shows the
   block's top: no one else moved SEQ_HE) get the block's next SEQ, from memory.
3. The others, in one transaction for the whole batch: one `UPDATE ... RETURNING`
   reserves a new block for each SIM (as big as the batch needs, plus what demand says), and
   SIMs found not active get their `aka.refused` event; then the commit, and only then
   their answers. A batch needing neither writes nothing. On the loop's path the
   requests granted in step 2 are answered before this step (their SEQs were committed
   with their block), so a commit's wait for the disk holds back only its own SIMs'.
4. Each request's vector is computed once its SEQ is, K and OPc unsealed for it and
   dropped: by its caller in the thread's path, by the batch before it answers on the
   loop's.

Resynchronisations (AUTS) are rare and stay `service.generate` with its own
transaction, run after the batch's vectors (by a worker thread on the loop's path, as
are refusals there); the SIM's block is dropped after it
commits, so every vector asked for after its answer comes from SEQ_MS on (Annex C.3).
Results, refusals, events and errors are those of `service.generate`; only the row's
`sqn_seq` may run ahead of the last SEQ issued, by the unused rest of a block.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy import Connection, Engine

from ztsim.db.engine import writing
from ztsim.errors import NotFound
from ztsim.sealing import Sealer
from ztsim.udm import service
from ztsim.udm.batcher import MAX_BATCH, MAX_WAIT, GroupCommit, LoopGroupCommit
from ztsim.udm.grants import (
    READ,
    Grant,
    Grants,
    Outcome,
    Results,
    Waiting,
    imsis,
    preset,
    reserve,
)
from ztsim.udm.pg_batches import PgBatches
from ztsim.udm.service import IssuedVector, Refusal, Resynchronization
from ztsim.udm.sqn_blocks import MAX_BLOCK


@dataclass(frozen=True, slots=True)
class VectorRequest:
    """One generate-auth-data request, for the SIM with `imsi` in `org_id`."""

    org_id: str
    imsi: str
    serving_network_name: str
    node_id: str
    now: datetime
    resync: Resynchronization | None = None


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
        pg: PgBatches | None = None,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._rand = rand
        self._clock = clock
        # Batches of the thread and of the loop may overlap (callers on another loop go to
        # the thread): the grants' blocks are behind their own lock.
        self._grants = Grants(max_block)
        self._batcher: GroupCommit[VectorRequest, Outcome] = GroupCommit(
            self._run, max_batch=max_batch, max_wait=max_wait, name="udm-vectors"
        )
        self._pg = pg
        self._home: asyncio.AbstractEventLoop | None = None
        # Its batches end with their vectors computed: one future a request, set once.
        self._loop_batcher: LoopGroupCommit[VectorRequest, IssuedVector | Refusal] = (
            LoopGroupCommit(self._run_async, max_batch=max_batch, name="udm-vectors")
        )

    def issue(self, request: VectorRequest) -> IssuedVector | Refusal:
        """A 5G HE AV, or why not; NotFound for an unknown SUPI. Blocks the caller."""
        return self._finish(request, self._batcher.call(request))

    async def issue_async(self, request: VectorRequest) -> IssuedVector | Refusal:
        """`issue` for a caller on an event loop. With `pg`, the batches of the first loop
        that calls are awaited on that loop; other loops' go to the thread."""
        if self._on_home_loop():
            return await self.issue_soon(request)
        return self._finish(request, await self._batcher.call_async(request))

    def issue_soon(self, request: VectorRequest) -> asyncio.Future[IssuedVector | Refusal]:
        """`issue_async` for a caller that is not a coroutine (a protocol's callback): the
        answer's future, on the running loop."""
        loop = asyncio.get_running_loop()
        if not self._on_home_loop():
            return loop.create_task(self.issue_async(request))
        return self._loop_batcher.submit(request)

    def _on_home_loop(self) -> bool:
        if self._pg is None:
            return False
        loop = asyncio.get_running_loop()
        if self._home is None:
            self._home = loop
        return loop is self._home

    def close(self) -> None:
        self._batcher.close()

    async def aclose(self) -> None:
        """`close`, and the loop's batches finished and its connection closed: on the
        loop that ran them."""
        await self._loop_batcher.aclose()
        if self._pg is not None:
            await self._pg.aclose()
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

    def _finish(self, request: VectorRequest, outcome: Outcome) -> IssuedVector | Refusal:
        if not isinstance(outcome, Grant):
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

    # -- a batch in the flusher thread ------------------------------------------------

    def _run(self, jobs: Sequence[VectorRequest]) -> Results:
        results = preset(jobs)
        with self._engine.connect() as conn:
            plain = [i for i, job in enumerate(jobs) if job.resync is None]
            if plain:
                # A read: on SQLite it takes no write lock, and most batches need no write.
                with conn.begin():
                    found = conn.execute(READ, {"imsis": imsis(jobs, plain)}).all()
                waiting, refused = self._grants.take(jobs, plain, found, results)
                if waiting or refused:
                    self._write(conn, jobs, waiting, refused, results)
            self._resyncs(conn, jobs, results)
        return results

    def _write(
        self,
        conn: Connection,
        jobs: Sequence[VectorRequest],
        waiting: Waiting,
        refused: list[int],
        results: Results,
    ) -> None:
        """Reservations and refusals, committed together; blocks kept after the commit."""
        now = self._clock()
        sizes = self._grants.sizes(waiting, now)
        with writing(conn).begin() as tx:
            reserved = tx.connection.execute(reserve(sizes)).all() if sizes else []
            installs = self._grants.grant(waiting, sizes, reserved, refused, results)
            self._refuse(tx.connection, jobs, refused, results)
        self._grants.install(installs, now)

    # -- a batch awaited on the home loop -----------------------------------------------

    async def _run_async(
        self, jobs: Sequence[VectorRequest]
    ) -> list[IssuedVector | Refusal | Exception]:
        assert self._pg is not None
        results = preset(jobs)
        plain = [i for i, job in enumerate(jobs) if job.resync is None]
        refused: list[int] = []
        answered: dict[int, IssuedVector | Refusal | Exception] = {}
        if plain:
            found = await self._pg.read(imsis(jobs, plain))
            waiting, refused = self._grants.take(jobs, plain, found, results)
            if waiting or refused or len(plain) < len(jobs):
                # Grants from current blocks need nothing of what follows (a reservation's
                # commit, a worker thread): answered before it.
                for i in plain:
                    if isinstance(results[i], Grant):
                        answered[i] = self._finished(jobs[i], results[i])
                        self._loop_batcher.answer_now(i, answered[i])
            if waiting:
                now = self._clock()
                sizes = self._grants.sizes(waiting, now)
                reserved = await self._pg.reserve(sizes)  # committed when it returns
                grants = self._grants.grant(waiting, sizes, reserved, refused, results)
                self._grants.install(grants, now)
        if refused or any(job.resync is not None for job in jobs):
            # Rare, and written with their events through SQLAlchemy: in a worker thread.
            await asyncio.to_thread(self._slow, jobs, refused, results)
        return [
            answered[i] if i in answered else self._finished(job, outcome)
            for i, (job, outcome) in enumerate(zip(jobs, results, strict=True))
        ]

    def _finished(
        self, request: VectorRequest, outcome: Outcome | Exception
    ) -> IssuedVector | Refusal | Exception:
        if isinstance(outcome, Exception):
            return outcome
        try:
            return self._finish(request, outcome)
        except Exception as exc:  # a sealed key that does not open, say: this request's
            return exc

    def _slow(self, jobs: Sequence[VectorRequest], refused: list[int], results: Results) -> None:
        with self._engine.connect() as conn:
            if refused:
                with writing(conn).begin() as tx:
                    self._refuse(tx.connection, jobs, refused, results)
            self._resyncs(conn, jobs, results)

    @staticmethod
    def _refuse(
        conn: Connection, jobs: Sequence[VectorRequest], refused: list[int], results: Results
    ) -> None:
        for i in sorted(refused):
            job = jobs[i]
            try:
                results[i] = service.refuse(conn, job.org_id, job.imsi, job.now)
            except NotFound as exc:
                results[i] = exc

    def _resyncs(self, conn: Connection, jobs: Sequence[VectorRequest], results: Results) -> None:
        for i, job in enumerate(jobs):
            if job.resync is not None:
                results[i] = self._resync(conn, job, job.resync)

    def _resync(
        self, conn: Connection, job: VectorRequest, resync: Resynchronization
    ) -> Outcome | Exception:
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
            self._grants.drop(job.imsi)
        return result
