"""A small org for the AAA tests: SIMs in every state, a bound device, a gateway on
loopback, an address pool, and the AAA role running on its own event loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.radius.aaa.traffic import ReplySettings
from ztsim.radius.serve.service import AaaService, AaaSettings
from ztsim.radius.store import registry
from ztsim.sealing import Sealer

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

RADCLIENT = shutil.which("radclient")
SECRET = "aaa-test-shared-secret-0123456789"
LEAKS.add_secret(SECRET)
# IMEISV 35349006987332 01 -> IMEI 353490069873327 (Luhn digit 7).
IMEISV = "3534900698733201"
OTHER_IMEISV = "4901542032375100"
APN = "corp.apn"
T = TypeVar("T")


@dataclass
class World:
    org_id: str
    identity_id: str
    gateway_id: str
    active: str  # IMSI of an active, bound SIM
    active_iccid: str
    unbound: str  # active, no device
    unbound_iccid: str
    suspended: str
    stock: str
    disabled: str  # active, its identity disabled
    device_imei: str


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_port_bound(port: int) -> bool:
    """Whether some socket is bound to this UDP port, read from the kernel's table rather
    than by binding the port: a probe holding it for a moment would make a server's own
    bind fail."""
    local = f":{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1].endswith(local) for line in table.readlines()[1:])


def build_world(
    engine: Engine,
    sealer: Sealer,
    *,
    seed: int = 41,
    address: str = "127.0.0.1",
    pool: tuple[str, str] = ("10.64.0.0/16", "10.65.0.0/24"),
) -> World:
    now = datetime.now(UTC)
    specs = make_sims(6, seed=seed)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Radius Org", f"radius{seed}", now)
        person = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="P", email=None, external_id=None, now=now
        )
        other = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="Q", email=None, external_id=None, now=now
        )
        service.import_stock(
            conn,
            sealer,
            org.id,
            parse_stock_csv(stock_csv(specs)),
            filename="b.csv",
            kind=SimKind.PHYSICAL,
            actor="test",
            now=now,
        )

        def activate(i: int, holder: str) -> None:
            for action in (SimAction.ASSIGN, SimAction.ACTIVATE):
                service.change_state(
                    conn,
                    org.id,
                    specs[i].iccid,
                    action,
                    actor="test",
                    reason="",
                    now=now,
                    identity_id=holder if action is SimAction.ASSIGN else None,
                )

        for i in (0, 1, 2):
            activate(i, person.id)
        activate(3, other.id)
        service.change_state(
            conn, org.id, specs[2].iccid, SimAction.SUSPEND, actor="t", reason="lost", now=now
        )
        device = service.register_device(
            conn, org.id, imei=IMEISV, eid=None, owner_id=None, name="phone", actor="t", now=now
        )
        for i in (0, 2, 3):
            service.set_binding(
                conn, org.id, specs[i].iccid, device.id, actor="t", reason="r", now=now
            )
        identities.update_identity(conn, org.id, other.id, name=None, enabled=False)
        gateway = registry.create_gateway(
            conn,
            sealer,
            org.id,
            name="pgw-1",
            address=address,
            secret=SECRET,
            apns=[APN],
            require_message_authenticator=True,
            coa_port=3799,
            now=now,
        )
        registry.create_pool(conn, org.id, cidr=pool[0], static_cidr=pool[1], now=now)
    return World(
        org_id=org.id,
        identity_id=person.id,
        gateway_id=gateway.id,
        active=specs[0].imsi,
        active_iccid=specs[0].iccid,
        unbound=specs[1].imsi,
        unbound_iccid=specs[1].iccid,
        suspended=specs[2].imsi,
        stock=specs[4].imsi,
        disabled=specs[3].imsi,
        device_imei=device.imei,
    )


class RunningAaa:
    """The AAA role on its own event loop in a thread, as `ztsim up` would run it."""

    def __init__(self, engine: Engine, sealer: Sealer, **overrides: Any) -> None:
        settings = AaaSettings(
            host="127.0.0.1",
            auth_port=0,
            acct_port=0,
            reply=ReplySettings(dns_primary="192.0.2.53", dns_secondary="192.0.2.54"),
            **overrides,
        )
        self.service = AaaService(engine, sealer, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.run(self.service.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    @property
    def auth_port(self) -> int:
        return self.server.auth_port

    @property
    def acct_port(self) -> int:
        return self.server.acct_port

    @property
    def counters(self) -> Any:
        assert self.service.core is not None
        return self.service.core.counters

    def flush(self) -> None:
        self.run(self.service.flush())

    def close(self) -> None:
        self.run(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def radclient(
    port: int, kind: str, attributes: str, *, secret: str = SECRET, tries: int = 1
) -> str:
    """radclient's output for one request to 127.0.0.1:port (it gives up after 1 s)."""
    assert RADCLIENT is not None
    done = subprocess.run(
        [RADCLIENT, "-x", "-r", str(tries), "-t", "1", f"127.0.0.1:{port}", kind, secret],
        input=attributes,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


def access(imsi: str, *, imeisv: str | None = IMEISV, apn: str = APN, ma: bool = True) -> str:
    lines = [
        f'User-Name = "{imsi}"',
        f'3GPP-IMSI = "{imsi}"',
        f'Called-Station-Id = "{apn}"',
        "NAS-IP-Address = 127.0.0.1",
        "Framed-Protocol = GPRS-PDP-Context",
        "3GPP-RAT-Type = EUTRAN",
    ]
    if imeisv is not None:
        lines.append(f'3GPP-IMEISV = "{imeisv}"')
    if ma:
        lines.append("Message-Authenticator = 0x00")
    return "\n".join(lines) + "\n"


def accounting(status: str, session_id: str, imsi: str, *, extra: str = "") -> str:
    return (
        f"Acct-Status-Type = {status}\n"
        f'Acct-Session-Id = "{session_id}"\n'
        f'User-Name = "{imsi}"\n'
        f'3GPP-IMSI = "{imsi}"\n'
        f'3GPP-IMEISV = "{IMEISV}"\n'
        f'Called-Station-Id = "{APN}"\n'
        "Framed-IP-Address = 10.64.0.1\n"
        "3GPP-RAT-Type = EUTRAN\n"
        "3GPP-User-Location-Info = 0x8200f110000100f11000000101\n" + extra
    )


# -- accounting bursts and which requests were answered ----------------------------------


def acct_burst(imsi: str, sessions: int, *, prefix: str = "b") -> str:
    """radclient's `-f` file: an Accounting-Start for each of `sessions` sessions, then a
    Stop for each; request n carries Proxy-State n (echoed in its response, RFC 2865
    §5.33), which is how `answered` tells which got one. No Framed-IP-Address: the
    sessions are the SIM's bearers without an address of their own."""
    blocks = []
    for n in range(2 * sessions):
        status = "Start" if n < sessions else "Stop"
        blocks.append(
            f"Acct-Status-Type = {status}\n"
            f'Acct-Session-Id = "{prefix}-{n % sessions}"\n'
            f'User-Name = "{imsi}"\n'
            f'3GPP-IMSI = "{imsi}"\n'
            f'3GPP-IMEISV = "{IMEISV}"\n'
            f'Called-Station-Id = "{APN}"\n'
            f"Proxy-State = 0x{n:08x}\n"
        )
    return "\n".join(blocks)


def burst_command(
    port: int, requests: str, *, in_flight: int, tries: int, timeout: float
) -> list[str]:
    """radclient sending the file `requests` to 127.0.0.1:port, printing each response
    as it comes (line-buffered, so a test can follow it)."""
    assert RADCLIENT is not None
    return [
        "stdbuf",
        "-oL",
        RADCLIENT,
        "-x",
        "-f",
        requests,
        "-p",
        str(in_flight),
        "-r",
        str(tries),
        "-t",
        str(timeout),
        f"127.0.0.1:{port}",
        "acct",
        SECRET,
    ]


def answered(output: str) -> set[int]:
    """The request numbers (Proxy-States) of the Accounting-Responses in radclient's output."""
    numbers: set[int] = set()
    in_response = False
    for line in output.splitlines():
        if not line.startswith("\t"):
            in_response = line.startswith("Received Accounting-Response")
        elif in_response and line.startswith("\tProxy-State = 0x"):
            numbers.add(int(line.split("0x", 1)[1], 16))
    return numbers


# -- a database outage for one test's connections only ----------------------------------


class TcpProxy:
    """A TCP relay on loopback in front of `upstream` (e.g. PostgreSQL): `stop()` closes
    the listener and cuts every relayed connection (the database is gone, for whoever
    connects through here only); `start()` listens on the same port again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            cut, self._open = self._open, set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
