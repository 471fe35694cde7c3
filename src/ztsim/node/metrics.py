"""The metrics port of the roles that run without the API (`serve radius`, `serve dns`).

A port that cannot be bound (taken, say by a second gateway on the same host) is logged
as an error and the role serves without it: the metrics are not worth an outage of the
AAA or DNS service. A listen address that does not parse stops the start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ztsim.errors import InvalidInput
from ztsim.metrics.exposition import render
from ztsim.metrics.listener import MetricsListener
from ztsim.metrics.registry import Collector, Family, Registry
from ztsim.node.runner import Role

log = logging.getLogger("ztsim.node.metrics")


def parse_listen(text: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port`; None for "" (no metrics port)."""
    text = text.strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # a bare IPv6 address needs its brackets
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"metrics listen address {text!r} is not host:port or [v6]:port")
    return host, int(port)


async def serve_metrics(
    where: tuple[str, int] | None, collector: Collector, role: str
) -> MetricsListener | None:
    """Serve `collector`'s metrics at `where` (`parse_listen`); None when off or not bound."""
    if where is None:
        return None
    registry = Registry()
    registry.register(collector)
    listener = MetricsListener(lambda: render(registry.samples()))
    try:
        await listener.start(*where)
    except OSError as exc:
        log.error("%s metrics not served: cannot listen on %s:%d (%s)", role, *where, exc.strerror)
        return None
    log.info("%s metrics on http://%s:%d/metrics", role, where[0], listener.port)
    return listener


@dataclass
class WithMetrics:
    """A role and its metrics port (or the task that reports them to a parent process),
    stopped together (the metrics first)."""

    role: Role
    listener: MetricsListener | None
    reporting: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self.reporting is not None:
            self.reporting.cancel()
            await asyncio.gather(self.reporting, return_exceptions=True)
        if self.listener is not None:
            await self.listener.stop()
        await self.role.stop()


async def report_every(
    seconds: float, collector: Collector, report: Callable[[list[Family]], None]
) -> None:
    """Hand `collector`'s metrics to `report` every `seconds` (a DNS worker to its parent)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            report(list(collector()))
        except Exception:
            log.exception("reporting metrics failed")


class HostMetrics:
    """A metrics port served from a thread of its own, for a process with no event loop
    (the parent of `serve dns --workers`)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="metrics", daemon=True)
        self._listener: MetricsListener | None = None

    def start(self, where: tuple[str, int], collector: Collector, role: str) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            serve_metrics(where, collector, role), self._loop
        )
        self._listener = started.result(timeout=10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return
        if self._listener is not None:
            asyncio.run_coroutine_threadsafe(self._listener.stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
