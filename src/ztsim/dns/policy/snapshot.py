"""`PolicyData` compiled for the hot path: one domain store, per-org rule tables, decisions.

Every list and security feed a rule refers to gets one bit (two for a list with
`@@` exceptions) in a single `DomainStore`, shared by all orgs: one hash probe
per suffix of the query name finds every list the name is on. Rules' own
`domains` go into a small per-org dict. A requester's applicable rules are
selected once and cached on the (hashable) `Requester`.

Requesters whom every rule treats alike (same org, same applicable rules, same
allow-list-only fencing) share a policy class: the engine keeps one remembered
answer per class and query, so a thousand phones with the same policy warm one
entry, not a thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ztsim.dns.policy.domainstore import DomainStore, DomainStoreBuilder
from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.rules import Action, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.dns.policy.safesearch import safe_host
from ztsim.dns.wire.constants import EdeCode
from ztsim.dns.wire.names import name_suffixes
from ztsim.errors import InvalidInput

_MAX_BITS = 64
_EXACT, _SUBTREE, _BELOW = 0, 1, 2
ALLOW_LIST_ONLY = "allow-list-only"


class Decision(NamedTuple):
    action: Action  # ALLOW, BLOCK or OVERRIDE (safe search is an override by a CNAME)
    rule_id: str = ""
    ede_code: int = EdeCode.BLOCKED
    ede_text: str = ""
    addresses: tuple[str, ...] = ()
    cname: str | None = None


ALLOWED = Decision(Action.ALLOW)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    rule: Rule
    mask: int
    decision: Decision

    def applies_to(self, who: Requester) -> bool:
        rule = self.rule
        if not (rule.identities or rule.groups or rule.fleets or rule.sim_kinds):
            return True
        return bool(
            (who.identity_id is not None and who.identity_id in rule.identities)
            or who.group_ids.intersection(rule.groups)
            or who.fleet_ids.intersection(rule.fleets)
            or (who.sim_kind is not None and who.sim_kind in rule.sim_kinds)
        )


def _decision(rule: Rule) -> Decision:
    if rule.action is Action.BLOCK:
        code = EdeCode.FILTERED if rule.categories else EdeCode.BLOCKED
        return Decision(Action.BLOCK, rule.id, code, f"blocked by rule {rule.id}")
    if rule.action is Action.OVERRIDE:
        cname = rule.override_cname
        addresses = () if cname is not None else rule.answer
        return Decision(Action.OVERRIDE, rule.id, addresses=addresses, cname=cname)
    return Decision(rule.action, rule.id)


@dataclass(slots=True)
class _CompiledOrg:
    settings: OrgSettings
    rules: tuple[_CompiledRule, ...]
    names: dict[str, list[tuple[int, int]]]
    by_requester: dict[Requester, tuple[_CompiledRule, ...]] = field(default_factory=dict)

    def rules_for(self, who: Requester) -> tuple[_CompiledRule, ...]:
        rules = self.by_requester.get(who)
        if rules is None:
            rules = tuple(r for r in self.rules if r.applies_to(who))
            if len(self.by_requester) > 100_000:
                self.by_requester.clear()
            self.by_requester[who] = rules
        return rules

    def name_hits(self, qname: str) -> set[int]:
        hits: set[int] = set()
        for depth, suffix in enumerate(name_suffixes(qname)):
            for index, kind in self.names.get(suffix, ()):
                if kind == _SUBTREE or (kind == _EXACT) == (depth == 0):
                    hits.add(index)
        return hits


class PolicySnapshot:
    """The compiled policy of every org. Read-only after construction (safe to share)."""

    def __init__(self, data: PolicyData, key: bytes) -> None:
        bits: dict[tuple[str, str], int] = {}
        builder = DomainStoreBuilder()
        self._exceptions: list[tuple[int, int]] = []

        def bit(kind: str, name: str) -> int:
            if (kind, name) not in bits:
                if len(bits) >= _MAX_BITS:
                    raise InvalidInput(f"more than {_MAX_BITS} lists and feeds in use")
                bits[(kind, name)] = 1 << len(bits)
            return bits[(kind, name)]

        used_lists = sorted({n for p in data.orgs.values() for r in p.rules for n in r.lists})
        for name in used_lists:
            parsed = data.lists[name]
            allow = bit("allow", name) if parsed.allowed_subtree else None
            builder.add_list(parsed, bit("list", name), allow_mask=allow)
            if allow is not None:
                self._exceptions.append((allow, bits[("list", name)]))
        for category, feed in sorted(data.feeds.items()):
            builder.add_list(feed, bit("category", category.value))
        self.store: DomainStore = builder.build(key)
        self.orgs: dict[str, _CompiledOrg] = {
            org_id: self._compile(policy, bits) for org_id, policy in data.orgs.items()
        }
        self._classes: dict[Requester, int] = {}
        self._class_ids: dict[tuple[object, ...], int] = {}

    def __getstate__(self) -> tuple[bytes, list[tuple[int, int]], dict[str, _CompiledOrg]]:
        """For handing a built snapshot to worker processes (the rule caches stay behind)."""
        orgs = {org_id: replace(org, by_requester={}) for org_id, org in self.orgs.items()}
        return self.store.to_bytes(), self._exceptions, orgs

    def __setstate__(
        self, state: tuple[bytes, list[tuple[int, int]], dict[str, _CompiledOrg]]
    ) -> None:
        buffer, self._exceptions, self.orgs = state
        self.store = DomainStore.from_buffer(buffer)
        self._classes, self._class_ids = {}, {}

    def policy_class(self, who: Requester) -> int:
        """A number shared by exactly the requesters `decide` cannot tell apart."""
        found = self._classes.get(who)
        if found is None:
            org = self.orgs.get(who.org_id)
            signature: tuple[object, ...] = (who.org_id,)
            if org is not None:
                fenced = bool(who.fleet_ids & org.settings.allow_list_only_fleets)
                signature += (tuple(rule.index for rule in org.rules_for(who)), fenced)
            found = self._class_ids.setdefault(signature, len(self._class_ids))
            if len(self._classes) > 100_000:
                self._classes.clear()
            self._classes[who] = found
        return found

    @staticmethod
    def _compile(policy: OrgPolicy, bits: dict[tuple[str, str], int]) -> _CompiledOrg:
        rules = []
        names: dict[str, list[tuple[int, int]]] = {}
        for index, rule in enumerate(policy.rules):
            mask = 0
            for name in rule.lists:
                mask |= bits[("list", name)]
            for category in rule.categories:
                mask |= bits.get(("category", category.value), 0)
            for entry in rule.domains:
                if entry.startswith("*."):
                    names.setdefault(entry[2:], []).append((index, _BELOW))
                elif entry.startswith("."):
                    names.setdefault(entry[1:], []).append((index, _SUBTREE))
                else:
                    names.setdefault(entry, []).append((index, _EXACT))
            rules.append(_CompiledRule(index, rule, mask, _decision(rule)))
        return _CompiledOrg(policy.settings, tuple(rules), names)

    def settings(self, org_id: str) -> OrgSettings:
        org = self.orgs.get(org_id)
        return org.settings if org is not None else OrgSettings()

    def decide(self, who: Requester, qname: str, qtype: int) -> Decision:
        """The decision for `qname` (normalised, no trailing dot) asked by `who`."""
        org = self.orgs.get(who.org_id)
        if org is None:
            return ALLOWED
        rules = org.rules_for(who)
        mask = -1
        hits: set[int] | None = None
        for compiled in rules:
            rule = compiled.rule
            if rule.qtypes and qtype not in rule.qtypes:
                continue
            if rule.has_name_selector:
                if mask < 0:
                    mask = self._mask(qname)
                if not compiled.mask & mask:
                    if hits is None:
                        hits = org.name_hits(qname) if org.names else set()
                    if compiled.index not in hits:
                        continue
            if rule.action is Action.SAFE_SEARCH:
                target = safe_host(qname)
                if target is None:
                    continue
                return Decision(Action.OVERRIDE, rule.id, cname=target)
            return compiled.decision
        if who.fleet_ids and who.fleet_ids & org.settings.allow_list_only_fleets:
            text = "not on the fleet's allow list"
            return Decision(Action.BLOCK, ALLOW_LIST_ONLY, EdeCode.FILTERED, text)
        return ALLOWED

    def _mask(self, qname: str) -> int:
        found = self.store.lookup(qname) if qname else None
        if found is None:
            return 0
        mask = found[1]
        for allow, block in self._exceptions:
            if mask & allow:
                mask &= ~block
        return mask
