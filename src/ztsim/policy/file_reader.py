"""Reading the policy file: YAML to values that remember their lines, values to checks and rules.

Everything a store would refuse is refused here, and said where: names unique per plane,
posture checks that exist, each field (`policy.yaml:14: rule finance: ports: ...`).
Duplicate YAML keys and unknown keys are errors, never silently dropped. `document`
makes the checks and rules one `Document`; this module does not know that value, so
that it can sit below it. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from ztsim.errors import InvalidInput, ZtsimError
from ztsim.policy.checks import DEFAULT_MAX_AGE, PostureCheck
from ztsim.policy.durations import parse_duration
from ztsim.policy.rules import (
    ACTIONS,
    REQUIREMENT_FIELDS,
    RULE_NAME,
    SELECTOR_FIELDS,
    TARGET_FIELDS,
    Plane,
    PolicyRule,
)

VERSION = 1
MAX_TEXT = 16 * 1024 * 1024  # a policy file, not a block list
CHECK_KEYS = ("name", "expression", "max_age")
Path = tuple[str | int, ...]
# Checks a DNS rule as the DNS plane will (its lists exist, its answer is sound): the
# caller's, since the policy context does not know the DNS plane's rule type.
RuleCheck = Callable[[PolicyRule], None]


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


def read_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """The file's values and the line of each (by its path); InvalidInput names the line."""
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
    return data, lines


def read(
    data: object, source: str, lines: Mapping[Path, int], check_dns: RuleCheck | None
) -> tuple[tuple[PostureCheck, ...], tuple[PolicyRule, ...]]:
    """The checks and rules of the canonical form; errors name `lines`' line, if known."""
    return _Reader(source, lines, check_dns).policy(data)


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

    def policy(self, data: object) -> tuple[tuple[PostureCheck, ...], tuple[PolicyRule, ...]]:
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
        return tuple(checks), tuple(rules)

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
