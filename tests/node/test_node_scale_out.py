"""Scale-out on PostgreSQL (issue 15): two `ztsim serve radius`, two `ztsim serve dns
--workers 2` and one `ztsim serve api`, each on a host of its own (a network namespace
with its own address), one database made for the run; a packet gateway in another
namespace owns the UE addresses, sends RADIUS from its registered address and listens
for Disconnect-Requests there. Everything is watched from outside, as a gateway and
its devices see it.

- A session started by Accounting-Start on one RADIUS host is answered by every DNS
  host (every worker) on its first query after the Accounting-Response.
- A suspension made through the API process reaches the gateway as a Disconnect-Request
  and every DNS host refuses the address, both within 1 s; both RADIUS hosts reject it.
- A DNS host killed (SIGKILL, workers and all) while changes keep coming serves, once
  restarted, what the database says within 5 s of answering again. The issue asks for
  30 s down; 8 s here keeps the suite short, and nothing in the catch-up depends on how
  long: the host reloads its whole state at start.
- A gateway whose database connections are cut (`pg_terminate_backend` on its own
  application_name, and a route that refuses new ones) keeps answering from what it
  holds, says so in its log, and catches up once the database is back.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
from sqlalchemy import Engine

from ztsim.radius import AcctStatusType, Code
from ztsim.sealing import Sealer, parse_key

from support.dns_state import differences, expected_digest, observed_digest
from support.leaks import LEAKS
from support.netns_clients import NOERROR, REFUSED, CoaListener, CoaReply, RadiusPeer, ask
from support.netns_hosts import Host, netns_unusable
from support.scale_out import Cluster, HostProcess, http_ok, wait_serving, wait_until
from support.scale_world import (
    PROBE_NAME,
    UE_PREFIX,
    ScaleWorld,
    SeededSim,
    add_sessions,
    rule_answer,
    seed,
)

PG_URL_ENV = "ZTSIM_TEST_DATABASE_URL"
SECRET = "scale-out-" + secrets.token_hex(16)
LEAKS.add_secret(SECRET)
SIMS, LIVE = 40, 20  # SIMs 0-19 have a live session from the start, 20-39 none
DOWN_SECONDS = 8.0  # the killed DNS host's downtime (the 30 s, shortened)
START_TIMEOUT = 180.0  # a start on a loaded 2-CPU machine takes 10-20 s; bounded anyway
PORTS = 4  # fresh source ports per DNS host and check: each worker gets some

_SKIP = netns_unusable()
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-"),
]


@dataclass
class Scene:
    cluster: Cluster
    engine: Engine
    world: ScaleWorld
    gateway: Host
    peer: RadiusPeer
    coa: CoaListener
    radius: list[HostProcess]
    dns: list[HostProcess]
    api: HostProcess
    http: httpx.Client
    rule_version: int = 1

    def sim(self, n: int) -> SeededSim:
        return self.world.sims[n]

    def answers(self, dns: HostProcess, source: str) -> list[tuple[int, tuple[str, ...]]]:
        """(rcode, addresses) of PORTS queries, each from a new source port."""
        replies = [
            ask(self.gateway.ns, source, dns.address, PROBE_NAME, timeout=1.0) for _ in range(PORTS)
        ]
        return [(r.rcode, r.addresses) for r in replies]

    def refused_everywhere(self, source: str) -> bool:
        return all(rcode == REFUSED for dns in self.dns for rcode, _ in self.answers(dns, source))

    def suspend(self, sim: SeededSim) -> float:
        """Through the API process; time.time() when its answer came."""
        response = self.http.post(f"/sims/{sim.iccid}/suspend", json={"reason": "scale test"})
        assert response.status_code == 200, response.text
        return time.time()

    def resume(self, sim: SeededSim) -> None:
        response = self.http.post(f"/sims/{sim.iccid}/resume", json={"reason": ""})
        assert response.status_code == 200, response.text

    def edit_rule(self) -> str:
        self.rule_version += 1
        answer = rule_answer(self.rule_version)
        body = {"name": "probe", "action": "override", "domains": [PROBE_NAME], "answer": [answer]}
        response = self.http.put(f"/dns/rules/{self.world.rule_id}", json=body)
        assert response.status_code == 200, response.text
        return answer

    def attach(self, radius: HostProcess, sim: SeededSim, session_id: str) -> str:
        """Access-Request then Accounting-Start on `radius`; the UE address."""
        access = self.peer.access(radius.address, sim.radius)
        assert access.accepted, access
        assert access.address is not None
        assert self.peer.accounting(
            radius.address, sim.radius, AcctStatusType.START, session_id, access.address
        )
        return access.address


def _serving(peer: RadiusPeer, gateway: Host, probe: SeededSim, p: HostProcess) -> bool:
    """Whether the role on `p` answers: any DNS answer, any RADIUS reply (for `probe`, a
    SIM no test changes), the API's schema."""
    if p.role == "dns":
        return ask(gateway.ns, gateway.address, p.address, "ready.test", timeout=0.3).rcode >= 0
    if p.role == "radius":
        return peer.access(p.address, probe.radius, timeout=0.3, tries=1).code is not None
    return http_ok(f"http://{p.address}:8080/openapi.json")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"needs {PG_URL_ENV} (a PostgreSQL server)")
    workdir = tmp_path_factory.mktemp("scale-out")
    with Cluster(url, workdir) as cluster:
        LEAKS.add_secret(cluster.master_key)
        gateway = cluster.add_packet_gateway("pgw", 40, UE_PREFIX)
        dns = [cluster.add_role("dns", f"dns{i}", 20 + i, args=["--workers", "2"]) for i in (1, 2)]
        primary = {"ZTSIM_RADIUS_DNS_PRIMARY": dns[0].address}
        radius = [cluster.add_role("radius", f"radius{i}", 10 + i, env=primary) for i in (1, 2)]
        api = cluster.add_role("api", "api", 30)
        engine = cluster.engine()
        sealer = Sealer(parse_key(cluster.master_key))
        world = seed(engine, sealer, gateway_address=gateway.address, secret=SECRET, count=SIMS)
        LEAKS.add_secret(world.admin_token)
        add_sessions(engine, world, world.sims[:LIVE], "seed")
        peer = RadiusPeer(gateway.ns, gateway.address, SECRET)
        coa = CoaListener(gateway.ns, gateway.address, SECRET, CoaReply.ACK).start()
        http = httpx.Client(
            base_url=f"http://{api.address}:8080/api/v1",
            headers={"Authorization": f"Bearer {world.admin_token}"},
            timeout=10,
        )
        try:
            for process in (*dns, *radius, api):
                process.start()
            probe = world.sims[SIMS - 1]
            for process in (*dns, *radius, api):
                wait_serving(
                    process, partial(_serving, peer, gateway, probe, process), START_TIMEOUT
                )
            yield Scene(cluster, engine, world, gateway, peer, coa, radius, dns, api, http)
        finally:
            http.close()
            coa.close()
            for process in cluster.processes.values():
                process.stop()
                LEAKS.add_text("log", process.output())
            LEAKS.add_events(engine)
            engine.dispose()


