"""The net role in a process: alone (`ztsim serve net`) or beside the others (`ztsim up`,
when `net_enabled` and run as root).

It has no listener: it follows the change feed and drives the kernel (nftables,
conntrack, the tunnels), so it needs CAP_NET_ADMIN; `net_netns` runs every tool in a
network namespace, where a gateway that serves other traffic keeps its user plane.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from ztsim.errors import InvalidInput
from ztsim.heap import freeze_startup
from ztsim.node.net import NetRole, NetSettings, should_run
from ztsim.node.platform import Platform
from ztsim.node.runner import run_role
from ztsim.settings import Settings

log = logging.getLogger("ztsim.node.net")


def net_settings(settings: Settings, *, enabled: bool | None = None) -> NetSettings:
    netns = settings.net_netns
    return NetSettings(
        enabled=settings.net_enabled if enabled is None else enabled,
        reject=settings.net_reject,
        nft_prefix=("ip", "netns", "exec", netns) if netns else (),
        underlay=settings.net_underlay,
        audit=settings.net_audit,
    )


def start_beside(
    platform: Platform, euid: int | None = None, pseudonym_key: bytes | None = None
) -> NetRole | None:
    """The role for `ztsim up`: started when enabled and run as root, else None (with a
    warning when it was asked for but cannot run). `pseudonym_key`: the DNS gateway's."""
    wanted = net_settings(platform.settings)
    if not wanted.enabled:
        return None
    if not should_run(wanted, euid):
        log.warning("the net role was not started: it needs root (CAP_NET_ADMIN)")
        return None
    role = NetRole(platform.engine, wanted, pseudonym_key=pseudonym_key)
    role.start()
    return role


class _Running:
    def __init__(self, role: NetRole) -> None:
        self.role = role

    async def stop(self) -> None:
        await asyncio.to_thread(self.role.stop)


def _log_ready(line: str) -> None:
    log.info("%s", line)


async def run_net(platform: Platform, ready: Callable[[str], None] = _log_ready) -> None:
    """The net role alone, until SIGINT or SIGTERM; `ready` hears one line once the
    table is applied. InvalidInput when not run as root."""
    wanted = net_settings(platform.settings, enabled=True)
    if not should_run(wanted, os.geteuid()):
        raise InvalidInput("the net role drives nftables and conntrack: run it as root")

    async def start() -> _Running:
        role = NetRole(platform.engine, wanted)
        await asyncio.to_thread(role.start)
        # Full collections of a start-up's objects would hold the GIL for 100s of ms,
        # stalling a revocation: frozen, as every role does once it serves.
        log.debug("%d start-up objects frozen", freeze_startup())
        where = (
            f"namespace {platform.settings.net_netns}"
            if platform.settings.net_netns
            else "this host"
        )
        ready(f"net role: table inet ztsim applied in {where}, following the change feed")
        return _Running(role)

    await run_role(start)


def serve_net(platform: Platform, ready: Callable[[str], None] = _log_ready) -> None:
    asyncio.run(run_net(platform, ready))
