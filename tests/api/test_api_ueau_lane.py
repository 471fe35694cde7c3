"""The Nudm lane: a real server answers the plain vector request from the connection itself
once the gate remembers the token, with the answers (status, headers, body) that the ASGI
path gives; everything the lane does not take reaches the app as it was sent; requests
stay in order on a connection; its answers are counted; on both backends."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.types import Receive, Scope, Send

from udm.usim_model import Usim
from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge
from ztsim.api.limits import BodyLimits
from ztsim.api.problems import unavailable_response
from ztsim.api.routes_udm import ISSUER_APPLICATION_NAME
from ztsim.identity.roles import Role
from ztsim.metrics.registry import Registry
from ztsim.sealing import Sealer

from api.edge_server import connect, serving
from support.api import ApiHarness, harness
from support.factories import SimSpec, make_sims
from support.pg_backends import terminate
from support.world import World, populate

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
BODY = json.dumps({"servingNetworkName": SNN, "ausfInstanceId": "0e7a3f4a-ausf"}).encode()
URL = "/nudm-ueau/v1/{}/security-information/generate-auth-data"
VECTORS_ROUTE = "/nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data"


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> Iterator[tuple[ApiHarness, World]]:
    with harness(engine, sealer) as h:
        yield h, populate(h, "alpha", 1)


def _active() -> SimSpec:
    return make_sims(3, seed=1)[0]  # populate() activated it


class Watched:
    """The app as the server runs it, its lane included; records what reaches ASGI."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ueau_lane = app.ueau_lane
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def comparable(self) -> tuple[int, dict[str, str], bytes]:
        """Without what differs between any two answers: the date."""
        return self.status, {k: v for k, v in self.headers.items() if k != "date"}, self.body


def request(
    path: str,
    token: str | None,
    body: bytes = BODY,
    *,
    method: str = "POST",
    extra: str = "",
    content_type: str = "application/json",
) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: ztsim\r\n{auth}Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def exchange(port: int, *requests: bytes, source: str = "127.0.0.1") -> list[Reply]:
    """The requests written at once on one connection (pipelined), their replies in order."""
    with connect(port, source) as sock:
        sock.settimeout(10)
        sock.sendall(b"".join(requests))
        replies = Replies(sock)
        return [replies.next() for _ in requests]


def one_by_one(port: int, *requests: bytes) -> list[Reply]:
    """The requests on one connection, each sent once the one before is answered (what
    an AUSF's HTTP/1.1 client does; pipelined requests queue behind the lane's)."""
    answered = []
    with connect(port) as sock:
        sock.settimeout(10)
        replies = Replies(sock)
        for one in requests:
            sock.sendall(one)
            answered.append(replies.next())
        assert replies.pending == b""
    return answered


