"""The conntrack codec: messages built here from the header definitions, messages the real
kernel sent in a namespace this test made, and fuzzing (only `ConntrackError` escapes)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.net.ctnetlink import (
    ConntrackError,
    ConntrackEvent,
    Counters,
    Done,
    FlowTuple,
    Kind,
    groups_mask,
    parse,
)
from ztsim.net.ctnetlink_requests import delete_request, dump_request
from ztsim.net.netlink import NETLINK_NETFILTER, Ack

from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale

# -- building messages from nfnetlink_conntrack.h ------------------------------------------


def attr(kind: int, value: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind | (0x8000 if nested else 0)) + value
    return raw + b"\0" * (-len(raw) % 4)


def message(kind: int, flags: int, body: bytes, seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def tuple_attr(kind: int, src: bytes, dst: bytes, proto: int, sport: int, dport: int) -> bytes:
    v4 = len(src) == 4
    ips = attr(1 if v4 else 3, src) + attr(2 if v4 else 4, dst)
    ports = attr(1, bytes([proto])) + attr(2, struct.pack("!H", sport))
    ports += attr(3, struct.pack("!H", dport))
    return attr(kind, attr(1, ips, True) + attr(2, ports, True), True)


def counters_attr(kind: int, packets: int, size: int) -> bytes:
    return attr(kind, attr(1, struct.pack("!Q", packets)) + attr(2, struct.pack("!Q", size)), True)


UE, SITE = bytes([10, 45, 0, 2]), bytes([172, 31, 0, 9])


def event(msg: int = 0, flags: int = 0x600, family: int = 2, extra: bytes = b"") -> bytes:
    body = struct.pack("!BBH", family, 0, 0)
    body += tuple_attr(1, UE, SITE, 6, 40000, 443) + tuple_attr(2, SITE, UE, 6, 443, 40000)
    body += attr(3, struct.pack("!I", 0x18E)) + attr(8, struct.pack("!I", 7))
    body += attr(12, struct.pack("!I", 0xDEADBEEF)) + extra
    return message(0x100 | msg, flags, body)


def test_a_new_event_built_from_the_header_parses_to_its_tuple_id_and_mark() -> None:
    (got,) = parse(event())
    assert isinstance(got, ConntrackEvent)
    assert got.kind is Kind.NEW
    assert got.original == FlowTuple("10.45.0.2", "172.31.0.9", 6, 40000, 443)
    assert got.reply == FlowTuple("172.31.0.9", "10.45.0.2", 6, 443, 40000)
    assert (got.id, got.mark, got.status, got.family) == (0xDEADBEEF, 7, 0x18E, 2)
    assert got.original_counters is None
    assert got.start_ns is None
    assert got.duration is None


def test_a_destroy_event_carries_counters_and_timestamps() -> None:
    stamps = attr(1, struct.pack("!Q", 5_000_000_000)) + attr(2, struct.pack("!Q", 7_500_000_000))
    extra = counters_attr(9, 10, 1200) + counters_attr(10, 8, 64_000) + attr(20, stamps, True)
    (got,) = parse(event(msg=2, flags=0, extra=extra))
    assert isinstance(got, ConntrackEvent)
    assert got.kind is Kind.DESTROY
    assert (got.original_counters, got.reply_counters) == (Counters(10, 1200), Counters(8, 64_000))
    assert (got.start_ns, got.stop_ns, got.duration) == (5_000_000_000, 7_500_000_000, 2.5)


def test_update_entry_ack_done_and_ipv6() -> None:
    a6, b6 = bytes(15) + b"\1", bytes([0xFD] + [0] * 14 + [9])
    body = struct.pack("!BBH", 10, 0, 0) + tuple_attr(1, a6, b6, 17, 5000, 53)
    datagram = (
        event(flags=0)
        + message(0x101, 0x2, body)
        + message(2, 0, struct.pack("=i", -2) + bytes(16), seq=9)
        + message(3, 0x2, struct.pack("=i", 0), seq=9)
        + message(0x105, 0, b"\0" * 8)  # statistics: skipped
    )
    got = parse(datagram)
    assert [g.kind for g in got if isinstance(g, ConntrackEvent)] == [Kind.UPDATE, Kind.ENTRY]
    six = got[1]
    assert isinstance(six, ConntrackEvent)
    assert six.original == FlowTuple("::1", "fd00::9", 17, 5000, 53)
    assert got[2:] == [Ack(9, -2), Done(9)]


@pytest.mark.parametrize(
    ("datagram", "why"),
    [
        (event()[:-3], "does not fit"),
        (event() + b"\0" * 5, "trailing"),
        (message(0x100, 0, struct.pack("!BBH", 7, 0, 0)), "family 7"),
        (message(0x100, 0, struct.pack("!BBH", 2, 0, 0)), "without its original"),
        (message(0x100, 0, b"\2"), "shorter than its nfgenmsg"),
        (event(family=10), "two addresses of the message's family"),
        (event(extra=attr(8, b"\0\0")), "mark: 2 octets"),
        (event(extra=attr(9, attr(1, bytes(8)), True)), "without packets or bytes"),
        (message(4, 0, b""), "overrun"),
    ],
)
def test_malformed_messages_raise_the_codecs_error(datagram: bytes, why: str) -> None:
    with pytest.raises(ConntrackError, match=why):
        parse(datagram)


@settings(max_examples=400)
@given(st.binary(max_size=400))
def test_random_octets_raise_only_the_codecs_error(data: bytes) -> None:
    with contextlib.suppress(ConntrackError):
        parse(data)


@settings(max_examples=400)
@given(st.data())
def test_a_real_message_cut_or_corrupted_raises_only_the_codecs_error(data: st.DataObject) -> None:
    raw = bytearray(event(extra=counters_attr(9, 1, 2)))
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    with contextlib.suppress(ConntrackError):
        parse(bytes(raw))


def test_requests_and_the_groups_mask() -> None:
    assert groups_mask() == 0b101  # NEW (1) and DESTROY (3): bits 0 and 2
    with pytest.raises(ConntrackError):
        groups_mask((33,))
    dump = dump_request(4, "10.45.0.2", "source")
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", dump)
    assert (length, kind, flags, seq) == (len(dump), 0x101, 0x301, 4)
    assert dump.endswith(attr(25, attr(1, struct.pack("=I", 1)), True))  # filter: IP source
    (entry,) = parse(event())
    assert isinstance(entry, ConntrackEvent)
    delete = delete_request(5, entry)
    assert struct.unpack_from("=HH", delete, 4) == (0x102, 0x5)
    assert tuple_attr(1, UE, SITE, 6, 40000, 443) in delete
    for bad in (("10.45.0", "source"), ("10.45.0.2", "sideways")):
        with pytest.raises(ConntrackError):
            dump_request(1, *bad)
    with pytest.raises(ConntrackError, match="tuple"):
        delete_request(1, ConntrackEvent(Kind.NEW, 2, entry.original))


def test_parse_cost_per_event_is_small() -> None:
    """The figure for the report: a DESTROY with counters and timestamps."""
    stamps = attr(1, struct.pack("!Q", 1)) + attr(2, struct.pack("!Q", 2))
    extra = counters_attr(9, 1, 2) + counters_attr(10, 3, 4) + attr(20, stamps, True)
    raw = event(msg=2, flags=0, extra=extra)  # one message a datagram, as events come
    rounds = 5000
    started = time.perf_counter()
    for _ in range(rounds):
        parse(raw)
    per_event = (time.perf_counter() - started) / rounds
    print(f"parse: {per_event * 1e6:.1f} us per event")
    assert per_event < 200e-6  # loose: a loaded shared machine; measured about 10-20 us


# -- messages from the real kernel -----------------------------------------------------------

_SKIP = netns_unusable()


@pytest.fixture
def namespace() -> Iterator[str]:
    reap_stale()
    ns = f"{new_tag()}-ct"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        ip("netns", "del", ns, check=False)


def _nft(ns: str, script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True
    )


@pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")
def test_events_captured_from_the_kernel_parse(namespace: str) -> None:
    """UDP over loopback in a namespace whose output chain tracks it; accounting and
    timestamps on; the entry deleted with conntrack -D: a NEW then a DESTROY."""
    _nft(
        namespace,
        "add table inet t\n"
        "add chain inet t o { type filter hook output priority 0; }\n"
        "add rule inet t o ct state new counter\n",
    )

    with entered(namespace):
        for name in ("nf_conntrack_acct", "nf_conntrack_timestamp"):
            with open(f"/proc/sys/net/netfilter/{name}", "w") as sysctl:
                sysctl.write("1\n")
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock, sender:
        sock.bind((0, groups_mask()))
        sock.settimeout(2)
        sender.bind(("127.0.0.1", 40001))
        sender.sendto(b"x" * 10, ("127.0.0.1", 9999))
        raw_new = sock.recv(65536)
        subprocess.run(
            ["ip", "netns", "exec", namespace, "conntrack", "-D", "-p", "udp"],
            capture_output=True,
            check=True,
        )
        raw_destroy = sock.recv(65536)
    (new,) = parse(raw_new)
    (gone,) = parse(raw_destroy)
    assert isinstance(new, ConntrackEvent)
    assert isinstance(gone, ConntrackEvent)
    assert (new.kind, gone.kind) == (Kind.NEW, Kind.DESTROY)
    assert new.original == gone.original == FlowTuple("127.0.0.1", "127.0.0.1", 17, 40001, 9999)
    assert new.reply == FlowTuple("127.0.0.1", "127.0.0.1", 17, 9999, 40001)
    assert new.id == gone.id
    assert new.id is not None
    assert new.mark is None  # events leave a mark of 0 out
    assert gone.original_counters == Counters(1, 38)  # 20 IP + 8 UDP + 10 octets
    assert gone.reply_counters == Counters(0, 0)
    assert gone.start_ns is not None
    assert gone.stop_ns is not None
    assert gone.duration is not None
    assert 0 <= gone.duration < 5
    assert abs(gone.stop_ns / 1e9 - time.time()) < 60
