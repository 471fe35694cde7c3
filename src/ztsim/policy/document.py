"""The policy file: an org's posture checks and the rules of every plane as one YAML document.

    version: 1
    checks:
      - {name: managed, expression: "device.managed", max_age: 24h}
    rules:
      dns:     [{name: no-social, action: block, domains: [.social.example]}]
      network: [{name: finance-db, action: allow, groups: [...], cidrs: [10.1.0.0/16]}]
      attach:  []

Rules are the flat form of `PolicyRule.to_spec`, in order per plane. Loading checks
everything a store would (names unique per plane, posture checks that exist, each field)
and says where the file is wrong by line (`policy.yaml:14: rule finance: ports: ...`);
duplicate YAML keys and unknown keys are errors, never silently dropped. `dump` writes
the canonical file, so exporting and applying it again changes nothing. Pure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import yaml

from ztsim.errors import InvalidInput, ZtsimError
from ztsim.policy.checks import CHECK_NAME, DEFAULT_MAX_AGE, PostureCheck
from ztsim.policy.facts import IdentityKind, SimKind
from ztsim.policy.rules import (
    ACTIONS,
    MAX_ITEMS,
    PROTOCOLS,
    REQUIREMENT_FIELDS,
    RULE_NAME,
    SELECTOR_FIELDS,
    TARGET_FIELDS,
    Plane,
    PolicyRule,
)

VERSION = 1
MAX_TEXT = 16 * 1024 * 1024  # a policy file, not a block list
_DURATION = re.compile(r"(\d{1,9})([smhd])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
CHECK_KEYS = ("name", "expression", "max_age")
Path = tuple[str | int, ...]
# Checks a DNS rule as the DNS plane will (its lists exist, its answer is sound): the
# caller's, since the policy context does not know the DNS plane's rule type.
RuleCheck = Callable[[PolicyRule], None]


def parse_duration(text: object) -> timedelta:
    """`90s`, `15m`, `24h`, `7d` (one number and one unit, as conditions write them)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"max_age {text!r}: a duration such as 90s, 15m, 24h or 7d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def format_duration(value: timedelta) -> str:
    """The largest whole unit: 86400 s is `1d`, 5400 s is `90m`."""
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("every whole number of seconds has a unit")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Document:
    """One org's whole policy: checks by name, rules in order (per plane: the plane's order)."""

    checks: tuple[PostureCheck, ...] = ()
    rules: tuple[PolicyRule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(sorted(self.checks, key=lambda c: c.name)))
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise InvalidInput("posture check names must be unique")
        seen: set[tuple[Plane, str]] = set()
        for rule in self.rules:
            if (rule.plane, rule.name) in seen:
                raise InvalidInput(f"rule {rule.name}: a second {rule.plane} rule of that name")
            seen.add((rule.plane, rule.name))
            missing = [p.check for p in rule.selector.posture if p.check not in names]
            if missing:
                raise InvalidInput(f"rule {rule.name}: no posture check {missing[0]!r}")
        # Plane by plane, each plane's rules in their order.
        ordered = [r for plane in Plane for r in self.rules if r.plane is plane]
        object.__setattr__(self, "rules", tuple(ordered))

    def rules_of(self, plane: Plane) -> tuple[PolicyRule, ...]:
        return tuple(r for r in self.rules if r.plane is plane)

    @property
    def check_map(self) -> dict[str, PostureCheck]:
        return {c.name: c for c in self.checks}

    def to_json(self) -> dict[str, Any]:
        """The canonical form: what the API returns and the file holds."""
        return {
            "version": VERSION,
            "checks": [check_json(c) for c in self.checks],
            "rules": {p.value: [rule_json(r) for r in self.rules_of(p)] for p in Plane},
        }

    @property
    def revision(self) -> str:
        """A SHA-256 of the canonical form: equal for equal policies, whatever their ids."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def check_json(check: PostureCheck) -> dict[str, Any]:
    return {
        "name": check.name,
        "expression": check.expression,
        "max_age": format_duration(check.max_age),
    }


def rule_json(rule: PolicyRule) -> dict[str, Any]:
    return {"name": rule.name, "action": rule.action, **rule.to_spec()}


# -- reading: YAML nodes to values, remembering each value's line ---------------------------


def _value(node: yaml.Node, path: Path, lines: dict[Path, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _value(key_node, (*path, "?"), lines, source)
            if not isinstance(key, str):
                raise InvalidInput(f"{source}:{key_node.start_mark.line + 1}: keys are text")
            if key in out:
                raise InvalidInput(f"{source}:{key_node.start_mark.line + 1}: {key!r} given twice")
            out[key] = _value(value_node, (*path, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def load(text: str, source: str = "policy.yaml", *, check_dns: RuleCheck | None = None) -> Document:
    """A document from the file's text; InvalidInput says `<source>:<line>: what is wrong`."""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{source}: larger than {MAX_TEXT // 1024 // 1024} MiB")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise InvalidInput(f"{source}:{line}: not YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not YAML: {exc}") from None
    if root is None:
        raise InvalidInput(f"{source}:1: the file is empty (a policy starts with `version: 1`)")
    lines: dict[Path, int] = {}
    try:
        data = _value(root, (), lines, source)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: {exc}") from None
    return from_json(data, source, lines=lines, check_dns=check_dns)


