"""The UDP adapter, batched (recvmmsg/sendmmsg) and one datagram at a time: many clients at
once, forwarded and local answers, garbage in between, and a clean stop."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.mmsg import batch_calls

from support.dns_gateway_harness import DNSMASQ, STORE_KEY, RunningGateway, dnsmasq

pytestmark = pytest.mark.skipif(DNSMASQ is None, reason="needs dnsmasq (dnsmasq-base)")
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def _query(ident: int, name: str) -> bytes:
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00\x01\x00\x01"


def _client(source: str, port: int, count: int, out: dict[str, list[bytes]]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(3)
        names = ["ads.block.test", "www.ok.test"]
        for n in range(count):
            sock.sendto(_query(n, names[n % 2]), ("127.0.0.1", port))
        out[source] = [sock.recvfrom(4096)[0] for _ in range(count)]


@pytest.mark.parametrize("batched", [True, False])
def test_many_clients_answered(batched: bool, tmp_path: object) -> None:
    ads = parse_list("ads.block.test\n", ListFormat.DOMAINS)
    org = OrgPolicy("org-a", (Rule("ads", Action.BLOCK, lists=("ads",)),))
    policy = PolicySnapshot(PolicyData({"org-a": org}, {"ads": ads}), STORE_KEY)
    who = [(source, Requester("org-a", f"id-{n}")) for n, source in enumerate(SOURCES)]
    hosts = tmp_path / "hosts"  # type: ignore[operator]
    hosts.write_text("192.0.2.9 www.ok.test\n")
    with (
        dnsmasq(hosts) as upstream,
        RunningGateway(
            policy, IdentitySnapshot.build(who), [("127.0.0.1", upstream)], batched=batched
        ) as gateway,
    ):
        assert gateway.udp is not None
        assert gateway.udp.batched == (batched and batch_calls() is not None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            junk.sendto(b"\x00", ("127.0.0.1", gateway.port))  # too short: silence
        replies: dict[str, list[bytes]] = {}
        threads = [
            threading.Thread(target=_client, args=(source, gateway.port, 40, replies))
            for source in SOURCES
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(replies) == sorted(SOURCES)
        for answers in replies.values():
            by_id = {struct.unpack_from("!H", wire)[0]: wire for wire in answers}
            assert sorted(by_id) == list(range(40))  # every query answered once
            for ident, wire in by_id.items():
                expected = b"\x00\x00\x00\x00" if ident % 2 == 0 else bytes([192, 0, 2, 9])
                assert wire.endswith(expected)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.9", 0))
            stranger.settimeout(3)
            stranger.sendto(_query(1, "www.ok.test"), ("127.0.0.1", gateway.port))
            assert stranger.recvfrom(4096)[0][3] & 0xF == 5  # REFUSED: not a live session
