"""Running the gateway: sockets, the change feed and the query-log writer, in one process
or in N forked workers sharing the port with SO_REUSEPORT.

At start the process loads its policy, its identity table and the outbox position they
reflect in one consistent read, then follows the change feed (`follow`): identity changes
patch the table in place, a DNS change recompiles that org's policy, swapped in by
assignment. A query from a source with no entry asks the identity follower for a read
at once and waits for it (bounded, `late`): a session committed just before its first
query is answered, not refused. Only a policy file is still polled (its modification time, every
`reload_interval` seconds). While the database is unreachable the process serves its last
state and `lag_seconds` grows; the followers catch up when it returns. The query log is
drained to the events table every `log_interval` seconds; while the database is down its
events are kept (up to the query log's bound, the oldest past it counted as dropped) and
written, with their own times, when it returns, with one `dns.events_dropped` event per
org that lost any. Workers are forked after the first policy is built, so its domain
stores are shared copy-on-write; later policies come from the parent (`workers`, `share`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine as DbEngine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import utc_now
from ztsim.db.engine import for_writing
from ztsim.dns.answercache import AnswerCache
from ztsim.dns.engine import Engine
from ztsim.dns.policy.config import GatewayConfig, load_config
from ztsim.dns.policy.identity import IdentityResolver
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.querylog import Backlog, QueryLog
from ztsim.dns.serve.doh_https import DohHttpsServer, doh_context, serve_doh
from ztsim.dns.serve.follow import GatewayFeed
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.serve.identities import IdentityTable
from ztsim.dns.serve.late import LateSources
from ztsim.dns.serve.policies import PolicyBuilder, Subjects
from ztsim.dns.serve.share import PolicyShare
from ztsim.dns.serve.tcp import TcpServer, serve_tcp, tcp_socket, tls_context
from ztsim.dns.serve.udp import UdpServer, serve_udp, udp_socket
from ztsim.dns.serve.upstream import UpstreamPool, UpstreamSpec
from ztsim.dns.store.refresh import refresh_due
from ztsim.errors import ZtsimError
from ztsim.events import store
from ztsim.events.schema import NewEvent
from ztsim.netguard import Network

log = logging.getLogger("ztsim.dns")
SHARE_POLL_SECONDS = 0.025  # a worker looks for its parent's newest policy this often


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
    # DNS over HTTPS (RFC 8484, HTTP/2) on `doh_port`, with the same certificate and key.
    doh_port: int = 8443


def options_config(options: GatewayOptions) -> GatewayConfig | None:
    return None if options.policy_file is None else load_config(options.policy_file)


def _upstream_tls(ca: Path | None) -> Callable[[], ssl.SSLContext] | None:
    """Makes the contexts checking upstream certificates: one for DoT, one for DoH (the
    HTTP client sets ALPN on its context, which DoT must not offer). The pool makes
    them when it is built, so a bad CA file stops the start."""
    if ca is None:
        return None
    return lambda: ssl.create_default_context(cafile=str(ca))


class GatewayProcess:
    """One serving process: its gateway, its sockets, its feed and its background tasks."""

    def __init__(
        self,
        options: GatewayOptions,
        config: GatewayConfig | None = None,
        shared: Path | None = None,
    ) -> None:
        """`config`: the policy file, read already; `shared`: the directory a worker's
        parent publishes its policies to (see `ztsim.dns.serve.workers`)."""
        self.options = options
        self.shared = shared
        self.builder = PolicyBuilder(options.policy_file, options.store_key, config)
        self.identities = IdentityTable(IdentityResolver())
        first: list[PolicySnapshot] = []
        self.feed = GatewayFeed(
            options.database,
            self.builder,
            self.identities,
            lambda _p, policy, _s: first.append(policy),
        )
        self.feed.load()
        policy = first[-1]
        self.feed.publish = self._publish
        self.querylog = QueryLog(policy, options.pseudonym_key)
        self.unwritten = Backlog(self.querylog, self.querylog.max_pending)
        # A write cancelled at stop may still run in its thread when the last one starts.
        self._writing = threading.Lock()
        self._write_failing = False
        self._refresh_failing = False
        self._stats_at = time.monotonic()
        self._share: PolicyShare | None = None
        self._servers: list[TcpServer | UdpServer | DohHttpsServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.gateway = Gateway(
            Engine(policy, AnswerCache(), self.querylog),
            self.identities.resolver,
            UpstreamPool(options.upstreams, tls=_upstream_tls(options.upstream_ca)),
        )
        if options.database is not None:
            self.gateway.late = LateSources(
                self.feed.read_identities_now, self.feed.identities_readable
            )

    def _publish(self, _position: int, policy: PolicySnapshot, subjects: Subjects) -> None:
        self.gateway.swap_policy(policy)
        self.identities.set_sources(subjects.static, subjects.tokens, subjects.defaults)

    # -- the feed ------------------------------------------------------------------------

    def position(self) -> int:
        """The sequence number through which every change is applied in this process."""
        return self.feed.position()

    def wait_applied(self, seq: int, timeout: float) -> bool:
        """Block until every change through `seq` is applied here; False after `timeout`."""
        return self.feed.wait_applied(seq, timeout)

    async def applied(self, seq: int, timeout: float) -> bool:
        """`wait_applied` for a coroutine."""
        return await asyncio.to_thread(self.feed.wait_applied, seq, timeout)

    @property
    def udp_dropped(self) -> int:
        """UDP queries dropped (past the bound waiting for an upstream, or unsendable)."""
        return sum(s.dropped for s in self._servers if isinstance(s, UdpServer))

    def lag_seconds(self) -> float:
        """Seconds since this process last knew it had applied every change (the metric
        `ztsim_feed_lag_seconds`): about 0 while current, growing while the database is
        unreachable."""
        return self.feed.lag_seconds()

    def reload(self) -> None:
        """The policy file, if it changed (a worker: its parent's newest policy), and, in a
        process not serving, the feed's pending changes. A failed reload keeps the last
        good snapshot."""
        try:
            if self.shared is not None:
                self._load_shared()
            else:
                self.reload_policy_file()
                self.feed.catch_up()
        except (ZtsimError, OSError, SQLAlchemyError) as exc:
            # A driver's message may quote values: its class only.
            reason = exc if isinstance(exc, ZtsimError | OSError) else type(exc).__name__
            log.warning("DNS reload failed, keeping the last snapshot: %s", reason)

    def reload_policy_file(self) -> None:
        """Read the policy file again if it changed, and publish the result."""
        if self.builder.file_changed():
            started = time.monotonic()
            self.feed.reload_file()
            log.info("DNS policy file reloaded in %.2f s", time.monotonic() - started)

    def _load_shared(self) -> None:
        if self._share is None:
            assert self.shared is not None
            self._share = PolicyShare(self.shared)
            self._share.hold(self.gateway.engine.policy)
        if not self._share.changed():
            return
        published = self._share.load()
        if published is not None:
            position, policy, subjects = published
            self._publish(position, policy, subjects)
            self.feed.policy_loaded(position)

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

    async def _watch_share(self) -> None:
        """A worker: take the parent's newest policy soon after it is published (one stat
        per tick; the load itself runs off the loop)."""
        while True:
            await asyncio.sleep(SHARE_POLL_SECONDS)
            try:
                share = self._share
                if share is None or share.changed():
                    await asyncio.to_thread(self.reload)
                elif self.feed.dns_seen > self.feed.policy_seq:
                    # A DNS change read here: is the policy this worker holds still current?
                    position = share.position()
                    if position is not None:
                        self.feed.policy_loaded(position)
            except Exception:
                log.exception("DNS background task failed")

    def refresh_lists(self) -> None:
        """Download the URL lists that are due; a database outage is logged once."""
        if self.options.database is None:
            return
        try:
            refresh_due(
                self.options.database,
                utc_now(),
                self.options.list_refresh_interval,
                allowed=self.options.outbound_allowed,
            )
        except SQLAlchemyError as exc:
            if not self._refresh_failing:
                self._refresh_failing = True
                log.warning("refreshing DNS lists failed (%s); retrying", type(exc).__name__)
            return
        if self._refresh_failing:
            self._refresh_failing = False
            log.warning("refreshing DNS lists resumed")

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
                doh = doh_context(str(options.tls_cert), str(options.tls_key))
                doh_sock = tcp_socket(options.host, options.doh_port, reuse_port=reuse_port)
                self._servers.append(await serve_doh(self.gateway, doh_sock, doh))
                log.info("DNS over HTTPS on %s:%d", options.host, options.doh_port)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [asyncio.create_task(self._every(options.log_interval, self.write_log))]
        self.feed.start_identities()
        if self.shared is not None:
            self._tasks.append(asyncio.create_task(self._watch_share()))
        else:
            self.feed.start_policy()
            if options.policy_file is not None:
                reload = self._every(options.reload_interval, self.reload)
                self._tasks.append(asyncio.create_task(reload))
        if refresher and options.database is not None:
            check = min(60.0, options.list_refresh_interval)
            self._tasks.append(asyncio.create_task(self._every(check, self.refresh_lists)))
        log.info("DNS gateway on %s:%d (UDP and TCP)", options.host, options.port)

    async def stop(self) -> None:
        """Stop serving and following, close the upstreams and write the last of the query
        log."""
        await asyncio.to_thread(self.feed.stop)
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
