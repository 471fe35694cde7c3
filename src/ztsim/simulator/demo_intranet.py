"""The phones' side of the demo's site (`demo_site` builds the place): the packet
gateway's second APN, the phones' HTTP to the intranet from their leased addresses, and
the three checks. An employee reaches the intranet, a contractor is refused (and the
net role's audit names them), and the cloned SIM's open connection is cut when the SIM
is suspended.

The intranet APN has an emulated gateway of its own, sending from the scenario
gateway's registered NAS address and sharing its one Disconnect/CoA port (RFC 5176):
a SIM live on both APNs has a session on each, at the same address.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import httpx

from ztsim.radius import Packet, RadiusDecodeError, SharedSecret, decode_attributes
from ztsim.simulator.demo_site import DemoSite, in_netns
from ztsim.simulator.demo_world import INTRANET, INTRANET_APN, INTRANET_PORT, SiteWorld
from ztsim.simulator.pgw import PacketGateway
from ztsim.simulator.runner import Targets

# -- a phone's HTTP to the intranet -------------------------------------------------------


class IntranetClient(http.client.HTTPConnection):
    """HTTP to the intranet from a phone's address, in the phones' namespace."""

    def __init__(self, ns: str, source: str, timeout: float = 2.0) -> None:
        super().__init__(INTRANET, INTRANET_PORT, timeout=timeout)
        self._ns, self._source = ns, source

    def connect(self) -> None:
        sock = in_netns(self._ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        try:
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self._source, 0))
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def get(self) -> int:
        """One GET / on this connection (opened if needed); the status."""
        self.request("GET", "/", headers={"Host": "intranet.acme"})
        with self.getresponse() as response:
            response.read()
            return response.status


def fetch(ns: str, source: str, timeout: float = 2.0) -> tuple[int, float]:
    """A new connection's GET /: the status and the seconds it took; OSError if refused."""
    client = IntranetClient(ns, source, timeout)
    started = time.monotonic()
    try:
        return client.get(), time.monotonic() - started
    finally:
        client.close()


class Holder:
    """One open connection to the intranet that keeps asking (a GET every `every` s)
    until it fails: `last_answer` is when (wall clock) the last answer came."""

    def __init__(self, ns: str, source: str, *, every: float = 0.01, limit: float = 60.0):
        self.source = source
        self._client = IntranetClient(ns, source, timeout=1.0)
        self._every, self._limit = every, limit
        self.answers = 0
        self.last_answer: float | None = None
        self.error: str | None = None
        self.opened = threading.Event()  # set at the first answer, or at the end
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ztdemo-holder", daemon=True)

    def start(self) -> Holder:
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit  # bounded, whatever the demo does
        self._client.auto_open = 0  # one connection: a cut one is not silently re-opened
        try:
            self._client.connect()
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._client.get()
                self.answers += 1
                self.last_answer = time.time()
                self.opened.set()
                self._stop.wait(self._every)
        except (OSError, http.client.HTTPException) as err:
            self.error = type(err).__name__ if not str(err) else str(err)
        finally:
            self._client.close()
            self.opened.set()
            self.ended.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- the packet gateway's second APN ------------------------------------------------------


