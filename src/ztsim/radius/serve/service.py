"""The AAA role: the server, its background writer, snapshot reloads and revocation.

- Records from the hot path are written in batches by one background task, in a
  worker thread, one transaction per batch. The hot path only appends tuples; the
  writer turns them into event rows and inserts many per statement.
- Access-Requests are handled on a thread of their own (see `server`); the service's
  lock keeps the core's state consistent between that thread and this service's tasks.
- Address blocks are claimed here, never on the hot path: when the core asks for one
  (`need_block`: a pool running low, or dry), a worker thread claims it and its
  addresses reach the core under the lock. A pool with no block left is marked
  exhausted in the core, so its new SIMs get Access-Reject instead of silence.
- The snapshot is reloaded whole every `reload_seconds` (this is how a change made by
  another process reaches this one) and per SIM or identity on `notify()`.
- After every reload, live sessions whose SIM would no longer be accepted (suspended,
  retired, identity disabled, device binding changed) get a Disconnect-Request
  (RFC 5176); the outcome is an event.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network
from typing import Any

from sqlalchemy import Connection, Engine

from ztsim.background import DEFAULT_NICE, BackgroundThread
from ztsim.clock import Clock, new_id, utc_now
from ztsim.db import schema
from ztsim.db.bulk import insert_rows, rows_per_statement, takes_driver_rows
from ztsim.errors import ZtsimError
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.inventory import service as inventory
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.engine import AccessRequest, GatewayEntry, Snapshot, decide
from ztsim.radius.aaa.traffic import (
    EVENT_COLUMNS,
    AccessRecord,
    AccessRows,
    EventRow,
    ReplySettings,
    access_events,
    event_row,
)
from ztsim.radius.builders import framed_ip_address
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.serve.coa import CoaClient
from ztsim.radius.serve.coa import Outcome as CoaOutcome
from ztsim.radius.serve.server import RadiusServer, start_server
from ztsim.radius.store.snapshot import load_snapshot, refresh_sims
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.changes import ChangeEvent, ChangeKind
from ztsim.sessions.leases import NewLease, claim_next_block, load_leases, record_leases
from ztsim.sessions.table import Session, SessionIndex

log = logging.getLogger("ztsim.radius.serve.service")


_EventItem = AccessRecord | tuple[NewEvent, datetime]


@dataclass
class _Batch:
    # Events in arrival order: access decisions as the hot path left them, other events
    # with their time. Turned into rows by the writer, so the hot path's thread only
    # appends a tuple.
    events: list[_EventItem] = field(default_factory=list)
    leases: list[NewLease] = field(default_factory=list)
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    jobs: list[Callable[[Connection], None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.leases or self.sessions or self.jobs)


class BatchWriter:
    """The `Sink` of the hot path: collects records, `flush()` writes them in one go."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer
        self._batch = _Batch()
        # Events, the bulk, go through a deque: append and popleft are atomic, so the hot
        # path records a decision without taking a lock. The rest is rare and locked.
        self._events: collections.deque[_EventItem] = collections.deque()
        # The hot path's thread adds while the event loop takes.
        self._lock = threading.Lock()
        self.written_events = 0
        dialect = engine.dialect.name
        self._raw = takes_driver_rows(dialect)
        self._sqlite = dialect == "sqlite"
        self._access_rows = AccessRows(sqlite=self._sqlite)

    def access(self, record: AccessRecord) -> None:
        self._events.append(record)

    def event(self, event: NewEvent, when: datetime) -> None:
        self._events.append((event, when))

    def _rows(self, events: list[_EventItem]) -> list[EventRow]:
        rows: list[EventRow] = []
        for item in events:
            if len(item) == 2:  # (event, time); an access record has 10 fields
                rows.append(self._row(*item))
            elif self._raw:
                rows.extend(self._access_rows(item))
            else:
                when = item[-1]
                rows.extend(self._row(event, when) for event in access_events(item))
        return rows

    def _row(self, event: NewEvent, when: datetime) -> EventRow:
        if self._raw:
            return event_row(event, when, sqlite=self._sqlite)
        return (
            event.org_id,
            when,
            event.kind,
            event.actor,
            event.subject,
            event.outcome.value,
            event.reason,
            event.payload,
        )

    def session(self, session: Session) -> None:
        with self._lock:
            self._batch.sessions[session.key] = session

    def lease(self, pool: PoolEntry, imsi: str, address: str, when: datetime) -> None:
        with self._lock:
            self._batch.leases.append((pool, imsi, address, when))

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        def job(conn: Connection) -> None:
            try:
                with conn.begin_nested():
                    inventory.bind_on_first_attach(conn, org_id, iccid, imei, now=when)
            except ZtsimError as exc:
                log.warning("first-attach binding of a SIM failed: %s", exc)

        with self._lock:
            self._batch.jobs.append(job)

    def take(self) -> _Batch:
        with self._lock:
            batch, self._batch = self._batch, _Batch()
        # Appends racing with this land in the next batch.
        take = self._events.popleft
        batch.events = [take() for _ in range(len(self._events))]
        return batch

    def write(self, batch: _Batch) -> None:
        with self._engine.begin() as conn:
            record_leases(conn, batch.leases)
            for job in batch.jobs:
                job(conn)
            if batch.sessions:
                sessions_repo.save(conn, batch.sessions.values())
            # Rows are built a statement's worth at a time: the driver lets go of the GIL
            # while SQLite works, so the hot path never waits behind a whole batch's
            # worth of row building.
            written = 0
            events = batch.events
            for start in range(0, len(events), _EVENTS_PER_STATEMENT):
                rows = self._rows(events[start : start + _EVENTS_PER_STATEMENT])
                written += insert_rows(conn, schema.events, EVENT_COLUMNS, rows)
        self.written_events += written


