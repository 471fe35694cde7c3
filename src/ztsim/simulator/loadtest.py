"""`ztsim simulate`: provision a load-test org in the running platform's database and
drive its RADIUS and DNS servers with the virtual operator.

The load org is made once and reused: N service identities with active SIMs,
each bound to its registered device (the steady state: trust-on-first-attach is a
one-time write per SIM and would measure the database, not the AAA), an address
pool on loopback, a gateway at 127.0.0.3, and DNS rules: the scenario's names
are answered by an override, the security categories are blocked.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Connection, func, select

from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.dns.policy.rules import Action, Category, Rule
from ztsim.dns.store import service as dns_service
from ztsim.errors import NotFound
from ztsim.identifiers import Iccid, Imei
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.radius.store import registry
from ztsim.radius.store import service as network
from ztsim.simulator.platform import Listeners, PlatformStore
from ztsim.simulator.runner import SimReport, Targets, run, start_gateway
from ztsim.simulator.scenario import Behaviour, Device, Scenario
from ztsim.usecase import use_case

SCENARIO = Path(__file__).resolve().parents[1] / "simulator" / "scenarios" / "load.yaml"
SLUG = "loadtest"
GATEWAY_ADDRESS = "127.0.0.3"
POOL = "127.96.0.0/16"
ANSWER = "127.66.0.1"
ACTOR = "simulate"


def _imsi(n: int) -> str:
    return f"00199{n:010d}"


def _imei(n: int) -> str:
    return Imei.with_check_digit(f"86{n:012d}").value


def provision(platform: PlatformStore, count: int, scenario: Scenario) -> tuple[list[Device], str]:
    """Devices for `count` SIMs (made when missing) and a fresh gateway secret."""
    now = utc_now()
    # One use case: a running platform applies the whole provisioning from one publish.
    with for_writing(platform.engine).begin() as conn, use_case(conn, now):
        try:
            org_id = identities.find_org(conn, SLUG).id
        except NotFound:
            org_id = identities.create_org(conn, "Load test", SLUG, now).id
            network.create_pool(conn, org_id, cidr=POOL, static_cidr=None, actor=ACTOR, now=now)
            names = (*scenario.browsing, *scenario.telemetry)
            dns_service.create_rule(
                conn,
                org_id,
                Rule("load-names", Action.OVERRIDE, domains=names, answer=(ANSWER,)),
                None,
                actor=ACTOR,
                now=now,
            )
            for category in (Category.PHISHING, Category.COMMAND_AND_CONTROL, Category.MALWARE):
                dns_service.create_rule(
                    conn,
                    org_id,
                    Rule(category.value, Action.BLOCK, categories=(category,)),
                    None,
                    actor=ACTOR,
                    now=now,
                )
        existing = _count(conn, org_id)
        if existing < count:
            rows = ["ICCID,IMSI,Ki,OPc"]
            for n in range(existing, count):
                iccid = Iccid.with_check_digit(f"8944998{n:011d}").value
                rows.append(f"{iccid},{_imsi(n)},{os.urandom(16).hex()},{os.urandom(16).hex()}")
            parsed = parse_stock_csv("\n".join(rows) + "\n")
            inventory.import_stock(
                conn,
                platform.sealer,
                org_id,
                parsed,
                filename="load.csv",
                kind=SimKind.PHYSICAL,
                actor=ACTOR,
                now=now,
            )
            for row in parsed.rows:
                who = identities.create_identity(
                    conn,
                    org_id,
                    kind=IdentityKind.SERVICE,
                    name=f"load-{row.imsi.value[-6:]}",
                    email=None,
                    external_id=None,
                    now=now,
                )
                inventory.change_state(
                    conn,
                    org_id,
                    row.iccid.value,
                    SimAction.ASSIGN,
                    actor=ACTOR,
                    reason="",
                    now=now,
                    identity_id=who.id,
                )
                inventory.change_state(
                    conn,
                    org_id,
                    row.iccid.value,
                    SimAction.ACTIVATE,
                    actor=ACTOR,
                    reason="",
                    now=now,
                )
                device = inventory.register_device(
                    conn,
                    org_id,
                    imei=_imei(int(row.imsi.value[5:])),
                    eid=None,
                    owner_id=who.id,
                    name=who.name,
                    actor=ACTOR,
                    now=now,
                )
                inventory.set_binding(
                    conn,
                    org_id,
                    row.iccid.value,
                    device.id,
                    actor=ACTOR,
                    reason="load-test device",
                    now=now,
                )
        for gateway in registry.list_gateways(conn, org_id):
            network.delete_gateway(conn, org_id, gateway.id, actor=ACTOR, now=now)
        secret = os.urandom(24).hex()
        network.create_gateway(
            conn,
            platform.sealer,
            org_id,
            name="load PGW",
            address=GATEWAY_ADDRESS,
            secret=secret,
            apns=[scenario.apn],
            require_message_authenticator=True,
            coa_port=3799,
            actor=ACTOR,
            now=now,
        )
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible mix, not a secret
    devices = []
    for n in range(count):
        behaviour = Behaviour.EMPLOYEE if rng.random() < 0.7 else Behaviour.IOT_TELEMETRY
        imeisv = _imei(n)[:14] + "01"
        devices.append(Device(f"load-{n}", _imsi(n), imeisv, None, behaviour))
    return devices, secret


def _count(conn: Connection, org_id: str) -> int:
    stmt = select(func.count()).select_from(schema.sims).where(schema.sims.c.org_id == org_id)
    return int(conn.execute(stmt).scalar_one())


@dataclass(frozen=True)
class LoadResult:
    report: SimReport
    attach_window_s: float
    query_window_s: float
    ready_after_s: float

    @property
    def attaches_per_s(self) -> float:
        return self.report.attached / self.attach_window_s if self.attach_window_s else 0.0

    @property
    def queries_per_s(self) -> float:
        return self.report.answered / self.query_window_s if self.query_window_s else 0.0

    @property
    def errors(self) -> int:
        r = self.report
        bad_rcodes = sum(count for rcode, count in r.rcodes.items() if rcode not in (0, 3))
        return len(r.refused) + r.attach_timeouts + r.no_answer + r.not_attached + bad_rcodes


async def wait_until_known(targets: Targets, device: Device, apn: str, limit_s: float) -> float:
    """The running AAA server learns new gateways and SIMs at its next reload."""
    started = time.monotonic()
    gateway, coa = await start_gateway(targets, apn)
    try:
        while time.monotonic() - started < limit_s:
            if (await gateway.attach(device)).accepted:
                await gateway.detach(device)
                return time.monotonic() - started
            await asyncio.sleep(1.0)
    finally:
        gateway.close()
        coa.close()
    raise TimeoutError(f"the running ztsim did not accept the load devices within {limit_s:.0f} s")


async def simulate(
    platform: PlatformStore, listeners: Listeners, count: int, duration_s: float
) -> LoadResult:
    scenario = _with_duration(Scenario.load(SCENARIO), duration_s)
    devices, secret = await asyncio.to_thread(provision, platform, count, scenario)
    s = listeners
    targets = Targets(
        radius_auth=(s.radius_host, s.radius_auth_port),
        radius_acct=(s.radius_host, s.radius_acct_port),
        secret=secret,
        dns=(s.dns_host, s.dns_port),
        coa_bind=(GATEWAY_ADDRESS, 0),
        nas_ip=GATEWAY_ADDRESS,
    )
    ready = await wait_until_known(targets, devices[0], scenario.apn, 60.0)
    report = await run(scenario, devices, targets)
    attach_window = scenario.duration_s * 0.15 + (
        max(report.attach_latencies) if report.attach_latencies else 0
    )
    query_window = scenario.duration_s * 0.9 - scenario.settle_s
    return LoadResult(report, attach_window, query_window, ready)


def _with_duration(scenario: Scenario, duration_s: float) -> Scenario:
    return replace(
        scenario, duration_s=duration_s, settle_s=min(scenario.settle_s, duration_s * 0.5)
    )
