"""DNS gateway benchmark: ztsim (all workers) against dnsmasq and unbound on the same 1M-name list.

Run: .venv/bin/python bench/dns.py [--domains N] [--seconds S] [--workers W] [--rounds R] [--quick]
Needs dnsperf, dnsmasq, unbound and kdig (Debian: dnsperf, dnsmasq-base, unbound,
knot-dnsutils). Loopback only. Peers and CPU accounting: bench/dns_peers.py.

- A deterministic N-name block list and 10,000 live sessions in the session table
  (addresses 127.1.x.y, plus the dnsperf source addresses 127.0.0.2-5).
- Each server answers a listed name with 0.0.0.0 (ztsim's default block mode; dnsmasq
  from a hosts file; unbound from one `local-zone: always_null` per name, as many threads
  as ztsim has workers).
- Queries: half listed names, half allowed names (ztsim and unbound forward these to an
  upstream dnsmasq and cache the answers, warmed first; the reference dnsmasq has them
  as hosts).
- dnsperf from 4 loopback source addresses in parallel. All three servers run the whole
  time (an idle one uses no CPU); `--rounds` rounds (5), each loading every server in
  turn, the order rotating each round; medians are reported. Server CPU per query is the
  server's process tree's CPU time over the round (/proc/<pid>/stat) per answered query.
  unbound gets ztsim's 4 MiB socket buffers; dnsmasq has no such setting and, at the
  kernel's default, drops about 3,000 queries of dnsperf's bursts per 10 s load (printed
  per round as "lost"; each lost query idles one of dnsperf's slots for its 2 s timeout).
- `--quick`: 10,000 names, 1 s loads, one round (a smoke test, not a figure).
- Memory: resident growth of a process that loads the policy and keeps only the snapshot.
- Reload: the list changes while dnsperf runs; time until a new name is blocked, and
  dnsperf's lost-query count over that window.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the peers beside this file

from dns_peers import (
    SOURCES,
    Load,
    Server,
    blocked,
    dnsmasq,
    dnsperf,
    query,
    unbound,
    unbound_blocklist,
    wait_answering,
)

SESSIONS = 10_000
ALLOWED = 1_000
QUERIES = 20_000
TLDS = ["com", "net", "org", "io", "de", "info"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _names(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(36):x}-{i}.ads{i % 97}.{rng.choice(TLDS)}" for i in range(count)]


def _write_blocklist(path: Path, names: list[str]) -> None:
    with path.open("w") as out:
        out.writelines(f"0.0.0.0 {name}\n" for name in names)


def _setup_sessions(data: Path, env: dict[str, str]) -> str:
    subprocess.run(
        [sys.executable, "-m", "ztsim", "init"], env=env, check=True, capture_output=True
    )
    import sqlalchemy as sa

    from ztsim.sessions import repository
    from ztsim.sessions.table import Session

    engine = sa.create_engine(f"sqlite:///{data / 'ztsim.db'}")
    with engine.begin() as conn:
        org_id = str(conn.execute(sa.text("select id from orgs")).scalar_one())
        now = datetime.now(UTC)
        addresses = SOURCES + [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(SESSIONS)]
        repository.save(
            conn,
            [
                Session(
                    org_id,
                    "gw",
                    f"s{i}",
                    "127.0.0.1",
                    None,
                    None,
                    f"identity-{i}",
                    None,
                    None,
                    address,
                    None,
                    None,
                    None,
                    now,
                    now,
                )
                for i, address in enumerate(addresses[:SESSIONS])
            ],
        )
    engine.dispose()
    return org_id


def _policy(path: Path, org_id: str) -> None:
    path.write_text(
        f"""[lists.big]
path = "blocklist.hosts"
format = "hosts"
[[orgs]]
id = "{org_id}"
privacy = "none"
[[orgs.rules]]
id = "big"
action = "block"
lists = ["big"]
"""
    )


def _memory_mb(policy: Path) -> float:
    """Resident growth of a process holding only the compiled policy (lists parsed, freed)."""
    code = """
