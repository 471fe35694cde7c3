"""RADIUS Access-Requests per second, ztsim against FreeRADIUS, and revocation latency.

The same radclient load goes to each server in one run: 20,000 Access-Requests,
200 in flight, 10,000 distinct IMSIs (each request carries 3GPP-IMSI, 3GPP-IMEISV,
the APN and a Message-Authenticator). ztsim decides each from its snapshot, hands
out an address from the org pool and records a decision event; FreeRADIUS (Debian
`freeradius`, generated minimal config, `files` module with a users file of the same
IMSIs) accepts each with a fixed Framed-IP-Address.

The peer's Access-Accepts carry what ztsim's do (a Message-Authenticator, the
BlastRADIUS defence, and MS-Primary-DNS-Server), so radclient does the same work per
reply for both: radclient is the bottleneck of this load, and checking a
Message-Authenticator and decoding one more attribute cost it about 3% of its rate. After
every window it sends it walks its whole list of requests not yet answered, with a
select() per entry: N requests at P in flight cost it N*N/(2P) + 1.5N + 1 select calls,
1,030,001 for 20,000 at 200, whichever server answers (strace -c, the same count against
ztsim and FreeRADIUS), so a server that answers each window within a walk only meets
radclient's ceiling. Each round's `radclient busy` (its CPU seconds per second, in the
JSON `radclient_busy_*`) shows it: 1.0 is that ceiling. A second FreeRADIUS with the
minimal reply (Framed-IP-Address and Session-Timeout only) is measured too and reported
beside it.

radclient runs on one CPU and the server under test on the others (see `split_cpus`),
as if the gateway were another machine; `--shared-cpus` lets them share. The load runs
`--rounds` times per server (7 by default, after one load each that is not counted), in
turn, and the medians are compared: single runs here vary by 10% and more, and a
FreeRADIUS run now and then loses requests to radclient's 5 s retry. Each server's CPU
time per request is reported too (ztsim's includes writing that round's decision events).
Then the revocation latency: the time from the API call that suspends a SIM to its
Disconnect-Request arriving at a CoA receiver, over REVOCATIONS SIMs with live sessions.

Accounting too: ACCT_REQUESTS Accounting-Requests (a Start, then a Stop, for each of
ACCT_SESSIONS sessions, new ones each round), ACCT_IN_FLIGHT in flight, answered per
second. ztsim runs as `ztsim up` does on the embedded SQLite: it answers each once the
batch of datagrams it came in is in its accounting journal (one write(2) per batch), and
commits the sessions and events to SQLite (WAL mode) within about 20 ms (these Starts
carry no Framed-IP-Address: one that gives a session its address is answered after its
commit, so that the DNS gateway knows the address before the device asks); the FreeRADIUS
peer answers once its `detail` module has written the request to its detail file.
Neither syncs to the disk per request: both survive the server process's crash, neither
a power cut. Every round's Stops are then checked in ztsim's session table (after one
last flush: on a slow machine the writer had not yet committed 6,400 of the last round's
when the count was taken). radclient keeps its core busy for both (about 55-60 us of
its CPU a reply here, the select calls above), so this figure is radclient's ceiling
whenever both servers keep up with it; the lean generator below shows what each server
itself costs. (Answered after the commit instead, as with a database server, radclient
reached about 8,500-13,000 a second: replies in bursts, a commit's worth at a time, cost
radclient more walks over its list per reply.)

CPU per request, with a load generator that is not the bottleneck: radclient is, at
about 10,000 requests per second here, so the rates above are partly its own. The
simulator's lean generator (`ztsim.simulator.radius_load`: requests and their
authenticators computed before the clock starts, sendmmsg/recvmmsg batches, a few
microseconds of client CPU per request, reported) sends the same Access-Requests, IN_FLIGHT
in flight, to ztsim and to the FreeRADIUS peer, `--lean-rounds` times in turn (5 by
default), in a child process on the load CPU; then ACCT_REQUESTS new Accounting-Requests
the same way. A server's CPU is counted from the moment the child has made its datagrams
(not while it starts) to the end of its load, and, for ztsim, of that round's commit.
Each server's CPU microseconds per request are compared
(`cpu_ratio_vs_freeradius`, target <= 1.0). Both record every request: ztsim its
decision event (counted in its CPU, flushed each round), the FreeRADIUS peer the reply
to each Access-Request in a detail file (`reply_log` in post-auth) and each
Accounting-Request in another; the minimal-reply FreeRADIUS records nothing. Both
servers' sockets ask for 4 MiB receive buffers (FreeRADIUS `recv_buff`): with the
kernel's default 208 KiB, 200 requests sent in sendmmsg bursts overflow FreeRADIUS's
queue and are dropped (UDP RcvbufErrors), which radclient's slow pace never showed.

Loopback only, high ports. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, update

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.db.engine import make_engine, upgrade
from ztsim.heap import freeze_startup
from ztsim.identifiers import Iccid, Imei
from ztsim.identity import repository as identities
from ztsim.identity import token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role
from ztsim.inventory import service as inventory
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.radius import (
    AcctStatusType,
    Attribute,
    Code,
    FramedProtocol,
    Packet,
    RatType,
    SharedSecret,
    encode_reply,
    make_reply,
    sign_request,
)
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.serve.service import AaaService, AaaSettings
from ztsim.radius.store import registry
from ztsim.sealing import Sealer
from ztsim.simulator.radius_load import RadiusLoad, precompute


class RunningAaa:
    """The AAA role on its own event loop thread, as `ztsim up` runs it beside the API."""

    def __init__(self, engine: Engine, sealer: Sealer, journal_dir: Path | None) -> None:
        settings = AaaSettings(
            auth_port=0,
            acct_port=0,
            reply=ReplySettings(dns_primary=DNS_PRIMARY),
            journal_dir=journal_dir,
        )
        # As node/radius.py wires it: the service writes through `for_writing` itself.
        self.service = AaaService(engine, sealer, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.run(self.service.start())
        self.auth_port, self.acct_port = self.server.auth_port, self.server.acct_port
        # As node/radius.py does once it serves: full collections skip the start-up heap.
        freeze_startup()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def flush(self) -> None:
        self.run(self.service.flush())

    def close(self) -> None:
        self.run(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


REQUESTS = 20_000
ACCT_SESSIONS = 10_000
ACCT_REQUESTS = 2 * ACCT_SESSIONS
ACCT_IN_FLIGHT = 200
DNS_PRIMARY = "192.0.2.53"
IN_FLIGHT = 200
LEAN_TIMEOUT = 5.0  # seconds before the lean generator counts a request lost
SIMS = 10_000
REVOCATIONS = 50
APN = "corp.apn"
SECRET = "bench-" + secrets.token_hex(16)
FREERADIUS = shutil.which("freeradius")
T = TypeVar("T")
RADCLIENT = shutil.which("radclient")


def imsi(n: int) -> str:
    return f"00101{n:010d}"


def imeisv(n: int) -> str:
    return f"35{n:012d}01"


def imei(n: int) -> str:
    return Imei.with_check_digit(f"35{n:012d}").value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(engine: Engine, sealer: Sealer, coa_port: int) -> tuple[str, list[str]]:
    """An org with SIMS active SIMs, each bound to its own device; returns org id, ICCIDs."""
    now = datetime.now(UTC)
    rows = ["ICCID,IMSI,Ki,OPc"]
    iccids = []
    for n in range(SIMS):
        iccid = Iccid.with_check_digit(f"8944001{n:011d}").value
        iccids.append(iccid)
        rows.append(f"{iccid},{imsi(n)},{os.urandom(16).hex()},{os.urandom(16).hex()}")
    with engine.begin() as conn:
        org = identities.create_org(conn, "Bench", "bench", now)
        person = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="P", email=None, external_id=None, now=now
        )
        inventory.import_stock(
            conn,
            sealer,
            org.id,
            parse_stock_csv("\n".join(rows)),
            filename="bench.csv",
            kind=SimKind.PHYSICAL,
            actor="bench",
            now=now,
        )
        devices = [
            {
                "id": new_id(),
                "org_id": org.id,
                "imei": imei(n),
                "name": "",
                "created_at": now,
            }
            for n in range(SIMS)
        ]
        conn.execute(insert(schema.devices), devices)
        # Bulk: the lifecycle rules are not what is measured here.
        for n, device in enumerate(devices):
            conn.execute(
                update(schema.sims)
                .where(schema.sims.c.imsi == imsi(n))
                .values(state="active", identity_id=person.id, device_id=device["id"])
            )
        registry.create_gateway(
            conn,
            sealer,
            org.id,
            name="pgw",
            address="127.0.0.1",
            secret=SECRET,
            apns=[APN],
            require_message_authenticator=True,
            coa_port=coa_port,
            now=now,
        )
        registry.create_pool(conn, org.id, cidr="10.64.0.0/16", static_cidr=None, now=now)
    return org.id, iccids


def request_file(directory: Path) -> Path:
    path = directory / "requests.txt"
    with path.open("w") as out:
        for i in range(REQUESTS):
            n = i % SIMS
            out.write(
                f'User-Name = "{imsi(n)}"\n3GPP-IMSI = "{imsi(n)}"\n'
                f'3GPP-IMEISV = "{imeisv(n)}"\nCalled-Station-Id = "{APN}"\n'
                "Framed-Protocol = GPRS-PDP-Context\n3GPP-RAT-Type = EUTRAN\n"
                "Message-Authenticator = 0x00\n\n"
            )
    return path


def acct_file(directory: Path, prefix: str) -> Path:
    """A Start for each of ACCT_SESSIONS sessions, then a Stop for each (no address: the
    bench's SIMs hold none)."""
    path = directory / f"acct-{prefix}.txt"
    with path.open("w") as out:
        for i in range(ACCT_REQUESTS):
            n = i % ACCT_SESSIONS
            status = "Start" if i < ACCT_SESSIONS else "Stop"
            out.write(
                f'Acct-Status-Type = {status}\nAcct-Session-Id = "{prefix}-{n}"\n'
                f'User-Name = "{imsi(n % SIMS)}"\n3GPP-IMSI = "{imsi(n % SIMS)}"\n'
                f'3GPP-IMEISV = "{imeisv(n % SIMS)}"\nCalled-Station-Id = "{APN}"\n'
                "3GPP-RAT-Type = EUTRAN\n\n"
            )
    return path


def load(
    port: int,
    requests: Path,
    cpu: int | None,
    *,
    kind: str = "auth",
    count: int = REQUESTS,
    in_flight: int = IN_FLIGHT,
) -> tuple[float, int, float]:
    """Requests per second, the number of responses radclient counted as accepted (for
    accounting: every Accounting-Response), and radclient's CPU seconds per second of the
    run (1.0: it was the bottleneck); radclient on `cpu` if given."""
    assert RADCLIENT is not None
    # The only child this process reaps meanwhile is radclient.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            RADCLIENT,
            "-q",
            "-s",
            "-f",
            str(requests),
            "-p",
            str(in_flight),
            "-r",
            "3",
            "-t",
            "5",
            f"127.0.0.1:{port}",
            kind,
            SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if cpu is not None:
        # Before it has read its 20,000 requests, let alone sent one.
        os.sched_setaffinity(proc.pid, {cpu})
    output, _ = proc.communicate(timeout=600)
    elapsed = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = (used.ru_utime - children.ru_utime + used.ru_stime - children.ru_stime) / elapsed
    accepts = re.search(r"Accepted\s*:\s*(\d+)", output)
    return count / elapsed, int(accepts.group(1)) if accepts else -1, busy


def lean_requests(kind: str, prefix: str) -> tuple[Code, list[list[Attribute]]]:
    """The attributes of `request_file` (auth) or `acct_file` (acct), for the lean
    generator, which adds the authenticators."""
    if kind == "auth":
        return Code.ACCESS_REQUEST, [
            [
                make_attribute("User-Name", imsi(n)),
                make_attribute("3GPP-IMSI", imsi(n)),
                make_attribute("3GPP-IMEISV", imeisv(n)),
                make_attribute("Called-Station-Id", APN),
                make_attribute("Framed-Protocol", FramedProtocol.GPRS_PDP_CONTEXT),
                make_attribute("3GPP-RAT-Type", RatType.EUTRAN),
            ]
            for n in (i % SIMS for i in range(REQUESTS))
        ]
    requests = []
    for i in range(ACCT_REQUESTS):
        n = i % ACCT_SESSIONS
        status = AcctStatusType.START if i < ACCT_SESSIONS else AcctStatusType.STOP
        requests.append(
            [
                make_attribute("Acct-Status-Type", status),
                make_attribute("Acct-Session-Id", f"{prefix}-{n}"),
                make_attribute("User-Name", imsi(n % SIMS)),
                make_attribute("3GPP-IMSI", imsi(n % SIMS)),
                make_attribute("3GPP-IMEISV", imeisv(n % SIMS)),
                make_attribute("Called-Station-Id", APN),
                make_attribute("3GPP-RAT-Type", RatType.EUTRAN),
            ]
        )
    return Code.ACCOUNTING_REQUEST, requests


def lean_worker() -> None:
    """The child process of `lean_load`: its job on stdin, its result on stdout. A process
    of its own so that its CPU time is not counted as ztsim's (ztsim runs in the parent).
    It says "ready" once its datagrams are made and sends on the parent's "go"."""
    job = json.loads(sys.stdin.readline())
    code, requests = lean_requests(job["kind"], job["prefix"])
    datagrams = precompute(code, requests, SharedSecret(job["secret"]))
    load = RadiusLoad(
        ("127.0.0.1", job["port"]), datagrams, window=job["window"], timeout=LEAN_TIMEOUT
    )
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("the parent did not say go")
    result = load.run(deadline=300)
    print(
        json.dumps(
            {
                "rps": result.rps,
                "answered": result.answered,
                "accepted": result.accepted,
                "lost": result.lost,
                "client_cpu_us": result.client_cpu_us,
            }
        )
    )


def lean_load(
    port: int,
    cpu: int | None,
    *,
    kind: str = "auth",
    prefix: str = "",
    ready: Callable[[], float] = time.perf_counter,
) -> tuple[Any, float]:
    """One run of the lean generator (a child process, on `cpu` if given): REQUESTS
    Access-Requests or ACCT_REQUESTS Accounting-Requests, IN_FLIGHT in flight. Returns its
    result and what `ready` gave when called: once the child has made its datagrams, just
    before it sends the first. A server's CPU read there leaves out the seconds it idled
    while the child started (an idle ztsim polls its change feed: ~12 ms of CPU a second
    here, 1-2 us a request)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--lean-worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    if cpu is not None:
        # Long before its first request: it still has its imports and datagrams to make.
        os.sched_setaffinity(proc.pid, {cpu})
    job = {"port": port, "kind": kind, "prefix": prefix, "secret": SECRET, "window": IN_FLIGHT}
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError("the lean load generator failed before it was ready")
    mark = ready()
    output, _ = proc.communicate("go\n", timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the lean load generator failed ({proc.returncode})")
    return json.loads(output.splitlines()[-1]), mark


def split_cpus() -> tuple[int | None, set[int] | None]:
    """One CPU for the load generator, the others for the server under test (either
    server in its turn), as if the gateway were another machine: radclient keeps a core
    busy on its own, and a server thread woken onto that core (or the load generator onto
    the server's) slows both, by chance and by run. None where there is one CPU or no
    affinity call."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None, None
    cpus = sorted(getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], set(cpus[1:])


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system, all threads) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FREERADIUS_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 100000
hostname_lookups = no
proxy_requests = no
log {{
	destination = stderr
	auth = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}}
thread pool {{
	start_servers = 4
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
	max_queue_size = 65536
}}
client local {{
	ipaddr = 127.0.0.1
	secret = {secret}
	require_message_authenticator = yes
}}
modules {{
	files {{
		filename = {d}/users
	}}
	detail {{
		filename = {d}/detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
		locking = no
	}}
	detail reply_log {{
		filename = {d}/reply-detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
		locking = no
	}}
}}
server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {port}
		recv_buff = 4194304
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {acct_port}
		recv_buff = 4194304
	}}
	authorize {{
		files
	}}
	accounting {{
		detail
	}}
	authenticate {{
	}}
	post-auth {{
{post_auth}	}}
}}
"""


def start_freeradius(
    directory: Path, port: int, acct_port: int, *, same_reply: bool = True
) -> subprocess.Popen[bytes]:
    """FreeRADIUS answering Access-Requests on `port` and accounting (written to its
    detail file) on `acct_port`; with `same_reply`, each Access-Accept is recorded too
    (`reply_log`, a detail file), as ztsim records each decision."""
    assert FREERADIUS is not None
    conf = directory / f"freeradius-{port}"
    conf.mkdir()
    (conf / "radiusd.conf").write_text(
        FREERADIUS_CONF.format(
            d=conf,
            secret=SECRET,
            port=port,
            acct_port=acct_port,
            post_auth="\t\treply_log\n" if same_reply else "",
        )
    )
    # FreeRADIUS computes a Message-Authenticator listed in the reply (RFC 3579 §3.2).
    extra = (
        f"\tMessage-Authenticator = 0x00,\n\tMS-Primary-DNS-Server = {DNS_PRIMARY},\n"
        if same_reply
        else ""
    )
    with (conf / "users").open("w") as users:
        for n in range(SIMS):
            users.write(
                f"{imsi(n)}\tAuth-Type := Accept\n{extra}"
                f"\tFramed-IP-Address = 10.64.{n // 250}.{n % 250 + 1},\n"
                "\tSession-Timeout = 86400\n\n"
            )
    proc = subprocess.Popen(
        [FREERADIUS, "-f", "-d", str(conf), "-l", "stdout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        if "Ready to process requests" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("FreeRADIUS did not start")


def revocation_latency(
    running: RunningAaa,
    engine: Engine,
    sealer: Sealer,
    org_id: str,
    iccids: list[str],
    coa: socket.socket,
) -> list[float]:
    """API call (suspend) to Disconnect-Request received, per SIM, in milliseconds."""
    with engine.begin() as conn:
        _, token = token_store.issue(
            conn,
            org_id,
            name="bench",
            role=Role.ADMIN,
            identity_id=None,
            created_by="bench",
            now=datetime.now(UTC),
        )
    auth = {"Authorization": f"Bearer {token}"}
    secret = SharedSecret(SECRET)
    # The suspend's commit publishes on the change feed; the AAA role's follower, in
    # this process, is woken by it.
    app = create_app(ApiContext(engine, sealer))
    samples = []
    with (
        TestClient(app) as api,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gw,
    ):
        gw.bind(("127.0.0.1", 0))
        gw.settimeout(5)
        for k in range(REVOCATIONS):
            n = SIMS - 1 - k
            start = Packet(
                Code.ACCOUNTING_REQUEST,
                k % 256,
                bytes(16),
                (
                    make_attribute("Acct-Status-Type", 1),
                    make_attribute("Acct-Session-Id", f"rev-{k}"),
                    make_attribute("User-Name", imsi(n)),
                    make_attribute("3GPP-IMSI", imsi(n)),
                    make_attribute("3GPP-IMEISV", imeisv(n)),
                    make_attribute("Called-Station-Id", APN),
                ),
            )
            gw.sendto(sign_request(start, secret).encode(), ("127.0.0.1", running.acct_port))
            gw.recv(4096)
            began = time.perf_counter()
            r = api.post(
                f"/api/v1/sims/{iccids[n]}/suspend", json={"reason": "bench"}, headers=auth
            )
            assert r.status_code == 200, r.text
            datagram, peer = coa.recvfrom(4096)
            samples.append((time.perf_counter() - began) * 1000)
            request = Packet.decode(datagram)
            coa.sendto(
                encode_reply(make_reply(request, Code.DISCONNECT_ACK), request, secret), peer
            )
    return samples


def acct_stopped(engine: Engine) -> int:
    """Accounting sessions of the rounds (and the warm-up) that ztsim recorded stopped."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(schema.radius_sessions)
                .where(schema.radius_sessions.c.stopped_at.is_not(None))
                .where(schema.radius_sessions.c.acct_session_id.not_like("rev-%"))
            ).scalar_one()
        )


