"""URL lists: conditional GET against a loopback HTTP server; a failed refresh keeps the
last good list; bad lines are counted, never fatal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine

from ztsim.dns.store import policy_view as policy_db
from ztsim.dns.store.refresh import refresh_due as guarded_refresh
from ztsim.netguard import parse_ranges

from support.api import ApiHarness
from support.world import populate

# The list server is on loopback: allowed explicitly, as an admin would.
LOOPBACK = parse_ranges(["127.0.0.0/8"])


def refresh_due(engine: Engine, now: datetime, interval: float) -> int:
    return guarded_refresh(engine, now, interval, allowed=LOOPBACK)


STATE: dict[str, object] = {"status": 200, "body": "||one.test^\n", "seen": []}


class _Lists(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen = STATE["seen"]
        assert isinstance(seen, list)
        seen.append(self.headers.get("If-None-Match"))
        status = int(str(STATE["status"]))
        if status == 200 and self.headers.get("If-None-Match") == '"v1"':
            status = 304
        self.send_response(status)
        if status == 200:
            body = str(STATE["body"]).encode()
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def list_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/list.txt"
    finally:
        server.shutdown()
        server.server_close()


def test_conditional_refresh_and_last_good_copy(api: ApiHarness, list_server: str) -> None:
    world = populate(api, "alpha", 1)
    auth = world.org.auth()
    body = {"name": "remote", "format": "adblock", "url": list_server}
    created = api.client.post("/api/v1/dns/lists", json=body, headers=auth)
    assert created.status_code == 201, created.text
    list_id = created.json()["id"]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    STATE.update(status=200, body="||one.test^\n||two.test^\n||bad..name^\n", seen=[])

    assert refresh_due(api.engine, t0, 3600) == 1
    got = api.client.get(f"/api/v1/dns/lists/{list_id}", headers=auth).json()
    assert (got["good_lines"], got["bad_lines"], got["refresh_error"]) == (2, 1, "")
    assert got["bad_samples"][0]["line"] == 3

    assert refresh_due(api.engine, t0 + timedelta(minutes=5), 3600) == 0  # not due yet
    assert refresh_due(api.engine, t0 + timedelta(hours=2), 3600) == 1
    assert STATE["seen"] == [None, '"v1"']  # the second GET was conditional (304)

    STATE.update(status=500)
    assert refresh_due(api.engine, t0 + timedelta(hours=4), 3600) == 1
    got = api.client.get(f"/api/v1/dns/lists/{list_id}", headers=auth).json()
    assert got["refresh_error"] == "HTTP 500"
    with api.engine.connect() as conn:
        data, _ = policy_db.load_policy(conn)
    kept = data.lists[f"{world.org.id}/remote"]
    assert kept.blocked_subtree == frozenset({"one.test", "two.test"})  # the last good copy


def test_a_loopback_list_is_refused_unless_allowed(api: ApiHarness, list_server: str) -> None:
    world = populate(api, "alpha", 1)
    auth = world.org.auth()
    body = {"name": "inside", "format": "adblock", "url": list_server}
    list_id = api.client.post("/api/v1/dns/lists", json=body, headers=auth).json()["id"]
    STATE.update(status=200, body="||one.test^\n", seen=[])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert guarded_refresh(api.engine, t0, 3600) == 1  # no allowed ranges: the default
    got = api.client.get(f"/api/v1/dns/lists/{list_id}", headers=auth).json()
    assert got["refresh_error"] == "the URL's address is not allowed"
    assert (got["good_lines"], STATE["seen"]) == (0, [])  # the server was never asked
    assert refresh_due(api.engine, t0 + timedelta(hours=2), 3600) == 1
    assert api.client.get(f"/api/v1/dns/lists/{list_id}", headers=auth).json()["good_lines"] == 1


def test_list_urls_are_checked_at_creation(api: ApiHarness) -> None:
    world = populate(api, "alpha", 1)
    for url in ("ftp://lists.example/x", "http://user:pw@lists.example/x", "http:///x"):
        body = {"name": "bad", "format": "adblock", "url": url}
        r = api.client.post("/api/v1/dns/lists", json=body, headers=world.org.auth())
        assert r.status_code in (400, 422), (url, r.text)