# A statement's worth of events; the risk events that come with a few decisions spill
# over into a short second statement.
_EVENTS_PER_STATEMENT = rows_per_statement(len(EVENT_COLUMNS))


@dataclass(frozen=True)
class _Loaded:
    """What a (re)load read: the snapshot, the live sessions, the blocks claimed up front
    (for the caller to add under the core's lock) and the pools found exhausted."""

    snapshot: Snapshot
    live: list[Session]
    blocks: list[tuple[PoolEntry, IPv4Network]]
    exhausted: frozenset[str]


@dataclass(frozen=True)
class AaaSettings:
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    reply: ReplySettings = field(default_factory=ReplySettings)
    reload_seconds: float = 30.0
    # A decision is in the database within about this long; larger batches cost less.
    flush_seconds: float = 0.25
    coa_tries: int = 3
    coa_timeout: float = 1.0
    # Authentication datagrams in batches (recvmmsg/sendmmsg) where the system has them.
    batched_auth: bool = True
    # The records' writer thread yields its core to the hot path (added to its nice value,
    # Linux; 0: same priority). Answers first: under a burst, records catch up in the gaps.
    writer_nice: int = DEFAULT_NICE


class AaaService:
    """One AAA process. `await start()`, then `notify()` from any thread, `await stop()`."""

    def __init__(
        self, engine: Engine, sealer: Sealer, settings: AaaSettings, clock: Clock = utc_now
    ) -> None:
        self.engine = engine
        self.sealer = sealer
        self.settings = settings
        self.clock = clock
        self.writer = BatchWriter(engine, sealer)
        self.ipam = Ipam(new_id())
        self.coa = CoaClient(tries=settings.coa_tries, timeout=settings.coa_timeout)
        self.core: AaaCore | None = None
        self.server: RadiusServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._disconnecting: set[tuple[str, str]] = set()
        self._claiming: set[str] = set()
        self._flush_lock = asyncio.Lock()
        self._writing: BackgroundThread | None = None
        # Held by whoever reads or changes the core's state: the datagram handlers
        # (authentication runs on a thread of its own) and this service's tasks.
        self.lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> RadiusServer:
        self._loop = asyncio.get_running_loop()
        loaded = await asyncio.to_thread(self._load_all)
        for pool, block in loaded.blocks:
            self.ipam.add_block(pool, block)
        self.core = AaaCore(
            snapshot=loaded.snapshot,
            sessions=SessionIndex(loaded.live),
            ipam=self.ipam,
            sink=self.writer,
            reply_settings=self.settings.reply,
            clock=self.clock,
            need_block=self._claim_soon,
            exhausted_pools=set(loaded.exhausted),
        )
        await self.coa.start(self.settings.host)
        self.server = await start_server(
            self.core,
            self.lock,
            self.settings.host,
            self.settings.auth_port,
            self.settings.acct_port,
            batched=self.settings.batched_auth,
        )
        # Last: a start that failed above leaves no thread behind.
        self._writing = BackgroundThread("radius-writer", nice=self.settings.writer_nice)
        self._spawn(self._flush_loop())
        self._spawn(self._reload_loop())
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        # Wait for a batch being written, so that cancelling cannot cut it off.
        async with self._flush_lock:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.coa.close()
        await self.flush()
        if self._writing is not None:
            self._writing.close()
            self._writing = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write what the hot path has recorded so far (after any batch in flight)."""
        async with self._flush_lock:
            batch = self.writer.take()
            if not batch:
                return
            if self._writing is not None:
                await self._writing.run(self.writer.write, batch)
            else:
                await asyncio.to_thread(self.writer.write, batch)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("writing RADIUS records failed; the batch is lost")

    # -- snapshot and pools ------------------------------------------------------------------

    def _load_all(self) -> _Loaded:
        with self.engine.begin() as conn:
            snapshot = load_snapshot(conn, self.sealer)
            pools = list(snapshot.pools.values())
            # Learnt outside the core's lock, so that a reload does not hold up the answers
            # for a whole table of leases. Safe: a lease read here is this process's own
            # (already known) or in another process's block, never among this one's free
            # addresses, so it cannot collide with an allocation meanwhile.
            load_leases(conn, self.ipam, [p.id for p in pools])
            blocks: list[tuple[PoolEntry, IPv4Network]] = []
            exhausted: set[str] = set()
            for pool in pools:
                # A first block up front, so the first attach does not wait for one.
                if self.ipam.free_count(pool) == 0:
                    block = self._claim(conn, pool)
                    if block is None:
                        exhausted.add(pool.id)
                    else:
                        blocks.append((pool, block))
            live = sessions_repo.load_live(conn)
        return _Loaded(snapshot, live, blocks, frozenset(exhausted))

    def _claim(self, conn: Connection, pool: PoolEntry) -> IPv4Network | None:
        return claim_next_block(
            conn, pool, self.ipam.owner, self.clock(), prefix=self.ipam.block_prefix
        )

    def _claim_in_transaction(self, pool: PoolEntry) -> IPv4Network | None:
        with self.engine.begin() as conn:
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

    async def reload(self) -> None:
        core = self.core
        assert core is not None
        loaded = await asyncio.to_thread(self._load_all)
        with self.lock:
            for pool, block in loaded.blocks:
                self.ipam.add_block(pool, block)
            # Recomputed whole: pools deleted or re-created since leave the set.
            core.exhausted_pools = set(loaded.exhausted)
            core.snapshot = loaded.snapshot
            self._recheck(list(core.sessions))

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_seconds)
            try:
                await self.reload()
            except Exception:
                log.exception("reloading the AAA snapshot failed")

    # -- revocation --------------------------------------------------------------------------

    def notify(self, change: ChangeEvent) -> None:
        """Thread-safe: called by the API after a committed change."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(lambda: self._spawn(self._apply(change)))

    async def _apply(self, change: ChangeEvent) -> None:
        core = self.core
        if core is None:
            return
        if change.kind is ChangeKind.NETWORK:
            await self.reload()
            return

        def read() -> tuple[Snapshot, list[str]]:
            with self.engine.begin() as conn:
                snapshot, fresh = refresh_sims(
                    conn,
                    core.snapshot,
                    change.org_id,
                    iccids=[change.iccid] if change.iccid else [],
                    identity_id=change.identity_id,
                )
            return snapshot, [s.imsi for s in fresh]

        snapshot, imsis = await asyncio.to_thread(read)
        with self.lock:
            core.snapshot = snapshot
            self._recheck([s for imsi in imsis for s in core.sessions.for_imsi(imsi)])

    def _recheck(self, sessions: Iterable[Session]) -> None:
        core = self.core
        assert core is not None
        gateways = {g.id: g for g in core.snapshot.gateways}
        for s in sessions:
            gateway = gateways.get(s.gateway_id)
            if gateway is None or s.key in self._disconnecting:
                continue
            decision = decide(core.snapshot, gateway, AccessRequest(s.imsi, s.imei, s.apn))
            if not decision.accepted:
                self._disconnecting.add(s.key)
                self._spawn(self._disconnect(s, gateway, decision.reason.value))

    async def _disconnect(self, s: Session, gateway: GatewayEntry, cause: str) -> None:
        attributes = [make_attribute("Acct-Session-Id", s.acct_session_id)]
        if s.imsi:
            attributes.insert(0, make_attribute("User-Name", s.imsi))
        if s.ue_address:
            attributes.append(framed_ip_address(s.ue_address))
        try:
            result = await self.coa.disconnect(
                s.nas_address, gateway.coa_port, gateway.secret, attributes
            )
        finally:
            self._disconnecting.discard(s.key)
        now = self.clock()
        ok = result.outcome is CoaOutcome.ACK
        self.writer.event(
            NewEvent(
                s.org_id,
                "radius.disconnect",
                "system:revocation",
                subject_of("sim", s.iccid) if s.iccid else subject_of("imsi", s.imsi or "-"),
                Outcome.SUCCESS if ok else Outcome.FAILURE,
                cause,
                {
                    "gateway_id": gateway.id,
                    "acct_session_id": s.acct_session_id,
                    "ue_address": s.ue_address,
                    "result": result.outcome.value,
                    "attempts": result.attempts,
                    "error_cause": result.error_cause,
                },
            ),
            now,
        )
        if ok and self.core is not None:
            with self.lock:
                stopped = self.core.sessions.stop(s.key, now, "disconnected")
            if stopped is not None:
                self.writer.session(stopped)
