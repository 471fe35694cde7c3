"""Forwarding over DNS over TLS (RFC 7858) with failover: gateway A asks gateway B over
TLS (B forwards to dnsmasq) after its first upstream, a dead UDP port, fails."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.rules import OrgPolicy, PolicyData
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.upstream import UpstreamSpec

from support.dns_gateway_harness import (
    DNSMASQ,
    KDIG,
    STORE_KEY,
    RunningGateway,
    dnsmasq,
    free_port,
    kdig,
    records,
)
from support.dns_tls_cert import HOSTNAME, write_cert

pytestmark = pytest.mark.skipif(DNSMASQ is None or KDIG is None, reason="needs dnsmasq, kdig")


def test_forwarding_over_tls_with_failover(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.44 tls-only.example.test\n")
    cert, key = write_cert(tmp_path)
    policy = PolicySnapshot(PolicyData({"org": OrgPolicy("org")}), STORE_KEY)
    identities = IdentitySnapshot.build([("127.0.0.1", Requester("org", "id-1"))])
    trust = ssl.create_default_context(cafile=str(cert))
    with (
        dnsmasq(hosts) as upstream,
        RunningGateway(policy, identities, [("127.0.0.1", upstream)], tls=(cert, key)) as b,
    ):
        dead = ("127.0.0.1", free_port())
        via_tls = UpstreamSpec("127.0.0.1", b.tls_port, HOSTNAME)
        with RunningGateway(policy, identities, [dead, via_tls], upstream_tls=trust) as a:
            for name in ("tls-only.example.test", "TLS-only.example.test"):
                out = kdig(a.port, name, "A", "+edns")
                assert records(out)[0][-1] == "192.0.2.44", out
            down = [u for u in a.gateway.upstreams.upstreams if u.down_until > 0]
            assert [(u.host, u.port) for u in down] == [dead]


def test_tls_upstream_with_wrong_name_is_not_trusted(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path)
    policy = PolicySnapshot(PolicyData({"org": OrgPolicy("org")}), STORE_KEY)
    identities = IdentitySnapshot.build([("127.0.0.1", Requester("org", "id-1"))])
    trust = ssl.create_default_context(cafile=str(cert))
    with RunningGateway(policy, identities, [], tls=(cert, key)) as b:
        wrong = UpstreamSpec("127.0.0.1", b.tls_port, "other.example")
        with RunningGateway(policy, identities, [wrong], upstream_tls=trust) as a:
            out = kdig(a.port, "www.example.test", "A", "+edns")
            assert "status: SERVFAIL" in out, out
            assert "EDE: 22" in out
