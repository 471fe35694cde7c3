"""5G HE authentication vectors per second: the pure function on one core; the service
with SQN persisted, one transaction per vector (`service.generate`, as `ztsim aka vector`
does it), on SQLite and PostgreSQL; the batched issuer the Nudm endpoint uses
(`udm.issuer`, SQN blocks and group commit) with CONCURRENCY threads, on both, and with
CONCURRENCY callers on one event loop (PostgreSQL: as a server runs it); and the
TS 29.503 endpoint itself over HTTP/1.1 on PostgreSQL: a uvicorn server in a child
process on loopback, CONNECTIONS keep-alive connections from this process, one request
in flight on each, for SIMS SIMs of its own (the other figures share another SIMS);
beside its rate, the server process's CPU time per vector (/proc/<pid>/stat), which the
machine's other load moves less than the rate. The load comes from the lean generator
(`ztsim.simulator.http_load`: requests built before the clock starts, one epoll for
all connections): an asyncio client spent 25-30 us of CPU a vector, taken from the
server's share on a two-core machine; the generator's own CPU a vector is reported
too.

Five rounds, each measuring every figure in turn (interleaved, so the machine's other
load moves them alike), about two seconds per figure; the medians are reported.
PostgreSQL comes from ZTSIM_BENCH_DATABASE_URL or ZTSIM_TEST_DATABASE_URL (default:
the local server), in throwaway schemas. The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine, text

from ztsim.aka.kdf import serving_network_name
from ztsim.aka.milenage import Milenage
from ztsim.aka.vectors import fiveg_he_vector
from ztsim.clock import utc_now
from ztsim.db.engine import make_engine, psycopg_conninfo, upgrade
from ztsim.identifiers import Iccid
from ztsim.identity import repository as identities
from ztsim.identity import token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer
from ztsim.simulator.http_load import HttpLoad, LoadResult
from ztsim.udm import service
from ztsim.udm.issuer import VectorIssuer, VectorRequest
from ztsim.udm.pg_batches import PgBatches

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this file

from dns_peers import tree_cpu

ROUNDS = 5
MAX_SECONDS = 2.0
MAX_VECTORS = 200_000
BATCH = 1_000
SIMS = 200
CONCURRENCY = 32
CONNECTIONS = 32
SNN = serving_network_name("001", "01")
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def timed(step: Callable[[int], object], max_count: int) -> float:
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


@dataclass(frozen=True)
class Seeded:
    engine: Engine
    sealer: Sealer
    org: str
    imsis: list[str]
    token: str


def _stock(rng: random.Random, count: int) -> str:
    rows = ["ICCID,IMSI,Ki,OPc"]
    for n in range(count):
        iccid = Iccid.with_check_digit(f"894477{n:012d}").value
        rows.append(f"{iccid},00101{n:010d},{rng.randbytes(16).hex()},{rng.randbytes(16).hex()}")
    return "\n".join(rows) + "\n"


def seed(engine: Engine, kek: bytes, count: int = SIMS) -> Seeded:
    """`count` active SIMs in one org, and a `network` token for the endpoint."""
    upgrade(engine)
    sealer = Sealer(kek)
    now = utc_now()
    parsed = parse_stock_csv(_stock(random.Random(7), count))
    with engine.begin() as conn:
        org = identities.create_org(conn, "Bench", "bench", now).id
        person = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="B", email=None, external_id=None, now=now
        )
        inventory.import_stock(
            conn, sealer, org, parsed, filename="b", kind=SimKind.PHYSICAL, actor="bench", now=now
        )
        for row in parsed.rows:
            for action in (SimAction.ASSIGN, SimAction.ACTIVATE):
                inventory.change_state(
                    conn,
                    org,
                    row.iccid.value,
                    action,
                    actor="b",
                    reason="",
                    now=now,
                    identity_id=person.id if action is SimAction.ASSIGN else None,
                )
        _, token = token_store.issue(
            conn, org, name="ausf", role=Role.NETWORK, identity_id=None, created_by="b", now=now
        )
    return Seeded(engine, sealer, org, [row.imsi.value for row in parsed.rows], token)


def service_rate(s: Seeded) -> float:
    """One transaction per vector, one caller: what `ztsim aka vector` does."""
    rng = random.Random(1)
    now = utc_now()

    def one(i: int) -> None:
        with s.engine.begin() as conn:
            result = service.generate(
                conn,
                s.sealer,
                s.org,
                s.imsis[i % SIMS],
                serving_network_name=SNN,
                node_id="ausf-1",
                now=now,
                rand=rng.randbytes,
            )
        assert isinstance(result, service.IssuedVector)

    return timed(one, MAX_VECTORS)


def issuer_rate(s: Seeded, issuer: VectorIssuer) -> float:
    """The endpoint's service function: CONCURRENCY callers sharing one issuer."""
    stop = time.perf_counter() + MAX_SECONDS
    now = utc_now()

    def caller(k: int) -> int:
        n = 0
        while time.perf_counter() < stop and n < MAX_VECTORS:
            request = VectorRequest(s.org, s.imsis[(k * 7 + n) % SIMS], SNN, "ausf-1", now)
            assert isinstance(issuer.issue(request), service.IssuedVector)
            n += 1
        return n

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        total = sum(pool.map(caller, range(CONCURRENCY)))
    return total / (time.perf_counter() - start)


