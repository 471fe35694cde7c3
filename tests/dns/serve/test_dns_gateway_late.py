"""A session committed a moment ago is answered on its first query, over UDP, TCP and DoH,
though nothing told the gateway yet: its follower polls every 30 s, hears no NOTIFY, and the
changes are written through another engine (no local wake). Only the query's own request
for a read can bring the session in. An unknown source is still REFUSED with an Extended
DNS Error, within the bound; a network default is answered at once; a flood of unknown
sources costs a bounded number of feed reads and does not hold up a known client. On both
backends."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest
from sqlalchemy import Engine

from ztsim.db.engine import make_engine
from ztsim.dns.engine import UNKNOWN_SOURCE_TEXT
from ztsim.dns.policy.identity import SIM_NOT_ACTIVE, Requester
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.serve.doh import DohService
from ztsim.dns.serve.late import LateSources
from ztsim.dns.serve.runner import GatewayProcess
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.feed.follower import MIN_READ_INTERVAL
from ztsim.inventory.lifecycle import SimState

from support.dns_feed_world import FeedWorld, Served, options
from support.dns_gateway_harness import free_port, udp_ask

ICCID, IMSI = "8900000000000000001", "001010000000001"
ALICE_ANSWER, DEFAULT_ANSWER = "192.0.2.7", "192.0.2.1"
DEFAULT_NETWORK = "127.0.9.0/24"  # a network default, away from the session addresses
MARGIN = 0.5  # seconds a loaded machine (five test runs on two cores) may add to a bound
# Where a test asks whether the read brings a session in (not how long a query may wait:
# the bound has tests of its own), a loaded CI machine may take longer than the 0.2 s a
# device is held: a PostgreSQL read once did, and the session was REFUSED over TCP.
PATIENT_SECONDS = 5.0
Reply = tuple[int, list[str], list[tuple[int, str]]]


def _query(qid: int = 0x4242) -> bytes:
    return Message(
        id=qid, flags=Flag.RD, questions=(Question("probe.test", RRType.A),), edns=Edns()
    ).to_wire()


def _reply(wire: bytes) -> Reply:
    """RCODE, A records, Extended DNS Errors."""
    message = decode_message(wire)
    addresses = [str(IPv4Address(r.rdata)) for r in message.answers if r.rtype == RRType.A]
    errors = message.edns.extended_errors() if message.edns else ()
    return message.rcode, addresses, [(e.info_code, e.extra_text) for e in errors]


def _ask(port: int, source: str) -> Reply:
    return _reply(udp_ask(port, _query(), source=source))


@pytest.fixture
def writer(engine: Engine, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The same database through an engine of its own: its commits wake nothing in the
    gateway (the local wake is per engine), as a RADIUS host's commits would not."""
    if engine.dialect.name == "postgresql":
        url, schema = request.getfixturevalue("pg_schema")
        eng = make_engine(str(url), schema=str(schema))
    else:
        eng = make_engine(engine.url.render_as_string(hide_password=False))
    yield eng
    eng.dispose()


@pytest.fixture
def world(writer: Engine) -> FeedWorld:
    world = FeedWorld(writer)
    world.identity("alice")
    world.sim(ICCID, IMSI, "alice")
    world.settings((DEFAULT_NETWORK,))
    world.rule(
        Rule(
            "alice",
            Action.OVERRIDE,
            domains=("probe.test",),
            identities=("alice",),
            answer=(ALICE_ANSWER,),
        )
    )
    world.rule(Rule("all", Action.OVERRIDE, domains=("probe.test",), answer=(DEFAULT_ANSWER,)))
    return world


@pytest.fixture
def served(engine: Engine, world: FeedWorld) -> Iterator[Served]:
    process = GatewayProcess(options(engine, free_port()))
    process.feed.poll_seconds = 30.0  # no poll during a test
    process.feed.listen = False  # no NOTIFY
    with Served(process) as served:
        # The start's own first read, done: from here on only requests read the feed.
        assert process.feed.read_identities_now().result(5) is True
        yield served


