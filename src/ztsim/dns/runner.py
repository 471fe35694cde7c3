"""Running the gateway: sockets, snapshot reloads and the query-log writer, in one process
or in N forked workers sharing the port with SO_REUSEPORT.

Snapshots are rebuilt off the hot path (in a thread) and swapped by assignment:
the policy file when its modification time changes, the identity table from
the session table every `reload_interval` seconds. The query log is drained to
the events table every `log_interval` seconds. Workers are forked after the
first policy is built, so its domain store is shared copy-on-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine as DbEngine

from ztsim.clock import utc_now
from ztsim.dns.answercache import AnswerCache
from ztsim.dns.config import GatewayConfig, load_config, source_files
from ztsim.dns.engine import Engine
from ztsim.dns.gateway import Gateway
from ztsim.dns.identity import IdentityResolver, IdentitySnapshot
from ztsim.dns.identity_db import load_identity_snapshot
from ztsim.dns.policy import PolicyData
from ztsim.dns.querylog import QueryLog
from ztsim.dns.server_tcp import serve_tcp, tcp_socket
from ztsim.dns.server_udp import serve_udp, udp_socket
from ztsim.dns.snapshot import PolicySnapshot
from ztsim.dns.upstream import UpstreamPool
from ztsim.errors import ZtsimError
from ztsim.events import store

log = logging.getLogger("ztsim.dns")


@dataclass(slots=True)
class GatewayOptions:
    host: str
    port: int
    upstreams: list[tuple[str, int]]
    policy_file: Path | None
    database: DbEngine | None = None
    reload_interval: float = 5.0
    log_interval: float = 1.0
    pseudonym_key: bytes = field(default_factory=lambda: os.urandom(32))
    store_key: Callable[[], bytes] = field(default=lambda: os.urandom(16))


def options_config(options: GatewayOptions) -> GatewayConfig | None:
    return None if options.policy_file is None else load_config(options.policy_file)


def _identities(options: GatewayOptions, config: GatewayConfig | None) -> IdentitySnapshot:
    defaults = config.defaults if config else ()
    static = config.static if config else ()
    tokens = config.tokens if config else ()
    if options.database is None:
        return IdentitySnapshot.build(static, tokens, defaults)
    with options.database.connect() as conn:
        from_sessions = load_identity_snapshot(conn, defaults, tokens)
    # Live sessions win over static entries for the same address.
    merged = {**IdentitySnapshot.build(static).by_address, **from_sessions.by_address}
    return IdentitySnapshot(merged, from_sessions.by_token, from_sessions.networks)


def build_policy(options: GatewayOptions, config: GatewayConfig | None) -> PolicySnapshot:
    return PolicySnapshot(config.policy if config else PolicyData(), options.store_key())


class GatewayProcess:
    """One serving process: its gateway, its sockets and its background tasks."""

    def __init__(self, options: GatewayOptions, config: GatewayConfig | None) -> None:
        self.options = options
        policy = build_policy(options, config)
        self.querylog = QueryLog(policy, options.pseudonym_key)
        self.gateway = Gateway(
            Engine(policy, AnswerCache(), self.querylog),
            IdentityResolver(_identities(options, config)),
            UpstreamPool(options.upstreams),
        )
        self._mtime = self._policy_mtime()

    def _policy_mtime(self) -> tuple[float, ...]:
        path = self.options.policy_file
        if path is None:
            return ()
        stamps = []
        for source in source_files(path):
            try:
                stamps.append(source.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return tuple(stamps)

    def reload(self) -> None:
        """Rebuild what changed and swap it in; a failed reload keeps the last good snapshot."""
        config: GatewayConfig | None = None
        try:
            mtime = self._policy_mtime()
            if mtime != self._mtime:
                started = time.monotonic()
                config = options_config(self.options)
                self.gateway.swap_policy(build_policy(self.options, config))
                self._mtime = mtime
                log.info("DNS policy reloaded in %.2f s", time.monotonic() - started)
            if self.options.database is not None or config is not None:
                config = config or options_config(self.options)
                self.gateway.identities.swap(_identities(self.options, config))
        except (ZtsimError, OSError) as exc:
            log.warning("DNS reload failed, keeping the last snapshot: %s", exc)

    def write_log(self) -> None:
        events = self.querylog.drain()
        if events and self.options.database is not None:
            with self.options.database.begin() as conn:
                store.append(conn, events, utc_now())

    async def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)
            except Exception:
                log.exception("DNS background task failed")

    async def serve(self, *, reuse_port: bool = False, stop: asyncio.Event | None = None) -> None:
        options = self.options
        udp = await serve_udp(
            self.gateway, udp_socket(options.host, options.port, reuse_port=reuse_port)
        )
        tcp = await serve_tcp(
            self.gateway, tcp_socket(options.host, options.port, reuse_port=reuse_port)
        )
        tasks = [
            asyncio.create_task(self._every(options.reload_interval, self.reload)),
            asyncio.create_task(self._every(options.log_interval, self.write_log)),
        ]
        log.info("DNS gateway on %s:%d (UDP and TCP)", options.host, options.port)
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            for task in tasks:
                task.cancel()
            udp.close()
            tcp.close()
            await self.gateway.upstreams.close()
            with contextlib.suppress(Exception):
                self.write_log()


def _serve_forever(process: GatewayProcess, reuse_port: bool) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await process.serve(reuse_port=reuse_port, stop=stop)

    asyncio.run(main())


def run(options: GatewayOptions, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT; with `workers` > 1, fork that many processes."""
    config = options_config(options)
    if workers <= 1:
        single = GatewayProcess(options, config)
        del config
        _serve_forever(single, reuse_port=False)
        return
    process = GatewayProcess(options, config)  # built once, shared by the forks
    del config  # the parsed lists: only the compact store is kept
    gc.collect()
    if options.database is not None:
        options.database.dispose()  # no pooled connection may cross a fork
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                _serve_forever(process, reuse_port=True)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)
