"""The SEQs of one batch of vector requests, from the blocks a process reserved ahead: the
steps the issuer's two paths (its flusher thread, its event loop) share around their I/O.

A batch reads its SIMs (`READ`); `Grants.take` gives each request for an active SIM whose
block is still current the block's next SEQ, and says which wait for a reservation and
which SIMs are not active; `reserve` is the one statement that moves the waiting SIMs'
SEQ_HE on by `Grants.sizes`; once it has committed, `Grants.grant` hands each waiting
request its SEQ of the new block and `Grants.install` keeps the blocks. The blocks are
read and changed under one lock: batches of the thread and of the loop may overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Update, bindparam, case, select, update

from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.inventory.lifecycle import SimState
from ztsim.udm.service import IssuedVector, Refusal
from ztsim.udm.sqn_blocks import MAX_BLOCK, SqnBlocks

_s = schema.sims
_ACTIVE = SimState.ACTIVE.value


class Job(Protocol):
    """What the steps read of a request: whose SIM it asks for."""

    @property
    def org_id(self) -> str: ...

    @property
    def imsi(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """A committed SEQ for one request, and what computing its vector needs."""

    iccid: str
    seq: int
    k_sealed: bytes
    opc_sealed: bytes


Outcome = Grant | IssuedVector | Refusal
Results = list[Outcome | Exception]
# IMSI -> the indexes of the batch's requests waiting for a reservation for it.
Waiting = dict[str, list[int]]
# A block whose reservation committed: IMSI, its top SEQ, its size, how many it served.
Install = tuple[str, int, int, int]

# Each batch's read, built once (building and keying it cost as much as running it).
READ = select(
    _s.c.id,
    _s.c.org_id,
    _s.c.imsi,
    _s.c.iccid,
    _s.c.state,
    _s.c.sqn_seq,
    _s.c.k_sealed,
    _s.c.opc_sealed,
).where(_s.c.imsi.in_(bindparam("imsis", expanding=True)))


def reserve(sizes: dict[str, int]) -> Update:
    """One statement for the batch: each active SIM's SEQ_HE moved on by its block's size."""
    return (
        update(_s)
        .where(_s.c.imsi.in_(sorted(sizes)), _s.c.state == _ACTIVE)
        .values(sqn_seq=_s.c.sqn_seq + case(sizes, value=_s.c.imsi))
        .returning(_s.c.imsi, _s.c.sqn_seq, _s.c.iccid, _s.c.k_sealed, _s.c.opc_sealed)
    )


def preset(jobs: Sequence[Job]) -> Results:
    """Unknown, or of another org, until found (each its own exception: raised in its caller)."""
    return [NotFound("no subscriber with that SUPI") for _ in jobs]


def imsis(jobs: Sequence[Job], indexes: list[int]) -> list[str]:
    """The SIMs the requests at `indexes` ask for, once each, for `READ`."""
    return sorted({jobs[i].imsi for i in indexes})


class Grants:
    """A process's SQN blocks (`sqn_blocks`) behind a lock, and the batch steps on them."""

    def __init__(self, max_block: int = MAX_BLOCK) -> None:
        self._blocks = SqnBlocks(max_block)
        self._lock = threading.Lock()

    def take(
        self,
        jobs: Sequence[Job],
        indexes: list[int],
        found: Sequence[Any],
        results: Results,
    ) -> tuple[Waiting, list[int]]:
        """Grants from the blocks still current, for the requests at `indexes` given the
        rows `READ` found; what waits for a reservation, and the requests for SIMs not
        active. Unknown SUPIs (and another org's) keep their preset NotFound."""
        rows = {row.imsi: row for row in found}
        waiting: Waiting = {}
        refused: list[int] = []
        with self._lock:
            for i in indexes:
                job = jobs[i]
                row = rows.get(job.imsi)
                if row is None or row.org_id != job.org_id:
                    continue
                if row.state != _ACTIVE:
                    refused.append(i)
                    continue
                seq = self._blocks.take(job.imsi, row.sqn_seq)
                if seq is None:
                    waiting.setdefault(job.imsi, []).append(i)
                else:
                    results[i] = Grant(row.iccid, seq, row.k_sealed, row.opc_sealed)
        return waiting, refused

    def sizes(self, waiting: Waiting, now: float) -> dict[str, int]:
        """How far `reserve` moves each waiting SIM's SEQ_HE: its waiters and demand."""
        with self._lock:
            return {
                imsi: self._blocks.reservation_size(imsi, len(waiters), now)
                for imsi, waiters in waiting.items()
            }

    @staticmethod
    def grant(
        waiting: Waiting,
        sizes: dict[str, int],
        reserved: Sequence[Any],
        refused: list[int],
        results: Results,
    ) -> list[Install]:
        """Each waiting request its SEQ of its SIM's new block (the rows `reserve`
        returned); a SIM that was not active any more at the reservation has its requests
        refused. The blocks to install once the reservation has committed."""
        got = {row.imsi: row for row in reserved}
        installs = []
        for imsi, waiters in waiting.items():
            row = got.get(imsi)
            if row is None:
                refused.extend(waiters)
                continue
            size = sizes[imsi]
            for n, i in enumerate(waiters):
                results[i] = Grant(
                    row.iccid, row.sqn_seq - size + 1 + n, row.k_sealed, row.opc_sealed
                )
            installs.append((imsi, row.sqn_seq, size, len(waiters)))
        return installs

    def install(self, installs: list[Install], now: float) -> None:
        """Blocks whose reservation committed."""
        with self._lock:
            for imsi, top, size, used in installs:
                self._blocks.install(imsi, top, size, used, now)

    def drop(self, imsi: str) -> None:
        """Forget the SIM's block: its SEQ_HE may have moved by another way (a resync)."""
        with self._lock:
            self._blocks.drop(imsi)
