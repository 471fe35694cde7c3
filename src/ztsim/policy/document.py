"""The policy file: an org's posture checks and the rules of every plane as one YAML document.

    version: 1
    checks:
      - {name: managed, expression: "device.managed", max_age: 24h}
    rules:
      dns:     [{name: no-social, action: block, domains: [.social.example]}]
      network: [{name: finance-db, action: allow, groups: [...], cidrs: [10.1.0.0/16]}]
      attach:  []

Rules are the flat form of `PolicyRule.to_spec`, in order per plane. `load` and
`from_json` read it (`file_reader` says where it is wrong, by line); `dump` writes the
canonical file, so exporting and applying it again changes nothing. The file's JSON
Schema is `file_schema`'s. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ztsim.errors import InvalidInput
from ztsim.policy import file_reader
from ztsim.policy.checks import PostureCheck
from ztsim.policy.durations import format_duration
from ztsim.policy.file_reader import VERSION, Path, RuleCheck
from ztsim.policy.rules import Plane, PolicyRule


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


# -- reading ---------------------------------------------------------------------------------


def load(text: str, source: str = "policy.yaml", *, check_dns: RuleCheck | None = None) -> Document:
    """A document from the file's text; InvalidInput says `<source>:<line>: what is wrong`."""
    data, lines = file_reader.read_yaml(text, source)
    return from_json(data, source, lines=lines, check_dns=check_dns)


def from_json(
    data: object,
    source: str = "policy",
    *,
    lines: Mapping[Path, int] | None = None,
    check_dns: RuleCheck | None = None,
) -> Document:
    """A document from its canonical form (the API's body, a loaded file)."""
    checks, rules = file_reader.read(data, source, lines or {}, check_dns)
    return Document(checks, rules)


# -- writing ---------------------------------------------------------------------------------

_HEADER = """\
# An org's ztsim policy: posture checks and the rules of every plane.
# Apply with `ztsim policy apply FILE` (it shows what changes first); the file's
# JSON Schema is `ztsim policy schema`. Within a plane the first rule that is for the
# subject, whose requirements hold and whose target matches decides.
"""
PLANE_NOTES = {
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
        lines.append(f"  # {plane}: {PLANE_NOTES[plane]}")
        if not rules:
            lines.append(f"  {plane}: []")
            continue
        lines.append(f"  {plane}:")
        for rule in rules:
            lines += _entry(rule_json(rule), "    ")
    return "\n".join(lines) + "\n"
