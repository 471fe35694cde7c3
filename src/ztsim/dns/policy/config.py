"""The gateway's policy file: lists, feeds, org settings and rules as TOML data.

Until the policy API stores rules in the database, `ztsim serve dns` reads
them from this file (and re-reads it when it changes). Example:

    sample_feeds = true                     # the built-in demo security feeds

    [lists.ads]
    path = "ads.txt"                        # relative to the policy file
    format = "adblock"                      # hosts | domains | adblock; detected if absent

    [[orgs]]
    id = "0123..."                          # the org's id
    block_answer = "null_ip"                # null_ip | nxdomain | block_page
    privacy = "blocked-only"                # blocked-only | all | none
    networks = ["10.64.0.0/16"]             # default policy for sources without a session

    [[orgs.rules]]
    id = "ads"
    action = "block"                        # allow | block | override | safe_search
    lists = ["ads"]

    [[orgs.static]]                         # sources without RADIUS sessions (demo, tests)
    address = "127.0.0.1"                   # and/or token = "..." for /dns-query/<token>
    identity = "..."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ztsim.dns.policy.feeds import parse_feeds, sample_feeds
from ztsim.dns.policy.identity import NetworkDefault, Requester
from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.rules import Category, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.errors import InvalidInput

_RULE_FIELDS = frozenset(Rule.__dataclass_fields__)
_SETTING_FIELDS = frozenset(OrgSettings.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    policy: PolicyData
    defaults: tuple[NetworkDefault, ...]
    static: tuple[tuple[str, Requester], ...]
    tokens: tuple[tuple[str, Requester], ...]  # DoH device tokens -> requester
    list_report: dict[str, tuple[int, int]]  # list name -> (good lines, bad lines)
    sources: tuple[Path, ...] = ()  # the files read: a change to any of them means reload


def _list(base: Path, name: str, spec: dict[str, Any]) -> ParsedList:
    fmt = ListFormat(spec["format"]) if "format" in spec else None
    if "path" not in spec:
        raise InvalidInput(f"list {name!r} needs a path")
    text = (base / spec["path"]).read_text(encoding="utf-8", errors="replace")
    return parse_list(text, fmt)


def _tuples(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


_Pairs = list[tuple[str, Requester]]


def _org(raw: dict[str, Any]) -> tuple[OrgPolicy, list[NetworkDefault], _Pairs, _Pairs]:
    org_id = str(raw["id"])
    rules = []
    for rule in raw.get("rules", []):
        unknown = set(rule) - _RULE_FIELDS
        if unknown:
            raise InvalidInput(f"org {org_id}: unknown rule fields {sorted(unknown)}")
        if rule.get("posture") or rule.get("sim"):
            # Posture checks and SIM facts live in the database: the file's requesters
            # carry neither, so such a rule could never apply as written.
            raise InvalidInput(
                f"org {org_id}: posture and sim requirements belong in the database's"
                " rules (ztsim policy apply), not in the policy file"
            )
        rules.append(Rule(**_tuples(rule)))
    settings_raw = {k: v for k, v in raw.items() if k in _SETTING_FIELDS}
    if "allow_list_only_fleets" in settings_raw:
        settings_raw["allow_list_only_fleets"] = frozenset(settings_raw["allow_list_only_fleets"])
    defaults = [NetworkDefault(org_id, cidr) for cidr in raw.get("networks", [])]
    static: _Pairs = []
    tokens: _Pairs = []
    for entry in raw.get("static", []):
        who = Requester(
            org_id,
            entry.get("identity"),
            frozenset(entry.get("groups", ())),
            frozenset(entry.get("fleets", ())),
            entry.get("sim_kind"),
            entry.get("device"),
        )
        if "address" in entry:
            static.append((str(entry["address"]), who))
        if "token" in entry:
            tokens.append((str(entry["token"]), who))
    policy = OrgPolicy(org_id, tuple(rules), OrgSettings(**settings_raw))
    return policy, defaults, static, tokens


def source_files(path: Path) -> tuple[Path, ...]:
    """The policy file and the list and feed files it names (for change detection)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return (path,)
    names = [spec.get("path") for spec in raw.get("lists", {}).values() if isinstance(spec, dict)]
    names += list(raw.get("feeds", {}).values())
    return (path, *(path.parent / str(name) for name in names if name))


def load_config(path: Path) -> GatewayConfig:
    """Parse the policy file; bad list lines are counted (see `list_report`), never fatal."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the DNS policy file {path}: {exc}") from None
    base = path.parent
    try:
        lists = {name: _list(base, name, spec) for name, spec in raw.get("lists", {}).items()}
        feeds = sample_feeds() if raw.get("sample_feeds", False) else {}
        feed_files = {
            Category(name): (None, (base / file).read_text(encoding="utf-8", errors="replace"))
            for name, file in raw.get("feeds", {}).items()
        }
        feeds.update(parse_feeds(feed_files))
        orgs, defaults, static, tokens = {}, [], [], []
        for org_raw in raw.get("orgs", []):
            org, org_defaults, org_static, org_tokens = _org(org_raw)
            orgs[org.org_id] = org
            defaults += org_defaults
            static += org_static
            tokens += org_tokens
    except (KeyError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"DNS policy file {path}: {exc!r}") from None
    report = {name: (parsed.good_lines, parsed.bad_lines) for name, parsed in lists.items()}
    files = [path, *(base / spec["path"] for spec in raw.get("lists", {}).values())]
    files += [base / file for file in raw.get("feeds", {}).values()]
    policy = PolicyData(orgs, lists, feeds)
    return GatewayConfig(
        policy, tuple(defaults), tuple(static), tuple(tokens), report, tuple(files)
    )
