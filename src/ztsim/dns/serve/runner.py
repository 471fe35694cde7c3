"""Running the gateway: sockets, snapshot reloads and the query-log writer, in one process
or in N forked workers sharing the port with SO_REUSEPORT.

Snapshots are rebuilt off the hot path (in a thread) and swapped by assignment:
the policy file when its modification time changes, the identity table from
the session table every `reload_interval` seconds. The query log is drained to
the events table every `log_interval` seconds; while the database is down its events
are kept (up to the query log's bound, the oldest past it counted as dropped) and
written, with their own times, when it returns, with one `dns.events_dropped` event
per org that lost any. Workers are forked after the
first policy is built, so its domain store is shared copy-on-write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine as DbEngine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import utc_now
from ztsim.db.engine import for_writing
from ztsim.dns.answercache import AnswerCache
from ztsim.dns.engine import Engine
from ztsim.dns.policy.config import GatewayConfig, load_config, source_files
from ztsim.dns.policy.identity import IdentityResolver, IdentitySnapshot, NetworkDefault, Requester
from ztsim.dns.policy.rules import PolicyData
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.querylog import Backlog, QueryLog
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.serve.tcp import TcpServer, serve_tcp, tcp_socket, tls_context
from ztsim.dns.serve.udp import UdpServer, serve_udp, udp_socket
from ztsim.dns.serve.upstream import UpstreamPool, UpstreamSpec
from ztsim.dns.store import policy_view as policy_db
from ztsim.dns.store.identity_view import identity_fingerprint, load_identity_snapshot
from ztsim.dns.store.refresh import refresh_due
from ztsim.errors import ZtsimError
from ztsim.events import store
from ztsim.events.schema import NewEvent
from ztsim.netguard import Network

log = logging.getLogger("ztsim.dns")


@dataclass(slots=True)
class GatewayOptions:
    host: str
    port: int
    upstreams: list[UpstreamSpec]
    policy_file: Path | None
    database: DbEngine | None = None
    reload_interval: float = 5.0
    log_interval: float = 1.0
    stats_interval: float = 10.0  # seconds between the aggregate dns.stats events
    pseudonym_key: bytes = field(default_factory=lambda: os.urandom(32))
    store_key: Callable[[], bytes] = field(default=lambda: os.urandom(16))
    # DNS over TLS (RFC 7858) on `tls_port` when a certificate and key are configured.
    tls_port: int = 8853
    list_refresh_interval: float = 3600.0  # seconds between downloads of a URL list
    outbound_allowed: tuple[Network, ...] = ()  # ranges URL lists may come from (netguard)
    upstream_ca: Path | None = None  # CA file checking DoT and DoH upstreams; None: system's
    tls_cert: Path | None = None
    tls_key: Path | None = None


def options_config(options: GatewayOptions) -> GatewayConfig | None:
    return None if options.policy_file is None else load_config(options.policy_file)


@dataclass(frozen=True, slots=True)
class _Subjects:
    """What the policy sources say about requesters: static entries, tokens, networks."""

    static: tuple[tuple[str, Requester], ...] = ()
    tokens: tuple[tuple[str, Requester], ...] = ()
    defaults: tuple[NetworkDefault, ...] = ()


def build_policy(
    options: GatewayOptions, config: GatewayConfig | None
) -> tuple[PolicySnapshot, _Subjects]:
    """The policy file's orgs and lists, overridden per org by the database's."""
    data = config.policy if config else PolicyData()
    subjects = _Subjects(config.static, config.tokens, config.defaults) if config else _Subjects()
    if options.database is not None:
        with options.database.connect() as conn:
            stored, stored_defaults = policy_db.load_policy(conn)
        data = PolicyData({**data.orgs, **stored.orgs}, {**data.lists, **stored.lists}, data.feeds)
        subjects = replace(subjects, defaults=(*subjects.defaults, *stored_defaults))
    return PolicySnapshot(data, options.store_key()), subjects


def _identities(options: GatewayOptions, subjects: _Subjects) -> IdentitySnapshot:
    if options.database is None:
        return IdentitySnapshot.build(subjects.static, subjects.tokens, subjects.defaults)
    with options.database.connect() as conn:
        from_sessions = load_identity_snapshot(conn, subjects.defaults, subjects.tokens)
    # Live sessions win over static entries for the same address.
    merged = {**IdentitySnapshot.build(subjects.static).by_address, **from_sessions.by_address}
    return IdentitySnapshot(merged, from_sessions.by_token, from_sessions.networks)


def _upstream_tls(ca: Path | None) -> Callable[[], ssl.SSLContext] | None:
    """Makes the contexts checking upstream certificates: one for DoT, one for DoH (the
    HTTP client sets ALPN on its context, which DoT must not offer). The pool makes
    them when it is built, so a bad CA file stops the start."""
    if ca is None:
        return None
    return lambda: ssl.create_default_context(cafile=str(ca))


class GatewayProcess:
    """One serving process: its gateway, its sockets and its background tasks."""

    def __init__(
        self, options: GatewayOptions, config: GatewayConfig | None, shared: Path | None = None
    ) -> None:
        """`shared`: a worker's file of policies its parent builds (see `ztsim.dns.serve.workers`)."""
        self.options = options
        self.shared = shared
        self._shared_stamp = 0
        self._state = self.sources_state()
        # Read before the sessions themselves: a change in between is picked up next tick.
        self._identity_inputs = self._identity_state()
        policy, self._subjects = build_policy(options, config)
        self.querylog = QueryLog(policy, options.pseudonym_key)
        self.unwritten = Backlog(self.querylog, self.querylog.max_pending)
        # A write cancelled at stop may still run in its thread when the last one starts.
        self._writing = threading.Lock()
        self._write_failing = False
        self._stats_at = time.monotonic()
        self._servers: list[TcpServer | UdpServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.gateway = Gateway(
            Engine(policy, AnswerCache(), self.querylog),
            IdentityResolver(_identities(options, self._subjects)),
            UpstreamPool(options.upstreams, tls=_upstream_tls(options.upstream_ca)),
        )

    def sources_state(self) -> tuple[object, ...]:
        """Modification times of the policy files and the database's DNS fingerprint."""
        stamps: list[object] = []
        path = self.options.policy_file
        for source in source_files(path) if path is not None else ():
            try:
                stamps.append(source.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        if self.options.database is not None:
            with self.options.database.connect() as conn:
                stamps.append(policy_db.fingerprint(conn))
        return tuple(stamps)

    def reload(self) -> None:
        """Rebuild what changed and swap it in; a failed reload keeps the last good snapshot."""
        try:
            subjects = self._subjects
            if self.shared is not None:
                changed = self._load_shared()
            else:
                state = self.sources_state()
                changed = state != self._state
                if changed:
                    started = time.monotonic()
                    config = options_config(self.options)
                    policy, self._subjects = build_policy(self.options, config)
                    self.gateway.swap_policy(policy)
                    self._state = state
                    log.info("DNS policy reloaded in %.2f s", time.monotonic() - started)
            # A policy change alone (a list, a rule) leaves who is who as it was.
            inputs = self._identity_state()
            if self._subjects != subjects or inputs != self._identity_inputs:
                self.gateway.identities.swap(_identities(self.options, self._subjects))
                self._identity_inputs = inputs
        except (ZtsimError, OSError, SQLAlchemyError) as exc:
            log.warning("DNS reload failed, keeping the last snapshot: %s", exc)

    def _identity_state(self) -> tuple[object, ...]:
        if self.options.database is None:
            return ()
        with self.options.database.connect() as conn:
            return identity_fingerprint(conn)

    def _load_shared(self) -> bool:
        assert self.shared is not None
        try:
            stamp = self.shared.stat().st_mtime_ns
        except OSError:
            return False
        if stamp == self._shared_stamp:
            return False
        with self.shared.open("rb") as handle:
            # Written by this worker's own parent into a private (0700) directory.
            policy, self._subjects = pickle.load(handle)  # noqa: S301
        self.gateway.swap_policy(policy)
        self._shared_stamp = stamp
        return True

    def write_log(self, final: bool = False) -> None:
        """Store the query log's events (after those kept from failed writes); if the
        database is unavailable, keep them for the next call."""
        with self._writing:
            events = self.querylog.drain()
            now = time.monotonic()
            if final or now - self._stats_at >= self.options.stats_interval:
                self._stats_at = now
                events += self.querylog.stats()
            if self.options.database is None:
                return
            batches = self.unwritten.take()
            if events:
                batches.append((utc_now(), events))
            reports = self.querylog.drop_reports()
            if not batches and not reports:
                return
            try:
                self._store(batches, reports)
            except (SQLAlchemyError, OSError) as exc:
                self.querylog.give_back(reports)
                self.unwritten.keep(batches)
                if not self._write_failing or final:
                    self._write_failing = True
                    log.warning(
                        "writing DNS events failed (%s): %d kept for the next try",
                        type(exc).__name__,  # a driver's message may quote the values
                        len(self.unwritten),
                    )
                return
            if self._write_failing:
                self._write_failing = False
                log.warning("writing DNS events resumed")

    def _store(
        self, batches: list[tuple[datetime, list[NewEvent]]], reports: list[NewEvent]
    ) -> None:
        assert self.options.database is not None
        with for_writing(self.options.database).begin() as conn:
            for when, events in batches:
                store.append(conn, events, when)
            store.append(conn, reports, utc_now())

    async def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)
            except Exception:
                log.exception("DNS background task failed")

    def refresh_lists(self) -> None:
        if self.options.database is not None:
            refresh_due(
                self.options.database,
                utc_now(),
                self.options.list_refresh_interval,
                allowed=self.options.outbound_allowed,
            )

    async def start(self, *, reuse_port: bool = False, refresher: bool = True) -> None:
        """Bind the sockets and start serving; `refresher`: this process downloads URL
        lists (one per node). A failed start leaves nothing open."""
        options = self.options
        try:
            udp_sock = udp_socket(options.host, options.port, reuse_port=reuse_port)
            self._servers.append(await serve_udp(self.gateway, udp_sock))
            tcp_sock = tcp_socket(options.host, options.port, reuse_port=reuse_port)
            self._servers.append(await serve_tcp(self.gateway, tcp_sock))
            if options.tls_cert is not None and options.tls_key is not None:
                tls = tls_context(str(options.tls_cert), str(options.tls_key))
                dot_sock = tcp_socket(options.host, options.tls_port, reuse_port=reuse_port)
                self._servers.append(await serve_tcp(self.gateway, dot_sock, tls))
                log.info("DNS over TLS on %s:%d", options.host, options.tls_port)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [
            asyncio.create_task(self._every(options.reload_interval, self.reload)),
            asyncio.create_task(self._every(options.log_interval, self.write_log)),
        ]
        if refresher and options.database is not None:
            check = min(60.0, options.list_refresh_interval)
            self._tasks.append(asyncio.create_task(self._every(check, self.refresh_lists)))
        log.info("DNS gateway on %s:%d (UDP and TCP)", options.host, options.port)

    async def stop(self) -> None:
        """Stop serving, close the upstreams and write the last of the query log."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        await self.gateway.upstreams.close()
        try:
            await asyncio.to_thread(self.write_log, True)
        except Exception:
            log.exception("writing the last DNS query log failed")
        if self.unwritten:
            log.error("stopping with %d DNS events unwritten", len(self.unwritten))

    async def serve(self, *, stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` (never, without one)."""
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()
