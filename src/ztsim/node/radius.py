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
    )


async def start_aaa(platform: Platform) -> tuple[AaaService, RadiusServer]:
    # The service writes through `for_writing` itself; its reads (the feed) must not
    # take SQLite's write lock.
    aaa = AaaService(platform.engine, platform.sealer, aaa_settings(platform.settings))
    server = await aaa.start()
    log.info(
        "RADIUS on %s: auth %d, accounting %d",
        platform.settings.radius_host,
        server.auth_port,
        server.acct_port,
    )
    return aaa, server


async def run_radius(platform: Platform) -> None:
    """The AAA server alone, until SIGINT or SIGTERM; then its records are written. Its
    metrics on `radius_metrics_listen`."""

    metrics_at = parse_listen(platform.settings.radius_metrics_listen)

    async def start() -> WithMetrics:
        aaa, _ = await start_aaa(platform)
        try:
            listener = await serve_metrics(metrics_at, radius_collector(aaa), "RADIUS")
        except BaseException:
            await aaa.stop()
            raise
        log.debug("%d start-up objects frozen", freeze_startup())
        return WithMetrics(aaa, listener)

    await run_role(start)


def serve_radius(platform: Platform) -> None:
    asyncio.run(run_radius(platform))