class Replies:
    """HTTP/1.1 replies read off a connection one after another (Content-Length framed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"closed before a whole reply: {self.pending!r}"
        self.pending += chunk

    def next(self) -> Reply:
        while b"\r\n\r\n" not in self.pending:
            self._more()
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} twice"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.pending) < length:
            self._more()
        body, self.pending = self.pending[:length], self.pending[length:]
        return Reply(int(lines[0].split(" ")[1]), headers, body)


def _check_vector(reply: Reply, spec: SimSpec) -> str:
    assert reply.status == 200, reply.body
    answer = json.loads(reply.body)
    assert answer["supi"] == f"imsi-{spec.imsi}"
    av = answer["authenticationVector"]
    usim = Usim(spec.k, spec.opc).authenticate(
        bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]), SNN
    )
    assert (usim.kind, usim.value.hex()) == ("res", av["xresStar"])
    return str(av["autn"])


def test_once_the_token_is_remembered_the_lane_answers_with_valid_vectors(
    world: tuple[ApiHarness, World],
) -> None:
    h, w = world
    spec = _active()
    token = w.org.tokens[Role.NETWORK]
    watched = Watched(h.app)
    with serving(watched) as options:
        first = exchange(options.port, request(URL.format(f"imsi-{spec.imsi}"), token))
        assert watched.paths == [URL.format(f"imsi-{spec.imsi}")]  # the gate looked it up
        replies = one_by_one(options.port, *[request(URL.format(f"imsi-{spec.imsi}"), token)] * 5)
        assert watched.paths == [URL.format(f"imsi-{spec.imsi}")]  # the lane, five times
    autns = {_check_vector(reply, spec) for reply in [*first, *replies]}
    assert len(autns) == 6  # a new SQN each
    # The lane's answer is the ASGI path's, headers included (the values differ).
    assert {k: v for k, v in replies[0].headers.items() if k != "content-length"} == {
        k: v for k, v in first[0].headers.items() if k != "content-length"
    }
    assert replies[0].headers["x-content-type-options"] == "nosniff"
    assert replies[0].headers["cache-control"] == "no-store"


def test_the_lanes_errors_are_the_references(world: tuple[ApiHarness, World]) -> None:
    """An unknown SUPI (404) and a SIM not active (403), answered by the lane, against the
    same requests through the app alone."""
    h, w = world
    token = w.org.tokens[Role.NETWORK]
    spare = make_sims(3, seed=1)[1]  # in stock
    cases = [URL.format("imsi-001019999999999"), URL.format(f"imsi-{spare.imsi}")]
    watched = Watched(h.app)
    with serving(watched) as options:
        exchange(options.port, request(URL.format(f"imsi-{_active().imsi}"), token))
        before = len(watched.paths)
        laned = one_by_one(options.port, *(request(path, token) for path in cases))
        assert len(watched.paths) == before
    for path, reply in zip(cases, laned, strict=True):
        reference = h.client.post(
            path,
            content=BODY,
            headers={**w.org.auth(Role.NETWORK), "content-type": "application/json"},
        )
        assert reply.status == reference.status_code
        assert json.loads(reply.body) == reference.json()
        assert reply.headers["content-type"] == reference.headers["content-type"]
        assert reply.headers["cache-control"] == reference.headers["cache-control"]
    assert [json.loads(r.body)["cause"] for r in laned] == [
        "USER_NOT_FOUND",
        "AUTHENTICATION_REJECTED",
    ]


@pytest.mark.parametrize(
    ("case", "path", "body", "options"),
    [
        (
            "a resynchronisation",
            URL.format("imsi-{imsi}"),
            json.dumps(
                {
                    "servingNetworkName": SNN,
                    "ausfInstanceId": "a",
                    "resynchronizationInfo": {"rand": "00" * 16, "auts": "00" * 14},
                }
            ).encode(),
            {},
        ),
        ("a body that is not JSON", URL.format("imsi-{imsi}"), b'{"servingNetworkName": ', {}),
        ("a field missing", URL.format("imsi-{imsi}"), b'{"ausfInstanceId": "x"}', {}),
        ("another media type", URL.format("imsi-{imsi}"), BODY, {"content_type": "text/plain"}),
        ("a query", URL.format("imsi-{imsi}") + "?x=1", BODY, {}),
        ("a SUCI", URL.format("suci-0-001-01-0000-0-0-0000000001"), BODY, {}),
        ("no token", URL.format("imsi-{imsi}"), BODY, {"token": None}),
        ("an unknown token", URL.format("imsi-{imsi}"), BODY, {"token": "nope"}),
        ("a role without vectors", URL.format("imsi-{imsi}"), BODY, {"role": Role.ADMIN}),
        (
            "the connection to close",
            URL.format("imsi-{imsi}"),
            BODY,
            {"extra": "Connection: close\r\n"},
        ),
    ],
)
def test_what_the_lane_does_not_take_reaches_the_app_as_sent(
    world: tuple[ApiHarness, World],
    case: str,
    path: str,
    body: bytes,
    options: dict[str, Any],
) -> None:
    h, w = world
    network = w.org.tokens[Role.NETWORK]
    token = options.get("token", w.org.tokens[options.get("role", Role.NETWORK)])
    full = path.format(imsi=_active().imsi)
    extra = options.get("extra", "")
    content_type = options.get("content_type", "application/json")
    watched = Watched(h.app)
    with serving(watched) as served:
        exchange(served.port, request(URL.format(f"imsi-{_active().imsi}"), network))
        assert len(watched.paths) == 1
        [reply] = exchange(
            served.port, request(full, token, body, extra=extra, content_type=content_type)
        )
    assert watched.paths[1:] == [full.partition("?")[0]], case
    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if extra:
        headers["connection"] = "close"
    reference = h.client.post(full, content=body, headers=headers)
    assert reply.status == reference.status_code, case
    if reply.status != 200:
        assert reply.body == reference.content, case
    if extra:
        assert reply.headers["connection"] == "close"


def test_a_body_over_the_limit_is_handed_back_and_refused_by_the_edge(
    world: tuple[ApiHarness, World],
) -> None:
    h, w = world
    app = create_app(h.ctx, edge=HttpEdge(limits=BodyLimits(json=64)))
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{_active().imsi}")
    big = json.dumps({"servingNetworkName": SNN, "ausfInstanceId": "x" * 100}).encode()
    watched = Watched(app)
    with serving(watched) as options:
        exchange(options.port, request(path, token, b"{}"))  # the token remembered (400)
        replies = exchange(options.port, request(path, token, big), request(path, token, b"{}"))
    assert [r.status for r in replies] == [413, 400]
    assert watched.paths == [path] * 3


def test_a_client_over_its_failure_budget_is_refused_even_with_a_remembered_token(
    world: tuple[ApiHarness, World],
) -> None:
    h, w = world
    app = create_app(h.ctx, edge=HttpEdge(auth_failures_per_minute=2))
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{_active().imsi}")
    with serving(Watched(app)) as options:
        assert exchange(options.port, request(path, token))[0].status == 200
        failures = exchange(options.port, *[request(path, "wrong")] * 2, source="127.0.0.2")
        assert [r.status for r in failures] == [401, 401]
        [refused] = exchange(options.port, request(path, token), source="127.0.0.2")
        [served] = exchange(options.port, request(path, token))
    assert refused.status == 429
    assert served.status == 200


def test_requests_behind_a_trusted_proxy_take_the_app_path(
    world: tuple[ApiHarness, World],
) -> None:
    """The edge alone knows a proxy's client (X-Forwarded-For): the lane leaves them to it."""
    h, w = world
    app = create_app(h.ctx, edge=HttpEdge(trusted_proxies=(ip_network("127.0.0.0/8"),)))
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{_active().imsi}")
    watched = Watched(app)
    with serving(watched, trusted_proxies=(ip_network("127.0.0.0/8"),)) as options:
        replies = exchange(options.port, *[request(path, token)] * 3)
    assert [r.status for r in replies] == [200] * 3
    assert watched.paths == [path] * 3