import ctypes, gc, os, sys
from pathlib import Path
from ztsim.dns.policy.config import load_config
from ztsim.dns.policy.snapshot import PolicySnapshot
import numpy  # building a store loads NumPy: its code is not the store's memory
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
before = rss()
config = load_config(Path(sys.argv[1]))
snapshot = PolicySnapshot(config.policy, os.urandom(16))
del config
gc.collect()
ctypes.CDLL('libc.so.6').malloc_trim(0)
print(rss() - before)
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(policy)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5, help="loads per server; medians")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 10,000 names, 1 s loads, one round"
    )
    args = parser.parse_args()
    if args.quick:
        args.domains, args.seconds, args.rounds = 10_000, 1.0, 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    missing = [t for t in ("dnsperf", "dnsmasq", "unbound", "kdig") if not _found(t)]
    if missing:
        sys.exit(f"bench/dns.py: needs {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.domains, args.seconds, args.workers, args.rounds, args.quick)


def _found(tool: str) -> bool:
    return shutil.which(tool) is not None or Path("/usr/sbin", tool).exists()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run(tmp: Path, count: int, seconds: float, workers: int, rounds: int, quick: bool) -> None:
    names = _names(count, 1)
    blocklist = tmp / "blocklist.hosts"
    _write_blocklist(blocklist, names)
    unbound_list = tmp / "blocklist.unbound.conf"
    unbound_blocklist(unbound_list, names)
    allowed = [f"ok{i}.allowed.test" for i in range(ALLOWED)]
    allowed_hosts = tmp / "allowed.hosts"
    allowed_hosts.write_text("".join(f"192.0.2.{i % 250 + 1} {n}\n" for i, n in enumerate(allowed)))
    rng = random.Random(2)
    queries = tmp / "queries.txt"
    queries.write_text(
        "".join(
            f"{rng.choice(names) if i % 2 else rng.choice(allowed)} A\n" for i in range(QUERIES)
        )
    )
    env = {**os.environ, "ZTSIM_DATA_DIR": str(tmp / "data")}
    org_id = _setup_sessions(tmp / "data", env)
    policy = tmp / "policy.toml"
    _policy(policy, org_id)
    upstream_port, ztsim_port = _free_port(), _free_port()
    ref_port, unbound_port = _free_port(), _free_port()
    print(f"domains: {count:,}; live sessions: {SESSIONS:,}; workers: {workers}", flush=True)
    env |= {
        "ZTSIM_DNS_PORT": str(ztsim_port),
        "ZTSIM_DNS_UPSTREAMS": json.dumps([f"127.0.0.1:{upstream_port}"]),
        "ZTSIM_DNS_POLICY_FILE": str(policy),
        "ZTSIM_DNS_RELOAD_INTERVAL": "0.5",
    }
    running: list[subprocess.Popen[bytes]] = []
    servers: list[Server] = []
    try:
        running.append(dnsmasq(upstream_port, allowed_hosts))
        starts: list[tuple[str, int, Callable[[], subprocess.Popen[bytes]]]] = [
            (
                "ztsim",
                ztsim_port,
                lambda: subprocess.Popen(
                    [sys.executable, "-m", "ztsim", "serve", "dns", "--workers", str(workers)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            ),
            ("dnsmasq", ref_port, lambda: dnsmasq(ref_port, blocklist, allowed_hosts)),
            (
                "unbound",
                unbound_port,
                lambda: unbound(tmp, unbound_port, workers, upstream_port, unbound_list),
            ),
        ]
        for name, port, start in starts:
            began = time.monotonic()
            proc = start()
            running.append(proc)
            wait_answering(port, allowed[0], 300)
            if not blocked(query(port, names[0])):
                raise RuntimeError(f"{name} does not answer a listed name with 0.0.0.0")
            if not query(port, allowed[0]).endswith(bytes([192, 0, 2, 1])):
                raise RuntimeError(f"{name} does not answer an allowed name as the upstream")
            print(f"{name} ready in {time.monotonic() - began:.1f} s", flush=True)
            servers.append(Server(name, port, proc))
        for server in servers:
            dnsperf(server.port, queries, min(seconds, 3))  # warm every worker's, thread's cache
        for r in range(rounds):
            # Interleaved, the order rotating: the machine's other load moves all alike.
            for server in servers[r % 3 :] + servers[: r % 3]:
                server.measure(queries, seconds)
                print(
                    f"round {r + 1}/{rounds}: {server.name:8} {server.qps[-1]:9,.0f} qps, "
                    f"server CPU {server.cpu_us[-1]:5.1f} us/query ({server.lost[-1]} lost)",
                    flush=True,
                )
        reload_s, reload_lost = _reload(
            tmp, names, ztsim_port, queries, seconds + (2 if quick else 10)
        )
        print(f"reload of a changed {count:,}-name list: {reload_s:.2f} s, {reload_lost} lost")
    finally:
        for proc in reversed(running):
            _stop(proc)
    ztsim, peer, ub = servers
    mb = _memory_mb(policy) / (count / 1e6)
    ratio = ztsim.median_qps() / peer.median_qps() if peer.median_qps() else 0.0
    ratio_ub = ztsim.median_qps() / ub.median_qps() if ub.median_qps() else 0.0
    for server in servers:
        print(
            f"median of {rounds}: {server.name:8} {server.median_qps():9,.0f} qps, "
            f"server CPU {server.median_cpu_us():5.1f} us/query"
        )
    print(f"ratio ztsim/dnsmasq: {ratio:.2f}, ztsim/unbound: {ratio_ub:.2f} (targets >= 1.0)")
    print(f"ztsim memory: {mb:.1f} MB per million domains (target <= 32)")
    print(
        json.dumps(
            {
                "quick": quick,
                "domains": count,
                "rounds": rounds,
                "workers": workers,
                "ztsim_qps": round(ztsim.median_qps()),
                "dnsmasq_qps": round(peer.median_qps()),
                "unbound_qps": round(ub.median_qps()),
                "ratio_vs_dnsmasq": round(ratio, 3),
                "ratio_vs_unbound": round(ratio_ub, 3),
                "ztsim_cpu_us_per_query": round(ztsim.median_cpu_us(), 1),
                "dnsmasq_cpu_us_per_query": round(peer.median_cpu_us(), 1),
                "unbound_cpu_us_per_query": round(ub.median_cpu_us(), 1),
                "mb_per_million_domains": round(mb, 1),
                "reload_s": round(reload_s, 2),
            }
        )
    )


def _reload(
    tmp: Path, names: list[str], port: int, queries: Path, window: float
) -> tuple[float, int]:
    """Change the list under load; seconds until the change is served, lost queries meanwhile."""
    marker = "reload-marker.bench.test"
    result: list[Load] = []
    perf = threading.Thread(target=lambda: result.append(dnsperf(port, queries, window)))
    perf.start()
    time.sleep(1)
    started = time.monotonic()
    _write_blocklist(tmp / "blocklist.hosts", [marker, *names[1:]])
    # Every worker must serve the new list: each query has a fresh source port, so
    # SO_REUSEPORT spreads them; 30 blocked answers in a row means all workers swapped.
    in_a_row, first_of_run = 0, 0.0
    while in_a_row < 30 and time.monotonic() - started < 60:
        try:
            served = blocked(query(port, marker, random.choice(SOURCES)))
        except OSError:
            served = False
        if served and in_a_row == 0:
            first_of_run = time.monotonic()
        in_a_row = in_a_row + 1 if served else 0
        time.sleep(0.01)
    reload_s = first_of_run - started if in_a_row >= 30 else float("inf")
    perf.join()
    return reload_s, result[0].lost if result else -1


if __name__ == "__main__":
    main()
