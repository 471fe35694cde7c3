"""The policy file's JSON Schema: what an editor or a CI job can check a file against.

Made from the same tables the reader checks with (each plane's fields and actions, the
name patterns), so the two cannot drift apart; `policy.schema.json`, checked in beside
this module and printed by `ztsim policy schema`, is `schema_text()`. The schema says
what a file may hold; the reader alone knows what else must be true (posture checks
that exist, names unique per plane). Pure.
"""

from __future__ import annotations

import json
from typing import Any

from ztsim.policy.checks import CHECK_NAME, DEFAULT_MAX_AGE
from ztsim.policy.document import PLANE_NOTES
from ztsim.policy.durations import DURATION, format_duration
from ztsim.policy.facts import IdentityKind, SimKind
from ztsim.policy.file_reader import VERSION
from ztsim.policy.rules import (
    ACTIONS,
    MAX_ITEMS,
    PROTOCOLS,
    REQUIREMENT_FIELDS,
    RULE_NAME,
    SELECTOR_FIELDS,
    TARGET_FIELDS,
    Plane,
)

SCHEMA_ID = "https://ztsim.dev/schemas/policy-v1.json"


def _strings(description: str, **item: Any) -> dict[str, Any]:
    return {
        "type": "array",
        "description": description,
        "maxItems": MAX_ITEMS,
        "items": {"type": "string", "minLength": 1, "maxLength": 500, **item},
    }


_FIELDS: dict[str, dict[str, Any]] = {
    "identities": _strings("Identity ids the rule is for."),
    "groups": _strings("Group ids the rule is for."),
    "fleets": _strings("Fleet ids the rule is for."),
    "sim_kinds": _strings("SIM kinds the rule is for.", enum=[k.value for k in SimKind]),
    "identity_kinds": _strings(
        "Identity kinds the rule is for.", enum=[k.value for k in IdentityKind]
    ),
    "posture": _strings(
        "Posture checks that must pass (`!name`: must not pass).",
        pattern=f"^!?{CHECK_NAME.pattern}$",
    ),
    "sim": _strings("SIM conditions that must hold, e.g. `not sim.swap_recent`."),
    "domains": _strings("`example.com`, `.example.com` (and below), `*.example.com` (below)."),
    "lists": _strings("Names of the org's DNS lists."),
    "categories": _strings("Security feed categories."),
    "qtypes": {
        "type": "array",
        "description": "Query type numbers the rule is limited to.",
        "items": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
    "answer": _strings("An override's answer: addresses, or one name (a CNAME)."),
    "cidrs": _strings("Destination networks, e.g. 10.1.0.0/16."),
    "protocol": {"enum": sorted(PROTOCOLS), "description": "Default: any."},
    "ports": _strings("Ports or ranges (tcp or udp only).", pattern=r"^[0-9]{1,5}(-[0-9]{1,5})?$"),
    "apns": _strings("APNs (none: every APN)."),
}


def _rule_schema(plane: Plane) -> dict[str, Any]:
    fields = (*SELECTOR_FIELDS, *REQUIREMENT_FIELDS, *TARGET_FIELDS[plane])
    return {
        "type": "object",
        "required": ["name", "action"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": f"^{RULE_NAME.pattern}$"},
            "action": {"enum": sorted(ACTIONS[plane])},
            **{field: _FIELDS[field] for field in fields},
        },
    }


def json_schema() -> dict[str, Any]:
    """The policy file's JSON Schema (draft 2020-12); `policy.schema.json` is this."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ztsim policy",
        "description": "An org's posture checks and the ordered rules of each plane.",
        "type": "object",
        "required": ["version"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": VERSION},
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "expression"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": f"^{CHECK_NAME.pattern}$"},
                        "expression": {"type": "string", "minLength": 1, "maxLength": 500},
                        "max_age": {
                            "type": "string",
                            "pattern": f"^{DURATION.pattern}$",
                            "default": format_duration(DEFAULT_MAX_AGE),
                        },
                    },
                },
            },
            "rules": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    p.value: {
                        "type": "array",
                        "description": PLANE_NOTES[p],
                        "items": {"$ref": f"#/$defs/{p.value}_rule"},
                    }
                    for p in Plane
                },
            },
        },
        "$defs": {f"{p.value}_rule": _rule_schema(p) for p in Plane},
    }


def schema_text() -> str:
    """The schema as the checked-in file holds it."""
    return json.dumps(json_schema(), indent=2) + "\n"
