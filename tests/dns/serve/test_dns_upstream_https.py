"""Forwarding over DNS over HTTPS (RFC 8484): gateway A asks a DoH endpoint (ztsim's own
route on hypercorn, answering with gateway B, which forwards to dnsmasq); failover from
dead and misbehaving DoH servers; certificates checked; a restarted DoH upstream is
brought back by the active health check long before `down_for` ends."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.rules import OrgPolicy, PolicyData
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.upstream import UpstreamPool, UpstreamSpec
from ztsim.dns.serve.upstream_https import MEDIA_TYPE
from ztsim.dns.wire.constants import RRType
from ztsim.dns.wire.message import Flag, Message, Question, decode_message

from support.dns_doh_harness import HYPERCORN, DohServer, doh_app
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
from support.dns_tls_cert import write_cert

pytestmark = pytest.mark.skipif(
    DNSMASQ is None or KDIG is None or not HYPERCORN, reason="needs dnsmasq, kdig, hypercorn"
)
POLICY = PolicySnapshot(PolicyData({"org": OrgPolicy("org")}), STORE_KEY)
IDENTITIES = IdentitySnapshot.build([("127.0.0.1", Requester("org", "id-1"))])
HOSTS = "192.0.2.53 doh-only.example.test\n192.0.2.1 a.example.test\n192.0.2.1 b.example.test\n"


def _doh(port: int) -> UpstreamSpec:
    return UpstreamSpec("127.0.0.1", port, https_path="/dns-query")


class Tls(NamedTuple):
    cert: Path
    key: Path
    trust: ssl.SSLContext


def _tls(directory: Path, addresses: list[str]) -> Tls:
    """A certificate for dns.ztsim.test and `addresses`, and a context trusting it."""
    directory.mkdir(exist_ok=True)
    cert, key = write_cert(directory, addresses)
    return Tls(cert, key, ssl.create_default_context(cafile=str(cert)))


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return _tls(tmp_path / "tls", ["127.0.0.1"])


class Endpoint(NamedTuple):
    gateway: RunningGateway
    server: DohServer

    @property
    def upstream(self) -> UpstreamSpec:
        return _doh(self.server.port)


@contextmanager
def _endpoint(tmp_path: Path, tls: Tls, *, keep_alive: bool = True) -> Iterator[Endpoint]:
    """https://127.0.0.1:<port>/dns-query answered by gateway B, which asks dnsmasq."""
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    with (
        dnsmasq(hosts) as upstream,
        RunningGateway(POLICY, IDENTITIES, [("127.0.0.1", upstream)]) as b,
        DohServer(
            doh_app(b.gateway, b.loop), free_port(), tls.cert, tls.key, keep_alive=keep_alive
        ) as server,
    ):
        yield Endpoint(b, server)


def _query(name: str, ident: int = 0x1234) -> bytes:
    return Message(id=ident, flags=Flag.RD, questions=(Question(name, RRType.A),)).to_wire()


def _addresses(answer: bytes | None) -> list[str]:
    assert answer is not None
    return [str(ipaddress.ip_address(r.rdata)) for r in decode_message(answer).answers]


def test_forwarding_over_doh_end_to_end(tmp_path: Path, tls: Tls) -> None:
    with (
        _endpoint(tmp_path, tls) as b,
        RunningGateway(POLICY, IDENTITIES, [b.upstream], upstream_tls=tls.trust) as a,
    ):
        for name in ("doh-only.example.test", "DoH-only.example.test"):
            out = kdig(a.port, name, "A", "+edns")
            assert records(out)[0][-1] == "192.0.2.53", out
        # The pool's answer carries the caller's ID back (it went out as 0, RFC 8484 §4.1).
        answer = a.call(a.gateway.upstreams.query(_query("a.example.test", 0xBEEF)))
        assert answer is not None
        assert answer[:2] == b"\xbe\xef"
        assert _addresses(answer) == ["192.0.2.1"]
        assert [u.down_until for u in a.gateway.upstreams.upstreams] == [0.0]


def test_failover_from_dead_doh_upstream(tmp_path: Path, tls: Tls) -> None:
    dead = _doh(free_port())  # nothing listens there
    with (
        _endpoint(tmp_path, tls) as b,
        RunningGateway(POLICY, IDENTITIES, [dead, b.upstream], upstream_tls=tls.trust) as a,
    ):
        out = kdig(a.port, "doh-only.example.test", "A", "+edns")
        assert records(out)[0][-1] == "192.0.2.53", out
        down = [u for u in a.gateway.upstreams.upstreams if u.down_until > 0]
        assert [(u.host, u.port) for u in down] == [(dead.host, dead.port)]


@pytest.mark.parametrize("problem", ["untrusted issuer", "name mismatch"])
def test_bad_certificate_is_refused(tmp_path: Path, tls: Tls, problem: str) -> None:
    if problem == "untrusted issuer":
        # The server's certificate is for 127.0.0.1, but A trusts another one.
        served, trust = tls, _tls(tmp_path / "other", ["127.0.0.1"]).trust
    else:
        # Trusted, but for dns.ztsim.test only, not the 127.0.0.1 of the URL.
        served = _tls(tmp_path / "named", [])
        trust = served.trust
    with (
        _endpoint(tmp_path, served) as b,
        RunningGateway(POLICY, IDENTITIES, [b.upstream], upstream_tls=trust) as a,
    ):
        out = kdig(a.port, "doh-only.example.test", "A", "+edns")
        assert "status: SERVFAIL" in out, out
        assert "EDE: 22" in out, out
        assert a.gateway.upstreams.upstreams[0].down_until > 0


