"""The DNS benchmark's peers (dnsmasq, unbound), its load (dnsperf, probes) and CPU accounting.

bench/dns.py compares ztsim with two servers people run for block lists: dnsmasq (one
thread, the list as a hosts file) and unbound (Debian's `unbound`, one `local-zone` per
listed name, as many threads as ztsim has workers). Each peer is configured to give the
answers ztsim gives: 0.0.0.0 for a listed name (ztsim's default block mode, NULL_IP), and
the upstream's answer for an allowed name (unbound forwards to the same upstream dnsmasq
as ztsim and caches it, as ztsim does; the reference dnsmasq has the names as hosts).

`Server` keeps one server's figures per round (qps from dnsperf, CPU per answered query).
Server CPU per query comes from /proc/<pid>/stat (utime + stime, proc(5) fields 14 and
15) summed over the server's process tree: ztsim forks its workers, whose CPU time
would reach the parent's cutime only once they are reaped.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def dnsmasq(port: int, *hosts: Path) -> subprocess.Popen[bytes]:
    """A foreground dnsmasq on loopback answering from hosts files only."""
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


UNBOUND_CONF = """\
server:
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{directory}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    num-threads: {threads}
    so-reuseport: yes
    access-control: 127.0.0.0/8 allow
    # The socket buffers ztsim asks for (ztsim.datagram.SOCKET_BUFFER): bursts queue in
    # the kernel instead of being dropped at the default 208 KiB.
    so-rcvbuf: 4m
    so-sndbuf: 4m
    # No DNSSEC validation: ztsim and dnsmasq do none; the validator module would add
    # work per answer that the other two do not do.
    module-config: "iterator"
    # The upstream is on loopback, which unbound refuses to query unless told.
    do-not-query-localhost: no
    # "test." is one of unbound's default static zones (RFC 6761); the allowed names
    # live below it, so they must reach the forwarder.
    local-zone: "test." nodefault
    include: "{blocklist}"

forward-zone:
    name: "allowed.test."
    forward-addr: 127.0.0.1@{upstream}
"""


def unbound_blocklist(path: Path, names: list[str]) -> None:
    """One `local-zone: always_null` per name: 0.0.0.0 for A, :: for AAAA (unbound.conf(5))."""
    with path.open("w") as out:
        out.writelines(f'local-zone: "{name}." always_null\n' for name in names)


def unbound(
    directory: Path, port: int, threads: int, upstream: int, blocklist: Path
) -> subprocess.Popen[bytes]:
    """A foreground unbound with a private config in `directory`."""
    conf = directory / "unbound.conf"
    conf.write_text(
        UNBOUND_CONF.format(
            directory=directory, port=port, threads=threads, upstream=upstream, blocklist=blocklist
        )
    )
    binary = shutil.which("unbound") or "/usr/sbin/unbound"
    return subprocess.Popen(
        [binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@dataclass(frozen=True)
class Load:
    """What the parallel dnsperf runs reported, added up."""

    qps: float
    completed: int
    lost: int


def dnsperf(port: int, queries: Path, seconds: float) -> Load:
    """One dnsperf per source address, run in parallel against one server."""
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
    qps, completed, lost = 0.0, 0, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 30)
        qps += _figure(r"Queries per second:\s+([\d.]+)", out)
        completed += int(_figure(r"Queries completed:\s+(\d+)", out))
        lost += int(_figure(r"Queries lost:\s+(\d+)", out))
    return Load(qps, completed, lost)


def _figure(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return text.rsplit(")", 1)[1].split()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system, all threads) used so far by `root` and its descendants."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is None:
            continue
        # After the name: state is field 3, ppid 4, utime 14 and stime 15 (proc(5)).
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    members = {root}
    grew = True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in members} - members
        members |= found
        grew = bool(found)
    return sum(ticks.get(pid, 0) for pid in members) / os.sysconf("SC_CLK_TCK")


def query(port: int, name: str, source: str = SOURCES[0]) -> bytes:
    """One A query for `name` from `source`; the raw reply (OSError after a second)."""
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    wire = b"\x42\x42\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1)
        sock.sendto(wire, ("127.0.0.1", port))
        return sock.recvfrom(4096)[0]


def blocked(reply: bytes) -> bool:
    return reply.endswith(b"\x00\x00\x00\x00")  # 0.0.0.0 as the last answer's RDATA


def wait_answering(port: int, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            query(port, name)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not answer within {timeout} s")


@dataclass
class Server:
    """One server under test and its figures, one entry per round."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    qps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    def measure(self, queries: Path, seconds: float) -> None:
        before = tree_cpu(self.proc.pid)
        load = dnsperf(self.port, queries, seconds)
        used = tree_cpu(self.proc.pid) - before
        self.qps.append(load.qps)
        self.cpu_us.append(used / max(load.completed, 1) * 1e6)
        self.lost.append(load.lost)

    def median_qps(self) -> float:
        return statistics.median(self.qps)

    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu_us)
