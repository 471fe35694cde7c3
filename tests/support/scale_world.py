"""One org for the scale-out tests and benchmark, written straight to the database in
bulk (the lifecycle rules are not what these measure): active SIMs each bound to a
device of its own, their holder, a packet gateway, an address pool, a DNS override
rule (so a query is answered without an upstream, with an address that says which
version of the rule answered), an admin token, and optionally a static lease and a
live session per SIM.

SIM n: IMSI 00101 + n (10 digits), IMEISV 35 + n (12 digits) + 01, its static address
the (n + 1)th of the pool's static range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Network

from sqlalchemy import Engine, insert

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store import repository as dns_repo
from ztsim.identifiers import Iccid, Imei
from ztsim.identity import repository as identities
from ztsim.identity import token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role
from ztsim.radius.store import registry
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.table import Session

from support.netns_clients import Sim

APN = "corp.apn"
PROBE_NAME = "probe.test"  # the override rule's domain
UE_PREFIX = "100.64.0.0/10"  # CGNAT space (RFC 6598), as mobile cores use; every pool inside
DYNAMIC_POOL = "100.64.0.0/14"
STATIC_POOL = "100.80.0.0/12"  # room for a million SIMs
CHUNK = 5000


def imsi(n: int) -> str:
    return f"00101{n:010d}"


def imeisv(n: int) -> str:
    return f"35{n:012d}01"


def imei(n: int) -> str:
    return Imei.with_check_digit(f"35{n:012d}").value


def iccid(n: int) -> str:
    return Iccid.with_check_digit(f"8944001{n:011d}").value


def static_address(n: int) -> str:
    return str(IPv4Network(STATIC_POOL).network_address + n + 1)


def rule_answer(version: int) -> str:
    """The override's answer in its `version`th form (198.18.0.0/15, RFC 2544)."""
    return f"198.{18 + (version >> 16) % 2}.{(version >> 8) & 255}.{version & 255}"


def answer_version(address: str) -> int:
    parts = [int(p) for p in address.split(".")]
    return ((parts[1] - 18) << 16) | (parts[2] << 8) | parts[3]


@dataclass(frozen=True)
class SeededSim:
    n: int
    iccid: str
    imsi: str
    imeisv: str
    address: str  # its static lease
    device_id: str
    identity_id: str  # its holder

    @property
    def radius(self) -> Sim:
        return Sim(self.imsi, self.imeisv, APN)


@dataclass
class ScaleWorld:
    org_id: str
    identity_id: str
    gateway_id: str
    gateway_address: str
    pool_id: str
    rule_id: str
    admin_token: str
    secret: str
    sims: list[SeededSim]


def seed(
    engine: Engine,
    sealer: Sealer,
    *,
    gateway_address: str,
    secret: str,
    coa_port: int = 3799,
    count: int = 0,
) -> ScaleWorld:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Scale", "scale", now)
        person = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="P", email=None, external_id=None, now=now
        )
        gateway = registry.create_gateway(
            conn,
            sealer,
            org.id,
            name="pgw",
            address=gateway_address,
            secret=secret,
            apns=[APN],
            require_message_authenticator=True,
            coa_port=coa_port,
            now=now,
        )
        pool = registry.create_pool(
            conn, org.id, cidr=DYNAMIC_POOL, static_cidr=STATIC_POOL, now=now
        )
        rule = Rule("probe", Action.OVERRIDE, domains=(PROBE_NAME,), answer=(rule_answer(1),))
        stored = dns_repo.create_rule(conn, org.id, rule, None, now)
        _, token = token_store.issue(
            conn,
            org.id,
            name="scale admin",
            role=Role.ADMIN,
            identity_id=None,
            created_by="test",
            now=now,
        )
    world = ScaleWorld(
        org.id, person.id, gateway.id, gateway_address, pool.id, stored.id, token, secret, []
    )
    if count:
        world.sims += add_sims(engine, sealer, world, 0, count)
    return world


def add_sims(
    engine: Engine,
    sealer: Sealer,
    world: ScaleWorld,
    first: int,
    count: int,
    *,
    per_identity: int = 0,
) -> list[SeededSim]:
    """Active SIMs first..first+count-1, each bound to its own device, with a static lease;
    held by the world's one identity, or with `per_identity`, by a new identity for each
    `per_identity` SIMs (people with a phone each, or fleets)."""
    made: list[SeededSim] = []
    now = datetime.now(UTC)
    holder = world.identity_id
    for start in range(first, first + count, CHUNK):
        numbers = range(start, min(start + CHUNK, first + count))
        devices, sims, leases, holders = [], [], [], []
        for n in numbers:
            device_id = new_id()
            if per_identity and (n - first) % per_identity == 0:
                holder = new_id()
                holders.append(
                    {
                        "id": holder,
                        "org_id": world.org_id,
                        "kind": IdentityKind.USER.value,
                        "name": f"holder {n}",
                        "enabled": True,
                        "created_at": now,
                    }
                )
            sim = SeededSim(n, iccid(n), imsi(n), imeisv(n), static_address(n), device_id, holder)
            devices.append(
                {
                    "id": device_id,
                    "org_id": world.org_id,
                    "imei": imei(n),
                    "name": "",
                    "created_at": now,
                }
            )
            aad = sim.iccid.encode()
            sims.append(
                {
                    "org_id": world.org_id,
                    "iccid": sim.iccid,
                    "imsi": sim.imsi,
                    "kind": "physical",
                    "state": "active",
                    "identity_id": holder,
                    "device_id": device_id,
                    "bound_at": now,
                    "k_sealed": sealer.seal(os.urandom(16), aad),
                    "opc_sealed": sealer.seal(os.urandom(16), aad),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            leases.append(
                {
                    "pool_id": world.pool_id,
                    "org_id": world.org_id,
                    "address": sim.address,
                    "imsi": sim.imsi,
                    "static": True,
                    "created_at": now,
                }
            )
            made.append(sim)
        with engine.begin() as conn:
            if holders:
                conn.execute(insert(schema.identities), holders)
            conn.execute(insert(schema.devices), devices)
            conn.execute(insert(schema.sims), sims)
            conn.execute(insert(schema.ip_leases), leases)
    return made


def add_sessions(engine: Engine, world: ScaleWorld, sims: list[SeededSim], prefix: str) -> None:
    """A live session per SIM at its static address, as the gateway's Accounting-Start
    would have made it (written before the gateways start: they load it)."""
    now = datetime.now(UTC)
    for start in range(0, len(sims), CHUNK):
        rows = [
            Session(
                org_id=world.org_id,
                gateway_id=world.gateway_id,
                acct_session_id=f"{prefix}-{s.n}",
                nas_address=world.gateway_address,
                imsi=s.imsi,
                iccid=s.iccid,
                identity_id=s.identity_id,
                device_id=s.device_id,
                imei=imei(s.n),
                ue_address=s.address,
                apn=APN,
                rat="EUTRAN",
                location=None,
                started_at=now,
                updated_at=now,
            )
            for s in sims[start : start + CHUNK]
        ]
        with engine.begin() as conn:
            sessions_repo.save(conn, rows)
