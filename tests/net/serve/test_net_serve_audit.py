"""The audit for real: packets a namespace's nft rules log to the deny group become
`net.flow` events in the database, read by a socket opened in that namespace from this
process (whose own threads stay in theirs); a source past its token bucket is counted
and summarised, so every logged packet is accounted for; a pseudonymising org's events
name a pseudonym and neither the SIM nor the address; while the database is down events
wait (bounded, the oldest given up and reported per org when writing resumes).

Allowed flows, with the role itself between a UE, a gateway and a site namespace: an org
in mode `all` gets a start and a stop event (duration, bytes) for a TCP connection to its
site, an org in `blocked-only` none; the gateway's namespace holds a conntrack listener
only while some org is in mode `all`, opened and closed as the role applies DNS changes."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from ztsim.dns.policy.rules import OrgSettings, PrivacyMode
from ztsim.dns.store import service as dns_service
from ztsim.events import store as event_store
from ztsim.events.schema import Event, Outcome, subject_of
from ztsim.feed import outbox
from ztsim.identity import repository as identities
from ztsim.net.ctnetlink import EVENT_GROUPS, groups_mask
from ztsim.net.denials import DenialContext, Explain, FlowLogMode, FlowPrivacy
from ztsim.net.netlink import NETLINK_NETFILTER
from ztsim.net.nflog import NflogError, NflogPacket
from ztsim.net.nft import Nft
from ztsim.net.serve.audit import FlowAudit
from ztsim.net.serve.flow_writer import DROPPED_KIND
from ztsim.net.serve.role import NetState
from ztsim.net.store.flow_events import read_privacy
from ztsim.net.store.tunnel_view import read_site_tunnels
from ztsim.sealing import Sealer

from support.net_role_topology import HTTP_PORT, INTERNET, SITE, SITE_PREFIX, topology, why_skip
from support.net_role_world import NetWorld, add_rule, add_site, build_world, start_session
from support.netns_hosts import entered, ip, netns_unusable, reap_stale

SOURCE, STRANGER = "10.9.0.1", "10.9.0.2"
LOGGED, FORWARD = "192.0.2.0/24", "198.51.100.0/24"  # RFC 5737 documentation ranges
IDENTITY, ICCID = "0123456789abcdef0123456789abcdef", "8944000000000000001"
_SKIP = netns_unusable()


def _org(engine: Engine, slug: str = "audit") -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, "Audit Org", slug, datetime.now(UTC)).id


def _explainer(org_id: str) -> Explain:
    """The role's `explain_denial` for one known source: rule `r1` for the class chain."""

    def explain(source: str, destination: str, protocol: int, port: int) -> DenialContext | None:
        if source != SOURCE:
            return None
        return DenialContext(org_id, IDENTITY, ICCID, "r1", ("rule:r1",))

    return explain


def _events(engine: Engine, org_id: str, kind: str) -> list[Event]:
    with engine.connect() as conn:
        found, _ = event_store.query(conn, org_id, event_store.EventQuery(kind), limit=500)
    return found


def _udp(source: str, destination: str, port: int) -> bytes:
    """An IPv4/UDP header pair, as NFLOG copies it."""
    ip_header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
        socket.inet_aton(source), socket.inet_aton(destination),
    )  # fmt: skip
    return ip_header + struct.pack("!HHHH", 40000, port, 8, 0)


def _packet(source: str, chain: str = "class_x", destination: str = "192.0.2.7") -> NflogPacket:
    return NflogPacket(5701, socket.AF_INET, chain, _udp(source, destination, 443))


# -- in a namespace ------------------------------------------------------------------------


@pytest.fixture
def namespace() -> Iterator[str]:
    if _SKIP:
        pytest.skip(_SKIP)
    reap_stale()
    name = f"ztsim-audit-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        ip("-n", name, "addr", "add", f"{SOURCE}/24", "dev", "d0")
        ip("-n", name, "link", "set", "d0", "up")
        ip("-n", name, "link", "set", "d1", "up")
        ip("-n", name, "route", "add", "default", "dev", "d0")
        rules = (
            "table inet audit {\n chain out {\n type filter hook output priority 0;\n"
            f' ip daddr {LOGGED} log group 5701 prefix "class_x"\n'
            f' ip daddr {FORWARD} log group 5701 prefix "forward"\n }}\n}}\n'
        )
        done = subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"],
            input=rules, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield name
    finally:
        ip("netns", "del", name, check=False)


def _send(ns: str, destination: str, count: int) -> None:
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        for n in range(count):
            sock.sendto(b"x", (destination, 5000 + n % 3))


