"""Batched conntrack deletion on the real kernel: entries made by UDP over loopback in a
namespace this test makes; the flows of the cut addresses go, the others stay; and the
time against `conntrack -D` (what `Nft.cut_flows` runs, two processes an address)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from ztsim.net.ctdelete import delete_flows
from ztsim.net.ctnetlink import ConntrackError
from ztsim.net.nft import Nft

from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale

_SKIP = netns_unusable()
pytestmark = pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "-")
SERVICE = "10.46.255.1"


@pytest.fixture
def namespace() -> Iterator[str]:
    reap_stale()
    ns = f"{new_tag()}-del"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "local", "10.46.0.0/16", "dev", "lo")
        script = (
            "add table inet t\n"
            "add chain inet t o { type filter hook output priority 0; }\n"
            "add rule inet t o ct state new counter\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True
        )
        yield ns
    finally:
        ip("netns", "del", ns, check=False)


def flows(ns: str, sources: list[str], per_source: int) -> None:
    """`per_source` UDP flows (distinct source ports) from each address to SERVICE."""
    for source in sources:
        for n in range(per_source):
            with entered(ns):
                one = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with one:
                one.bind((source, 20000 + n))
                one.sendto(b"x", (SERVICE, 9000))


def count(ns: str, *match: str) -> int:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "conntrack", "-L", *match],
        capture_output=True,
        text=True,
        check=False,
    )
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def test_the_flows_of_the_addresses_go_and_the_others_stay(namespace: str) -> None:
    cut, kept = ["10.46.0.2", "10.46.0.3"], ["10.46.0.4"]
    flows(namespace, cut + kept, 20)
    assert count(namespace, "-s", "10.46.0.2") == 20
    with entered(namespace):
        deleted = delete_flows(cut)
        assert delete_flows(cut) == 0  # nothing left: idempotent
        with pytest.raises(ConntrackError, match="not an IP address"):
            delete_flows(["10.46.0"])
    assert deleted == 40
    assert count(namespace, "-s", "10.46.0.2") == count(namespace, "-s", "10.46.0.3") == 0
    assert count(namespace, "-s", "10.46.0.4") == 20
    with entered(namespace):
        assert delete_flows([SERVICE]) == 20  # the destination side too
    assert count(namespace) == 0


def test_one_exchange_against_conntrack_processes_on_1000_flows(namespace: str) -> None:
    """Both paths of `delete_flows` (filtered dumps; one whole dump past FILTERED_MAX)."""
    nft = Nft(prefix=("ip", "netns", "exec", namespace))
    timings: dict[str, list[float]] = {}
    for shape, addresses, per in (("1 address x 1000", 1, 1000), ("100 addresses x 10", 100, 10)):
        sources = [f"10.46.{1 + n // 250}.{1 + n % 250}" for n in range(addresses)]
        flows(namespace, sources, per)
        flows(namespace, ["10.46.0.9"], 5)  # not cut: stays
        started = time.perf_counter()
        with entered(namespace):
            assert delete_flows(sources) == addresses * per
        ours = time.perf_counter() - started
        flows(namespace, sources, per)
        started = time.perf_counter()
        assert sum(nft.cut_flows(s) for s in sources) == addresses * per
        theirs = time.perf_counter() - started
        timings[shape] = [ours, theirs]
        assert count(namespace, "-s", "10.46.0.9") == 5
        print(f"{shape}: delete_flows {ours * 1000:.0f} ms, conntrack -D {theirs * 1000:.0f} ms")
    assert timings["100 addresses x 10"][0] < timings["100 addresses x 10"][1]