def from_json(
    data: object,
    source: str = "policy",
    *,
    lines: Mapping[Path, int] | None = None,
    check_dns: RuleCheck | None = None,
) -> Document:
    """A document from its canonical form (the API's body, a loaded file)."""
    return _Reader(source, lines or {}, check_dns).document(data)


class _Reader:
    def __init__(self, source: str, lines: Mapping[Path, int], check_dns: RuleCheck | None):
        self.source, self.lines, self.check_dns = source, lines, check_dns

    def fail(self, path: Path, text: str) -> InvalidInput:
        while path and path not in self.lines:
            path = path[:-1]
        line = self.lines.get(path)
        return InvalidInput(f"{self.source}{'' if line is None else f':{line}'}: {text}")

    def mapping(self, value: object, path: Path, what: str, known: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{what}: a mapping of {', '.join(known)}")
        for key in value:
            if key not in known:
                raise self.fail((*path, key), f"{what}: unknown key {key!r} ({', '.join(known)})")
        return value

    def items(self, value: object, path: Path, what: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"{what}: a list")
        return value

    def document(self, data: object) -> Document:
        top = self.mapping(data, (), "the policy", ("version", "checks", "rules"))
        if top.get("version") != VERSION:
            raise self.fail(("version",), f"version: {VERSION} (the only version there is)")
        checks = [
            self.check(item, ("checks", i))
            for i, item in enumerate(self.items(top.get("checks"), ("checks",), "checks"))
        ]
        names = self.unique([c.name for c in checks], ("checks",), "posture check")
        planes = self.mapping(top.get("rules") or {}, ("rules",), "rules", [p.value for p in Plane])
        rules = []
        for plane in Plane:
            at: Path = ("rules", plane.value)
            found = [
                self.rule(plane, item, (*at, i), names)
                for i, item in enumerate(self.items(planes.get(plane.value), at, f"{plane} rules"))
            ]
            self.unique([r.name for r in found], at, f"{plane} rule")
            rules += found
        return Document(tuple(checks), tuple(rules))

    def unique(self, names: list[str], path: Path, what: str) -> set[str]:
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail((*path, i), f"{what} {name}: the name is used twice")
        return set(names)

    def check(self, item: object, path: Path) -> PostureCheck:
        entry = self.mapping(item, path, "a posture check", CHECK_KEYS)
        name = entry.get("name")
        for key in ("name", "expression"):
            if not isinstance(entry.get(key), str):
                raise self.fail((*path, key), f"posture check {name or '?'}: {key}: required text")
        try:
            age = parse_duration(entry["max_age"]) if "max_age" in entry else DEFAULT_MAX_AGE
        except InvalidInput as exc:
            raise self.fail((*path, "max_age"), f"posture check {name}: {exc}") from None
        try:
            return PostureCheck(entry["name"], entry["expression"], age)
        except InvalidInput as exc:
            key = "name" if "check name" in str(exc) else "expression"
            raise self.fail((*path, key), f"posture check {name}: {exc}") from None

    def rule(self, plane: Plane, item: object, path: Path, checks: set[str]) -> PolicyRule:
        known = ("name", "action", *SELECTOR_FIELDS, *REQUIREMENT_FIELDS, *TARGET_FIELDS[plane])
        entry = self.mapping(item, path, f"{plane} rule", known)
        name, action = entry.get("name"), entry.get("action")
        if not isinstance(name, str) or not isinstance(action, str):
            key = "name" if not isinstance(name, str) else "action"
            raise self.fail((*path, key), f"{plane} rule: {key}: required text")
        spec = {k: v for k, v in entry.items() if k not in ("name", "action")}
        try:
            rule = PolicyRule.from_spec(plane.value, name, action, spec)
        except InvalidInput as exc:
            raise self.fail(self.culprit(plane, name, action, spec, path), str(exc)) from None
        for i, requirement in enumerate(rule.selector.posture):
            if requirement.check not in checks:
                where = (*path, "posture", i)
                raise self.fail(where, f"rule {name}: posture: no check {requirement.check!r}")
        if plane is Plane.DNS and self.check_dns is not None:
            try:
                self.check_dns(rule)
            except ZtsimError as exc:
                raise self.fail(path, f"rule {name}: {exc}") from None
        return rule

    def culprit(
        self, plane: Plane, name: str, action: str, spec: dict[str, Any], path: Path
    ) -> Path:
        """The key whose value alone is wrong (ports with their protocol), else the rule."""
        if not RULE_NAME.fullmatch(name):
            return (*path, "name")
        if action not in ACTIONS[plane]:
            return (*path, "action")
        for key, value in spec.items():
            alone = {key: value}
            if key == "ports" and "protocol" in spec:
                alone["protocol"] = spec["protocol"]
            try:
                PolicyRule.from_spec(plane.value, name, action, alone)
            except InvalidInput:
                return (*path, key)
        return path


# -- writing ---------------------------------------------------------------------------------

_HEADER = """\
# An org's ztsim policy: posture checks and the rules of every plane.
# Apply with `ztsim policy apply FILE` (it shows what changes first); the file's
# JSON Schema is `ztsim policy schema`. Within a plane the first rule that is for the
# subject, whose requirements hold and whose target matches decides.
"""
_PLANE_NOTES = {
    Plane.DNS: "names a device resolves; with no rule: allow",
    Plane.NETWORK: "flows to private networks; with no rule: deny",
    Plane.ATTACH: "APNs a SIM may attach to; with no rule: allow",
}
_FLOW_WIDTH = 72  # a longer list is written one item a line


def _scalar(value: object) -> str:
    # PyYAML quotes what would otherwise read back as another type (`on`, `1.0`, `*.x`).
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30)
    return text.removesuffix("\n").removesuffix("\n...")


