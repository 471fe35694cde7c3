"""5G HE authentication vectors per second: the pure function on one core, and the
service with SQN persistence (one transaction per vector, as the Nudm endpoint
does it) on SQLite and on PostgreSQL.

Bounded: about three seconds per figure. PostgreSQL comes from
ZTSIM_BENCH_DATABASE_URL or ZTSIM_TEST_DATABASE_URL (default: the local server),
in a throwaway schema. The last line printed is one JSON object.
"""

import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from ztsim.aka.kdf import serving_network_name
from ztsim.aka.milenage import Milenage
from ztsim.aka.vectors import fiveg_he_vector
from ztsim.clock import utc_now
from ztsim.db.engine import make_engine, upgrade
from ztsim.identifiers import Iccid
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer
from ztsim.udm import service

MAX_VECTORS = 100_000
MAX_SECONDS = 3.0
BATCH = 1_000
SIMS = 200
SNN = serving_network_name("001", "01")


def timed(step: Callable[[int], None], max_count: int) -> float:
    done, start, elapsed = 0, time.perf_counter(), 0.0
    while done < max_count and elapsed < MAX_SECONDS:
        for i in range(100):
            step(done + i)
        done += 100
        elapsed = time.perf_counter() - start
    return done / elapsed


def pure_rate() -> float:
    rng = random.Random(20261124)
    milenage = Milenage(rng.randbytes(16), rng.randbytes(16))
    amf = b"\x80\x00"
    rands = [rng.randbytes(16) for _ in range(BATCH)]
    sqns = [(i + 1).to_bytes(6, "big") for i in range(BATCH)]
    for i in range(100):
        fiveg_he_vector(milenage, rands[i], sqns[i], amf, SNN)  # warm-up
    return timed(
        lambda i: fiveg_he_vector(milenage, rands[i % BATCH], sqns[i % BATCH], amf, SNN),
        MAX_VECTORS,
    )


def _stock(rng: random.Random) -> str:
    rows = ["ICCID,IMSI,Ki,OPc"]
    for n in range(SIMS):
        iccid = Iccid.with_check_digit(f"894477{n:012d}").value
        rows.append(f"{iccid},00101{n:010d},{rng.randbytes(16).hex()},{rng.randbytes(16).hex()}")
    return "\n".join(rows) + "\n"


def service_rate(engine: Engine) -> float:
    upgrade(engine)
    sealer = Sealer(secrets.token_bytes(32))
    rng = random.Random(7)
    now = utc_now()
    parsed = parse_stock_csv(_stock(rng))
    with engine.begin() as conn:
        org = identities.create_org(conn, "Bench", "bench", now).id
        person = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="B", email=None, external_id=None, now=now
        )
        inventory.import_stock(
            conn, sealer, org, parsed, filename="b", kind=SimKind.PHYSICAL, actor="bench", now=now
        )
        for row in parsed.rows:
            inventory.change_state(
                conn,
                org,
                row.iccid.value,
                SimAction.ASSIGN,
                actor="b",
                reason="",
                now=now,
                identity_id=person.id,
            )
            inventory.change_state(
                conn, org, row.iccid.value, SimAction.ACTIVATE, actor="b", reason="", now=now
            )
    imsis = [row.imsi.value for row in parsed.rows]

    def one(i: int) -> None:
        with engine.begin() as conn:
            result = service.generate(
                conn,
                sealer,
                org,
                imsis[i % SIMS],
                serving_network_name=SNN,
                node_id="ausf-1",
                now=now,
                rand=rng.randbytes,
            )
        assert isinstance(result, service.IssuedVector)

    return timed(one, MAX_VECTORS)


def main() -> None:
    pure = pure_rate()
    print(f"aka: pure 5G HE vectors on one core: {pure:,.0f}/s")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        sqlite = service_rate(engine)
        engine.dispose()
    print(f"aka: service on SQLite (SQN persisted, one transaction per vector): {sqlite:,.0f}/s")
    url = os.environ.get("ZTSIM_BENCH_DATABASE_URL") or os.environ.get(
        "ZTSIM_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    postgres: float | None = None
    schema = f"ztsim_bench_{secrets.token_hex(4)}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            engine = make_engine(url, schema=schema)
            postgres = service_rate(engine)
            engine.dispose()
            print(f"aka: service on PostgreSQL: {postgres:,.0f}/s")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    except OperationalError as exc:
        print(f"aka: PostgreSQL not reachable, skipped ({type(exc).__name__})", file=sys.stderr)
    admin.dispose()
    print(
        json.dumps(
            {
                "pure_vectors_per_s": round(pure),
                "service_sqlite_vectors_per_s": round(sqlite),
                "service_postgres_vectors_per_s": None if postgres is None else round(postgres),
            }
        )
    )


if __name__ == "__main__":
    main()