def _late(served: Served) -> LateSources:
    late = served.process.gateway.late
    assert late is not None
    return late


def _session(world: FeedWorld, served: Served, address: str) -> int:
    """Commit a session at `address`; the gateway has not applied it yet, and waits for the
    read that brings it in however slow the machine is."""
    _late(served).wait_seconds = PATIENT_SECONDS
    seq = world.session(f"s-{address}", address, ICCID, IMSI, "alice")
    assert served.process.position() < seq  # nothing woke the follower: the test can tell
    return seq


def test_a_session_committed_just_now_is_answered_on_its_first_udp_query(
    world: FeedWorld, served: Served
) -> None:
    process, port = served.process, served.process.options.port
    reads = process.feed.identity_reads
    seq = _session(world, served, "127.0.0.41")
    assert _ask(port, "127.0.0.41") == (Rcode.NOERROR, [ALICE_ANSWER], [])
    assert process.position() >= seq
    assert process.feed.identity_reads == reads + 1  # the one read the query asked for
    assert (_late(served).waited, _late(served).waiting) == (1, 0)
    assert _ask(port, "127.0.0.41") == (Rcode.NOERROR, [ALICE_ANSWER], [])  # known now
    assert _late(served).waited == 1


def test_an_unknown_source_is_still_refused_within_the_bound(served: Served) -> None:
    process, port = served.process, served.process.options.port
    reads = process.feed.identity_reads
    asked = time.monotonic()
    refused = _ask(port, "127.0.0.42")
    took = time.monotonic() - asked
    assert refused == (Rcode.REFUSED, [], [(EdeCode.PROHIBITED, UNKNOWN_SOURCE_TEXT)])
    assert took < _late(served).wait_seconds + MARGIN
    assert process.feed.identity_reads == reads + 1
    assert _late(served).waited == 1


def test_past_the_bound_an_unknown_source_is_refused_at_once(served: Served) -> None:
    process, port = served.process, served.process.options.port
    late = _late(served)
    late.max_waiting = 0
    reads = process.feed.identity_reads
    refused = _ask(port, "127.0.0.42")
    assert refused == (Rcode.REFUSED, [], [(EdeCode.PROHIBITED, UNKNOWN_SOURCE_TEXT)])
    assert (late.waited, late.turned_away) == (0, 1)
    assert process.feed.identity_reads == reads  # nothing asked of the database


def test_a_network_default_is_answered_at_once(served: Served) -> None:
    process, port = served.process, served.process.options.port
    reads = process.feed.identity_reads
    assert _ask(port, "127.0.9.5") == (Rcode.NOERROR, [DEFAULT_ANSWER], [])
    assert _late(served).waited == 0
    assert process.feed.identity_reads == reads


def _tcp_ask(sock: socket.socket, qid: int) -> Reply:
    wire = _query(qid)
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    head = _recv_exactly(sock, 2)
    return _reply(_recv_exactly(sock, struct.unpack("!H", head)[0]))


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_tcp_a_new_session_is_answered_and_a_suspend_reaches_an_open_connection(
    world: FeedWorld, served: Served
) -> None:
    process, port = served.process, served.process.options.port
    _session(world, served, "127.0.0.43")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.43", 0))
        sock.connect(("127.0.0.1", port))
        assert _tcp_ask(sock, 1) == (Rcode.NOERROR, [ALICE_ANSWER], [])
        assert _late(served).waited == 1
        # The requester is looked up per query: a suspend applied while the connection
        # stays open refuses its next query.
        seq = world.sim_state(ICCID, SimState.ACTIVE, SimState.SUSPENDED)
        assert process.feed.read_identities_now().result(5) is True
        assert process.position() >= seq
        assert _tcp_ask(sock, 2) == (Rcode.REFUSED, [], [(EdeCode.PROHIBITED, SIM_NOT_ACTIVE)])