def issuer_loop_rate(s: Seeded) -> float:
    """The endpoint's service function as a server runs it on PostgreSQL: CONCURRENCY
    callers on one event loop, the batches awaited there (`pg_batches`)."""
    conninfo = psycopg_conninfo(s.engine, "ztsim-bench")
    assert conninfo is not None
    now = utc_now()

    async def run() -> float:
        issuer = VectorIssuer(s.engine, s.sealer, pg=PgBatches(conninfo))
        stop = time.perf_counter() + MAX_SECONDS
        counts: list[int] = []

        async def caller(k: int) -> None:
            n = 0
            while time.perf_counter() < stop and n < MAX_VECTORS:
                request = VectorRequest(s.org, s.imsis[(k * 7 + n) % SIMS], SNN, "ausf-1", now)
                assert isinstance(await issuer.issue_async(request), service.IssuedVector)
                n += 1
            counts.append(n)

        start = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(CONCURRENCY)))
        rate = sum(counts) / (time.perf_counter() - start)
        await issuer.aclose()
        return rate

    return asyncio.run(run())


# -- the endpoint over HTTP -------------------------------------------------------------


def serve(url: str, schema: str, port: int) -> None:
    """The child: the app on `port`, with the KEK read from stdin (never argv or env)."""
    import uvicorn

    from ztsim.api.app import create_app
    from ztsim.api.context import ApiContext
    from ztsim.api.server import ServeOptions, server_config

    kek = bytes.fromhex(sys.stdin.readline().strip())
    engine = make_engine(url, schema=schema)
    if os.environ.get("AKA_BENCH_POOL"):
        # An experiment, not ztsim's configuration: make_engine's pool (5 + 10 overflow,
        # overflow connections closed on return) against a bigger one.
        from sqlalchemy import create_engine

        engine = create_engine(
            engine.url,
            connect_args={"options": f"-csearch_path={schema}"},
            pool_size=int(os.environ["AKA_BENCH_POOL"]),
            pool_pre_ping=True,
        )
    app = create_app(ApiContext(engine, Sealer(kek)))
    options = ServeOptions(port=port, max_connections_per_client=CONNECTIONS + 8)
    uvicorn.Server(server_config(app, options)).run()


