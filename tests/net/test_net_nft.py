"""The table in a real kernel: UE -> gateway (our table) -> site, in three fresh namespaces.

Verdicts are observed with real packets: curl from the UE's addresses to an HTTP server
in the site namespace, and a long-lived TCP echo flow that a class change plus
`cut_flows` must stop within 1 s; 50 addresses' open flows all stop when moved and cut
at once (`cut_flows_of`), timed against 50 `cut_flows`. The namespaces, the site's HTTP
server and the echo flow are `support.net_role_topology`'s. Skips when not root or a tool
is missing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.net import nft_documents as docs
from ztsim.net import nft_names as names
from ztsim.net.nft import Nft, NftError, elements_of
from ztsim.net.ruleset import flatten
from ztsim.policy.rules import PolicyRule

from support import net_role_topology
from support.net_role_topology import ECHO_PORT, HTTP_PORT, SITE, Echo, Topology, why_skip
from support.net_rules import by_reference, number, probes, rules
from support.netns_hosts import entered, ip, new_tag, reap_stale

ALLOWED, DENIED, NO_CLASS = "10.45.0.2", "10.45.0.3", "10.45.0.4"

_SKIP = why_skip()
needs_netns = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")


# -- without root: the edge's failures are NftError, never something else ---------------


def test_a_missing_nft_is_an_nft_error() -> None:
    with pytest.raises(NftError, match="could not be started"):
        Nft(nft="/nonexistent/nft").apply(docs.batch([]))


def test_cutting_no_address_does_nothing_and_a_bad_one_is_an_nft_error() -> None:
    assert Nft(prefix=("/nonexistent/prefix",)).cut_flows_of([]) == 0  # no process either
    with pytest.raises(NftError, match="not an IP address"):
        Nft().cut_flows_of(["10.45.0"])


def test_a_prefix_that_enters_no_namespace_is_an_nft_error() -> None:
    started = time.monotonic()
    with pytest.raises(NftError, match=r"2 addresses were not cut: false started no shell"):
        Nft(prefix=("false",), timeout=2).cut_flows_of(["10.0.0.1", "::1"])
    assert time.monotonic() - started < 2


def test_a_hanging_nft_is_an_nft_error_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(NftError, match=r"did not finish within 0\.3 s"):
        Nft(prefix=("sh", "-c", "sleep 5", "sh"), timeout=0.3).apply(docs.batch([]))
    assert time.monotonic() - started < 3


# -- the topology ------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pinged(t: Topology, source: str) -> bool:
    """An ICMP echo (RFC 792) from `source` in the UE namespace to the site is answered."""
    with entered(t.ue):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        sock.bind((source, 0))
        sock.settimeout(1)
        body = bytes([8, 0, 0, 0, 0x12, 0x34, 0, 1]) + b"ztsim-probe!"
        sock.sendto(body[:2] + _checksum(body).to_bytes(2, "big") + body[4:], (SITE, 0))
        try:
            while True:
                packet, peer = sock.recvfrom(2048)
                header = (packet[0] & 0x0F) * 4
                if peer[0] == SITE and packet[header] == 0:  # an echo reply
                    return True
        except TimeoutError:
            return False


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    with net_role_topology.topology((ALLOWED, DENIED, NO_CLASS), tmp_path) as t:
        yield t


def _rules(*specs: tuple[str, str, dict[str, object]]) -> list[PolicyRule]:
    return [PolicyRule.from_spec("network", name, action, spec) for name, action, spec in specs]


STAFF = _rules(
    ("no-ssh", "deny", {"cidrs": [f"{SITE}/32"], "protocol": "tcp", "ports": ["22"]}),
    (
        "site",
        "allow",
        {"cidrs": ["172.31.77.0/24"], "protocol": "tcp", "ports": [str(HTTP_PORT), str(ECHO_PORT)]},
    ),
)
GUESTS = _rules(("ping", "allow", {"cidrs": ["172.31.77.0/24"], "protocol": "icmp"}))


@needs_netns
def test_verdicts_with_real_packets_and_revocation_mid_flow(topology: Topology) -> None:
    t = topology
    nft = Nft(prefix=("ip", "netns", "exec", t.gw))
    staff, guests = flatten(STAFF), flatten(GUESTS)
    table = docs.whole_table(
        {"staff": staff, "guests": guests}, {ALLOWED: "staff", DENIED: "guests"}, reject=True
    )
    nft.apply(docs.batch(table))

    listing = nft.table()
    assert len(elements_of(listing, "subjects_v4")) == 2
    assert len(elements_of(listing, "class_staff_v4")) == len(staff.v4)
    assert elements_of(listing, "class_staff_v6") == []

    assert t.curl(ALLOWED) == "200"
    assert t.curl(DENIED).startswith("failed")
    assert t.curl(NO_CLASS).startswith("failed")
    assert pinged(t, DENIED)  # guests may ping
    assert not pinged(t, NO_CLASS)

    echo = Echo(t, ALLOWED)
    try:
        time.sleep(0.3)
        assert echo.echoes, "the long-lived flow never echoed"
        revoked = time.monotonic()
        nft.apply(docs.batch(docs.set_subjects({ALLOWED: "guests"}, remove=[ALLOWED])))
        applied = time.monotonic()
        cut = nft.cut_flows(ALLOWED)
        done = time.monotonic()
        time.sleep(1.5)
        last = max(echo.echoes)
    finally:
        echo.close()
    stopped_after = max(0.0, last - revoked)
    print(f"\nrevocation: nft batch {1000 * (applied - revoked):.1f} ms, conntrack -D "
          f"{1000 * (done - applied):.1f} ms ({cut} entries); last echo {1000 * stopped_after:.1f} ms "
          "after the revocation began")  # fmt: skip
    assert cut >= 1
    assert stopped_after < 1.0

    started = time.monotonic()
    with pytest.raises(OSError, match=r"No route to host|refused"):
        t.connect(ALLOWED)
    refused_in = time.monotonic() - started
    print(f"new flow refused in {1000 * refused_in:.1f} ms")
    assert refused_in < 0.1
    assert t.curl(ALLOWED).startswith("failed")


MANY = tuple(f"10.45.0.{10 + n}" for n in range(50))


class EchoFleet:
    """A TCP echo server in the site namespace (one thread, one selector) and one client
    flow from each of many UE addresses."""

    def __init__(self, t: Topology) -> None:
        self.t = t
        with entered(t.site):
            self.listener = socket.create_server((SITE, ECHO_PORT), backlog=128)
        self.listener.setblocking(False)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.clients: list[socket.socket] = []

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            deadline = time.monotonic() + 120  # bounded, whatever the test does
            while not self.stopping.is_set() and time.monotonic() < deadline:
                for key, _ in selector.select(0.05):
                    if key.fileobj is self.listener:
                        conn, _ = self.listener.accept()
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                        continue
                    assert isinstance(key.fileobj, socket.socket)
                    conn = key.fileobj
                    try:
                        data = conn.recv(4096)
                        conn.sendall(data)
                    except OSError:
                        data = b""  # reset by the gateway's reject: this flow is over
                    if not data:
                        selector.unregister(conn)
                        conn.close()
            for key in list(selector.get_map().values()):
                if key.fileobj is not self.listener:
                    assert isinstance(key.fileobj, socket.socket)
                    key.fileobj.close()

    def connect(self, sources: Sequence[str]) -> None:
        for client in self.clients:
            client.close()
        self.clients = []
        for source in sources:
            with entered(self.t.ue):
                client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.clients.append(client)
            client.bind((source, 0))
            client.settimeout(2)
            client.connect((SITE, ECHO_PORT))
            client.setblocking(False)

    def answered(self, wait: float) -> int:
        """Each client sends one octet; how many get it back within `wait` seconds."""
        for client in self.clients:
            with contextlib.suppress(OSError):  # refused by the gateway: not answered
                client.send(b"x")
        answered: set[socket.socket] = set()
        with selectors.DefaultSelector() as selector:
            for client in self.clients:
                selector.register(client, selectors.EVENT_READ)
            deadline = time.monotonic() + wait
            while len(answered) < len(self.clients) and time.monotonic() < deadline:
                for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                    assert isinstance(key.fileobj, socket.socket)
                    selector.unregister(key.fileobj)
                    with contextlib.suppress(OSError):
                        if key.fileobj.recv(16):
                            answered.add(key.fileobj)
        return len(answered)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        for client in self.clients:
            client.close()
        self.listener.close()


@needs_netns
def test_the_open_flows_of_50_addresses_are_cut_at_once(topology: Topology) -> None:
    """Moved out of the class that allowed them, all 50 flows stop once cut in one call;
    the same with one `cut_flows` (two conntrack processes) an address, for the figure."""
    t = topology
    for address in MANY:
        ip("-n", t.ue, "addr", "add", f"{address}/24", "dev", "u0")
    nft = Nft(prefix=("ip", "netns", "exec", t.gw))
    staff = {a: "staff" for a in MANY}
    nft.apply(
        docs.batch(
            docs.whole_table({"staff": flatten(STAFF), "guests": flatten(GUESTS)}, staff, True)
        )
    )
    fleet = EchoFleet(t)
    timings: dict[str, float] = {}
    try:
        for way in ("cut_flows_of", "50 x cut_flows"):
            fleet.connect(MANY)
            assert fleet.answered(wait=3) == len(MANY), way
            nft.apply(docs.batch(docs.set_subjects({a: "guests" for a in MANY}, remove=MANY)))
            started = time.perf_counter()
            if way == "cut_flows_of":
                cut = nft.cut_flows_of(MANY)
            else:
                cut = sum(nft.cut_flows(a) for a in MANY)
            timings[way] = time.perf_counter() - started
            assert cut == len(MANY), way  # one entry a flow, in the gateway's namespace
            assert fleet.answered(wait=0.5) == 0, way  # every flow stopped
            nft.apply(docs.batch(docs.set_subjects(staff, remove=MANY)))  # for the next way
    finally:
        fleet.close()
    ours, theirs = timings["cut_flows_of"], timings["50 x cut_flows"]
    print(
        f"\n50 addresses, one flow each: cut_flows_of {ours * 1000:.1f} ms, "
        f"50 x cut_flows {theirs * 1000:.1f} ms ({theirs / ours:.0f}x)"
    )
    assert ours < theirs


@needs_netns
def test_classes_are_replaced_and_removed_one_at_a_time(topology: Topology) -> None:
    t = topology
    nft = Nft(prefix=("ip", "netns", "exec", t.gw))
    nft.apply(
        docs.batch(
            docs.whole_table({"staff": flatten([]), "guests": flatten(GUESTS)}, {ALLOWED: "staff"})
        )
    )
    assert t.curl(ALLOWED).startswith("failed")  # an empty class denies (drop: curl times out)

    nft.apply(docs.batch(docs.replace_class("staff", flatten(STAFF))))
    assert t.curl(ALLOWED) == "200"
    assert len(elements_of(nft.table(), "class_guests_v4")) == len(flatten(GUESTS).v4)

    with pytest.raises(NftError, match="nft refused the batch"):
        nft.apply(docs.batch(docs.delete_class("staff")))  # still jumped to by a subject
    assert t.curl(ALLOWED) == "200"  # the refused batch changed nothing

    nft.apply(docs.batch(docs.set_subjects(remove=[ALLOWED]), docs.delete_class("staff")))
    assert elements_of(nft.table(), "subjects_v4") == []
    assert t.curl(ALLOWED).startswith("failed")
    with pytest.raises(NftError, match="nft refused the batch"):
        nft.apply(docs.batch(docs.set_subjects(remove=[ALLOWED])))  # not there any more
    assert nft.cut_flows(NO_CLASS) == 0


# -- Hypothesis against the kernel: its lookup gives the reference evaluator's verdict ----


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    if _SKIP:
        pytest.skip(_SKIP)
    reap_stale()
    ns = f"{new_tag()}-lookup"
    ip("netns", "add", ns)
    try:
        yield ns
    finally:
        ip("netns", "del", ns, check=False)


def kernel_verdict(ns: str, address: str, protocol: int, port: int) -> str:
    """What the class chain does: the map's element if the kernel finds one, else deny."""
    name = names.class_map("probe", 4 if ":" not in address else 6)
    query = f"get element inet ztsim {name} {{ {address} . {protocol} . {port} }}"
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", query],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        assert "No such file or directory" in done.stderr, done.stderr
        return "drop"
    return "accept" if ": accept" in done.stdout else "drop"


