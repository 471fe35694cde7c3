"""DNS gateway benchmark: ztsim (all workers) against dnsmasq on the same 1M-name block list.

Run: .venv/bin/python bench/dns.py [--domains N] [--seconds S] [--workers W]
Needs dnsperf, dnsmasq and kdig (Debian: dnsperf, dnsmasq-base, knot-dnsutils). Loopback only.

- A deterministic N-name block list (hosts format) and 10,000 live sessions in the session
  table (addresses 127.1.x.y, plus the dnsperf source addresses 127.0.0.2-5).
- Queries: half blocked names, half allowed names (answered by an upstream dnsmasq for
  ztsim, warmed into ztsim's cache first; answered locally by the reference dnsmasq).
- dnsperf from 4 loopback source addresses in parallel, against each server in turn.
- Memory: resident growth of a process that loads the policy and keeps only the snapshot.
- Reload: the list changes while dnsperf runs; time until a new name is blocked, and
  dnsperf's lost-query count over that window.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
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


def _query(port: int, name: str, source: str = SOURCES[0]) -> bytes:
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    wire = b"\x42\x42\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1)
        sock.sendto(wire, ("127.0.0.1", port))
        return sock.recvfrom(4096)[0]


def _blocked(reply: bytes) -> bool:
    return reply.endswith(b"\x00\x00\x00\x00")  # 0.0.0.0 as the last answer's RDATA


def _wait_answering(port: int, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _query(port, name)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not answer within {timeout} s")


def _dnsmasq(port: int, *hosts: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    args = [
        binary,
        "--keep-in-foreground",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--conf-file=/dev/null",
        "--pid-file=",
        f"--user={getpass.getuser()}",
        "--local-ttl=3600",
        *(f"--addn-hosts={h}" for h in hosts),
    ]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _dnsperf(port: int, queries: Path, seconds: float) -> tuple[float, int]:
    """Total qps and lost queries of one dnsperf per source address, run in parallel."""
    procs = [
        subprocess.Popen(
            [
                *("dnsperf", "-s", "127.0.0.1", "-p", str(port), "-a", source),
                *("-d", str(queries), "-l", str(seconds), "-c", "8", "-q", "200", "-t", "2"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for source in SOURCES
    ]
    qps, lost = 0.0, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 30)
        found = re.search(r"Queries per second:\s+([\d.]+)", out)
        missing = re.search(r"Queries lost:\s+(\d+)", out)
        qps += float(found.group(1)) if found else 0.0
        lost += int(missing.group(1)) if missing else 0
    return qps, lost


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
    args = parser.parse_args()
    for tool in ("dnsperf", "kdig"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.domains, args.seconds, args.workers)


def run(tmp: Path, count: int, seconds: float, workers: int) -> None:
    names = _names(count, 1)
    blocklist = tmp / "blocklist.hosts"
    _write_blocklist(blocklist, names)
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
    upstream_port, ztsim_port, ref_port = _free_port(), _free_port(), _free_port()
    print(f"domains: {count:,}; live sessions: {SESSIONS:,}; workers: {workers}")
    upstream = _dnsmasq(upstream_port, allowed_hosts)
    env |= {
        "ZTSIM_DNS_PORT": str(ztsim_port),
        "ZTSIM_DNS_UPSTREAMS": json.dumps([f"127.0.0.1:{upstream_port}"]),
        "ZTSIM_DNS_POLICY_FILE": str(policy),
        "ZTSIM_DNS_RELOAD_INTERVAL": "0.5",
    }
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "dns", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_answering(ztsim_port, allowed[0], 120)
        print(f"ztsim ready in {time.monotonic() - started:.1f} s")
        _dnsperf(ztsim_port, queries, 3)  # warm every worker's cache with the allowed names
        ztsim_qps, ztsim_lost = _dnsperf(ztsim_port, queries, seconds)
        print(f"ztsim: {ztsim_qps:,.0f} qps ({ztsim_lost} lost)")
        reload_s, reload_lost = _reload(tmp, names, ztsim_port, queries, seconds)
        print(f"reload of a changed {count:,}-name list: {reload_s:.2f} s, {reload_lost} lost")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        upstream.terminate()
        upstream.wait(timeout=10)
    _write_blocklist(blocklist, names)
    started = time.monotonic()
    reference = _dnsmasq(ref_port, blocklist, allowed_hosts)
    try:
        _wait_answering(ref_port, allowed[0], 120)
        print(f"dnsmasq ready in {time.monotonic() - started:.1f} s")
        dnsmasq_qps, dnsmasq_lost = _dnsperf(ref_port, queries, seconds)
        print(f"dnsmasq: {dnsmasq_qps:,.0f} qps ({dnsmasq_lost} lost)")
    finally:
        reference.terminate()
        reference.wait(timeout=10)
    mb = _memory_mb(policy) / (count / 1e6)
    ratio = ztsim_qps / dnsmasq_qps if dnsmasq_qps else 0.0
    print(f"ratio ztsim/dnsmasq: {ratio:.2f} (target >= 1.0)")
    print(f"ztsim memory: {mb:.1f} MB per million domains (target <= 32)")
    print(
        json.dumps(
            {
                "ztsim_qps": round(ztsim_qps),
                "dnsmasq_qps": round(dnsmasq_qps),
                "ratio_vs_dnsmasq": round(ratio, 3),
                "mb_per_million_domains": round(mb, 1),
                "reload_s": round(reload_s, 2),
            }
        )
    )


def _reload(
    tmp: Path, names: list[str], port: int, queries: Path, seconds: float
) -> tuple[float, int]:
    """Change the list under load; seconds until the change is served, lost queries meanwhile."""
    marker = "reload-marker.bench.test"
    result: list[tuple[float, int]] = []
    perf = threading.Thread(target=lambda: result.append(_dnsperf(port, queries, seconds + 10)))
    perf.start()
    time.sleep(1)
    started = time.monotonic()
    _write_blocklist(tmp / "blocklist.hosts", [marker, *names[1:]])
    # Every worker must serve the new list: each query has a fresh source port, so
    # SO_REUSEPORT spreads them; 30 blocked answers in a row means all workers swapped.
    in_a_row, first_of_run = 0, 0.0
    while in_a_row < 30 and time.monotonic() - started < 60:
        try:
            blocked = _blocked(_query(port, marker, random.choice(SOURCES)))
        except OSError:
            blocked = False
        if blocked and in_a_row == 0:
            first_of_run = time.monotonic()
        in_a_row = in_a_row + 1 if blocked else 0
        time.sleep(0.01)
    reload_s = first_of_run - started if in_a_row >= 30 else float("inf")
    perf.join()
    return reload_s, result[0][1] if result else -1


if __name__ == "__main__":
    main()