def test_pipelined_requests_are_answered_in_order(world: tuple[ApiHarness, World]) -> None:
    """A lane request, then one for the app, then the lane again, in one write: the app's
    answer waits for the first and the third waits for it."""
    h, w = world
    spec = _active()
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{spec.imsi}")
    me = b"GET /api/v1/me HTTP/1.1\r\nHost: ztsim\r\nAuthorization: Bearer " + (
        w.org.tokens[Role.ADMIN].encode() + b"\r\n\r\n"
    )
    with serving(Watched(h.app)) as options:
        exchange(options.port, request(path, token))
        replies = exchange(
            options.port, request(path, token), me, request(path, token), request(path, token)
        )
    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert "authenticationVector" not in json.loads(replies[1].body)
    autns = [_check_vector(replies[i], spec) for i in (0, 2, 3)]
    assert len(set(autns)) == 3


def test_the_lanes_answers_are_counted_as_the_apps(world: tuple[ApiHarness, World]) -> None:
    h, w = world
    metrics = Registry()
    app = create_app(h.ctx, metrics=metrics)
    token = w.org.tokens[Role.NETWORK]
    spec = _active()

    def counted(status: str) -> float:
        return sum(
            sample.value
            for family in metrics.samples()
            if family.name == "ztsim_api_requests_total"
            for sample in family.samples
            if dict(sample.labels) == {"method": "POST", "route": VECTORS_ROUTE, "status": status}
        )

    watched = Watched(app)
    with serving(watched) as options:
        exchange(options.port, request(URL.format(f"imsi-{spec.imsi}"), token))
        one_by_one(
            options.port,
            *[request(URL.format(f"imsi-{spec.imsi}"), token)] * 4,
            request(URL.format("imsi-001019999999999"), token),
        )
    assert len(watched.paths) == 1
    assert (counted("200"), counted("404")) == (5, 1)


def test_a_client_gone_before_its_answer_leaves_the_server_serving(
    world: tuple[ApiHarness, World],
) -> None:
    h, w = world
    spec = _active()
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{spec.imsi}")
    with serving(Watched(h.app)) as options:
        exchange(options.port, request(path, token))
        for _ in range(20):
            with connect(options.port) as sock:
                sock.sendall(request(path, token))
        [reply] = exchange(options.port, request(path, token))
    _check_vector(reply, spec)


def test_a_lost_database_connection_is_503_from_the_lane_and_the_next_is_served(
    world: tuple[ApiHarness, World],
) -> None:
    """PostgreSQL: the server's issuer holds one connection; killed, the batch that finds it
    gone is answered 503 with Retry-After (the app's answer to an outage), the next one
    reconnects."""
    h, w = world
    if h.engine.dialect.name != "postgresql":
        pytest.skip("the issuer holds its own connection on PostgreSQL only")
    spec = _active()
    token = w.org.tokens[Role.NETWORK]
    path = URL.format(f"imsi-{spec.imsi}")
    watched = Watched(create_app(h.ctx))
    with serving(watched) as options:
        _check_vector(exchange(options.port, request(path, token))[0], spec)
        assert terminate(h.engine, ISSUER_APPLICATION_NAME) == 1
        lost, served = one_by_one(options.port, request(path, token), request(path, token))
    assert len(watched.paths) == 1  # both answered by the lane
    reference = unavailable_response()
    assert (lost.status, lost.body) == (503, bytes(reference.body))
    assert lost.headers["retry-after"] == reference.headers["retry-after"]
    _check_vector(served, spec)
