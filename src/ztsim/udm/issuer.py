"""Vectors for the Nudm endpoint at the rate of many AUSFs: SQN blocks reserved ahead
(`sqn_blocks`) and group commit (`batcher`) around the same rules as `service.generate`.

`service.generate` advances SEQ_HE with one committed UPDATE per vector, about a
thousand a second on PostgreSQL, bound by the commit's wait for the disk. A
`VectorIssuer` serves concurrent requests in batches, one flusher thread per process:

1. One read for the batch: each SIM's org, state, SEQ_HE (the row's `sqn_seq`) and
   sealed keys. Unknown SUPIs and SUPIs of another org are NotFound, as before.
2. Active SIMs whose block of reserved SEQs is still current (the row shows the
   block's top: no one else moved SEQ_HE) get the block's next SEQ, from memory.
3. The others, in one transaction for the whole batch: an `UPDATE ... RETURNING` per
   SIM reserves a new block (as big as the batch needs, plus what demand says), and
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

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy import Engine, select, update

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.errors import NotFound
from ztsim.inventory.lifecycle import SimState
from ztsim.sealing import Sealer
from ztsim.udm import service
from ztsim.udm.batcher import MAX_BATCH, MAX_WAIT, GroupCommit
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
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._rand = rand
        self._clock = clock
        self._blocks = SqnBlocks(max_block)  # touched by the flusher thread only
        self._batcher: GroupCommit[VectorRequest, _Outcome] = GroupCommit(
            self._run, max_batch=max_batch, max_wait=max_wait, name="udm-vectors"
        )

    def issue(self, request: VectorRequest) -> IssuedVector | Refusal:
        """A 5G HE AV, or why not; NotFound for an unknown SUPI. Blocks the caller."""
        return self._finish(request, self._batcher.call(request))

    async def issue_async(self, request: VectorRequest) -> IssuedVector | Refusal:
        """`issue` for a caller on an event loop."""
        return self._finish(request, await self._batcher.call_async(request))

    def close(self) -> None:
        self._batcher.close()

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

    # -- the flusher thread ---------------------------------------------------------

    def _run(self, jobs: Sequence[VectorRequest]) -> list[_Outcome | Exception]:
        # Preset: unknown, or of another org (each its own exception: raised in its caller).
        results: list[_Outcome | Exception] = [
            NotFound("no subscriber with that SUPI") for _ in jobs
        ]
        self._plain(jobs, [i for i, job in enumerate(jobs) if job.resync is None], results)
        for i, job in enumerate(jobs):
            if job.resync is not None:
                results[i] = self._resync(job, job.resync)
        return results

    def _plain(
        self, jobs: Sequence[VectorRequest], indexes: list[int], results: list[_Outcome | Exception]
    ) -> None:
        if not indexes:
            return
        imsis = sorted({jobs[i].imsi for i in indexes})
        columns = (_s.c.id, _s.c.org_id, _s.c.imsi, _s.c.iccid, _s.c.state, _s.c.sqn_seq)
        keys = (_s.c.k_sealed, _s.c.opc_sealed)
        # A read: on SQLite it takes no write lock, and most batches need no write.
        with self._engine.begin() as conn:
            rows = {
                r.imsi: r for r in conn.execute(select(*columns, *keys).where(_s.c.imsi.in_(imsis)))
            }
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
            self._write(jobs, waiting, refused, results)

    def _write(
        self,
        jobs: Sequence[VectorRequest],
        waiting: dict[str, list[int]],
        refused: list[int],
        results: list[_Outcome | Exception],
    ) -> None:
        """Reservations and refusals, committed together; blocks kept after the commit."""
        now = self._clock()
        installs: list[tuple[str, int, int, int]] = []
        with for_writing(self._engine).begin() as conn:
            for imsi, waiters in waiting.items():
                size = self._blocks.reservation_size(imsi, len(waiters), now)
                got = conn.execute(
                    update(_s)
                    .where(_s.c.imsi == imsi, _s.c.state == _ACTIVE)
                    .values(sqn_seq=_s.c.sqn_seq + size)
                    .returning(_s.c.sqn_seq, _s.c.iccid, _s.c.k_sealed, _s.c.opc_sealed)
                ).first()
                if got is None:  # no longer active since the read
                    refused.extend(waiters)
                    continue
                top, iccid, k_sealed, opc_sealed = got
                for n, i in enumerate(waiters):
                    results[i] = _Grant(iccid, top - size + 1 + n, k_sealed, opc_sealed)
                installs.append((imsi, top, size, len(waiters)))
            for i in sorted(refused):
                job = jobs[i]
                try:
                    results[i] = service.refuse(conn, job.org_id, job.imsi, job.now)
                except NotFound as exc:
                    results[i] = exc
        for imsi, top, size, used in installs:
            self._blocks.install(imsi, top, size, used, now)

    def _resync(self, job: VectorRequest, resync: Resynchronization) -> _Outcome | Exception:
        try:
            with for_writing(self._engine).begin() as conn:
                result = service.generate(
                    conn,
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
