"""Every role in one process (`ztsim up`, and the demo): the API with DoH, the RADIUS
AAA server on the same event loop, the DNS gateway on its own loop in a thread, and the
net role (its own threads) when `net_enabled` and run as root.

The API's `/metrics` serves every role's metrics (the *_metrics_listen ports are for
the roles run alone). The roles learn every committed change from the change feed (`ztsim.feed`), as
separate processes do: in this process a commit that published wakes their followers
at once, so a suspension reaches the AAA server within milliseconds and it sends the
Disconnect-Requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

import uvicorn

from ztsim.api.context import ApiContext
from ztsim.dns.serve.metrics import dns_collector
from ztsim.esim.config import smdp_placeholder_warning
from ztsim.heap import freeze_startup
from ztsim.metrics.registry import Registry
from ztsim.node import dns as dns_node
from ztsim.node import net_serve
from ztsim.node.listeners import Announce, bind_tcp, http, log_listeners
from ztsim.node.net import NetRole
from ztsim.node.platform import (
    API_BACKLOG,
    Platform,
    api_app,
    api_server,
    background_risk,
    feed_pruner,
)
from ztsim.node.radius import radius_listeners, start_aaa
from ztsim.node.retention import Pruner
from ztsim.node.risk import RiskRole
from ztsim.node.runner import run_role
from ztsim.radius.serve.metrics import radius_collector
from ztsim.radius.serve.server import RadiusServer
from ztsim.radius.serve.service import AaaService

log = logging.getLogger("ztsim.node.up")


@dataclass
class Running:
    aaa: AaaService
    radius: RadiusServer
    api: uvicorn.Server
    api_task: asyncio.Task[None]
    pruner: Pruner
    risk: RiskRole
    net: NetRole | None = None  # when `net_enabled` and run as root

    @property
    def api_url(self) -> str:
        return f"http://{self.api.config.host}:{self.api.config.port}"

    async def stop(self) -> None:
        self.api.should_exit = True
        try:
            await self.api_task
        finally:
            self.pruner.stop()
            self.risk.stop()
            if self.net is not None:
                await asyncio.to_thread(self.net.stop)
            await self.aaa.stop()


async def start_all(
    platform: Platform, *, dns: bool = True, announce: Announce = log_listeners
) -> Running:
    """Start every role and return once the API is listening. While it serves, uvicorn
    takes SIGINT and SIGTERM: `api_task` ends when one arrives. A port that cannot be
    bound is a `ZtsimError` naming it; `announce` is told every listener."""
    s = platform.settings
    ctx = platform.api_context()
    api_at = http("API", s.api_host, s.api_port, "/docs")
    # Bound first: it is the role most likely to collide (8080), and the one whose server
    # would otherwise exit the process on its own.
    api_socket = bind_tcp(api_at, API_BACKLOG)
    try:
        running = await _start_roles(platform, ctx, api_socket, dns=dns)
    except BaseException:
        api_socket.close()
        raise
    port = api_socket.getsockname()[1]
    listening = radius_listeners(s, running.radius.auth_port, running.radius.acct_port)
    if dns:
        listening += dns_node.dns_listeners(dns_node.gateway_options(s, None))
    listening.append(http("API", s.api_host, port, "/docs"))
    if dns:
        listening.append(http("DoH", s.api_host, port, dns_node.DOH_PATH))
    listening.append(http("metrics", s.api_host, port, "/metrics"))
    announce(listening)
    if (placeholder := smdp_placeholder_warning(s)) is not None:
        log.warning("%s", placeholder)
    return running


async def _start_roles(
    platform: Platform, ctx: ApiContext, api_socket: socket.socket, *, dns: bool
) -> Running:
    aaa, radius = await start_aaa(platform)
    net: NetRole | None = None
    try:
        # Every role's metrics on the API's /metrics: one process, one scrape.
        metrics = Registry()
        metrics.register(radius_collector(aaa))
        # One key for the pseudonyms of both planes' events, for the life of the process.
        pseudonyms = os.urandom(32)
        net = await asyncio.to_thread(net_serve.start_beside, platform, None, pseudonyms)
        if net is not None:
            metrics.register(net.collect)
        doh = None
        if dns:
            # The gateway's loop runs in a daemon thread; it ends with the process.
            doh, gateway = await dns_node.start_in_thread(platform, pseudonyms)
            metrics.register(dns_collector(gateway))
            if net is not None:
                # The answers the gateway gives SIMs fill the net role's FQDN sets (a
                # `network` rule's `domains`); queued by the role, never blocking DNS.
                gateway.gateway.on_answer = net.state.learn
        app = api_app(platform, ctx, doh, metrics)
        server = api_server(platform, app, log_level="warning")
        task = asyncio.create_task(server.serve(sockets=[api_socket]))
        while not server.started:
            if task.done():
                await task  # re-raise why it could not start
                raise RuntimeError("the API server stopped before it started")
            await asyncio.sleep(0.02)
    except BaseException:
        if net is not None:
            await asyncio.to_thread(net.stop)
        await aaa.stop()
        raise
    pruner = feed_pruner(platform)
    pruner.start()
    risk = background_risk(platform)
    risk.start()
    return Running(aaa, radius, server, task, pruner, risk, net)


async def run_until_stopped(platform: Platform, announce: Announce = log_listeners) -> None:
    """`ztsim up`: serve until SIGINT or SIGTERM, or until the API server ends.

    Our handlers are in place before anything binds. Once uvicorn serves it takes the
    two signals itself (it stops, then raises the signal again, which reaches ours): a
    signal is acted on whichever of the two holds it."""

    async def start() -> Running:
        running = await start_all(platform, announce=announce)
        log.debug("%d start-up objects frozen", freeze_startup())
        return running

    await run_role(start, ended=lambda running: running.api_task)