@contextmanager
def server(url: str, schema: str, kek: bytes) -> Iterator[tuple[int, int]]:
    """The child's port and process id."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, schema, str(port)],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None
        child.stdin.write(kek.hex() + "\n")
        child.stdin.close()
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port, child.pid
    finally:
        child.terminate()
        child.wait(10)


def http_load(s: Seeded, port: int) -> LoadResult:
    """CONNECTIONS keep-alive connections, one request in flight on each, for at most
    MAX_SECONDS or MAX_VECTORS (the lean generator: its CPU is reported beside the
    server's); every response must be a 200."""
    body = json.dumps({"servingNetworkName": SNN, "ausfInstanceId": "ausf-1"}).encode()

    def request(imsi: str) -> bytes:
        return (
            f"POST /nudm-ueau/v1/imsi-{imsi}/security-information/generate-auth-data HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {s.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    requests = [[request(s.imsis[(k + i) % SIMS]) for i in range(SIMS)] for k in range(CONNECTIONS)]
    result = HttpLoad(("127.0.0.1", port), requests).run(MAX_VECTORS, seconds=MAX_SECONDS)
    assert result.ok == result.answered == result.sent, result.statuses
    return result


# -- the run ----------------------------------------------------------------------------


@contextmanager
def pg_schema(url: str) -> Iterator[tuple[Engine, str]]:
    schema = f"ztsim_bench_{secrets.token_hex(4)}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, schema=schema)
    try:
        yield engine, schema
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    url = os.environ.get("ZTSIM_BENCH_DATABASE_URL") or os.environ.get(
        "ZTSIM_TEST_DATABASE_URL", PG_DEFAULT
    )
    kek = secrets.token_bytes(32)
    figures: dict[str, list[float]] = {}
    cpu_us: list[float] = []  # the endpoint's server, CPU microseconds per vector
    load_us: list[float] = []  # the load generator's, per vector
    with tempfile.TemporaryDirectory() as tmp, pg_schema(url) as (pg, schema):
        lite = seed(make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"), kek)
        # The endpoint on SIMs of its own: the other figures' SQN writes would otherwise
        # take the server's reserved blocks away every round (the row no longer shows a
        # block's top), which a deployment sees only on a resynchronisation.
        both = seed(pg, kek, 2 * SIMS)
        post, endpoint = (
            replace(both, imsis=both.imsis[:SIMS]),
            replace(both, imsis=both.imsis[SIMS:]),
        )
        with (
            VectorIssuer(lite.engine, lite.sealer) as lite_issuer,
            VectorIssuer(post.engine, post.sealer) as pg_issuer,
            server(url, schema, kek) as (port, pid),
        ):
            http_load(endpoint, port)  # warm-up: connections, imports, the blocks' growth

            def http_figures() -> float:
                """The rate; the server's CPU per vector kept beside it (a figure that
                other load on the machine moves less than the rate)."""
                cpu = tree_cpu(pid)
                got = http_load(endpoint, port)
                cpu_us.append((tree_cpu(pid) - cpu) * 1e6 / max(got.answered, 1))
                load_us.append(got.client_cpu_us)
                return got.rps

            for r in range(ROUNDS):
                for key, measure in (
                    ("pure_vectors_per_s", pure_rate),
                    ("service_sqlite_vectors_per_s", lambda: service_rate(lite)),
                    ("service_postgres_vectors_per_s", lambda: service_rate(post)),
                    ("issuer_sqlite_vectors_per_s", lambda: issuer_rate(lite, lite_issuer)),
                    ("issuer_postgres_vectors_per_s", lambda: issuer_rate(post, pg_issuer)),
                    ("issuer_loop_postgres_vectors_per_s", lambda: issuer_loop_rate(post)),
                    ("service_vectors_per_s_postgres", http_figures),
                ):
                    figures.setdefault(key, []).append(measure())
                line = ", ".join(f"{k} {v[-1]:,.0f}" for k, v in figures.items())
                print(f"aka: round {r + 1}/{ROUNDS}: {line}", flush=True)
        lite.engine.dispose()
    result: dict[str, float] = {
        key: round(statistics.median(values)) for key, values in figures.items()
    }
    result["service_cpu_us_per_vector_postgres"] = round(statistics.median(cpu_us), 1)
    result["load_cpu_us_per_vector"] = round(statistics.median(load_us), 1)
    print(
        f"aka: medians of {ROUNDS}: pure {result['pure_vectors_per_s']:,}/s on one core; "
        f"one transaction per vector: SQLite {result['service_sqlite_vectors_per_s']:,}/s, "
        f"PostgreSQL {result['service_postgres_vectors_per_s']:,}/s; batched issuer "
        f"({CONCURRENCY} callers): SQLite {result['issuer_sqlite_vectors_per_s']:,}/s, "
        f"PostgreSQL {result['issuer_postgres_vectors_per_s']:,}/s, on one event loop "
        f"(PostgreSQL) {result['issuer_loop_postgres_vectors_per_s']:,}/s; HTTP endpoint on "
        f"PostgreSQL ({CONNECTIONS} connections): {result['service_vectors_per_s_postgres']:,}/s "
        f"at {result['service_cpu_us_per_vector_postgres']} us of server CPU a vector "
        f"(the load generator's: {result['load_cpu_us_per_vector']} us)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
