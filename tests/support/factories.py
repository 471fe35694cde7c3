"""Test data: vendor stock files with random (but registered) secrets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from ztsim.db import schema
from ztsim.identifiers import Iccid
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.leaks import LEAKS


@dataclass(frozen=True)
class SimSpec:
    iccid: str
    imsi: str
    k: bytes
    opc: bytes
    msisdn: str | None
    pin: str
    puk: str


def make_sims(
    count: int, *, seed: int = 1, start: int = 0, mcc_mnc: str = "00101"
) -> list[SimSpec]:
    rng = random.Random(seed)
    specs = []
    for n in range(start, start + count):
        k = rng.randbytes(16)
        opc = rng.randbytes(16)
        pin = f"{rng.randrange(10**4):04d}"
        puk = f"{rng.randrange(10**8):08d}"
        for secret in (k, opc, pin, puk):
            if isinstance(secret, bytes):
                LEAKS.add_secret(secret)
        # PIN/PUK are short digit strings: matching them in text would flag every number.
        specs.append(
            SimSpec(
                iccid=Iccid.with_check_digit(f"894400{seed:04d}{n:08d}").value,
                imsi=f"{mcc_mnc}{seed:02d}{n:08d}",
                k=k,
                opc=opc,
                msisdn=f"4917{seed:02d}{n:07d}",
                pin=pin,
                puk=puk,
            )
        )
    return specs


def stock_csv(
    specs: list[SimSpec], *, delimiter: str = ",", headers: tuple[str, ...] | None = None
) -> str:
    names = headers or ("ICCID", "IMSI", "Ki", "OPc", "MSISDN", "PIN1", "PUK1")
    lines = [delimiter.join(names)]
    for s in specs:
        lines.append(
            delimiter.join((s.iccid, s.imsi, s.k.hex(), s.opc.hex(), s.msisdn or "", s.pin, s.puk))
        )
    return "\n".join(lines) + "\n"


def activate(conn: Connection, sealer: Sealer, org_id: str, spec: SimSpec, now: datetime) -> str:
    """Import `spec`, give it to a new user and activate it; returns the user's id."""
    inventory.import_stock(
        conn,
        sealer,
        org_id,
        parse_stock_csv(stock_csv([spec])),
        filename="test.csv",
        kind=SimKind.PHYSICAL,
        actor="test",
        now=now,
    )
    person = identities.create_identity(
        conn,
        org_id,
        kind=IdentityKind.USER,
        name="Ann",
        email="ann@example.test",
        external_id=None,
        now=now,
    )
    inventory.change_state(
        conn,
        org_id,
        spec.iccid,
        SimAction.ASSIGN,
        actor="test",
        reason="",
        now=now,
        identity_id=person.id,
    )
    inventory.change_state(
        conn, org_id, spec.iccid, SimAction.ACTIVATE, actor="test", reason="", now=now
    )
    return person.id


def sqn_seq(engine: Engine, spec: SimSpec) -> int:
    """The SIM's SEQ_HE as its row holds it now (`sims.sqn_seq`)."""
    with engine.connect() as conn:
        seq = conn.execute(
            select(schema.sims.c.sqn_seq).where(schema.sims.c.iccid == spec.iccid)
        ).scalar_one()
    return int(seq)
