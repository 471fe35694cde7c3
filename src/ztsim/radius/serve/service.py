"""The AAA role: the server, its background writer, the change feed and revocation.

- Records from the hot path are written in batches (`writer`) by one background task,
  in a worker thread, one transaction per batch, every `flush_seconds`, and at once
  when an Accounting-Response waits (group commit: while one commit runs, requests
  gather; the next commit takes them all; then their responses go out). Accounting is
  answered only once durable (RFC 2866 §2). A failed commit (the database is down)
  sends nothing and keeps its records for the next try, after a pause that grows up to
  `MAX_RETRY_SECONDS`; the gateway's retransmissions wait meanwhile (see
  `ztsim.radius.aaa.core.MAX_AWAITING` for the bound). `stop` commits what is pending
  and sends those replies before it returns.
- With an accounting journal (`journal_dir`), an Accounting-Request is durable once its
  batch of datagrams is in the journal file (`journal`), and answered then; the commit
  follows as above and records how far into the file it reaches. `start` first replays
  what the journals of processes that ended left uncommitted. Where the journal cannot
  take a request (its backlog bound while the database is away, a full disk), the reply
  waits for the commit again.
- Access-Requests are handled on a thread of their own (see `server`); the service's
  lock keeps the core's state consistent between that thread, the feed's follower and
  this service's tasks.
- Address blocks are claimed here, never on the hot path: when the core asks for one
  (`need_block`: a pool running low, or dry), a worker thread claims it and its
  addresses reach the core under the lock. A pool with no block left is marked
  exhausted in the core, so its new SIMs get Access-Reject instead of silence.
- The change feed: `start` loads the snapshot, the live sessions and the outbox
  position they reflect in one consistent read (`following`), then a `Follower` thread
  applies every change above it: it reads the rows a batch names, then installs them
  under the lock, so the next Access-Request is decided on them (a suspended SIM is
  rejected from that moment, whatever its gateway does with the Disconnect-Request).
  A follower left behind the outbox's retention reloads everything (`_resync`).
- After every change applied, the live sessions it touches that would no longer be
  accepted (SIM suspended or retired, identity disabled, device binding changed) get a
  Disconnect-Request (RFC 5176), retried with doubling timeouts; its outcome (ACK, NAK
  with its Error-Cause, or timeout) is an event.
- Counting for the metrics (`counting`): the endpoints reach the core through
  `CountedCore` (requests, responses and timings per port), commits are counted and
  timed here, Disconnect outcomes by the CoA client; `ztsim.radius.serve.metrics`
  reads them with the core's own counters at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.background import DEFAULT_NICE, BackgroundThread
from ztsim.clock import Clock, new_id, utc_now
from ztsim.db.engine import for_writing
from ztsim.feed.follower import Follower
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.serve import journal_marks
from ztsim.radius.serve.counting import Commits, CountedCoaClient, CountedCore
from ztsim.radius.serve.following import TOPICS, Following
from ztsim.radius.serve.journal import Journal, Marks, decode_records, orphans
from ztsim.radius.serve.revocation import Revoker
from ztsim.radius.serve.server import RadiusServer, start_server
from ztsim.radius.serve.writer import Batch, BatchWriter
from ztsim.sealing import Sealer
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.leases import claim_next_block
from ztsim.sessions.table import SessionIndex

log = logging.getLogger("ztsim.radius.serve.service")

# Pauses between tries while commits fail: from the first to the last, doubling.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class AaaSettings:
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    reply: ReplySettings = field(default_factory=ReplySettings)
    # A decision is in the database within about this long; larger batches cost less.
    flush_seconds: float = 0.25
    coa_tries: int = 3
    coa_timeout: float = 1.0
    # Authentication datagrams in batches (recvmmsg/sendmmsg) where the system has them.
    batched_auth: bool = True
    # The records' writer thread yields its core to the hot path (added to its nice value,
    # Linux; 0: same priority). Answers first: under a burst, records catch up in the gaps.
    writer_nice: int = DEFAULT_NICE
    # Where the accounting journal's files are (None: accounting waits for its commit).
    journal_dir: Path | None = None
    # With the journal, a commit starts at most this long after the one before under load
    # (nothing waits for it but the other planes: larger batches cost less per record).
    journal_commit_gap: float = 0.02


class AaaService:
    """One AAA process: `await start()`, `await stop()`. `engine` is read from (the feed,
    the snapshot); the service writes through `for_writing(engine)`."""

    def __init__(
        self, engine: Engine, sealer: Sealer, settings: AaaSettings, clock: Clock = utc_now
    ) -> None:
        self.engine = engine
        # Every write transaction here may write (sessions, leases, bindings, blocks): on
        # SQLite they take the write lock at BEGIN rather than fail on a stale snapshot
        # under load. Reads (the follower polls 10 times a second there) do not.
        self._write_engine = for_writing(engine)
        self.sealer = sealer
        self.settings = settings
        self.clock = clock
        self.writer = BatchWriter(self._write_engine, clock)
        self.ipam = Ipam(new_id())
        self.coa = CountedCoaClient(tries=settings.coa_tries, timeout=settings.coa_timeout)
        self.core: AaaCore | None = None
        self.counted: CountedCore | None = None
        self.commits = Commits()
        self.server: RadiusServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._claiming: set[str] = set()
        self._flush_lock = asyncio.Lock()
        self._writing: BackgroundThread | None = None
        # Set (from the accounting thread) when a reply waits for a commit.
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._failing = False  # the last commit failed: logged once per outage
        # Held by whoever reads or changes the core's state: the datagram handlers
        # (authentication runs on a thread of its own), the follower and this service's
        # tasks.
        self.lock = threading.Lock()
        self.revoker = Revoker(self.coa, self.writer, self.lock, clock, self._spawn)
        self.following = Following(engine, sealer, self.ipam, self.lock, clock, self.revoker.soon)
        self.follower: Follower | None = None
        self.journal: Journal | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> RadiusServer:
        self._loop = asyncio.get_running_loop()
        load = await asyncio.to_thread(self.following.load)
        for pool, block in load.blocks:
            self.ipam.add_block(pool, block)
        self.core = AaaCore(
            snapshot=load.loaded.snapshot,
            sessions=SessionIndex(load.loaded.live),
            ipam=self.ipam,
            sink=self.writer,
            reply_settings=self.settings.reply,
            clock=self.clock,
            need_block=self._claim_soon,
            exhausted_pools=load.exhausted,
        )
        self.following.core = self.core
        self.revoker.start(self._loop, self.core)
        await self.coa.start(self.settings.host)
        self.counted = CountedCore(self.core)
        if self.settings.journal_dir is not None:
            # What an ended process answered must be recorded first: a failure fails the
            # start. A journal that cannot be made only costs speed: answers wait again.
            await asyncio.to_thread(self._replay_journals, self.settings.journal_dir)
            try:
                self.journal = Journal(self.settings.journal_dir)
            except OSError as exc:
                log.warning(
                    "no accounting journal (%s): accounting is answered after its commit",
                    exc,
                )
        self.server = await start_server(
            self.counted,
            self.lock,
            self.settings.host,
            self.settings.auth_port,
            self.settings.acct_port,
            batched=self.settings.batched_auth,
            wake=self._wake_writer,
            journal=self.journal,
        )
        # Last: a start that failed above leaves no thread behind.
        self._writing = BackgroundThread("radius-writer", nice=self.settings.writer_nice)
        self._spawn(self._flush_loop())
        position = load.loaded.position
        self.following.mark_applied(position)
        self.follower = Follower(
            self.engine,
            self.following.apply,
            self.following.resync,
            position=position,
            name="radius",
            topics=TOPICS,
            # Rows skipped are applied too (nothing to do): `wait_applied` sees them.
            advanced=self.following.mark_applied,
        )
        self.follower.start()
        return self.server

    async def stop(self) -> None:
        """Stop answering, commit what is pending and send the replies that wait for it."""
        if self.server is not None:
            self.server.stop_serving()
        if self.follower is not None:
            # Joins its thread: off the loop, which a change being applied may call into.
            await asyncio.to_thread(self.follower.stop)
        # Wait for a batch being written, so that cancelling cannot cut it off.
        async with self._flush_lock:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.coa.close()
        if not await self.flush() and self.core is not None:
            log.error(
                "stopping with the database unavailable: %d accounting requests stay "
                "unanswered (the gateway retransmits them), %d events unwritten",
                len(self.core.awaiting),
                self.writer.retained,
            )
        if self._writing is not None:
            self._writing.close()
            self._writing = None
        if self.server is not None:
            self.server.close()
        if self.journal is not None:
            await asyncio.to_thread(self._close_journal, self.journal)
            self.journal = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> bool:
        """Commit what the hot path has recorded so far (after any batch in flight) and
        send the accounting replies that waited for it; False if the commit failed (its
        records are kept for the next one)."""
        async with self._flush_lock:
            journal = self.journal
            if journal is None:
                batch = self.writer.take()
            else:
                with self.lock:  # the accounting thread appends under it
                    batch = self.writer.take(journal.mark())
            core = self.core
            if not batch and (core is None or not core.awaiting):
                if journal is not None and batch.journal is not None:
                    # Journaled requests that changed nothing (an Interim-Update alike):
                    # nothing to commit, nor to replay.
                    with self.lock:
                        journal.committed(batch.journal)
                return True
            if self._writing is not None:
                return await self._writing.run(self._commit, batch)
            return await asyncio.to_thread(self._commit, batch)

    def _commit(self, batch: Batch) -> bool:
        # On the writer's thread: the replies leave as soon as their commit is done.
        started = time.perf_counter()
        try:
            if batch:
                self.writer.write(batch)
        except (SQLAlchemyError, OSError) as exc:
            self.commits.failed += 1
            self.writer.keep(batch)
            if not self._failing:
                self._failing = True
                # The class only: a driver's message may quote the statement's values.
                log.warning(
                    "writing RADIUS records failed (%s); kept, and retried until the "
                    "database answers; accounting is answered once written",
                    type(exc).__name__,
                )
            return False
        if batch:
            self.commits.ok += 1
            self.commits.timings.observe(time.perf_counter() - started)
        if self._failing:
            self._failing = False
            log.warning("writing RADIUS records resumed")
        core, server, counted = self.core, self.server, self.counted
        with self.lock:
            if batch.journal is not None and self.journal is not None:
                self.journal.committed(batch.journal)
            done = core.committed(batch.generation) if core is not None else []
        if done and server is not None:
            # One sendmmsg per batch: the writer does not wait for the GIL after each.
            server.send_acct_many([(after.reply, after.peer) for after in done])
            if counted is not None:
                counted.acct_after_commit += len(done)
        return True

    def _replay_journals(self, directory: Path) -> None:
        """Before serving: what the journals of processes that ended hold beyond their
        marks, recorded again through the core and committed; then the files go. A
        commit that fails fails the start (the files stay for the next)."""
        core = self.core
        assert core is not None
        with orphans(directory) as paths:
            for path in paths:
                with self.engine.connect() as conn:
                    start = journal_marks.applied(conn, path.name)
                data = path.read_bytes()
                records, end = decode_records(data, start)
                if end < len(data):
                    log.warning(
                        "accounting journal %s: %d octets at its end are not whole records "
                        "(a write cut short): ignored, they were not answered",
                        path.name,
                        len(data) - end,
                    )
                with self.lock:
                    for record in records:
                        core.replay_acct(record.datagram, record.peer, record.when)
                    batch = self.writer.take(Marks({path.name: end}))
                self.writer.write(batch)
                path.unlink()
                with self._write_engine.begin() as conn:
                    journal_marks.forget(conn, [path.name])
                if records:
                    log.warning(
                        "replayed %d accounting requests from the journal of a process that ended",
                        len(records),
                    )

    def _close_journal(self, journal: Journal) -> None:
        forget = journal.close()
        if forget:
            try:
                with self._write_engine.begin() as conn:
                    journal_marks.forget(conn, forget)
            except (SQLAlchemyError, OSError):
                pass  # a mark without its file: nothing to replay

    def _wake_writer(self) -> None:
        # The accounting thread's `wake`: one call into the loop until the writer runs.
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping
                loop.call_soon_threadsafe(self._wake.set)

    async def _flush_loop(self) -> None:
        pause = FIRST_RETRY_SECONDS
        while True:
            if not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.flush_seconds)
            self._wake.clear()
            self._wake_pending = False
            try:
                written = await self.flush()
            except Exception:  # a bug, not the database: logged, the loop goes on
                log.exception("writing RADIUS records failed unexpectedly")
                written = False
            if written:
                pause = FIRST_RETRY_SECONDS
                # No gap while replies wait for the commit (a Start that gave an address).
                waiting = self.core is not None and bool(self.core.awaiting)
                if self.journal is not None and self._wake.is_set() and not waiting:
                    await asyncio.sleep(self.settings.journal_commit_gap)
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_SECONDS)

    # -- address blocks ---------------------------------------------------------------------

    def _claim(self, conn: Connection, pool: PoolEntry) -> IPv4Network | None:
        return claim_next_block(
            conn, pool, self.ipam.owner, self.clock(), prefix=self.ipam.block_prefix
        )

    def _claim_in_transaction(self, pool: PoolEntry) -> IPv4Network | None:
        with self._write_engine.begin() as conn:
            return self._claim(conn, pool)

    def _claim_soon(self, pool: PoolEntry) -> None:
        # The core's `need_block`, called on the hot path's thread: the claim starts on the
        # event loop, and its transaction runs in a worker thread.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_claim, pool)

    def _start_claim(self, pool: PoolEntry) -> None:
        if pool.id in self._claiming:
            return
        self._claiming.add(pool.id)

        async def claim() -> None:
            try:
                block = await asyncio.to_thread(self._claim_in_transaction, pool)
                self._hand_over(pool, block)
            except Exception:
                # The pool's next Access-Request asks again.
                log.exception("claiming an address block of pool %s failed", pool.id)
            finally:
                self._claiming.discard(pool.id)

        self._spawn(claim())

    def _hand_over(self, pool: PoolEntry, block: IPv4Network | None) -> None:
        """A claim's outcome to the core: the block's addresses, or the pool exhausted."""
        core = self.core
        with self.lock:
            if block is not None:
                self.ipam.add_block(pool, block)
            elif core is not None and pool.id not in core.exhausted_pools:
                core.exhausted_pools.add(pool.id)
                log.warning("address pool %s is exhausted: new SIMs are refused", pool.id)

    # -- the change feed ---------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        """The newest change of the feed this process has applied."""
        return self.following.applied_seq

    def wait_applied(self, seq: int, timeout: float) -> bool:
        """Wait (any thread but the loop's) until the change `seq` is applied, at most
        `timeout` seconds; whether it is."""
        return self.following.wait_applied(seq, timeout)