def test_doh_by_source_finds_a_session_committed_just_now(world: FeedWorld, served: Served) -> None:
    doh = DohService(served.process.gateway, served.loop)
    _session(world, served, "127.0.0.44")
    assert doh.by_source("127.0.0.44") is None  # the lookup that does not wait
    who = served.call(_on_another_loop(doh, "127.0.0.44"))
    assert who is not None
    assert who.identity_id == "alice"
    assert served.call(_on_another_loop(doh, "127.0.0.45")) is None  # still unknown


async def _on_another_loop(doh: DohService, address: str) -> Requester | None:
    # As the API's route calls it: from its own loop, handed to the gateway's.
    return await doh.requester(address)


# -- a flood of unknown sources ----------------------------------------------------------


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Flood:
    """`sources` sockets on unknown loopback addresses sending queries in bursts (one per
    source every `pause` seconds) for `seconds`; replies are drained afterwards."""

    def __init__(self, port: int, sources: int = 40, seconds: float = 1.5) -> None:
        self.port, self.seconds = port, seconds
        self.socks = []
        for i in range(sources):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.7.{i + 1}", 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.socks.append(sock)
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        wire = _query()
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:  # bounded by time
            for sock in self.socks:
                sock.sendto(wire, ("127.0.0.1", self.port))
                self.sent += 1
            time.sleep(0.01)

    def replies(self) -> list[Reply]:
        got = []
        for sock in self.socks:
            sock.settimeout(0.5)
            while True:
                try:
                    got.append(_reply(sock.recv(4096)))
                except TimeoutError:
                    break
                sock.settimeout(0.05)
            sock.close()
        return got


def test_a_flood_of_unknown_sources_is_bounded_and_does_not_hold_up_a_known_client(
    world: FeedWorld, served: Served
) -> None:
    process, port = served.process, served.process.options.port
    late = _late(served)
    late.max_waiting = 16  # small, so the flood meets the bound too
    seq = world.session("known", "127.0.0.46", ICCID, IMSI, "alice")
    assert process.feed.read_identities_now().result(5) is True
    assert process.position() >= seq
    flood = Flood(port)
    reads = process.feed.identity_reads
    started = time.monotonic()
    flood.thread.start()
    latencies = []
    while flood.thread.is_alive():  # bounded: the flood's length
        asked = time.monotonic()
        assert _ask(port, "127.0.0.46") == (Rcode.NOERROR, [ALICE_ANSWER], [])
        latencies.append(time.monotonic() - asked)
        time.sleep(0.005)
    flood.thread.join()
    assert _wait(lambda: late.waiting == 0, 5)  # the last waiting queries answered
    elapsed = time.monotonic() - started
    made = process.feed.identity_reads - reads
    replies = flood.replies()
    latencies.sort()
    print(
        f"\n[late] flood: {flood.sent} queries from {len(flood.socks)} unknown sources in "
        f"{elapsed:.2f} s; {len(replies)} replies; {made} feed reads; waited {late.waited}, "
        f"refused at once {late.turned_away}; known client: {len(latencies)} answers, "
        f"median {latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    assert len(latencies) >= 10
    # Never held as long as an unknown source may be: a known client is not queued behind
    # them. Judged on the 90th percentile, since a busy CI machine can deschedule this
    # thread past the bound once in a while (a 213 ms maximum was seen) without the
    # gateway holding anything.
    assert latencies[len(latencies) * 9 // 10] < late.wait_seconds
    assert latencies[len(latencies) // 2] < late.wait_seconds / 2
    assert 1 <= made <= elapsed / MIN_READ_INTERVAL + 3
    assert late.waited > 0
    assert late.turned_away > 0
    assert late.waiting == 0
    assert len(replies) >= 0.9 * flood.sent
    assert all(
        r == (Rcode.REFUSED, [], [(EdeCode.PROHIBITED, UNKNOWN_SOURCE_TEXT)]) for r in replies
    )