def test_logged_packets_become_events(engine: Engine, namespace: str) -> None:
    org_id = _org(engine)
    prefix = ("ip", "netns", "exec", namespace)
    audit = FlowAudit(engine, _explainer(org_id), prefix=prefix, flush_seconds=0.1)
    audit.start()
    try:
        # One listener per group and namespace: a second one here is refused...
        with pytest.raises(NflogError, match="EPERM"):
            FlowAudit(engine, _explainer(org_id), prefix=prefix).start()
        started = datetime.now(UTC)
        _send(namespace, "192.0.2.7", 3)
        _send(namespace, "198.51.100.9", 1)
        deadline = time.monotonic() + 5
        while len(_events(engine, org_id, "net.flow")) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        events = sorted(_events(engine, org_id, "net.flow"), key=lambda e: e.id)
        assert len(events) == 4
        first = events[0]
        assert first.subject == subject_of("identity", IDENTITY)
        assert first.outcome is Outcome.DENIED
        assert first.reason == "policy_denied"
        assert first.payload == {
            "source": SOURCE, "iccid": ICCID, "destination": "192.0.2.7", "protocol": 17,
            "port": 5000, "rule": "r1", "policy_reasons": ["rule:r1"], "chain": "class_x",
            "suppressed": 0,
        }  # fmt: skip
        assert abs((first.time - started).total_seconds()) < 2
        assert events[-1].reason == "no_session"
        assert events[-1].payload["chain"] == "forward"

        # A burst from the same source: its bucket (a burst of 10, 4 taken) runs dry,
        # the rest is counted.
        _send(namespace, "192.0.2.7", 30)
        deadline = time.monotonic() + 5
        while audit.reader is not None and audit.reader.counts["received"] < 34:
            assert time.monotonic() < deadline, dict(audit.reader.counts)
            time.sleep(0.05)
    finally:
        audit.stop()
    events = _events(engine, org_id, "net.flow")
    summaries = _events(engine, org_id, "net.flow_suppressed")
    suppressed = sum(e.payload["suppressed"] for e in events + summaries)
    assert len(events) + suppressed == 34  # every logged packet: an event or a count
    assert 10 <= len(events) <= 14  # the burst, and what the bucket regained (5/s) meanwhile
    assert summaries
    families = {f.name: f for f in audit.families()}
    assert {s.labels: s.value for s in families["ztsim_net_flow_events_total"].samples} == {
        (("what", "stored"),): len(events) + len(summaries)
    }
    assert families["ztsim_net_flow_events_pending"].samples[0].value == 0


