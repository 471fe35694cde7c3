"""For CAMARA subscription tests: an org whose SIM holds a number, an API client with a
token, and a subscriber's HTTPS sink on loopback (a throwaway CA) that records what it
is sent and answers the statuses it is told to."""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ztsim.clock import utc_now
from ztsim.identity import repository as identities
from ztsim.netguard import parse_ranges
from ztsim.outbound import OutboundClient
from ztsim.risk.store import clients
from ztsim.sealing import Sealer

from support.dns_tls_cert import write_cert
from support.factories import activate, make_sims
from support.leaks import LEAKS


@dataclass(frozen=True)
class Line:
    org_id: str
    iccid: str
    phone_number: str  # +E.164


def org_with_line(engine: Engine, sealer: Sealer, slug: str, seed: int, now: datetime) -> Line:
    """An org with one active SIM whose number is `Line.phone_number`."""
    spec = make_sims(1, seed=seed)[0]
    with engine.begin() as conn:
        org = identities.create_org(conn, slug.title(), slug, now)
        activate(conn, sealer, org.id, spec, now)
    assert spec.msisdn is not None
    return Line(org.id, spec.iccid, f"+{spec.msisdn}")


def client_token(
    engine: Engine,
    org_id: str,
    scopes: tuple[str, ...],
    *,
    phone_number: str | None = None,
    now: datetime | None = None,
) -> tuple[str, str]:
    """(client id, access token) of a new API client of the org with `scopes`."""
    at = now or utc_now()
    with engine.begin() as conn:
        client, secret = clients.create_client(
            conn,
            org_id,
            name="fraud-check",
            scopes=scopes,
            phone_number=phone_number,
            actor="test",
            now=at,
        )
        issued = clients.issue_token(conn, client.id, secret, None, now=at)
    assert isinstance(issued, clients.IssuedToken)
    LEAKS.add_secret(secret)
    LEAKS.add_secret(issued.access_token)
    return client.id, issued.access_token


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Sink:
    """What the sink got, and the statuses it answers next (then 204)."""

    port: int
    ca_file: Path
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/sink"

    def client(self, *, allow_loopback: bool = True) -> OutboundClient:
        """The outbound client a notifier uses to reach this sink (loopback allowed)."""
        ranges = parse_ranges(["127.0.0.0/8"]) if allow_loopback else ()
        return OutboundClient(ranges, timeout=5, ca_file=self.ca_file)

    def types(self) -> list[str]:
        return [r.body["type"] for r in self.received]


def sink_token() -> str:
    token = "sink-" + os.urandom(16).hex()
    LEAKS.add_secret(token)
    return token


@contextmanager
def https_sink(directory: Path) -> Iterator[Sink]:
    cert, key = write_cert(directory, ["127.0.0.1"])
    state: list[Sink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sink = state[0]
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            headers = {k.lower(): v for k, v in self.headers.items()}
            sink.received.append(Received(self.path, headers, body))
            status = sink.answers.pop(0) if sink.answers else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.append(Sink(server.server_address[1], cert))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
