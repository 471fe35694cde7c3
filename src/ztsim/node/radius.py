"""The AAA role in a process: alone (`ztsim serve radius`) or beside the API (`ztsim up`).

Alone, its metrics are on a port of their own (`radius_metrics_listen`); beside the API,
on the API's `/metrics`. Either way it follows the change feed (`ztsim.feed`): beside the API it is woken by
this process's commits; alone, by PostgreSQL's NOTIFY, or by polling the outbox on a
shared SQLite file.
"""

from __future__ import annotations

import asyncio
import logging

from ztsim.heap import freeze_startup
from ztsim.node.listeners import Announce, Listener, binding, http, log_listeners
from ztsim.node.metrics import WithMetrics, parse_listen, serve_metrics
from ztsim.node.platform import Platform
from ztsim.node.runner import run_role
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.serve.metrics import radius_collector
from ztsim.radius.serve.server import RadiusServer
from ztsim.radius.serve.service import AaaService, AaaSettings
from ztsim.settings import Settings

log = logging.getLogger("ztsim.node.radius")


def aaa_settings(settings: Settings) -> AaaSettings:
    return AaaSettings(
        host=settings.radius_host,
        auth_port=settings.radius_auth_port,
        acct_port=settings.radius_acct_port,
        reply=ReplySettings(
            # The gateway hands out ztsim's own DNS gateway unless told otherwise.
            dns_primary=settings.radius_dns_primary or settings.dns_host,
            dns_secondary=settings.radius_dns_secondary,
            session_timeout=settings.radius_session_timeout,
        ),
        journal_dir=settings.radius_journal_dir,
    )


def radius_listeners(settings: Settings, auth_port: int, acct_port: int) -> list[Listener]:
    host = settings.radius_host
    return [Listener("RADIUS auth", host, auth_port), Listener("RADIUS acct", host, acct_port)]


async def start_aaa(platform: Platform) -> tuple[AaaService, RadiusServer]:
    """Bind and serve; a port that cannot be bound is a `ZtsimError` naming it."""
    s = platform.settings
    # The service writes through `for_writing` itself; its reads (the feed) must not
    # take SQLite's write lock.
    aaa = AaaService(platform.engine, platform.sealer, aaa_settings(s))
    with binding(radius_listeners(s, s.radius_auth_port, s.radius_acct_port)):
        server = await aaa.start()
    return aaa, server


async def run_radius(platform: Platform, announce: Announce = log_listeners) -> None:
    """The AAA server alone, until SIGINT or SIGTERM; then its records are written. Its
    metrics on `radius_metrics_listen`. `announce` is told what it listens on once it
    serves (the bound ports: a port 0 is shown as the one picked)."""

    metrics_at = parse_listen(platform.settings.radius_metrics_listen)

    async def start() -> WithMetrics:
        aaa, server = await start_aaa(platform)
        try:
            listener = await serve_metrics(metrics_at, radius_collector(aaa), "RADIUS")
        except BaseException:
            await aaa.stop()
            raise
        listening = radius_listeners(platform.settings, server.auth_port, server.acct_port)
        if listener is not None and metrics_at is not None:
            listening.append(http("RADIUS metrics", metrics_at[0], listener.port, "/metrics"))
        announce(listening)
        log.debug("%d start-up objects frozen", freeze_startup())
        return WithMetrics(aaa, listener)

    await run_role(start)


def serve_radius(platform: Platform, announce: Announce = log_listeners) -> None:
    asyncio.run(run_radius(platform, announce))