def test_the_socket_is_opened_in_the_namespace_of_the_prefix(
    engine: Engine, namespace: str
) -> None:
    """Two namespaces, one listener each: neither is refused, each sees its own."""
    other = f"ztsim-audit-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", other)
    org_id = _org(engine)
    audits = [
        FlowAudit(engine, _explainer(org_id), prefix=("ip", "netns", "exec", ns))
        for ns in (namespace, other)
    ]
    try:
        for audit in audits:
            audit.start()
        _send(namespace, "192.0.2.7", 2)
        deadline = time.monotonic() + 5
        first, second = (a.reader for a in audits)
        assert first is not None
        assert second is not None
        while first.counts["received"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.counts["received"] == 2
        assert second.counts["received"] == 0
    finally:
        for audit in audits:
            audit.stop()
        ip("netns", "del", other, check=False)


# -- without the kernel: privacy and outages -------------------------------------------------


def test_a_pseudonymising_org_names_no_one(engine: Engine) -> None:
    org_id = _org(engine)
    audit = FlowAudit(engine, _explainer(org_id), pseudonym_key=b"k" * 32)
    audit.privacy_changed()
    assert audit.privacy(org_id) == FlowPrivacy()  # no DNS settings: the defaults
    with engine.begin() as conn:
        dns_service.put_settings(
            conn, org_id, OrgSettings(privacy=PrivacyMode.ALL, pseudonymise=True), (),
            actor="test", now=datetime.now(UTC),
        )  # fmt: skip
        assert read_privacy(conn) == {org_id: FlowPrivacy(FlowLogMode.ALL, True)}
    audit.privacy_changed({org_id})
    audit.handle(_packet(SOURCE))
    audit.handle(_packet(STRANGER))  # no session: counted, not stored
    assert audit.flush() == 1
    (event,) = _events(engine, org_id, "net.flow")
    assert event.subject.startswith("pseudonym:")
    assert "source" not in event.payload
    assert "iccid" not in event.payload
    assert event.payload["rule"] == "r1"
    assert audit.log.counts["unattributed"] == 1


def test_events_wait_while_the_database_is_down(engine: Engine) -> None:
    org_id = _org(engine)
    down = create_engine("sqlite:////nonexistent-ztsim-dir/ztsim.db")
    audit = FlowAudit(down, _explainer(org_id), max_pending=3)
    for _ in range(5):
        audit.handle(_packet(SOURCE))
    with pytest.raises(OperationalError):
        audit.flush()
    assert audit.counts["dropped"] == 2  # the oldest two, past the bound
    families = {f.name: f for f in audit.families()}
    assert families["ztsim_net_flow_events_pending"].samples[0].value == 3
    audit.engine = engine  # the database is back
    assert audit.flush() == 4  # the three kept, and the report of the two given up
    events = sorted(_events(engine, org_id, "net.flow"), key=lambda e: e.id)
    assert len(events) == 3
    (report,) = _events(engine, org_id, DROPPED_KIND)
    assert report.payload == {"count": 2}
    assert report.outcome is Outcome.FAILURE
    assert audit.flush() == 0
    down.dispose()


# -- allowed flows, with the role: UE -> gateway (the role's table) -> site -----------------

ALICE, OTHER = "10.45.0.2", "10.45.0.4"  # org A's alice (mode all), org B's alice
OTHER_PREFIX = "172.31.78.0/24"  # org B's site: the topology's second address there
_ROLE_SKIP = why_skip()


@dataclass
class Plane:
    engine: Engine
    ue: str
    gateway: str
    nft: Nft
    state: NetState
    audit: FlowAudit
    a: NetWorld
    b: NetWorld

    def set_mode(self, world: NetWorld, mode: PrivacyMode) -> None:
        """The org's DNS privacy mode, through the DNS use case (a DNS change on the
        feed), and waits until the role applied it."""
        with self.engine.begin() as conn:
            dns_service.put_settings(
                conn, world.org_id, OrgSettings(privacy=mode), (), actor="test",
                now=datetime.now(UTC),
            )  # fmt: skip
        with self.engine.connect() as conn:
            position = outbox.position(conn)
        assert self.state.wait_applied(position, 5.0), "the role did not apply the change"

    def listeners(self) -> int:
        """Conntrack event sockets in the gateway's namespace, as the kernel lists them
        (/proc/net/netlink: protocol 12 with the NEW or DESTROY group joined)."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.gateway, "cat", "/proc/net/netlink"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        mask = groups_mask(EVENT_GROUPS)
        rows = [line.split() for line in done.stdout.splitlines()[1:]]
        return sum(1 for r in rows if int(r[1]) == NETLINK_NETFILTER and int(r[3], 16) & mask)

    def connect(self, source: str, destination: str) -> None:
        """One TCP exchange from `source` in the UE namespace (an HTTP request, answered)."""
        with entered(self.ue):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client:
            client.settimeout(3)
            client.bind((source, 0))
            client.connect((destination, HTTP_PORT))
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200"), answer[:40]


@pytest.fixture
def plane(engine: Engine, sealer: Sealer, tmp_path: Path) -> Iterator[Plane]:
    if _ROLE_SKIP:
        pytest.skip(_ROLE_SKIP)
    a, b = build_world(engine, sealer, seed=7), build_world(engine, sealer, seed=8)
    for world, prefix, vni, address in (
        (a, SITE_PREFIX, 4100, ALICE),
        (b, OTHER_PREFIX, 4101, OTHER),
    ):
        add_site(engine, world, prefix, vni=vni, name=f"hq{vni}")
        add_rule(
            engine, world, "to-site", "allow", identities=[world.alice.identity_id],
            cidrs=[prefix], protocol="tcp", ports=[str(HTTP_PORT)],
        )  # fmt: skip
        start_session(engine, world, world.alice, address)
    with topology((ALICE, OTHER), tmp_path) as t:
        audits: list[FlowAudit] = []  # the role's DNS changes reach the audit, as NetRole wires it
        state = NetState(
            engine, Nft(prefix=t.nft_prefix), reject=True,
            dns_changed=lambda orgs: audits[0].privacy_changed(orgs),
        )  # fmt: skip
        audit = FlowAudit(engine, state.explain_denial, prefix=t.nft_prefix, flush_seconds=0.1)
        audits.append(audit)
        state.start(poll_seconds=0.05)
        try:
            with engine.connect() as conn:
                audit.sites_changed(read_site_tunnels(conn))  # what the role tells it on a read
            audit.start()
            try:
                yield Plane(engine, t.ue, t.gw, Nft(prefix=t.nft_prefix), state, audit, a, b)
            finally:
                audit.stop()
        finally:
            state.stop()


def _allowed(engine: Engine, org_id: str) -> list[Event]:
    return [e for e in _events(engine, org_id, "net.flow") if e.outcome is Outcome.SUCCESS]


@pytest.mark.skipif(bool(_ROLE_SKIP), reason=_ROLE_SKIP or "-")
def test_an_org_in_mode_all_gets_each_allowed_flow_s_start_and_stop(plane: Plane) -> None:
    p = plane
    p.set_mode(p.a, PrivacyMode.ALL)
    assert p.audit.listening
    p.connect(ALICE, SITE)  # org A's SIM to its site: logged
    p.connect(OTHER, INTERNET)  # org B's SIM to its site (blocked-only): not
    # Closed, the entries linger in TIME_WAIT: cut them, as a revocation would.
    assert p.nft.cut_flows_of([ALICE, OTHER]) == 2
    deadline = time.monotonic() + 5
    while len(_allowed(p.engine, p.a.org_id)) < 2:
        assert time.monotonic() < deadline, dict(p.audit.flows.counts)
        time.sleep(0.05)
    start, stop = sorted(_allowed(p.engine, p.a.org_id), key=lambda e: e.id)
    assert start.subject == stop.subject == subject_of("identity", p.a.alice.identity_id)
    assert start.reason == ""
    base = {
        "source": ALICE, "iccid": p.a.alice.iccid, "destination": SITE, "protocol": 6,
        "port": HTTP_PORT, "rule": "to-site", "policy_reasons": ["rule:to-site"],
    }  # fmt: skip
    assert start.payload == {**base, "stage": "start", "suppressed": 0}
    assert {k: stop.payload[k] for k in base} == base
    assert stop.payload["stage"] == "stop"
    assert 0 <= stop.payload["duration_ms"] < 10_000
    assert stop.payload["bytes_out"] > 60  # the request, with the handshake's headers
    assert stop.payload["bytes_in"] > stop.payload["bytes_out"]  # the page
    assert stop.payload["packets_out"] >= 4  # SYN, ACK, the request, FIN
    assert _allowed(p.engine, p.b.org_id) == []
    counts = p.audit.flows.counts
    assert (counts["started"], counts["stopped"], counts["private"]) == (1, 1, 2)
    families = {f.name: f for f in p.audit.families()}
    allowed = {s.labels: s.value for s in families["ztsim_net_allowed_flows_total"].samples}
    assert allowed[(("what", "started"),)] == allowed[(("what", "stopped"),)] == 1
    received = {s.labels: s.value for s in families["ztsim_net_conntrack_total"].samples}
    assert received[(("what", "received"),)] >= 4  # two flows' NEW and DESTROY
    assert families["ztsim_net_conntrack_listening"].samples[0].value == 1


@pytest.mark.skipif(bool(_ROLE_SKIP), reason=_ROLE_SKIP or "-")
def test_no_conntrack_listener_while_no_org_logs_allowed_flows(plane: Plane) -> None:
    p = plane
    assert not p.audit.listening
    assert p.listeners() == 0
    p.connect(ALICE, SITE)
    p.set_mode(p.a, PrivacyMode.ALL)
    assert p.audit.listening
    assert p.listeners() == 1
    done = subprocess.run(
        ["ip", "netns", "exec", p.gateway, "sysctl", "-n", "net.netfilter.nf_conntrack_acct",
         "net.netfilter.nf_conntrack_timestamp"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["1", "1"]
    p.connect(ALICE, SITE)  # followed while open
    deadline = time.monotonic() + 5
    while p.audit.flows.open_flows < 1:
        assert time.monotonic() < deadline, dict(p.audit.flows.counts)
        time.sleep(0.02)
    p.set_mode(p.a, PrivacyMode.BLOCKED_ONLY)
    assert not p.audit.listening
    assert p.listeners() == 0
    assert p.audit.flows.open_flows == 0
    assert p.audit.flows.counts["forgotten"] == 1
    # Cut now, the flows' ends reach no one; nothing is written for them.
    assert p.nft.cut_flows_of([ALICE]) == 2
    p.audit.flush()
    assert [e.payload["stage"] for e in _allowed(p.engine, p.a.org_id)] == ["start"]
    counts = p.audit.conntrack.counts
    assert (counts["opened"], counts["closed"]) == (1, 1)
