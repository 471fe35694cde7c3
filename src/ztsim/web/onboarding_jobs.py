"""Bulk onboarding packs rendered in the background, with their progress, for the page
that polls it.

Rendering a pack (a PDF and a QR code per person) takes tens of milliseconds each, so a
group's zip is written on a thread of its own (`ztsim.esim.pack.write_zip`, as the CLI's
`ztsim esim pack` writes it) while the page shows how far it got. The finished zip stays
in this process's memory until it expires: it holds bearer secrets (activation codes), so
it is never written to disk and is handed only to the sign-in that started it.

Jobs live in the process that started them: behind a load balancer with several API
processes the progress page needs the same process (sticky sessions) or it answers 404.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ztsim.background import DEFAULT_NICE, lower_this_thread
from ztsim.errors import Conflict, NotFound
from ztsim.esim.pack import PackPage, write_zip

log = logging.getLogger("ztsim.web.onboarding")

MAX_RUNNING = 2  # the machine's other work (RADIUS, DNS) keeps its cores
MAX_KEPT = 16
KEPT_FOR_SECONDS = 30 * 60


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    finished: bool
    failed: bool

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else self.done * 100 // self.total


@dataclass
class PackJob:
    id: str
    org_id: str
    owner: str  # the token behind the sign-in that started it
    total: int
    ordered: int  # orders this bulk request issued
    skipped: list[str]  # people left out: an open order already, or none usable
    started: float
    _done: int = 0
    _zip: bytes | None = None
    _failed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self) -> Progress:
        with self._lock:
            finished = self._zip is not None or self._failed
            return Progress(self._done, self.total, finished, self._failed)

    def zip(self) -> bytes | None:
        with self._lock:
            return self._zip

    def _advance(self, done: int) -> None:
        with self._lock:
            self._done = done

    def _finish(self, body: bytes | None) -> None:
        with self._lock:
            self._zip, self._failed = body, body is None

    def render(self, pages: Sequence[PackPage]) -> None:
        lower_this_thread(DEFAULT_NICE)
        out = io.BytesIO()
        try:
            write_zip(pages, out, on_progress=self._advance)
        except Exception as exc:
            # The type only: a message could quote a page's text.
            log.error("onboarding pack %s failed: %s", self.id, type(exc).__name__)
            self._finish(None)
            return
        self._finish(out.getvalue())


class PackJobs:
    """The jobs of one process. `clock`: monotonic seconds (tests pass their own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jobs: dict[str, PackJob] = {}
        self._lock = threading.Lock()

    def start(
        self,
        org_id: str,
        owner: str,
        pages: Sequence[PackPage],
        *,
        ordered: int,
        skipped: Sequence[str],
    ) -> PackJob:
        """Render `pages` into a zip on a thread of its own; Conflict when MAX_RUNNING are
        running already."""
        with self._lock:
            self._check_room()
            job = PackJob(
                secrets.token_urlsafe(16),
                org_id,
                owner,
                len(pages),
                ordered,
                list(skipped),
                self._clock(),
            )
            self._jobs[job.id] = job
        threading.Thread(
            target=job.render, args=(list(pages),), name=f"pack-{job.id[:6]}", daemon=True
        ).start()
        return job

    def check_room(self) -> None:
        """Conflict when `start` would refuse now: asked before the orders are made, so a
        busy node refuses the whole request rather than orders without their packs."""
        with self._lock:
            self._check_room()

    def _check_room(self) -> None:
        self._forget_old()
        running = [j for j in self._jobs.values() if not j.progress().finished]
        if len(running) >= MAX_RUNNING:
            raise Conflict("other packs are being made: try again in a minute")

    def get(self, org_id: str, owner: str, job_id: str) -> PackJob:
        """The job, for the sign-in that started it; NotFound for anyone else's or an
        expired one, the same words either way."""
        with self._lock:
            self._forget_old()
            job = self._jobs.get(job_id)
        if job is None or job.org_id != org_id or job.owner != owner:
            raise NotFound("no such bulk pack: it may have expired")
        return job

    def _forget_old(self) -> None:
        now = self._clock()
        for job_id, job in list(self._jobs.items()):
            if now - job.started > KEPT_FOR_SECONDS and job.progress().finished:
                del self._jobs[job_id]
        finished = sorted(
            (j for j in self._jobs.values() if j.progress().finished), key=lambda j: j.started
        )
        for job in finished[: max(0, len(self._jobs) - MAX_KEPT)]:
            del self._jobs[job.id]
