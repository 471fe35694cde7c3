"""The CAMARA OpenAPI documents ztsim implements, read from the package's data
(`risk/specs/camara/`, copied verbatim from the CAMARA repositories; see its README).

Only the files named here can be read: a name is a key, never a path, so no caller can
reach another file of the package through it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ztsim.errors import NotFound

SIM_SWAP = "sim-swap-2.1.0.yaml"
DEVICE_SWAP = "device-swap-1.0.0.yaml"
SIM_SWAP_SUBSCRIPTIONS = "sim-swap-subscriptions-0.3.0.yaml"
SPEC_FILES = (SIM_SWAP, DEVICE_SWAP, SIM_SWAP_SUBSCRIPTIONS)

# Where each document is served, next to the API it describes (its `servers` base path).
SERVED_AT = {
    "/sim-swap/v2/openapi.yaml": SIM_SWAP,
    "/device-swap/v1/openapi.yaml": DEVICE_SWAP,
    "/sim-swap-subscriptions/v0.3/openapi.yaml": SIM_SWAP_SUBSCRIPTIONS,
}


def spec_text(name: str) -> str:
    """The document as published, byte for byte (UTF-8)."""
    if name not in SPEC_FILES:
        raise NotFound(f"no CAMARA specification named {name!r}")
    folder = resources.files("ztsim.risk").joinpath("specs", "camara")
    # Bytes, then text: read_text would turn the documents' CRLF line ends into LF.
    return folder.joinpath(name).read_bytes().decode("utf-8")


@cache
def _parsed(name: str) -> Any:
    return yaml.safe_load(spec_text(name))


def spec_document(name: str) -> dict[str, Any]:
    """The document parsed (a fresh copy's top level; nested values are shared: do not
    change them)."""
    document = _parsed(name)
    assert isinstance(document, dict)
    return dict(document)


def security_scopes(name: str) -> frozenset[str]:
    """Every OAuth scope the document's operations ask for (their `security` sections)."""
    scopes: set[str] = set()
    for operations in spec_document(name)["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for requirement in operation.get("security", ()):
                for names in requirement.values():
                    scopes.update(names)
    return frozenset(scopes)
