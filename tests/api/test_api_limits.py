"""Body limits while the body streams, and authentication before the body: on a real
server, bodies announced but never sent are answered at once (the server did not wait
to read them), and through the app a streamed body past the limit creates nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

from ztsim.api.app import create_app
from ztsim.api.limits import (
    DOH_BODY_LIMIT,
    JSON_BODY_LIMIT,
    STOCK_IMPORT_BODY_LIMIT,
    BodyLimits,
)

from api.edge_server import connect, read_response, serving, status_of
from support.api import ApiHarness

HUGE = 128 * 1024 * 1024


def _head(method: str, path: str, length: int, token: str | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_limits_per_route_class() -> None:
    limits = BodyLimits()
    assert limits.for_path("/api/v1/identities") == JSON_BODY_LIMIT == 1024 * 1024
    assert limits.for_path("/dns-query") == limits.for_path("/dns-query/tok") == 65535
    assert DOH_BODY_LIMIT == 65535
    assert limits.for_path("/api/v1/stock-imports") == STOCK_IMPORT_BODY_LIMIT
    assert limits.for_path("/api/v1/dns/lists") > JSON_BODY_LIMIT
    assert limits.for_path("/api/v1/dns/lists/l-1") == limits.for_path("/api/v1/dns/lists")
    # An MDM's page of posture reports is larger than any other JSON body, and only it is.
    assert limits.for_path("/api/v1/posture") == 8 * 1024 * 1024 > JSON_BODY_LIMIT
    assert limits.for_path("/api/v1/posture/x") == JSON_BODY_LIMIT


def test_unauthenticated_huge_body_is_refused_unread(api: ApiHarness) -> None:
    with serving(create_app(api.ctx)) as opts, connect(opts.port) as sock:
        sock.sendall(_head("POST", "/api/v1/identities", HUGE) + b'{"kind": "us')
        response = read_response(sock)
    assert status_of(response) == 401, response[:300]
    assert b"application/problem+json" in response


def test_announced_length_over_the_limit_is_refused_before_reading(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    with serving(create_app(api.ctx)) as opts:
        for path in ("/api/v1/identities", "/dns-query", "/api/v1/stock-imports"):
            with connect(opts.port) as sock:
                sock.sendall(_head("POST", path, HUGE, org.tokens[next(iter(org.tokens))]))
                response = read_response(sock)
            assert status_of(response) == 413, (path, response[:300])
            assert b'"status":413' in response


def test_streamed_body_past_the_limit_is_refused_as_it_passes(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"kind": "user", "name": "'
        for _ in range(8 * 1024):  # 8 MiB, chunked: no Content-Length to refuse up front
            sent += 1024
            yield b"a" * 1024
        yield b'"}'

    r = api.client.post(
        "/api/v1/identities",
        content=body(),
        headers={**org.auth(), "content-type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert json.loads(r.text)["detail"] == "the request body is larger than 1048576 octets"
    listed = api.client.get("/api/v1/identities", headers=org.auth()).json()
    assert listed["items"] == []


def test_bodies_within_the_limit_are_served(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    name = "n" * 200
    r = api.client.post(
        "/api/v1/identities", json={"kind": "user", "name": name}, headers=org.auth()
    )
    assert r.status_code == 201, r.text