@needs_netns
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rules(), st.data())
def test_the_kernel_agrees_with_the_reference(
    namespace: str, drawn: tuple[list[PolicyRule], list[PolicyRule]], data: st.DataObject
) -> None:
    everyone, alices = drawn
    flat = flatten(alices)
    nft = Nft(prefix=("ip", "netns", "exec", namespace))
    nft.apply(docs.batch(docs.whole_table({"probe": flat}, {})))  # nft takes the elements
    for address, protocol, port in data.draw(probes(everyone))[:8]:
        expected = by_reference(everyone, address, protocol, port)
        assert kernel_verdict(namespace, address, number(protocol, address), port) == expected
    # The elements' corners, and just past them: the JSON's prefixes and ranges say what we meant.
    corners = st.lists(st.sampled_from(flat.v4 + flat.v6), max_size=3) if len(flat) else st.just([])
    for element in data.draw(corners):
        for value, proto, dport in (
            (element.address[0], element.protocol[0], element.port[0]),
            (element.address[1], element.protocol[1], element.port[1]),
            (element.address[1] + 1, element.protocol[1], element.port[1]),
        ):
            if value >= 1 << (32 if element.family == 4 else 128):
                continue
            make = ipaddress.IPv4Address if element.family == 4 else ipaddress.IPv6Address
            text = str(make(value))
            expected = flat.verdict(text, proto, dport)
            assert kernel_verdict(namespace, text, proto, dport) == expected, (
                text,
                proto,
                dport,
            )
