"""The AAA role: the server, its background writer, snapshot reloads and revocation.

- Records from the hot path are written in batches (`writer`) by one background task,
  in a worker thread, one transaction per batch, every `flush_seconds`, and at once
  when an Accounting-Response waits (group commit: while one commit runs, requests
  gather; the next commit takes them all; then their responses go out). Accounting is
  answered only once durable (RFC 2866 §2). A failed commit (the database is down)
  sends nothing and keeps its records for the next try, after a pause that grows up to
  `MAX_RETRY_SECONDS`; the gateway's retransmissions wait meanwhile (see
  `ztsim.radius.aaa.core.MAX_AWAITING` for the bound). `stop` commits what is pending
  and sends those replies before it returns.
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
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.background import DEFAULT_NICE, BackgroundThread
from ztsim.clock import Clock, new_id, utc_now
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.engine import AccessRequest, GatewayEntry, Snapshot, decide
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.builders import framed_ip_address
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.serve.coa import CoaClient
from ztsim.radius.serve.coa import Outcome as CoaOutcome
from ztsim.radius.serve.server import RadiusServer, start_server
from ztsim.radius.serve.writer import Batch, BatchWriter
from ztsim.radius.store.snapshot import load_snapshot, refresh_sims
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.changes import ChangeEvent, ChangeKind
from ztsim.sessions.leases import claim_next_block, load_leases
from ztsim.sessions.table import Session, SessionIndex

log = logging.getLogger("ztsim.radius.serve.service")

# Pauses between tries while commits fail: from the first to the last, doubling.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0


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
        self.writer = BatchWriter(engine, clock)
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
        # Set (from the accounting thread) when a reply waits for a commit.
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._failing = False  # the last commit failed: logged once per outage
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
            wake=self._wake_writer,
        )
        # Last: a start that failed above leaves no thread behind.
        self._writing = BackgroundThread("radius-writer", nice=self.settings.writer_nice)
        self._spawn(self._flush_loop())
        self._spawn(self._reload_loop())
        return self.server

    async def stop(self) -> None:
        """Stop answering, commit what is pending and send the replies that wait for it."""
        if self.server is not None:
            self.server.stop_serving()
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

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> bool:
        """Commit what the hot path has recorded so far (after any batch in flight) and
        send the accounting replies that waited for it; False if the commit failed (its
        records are kept for the next one)."""
        async with self._flush_lock:
            batch = self.writer.take()
            core = self.core
            if not batch and (core is None or not core.awaiting):
                return True
            if self._writing is not None:
                return await self._writing.run(self._commit, batch)
            return await asyncio.to_thread(self._commit, batch)

    def _commit(self, batch: Batch) -> bool:
        # On the writer's thread: the replies leave as soon as their commit is done.
        try:
            if batch:
                self.writer.write(batch)
        except (SQLAlchemyError, OSError) as exc:
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
        if self._failing:
            self._failing = False
            log.warning("writing RADIUS records resumed")
        core, server = self.core, self.server
        if core is not None:
            with self.lock:
                done = core.committed(batch.generation)
            if server is not None:
                for after in done:
                    server.send_acct(after.reply, after.peer)
        return True

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
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_SECONDS)

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
