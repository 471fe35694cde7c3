"""`ztsim demo`: the whole loop on a laptop. A fresh data directory, Acme provisioned,
every role started in this process, the virtual operator's devices attaching and
browsing, a cloned SIM refused and revoked, and a summary read back from the
platform's own events API.

Run as root (where `ip netns` works) the demo also gains a site (`simulator.demo_site`):
the phones' traffic crosses ztsim's gateway (the net role) to Acme's head office over a
Geneve tunnel, where an employee reaches the intranet, a contractor is refused, and the
cloned SIM's open connection is cut when the twin session suspends the SIM. Elsewhere
a progress line says the site part was skipped and why.

The devices stay attached while the demo serves: their sessions are live in the API
and the DNS gateway answers their addresses. On stop the gateway detaches each one
(Accounting-Stop) before the AAA server stops, as a packet gateway ending its bearers
would; the next run recreates the data directory, so nothing is worth leaving behind.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine

from ztsim.clock import utc_now
from ztsim.errors import ZtsimError
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.node import platform as node
from ztsim.node.net import NetRole, NetSettings
from ztsim.node.up import Running, start_all
from ztsim.settings import Settings
from ztsim.simulator import demo_intranet, demo_site, internet
from ztsim.simulator.demo_world import DemoWorld, provision
from ztsim.simulator.pgw import PacketGateway
from ztsim.simulator.readback import Summary, read_back
from ztsim.simulator.runner import SimReport, Targets, run, start_gateway
from ztsim.simulator.scenario import Scenario
from ztsim.simulator.story import Story

SCENARIO = Path(__file__).resolve().parents[1] / "simulator" / "scenarios" / "acme.yaml"

Progress = Callable[[str], None]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(api_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _clone_caught_at(api_url: str, token: str) -> datetime | None:
    """When the AAA server refused the cloned SIM (its `risk.clone` event), if it did."""
    with _client(api_url, token) as c:
        page = c.get("/api/v1/events", params={"kind": "risk.clone", "limit": 1})
        items = page.raise_for_status().json()["items"]
    return datetime.fromisoformat(items[0]["time"]) if items else None


async def _automatic_cut(
    api_url: str, token: str, imsi: str, gateway_disconnects: list[tuple[str, float]]
) -> float | None:
    """Milliseconds from the twin session's refusal to the Disconnect-Request for the
    genuine session, which the org's twin_session response (suspend) sends with no admin
    involved; None if it did not come within 5 s."""
    caught = await asyncio.to_thread(_clone_caught_at, api_url, token)
    if caught is None:
        return None
    started = time.monotonic()
    while time.monotonic() - started < 5:
        for who, at in gateway_disconnects:
            if who == imsi:
                # The gateway's clock is monotonic; the event's is the wall clock.
                wall = time.time() - (time.monotonic() - at)
                return (wall - caught.timestamp()) * 1000
        await asyncio.sleep(0.005)
    return None


@dataclass(frozen=True)
class PendingSwap:
    """An eSIM re-issue someone asked for, held until a second admin approves it."""

    person: str
    request_id: str
    state: str
    reason: str


def _prevented_swap(api_url: str, token: str, world: DemoWorld) -> PendingSwap:
    """A caller posing as an employee talks the helpdesk into re-issuing their eSIM: the
    request waits for a second admin (the org's two-person rule); the number stays put."""
    identity_id, person = next(iter(world.people.items()))
    reason = "caller says the phone was lost and asks for a new eSIM"
    with _client(api_url, token) as c:
        orders = c.get("/api/v1/esim/orders", params={"identity_id": identity_id})
        order_id = orders.raise_for_status().json()["items"][0]["id"]
        r = c.post(f"/api/v1/esim/orders/{order_id}/reissue", json={"reason": reason})
        if r.status_code != 202:
            raise RuntimeError(f"the re-issue was not held for approval ({r.status_code})")
        pending = r.json()
    return PendingSwap(person, pending["id"], pending["state"], reason)


def _employee_token(api_url: str, token: str, world: DemoWorld) -> EmployeeSignIn:
    """A `self` token for the first employee: their own page in the console shows what
    the org records about them."""
    identity_id, person = next(iter(world.people.items()))
    with _client(api_url, token) as c:
        r = c.post(
            "/api/v1/tokens",
            json={"name": "demo: own page", "role": "self", "identity_id": identity_id},
        )
        issued = r.raise_for_status().json()
    return EmployeeSignIn(person, issued["token"])


@dataclass(frozen=True)
class EmployeeSignIn:
    person: str
    token: str


@dataclass
class DemoResult:
    world: DemoWorld
    sim: SimReport
    summary: Summary
    story: Story
    api_url: str
    admin_token: str
    pending_swap: PendingSwap | None = None
    site: demo_intranet.SiteReport | None = None
    site_skipped: str | None = None  # why the site part did not run
    employee: EmployeeSignIn | None = None


@dataclass
class Serving:
    """What serves while the demo runs: every role, the emulated gateway with its
    devices' sessions up, its Disconnect listener and the "internet" its DNS forwards
    reach."""

    running: Running
    gateway: PacketGateway
    closers: tuple[asyncio.BaseTransport, ...]
    intranet: PacketGateway | None = None  # the site's APN, when the site runs
    site: demo_site.DemoSite | None = None

    async def stop(self) -> None:
        """Detach every device still attached (Accounting-Stop), then take the site down
        (the net role, the namespaces) and stop every role."""
        gateways = [g for g in (self.intranet, self.gateway) if g is not None]
        try:
            for gateway in gateways:
                for session in list(gateway.sessions.values()):
                    await gateway.detach(session.device)
        finally:
            for gateway in gateways:
                gateway.close()
            for transport in self.closers:
                transport.close()
            try:
                if self.site is not None:
                    await asyncio.to_thread(self.site.close)
            finally:
                await self.running.stop()


@dataclass
class LiveDemo:
    result: DemoResult
    serving: Serving

    @property
    def api_task(self) -> asyncio.Task[None]:
        """Ends when the API stops (uvicorn took a stop signal)."""
        return self.serving.running.api_task

    async def stop(self) -> None:
        await self.serving.stop()


def _settings(settings: Settings, net_port: int) -> Settings:
    return settings.model_copy(
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


async def start_demo(
    settings: Settings, *, scenario_path: Path = SCENARIO, progress: Progress = lambda _: None
) -> LiveDemo:
    """Provision, start every role, play the scenario, revoke the flagged clones, read
    the story back; `progress` hears each step as it starts. The caller stops (or keeps
    serving) the returned demo."""
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
    settings = _settings(settings, net_port)
    try:
        progress("database and keys: a fresh org, Acme, with its admin token")
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
            progress=progress,
        )
        progress("roles: starting the API, the RADIUS AAA server and the DNS gateway")
        running = await start_all(platform)
    except BaseException:
        net.close()
        raise
    targets = Targets(
        radius_auth=(settings.radius_host, running.radius.auth_port),
        radius_acct=(settings.radius_host, running.radius.acct_port),
        secret=world.gateway_secret,
        dns=(settings.dns_host, settings.dns_port),
        coa_bind=("127.0.0.1", coa_port),
    )
    site: demo_site.DemoSite | None = None
    intranet: PacketGateway | None = None
    try:
        site, role, skipped = await _open_site(platform.engine, progress)
        if site is None:
            gateway, coa = await start_gateway(targets, scenario.apn)
        else:
            gateway, intranet, coa = await demo_intranet.start_gateways(targets, scenario.apn)
    except BaseException:
        net.close()
        if site is not None:
            await asyncio.to_thread(site.close)
        await running.stop()
        raise
    serving = Serving(running, gateway, (coa, net), intranet, site)
    site_report = None
    try:
        progress(
            f"operator: attaching {len(world.devices)} devices, "
            f"{scenario.duration_s:g} s of browsing, telemetry and attacks"
        )
        playing = run(scenario, world.devices, targets, gateway, detach=False)
        if site is None or intranet is None or role is None:
            report = await playing
        else:
            visits = demo_intranet.play(
                site,
                intranet,
                world.site,
                world.cloned_iccid,
                role.state.subject_of_source,
                (running.api_url, admin),
                progress,
            )
            report, site_report = await asyncio.gather(playing, visits)
        progress(
            f"operator: {report.attached} attached, {len(report.refused)} refused, "
            f"{report.queries} DNS queries sent"
        )
        progress("risk: the twin session's automatic response cuts the genuine session")
        latency = await _automatic_cut(
            running.api_url, admin, world.cloned_imsi, gateway.disconnects
        )
        progress("helpdesk: a caller asks for an employee's eSIM to be re-issued")
        pending = await asyncio.to_thread(_prevented_swap, running.api_url, admin, world)
        progress("read-back: the last DNS statistics reach the event log, then the API is read")
        await asyncio.sleep(settings.dns_stats_interval + 1.5)
        summary, story = await asyncio.to_thread(read_back, running.api_url, admin)
        employee = await asyncio.to_thread(_employee_token, running.api_url, admin, world)
    except BaseException:
        await serving.stop()
        raise
    summary.revocation_ms = latency
    result = DemoResult(
        world,
        report,
        summary,
        story,
        running.api_url,
        admin,
        pending,
        site_report,
        skipped,
        employee,
    )
    return LiveDemo(result, serving)


async def _open_site(
    engine: Engine, progress: Progress
) -> tuple[demo_site.DemoSite | None, NetRole | None, str | None]:
    """The site's namespaces and the net role in its gateway, or why there are none."""
    why = demo_site.why_not()
    if why:
        progress(f"site: skipped, {why}")
        return None, None, why
    progress("site: namespaces for the phones, ztsim's gateway and the head office; the net role")

    def opened() -> tuple[demo_site.DemoSite, NetRole]:
        site = demo_site.DemoSite().open()
        try:
            settings = NetSettings(
                enabled=True, nft_prefix=site.gateway_prefix, underlay=site.underlay, audit=True
            )
            role = NetRole(engine, settings)
            site.on_close(role.stop)
            role.start()
        except BaseException:
            site.close()
            raise
        return site, role

    try:
        site, role = await asyncio.to_thread(opened)
    except (ZtsimError, OSError) as err:
        why = f"it could not be set up ({err})"
        progress(f"site: skipped, {why}")
        return None, None, why
    return site, role, None


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
