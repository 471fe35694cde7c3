"""The Nudm vector request's fast path: the plain request answered before FastAPI's stack
(with the answers of the reference route), every other request handed on to the
reference with its body as it was sent; on both backends, through the whole app and
through a real server."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send

from udm.usim_model import Usim
from ztsim.api.gate import PRINCIPAL_KEY
from ztsim.api.ueau_fast_path import UeauFastPath
from ztsim.clock import utc_now
from ztsim.identity import token_store
from ztsim.identity.roles import Principal, Role
from ztsim.sealing import Sealer

from api.edge_server import serving
from support.api import ApiHarness, harness
from support.factories import SimSpec, make_sims
from support.world import World, populate

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
BODY = {"servingNetworkName": SNN, "ausfInstanceId": "0e7a3f4a-ausf"}
URL = "/nudm-ueau/v1/{}/security-information/generate-auth-data"
HANDED_ON = 299


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> Iterator[tuple[ApiHarness, World]]:
    """The app with its lifespan (the issuer's batches awaited on the loop on PostgreSQL),
    and an org whose first SIM is active."""
    with harness(engine, sealer) as h:
        yield h, populate(h, "alpha", 1)


def _active(w: World) -> SimSpec:
    return make_sims(3, seed=1)[0]  # populate() activated it


class Behind:
    """The app behind the fast path (the reference, in the app): records what reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": HANDED_ON, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _principal(h: ApiHarness, w: World, role: Role) -> Principal:
    with h.engine.connect() as conn:
        principal = token_store.authenticate(conn, w.org.tokens[role], utc_now())
    assert principal is not None
    return principal


def _call(
    h: ApiHarness,
    principal: Principal | None,
    path: str,
    body: bytes,
    *,
    method: str = "POST",
    headers: list[tuple[bytes, bytes]] | None = None,
    disconnect: bool = False,
) -> tuple[Behind, int | None, bytes]:
    """One request through the fast path alone, its body in two parts."""
    behind = Behind()
    layer = UeauFastPath(behind)
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"application/json")] if headers is None else headers,
        "app": h.app,
    }
    if principal is not None:
        scope[PRINCIPAL_KEY] = principal
    parts: list[Message] = [
        {"type": "http.request", "body": body[:7], "more_body": True},
        {"type": "http.disconnect"}
        if disconnect
        else {"type": "http.request", "body": body[7:], "more_body": False},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(layer(scope, receive, send))
    status = sent[0]["status"] if sent else None
    return behind, status, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_plain_request_is_answered_before_fastapi_with_a_vector_that_authenticates(
    world: tuple[ApiHarness, World],
) -> None:
    h, w = world
    spec = _active(w)
    behind, status, body = _call(
        h,
        _principal(h, w, Role.NETWORK),
        URL.format(f"imsi-{spec.imsi}"),
        json.dumps(BODY).encode(),
    )
    assert (status, behind.seen) == (200, [])
    answer = json.loads(body)
    assert (answer["authType"], answer["supi"]) == ("5G_AKA", f"imsi-{spec.imsi}")
    av = answer["authenticationVector"]
    assert av["avType"] == "5G_HE_AKA"
    usim = Usim(spec.k, spec.opc).authenticate(
        bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]), SNN
    )
    assert (usim.kind, usim.value.hex()) == ("res", av["xresStar"])


