"""Every upstream down: cached names are still answered (RFC 8767), others get SERVFAIL;
junk packets on the wire never stop the server."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest

from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.rules import OrgPolicy, PolicyData
from ztsim.dns.policy.snapshot import PolicySnapshot

from support.dns_gateway_harness import (
    DNSMASQ,
    KDIG,
    STORE_KEY,
    RunningGateway,
    dnsmasq,
    kdig,
    records,
    udp_ask,
)

pytestmark = pytest.mark.skipif(
    DNSMASQ is None or KDIG is None, reason="needs dnsmasq (dnsmasq-base) and kdig"
)


def test_serve_stale_after_upstream_dies(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.1 www.example.test\n")
    policy = PolicySnapshot(PolicyData({"org": OrgPolicy("org")}), STORE_KEY)
    identities = IdentitySnapshot.build([("127.0.0.1", Requester("org", "id-1"))])
    now = [1000.0]
    with ExitStack() as stack:
        with dnsmasq(hosts) as port:
            running = RunningGateway(policy, identities, [("127.0.0.1", port)], timeout=0.3)
            running.gateway.clock = lambda: now[0]
            stack.enter_context(running)
            fresh = kdig(running.port, "www.example.test", "A", "+edns")
            assert records(fresh) == [["www.example.test.", "300", "IN", "A", "192.0.2.1"]]
        # dnsmasq is gone now.
        now[0] += 400  # past the TTL: only a stale answer is left
        out = kdig(running.port, "www.example.test", "A", "+edns")
        assert records(out) == [["www.example.test.", "30", "IN", "A", "192.0.2.1"]], out
        assert "EDE: 3 (Stale Answer)" in out
        out = kdig(running.port, "other.example.test", "A", "+edns")
        assert "status: SERVFAIL" in out, out
        assert "EDE: 22 (No Reachable Authority)" in out


def test_junk_on_the_wire_never_stops_the_server() -> None:
    policy = PolicySnapshot(PolicyData({"org": OrgPolicy("org")}), STORE_KEY)
    identities = IdentitySnapshot.build([("127.0.0.1", Requester("org", "id-1"))])
    rng = random.Random(5)
    with RunningGateway(policy, identities, []) as running:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for size in range(0, 300, 3):
                sock.sendto(rng.randbytes(size), ("127.0.0.1", running.port))
        probe = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
        reply = udp_ask(running.port, probe)
        assert reply[:2] == b"\xab\xcd"
        assert reply[3] & 0xF == 2  # SERVFAIL: no upstream configured, and no crash
