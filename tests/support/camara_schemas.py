"""The SIM Swap Subscriptions spec's schemas (the copy in the package) as JSON Schema
validators, to hold answers and notifications to the document itself."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema_rs

from ztsim.risk import specs


@cache
def _components() -> dict[str, Any]:
    # YAML reads the examples' unquoted date-times as datetimes: back to JSON's strings.
    document = specs.spec_document(specs.SIM_SWAP_SUBSCRIPTIONS)
    components = json.loads(json.dumps(document["components"], default=str))
    assert isinstance(components, dict)
    return components


def errors(name: str, instance: Any) -> list[str]:
    """Why `instance` does not satisfy the spec's `components.schemas.<name>` (empty: it does)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components()}
    validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True)
    return [str(e) for e in validator.iter_errors(instance)]


def response_errors(name: str, instance: Any) -> list[str]:
    """The same for a response of `components.responses.<name>` (its JSON content)."""
    content = _components()["responses"][name]["content"]["application/json"]["schema"]
    schema = {**content, "components": _components()}
    validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True)
    return [str(e) for e in validator.iter_errors(instance)]
