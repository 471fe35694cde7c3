"""Response bodies held to the CAMARA spec documents themselves (the package's copies):
the schema an operation declares for a status, as JSON Schema (OpenAPI 3.0's
`nullable` made a JSON Schema type), validated with formats."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from ztsim.risk import specs


def _json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
        if node.get("nullable") is True and "type" in node:
            out["type"] = [node["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def body_errors(spec: str, path: str, status: int, body: Any) -> list[str]:
    """Why `body` is not what `spec` declares for POST `path` answering `status` (empty:
    it is). A status the operation does not declare is an error too."""
    document = specs.spec_document(spec)
    responses = document["paths"][path]["post"]["responses"]
    if str(status) not in responses:
        return [f"{path} declares no {status} response"]
    response = _resolve(document, responses[str(status)])
    schema = response["content"]["application/json"]["schema"]
    # Only the schemas: the documents' examples hold YAML timestamps, which are no JSON.
    components = {"schemas": document["components"]["schemas"]}
    full = _json_schema({**schema, "components": components})
    validator = jsonschema_rs.Draft4Validator(full, validate_formats=True)
    return [str(e) for e in validator.iter_errors(body)]
