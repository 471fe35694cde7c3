"""The CAMARA documents in the package: readable by name only, parsed, and the scopes
ztsim grants are exactly those their operations ask for."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from ztsim.errors import NotFound
from ztsim.risk import clients, specs


def test_each_document_is_read_and_parsed() -> None:
    versions = {name: specs.spec_document(name)["info"]["version"] for name in specs.SPEC_FILES}
    assert versions == {
        specs.SIM_SWAP: "2.1.0",
        specs.DEVICE_SWAP: "1.0.0",
        specs.SIM_SWAP_SUBSCRIPTIONS: "0.3.0",
    }
    assert specs.spec_text(specs.SIM_SWAP).startswith("openapi: 3.0.3\n")


def test_the_documents_are_served_where_their_servers_say() -> None:
    for path, name in specs.SERVED_AT.items():
        (server,) = specs.spec_document(name)["servers"]
        assert server["url"].replace("{apiRoot}", "") + "/openapi.yaml" == path


def test_the_licence_and_the_readme_travel_with_them() -> None:
    folder = resources.files("ztsim.risk").joinpath("specs", "camara")
    licence = folder.joinpath("LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    readme = folder.joinpath("README.md").read_text(encoding="utf-8")
    for fact in ("camaraproject/SimSwap", "camaraproject/DeviceSwap", "Apache-2.0", "2.1.0"):
        assert fact in readme


@pytest.mark.parametrize("name", ["LICENSE", "../specs.py", "README.md", "sim-swap.yaml", ""])
def test_only_the_documents_can_be_read(name: str) -> None:
    with pytest.raises(NotFound):
        specs.spec_text(name)


def test_the_scopes_granted_are_the_documents_scopes() -> None:
    from_documents = frozenset().union(*(specs.security_scopes(n) for n in specs.SPEC_FILES))
    assert from_documents == clients.SCOPES


def test_a_parsed_document_is_a_copy_at_its_top_level() -> None:
    first = specs.spec_document(specs.DEVICE_SWAP)
    first["paths"] = {}
    assert specs.spec_document(specs.DEVICE_SWAP)["paths"]


# SHA-256 of the files as published by CAMARA: the copies must stay verbatim.
PUBLISHED = {
    specs.SIM_SWAP: "b0cda1408fc88b366fc16d04f157478205a1736e81393332172a67f20832648c",
    specs.DEVICE_SWAP: "03be7d2352c1065181983d7f4e0e0cbef678443e7903f47b02cee05fb7281a96",
    specs.SIM_SWAP_SUBSCRIPTIONS: "e3d2d6132cf87e7739a567a1e7ca6e3dc5baa729d501b9b211a72946223aff86",
}


def test_the_copies_are_the_published_files() -> None:
    for name, digest in PUBLISHED.items():
        assert hashlib.sha256(specs.spec_text(name).encode()).hexdigest() == digest, name