def test_a_new_session_is_answered_by_every_dns_host_on_its_first_query(scene: Scene) -> None:
    sim = scene.sim(LIVE)
    before = [scene.answers(dns, sim.address) for dns in scene.dns]
    assert all(rcode == REFUSED for answers in before for rcode, _ in answers), before
    address = scene.attach(scene.radius[0], sim, "new-1")
    # The Accounting-Response is in: the very next queries, to every host, are answered.
    acknowledged = time.monotonic()
    after = {dns.host.name: scene.answers(dns, address) for dns in scene.dns}
    want = (NOERROR, (rule_answer(scene.rule_version),))
    if all(answer == want for answers in after.values() for answer in answers):
        return
    # Say how late the hosts were, for whoever reads the failure.
    try:
        wait_until(
            lambda: all(a == want for dns in scene.dns for a in scene.answers(dns, address)),
            10,
            every=0.01,
        )
        late = f"answered {(time.monotonic() - acknowledged) * 1000:.0f} ms after the response"
    except TimeoutError:
        late = "still not answered 10 s after the response"
    pytest.fail(f"first queries after the Accounting-Response: {after}; {late}")


def test_a_suspend_through_the_api_process_disconnects_and_refuses_within_a_second(
    scene: Scene,
) -> None:
    sim = scene.sim(0)
    assert all(rcode == NOERROR for rcode, _ in scene.answers(scene.dns[0], sim.address))
    answered = scene.suspend(sim)  # after the commit
    disconnect = scene.coa.wait_for(
        lambda d: d.user_name == sim.imsi or d.address == sim.address, timeout=5
    )
    assert disconnect is not None, "no Disconnect-Request reached the gateway"
    wait_until(
        lambda: scene.refused_everywhere(sim.address), 5, every=0.01, what="REFUSED everywhere"
    )
    refused = time.time() - answered
    wait_until(
        lambda: all(
            scene.peer.access(r.address, sim.radius).code == Code.ACCESS_REJECT
            for r in scene.radius
        ),
        5,
        every=0.01,
        what="Access-Reject from every RADIUS host",
    )
    rejected = time.time() - answered
    print(
        f"suspend through the API process: Disconnect-Request after "
        f"{(disconnect.at - answered) * 1000:.0f} ms, REFUSED everywhere after "
        f"{refused * 1000:.0f} ms, Access-Reject everywhere after {rejected * 1000:.0f} ms"
    )
    assert disconnect.at - answered < 1.0
    assert refused < 1.0
    assert rejected < 1.0