class CoaDispatch(asyncio.DatagramProtocol):
    """The Demo PGW's one Disconnect/CoA port (RFC 5176) for its two APNs' emulated
    gateways: a request goes to the gateway holding its Acct-Session-Id (a SIM live on
    both APNs has a session on each, at the same address), which verifies and answers."""

    def __init__(self, gateways: Sequence[PacketGateway]) -> None:
        self.gateways = gateways
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _owner(self, data: bytes) -> PacketGateway:
        try:
            session_id = decode_attributes(Packet.decode(data)).get("Acct-Session-Id")
        except RadiusDecodeError:
            return self.gateways[0]  # it answers (or drops) what does not parse
        for gateway in self.gateways:
            if any(s.session_id == session_id for s in gateway.sessions.values()):
                return gateway
        return self.gateways[0]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        answer = self._owner(data).handle_disconnect(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


async def start_gateways(
    targets: Targets, apn: str
) -> tuple[PacketGateway, PacketGateway, asyncio.DatagramTransport]:
    """The scenario's gateway (APN `apn`), the intranet APN's, and their shared Disconnect
    listener; the caller closes all three. Both send from the one registered NAS address;
    the intranet's Acct-Session-Ids are numbered apart (RFC 2866 §5.5: unique per NAS)."""
    made = [
        PacketGateway(
            targets.radius_auth,
            targets.radius_acct,
            SharedSecret(targets.secret),
            nas_ip=targets.nas_ip,
            apn=name,
            first_session_id=first,
        )
        for name, first in ((apn, 1), (INTRANET_APN, 1_000_001))
    ]
    loop = asyncio.get_running_loop()
    coa, _ = await loop.create_datagram_endpoint(
        lambda: CoaDispatch(made), local_addr=targets.coa_bind
    )
    try:
        for gateway in made:
            await gateway.start()
    except BaseException:
        coa.close()
        for gateway in made:
            gateway.close()
        raise
    return made[0], made[1], coa


# -- the three checks ---------------------------------------------------------------------


@dataclass
class SiteReport:
    """What the phones saw at the intranet, and what the platform recorded of it."""

    employee: str
    contractor: str
    victim: str
    reached: int | None = None  # the employee's HTTP status
    reached_ms: float | None = None
    refused: str | None = None  # how the contractor's connection failed (None: it did not)
    denial: dict[str, Any] | None = None  # the net.flow event naming the contractor
    answers: int = 0  # on the victim's open connection
    # From the SIM's suspension (its event) to the gateway's cut (the role took the
    # address out of its classes: its Geneve endpoint carries nothing more from it, and
    # conntrack's entries go next), and to the connection's last answer, which can come
    # a little before the suspension's time: a request then in flight is never answered.
    cut_ms: float | None = None
    last_answer_ms: float | None = None
    problems: list[str] = field(default_factory=list)

    def reached_line(self) -> str | None:
        if self.reached is None or self.reached_ms is None:
            return None
        return (
            f"site: {self.employee} reached the intranet at {INTRANET} over APN "
            f"{INTRANET_APN} ({self.reached} in {self.reached_ms:.0f} ms)"
        )

    def refused_line(self) -> str | None:
        if self.refused is None:
            return None
        if self.denial is None:
            how = "no net.flow event names them"
        else:
            rule = (self.denial.get("payload") or {}).get("rule") or "default deny"
            how = f"net.flow {self.denial.get('outcome')}, rule {rule}"
        return f"site: {self.contractor}, a contractor, was refused ({how})"

    def cut_line(self) -> str | None:
        if self.cut_ms is None or self.last_answer_ms is None:
            return None
        return (
            f"site: the cloned SIM's open connection to the intranet ({self.victim}'s) "
            f"was cut {self.cut_ms:.0f} ms after the suspension "
            f"(its last answer: {self.last_answer_ms:+.0f} ms)"
        )

    def lines(self) -> list[str]:
        told = (self.reached_line(), self.refused_line(), self.cut_line())
        return [line for line in told if line] + [f"site: {p}" for p in self.problems]


def _events(api_url: str, token: str, kind: str, subject: str) -> list[dict[str, Any]]:
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as c:
        page = c.get("/api/v1/events", params={"kind": kind, "subject": subject, "limit": 10})
        items: list[dict[str, Any]] = page.raise_for_status().json()["items"]
    return items


def _first_event(api_url: str, token: str, kind: str, subject: str, wait: float) -> Any:
    """The first `kind` event about `subject` within `wait` seconds, or None."""
    deadline = time.monotonic() + wait
    while True:
        items = _events(api_url, token, kind, subject)
        if items or time.monotonic() > deadline:
            return items[-1] if items else None
        time.sleep(0.05)


Subjects = Callable[[bytes], object | None]  # the net role's `subject_of_source`


def _unclassified(subjects: Subjects, address: str, stop: threading.Event) -> float | None:
    """When (wall clock) the net role took `address` out of its classes, within 30 s
    (None: not by then, or `stop` was set)."""
    packed, deadline = ipaddress.ip_address(address).packed, time.monotonic() + 30.0
    while subjects(packed) is not None:
        if time.monotonic() > deadline or stop.wait(0.002):
            return None
    return time.time()


def _classified(subjects: Subjects, addresses: Sequence[str]) -> bool:
    """Whether the net role holds every address in a class by now (within 5 s)."""
    packed = [ipaddress.ip_address(a).packed for a in addresses]
    deadline = time.monotonic() + 5.0
    while not all(subjects(a) is not None for a in packed):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def play(
    site: DemoSite,
    gateway: PacketGateway,
    world: SiteWorld,
    cloned_iccid: str,
    subjects: Subjects,
    api: tuple[str, str],
    progress: Callable[[str], None],
) -> SiteReport:
    """Attach the three phones on the intranet APN, open the victim's connection (before
    its SIM is cloned: call this as the scenario starts), then the employee's request,
    the contractor's, and the wait for the cut. `subjects` is the net role's lookup of
    a source's class; `api` the API's URL and an admin token, to read the events."""
    report = SiteReport(world.employee.name, world.contractor.name, world.victim.name)
    address: dict[str, str] = {}
    for device in (world.victim, world.employee, world.contractor):
        result = await gateway.attach(device)
        if result.accepted:
            address[device.name] = str(result.address)
        else:
            report.problems.append(f"{device.name} was refused on {INTRANET_APN}")
    if len(address) < 3:
        _say(progress, *(f"site: {p}" for p in report.problems))
        return report
    if not await asyncio.to_thread(_classified, subjects, list(address.values())):
        report.problems.append("the net role did not hold the phones' addresses within 5 s")
    holder = Holder(site.ue, address[world.victim.name]).start()
    watching = threading.Event()
    gone = asyncio.create_task(asyncio.to_thread(_unclassified, subjects, holder.source, watching))
    try:
        await asyncio.to_thread(holder.opened.wait, 3.0)
        try:
            status, took = await asyncio.to_thread(fetch, site.ue, address[world.employee.name])
            report.reached, report.reached_ms = status, took * 1000
        except (OSError, http.client.HTTPException) as err:
            report.problems.append(f"{world.employee.name} did not reach the intranet ({err})")
        _say(progress, report.reached_line())
        await _contractor(site, world, address[world.contractor.name], api, report)
        _say(progress, report.refused_line())
        # The clone attaches mid-run; the twin session's response suspends the SIM.
        cut = await gone
        await asyncio.to_thread(holder.ended.wait, 3.0)
    finally:
        watching.set()
        holder.stop()
    report.answers = holder.answers
    suspended = await asyncio.to_thread(
        _first_event, *api, "sim.suspend", f"sim:{cloned_iccid}", 5.0
    )
    if suspended is None or cut is None or holder.last_answer is None or holder.error is None:
        report.problems.append(f"{world.victim.name}'s open connection was not cut")
    else:
        at = datetime.fromisoformat(suspended["time"]).timestamp()
        report.cut_ms = (cut - at) * 1000
        report.last_answer_ms = (holder.last_answer - at) * 1000
    _say(progress, report.cut_line(), *(f"site: {p}" for p in report.problems))
    return report


async def _contractor(
    site: DemoSite, world: SiteWorld, source: str, api: tuple[str, str], report: SiteReport
) -> None:
    try:
        status, _ = await asyncio.to_thread(fetch, site.ue, source)
        report.problems.append(f"{world.contractor.name} reached the intranet ({status})")
    except (OSError, http.client.HTTPException) as err:
        report.refused = str(err) or type(err).__name__
        subject = f"identity:{world.contractor_id}"
        report.denial = await asyncio.to_thread(_first_event, *api, "net.flow", subject, 3.0)


def _say(progress: Callable[[str], None], *lines: str | None) -> None:
    for line in lines:
        if line:
            progress(line)