def _entry(fields: Mapping[str, Any], indent: str) -> list[str]:
    out = []
    for i, (key, value) in enumerate(fields.items()):
        lead = f"{indent}- " if i == 0 else f"{indent}  "
        if not isinstance(value, list):
            out.append(f"{lead}{key}: {_scalar(value)}")
            continue
        flow = _scalar(value)
        if len(lead) + len(key) + len(flow) + 2 <= _FLOW_WIDTH:
            out.append(f"{lead}{key}: {flow}")
        else:
            out.append(f"{lead}{key}:")
            out += [f"{indent}    - {_scalar(item)}" for item in value]
    return out


def dump(document: Document) -> str:
    """The canonical file: `load(dump(d)) == d`, and the same policy always reads the same."""
    lines = [_HEADER.rstrip("\n"), f"version: {VERSION}", ""]
    lines.append("# A check passes when the device's last report, no older than max_age, says so.")
    if document.checks:
        lines.append("checks:")
        for check in document.checks:
            lines += _entry(check_json(check), "  ")
    else:
        lines.append("checks: []")
    lines += ["", "rules:"]
    for plane in Plane:
        rules = document.rules_of(plane)
        lines.append(f"  # {plane}: {_PLANE_NOTES[plane]}")
        if not rules:
            lines.append(f"  {plane}: []")
            continue
        lines.append(f"  {plane}:")
        for rule in rules:
            lines += _entry(rule_json(rule), "    ")
    return "\n".join(lines) + "\n"


# -- the file's JSON Schema ------------------------------------------------------------------

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
    "sim": _strings("SIM conditions that must hold, e.g. `sim.swap_age > 24h`."),
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
                            "pattern": f"^{_DURATION.pattern}$",
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
                        "description": _PLANE_NOTES[p],
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
