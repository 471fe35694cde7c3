"""The NFLOG listener on a real kernel: a namespace whose input chain logs and drops what a
veth peer sends, the socket opened inside it, real packets read back parsed. Skips when
namespaces cannot be made (not root) or nft is missing."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ztsim.net import nft_documents as docs
from ztsim.net.denials import (
    EVENT_KIND,
    SUPPRESSED_KIND,
    DenialContext,
    DenialLog,
    FlowEvents,
    FlowPrivacy,
)
from ztsim.net.nflog import Flow, NflogError, NflogPacket, flow_of
from ztsim.net.nft import Nft
from ztsim.net.ruleset import flatten
from ztsim.net.serve.nflog_socket import NflogReader, open_nflog

from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale

GROUP = docs.NFLOG_GROUP  # 5701, per the #20 contract
GATEWAY, PEER = "10.98.0.1", "10.98.0.2"


def _why_skip() -> str:
    reason = netns_unusable()
    if not reason and shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
        reason = "needs nft"
    return reason


_SKIP = _why_skip()
pytestmark = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")


@dataclass(frozen=True)
class Pair:
    gateway: str  # the namespace with the table and the listener
    peer: str

    def deny_and_log(self, rate: int, burst: int, prefix: str = "class_x") -> None:
        """Table `inet audit`: what PEER sends is logged (at most `rate`/s after `burst`)
        to GROUP with `prefix`, then dropped: the contract's two rules."""
        where = {"family": "inet", "table": "audit"}
        source = {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                "right": PEER,
            }
        }
        limit = {"limit": {"rate": rate, "per": "second", "burst": burst}}
        log = {"log": {"prefix": prefix, "group": GROUP}}
        chain = {**where, "name": "input", "type": "filter", "hook": "input", "prio": 0}
        table = {"family": "inet", "name": "audit"}
        document: dict[str, Any] = {
            "nftables": [
                {"add": {"table": table}},
                {"delete": {"table": table}},
                {"add": {"table": table}},
                {"add": {"chain": {**chain, "policy": "accept"}}},
                {"add": {"rule": {**where, "chain": "input", "expr": [source, limit, log]}}},
                {
                    "add": {
                        "rule": {
                            **where,
                            "chain": "input",
                            "expr": [source, {"counter": None}, {"drop": None}],
                        }
                    }
                },
            ]
        }
        Nft(prefix=("ip", "netns", "exec", self.gateway)).apply(document)

    def listen(self, handler: Callable[[NflogPacket], None]) -> NflogReader:
        with entered(self.gateway):
            sock = open_nflog(GROUP)
        return NflogReader(sock, handler)

    def udp(self, count: int, port: int = 5353) -> None:
        with entered(self.peer):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            for n in range(count):
                sock.sendto(n.to_bytes(4, "big"), (GATEWAY, port))

    def tcp_connect(self, port: int) -> None:
        with entered(self.peer):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):  # dropped: the SYN goes unanswered
                sock.connect((GATEWAY, port))


@pytest.fixture
def pair() -> Iterator[Pair]:
    reap_stale()
    tag = new_tag()
    p = Pair(f"{tag}-gw", f"{tag}-peer")
    made: list[str] = []
    try:
        for ns in (p.gateway, p.peer):
            ip("netns", "add", ns)
            made.append(ns)
        ip(
            "-n",
            p.gateway,
            "link",
            "add",
            "g0",
            "type",
            "veth",
            "peer",
            "name",
            "p0",
            "netns",
            p.peer,
        )
        ip("-n", p.gateway, "addr", "add", f"{GATEWAY}/24", "dev", "g0")
        ip("-n", p.peer, "addr", "add", f"{PEER}/24", "dev", "p0")
        ip("-n", p.gateway, "link", "set", "g0", "up")
        ip("-n", p.peer, "link", "set", "p0", "up")
        yield p
    finally:
        for ns in reversed(made):
            ip("netns", "del", ns, check=False)


class Collected:
    def __init__(self) -> None:
        self.packets: list[NflogPacket] = []
        self._changed = threading.Condition()

    def __call__(self, packet: NflogPacket) -> None:
        with self._changed:
            self.packets.append(packet)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[NflogPacket]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.packets) >= count, timeout)
            return list(self.packets)


def test_denied_udp_and_tcp_arrive_parsed_with_prefix_and_flow(pair: Pair) -> None:
    pair.deny_and_log(rate=1000, burst=1000)
    got = Collected()
    with pair.listen(got) as reader:
        pair.udp(1, port=5353)
        pair.tcp_connect(443)  # the SYN and, within 0.3 s, no retransmission
        packets = got.wait_for(2)
    assert len(packets) == 2
    assert {(p.group, p.family, p.prefix) for p in packets} == {(GROUP, 2, "class_x")}
    flows = [flow_of(p.payload) for p in packets]
    assert [(f.source, f.destination, f.protocol, f.port) for f in flows] == [
        (PEER, GATEWAY, 17, 5353),
        (PEER, GATEWAY, 6, 443),
    ]
    assert all(p.indev is not None and p.timestamp is not None for p in packets)
    assert len(packets[1].payload) <= 128  # the copy range: headers only
    assert reader.counts == {"received": 2, "lost": 0}


