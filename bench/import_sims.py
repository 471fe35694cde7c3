"""Stock import throughput and SIM list latency, on SQLite and PostgreSQL.

1. Imports 100,000 SIMs from one vendor CSV held in memory, the way an admin's
   import goes: parse, validate, check duplicates against the database, seal
   K/OPc/PIN/PUK, insert, record the event, all in one transaction. Once on a
   fresh SQLite file, once on a fresh PostgreSQL schema (dropped at the end).
2. Fills the SQLite database to 1,000,000 SIMs (more imports through the same
   path), serves the real API with uvicorn on loopback and times sequential
   `GET /api/v1/sims?limit=100` requests over one keep-alive connection, each
   page starting from a random ICCID or following the previous page's cursor.
   With --postgres-list the same is done on PostgreSQL.
3. Streams a file of 100,000 more SIMs into the 1,000,000 (`import_stock_file`, as
   the API's upload does) while another writer takes SQLite's write lock every 5 ms,
   as the AAA's accounting writer does: the import's seconds and that writer's
   longest wait (`file_import_writer_wait_max_s`; the import seals and stages its rows
   outside the lock and holds it only to copy them).

Targets: >= 20,000 SIMs/s imported on SQLite; list p99 < 20 ms. The last line
printed is one JSON object for scripts. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.db.engine import make_engine, upgrade
from ztsim.db.pagination import encode_cursor
from ztsim.identifiers import Iccid
from ztsim.identity import repository as identities
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.inventory import service
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

SEED = 20261124
IMPORT_ROWS = 100_000
LIST_STORED = 1_000_000
LIST_WARMUP = 100
LIST_REQUESTS = 2_000
LIST_MAX_SECONDS = 120.0
PAGES_PER_START = 5  # follow a few cursors, then jump to a new random ICCID
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEADER = "ICCID,IMSI,Ki,OPc,MSISDN,PIN1,PUK1"


def iccid_at(n: int) -> str:
    # 18-digit body + Luhn digit: 19-digit ICCIDs, issuer 8944 00 (test range).
    return Iccid.with_check_digit(f"894400{n:012d}").value


def stock_text(start: int, count: int, seed: int) -> str:
    """A vendor file of SIMs number start..start+count-1, secrets from a seeded RNG."""
    rng = random.Random(seed * 1_000_003 + start)
    lines = [HEADER]
    for n in range(start, start + count):
        lines.append(
            f"{iccid_at(n)},00101{n:010d},{rng.randbytes(16).hex()},{rng.randbytes(16).hex()},"
            f"4917{n:09d},{rng.randrange(10**4):04d},{rng.randrange(10**8):08d}"
        )
    return "\n".join(lines) + "\n"


def import_once(engine: Engine, sealer: Sealer, org_id: str, csv_text: str, name: str) -> float:
    """Seconds for parse + import_stock + commit."""
    start = time.perf_counter()
    parsed = parse_stock_csv(csv_text)
    with engine.begin() as conn:
        record = service.import_stock(
            conn,
            sealer,
            org_id,
            parsed,
            filename=name,
            kind=SimKind.PHYSICAL,
            actor="bench",
            now=datetime.now(UTC),
        )
    elapsed = time.perf_counter() - start
    if record.status != "imported" or record.imported != parsed.data_rows:
        raise SystemExit(f"import of {name} was rejected: {record.errors[:3]}")
    return elapsed


def setup_org(engine: Engine) -> tuple[str, str]:
    """A new org and an admin token for it."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Bench", "bench", now)
        _, token = token_store.issue(
            conn,
            org.id,
            name="bench",
            role=Role.ADMIN,
            identity_id=None,
            created_by="bench",
            now=now,
        )
    return org.id, token


def bench_import(engine: Engine, sealer: Sealer, org_id: str, label: str, csv_text: str) -> float:
    elapsed = import_once(engine, sealer, org_id, csv_text, "bench-0.csv")
    rate = IMPORT_ROWS / elapsed
    print(f"{label}: imported {IMPORT_ROWS:,} SIMs in {elapsed:.2f} s: {rate:,.0f} SIMs/s")
    return rate


def fill(engine: Engine, sealer: Sealer, org_id: str, label: str) -> None:
    """Import batches of IMPORT_ROWS until LIST_STORED SIMs are stored."""
    start = time.perf_counter()
    rates: list[float] = []
    for first in range(IMPORT_ROWS, LIST_STORED, IMPORT_ROWS):
        count = min(IMPORT_ROWS, LIST_STORED - first)
        csv_text = stock_text(first, count, SEED)
        rates.append(count / import_once(engine, sealer, org_id, csv_text, f"fill-{first}.csv"))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM sims")).scalar_one()
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE sims"))
            conn.commit()
    if stored != LIST_STORED:
        raise SystemExit(f"{label}: expected {LIST_STORED} SIMs stored, found {stored}")
    print(
        f"{label}: filled to {stored:,} SIMs in {time.perf_counter() - start:.1f} s; "
        f"import rate per batch of {IMPORT_ROWS:,}: " + ", ".join(f"{r:,.0f}" for r in rates)
    )


