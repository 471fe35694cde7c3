"""The demo's company: Acme, its people, SIMs, devices, gateway, DNS policy, and its
head office's intranet: a site behind a Geneve tunnel, its private network, a contractor
and the network rule that lets employees (not contractors) reach it.

Everything goes through the same services the API uses, so the demo exercises
the platform rather than a shortcut around it. Names and device identifiers are
deterministic; keys and secrets are random, as they must be.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from ztsim.clock import utc_now
from ztsim.dns.policy.rules import Action, Category, OrgSettings, PrivacyMode, Rule
from ztsim.dns.store import repository as dns_repo
from ztsim.esim import service as esim
from ztsim.esim.config import EsimConfig
from ztsim.esim.orders import NotificationPoint, ProgressStatus
from ztsim.esim.pack import write_zip
from ztsim.esim.privacy import DnsLogging, DnsLogMode
from ztsim.identifiers import Eid, Iccid, Imei
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import repository as inv_repo
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import Sim, SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.net.sites import TunnelKind
from ztsim.net.store import sites
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import rules as policy_rules
from ztsim.radius.store import registry
from ztsim.risk.settings import Detector, DetectorConfig, Response, RiskSettings
from ztsim.risk.store import settings as risk_settings
from ztsim.simulator.platform import PlatformStore
from ztsim.simulator.scenario import Behaviour, Device

ACTOR = "demo"
GROUPS = ("Engineering", "Sales", "Operations")
EMPLOYEES = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Katherine Johnson",
    "Claude Shannon",
    "Radia Perlman",
    "Barbara Liskov",
    "Edsger Dijkstra",
    "Frances Allen",
    "Donald Knuth",
    "Margaret Hamilton",
    "Vint Cerf",
    "Hedy Lamarr",
    "Tim Berners-Lee",
    "Sophie Wilson",
    "Ken Thompson",
    "Shafi Goldwasser",
    "Whitfield Diffie",
    "Leslie Lamport",
    "Adi Shamir",
)
METERS = 10
POOL = "127.80.0.0/16"  # loopback: the simulated phones really send from these addresses
APN = "corp.acme"
# The head office's intranet. An org has one address pool and a SIM one lease in it
# (ztsim.sessions.leases), so a session on this APN gets the SIM's address from POOL too.
INTRANET_APN = "intranet.acme"
SITE_NAME = "Acme HQ"
SITE_NETWORK = "10.80.0.0/24"  # private (RFC 1918), behind the site's end of the tunnel
INTRANET = "10.80.0.10"  # the intranet's HTTP service
INTRANET_PORT = 80
# The tunnel's underlay: RFC 2544's benchmarking range, inside the demo's namespaces only.
GATEWAY_UNDERLAY, SITE_UNDERLAY = "198.18.80.1", "198.18.80.2"
SITE_VNI = 8080
STAFF_RULE = "intranet-staff"
CONTRACTOR = "John von Neumann"
TELEMETRY = "telemetry.acme.test"
MCC_MNC = "00101"  # the test PLMN (ITU-T E.212 reserves 001-01)


@dataclass(frozen=True)
class SiteWorld:
    """Who goes to the intranet: an employee, the contractor, and the employee whose SIM
    is cloned during the run (the scenario's victim), each from the SIM's own phone."""

    employee: Device
    contractor: Device
    contractor_id: str  # the contractor's identity id
    victim: Device


@dataclass(frozen=True)
class DemoWorld:
    org_id: str
    devices: list[Device]
    gateway_secret: str
    cloned_iccid: str
    cloned_imsi: str
    people: dict[str, str]  # identity id -> name
    pack: Path
    site: SiteWorld


def _stock(kind: SimKind, count: int, start: int) -> str:
    rows = ["ICCID,IMSI,Ki,OPc,MSISDN"]
    for n in range(start, start + count):
        iccid = Iccid.with_check_digit(f"8944990{n:011d}").value
        k, opc = os.urandom(16).hex(), os.urandom(16).hex()
        rows.append(f"{iccid},{MCC_MNC}{n:010d},{k},{opc},4915900{n:06d}")
    return "\n".join(rows) + "\n"


def _imei(n: int) -> str:
    return Imei.with_check_digit(f"35349006{n:06d}").value


def _device(
    conn: Connection, org_id: str, owner: str, n: int, name: str, eid: str | None = None
) -> str:
    device = inventory.register_device(
        conn, org_id, imei=_imei(n), eid=eid, owner_id=owner, name=name, actor=ACTOR, now=utc_now()
    )
    return device.id


def provision(
    platform: PlatformStore,
    org_id: str,
    *,
    esim_config: EsimConfig,
    coa_port: int,
    pack_path: Path,
    seed: int,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoWorld:
    """Acme, step by step; `progress` is told each step as it starts (from this thread)."""
    rng = random.Random(seed)  # noqa: S311 - picks who is phished, not a secret
    now = utc_now()
    people: dict[str, str] = {}
    devices: list[Device] = []
    progress(f"identities: {len(EMPLOYEES)} employees in {len(GROUPS)} groups, {METERS} meters")
    with platform.engine.begin() as conn:
        groups = [identities.create_collection(conn, org_id, g, now, fleet=False) for g in GROUPS]
        fleet = identities.create_collection(conn, org_id, "Meters", now, fleet=True)
        staff = []
        for i, name in enumerate(EMPLOYEES):
            email = name.lower().replace(" ", ".").replace("-", "") + "@acme.test"
            person = identities.create_identity(
                conn,
                org_id,
                kind=IdentityKind.USER,
                name=name,
                email=email,
                external_id=None,
                now=now,
            )
            identities.add_member(conn, org_id, groups[i % len(GROUPS)].id, person.id, fleet=False)
            staff.append(person)
            people[person.id] = name
        meters = []
        for i in range(METERS):
            meter = identities.create_identity(
                conn,
                org_id,
                kind=IdentityKind.SERVICE,
                name=f"meter-{i + 1:02d}",
                email=None,
                external_id=None,
                now=now,
            )
            identities.add_member(conn, org_id, fleet.id, meter.id, fleet=True)
            meters.append(meter)
            people[meter.id] = meter.name
        progress(
            f"SIMs: importing {len(EMPLOYEES)} eSIM profiles and {METERS + 1} physical SIMs "
            "(the meters' and a contractor's)"
        )
        for kind, count, start in (
            (SimKind.ESIM, len(EMPLOYEES), 1),
            (SimKind.PHYSICAL, METERS + 1, 101),  # the meters', and the contractor's
        ):
            inventory.import_stock(
                conn,
                platform.sealer,
                org_id,
                parse_stock_csv(_stock(kind, count, start)),
                filename=f"acme-{kind.value}.csv",
                kind=kind,
                actor=ACTOR,
                now=now,
            )
        config = esim_config
        progress(f"eSIM orders: one per employee ({len(staff)}), with activation codes")
        orders = [
            esim.create_order(
                conn,
                platform.sealer,
                org_id,
                p.id,
                config=config,
                actor=ACTOR,
                now=now,
                rand=os.urandom,
            )
            for p in staff
        ]
    progress(f"onboarding pack: {len(staff)} QR-code pages in {pack_path.name}")
    with platform.engine.begin() as conn:
        dns_settings, _ = dns_repo.get_settings(conn, org_id)
        logging = DnsLogging(DnsLogMode(dns_settings.privacy.value), dns_settings.pseudonymise)
        pages = esim.pack_pages(
            conn, platform.sealer, org_id, [p.id for p in staff], now, dns=logging
        )
    pack_path.parent.mkdir(parents=True, exist_ok=True)
    with pack_path.open("wb") as handle:
        write_zip(pages.pages, handle)
    pack_path.chmod(0o600)

    progress("phones: each downloads, installs and enables its eSIM, bound to its IMEI")
    with platform.engine.begin() as conn:
        # Each phone downloads, installs and enables its profile, as its SM-DP+ reports.
        for i, (person, issued) in enumerate(zip(staff, orders, strict=True)):
            eid = Eid.with_check_digits(f"8904903200{i:020d}").value
            device_id = _device(conn, org_id, person.id, i + 1, f"{person.name}'s phone", eid)
            iccid = issued.order.iccid
            for point in (
                NotificationPoint.BPP_DOWNLOAD,
                NotificationPoint.BPP_INSTALLATION,
                NotificationPoint.PROFILE_ENABLED,
            ):
                esim.report_progress(
                    conn,
                    org_id,
                    iccid=iccid,
                    eid=eid,
                    point=point,
                    status=ProgressStatus.SUCCESS,
                    actor="smdp:demo",
                    now=now,
                )
            inventory.set_binding(
                conn, org_id, iccid, device_id, actor=ACTOR, reason="issued phone", now=now
            )
        sims, _ = inv_repo.list_sims(conn, org_id, inv_repo.SimFilter(), limit=1000)
        by_identity = {s.identity_id: s for s in sims if s.identity_id}
        stock = [s for s in sims if s.kind is SimKind.PHYSICAL and s.identity_id is None]
        progress("meters: SIMs assigned, activated and bound to each meter")
        for i, meter in enumerate(meters):
            sim = stock[i]
            _issue(conn, org_id, sim, meter.id, 500 + i, meter.name, "installed", now)
            by_identity[meter.id] = sim

        progress(f"contractor: {CONTRACTOR} in Contractors, a physical SIM in their own phone")
        contractor = _contractor(conn, org_id, stock[METERS])
        progress(f"gateway: Demo PGW (APNs {APN}, {INTRANET_APN}) registered, address pool {POOL}")
        registry.create_pool(conn, org_id, cidr=POOL, static_cidr=None, now=now)
        secret = os.urandom(24).hex()
        registry.create_gateway(
            conn,
            platform.sealer,
            org_id,
            name="Demo PGW",
            address="127.0.0.1",
            secret=secret,
            apns=[APN, INTRANET_APN],
            require_message_authenticator=True,
            coa_port=coa_port,
            now=now,
        )
        progress("risk: swaps need a second admin; a twin session suspends the SIM at once")
        risk_settings.put_settings(
            conn,
            org_id,
            RiskSettings(
                approval_required=True,
                detectors={Detector.TWIN_SESSION: DetectorConfig(Response.SUSPEND)},
            ),
            actor=ACTOR,
            now=now,
        )
        progress("DNS policy: block phishing, malware, C2; meters allow-list only")
        dns_repo.put_settings(
            conn,
            org_id,
            OrgSettings(
                privacy=PrivacyMode.BLOCKED_ONLY, allow_list_only_fleets=frozenset({fleet.id})
            ),
            (),
            now,
        )
        for category in (Category.PHISHING, Category.MALWARE, Category.COMMAND_AND_CONTROL):
            dns_repo.create_rule(
                conn, org_id, Rule(category.value, Action.BLOCK, categories=(category,)), None, now
            )
        dns_repo.create_rule(
            conn,
            org_id,
            Rule("meters-telemetry", Action.ALLOW, domains=(TELEMETRY,), fleets=(fleet.id,)),
            None,
            now,
        )

        progress(
            f"site: {SITE_NAME} (Geneve, VNI {SITE_VNI}), network {SITE_NETWORK}; "
            f"rule {STAFF_RULE}: the employees' groups to tcp/{INTRANET_PORT}"
        )
        _site(conn, org_id, [g.id for g in groups])

    phished = rng.randrange(len(staff))
    compromised = rng.randrange(len(meters))
    for i, person in enumerate(staff):
        sim = by_identity[person.id]
        behaviour = Behaviour.PHISHED if i == phished else Behaviour.EMPLOYEE
        devices.append(
            Device(person.name, sim.imsi, _imei(i + 1)[:14] + "01", sim.msisdn, behaviour)
        )
    stolen = (compromised + 1) % len(meters)
    for i, meter in enumerate(meters):
        sim = by_identity[meter.id]
        imeisv = _imei(500 + i)[:14] + "01"
        if i == stolen:
            # This meter is offline: its SIM was taken out and is tried in a phone.
            name = f"{meter.name}'s SIM in a stranger's phone"
            foreign = _imei(901)[:14] + "01"
            devices.append(Device(name, sim.imsi, imeisv, None, Behaviour.STOLEN_SIM, foreign))
            continue
        behaviour = Behaviour.COMPROMISED_IOT if i == compromised else Behaviour.IOT_TELEMETRY
        devices.append(Device(meter.name, sim.imsi, imeisv, sim.msisdn, behaviour))
    victim = devices[(phished + 1) % len(staff)]  # an employee's phone, live during the run
    devices.append(
        Device(
            f"clone of {victim.name}'s SIM",
            victim.imsi,
            victim.imeisv,
            None,
            Behaviour.CLONED_SIM,
            clone_imeisv=_imei(900)[:14] + "01",
        )
    )
    cloned_iccid = next(s.iccid for s in by_identity.values() if s.imsi == victim.imsi)
    # The employee who goes to the intranet: the first neither phished nor cloned.
    employee = next(
        d
        for d in devices[: len(staff)]
        if d.imsi != victim.imsi and d.behaviour is Behaviour.EMPLOYEE
    )
    contractor_id, contractor_device = contractor
    people[contractor_id] = CONTRACTOR
    site = SiteWorld(employee, contractor_device, contractor_id, victim)
    return DemoWorld(org_id, devices, secret, cloned_iccid, victim.imsi, people, pack_path, site)


def _issue(
    conn: Connection,
    org_id: str,
    sim: Sim,
    identity_id: str,
    n: int,
    device_name: str,
    reason: str,
    now: datetime,
) -> None:
    """A physical SIM assigned to `identity_id`, activated, and bound to its new device
    (the `n`th IMEI of the demo's range)."""
    inventory.change_state(
        conn,
        org_id,
        sim.iccid,
        SimAction.ASSIGN,
        actor=ACTOR,
        reason="",
        now=now,
        identity_id=identity_id,
    )
    inventory.change_state(
        conn, org_id, sim.iccid, SimAction.ACTIVATE, actor=ACTOR, reason="", now=now
    )
    device_id = _device(conn, org_id, identity_id, n, device_name)
    inventory.set_binding(conn, org_id, sim.iccid, device_id, actor=ACTOR, reason=reason, now=now)


def _contractor(conn: Connection, org_id: str, sim: Sim) -> tuple[str, Device]:
    """A contractor in a Contractors group, with a physical SIM in a phone of their own:
    an identity like the employees', whom the network rule leaves out."""
    now = utc_now()
    group = identities.create_collection(conn, org_id, "Contractors", now, fleet=False)
    person = identities.create_identity(
        conn,
        org_id,
        kind=IdentityKind.USER,
        name=CONTRACTOR,
        email="john.von.neumann@contractors.acme.test",
        external_id=None,
        now=now,
    )
    identities.add_member(conn, org_id, group.id, person.id, fleet=False)
    _issue(conn, org_id, sim, person.id, 700, f"{CONTRACTOR}'s phone", "issued phone", now)
    imeisv = _imei(700)[:14] + "01"
    return person.id, Device(CONTRACTOR, sim.imsi, imeisv, sim.msisdn, Behaviour.EMPLOYEE)


def _site(conn: Connection, org_id: str, staff_groups: list[str]) -> None:
    """The head office behind a Geneve tunnel (ztsim's identity option reaches it), its
    network, and the one network rule: the employees' groups may open tcp/80 there;
    everyone else (the contractor) meets the plane's default deny."""
    now = utc_now()
    site = sites.create_site(
        conn,
        org_id,
        name=SITE_NAME,
        tunnel=TunnelKind.GENEVE,
        endpoint=SITE_UNDERLAY,
        vni=SITE_VNI,
        actor=ACTOR,
        now=now,
    )
    sites.add_network(
        conn, org_id, site.id, name="intranet", cidr=SITE_NETWORK, actor=ACTOR, now=now
    )
    rule = PolicyRule.from_spec(
        "network",
        STAFF_RULE,
        "allow",
        {
            "groups": staff_groups,
            "cidrs": [SITE_NETWORK],
            "protocol": "tcp",
            "ports": [str(INTRANET_PORT)],
        },
    )
    policy_rules.create_rule(conn, org_id, rule, None, actor=ACTOR, now=now)
