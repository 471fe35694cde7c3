"""The org of the propagation tests, on a fresh data directory, provisioned through the
services before any `ztsim` process starts (so what the processes know at start is not
what the tests measure).

It has two packet gateways on loopback (one that acknowledges Disconnect-Requests,
one that never answers them), an address pool on loopback (so a test can send DNS
queries from a UE address), a DNS rule that answers one name from memory (no upstream
needed), physical SIMs in use and two eSIM holders (one profile enabled, one order
downloaded with its SIM activated ahead of the phone's report).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store import repository as dns_repo
from ztsim.esim import service as esim
from ztsim.esim.orders import NotificationPoint, ProgressStatus
from ztsim.identifiers import Eid, Imei
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.node import platform as node
from ztsim.radius.store import registry
from ztsim.simulator.scenario import Behaviour, Device

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

APN = "corp.propagation"
POOL = "127.81.0.0/16"  # loopback: the test really sends from the UE addresses
PROBE_NAME = "probe.propagation.test"
PROBE_ADDRESS = "192.0.2.80"  # answered by a DNS override rule, from memory
ACK_NAS = "127.0.0.1"  # the gateway that acknowledges Disconnect-Requests
SILENT_NAS = "127.0.0.2"  # the gateway that never answers them
PHYSICAL = 4
ACTOR = "test:propagation"
# What the SM-DP+ reports as a profile reaches the phone (SGP.22 §5.3.5), in order.
PROGRESS = (
    NotificationPoint.BPP_DOWNLOAD,
    NotificationPoint.BPP_INSTALLATION,
    NotificationPoint.PROFILE_ENABLED,
)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Subscriber:
    identity_id: str
    iccid: str
    device: Device  # what the gateway attaches: IMSI and the bound device's IMEISV
    order_id: str | None = None  # eSIM holders: their order


@dataclass
class Site:
    data_dir: Path
    env: dict[str, str]  # the environment every `ztsim` process of this site runs with
    org_id: str
    token: str
    secrets: dict[str, str]  # gateway NAS address -> shared secret
    coa_ports: dict[str, int]  # gateway NAS address -> Disconnect-Request port
    physical: list[Subscriber]
    esim_enabled: Subscriber  # profile enabled on the phone: re-issue replaces it
    esim_downloaded: Subscriber  # order downloaded, SIM active: cancel retires it
    engine: Engine  # the test's own reads

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['ZTSIM_API_PORT']}"

    @property
    def radius_auth(self) -> tuple[str, int]:
        return ("127.0.0.1", int(self.env["ZTSIM_RADIUS_AUTH_PORT"]))

    @property
    def radius_acct(self) -> tuple[str, int]:
        return ("127.0.0.1", int(self.env["ZTSIM_RADIUS_ACCT_PORT"]))

    @property
    def dns(self) -> tuple[str, int]:
        return ("127.0.0.1", int(self.env["ZTSIM_DNS_PORT"]))

    def change_time(self, iccid: str, kind: str) -> float | None:
        """When the latest `kind` audit event of the SIM was stamped (wall clock): its
        time is taken before the change's transaction commits, so latencies measured
        from it are, if anything, too long."""
        t = schema.events
        query = (
            select(t.c.time)
            .where(t.c.subject == f"sim:{iccid}", t.c.kind == kind)
            .order_by(t.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            stamped = conn.execute(query).scalar()
        if stamped is None:
            return None
        if stamped.tzinfo is None:
            stamped = stamped.replace(tzinfo=UTC)
        return float(stamped.timestamp())


def _imei(n: int) -> str:
    return Imei.with_check_digit(f"35349007{n:06d}").value


def provision(data_dir: Path) -> Site:
    env = {
        **os.environ,
        "ZTSIM_DATA_DIR": str(data_dir),
        "ZTSIM_API_PORT": str(free_port(socket.SOCK_STREAM)),
        "ZTSIM_RADIUS_AUTH_PORT": str(free_port(socket.SOCK_DGRAM)),
        "ZTSIM_RADIUS_ACCT_PORT": str(free_port(socket.SOCK_DGRAM)),
        "ZTSIM_DNS_PORT": str(free_port(socket.SOCK_DGRAM)),
        "COLUMNS": "120",
    }
    platform = node.build(node.settings_from(None, data_dir=data_dir), create_key=True)
    org, token = node.init_org(platform, "Propagation", "propagation")
    LEAKS.add_secret(token)
    secrets = {nas: os.urandom(16).hex() for nas in (ACK_NAS, SILENT_NAS)}
    coa_ports = {nas: free_port(socket.SOCK_DGRAM) for nas in (ACK_NAS, SILENT_NAS)}
    now = datetime.now(UTC)
    with platform.engine.begin() as conn:
        for nas, secret in secrets.items():
            LEAKS.add_secret(secret)
            registry.create_gateway(
                conn,
                platform.sealer,
                org.id,
                name=f"pgw {nas}",
                address=nas,
                secret=secret,
                apns=[APN],
                require_message_authenticator=True,
                coa_port=coa_ports[nas],
                now=now,
            )
        registry.create_pool(conn, org.id, cidr=POOL, static_cidr=None, now=now)
        dns_repo.create_rule(
            conn,
            org.id,
            Rule("probe", Action.OVERRIDE, domains=(PROBE_NAME,), answer=(PROBE_ADDRESS,)),
            None,
            now,
        )
        specs = make_sims(PHYSICAL, seed=71)
        inventory.import_stock(
            conn,
            platform.sealer,
            org.id,
            parse_stock_csv(stock_csv(specs)),
            filename="physical.csv",
            kind=SimKind.PHYSICAL,
            actor=ACTOR,
            now=now,
        )
        physical = []
        for n, spec in enumerate(specs):
            person = _person(conn, org.id, f"Person {n}", now)
            for action in (SimAction.ASSIGN, SimAction.ACTIVATE):
                inventory.change_state(
                    conn,
                    org.id,
                    spec.iccid,
                    action,
                    actor=ACTOR,
                    reason="",
                    now=now,
                    identity_id=person if action is SimAction.ASSIGN else None,
                )
            imei = _imei(n)
            device = inventory.register_device(
                conn,
                org.id,
                imei=imei,
                eid=None,
                owner_id=person,
                name="phone",
                actor=ACTOR,
                now=now,
            )
            inventory.set_binding(
                conn, org.id, spec.iccid, device.id, actor=ACTOR, reason="issued", now=now
            )
            physical.append(Subscriber(person, spec.iccid, _device(f"phone {n}", spec.imsi, imei)))
        esim_specs = make_sims(4, seed=72, start=100)
        inventory.import_stock(
            conn,
            platform.sealer,
            org.id,
            parse_stock_csv(stock_csv(esim_specs)),
            filename="esim.csv",
            kind=SimKind.ESIM,
            actor=ACTOR,
            now=now,
        )
    imsis = {s.iccid: s.imsi for s in esim_specs}
    enabled = _esim_holder(platform, org.id, 0, imsis, last=NotificationPoint.PROFILE_ENABLED)
    downloaded = _esim_holder(platform, org.id, 1, imsis, last=NotificationPoint.BPP_DOWNLOAD)
    platform.engine.dispose()
    engine = node.build(node.settings_from(None, data_dir=data_dir)).engine
    return Site(
        data_dir, env, org.id, token, secrets, coa_ports, physical, enabled, downloaded, engine
    )


def _person(conn: Connection, org_id: str, name: str, now: datetime) -> str:
    person = identities.create_identity(
        conn,
        org_id,
        kind=IdentityKind.USER,
        name=name,
        email=None,
        external_id=None,
        now=now,
    )
    return person.id


def _device(name: str, imsi: str, imei: str) -> Device:
    return Device(name, imsi, imei[:14] + "01", None, Behaviour.EMPLOYEE)


def _esim_holder(
    platform: node.Platform, org_id: str, n: int, imsis: dict[str, str], *, last: NotificationPoint
) -> Subscriber:
    """An employee whose eSIM order went as far as `last`; the SIM is active and bound to
    the phone whose eUICC reported the download."""
    now = datetime.now(UTC)
    eid = Eid.with_check_digits(f"8904903200{n + 71:020d}").value
    with platform.engine.begin() as conn:
        person = _person(conn, org_id, f"eSIM holder {n}", now)
        issued = esim.create_order(
            conn,
            platform.sealer,
            org_id,
            person,
            config=platform.api_context().esim,
            actor=ACTOR,
            now=now,
            rand=os.urandom,
        )
        LEAKS.add_secret(issued.code.matching_id)
        imei = _imei(50 + n)
        inventory.register_device(
            conn, org_id, imei=imei, eid=eid, owner_id=person, name="phone", actor=ACTOR, now=now
        )
        iccid = issued.order.iccid
        for point in PROGRESS[: PROGRESS.index(last) + 1]:
            esim.report_progress(
                conn,
                org_id,
                iccid=iccid,
                eid=eid,
                point=point,
                status=ProgressStatus.SUCCESS,
                actor="smdp:test",
                now=now,
            )
        if last is not NotificationPoint.PROFILE_ENABLED:
            # Activated ahead of the phone's "enabled" report: live while still cancellable.
            inventory.change_state(
                conn, org_id, iccid, SimAction.ACTIVATE, actor=ACTOR, reason="", now=now
            )
    return Subscriber(
        person, iccid, _device(f"eSIM phone {n}", imsis[iccid], imei), issued.order.id
    )


def close(site: Site) -> None:
    LEAKS.add_events(site.engine)  # it reports nothing when it cannot read
    site.engine.dispose()
