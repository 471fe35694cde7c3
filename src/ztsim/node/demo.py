"""`ztsim demo`: the whole loop on a laptop. A fresh data directory, Acme provisioned,
every role started in this process, the virtual operator's devices attaching and
browsing, a cloned SIM refused and revoked, and a summary read back from the
platform's own events API."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ztsim.clock import utc_now
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.node import platform as node
from ztsim.node.up import Running, start_all
from ztsim.settings import Settings
from ztsim.simulator import internet
from ztsim.simulator.demo_world import DemoWorld, provision
from ztsim.simulator.runner import SimReport, Targets, run, start_gateway
from ztsim.simulator.scenario import Behaviour, Scenario

SCENARIO = Path(__file__).resolve().parents[1] / "simulator" / "scenarios" / "acme.yaml"


@dataclass
class Summary:
    """What the platform recorded, read from GET /api/v1/events."""

    attaches_accepted: int = 0
    attaches_refused: Counter[str] = field(default_factory=Counter)  # reason -> count
    sessions_started: int = 0
    risk: Counter[str] = field(default_factory=Counter)  # kind -> count
    dns_queries: int = 0
    dns_blocked: int = 0
    blocks_by_category: Counter[str] = field(default_factory=Counter)  # rule -> count
    blocks_by_identity: Counter[str] = field(default_factory=Counter)  # name -> count
    disconnects: int = 0
    revocation_ms: float | None = None


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(client: httpx.Client, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"kind": kind, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/events", params=params).raise_for_status().json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def read_summary(api_url: str, token: str, world: DemoWorld) -> Summary:
    s = Summary()
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as c:
        for e in _events(c, "radius.access"):
            if e["outcome"] == "success":
                s.attaches_accepted += 1
            else:
                s.attaches_refused[e["reason"]] += 1
        s.sessions_started = len(_events(c, "radius.session_started"))
        for kind in ("risk.clone", "risk.device_swap"):
            s.risk[kind] = len(_events(c, kind))
        for e in _events(c, "dns.stats"):
            s.dns_queries += e["payload"]["queries"]
            s.dns_blocked += e["payload"]["blocked"]
        for e in _events(c, "dns.query"):
            if e["payload"]["action"] == "blocked":
                s.blocks_by_category[e["payload"]["rule"]] += 1
                who = e["subject"].partition(":")[2]
                s.blocks_by_identity[world.people.get(who, e["subject"])] += 1
        s.disconnects = sum(e["outcome"] == "success" for e in _events(c, "radius.disconnect"))
    return s


async def _revoke(
    api_url: str, token: str, iccid: str, gateway_disconnects: list[tuple[str, float]], imsi: str
) -> float | None:
    """Suspend the cloned SIM through the API; milliseconds until the gateway is told."""
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        started = time.monotonic()
        r = await c.post(
            f"/api/v1/sims/{iccid}/suspend", json={"reason": "clone detected by the demo"}
        )
        r.raise_for_status()
    while time.monotonic() - started < 5:
        for who, at in gateway_disconnects:
            if who == imsi:
                return (at - started) * 1000
        await asyncio.sleep(0.005)
    return None


@dataclass
class DemoResult:
    world: DemoWorld
    sim: SimReport
    summary: Summary
    api_url: str
    admin_token: str


async def run_demo(
    settings: Settings, *, scenario_path: Path = SCENARIO, on_ready: Any = None
) -> tuple[DemoResult, Running]:
    """Provision, start every role, play the scenario, revoke the clone; the caller
    stops (or keeps serving) the returned `Running`."""
    scenario = Scenario.load(scenario_path)
    zone = internet.Zone(
        frozenset(
            (
                *scenario.browsing,
                *scenario.telemetry,
                *scenario.phishing,
                *scenario.command_and_control,
            )
        )
    )
    net, net_port = await internet.serve(zone)
    coa_port = free_port()
    settings = settings.model_copy(
        update={
            "dns_upstreams": [f"127.0.0.1:{net_port}"],
            "radius_dns_primary": settings.dns_host,
            "dns_reload_interval": 0.5,
            "dns_stats_interval": 1.0,
            "dns_policy_file": _feeds_file(settings.data_dir),
            # The demo's "internet" (lists, sinks) serves on loopback.
            "outbound_allowed_ranges": ["127.0.0.0/8"],
        }
    )
    platform = node.build(settings, create_key=True)
    org, admin = node.init_org(platform, "Acme", "acme")
    world = await asyncio.to_thread(
        provision,
        platform,
        org.id,
        esim_config=platform.api_context().esim,
        coa_port=coa_port,
        pack_path=settings.data_dir / "onboarding-pack.zip",
        seed=scenario.seed,
    )
    running = await start_all(platform)
    if on_ready is not None:
        on_ready(world)
    targets = Targets(
        radius_auth=(settings.radius_host, running.radius.auth_port),
        radius_acct=(settings.radius_host, running.radius.acct_port),
        secret=world.gateway_secret,
        dns=(settings.dns_host, settings.dns_port),
        coa_bind=("127.0.0.1", coa_port),
    )
    gateway, coa = await start_gateway(targets, scenario.apn)
    try:
        report = await run(scenario, world.devices, targets, gateway, detach=False)
        clone = next(d for d in world.devices if d.behaviour is Behaviour.CLONED_SIM)
        latency = await _revoke(
            running.api_url, admin, world.cloned_iccid, gateway.disconnects, clone.imsi
        )
        for device in list(world.devices):
            session = gateway.sessions.get(device.imsi)
            if session is not None and session.device is device and await gateway.detach(device):
                report.detached += 1
    finally:
        gateway.close()
        coa.close()
        net.close()
    await asyncio.sleep(settings.dns_stats_interval + 1.5)  # the last batches reach the event log
    summary = await asyncio.to_thread(read_summary, running.api_url, admin, world)
    summary.revocation_ms = latency
    return DemoResult(world, report, summary, running.api_url, admin), running


def _feeds_file(data_dir: Path) -> Path:
    """The DNS gateway's file source: the built-in sample security feeds (rules live in the database)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "dns-feeds.toml"
    path.write_text("# Written by `ztsim demo`: the sample security feeds.\nsample_feeds = true\n")
    return path


def viewer_token(platform: node.Platform, org_id: str) -> str:
    """An auditor token for someone who wants to look around after the demo."""
    with platform.engine.begin() as conn:
        _, token = token_store.issue(
            conn,
            org_id,
            name="demo viewer",
            role=Role.AUDITOR,
            identity_id=None,
            created_by="demo",
            now=utc_now(),
        )
    return token