def _changes_while_down(scene: Scene, stop: threading.Event, made: list[str]) -> None:
    """Until `stop`, in turn: a suspend and its resume (SIMs 10-19), a rule edit, a
    session started on the other RADIUS host and stopped again (SIMs 21-29)."""
    k = 0
    while not stop.is_set():
        round_, step = divmod(k, 5)
        held, fresh = scene.sim(10 + round_ % 10), scene.sim(LIVE + 1 + round_ % 9)
        if step == 0:
            scene.suspend(held)
        elif step == 1:
            scene.resume(held)
        elif step == 2:
            scene.edit_rule()
        elif step == 3:
            scene.attach(scene.radius[1], fresh, f"down-{round_}")
        else:
            assert scene.peer.accounting(
                scene.radius[1].address,
                fresh.radius,
                AcctStatusType.STOP,
                f"down-{round_}",
                fresh.address,
            )
        made.append(["suspend", "resume", "rule", "start", "stop"][step])
        k += 1
        stop.wait(0.3)


def test_a_killed_dns_host_equals_the_database_within_5_s_of_restarting(scene: Scene) -> None:
    victim = scene.dns[1]
    addresses = [s.address for s in scene.world.sims]
    victim.kill()
    stop, made = threading.Event(), list[str]()
    changer = threading.Thread(target=_changes_while_down, args=(scene, stop, made))
    changer.start()
    try:
        time.sleep(DOWN_SECONDS)
        victim.start()
        probe = scene.sim(SIMS - 1)
        wait_serving(
            victim, partial(_serving, scene.peer, scene.gateway, probe, victim), START_TIMEOUT
        )
    finally:
        stop.set()
        changer.join(timeout=30)
    assert len(made) >= 5, made
    serving = time.monotonic()
    last: list[str] = []

    def equal() -> bool:
        nonlocal last
        want = expected_digest(scene.engine, scene.world.org_id, scene.world.rule_id, addresses)
        got = observed_digest(scene.gateway.ns, victim.address, addresses, PROBE_NAME)
        last = differences(want, got)
        return not last

    try:
        wait_until(equal, 5.0, every=0.1, what="the restarted host equal to the database")
    except TimeoutError:
        pytest.fail(f"after {made}: differences {last}")
    print(
        f"restarted DNS host equal to the database {time.monotonic() - serving:.2f} s after serving"
    )
    # The host that stayed up agrees too.
    want = expected_digest(scene.engine, scene.world.org_id, scene.world.rule_id, addresses)
    other = observed_digest(scene.gateway.ns, scene.dns[0].address, addresses, PROBE_NAME)
    assert differences(want, other) == []


def test_a_gateway_that_loses_the_database_keeps_answering_then_catches_up(scene: Scene) -> None:
    dns, radius = scene.dns[0], scene.radius[0]
    suspended, other, fresh = scene.sim(5), scene.sim(6), scene.sim(LIVE + 15)
    answer = (NOERROR, (rule_answer(scene.rule_version),))
    assert scene.answers(dns, other.address)[0] == answer
    cut = [dns, radius]
    fabric = scene.cluster.fabric
    for process in cut:
        # New connections are refused at the host (the database's address prohibited),
        # the open ones ended by the server: this host's connections only.
        fabric.refuse(process.host, fabric.gateway)
    database = scene.cluster.database
    assert database is not None
    try:
        for process in cut:

            def cut_off(
                host: str = process.host.name, name: str = process.application_name
            ) -> bool:
                # A backend ends a moment after it is told to, and one whose connection
                # was made just before the route went in appears just after: again.
                scene.cluster.terminate_connections(host)
                return database.connections(name) == 0

            wait_until(cut_off, 5.0, every=0.1, what=f"{process.host.name} without connections")
        scene.suspend(suspended)
        time.sleep(2.0)  # the other hosts act on it; these cannot read it
        assert scene.answers(dns, other.address) == [answer] * PORTS
        assert scene.peer.access(radius.address, fresh.radius).accepted
    finally:
        for process in cut:
            fabric.refuse(process.host, fabric.gateway, refused=False)
    back = time.monotonic()
    wait_until(
        lambda: all(rcode == REFUSED for rcode, _ in scene.answers(dns, suspended.address)),
        15,
        every=0.1,
        what="the DNS host refusing the SIM suspended while it was cut off",
    )
    wait_until(
        lambda: scene.peer.access(radius.address, suspended.radius).code == Code.ACCESS_REJECT,
        15,
        every=0.1,
        what="the RADIUS host rejecting the SIM suspended while it was cut off",
    )
    print(f"caught up {time.monotonic() - back:.2f} s after the database came back")
    assert "change feed cannot be read" in dns.output()
    assert "change feed cannot be read" in radius.output()
