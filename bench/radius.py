"""RADIUS Access-Requests per second, ztsim against FreeRADIUS, and revocation latency.

The same radclient load goes to both servers in one run: 20,000 Access-Requests,
200 in flight, 10,000 distinct IMSIs (each request carries 3GPP-IMSI, 3GPP-IMEISV,
the APN and a Message-Authenticator). ztsim decides each from its snapshot, hands
out an address from the org pool and records a decision event; FreeRADIUS (Debian
`freeradius`, generated minimal config, `files` module with a users file of the same
IMSIs) accepts each with a fixed Framed-IP-Address. The load runs `--rounds` times per
server (3 by default), alternating, and the medians are compared: single runs here vary
by 20% and more, and a FreeRADIUS run now and then loses requests to radclient's 5 s
retry. Then the revocation latency: the time from the API call that suspends a SIM to
its Disconnect-Request arriving at a CoA receiver, over REVOCATIONS SIMs with live
sessions.

Loopback only, high ports. The last line printed is one JSON object.

`--freeradius-same-reply` gives FreeRADIUS's Access-Accepts what ztsim's carry beyond
its default reply (a Message-Authenticator, which radclient then checks, and
MS-Primary-DNS-Server), for a like-for-like reply; off by default, so the default
figures stay comparable with earlier runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, update

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.db.engine import for_writing, make_engine, upgrade
from ztsim.identifiers import Iccid, Imei
from ztsim.identity import repository as identities
from ztsim.identity import token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role
from ztsim.inventory import service as inventory
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.radius import (
    Code,
    Packet,
    SharedSecret,
    encode_reply,
    make_reply,
    registry,
    sign_request,
)
from ztsim.radius.aaa import AaaService, AaaSettings
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.traffic import ReplySettings
from ztsim.sealing import Sealer
from ztsim.sessions.changes import Notifier


class RunningAaa:
    """The AAA role on its own event loop thread, as `ztsim up` runs it beside the API."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        settings = AaaSettings(
            auth_port=0,
            acct_port=0,
            reply=ReplySettings(dns_primary=DNS_PRIMARY),
        )
        # As node/radius.py wires it: the AAA role's transactions write (claims, records).
        self.service = AaaService(for_writing(engine), sealer, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.run(self.service.start())
        self.auth_port, self.acct_port = self.server.auth_port, self.server.acct_port

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
DNS_PRIMARY = "192.0.2.53"
IN_FLIGHT = 200
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


def load(port: int, requests: Path) -> tuple[float, int]:
    """Requests per second and the number of accepts radclient counted."""
    assert RADCLIENT is not None
    start = time.perf_counter()
    done = subprocess.run(
        [
            RADCLIENT,
            "-q",
            "-s",
            "-f",
            str(requests),
            "-p",
            str(IN_FLIGHT),
            "-r",
            "3",
            "-t",
            "5",
            f"127.0.0.1:{port}",
            "auth",
            SECRET,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - start
    accepts = re.search(r"Accepted\s*:\s*(\d+)", done.stdout + done.stderr)
    return REQUESTS / elapsed, int(accepts.group(1)) if accepts else -1


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
}}
server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {port}
	}}
	authorize {{
		files
	}}
	authenticate {{
	}}
	post-auth {{
	}}
}}
"""


def start_freeradius(
    directory: Path, port: int, *, same_reply: bool = False
) -> subprocess.Popen[bytes]:
    assert FREERADIUS is not None
    conf = directory / "freeradius"
    conf.mkdir()
    (conf / "radiusd.conf").write_text(FREERADIUS_CONF.format(d=conf, secret=SECRET, port=port))
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
    notifier = Notifier()
    notifier.subscribe(running.service.notify)
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
    app = create_app(ApiContext(engine, sealer, notify=notifier))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--freeradius-same-reply",
        action="store_true",
        help="FreeRADIUS replies with a Message-Authenticator and a DNS server, as ztsim does",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="loads per server, alternating; medians compared"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if RADCLIENT is None:
        sys.exit("needs radclient (Debian package freeradius-utils)")
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
        running = RunningAaa(engine, sealer)
        proc = None
        if FREERADIUS is None:
            print("FreeRADIUS: not installed (Debian package freeradius); no comparison")
        else:
            port = free_port()
            proc = start_freeradius(directory, port, same_reply=args.freeradius_same_reply)
        ztsim_runs: list[float] = []
        freeradius_runs: list[float] = []
        try:
            # Rounds alternate between the servers, so a drift in the machine's speed
            # touches both; the medians are compared. The idle server uses no CPU.
            for n in range(args.rounds):
                rps, accepts = load(running.auth_port, requests)
                running.flush()
                ztsim_runs.append(rps)
                print(f"round {n + 1}: ztsim      {rps:8.0f} Access-Requests/s ({accepts} accepts)")
                if proc is not None:
                    rps, accepts = load(port, requests)
                    freeradius_runs.append(rps)
                    print(
                        f"round {n + 1}: FreeRADIUS {rps:8.0f} Access-Requests/s "
                        f"({accepts} accepts)"
                    )
            latencies = revocation_latency(running, engine, sealer, org_id, iccids, coa)
        finally:
            running.close()
            coa.close()
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        written = running.service.writer.written_events
        # Every Access-Request has its decision event (plus the revocation runs' own).
        print(f"events written: {written} (decisions: {REQUESTS * args.rounds})")
        assert written >= REQUESTS * args.rounds, "decision events are missing"
        ztsim_rps = statistics.median(ztsim_runs)
        freeradius_rps = statistics.median(freeradius_runs) if freeradius_runs else None
        print(
            f"median of {args.rounds}: ztsim {ztsim_rps:.0f}/s, FreeRADIUS {freeradius_rps or 0:.0f}/s"
        )
        ratio = ztsim_rps / freeradius_rps if freeradius_rps else None
        if ratio is not None:
            print(f"ratio ztsim/FreeRADIUS: {ratio:.2f} (target >= 1.0)")
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"revocation, API call to Disconnect-Request: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        engine.dispose()
    print(
        json.dumps(
            {
                "ztsim_rps": round(ztsim_rps),
                "freeradius_rps": round(freeradius_rps) if freeradius_rps else None,
                "ratio_vs_freeradius": round(ratio, 3) if ratio is not None else None,
                "revoke_p50_ms": round(p50, 2),
                "revoke_p99_ms": round(p99, 2),
                "ztsim_rps_rounds": [round(r) for r in ztsim_runs],
                "freeradius_rps_rounds": [round(r) for r in freeradius_runs],
            }
        )
    )


if __name__ == "__main__":
    main()
