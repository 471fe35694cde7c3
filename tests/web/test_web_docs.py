"""/docs from vendored Swagger UI: local assets only, checksums as recorded, and a
bearer scheme in the OpenAPI document so "Authorize" works."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

from ztsim.web.docs import SCHEME, with_bearer

from support.api import ApiHarness

VENDOR = Path(str(resources.files("ztsim.web"))) / "static" / "vendor"


def _manifest() -> dict[str, str]:
    lines = (VENDOR / "MANIFEST.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def test_manifest_names_every_vendored_file_with_its_checksum() -> None:
    manifest = _manifest()
    on_disk = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file()} - {
        "MANIFEST.sha256"
    }
    assert set(manifest) == on_disk
    for name, digest in manifest.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_library_carries_its_licence_and_version() -> None:
    for library in (p for p in VENDOR.iterdir() if p.is_dir()):
        assert (library / "LICENSE").is_file(), library.name
        assert re.fullmatch(r"\d+\.\d+\.\d+\n?", (library / "VERSION").read_text())


def test_docs_page_loads_local_assets_only(api: ApiHarness) -> None:
    r = api.client.get("/docs")
    assert r.status_code == 200
    assert "https://" not in r.text
    assert "http://" not in r.text
    assert "<script>" not in r.text  # every script is a file of ours
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources, "the page loads its assets"
    manifest = _manifest()
    for source in sources:
        assert source.startswith("/static/"), source
        served = api.client.get(source)
        assert served.status_code == 200, source
        name = source.removeprefix("/static/vendor/")
        if name in manifest:
            assert hashlib.sha256(served.content).hexdigest() == manifest[name]


def test_fastapi_cdn_pages_are_gone(api: ApiHarness) -> None:
    assert api.client.get("/redoc").status_code == 404


def test_openapi_declares_bearer_on_the_gated_paths(api: ApiHarness) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"][SCHEME] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"][SCHEME]["description"],
    }
    assert doc["paths"]["/api/v1/me"]["get"]["security"] == [{SCHEME: []}]
    for path, operations in doc["paths"].items():
        gated = path.startswith(("/api/", "/nudm-"))
        for method, operation in operations.items():
            assert ("security" in operation) is gated, (method, path)
    assert "/docs" not in doc["paths"]
    assert "/login" not in doc["paths"]


def test_with_bearer_keeps_an_operation_s_own_security() -> None:
    own: list[dict[str, list[str]]] = [{"other": []}]
    doc = with_bearer(
        {"paths": {"/api/x": {"get": {"security": own}, "parameters": []}, "/doh": {"get": {}}}}
    )
    assert doc["paths"]["/api/x"]["get"]["security"] == own
    assert "security" not in doc["paths"]["/doh"]["get"]


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_every_operation_says_what_it_does(api: ApiHarness) -> None:
    doc = api.client.get("/openapi.json").json()
    bare = [
        f"{method.upper()} {path}"
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if method in _METHODS
        # A summary said again (FastAPI's "Get Sim" as "get sim.") tells an admin nothing.
        and _words(operation.get("description", "")) in ([], _words(operation["summary"]))
    ]
    assert bare == [], f"{len(bare)} operations without a description"
