"""Run a plan against a running ztsim: attaches through the packet gateway, queries
from each device's own address, and a tally of what happened, as the devices saw it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ztsim.radius import SharedSecret
from ztsim.simulator import resolver
from ztsim.simulator.pgw import CoaListener, PacketGateway
from ztsim.simulator.scenario import FOREIGN_DEVICE, Action, ActionKind, Device, Scenario, plan


@dataclass(frozen=True, slots=True)
class Targets:
    radius_auth: tuple[str, int]
    radius_acct: tuple[str, int]
    secret: str
    dns: tuple[str, int]
    coa_bind: tuple[str, int]  # where the emulated gateway listens for Disconnect-Request
    nas_ip: str = "127.0.0.1"


@dataclass
class SimReport:
    attached: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (device, Reply-Message)
    attach_timeouts: int = 0  # no answer from the AAA server, even after retries
    queries: int = 0
    answered: int = 0
    blocked: Counter[str] = field(default_factory=Counter)  # domain -> count
    blocked_by_device: Counter[str] = field(default_factory=Counter)
    no_answer: int = 0
    not_attached: int = 0
    detached: int = 0
    attach_latencies: list[float] = field(default_factory=list)
    rcodes: Counter[int] = field(default_factory=Counter)


async def _attach(device: Device, gw: PacketGateway, report: SimReport) -> bool:
    imeisv = device.clone_imeisv if device.behaviour in FOREIGN_DEVICE else None
    result = await gw.attach(device, imeisv)
    report.attach_latencies.append(result.latency_s)
    if result.accepted:
        report.attached += 1
    elif result.timed_out:
        report.attach_timeouts += 1
    else:
        report.refused.append((device.name, result.reply_message))
    return result.accepted


async def _query(action: Action, gw: PacketGateway, targets: Targets, report: SimReport) -> None:
    device = action.device
    session = gw.sessions.get(device.imsi)
    if session is None or session.device is not device:
        report.not_attached += 1
        return
    report.queries += 1
    answer = await resolver.query(targets.dns, str(session.address), action.name, action.qtype)
    if answer.rcode < 0:
        report.no_answer += 1
        return
    report.answered += 1
    report.rcodes[answer.rcode] += 1
    if answer.blocked:
        report.blocked[action.name] += 1
        report.blocked_by_device[device.name] += 1


async def _detach(device: Device, gw: PacketGateway, report: SimReport) -> None:
    session = gw.sessions.get(device.imsi)
    if session is not None and session.device is device and await gw.detach(device):
        report.detached += 1


async def start_gateway(
    targets: Targets, apn: str
) -> tuple[PacketGateway, asyncio.DatagramTransport]:
    """A started gateway and its Disconnect/CoA listener; the caller closes both."""
    gw = PacketGateway(
        targets.radius_auth,
        targets.radius_acct,
        SharedSecret(targets.secret),
        nas_ip=targets.nas_ip,
        apn=apn,
    )
    loop = asyncio.get_running_loop()
    coa, _ = await loop.create_datagram_endpoint(
        lambda: CoaListener(gw), local_addr=targets.coa_bind
    )
    await gw.start()
    return gw, coa


async def run(
    scenario: Scenario,
    devices: list[Device],
    targets: Targets,
    gateway: PacketGateway | None = None,
    *,
    detach: bool = True,
) -> SimReport:
    """Play the plan in real time (the scenario's duration). Pass a started `gateway`
    (from `start_gateway`) to keep watching its Disconnect-Requests afterwards, and
    `detach=False` to leave the sessions up at the end."""
    owned = None
    if gateway is None:
        gateway, owned = await start_gateway(targets, scenario.apn)
    report = SimReport()
    started = time.monotonic()
    pending: list[asyncio.Task[Any]] = []
    attaches: dict[str, asyncio.Task[bool]] = {}

    async def after_attach(action: Action) -> None:
        # A device's queries and detach wait for its own attach, never for others'.
        attached = attaches.get(action.device.name)
        if attached is None or not await attached:
            report.not_attached += action.kind is ActionKind.QUERY
            return
        if action.kind is ActionKind.QUERY:
            await _query(action, gateway, targets, report)
        else:
            await _detach(action.device, gateway, report)

    try:
        for action in plan(scenario, devices):
            if action.kind is ActionKind.DETACH and not detach:
                continue
            delay = action.at - (time.monotonic() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            if action.kind is ActionKind.ATTACH:
                task = asyncio.create_task(_attach(action.device, gateway, report))
                attaches[action.device.name] = task
                pending.append(task)
            else:
                pending.append(asyncio.create_task(after_attach(action)))
        await asyncio.gather(*pending)
    finally:
        if owned is not None:
            gateway.close()
            owned.close()
    return report
