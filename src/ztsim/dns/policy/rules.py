"""DNS policy as data: ordered rules per org, block lists, security feeds and org settings.

Everything here is an immutable value that checks itself; `ztsim.dns.policy.snapshot`
compiles a `PolicyData` into the structure the hot path reads. Rule semantics:

- Name selectors (`domains`, `lists`, `categories`) match if any of them does;
  a rule with none of them matches every name. `domains` entries: `example.com`
  matches that name only, `.example.com` the name and every name under it,
  `*.example.com` only names under it.
- Subject selectors (`identities`, `groups`, `fleets`, `sim_kinds`,
  `identity_kinds`) likewise match if any matches, and a rule with none applies to
  everyone in the org. Then every requirement must hold, as in every plane
  (`ztsim.policy.rules`): each `posture` check passes (`!name`: does not pass; a check
  the org does not have holds neither way) and each `sim` condition holds
  (`sim.swap_age < 24h`). The requester carries their states as tags, worked out off
  the hot path (`ztsim.dns.policy.identity`).
- `qtypes` limits a rule to those query types.
- The first matching rule decides. `SAFE_SEARCH` decides only for search engine
  names and lets evaluation continue for the rest. With no match a name is
  allowed, except for members of an allow-list-only fleet, for whom it is blocked.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ztsim.dns.policy.lists import ParsedList
from ztsim.dns.wire.block import BlockMode
from ztsim.dns.wire.errors import InvalidDomain
from ztsim.dns.wire.names import normalize_name
from ztsim.errors import InvalidInput
from ztsim.policy.conditions import is_sim_path, parse
from ztsim.policy.facts import IdentityKind
from ztsim.policy.rules import PostureRequirement


class Action(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    OVERRIDE = "override"
    SAFE_SEARCH = "safe_search"


class Category(enum.StrEnum):
    PHISHING = "phishing"
    MALWARE = "malware"
    COMMAND_AND_CONTROL = "command-and-control"
    CRYPTOMINING = "cryptomining"
    NEWLY_SEEN = "newly-seen"


class PrivacyMode(enum.StrEnum):
    BLOCKED_ONLY = "blocked-only"
    ALL = "all"
    NONE = "none"


class BlockAnswer(enum.StrEnum):
    """What a blocked name gets (the EDE is always added for EDNS clients)."""

    NULL_IP = "null_ip"  # 0.0.0.0 / ::, REFUSED for other types
    NXDOMAIN = "nxdomain"
    BLOCK_PAGE = "block_page"  # the org's block page addresses, NODATA without one

    @property
    def mode(self) -> BlockMode:
        return {
            BlockAnswer.NULL_IP: BlockMode.NULL_IP,
            BlockAnswer.NXDOMAIN: BlockMode.NXDOMAIN,
            BlockAnswer.BLOCK_PAGE: BlockMode.ADDRESS,
        }[self]


def _names(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        prefix = "*." if value.startswith("*.") else "." if value.startswith(".") else ""
        try:
            out.append(prefix + normalize_name(value[len(prefix) :]))
        except InvalidDomain as exc:
            raise InvalidInput(f"{what}: {value!r}: {exc}") from None
    return tuple(out)


def _address(value: str, version: int | None = None) -> str:
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidInput(f"not an IP address: {value!r}") from None
    if version is not None and parsed.version != version:
        raise InvalidInput(f"{value!r} is not an IPv{version} address")
    return str(parsed)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    action: Action
    domains: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    qtypes: tuple[int, ...] = ()
    identities: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    fleets: tuple[str, ...] = ()
    sim_kinds: tuple[str, ...] = ()
    # OVERRIDE: IP addresses (A/AAAA answers) or exactly one name (a CNAME answer).
    answer: tuple[str, ...] = ()
    identity_kinds: tuple[str, ...] = ()  # IdentityKind values
    posture: tuple[str, ...] = ()  # check names; `!name`: the check must not pass
    sim: tuple[str, ...] = ()  # conditions over sim.* and identity.kind, as parsed

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 100:
            raise InvalidInput("rule id must be 1-100 characters")
        object.__setattr__(self, "action", Action(self.action))
        try:
            kinds = tuple(IdentityKind(k).value for k in self.identity_kinds)
            posture = tuple(str(PostureRequirement.parse(p)) for p in self.posture)
            # Stored as the parser keeps them: the identity view tags requesters with
            # this very text (`sim:<text>`).
            sim = tuple(parse(text, allowed=is_sim_path).text for text in self.sim)
        except (InvalidInput, ValueError) as exc:
            raise InvalidInput(f"rule {self.id}: {exc}") from None
        object.__setattr__(self, "identity_kinds", kinds)
        object.__setattr__(self, "posture", posture)
        object.__setattr__(self, "sim", sim)
        object.__setattr__(self, "domains", _names(self.domains, f"rule {self.id}"))
        object.__setattr__(self, "categories", tuple(Category(c) for c in self.categories))
        if any(not 0 < q <= 0xFFFF for q in self.qtypes):
            raise InvalidInput(f"rule {self.id}: query types are 16-bit")
        if self.action is Action.OVERRIDE:
            if not self.answer:
                raise InvalidInput(f"rule {self.id}: an override needs an answer")
            if self.override_cname is None:
                object.__setattr__(self, "answer", tuple(_address(a) for a in self.answer))
        elif self.answer:
            raise InvalidInput(f"rule {self.id}: only an override has an answer")

    @property
    def override_cname(self) -> str | None:
        """The CNAME target of an override whose answer is one name, else None."""
        if len(self.answer) != 1:
            return None
        try:
            ipaddress.ip_address(self.answer[0])
        except ValueError:
            try:
                return normalize_name(self.answer[0])
            except InvalidDomain as exc:
                raise InvalidInput(f"rule {self.id}: answer: {exc}") from None
        return None

    @property
    def has_name_selector(self) -> bool:
        return bool(self.domains or self.lists or self.categories)

    @property
    def names_anyone(self) -> bool:
        """True if no subject selector is set: the rule is for everyone in the org."""
        return not (
            self.identities or self.groups or self.fleets or self.sim_kinds or self.identity_kinds
        )


@dataclass(frozen=True, slots=True)
class OrgSettings:
    block_answer: BlockAnswer = BlockAnswer.NULL_IP
    block_page_ipv4: str | None = None
    block_page_ipv6: str | None = None
    privacy: PrivacyMode = PrivacyMode.BLOCKED_ONLY
    pseudonymise: bool = False
    allow_list_only_fleets: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_answer", BlockAnswer(self.block_answer))
        object.__setattr__(self, "privacy", PrivacyMode(self.privacy))
        if self.block_page_ipv4 is not None:
            object.__setattr__(self, "block_page_ipv4", _address(self.block_page_ipv4, 4))
        if self.block_page_ipv6 is not None:
            object.__setattr__(self, "block_page_ipv6", _address(self.block_page_ipv6, 6))


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    org_id: str
    rules: tuple[Rule, ...] = ()
    settings: OrgSettings = field(default_factory=OrgSettings)

    def __post_init__(self) -> None:
        ids = [rule.id for rule in self.rules]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"org {self.org_id}: rule ids must be unique")


@dataclass(frozen=True, slots=True)
class PolicyData:
    """All orgs' policies with the lists and feeds they refer to (by id / category)."""

    orgs: Mapping[str, OrgPolicy] = field(default_factory=dict)
    lists: Mapping[str, ParsedList] = field(default_factory=dict)
    feeds: Mapping[Category, ParsedList] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for policy in self.orgs.values():
            for rule in policy.rules:
                missing = [name for name in rule.lists if name not in self.lists]
                if missing:
                    raise InvalidInput(f"rule {rule.id}: unknown lists {missing}")
