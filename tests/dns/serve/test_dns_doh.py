"""DNS over HTTPS (RFC 8484): kdig's GET and POST over TLS against the route on uvicorn,
by client address and by device token; and the route's input checks."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ztsim.api import routes_doh
from ztsim.dns.policy.identity import IdentitySnapshot, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.doh import MEDIA_TYPE, DohService

from support.dns_doh_harness import HYPERCORN, DohServer, doh_app
from support.dns_gateway_harness import (
    DNSMASQ,
    KDIG,
    STORE_KEY,
    RunningGateway,
    dnsmasq,
    free_port,
    records,
)
from support.dns_gateway_harness import kdig as plain_kdig
from support.dns_tls_cert import HOSTNAME, write_cert
from support.leaks import LEAKS

pytestmark = pytest.mark.skipif(DNSMASQ is None or KDIG is None, reason="needs dnsmasq, kdig")
TOKEN = "devtok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KID = Requester("org", "id-kid", device_id="phone-1")


@pytest.fixture(scope="module")
def doh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doh]:
    LEAKS.add_secret(TOKEN)
    # The token is a credential in the URL path: HTTP libraries log request paths (hpack
    # at DEBUG on the server, httpx at INFO in the test client). Deployments keep access
    # logs off (uvicorn access_log=False); here those two loggers are kept quiet.
    quiet = [logging.getLogger(name) for name in ("hpack", "httpx", "httpx2")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield from _serve(tmp_path_factory)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


class Doh(NamedTuple):
    port: int
    cert: Path
    service: DohService


def _serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doh]:
    directory = tmp_path_factory.mktemp("doh")
    hosts = directory / "hosts"
    hosts.write_text("192.0.2.1 www.example.test\n")
    cert, key = write_cert(directory)
    ads = parse_list("||ads.test^\n", ListFormat.ADBLOCK)
    org = OrgPolicy("org", (Rule("ads", Action.BLOCK, lists=("ads",), identities=("id-kid",)),))
    policy = PolicySnapshot(PolicyData({"org": org}, {"ads": ads}), STORE_KEY)
    # The phone's token is known; its Wi-Fi address (127.0.0.1 here) is not.
    identities = IdentitySnapshot.build(tokens=[(TOKEN, KID)])
    with (
        dnsmasq(hosts) as upstream,
        RunningGateway(policy, identities, [("127.0.0.1", upstream)]) as running,
    ):
        app = doh_app(running.gateway, running.loop)
        service: DohService = app.state.doh
        port = free_port()
        if not HYPERCORN:
            yield Doh(0, cert, service)
            return
        with DohServer(app, port, cert, key):
            yield Doh(port, cert, service)


def _kdig(port: int, cert: Path, path: str, *args: str) -> str:
    if not HYPERCORN:
        pytest.skip("kdig's DoH needs HTTP/2: install hypercorn")
    tls = (f"+tls-ca={cert}", f"+tls-hostname={HOSTNAME}", f"+https={path}")
    return plain_kdig(port, *tls, *args)


@pytest.mark.parametrize("method", ["+nohttps-get", "+https-get"])
def test_device_token_policy_follows_the_phone(doh: Doh, method: str) -> None:
    port, cert, _ = doh
    out = _kdig(port, cert, f"/dns-query/{TOKEN}", method, "x.ads.test", "A", "+edns")
    assert "EDE: 15 (Blocked): 'blocked by rule ads'" in out, out
    out = _kdig(port, cert, f"/dns-query/{TOKEN}", method, "www.example.test", "A")
    assert records(out) == [["www.example.test.", "300", "IN", "A", "192.0.2.1"]], out


def test_unknown_address_and_token_refused(doh: Doh) -> None:
    port, cert, _ = doh
    out = _kdig(port, cert, "/dns-query", "www.example.test", "A")
    assert "status: REFUSED" in out, out
    out = _kdig(port, cert, "/dns-query/not-a-token", "+https-get", "www.example.test", "A")
    assert "status: REFUSED" in out, out


def test_route_input_checks(doh: Doh) -> None:
    app = FastAPI()
    app.state.doh = doh.service
    app.include_router(routes_doh.router)
    with TestClient(app) as client:
        assert client.get("/dns-query").status_code == 400
        assert client.get("/dns-query", params={"dns": "!!!"}).status_code == 400
        bad_type = client.post(
            "/dns-query", content=b"x" * 20, headers={"content-type": "text/plain"}
        )
        assert bad_type.status_code == 415
        assert (
            client.post(
                "/dns-query", content=b"x" * 70000, headers={"content-type": MEDIA_TYPE}
            ).status_code
            == 413
        )
        query = (
            b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
            b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
        )
        dns = base64.urlsafe_b64encode(query).rstrip(b"=").decode()
        ok = client.get(f"/dns-query/{TOKEN}", params={"dns": dns})
        assert ok.status_code == 200
        assert ok.headers["content-type"] == MEDIA_TYPE
        assert ok.headers["cache-control"] == "max-age=300"
        assert ok.content[:2] == b"\x00\x00"  # RFC 8484 §4.1: ID 0 echoed
        posted = client.post(
            f"/dns-query/{TOKEN}", content=query, headers={"content-type": MEDIA_TYPE}
        )
        assert posted.content == ok.content