def test_a_flood_is_rate_limited_per_source_with_the_suppressed_count_right(pair: Pair) -> None:
    pair.deny_and_log(rate=10_000, burst=10_000)  # the kernel passes them all
    got = Collected()
    sent = 200
    with pair.listen(got) as reader:
        pair.udp(sent)
        packets = got.wait_for(sent)
    assert len(packets) == sent
    assert reader.counts["lost"] == 0
    assert [p.seq for p in packets] == list(range(sent))  # the kernel numbered them all

    who = DenialContext("org-1", "id-1", None, None, ("default:deny",))
    asked: list[Flow] = []

    def explain(source: str, destination: str, protocol: int, port: int) -> DenialContext:
        asked.append(Flow(source, destination, protocol, port))
        return who

    log = DenialLog(explain, FlowEvents(lambda org: FlowPrivacy(), b"key"), rate=5, burst=10)
    events = [e for p in packets for e in log.record(p, now=50.0)]
    events += log.flush(51.0)
    assert [e.kind for e in events] == [EVENT_KIND] * 10 + [SUPPRESSED_KIND]
    assert events[-1].payload["suppressed"] == sent - 10
    assert {(e.payload["source"], e.payload["port"], e.payload["chain"]) for e in events} == {
        (PEER, 5353, "class_x")
    }
    assert len(asked) == 11  # ten events and the summary, not two hundred look-ups


def test_the_kernels_limit_bounds_what_is_logged(pair: Pair) -> None:
    pair.deny_and_log(rate=10, burst=5)
    got = Collected()
    with pair.listen(got):
        pair.udp(200)
        got.wait_for(200, timeout=1.0)  # times out: the limit let only a few through
    assert 5 <= len(got.packets) <= 10


def test_a_foreign_sender_is_ignored_and_the_reader_goes_on(pair: Pair) -> None:
    pair.deny_and_log(rate=1000, burst=1000)
    got = Collected()
    with pair.listen(got) as reader:
        port_id = reader.port_id
        with entered(pair.gateway):
            forger = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        with forger:
            forger.bind((0, 0))
            forged = bytes(16) + b"garbage from a local process"
            for _ in range(3):
                forger.sendto(forged, (port_id, 0))
        pair.udp(1)
        packets = got.wait_for(1)
        deadline = time.monotonic() + 2
        while reader.counts["foreign"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(packets) == 1
    assert reader.counts["foreign"] == 3


def test_a_second_listener_of_the_group_is_refused_and_stop_is_clean(pair: Pair) -> None:
    reader = pair.listen(lambda packet: None)
    reader.start()
    try:
        with entered(pair.gateway), pytest.raises(NflogError, match=r"EPERM.*another socket"):
            open_nflog(GROUP)
    finally:
        started = time.monotonic()
        reader.stop()
    assert time.monotonic() - started < 1
    assert not any(t.name == "ztsim-nflog" and t.is_alive() for t in threading.enumerate())
    with entered(pair.gateway):
        open_nflog(GROUP).close()  # the group is free again once the reader closed its socket


def test_a_handler_that_raises_is_counted_and_reading_goes_on(pair: Pair) -> None:
    pair.deny_and_log(rate=1000, burst=1000)
    got = Collected()

    def handler(packet: NflogPacket) -> None:
        got(packet)
        if len(got.packets) == 1:
            raise RuntimeError("the first packet's handling fails")

    with pair.listen(handler) as reader:
        pair.udp(3)
        packets = got.wait_for(3)
    assert len(packets) == 3
    assert reader.counts["handler_failed"] == 1


SITE_HOST, NO_CLASS = "172.31.0.9", "10.98.0.3"


def test_ztsim_tables_denies_reach_the_denial_log_with_chain_and_reason(pair: Pair) -> None:
    """The gateway's own table (`nft_documents.whole_table`), forwarding towards a site
    network (a veth pair inside the gateway's namespace): a class that allows nothing, and a source in no class."""
    ip("-n", pair.gateway, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
    ip("-n", pair.gateway, "link", "set", "d1", "up")
    ip("-n", pair.gateway, "addr", "add", "172.31.0.1/24", "dev", "d0")
    ip("-n", pair.gateway, "link", "set", "d0", "up")
    ip("-n", pair.peer, "addr", "add", f"{NO_CLASS}/24", "dev", "p0")
    ip("-n", pair.peer, "route", "add", "172.31.0.0/24", "via", GATEWAY)
    ip("netns", "exec", pair.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    table = docs.whole_table({"staff": flatten([])}, {PEER: "staff"})
    Nft(prefix=("ip", "netns", "exec", pair.gateway)).apply(docs.batch(table))

    got = Collected()
    with pair.listen(got):
        for source in (PEER, NO_CLASS):
            with entered(pair.peer):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sock:
                sock.bind((source, 0))
                sock.sendto(b"x", (SITE_HOST, 9000))
        packets = got.wait_for(2)
    assert [(p.group, p.prefix) for p in packets] == [
        (docs.NFLOG_GROUP, "class_staff"),
        (docs.NFLOG_GROUP, "forward"),
    ]

    def explain(source: str, destination: str, protocol: int, port: int) -> DenialContext:
        return DenialContext("org-1", None, None, None, ("default:deny",))

    log = DenialLog(explain, FlowEvents(lambda org: FlowPrivacy(), b"key"))
    events = [e for p in packets for e in log.record(p, now=0.0)]
    assert [(e.reason, e.payload["source"], e.payload["destination"]) for e in events] == [
        ("policy_denied", PEER, SITE_HOST),
        ("no_session", NO_CLASS, SITE_HOST),
    ]