def file_import_lock(
    engine: Engine, sealer: Sealer, org_id: str, label: str
) -> tuple[float, float]:
    """A streamed file import of IMPORT_ROWS more SIMs (`import_stock_file`, as the API's
    upload runs it) while another writer, as the AAA's, takes the write lock every 5 ms:
    the import's seconds and the other writer's longest wait."""
    path = Path(str(engine.url.database))
    csv_text = stock_text(LIST_STORED, IMPORT_ROWS, SEED)
    waits: list[float] = []
    done = threading.Event()

    def writer() -> None:
        other = sqlite3.connect(path, timeout=120, isolation_level=None)
        try:
            while not done.is_set():
                asked = time.perf_counter()
                other.execute("BEGIN IMMEDIATE")
                waits.append(time.perf_counter() - asked)
                other.execute("ROLLBACK")
                time.sleep(0.005)
        finally:
            other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    start = time.perf_counter()
    try:
        record = service.import_stock_file(
            engine,
            sealer,
            org_id,
            lambda: io.StringIO(csv_text, newline=""),
            filename="file.csv",
            kind=SimKind.PHYSICAL,
            actor="bench",
            now=datetime.now(UTC),
        )
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        thread.join()
    if record.status != "imported":
        raise SystemExit(f"{label}: the file import was rejected: {record.errors[:3]}")
    print(
        f"{label}: streamed file import of {IMPORT_ROWS:,} SIMs (into {LIST_STORED:,}) in "
        f"{elapsed:.1f} s; another writer waited at most {max(waits):.2f} s for the write lock"
    )
    return elapsed, max(waits)


@contextmanager
def serve(engine: Engine, sealer: Sealer) -> Iterator[str]:
    """The real app under uvicorn in a thread, on a free loopback port."""
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it Nagle + delayed ACK add ~40 ms to every response (headers, body: 2 writes).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(ApiContext(engine, sealer)), log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise SystemExit("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def list_latency(engine: Engine, sealer: Sealer, token: str, label: str) -> tuple[float, float]:
    """(p50, p99) in ms of GET /api/v1/sims?limit=100 from varied start points."""
    rng = random.Random(SEED)
    headers = {"Authorization": f"Bearer {token}"}
    timings: list[float] = []
    with serve(engine, sealer) as base, httpx.Client(base_url=base, headers=headers) as client:
        cursor: str | None = None
        pages_left = 0
        began = time.perf_counter()
        for i in range(LIST_WARMUP + LIST_REQUESTS):
            if pages_left == 0 or cursor is None:
                # Start just after a random stored ICCID (never the last page's tail).
                cursor = encode_cursor(iccid_at(rng.randrange(LIST_STORED - 1_000)))
                pages_left = PAGES_PER_START
            t0 = time.perf_counter()
            response = client.get("/api/v1/sims", params={"limit": 100, "cursor": cursor})
            t1 = time.perf_counter()
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code}: {response.text[:200]}")
            page = response.json()
            if len(page["items"]) != 100:
                raise SystemExit(f"{label}: a page had {len(page['items'])} items, not 100")
            cursor = page["next_cursor"]
            pages_left -= 1
            if i >= LIST_WARMUP:
                timings.append((t1 - t0) * 1000)
            if time.perf_counter() - began > LIST_MAX_SECONDS:
                print(f"{label}: stopped after {LIST_MAX_SECONDS:.0f} s")
                break
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, round(0.99 * len(timings)) - 1)]
    print(
        f"{label}: GET /api/v1/sims?limit=100 with {LIST_STORED:,} SIMs stored, "
        f"{len(timings)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {timings[-1]:.2f} ms"
    )
    return p50, p99


def postgres_url() -> str:
    url = (
        os.environ.get("ZTSIM_BENCH_DATABASE_URL")
        or os.environ.get("ZTSIM_TEST_DATABASE_URL")
        or DEFAULT_PG_URL
    )
    parsed = make_url(url)
    if "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": "5"})
    return parsed.render_as_string(hide_password=False)


def bench_postgres(sealer: Sealer, csv_text: str, with_list: bool) -> dict[str, float | None]:
    result: dict[str, float | None] = {"postgres_sims_per_s": None}
    url = postgres_url()
    admin = make_engine(url)
    schema = f"ztsim_bench_{secrets.token_hex(4)}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        print(f"postgres: unreachable ({reason}); skipped")
        admin.dispose()
        return result
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine)
        org_id, token = setup_org(engine)
        result["postgres_sims_per_s"] = bench_import(engine, sealer, org_id, "postgres", csv_text)
        if with_list:
            fill(engine, sealer, org_id, "postgres")
            p50, p99 = list_latency(engine, sealer, token, "postgres")
            result["postgres_list_p50_ms"] = p50
            result["postgres_list_p99_ms"] = p99
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-list", action="store_true", help="also fill PostgreSQL and time the list"
    )
    args = parser.parse_args()

    sealer = Sealer(random.Random(SEED).randbytes(32))
    csv_text = stock_text(0, IMPORT_ROWS, SEED)
    figures: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="ztsim-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'ztsim.db'}")
        try:
            upgrade(engine)
            org_id, token = setup_org(engine)
            figures["sqlite_sims_per_s"] = bench_import(engine, sealer, org_id, "sqlite", csv_text)
            figures.update(bench_postgres(sealer, csv_text, args.postgres_list))
            fill(engine, sealer, org_id, "sqlite")
            p50, p99 = list_latency(engine, sealer, token, "sqlite")
            figures["list_p50_ms"] = p50
            figures["list_p99_ms"] = p99
            seconds, wait = file_import_lock(engine, sealer, org_id, "sqlite")
            figures["file_import_s"] = seconds
            figures["file_import_writer_wait_max_s"] = wait
        finally:
            engine.dispose()
    print(
        json.dumps(
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in figures.items()},
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