# -- a DoH server that misbehaves, in front of a live one -----------------------------


class _Scripted:
    """An ASGI app answering POSTs as `mode` says, and keeping what it was sent."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to set up
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["method"], scope["path"], headers, body))
        status, reply_headers, reply = self._reply(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in reply_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    def _reply(self, query: bytes) -> tuple[int, dict[str, str], bytes]:
        # An empty NOERROR answer to the query: its header with QR set, its question.
        answer = query[:2] + bytes([query[2] | 0x80, 0x00]) + query[4:]
        dns = {"content-type": MEDIA_TYPE}
        if self.mode == "ok":
            return 200, dns, answer
        if self.mode == "status":
            return 503, dns, answer
        if self.mode == "redirect":
            return 307, {**dns, "location": "/elsewhere"}, answer
        if self.mode == "type":
            return 200, {"content-type": "text/plain"}, answer
        if self.mode == "oversize":
            return 200, dns, answer + b"\x00" * 65536
        if self.mode == "gzip":
            return 200, {**dns, "content-encoding": "gzip"}, gzip.compress(answer)
        if self.mode == "question":
            other = _query("other.example.test", 0)
            return 200, dns, other[:2] + bytes([other[2] | 0x80, 0]) + other[4:]
        assert self.mode == "short"
        return 200, dns, answer[:7]


def _with_pool(
    upstreams: list[UpstreamSpec],
    trust: ssl.SSLContext,
    body: Callable[[UpstreamPool], Awaitable[None]],
) -> None:
    async def main() -> None:
        pool = UpstreamPool(upstreams, timeout=2.0, down_for=60, tls=trust)
        try:
            await body(pool)
        finally:
            await pool.close()

    asyncio.run(main())


def test_request_is_rfc8484_post_with_id_zero(tmp_path: Path, tls: Tls) -> None:
    scripted = _Scripted()
    with DohServer(scripted, free_port(), tls.cert, tls.key) as server:

        async def body(pool: UpstreamPool) -> None:
            answer = await pool.query(_query("x.example.test", 0x4242))
            assert answer is not None
            assert answer[:2] == b"\x42\x42"  # restored: the server answered with ID 0
            assert decode_message(answer).questions == (Question("x.example.test", 1),)

        _with_pool([_doh(server.port)], tls.trust, body)
    [(method, path, headers, sent)] = scripted.seen
    assert (method, path) == ("POST", "/dns-query")
    assert headers["content-type"] == MEDIA_TYPE
    assert headers["accept"] == MEDIA_TYPE
    assert sent[:2] == b"\x00\x00"
    assert sent[2:] == _query("x.example.test", 0x4242)[2:]


@pytest.mark.parametrize(
    "mode", ["status", "redirect", "type", "oversize", "gzip", "question", "short"]
)
def test_misbehaving_doh_upstream_fails_over(tmp_path: Path, tls: Tls, mode: str) -> None:
    scripted = _Scripted()
    with (
        _endpoint(tmp_path, tls) as live,
        DohServer(scripted, free_port(), tls.cert, tls.key) as bad,
    ):

        async def body(pool: UpstreamPool) -> None:
            # A control: while it behaves, the scripted server's (empty) answer wins.
            assert _addresses(await pool.query(_query("a.example.test"))) == []
            scripted.mode = mode
            answer = await pool.query(_query("b.example.test"))
            assert _addresses(answer) == ["192.0.2.1"]
            assert pool.upstreams[0].down_until > 0
            assert pool.upstreams[1].down_until == 0

        _with_pool([_doh(bad.port), live.upstream], tls.trust, body)
    assert len(scripted.seen) == 2


# -- the active health check -----------------------------------------------------------


def test_health_check_brings_restarted_doh_upstream_back(tmp_path: Path, tls: Tls) -> None:
    backup_hosts = tmp_path / "backup-hosts"
    backup_hosts.write_text("192.0.2.2 a.example.test\n192.0.2.2 b.example.test\n")
    with (
        _endpoint(tmp_path, tls, keep_alive=False) as b,
        dnsmasq(backup_hosts) as backup,
        RunningGateway(
            POLICY,
            IDENTITIES,
            [b.upstream, UpstreamSpec("127.0.0.1", backup)],
            upstream_tls=tls.trust,
            down_for=60,  # passively, the DoH upstream would stay down a minute
            probe_interval=0.1,
        ) as a,
    ):
        doh_upstream = a.gateway.upstreams.upstreams[0]
        out = kdig(a.port, "doh-only.example.test", "A")
        assert records(out)[0][-1] == "192.0.2.53", out

        # The DoH server goes away (gateway B stays): A answers from the backup.
        b.server.stop()
        out = kdig(a.port, "a.example.test", "A")
        assert records(out)[0][-1] == "192.0.2.2", out
        assert a.run(lambda: doh_upstream.down_until) > 0

        # It comes back on the same port: a probe finds it, and A uses it again.
        app = doh_app(b.gateway.gateway, b.gateway.loop)
        with DohServer(app, b.server.port, tls.cert, tls.key, keep_alive=False):
            deadline = time.monotonic() + 5
            while a.run(lambda: doh_upstream.down_until) > 0:
                assert time.monotonic() < deadline, "the restarted upstream was not probed"
                time.sleep(0.05)
            out = kdig(a.port, "b.example.test", "A")
            assert records(out)[0][-1] == "192.0.2.1", out
