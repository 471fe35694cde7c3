"""The AAA role in a process: alone (`ztsim serve radius`) or beside the API (`ztsim up`).

In `ztsim up` the API and the AAA server share one event loop and one in-process
notifier: a committed suspension, retirement, identity change or binding change
reaches the AAA server at once, which sends the Disconnect-Requests. A separate
`ztsim serve radius` process learns the same changes from its periodic reload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal

from ztsim.api.app import create_app
from ztsim.node.platform import Platform
from ztsim.radius.aaa import AaaService, AaaSettings
from ztsim.radius.traffic import ReplySettings
from ztsim.sessions.changes import Notifier
from ztsim.settings import Settings

log = logging.getLogger("ztsim.node.radius")


def aaa_settings(settings: Settings) -> AaaSettings:
    return AaaSettings(
        host=settings.radius_host,
        auth_port=settings.radius_auth_port,
        acct_port=settings.radius_acct_port,
        reply=ReplySettings(
            dns_primary=settings.radius_dns_primary,
            dns_secondary=settings.radius_dns_secondary,
            session_timeout=settings.radius_session_timeout,
        ),
    )


async def _start_aaa(platform: Platform) -> AaaService:
    aaa = AaaService(platform.engine, platform.sealer, aaa_settings(platform.settings))
    server = await aaa.start()
    log.info(
        "RADIUS on %s: auth %d, accounting %d",
        platform.settings.radius_host,
        server.auth_port,
        server.acct_port,
    )
    return aaa


async def run_radius(platform: Platform) -> None:
    """The AAA server alone, until SIGINT or SIGTERM."""
    aaa = await _start_aaa(platform)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await aaa.stop()


async def run_up(platform: Platform) -> None:
    """API and AAA server in one loop; uvicorn owns the signals and the shutdown."""
    import uvicorn

    notifier = Notifier()
    ctx = dataclasses.replace(platform.api_context(), notify=notifier)
    aaa = await _start_aaa(platform)
    notifier.subscribe(aaa.notify)
    config = uvicorn.Config(
        create_app(ctx),
        host=platform.settings.api_host,
        port=platform.settings.api_port,
        log_level="info",
        access_log=False,
    )
    log.info("API on http://%s:%d", platform.settings.api_host, platform.settings.api_port)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await aaa.stop()


def serve_radius(platform: Platform) -> None:
    asyncio.run(run_radius(platform))


def serve_up(platform: Platform) -> None:
    asyncio.run(run_up(platform))
