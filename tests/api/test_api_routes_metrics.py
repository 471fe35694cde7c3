"""`GET /metrics` on the API: who may scrape, the request metrics by route template, and
what it never shows (ids, paths, orgs)."""

from __future__ import annotations

from ipaddress import ip_network

import httpx
from fastapi.testclient import TestClient

from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge
from ztsim.api.routes_metrics import UNMATCHED, RouteTemplates, scraper_allowed
from ztsim.metrics.exposition import CONTENT_TYPE
from ztsim.metrics.registry import Kind, Registry, Spec

from api.edge_server import serving
from api.routes_table import ROUTES, app_routes
from support.api import ApiHarness
from support.prometheus_text import Scrape, parse
from support.world import World

PROBE = Spec("ztsim_test_probe", "A role of this process.", Kind.GAUGE)


def _loopback(api: ApiHarness) -> TestClient:
    return TestClient(api.app, client=("127.0.0.1", 40000))


def _scrape(client: TestClient) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse(response.text)


def test_scrapers_loopback_always_others_only_when_allowed() -> None:
    allow = (ip_network("192.0.2.0/24"),)
    assert scraper_allowed("127.0.0.1", ())
    assert scraper_allowed("127.8.9.10", ())
    assert scraper_allowed("::1", ())
    assert scraper_allowed("::ffff:127.0.0.1", ())
    assert not scraper_allowed("192.0.2.7", ())
    assert scraper_allowed("192.0.2.7", allow)
    assert not scraper_allowed("198.51.100.1", allow)
    assert not scraper_allowed("testclient", allow)
    assert not scraper_allowed(None, allow)


def test_a_client_not_allowed_gets_the_404_of_a_missing_path(api: ApiHarness) -> None:
    refused = api.client.get("/metrics")  # TestClient's client is "testclient"
    missing = api.client.get("/no-such-path")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    assert "ztsim_" not in refused.text


def test_metrics_are_outside_the_rest_api_and_its_schema(api: ApiHarness) -> None:
    assert "/metrics" not in api.app.openapi()["paths"]
    assert app_routes(api.app) == set(ROUTES)


def test_requests_are_counted_by_route_template_never_by_path(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    iccid = alpha.ids["iccid"]
    auth = alpha.org.auth()
    client = _loopback(api)
    before = _scrape(client)
    route = "/api/v1/sims/{iccid}"
    assert client.get(f"/api/v1/sims/{iccid}", headers=auth).status_code == 200
    assert client.get(f"/api/v1/sims/{iccid}").status_code == 401  # the edge's answer
    assert client.get("/api/v1/sims/89000000000000000000", headers=auth).status_code == 404
    assert client.get("/whatever/123").status_code == 404
    response = client.get("/metrics")
    scrape = parse(response.text)
    requests = "ztsim_api_requests_total"
    for status, n in (("200", 1), ("401", 1), ("404", 1)):
        moved = scrape.get(requests, method="GET", route=route, status=status) - before.get(
            requests, method="GET", route=route, status=status
        )
        assert moved == n, status
    assert scrape.get(requests, method="GET", route=UNMATCHED, status="404") >= 1
    assert (
        scrape.value(
            "ztsim_api_request_duration_seconds_count", method="GET", route=route, status="200"
        )
        >= 1
    )
    assert scrape.value("ztsim_api_requests_in_flight") == 1  # the scrape itself
    # No id, path or org in any label.
    for secret in (iccid, "89000000000000000000", "/whatever", alpha.org.id, "alpha"):
        assert secret not in response.text
    assert {"method", "route", "status"} >= {
        name for (n, labels) in scrape.values for name, _ in labels if n.startswith("ztsim_api_")
    } - {"le"}


def test_every_route_of_the_table_has_a_template(api: ApiHarness) -> None:
    templates = RouteTemplates([template for _, template in ROUTES])
    for _method, template in ROUTES:
        concrete = template.replace("{", "x").replace("}", "")
        assert templates(concrete) == template


def test_the_processes_other_roles_are_served_too(api: ApiHarness) -> None:
    registry = Registry()
    registry.register(lambda: [PROBE.family([((), 42)])])
    app = create_app(api.ctx, metrics=registry)
    scrape = _scrape(TestClient(app, client=("::1", 40000)))
    assert scrape.value("ztsim_test_probe") == 42
    assert "ztsim_api_requests_total" in scrape.types


def test_real_http_loopback_proxy_and_allowed_networks(api: ApiHarness) -> None:
    """Through uvicorn as the node runs it: a client forwarded by a trusted proxy on
    loopback is judged by its own address, not the proxy's."""
    edge = HttpEdge(trusted_proxies=(ip_network("127.0.0.1/32"),))
    closed = create_app(api.ctx, edge=edge)
    allowing = create_app(api.ctx, edge=edge, metrics_allow=(ip_network("203.0.113.0/24"),))
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    with serving(closed) as opts:
        url = f"http://127.0.0.1:{opts.port}/metrics"
        direct = httpx.get(url, timeout=5)
        assert direct.status_code == 200
        assert "ztsim_api_requests_total" in parse(direct.text).types
        assert httpx.get(url, headers=forwarded, timeout=5).status_code == 404
    with serving(allowing) as opts:
        url = f"http://127.0.0.1:{opts.port}/metrics"
        assert httpx.get(url, headers=forwarded, timeout=5).status_code == 200
        other = {"X-Forwarded-For": "198.51.100.9"}
        assert httpx.get(url, headers=other, timeout=5).status_code == 404
