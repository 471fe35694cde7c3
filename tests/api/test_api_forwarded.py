"""X-Forwarded-For is believed from configured proxies only: a loopback client that
sends it is answered as itself (DoH on a real server), and failed authentications are
counted against the peer unless a trusted proxy vouches for another address."""

from __future__ import annotations

import struct
import urllib.request
from ipaddress import ip_network

from fastapi.testclient import TestClient

from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge
from ztsim.api.forwarded import client_address
from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.doh import MEDIA_TYPE, DohService

from api.edge_server import serving
from support.api import ApiHarness
from support.dns_gateway_harness import STORE_KEY, RunningGateway

PROXY = (ip_network("10.0.0.0/8"),)
REFUSED = 5


def test_client_address_walks_only_trusted_hops() -> None:
    assert client_address("127.0.0.1", "10.9.9.9", ()) == "127.0.0.1"
    assert client_address("127.0.0.1", "10.9.9.9", PROXY) == "127.0.0.1"
    assert client_address("10.0.0.1", "198.51.100.7", PROXY) == "198.51.100.7"
    # The client may prepend anything; only the hops from trusted proxies count.
    assert client_address("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.2", PROXY) == "198.51.100.7"
    assert client_address("10.0.0.1", "not-an-ip", PROXY) == "10.0.0.1"
    assert client_address("10.0.0.1", None, PROXY) == "10.0.0.1"


def _query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)


def _rcode(port: int, forwarded_for: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/dns-query",
        data=_query("ads.test"),
        headers={"Content-Type": MEDIA_TYPE, "X-Forwarded-For": forwarded_for},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  (loopback)
        return int(response.read()[3] & 0x0F)


def test_doh_answers_a_loopback_client_as_itself(api: ApiHarness) -> None:
    ads = parse_list("||ads.test^\n", ListFormat.ADBLOCK)
    org = OrgPolicy("org", (Rule("ads", Action.BLOCK, lists=("ads",), identities=("id-kid",)),))
    policy = PolicySnapshot(PolicyData({"org": org}, {"ads": ads}), STORE_KEY)
    # The gateway knows 10.9.9.9 (a device's address); loopback is nobody.
    identities = IdentitySnapshot.build(addresses=[("10.9.9.9", Requester("org", "id-kid"))])
    with RunningGateway(policy, identities, []) as running:
        doh = DohService(running.gateway, running.loop)
        with serving(create_app(api.ctx, doh)) as opts:
            assert _rcode(opts.port, "10.9.9.9") == REFUSED
        trusting = HttpEdge(trusted_proxies=(ip_network("127.0.0.1/32"),))
        with serving(create_app(api.ctx, doh, trusting)) as opts:
            assert _rcode(opts.port, "10.9.9.9") != REFUSED  # a configured proxy is believed


def test_failures_count_against_the_peer_unless_a_proxy_vouches(api: ApiHarness) -> None:
    app = create_app(api.ctx, edge=HttpEdge(trusted_proxies=PROXY, auth_failures_per_minute=2))
    bad = {"Authorization": "Bearer ztsim_" + "C" * 43}
    with TestClient(app, client=("127.0.0.1", 5000)) as direct:
        for i in range(2):
            r = direct.get("/api/v1/me", headers={**bad, "X-Forwarded-For": f"198.51.100.{i}"})
            assert r.status_code == 401
        r = direct.get("/api/v1/me", headers={**bad, "X-Forwarded-For": "198.51.100.99"})
        assert r.status_code == 429  # a new X-Forwarded-For buys no new budget
    with TestClient(app, client=("10.0.0.1", 5000)) as proxy:
        for i in range(2):
            r = proxy.get("/api/v1/me", headers={**bad, "X-Forwarded-For": f"198.51.100.{i}"})
            assert r.status_code == 401  # behind the proxy: one bucket per real client