@pytest.mark.parametrize(
    ("case", "path", "body", "method", "headers", "role"),
    [
        (
            "a resynchronisation",
            "imsi-{imsi}",
            {**BODY, "resynchronizationInfo": {"rand": "00" * 16, "auts": "00" * 14}},
            "POST",
            None,
            Role.NETWORK,
        ),
        ("a SUCI", "suci-0-001-01-0000-0-0-0000000001", BODY, "POST", None, Role.NETWORK),
        (
            "a body that is not JSON",
            "imsi-{imsi}",
            b'{"servingNetworkName": ',
            "POST",
            None,
            Role.NETWORK,
        ),
        ("a field missing", "imsi-{imsi}", {"ausfInstanceId": "x"}, "POST", None, Role.NETWORK),
        (
            "a field out of its pattern",
            "imsi-{imsi}",
            {**BODY, "servingNetworkName": "4G"},
            "POST",
            None,
            Role.NETWORK,
        ),
        (
            "another media type",
            "imsi-{imsi}",
            BODY,
            "POST",
            [(b"content-type", b"text/plain")],
            Role.NETWORK,
        ),
        ("a role not allowed vectors", "imsi-{imsi}", BODY, "POST", None, Role.ADMIN),
        ("no principal checked", "imsi-{imsi}", BODY, "POST", None, None),
        ("another method", "imsi-{imsi}", b"", "GET", None, Role.NETWORK),
        ("an IMSI too long", "imsi-0010100000000000001", BODY, "POST", None, Role.NETWORK),
    ],
)
def test_everything_else_goes_to_the_reference_with_its_body_as_sent(
    world: tuple[ApiHarness, World],
    case: str,
    path: str,
    body: dict[str, Any] | bytes,
    method: str,
    headers: list[tuple[bytes, bytes]] | None,
    role: Role | None,
) -> None:
    h, w = world
    wire = body if isinstance(body, bytes) else json.dumps(body).encode()
    full = URL.format(path.format(imsi=_active(w).imsi))
    principal = None if role is None else _principal(h, w, role)
    behind, status, _ = _call(h, principal, full, wire, method=method, headers=headers)
    assert status == HANDED_ON, case
    assert behind.seen == [(full, wire)], case


def test_other_paths_are_not_its_business(world: tuple[ApiHarness, World]) -> None:
    h, w = world
    behind, status, _ = _call(h, _principal(h, w, Role.NETWORK), "/api/v1/me", b"{}")
    assert (status, behind.seen) == (HANDED_ON, [("/api/v1/me", b"{}")])


def test_a_client_gone_before_its_body_is_not_answered(world: tuple[ApiHarness, World]) -> None:
    h, w = world
    path = URL.format(f"imsi-{_active(w).imsi}")
    behind, status, _ = _call(
        h, _principal(h, w, Role.NETWORK), path, json.dumps(BODY).encode(), disconnect=True
    )
    assert (status, behind.seen) == (None, [])


def test_its_answers_are_the_references_through_the_whole_app(
    world: tuple[ApiHarness, World],
) -> None:
    """Through the edge: its headers on the fast path's answers, and the error shapes of
    TS 29.571 that the reference gives."""
    h, w = world
    auth = w.org.auth(Role.NETWORK)
    r = h.client.post(URL.format(f"imsi-{_active(w).imsi}"), json=BODY, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert (r.headers["cache-control"], r.headers["x-content-type-options"]) == (
        "no-store",
        "nosniff",
    )
    r = h.client.post(URL.format("imsi-001019999999999"), json=BODY, headers=auth)
    assert (r.status_code, r.json()["cause"]) == (404, "USER_NOT_FOUND")
    assert r.headers["content-type"] == "application/problem+json"
    spare = make_sims(3, seed=1)[1]  # in stock, not active
    r = h.client.post(URL.format(f"imsi-{spare.imsi}"), json=BODY, headers=auth)
    assert (r.status_code, r.json()["cause"]) == (403, "AUTHENTICATION_REJECTED")
    r = h.client.post(URL.format(f"imsi-{_active(w).imsi}"), json=BODY)
    assert r.status_code == 401  # the gate, before the fast path


def test_a_real_server_answers_concurrent_requests_with_distinct_sqns(
    world: tuple[ApiHarness, World],
) -> None:
    """uvicorn with the app's lifespan (on PostgreSQL the issuer awaits its batches on the
    server's loop): concurrent keep-alive clients, every vector valid, no SQN twice."""
    h, w = world
    spec = _active(w)
    body = json.dumps(BODY)
    headers = {"Content-Type": "application/json", **w.org.auth(Role.NETWORK)}

    def client(port: int) -> list[str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        autns = []
        for _ in range(10):
            conn.request("POST", URL.format(f"imsi-{spec.imsi}"), body, headers)
            response = conn.getresponse()
            assert response.status == 200
            autns.append(json.loads(response.read())["authenticationVector"]["autn"])
        conn.close()
        return autns

    with serving(h.app) as options, ThreadPoolExecutor(max_workers=8) as pool:
        autns = [a for batch in pool.map(client, [options.port] * 8) for a in batch]
    # AUTN = SQN xor AK || AMF || MAC: distinct SQNs give distinct AUTNs; the USIM's
    # check of each is the test above.
    assert len(set(autns)) == 80