class Server:
    """A server under load: where to send, whose CPU time to read, what it did."""

    def __init__(self, name: str, port: int, proc: subprocess.Popen[bytes] | None) -> None:
        self.name = name
        self.port = port
        self.proc = proc  # None: ztsim, in this process
        self.rps: list[float] = []
        self.cpu: list[float] = []
        self.acct_rps: list[float] = []
        # radclient's CPU seconds per second of each round (auth, acct): 1.0 is its ceiling.
        self.client_busy: list[float] = []
        self.acct_client_busy: list[float] = []
        # The lean generator's rounds: rates, server and client CPU us per request.
        self.lean_rps: list[float] = []
        self.lean_cpu_us: list[float] = []
        self.lean_client_us: list[float] = []
        self.lean_acct_rps: list[float] = []
        self.lean_acct_cpu_us: list[float] = []

    def cpu_seconds(self) -> float:
        return time.process_time() if self.proc is None else process_cpu(self.proc.pid)

    def median_rps(self) -> float:
        return statistics.median(self.rps)

    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu) / REQUESTS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=int, default=7, help="loads per server, in turn; medians compared"
    )
    parser.add_argument(
        "--lean-rounds",
        type=int,
        default=5,
        help="lean-generator loads per server (ztsim, FreeRADIUS), in turn; medians compared",
    )
    parser.add_argument("--lean-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--shared-cpus",
        action="store_true",
        help="let radclient and the server share all CPUs (no affinity set)",
    )
    args = parser.parse_args()
    if args.lean_worker:
        lean_worker()
        return
    if args.rounds < 1 or args.lean_rounds < 1:
        parser.error("--rounds and --lean-rounds must be at least 1")
    if RADCLIENT is None:
        sys.exit("needs radclient (Debian package freeradius-utils)")
    load_cpu, server_cpus = (None, None) if args.shared_cpus else split_cpus()
    if server_cpus is not None:
        # Before any thread starts: ztsim's threads and FreeRADIUS inherit it.
        os.sched_setaffinity(0, server_cpus)
        print(f"radclient on CPU {load_cpu}, the server under test on CPUs {sorted(server_cpus)}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        engine = make_engine(f"sqlite:///{directory / 'ztsim.db'}")
        upgrade(engine)
        sealer = Sealer(os.urandom(32))
        coa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        coa.bind(("127.0.0.1", 0))
        coa.settimeout(5)
        t = time.perf_counter()
        org_id, iccids = seed(engine, sealer, coa.getsockname()[1])
        print(f"seeded {SIMS} active SIMs with bound devices in {time.perf_counter() - t:.1f} s")
        requests = request_file(directory)
        # As `ztsim up` runs it on the embedded SQLite: accounting journaled in the data
        # directory.
        running = RunningAaa(engine, sealer, directory / "radius-journal")
        ztsim = Server("ztsim", running.auth_port, None)
        servers = [ztsim]
        acct_ports = {"ztsim": running.acct_port}
        if FREERADIUS is None:
            print("FreeRADIUS: not installed (Debian package freeradius); no comparison")
        else:
            for name, same_reply in (("FreeRADIUS", True), ("FreeRADIUS minimal", False)):
                port, acct_port = free_port(), free_port()
                proc = start_freeradius(directory, port, acct_port, same_reply=same_reply)
                servers.append(Server(name, port, proc))
                acct_ports[name] = acct_port
        try:
            # One load per server first, not counted: the first requests of each SIM find
            # cold caches and no address yet (ztsim), and cold pages (both).
            for server in servers:
                load(server.port, requests, load_cpu)
            running.flush()
            # Rounds go through the servers in turn, so a drift in the machine's speed
            # touches each; the medians are compared. An idle server uses next to no CPU
            # (ztsim polls its change feed, ~1% of a core).
            for n in range(args.rounds):
                for server in servers:
                    cpu = server.cpu_seconds()
                    rps, accepts, busy = load(server.port, requests, load_cpu)
                    if server is ztsim:
                        running.flush()  # this round's records count as its work
                    server.cpu.append(server.cpu_seconds() - cpu)
                    server.rps.append(rps)
                    server.client_busy.append(busy)
                    print(
                        f"round {n + 1}: {server.name:18} {rps:8.0f} Access-Requests/s "
                        f"({accepts} accepts, radclient busy {busy:.2f})"
                    )
            # The lean generator: ztsim and the FreeRADIUS peer, in turn, Access- then
            # Accounting-Requests (new sessions each round) in each round.
            acct_servers = servers[:2]
            for server in acct_servers:
                lean_load(server.port, load_cpu)
                lean_load(acct_ports[server.name], load_cpu, kind="acct", prefix="Lw")
            running.flush()
            for n in range(args.lean_rounds):
                for server in acct_servers:
                    for kind, port, count in (
                        ("auth", server.port, REQUESTS),
                        ("acct", acct_ports[server.name], ACCT_REQUESTS),
                    ):
                        got, cpu = lean_load(
                            port, load_cpu, kind=kind, prefix=f"L{n}", ready=server.cpu_seconds
                        )
                        if server is ztsim:
                            running.flush()
                        cpu_us = (server.cpu_seconds() - cpu) / count * 1e6
                        if kind == "auth":
                            server.lean_rps.append(got["rps"])
                            server.lean_cpu_us.append(cpu_us)
                            server.lean_client_us.append(got["client_cpu_us"])
                        else:
                            server.lean_acct_rps.append(got["rps"])
                            server.lean_acct_cpu_us.append(cpu_us)
                        print(
                            f"lean round {n + 1}: {server.name:18} {kind} {got['rps']:8.0f}/s "
                            f"({got['accepted']} accepted, {got['lost']} lost), server CPU "
                            f"{cpu_us:5.1f} us, client CPU {got['client_cpu_us']:4.1f} us "
                            "per request"
                        )
            # Accounting: ztsim and the FreeRADIUS peer (the detail file), in turn.
            warm = acct_file(directory, "w")
            for server in acct_servers:
                load(acct_ports[server.name], warm, load_cpu, kind="acct", count=ACCT_REQUESTS)
            for n in range(args.rounds):
                requests_n = acct_file(directory, f"r{n}")
                for server in acct_servers:
                    rps, answered, busy = load(
                        acct_ports[server.name],
                        requests_n,
                        load_cpu,
                        kind="acct",
                        count=ACCT_REQUESTS,
                        in_flight=ACCT_IN_FLIGHT,
                    )
                    server.acct_rps.append(rps)
                    server.acct_client_busy.append(busy)
                    print(
                        f"round {n + 1}: {server.name:18} {rps:8.0f} Accounting-Requests/s "
                        f"({answered} answered, radclient busy {busy:.2f})"
                    )
                requests_n.unlink()
            stopped = acct_stopped(engine)
            running.flush()  # the last round's, if the writer has not committed them yet
            committed = acct_stopped(engine)
            print(
                f"accounting sessions stopped in ztsim's table: {stopped}, "
                f"{committed} after a flush"
            )
            stopped = committed
            expected = ACCT_SESSIONS * (args.rounds + 1 + args.lean_rounds + 1)
            assert stopped >= expected, "answered accounting is missing"
            latencies = revocation_latency(running, engine, sealer, org_id, iccids, coa)
        finally:
            running.close()
            coa.close()
            for server in servers:
                if server.proc is not None:
                    server.proc.terminate()
                    server.proc.wait(timeout=10)
        written = running.service.writer.written_events
        # Every Access-Request has its decision event (plus the revocation runs' own).
        decisions = REQUESTS * (args.rounds + 1 + args.lean_rounds + 1)
        print(f"events written: {written} (decisions: {decisions})")
        assert written >= decisions, "decision events are missing"
        for server in servers:
            print(
                f"median of {args.rounds}: {server.name:18} {server.median_rps():8.0f}/s, "
                f"server CPU {server.median_cpu_us():5.1f} us per request"
            )
        peer = servers[1] if len(servers) > 1 else None
        minimal = servers[2] if len(servers) > 2 else None
        ratio = ztsim.median_rps() / peer.median_rps() if peer else None
        ratio_minimal = ztsim.median_rps() / minimal.median_rps() if minimal else None
        if ratio is not None and ratio_minimal is not None:
            print(
                f"ratio ztsim/FreeRADIUS: {ratio:.2f} (target >= 1.0); "
                f"against the minimal reply: {ratio_minimal:.2f}"
            )
        acct_ztsim = statistics.median(ztsim.acct_rps)
        acct_peer = statistics.median(peer.acct_rps) if peer else None
        acct_ratio = acct_ztsim / acct_peer if acct_peer else None
        print(
            f"accounting, median of {args.rounds}: ztsim {acct_ztsim:.0f}/s"
            + (
                f", FreeRADIUS (detail file) {acct_peer:.0f}/s, ratio {acct_ratio:.2f}"
                if acct_peer and acct_ratio
                else ""
            )
        )
        median = statistics.median
        lean_ztsim_cpu = median(ztsim.lean_cpu_us)
        lean_peer_cpu = median(peer.lean_cpu_us) if peer else None
        cpu_ratio = lean_ztsim_cpu / lean_peer_cpu if lean_peer_cpu else None
        acct_cpu_ratio = (
            median(ztsim.lean_acct_cpu_us) / median(peer.lean_acct_cpu_us) if peer else None
        )
        lean_client = median(ztsim.lean_client_us + (peer.lean_client_us if peer else []))
        print(
            f"lean generator, median of {args.lean_rounds}: ztsim {median(ztsim.lean_rps):.0f}/s "
            f"at {lean_ztsim_cpu:.1f} us CPU per Access-Request"
            + (
                f", FreeRADIUS {median(peer.lean_rps):.0f}/s at {lean_peer_cpu:.1f} us; "
                f"CPU ratio {cpu_ratio:.2f} (target <= 1.0), accounting {acct_cpu_ratio:.2f}"
                if peer and lean_peer_cpu and cpu_ratio and acct_cpu_ratio
                else ""
            )
            + f"; the generator's own CPU {lean_client:.1f} us per request"
        )
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"revocation, API call to Disconnect-Request: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        engine.dispose()

    def rounded(value: float | None, digits: int = 0) -> float | None:
        return None if value is None else round(value, digits or None)

    print(
        json.dumps(
            {
                "ztsim_rps": round(ztsim.median_rps()),
                "freeradius_rps": rounded(peer.median_rps() if peer else None),
                "ratio_vs_freeradius": rounded(ratio, 3),
                "revoke_p50_ms": round(p50, 2),
                "revoke_p99_ms": round(p99, 2),
                "freeradius_minimal_reply_rps": rounded(minimal.median_rps() if minimal else None),
                "ratio_vs_freeradius_minimal_reply": rounded(ratio_minimal, 3),
                "ztsim_cpu_us_per_request": round(ztsim.median_cpu_us(), 1),
                "freeradius_cpu_us_per_request": rounded(peer.median_cpu_us() if peer else None, 1),
                "ztsim_rps_rounds": [round(r) for r in ztsim.rps],
                "freeradius_rps_rounds": [round(r) for r in peer.rps] if peer else [],
                "cpus": "split" if load_cpu is not None else "shared",
                "acct_rps": round(acct_ztsim),
                "freeradius_acct_rps": rounded(acct_peer),
                "acct_ratio_vs_freeradius": rounded(acct_ratio, 3),
                "radclient_busy_ztsim": round(median(ztsim.client_busy), 3),
                "radclient_busy_freeradius": rounded(median(peer.client_busy) if peer else None, 3),
                "radclient_busy_acct_ztsim": round(median(ztsim.acct_client_busy), 3),
                "radclient_busy_acct_freeradius": rounded(
                    median(peer.acct_client_busy) if peer else None, 3
                ),
                "cpu_ratio_vs_freeradius": rounded(cpu_ratio, 3),
                "ztsim_cpu_us_per_request_lean": round(lean_ztsim_cpu, 1),
                "freeradius_cpu_us_per_request_lean": rounded(lean_peer_cpu, 1),
                "ztsim_rps_lean": round(median(ztsim.lean_rps)),
                "freeradius_rps_lean": rounded(median(peer.lean_rps) if peer else None),
                "lean_client_cpu_us_per_request": round(lean_client, 1),
                "ztsim_acct_cpu_us_per_request_lean": round(median(ztsim.lean_acct_cpu_us), 1),
                "freeradius_acct_cpu_us_per_request_lean": rounded(
                    median(peer.lean_acct_cpu_us) if peer else None, 1
                ),
                "acct_cpu_ratio_vs_freeradius": rounded(acct_cpu_ratio, 3),
                "ztsim_acct_rps_lean": round(median(ztsim.lean_acct_rps)),
                "freeradius_acct_rps_lean": rounded(median(peer.lean_acct_rps) if peer else None),
                "lean_rounds": args.lean_rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
