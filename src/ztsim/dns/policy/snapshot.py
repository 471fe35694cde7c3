"""`PolicyData` compiled for the hot path: list stores, per-org rule tables, decisions.

Every list a rule refers to has a domain store of its own, the security feeds one
together (`liststores`); each org numbers the lists its rules use with bits of its own, so
a rule's name selector is one mask. A list's store is built once and kept while the list
is unchanged: `with_orgs` recompiles the rules of the orgs that changed and shares the
rest, stores included. Rules' own `domains` go into a small per-org dict. The rules that
name a requester, and how each comes out for it, are worked out once and cached on the
(hashable) `Requester`.

Requesters whom every rule treats alike (same org, same rules naming them with the same
outcomes, same allow-list-only fencing) share a policy class: the engine keeps one
remembered answer per class and query, so a thousand phones with the same policy warm
one entry, not a thousand.

Requirements (posture checks, SIM conditions) are read from the requester's tags, set
when its entry was read (`ztsim.dns.policy.identity.tags_of`). Decisions and their reason
codes are `ztsim.policy.reference`'s, word for word (a property test holds the two
together): the rule, the negated checks and SIM conditions that let it apply, and the
first failed requirement of each earlier rule the name matched. A block's EDE text names
those states: "blocked by rule x (posture:managed-modern:failed)". Only the gateway has
safe search, the security feed categories and allow-list-only fleets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ztsim.dns.policy.identity import Requester, TagRequirement
from ztsim.dns.policy.liststores import (
    FEED_BITS,
    CompiledFeeds,
    CompiledList,
    compile_feeds,
    compile_list,
)
from ztsim.dns.policy.rules import Action, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.dns.policy.safesearch import safe_host
from ztsim.dns.wire.constants import EdeCode
from ztsim.dns.wire.names import name_suffixes
from ztsim.errors import InvalidInput
from ztsim.policy import reasons

_EXACT, _SUBTREE, _BELOW = 0, 1, 2
ALLOW_LIST_ONLY = "allow-list-only"


class Decision(NamedTuple):
    action: Action  # ALLOW, BLOCK or OVERRIDE (safe search is an override by a CNAME)
    rule_id: str = ""
    ede_code: int = EdeCode.BLOCKED
    ede_text: str = ""
    addresses: tuple[str, ...] = ()
    cname: str | None = None
    # Why (`ztsim.policy.reasons`), as `ztsim.policy.reference` says it: the rule (or the
    # default), the states that let it apply, those that kept earlier rules from applying.
    reasons: tuple[str, ...] = ()


ALLOWED = Decision(Action.ALLOW, reasons=(reasons.DEFAULT_ALLOW,))
_FENCED = Decision(
    Action.BLOCK,
    ALLOW_LIST_ONLY,
    EdeCode.FILTERED,
    "not on the fleet's allow list",
    reasons=(reasons.ALLOW_LIST_ONLY,),
)


def _explained(decision: Decision, codes: tuple[str, ...]) -> Decision:
    """`decision` (as compiled, its one reason first) with more reason codes after it; a
    block's EDE text names them, so a person learns which state denied them."""
    why = tuple(dict.fromkeys((*decision.reasons, *codes)))
    if len(why) == 1:
        return decision
    if decision.action is Action.BLOCK:
        text = f"{decision.ede_text} ({', '.join(why[1:])})"
        return decision._replace(reasons=why, ede_text=text)
    return decision._replace(reasons=why)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    rule: Rule
    mask: int
    decision: Decision
    requirements: tuple[TagRequirement, ...] = ()  # posture checks, then SIM conditions

    def names(self, who: Requester) -> bool:
        rule = self.rule
        return rule.names_anyone or bool(
            (who.identity_id is not None and who.identity_id in rule.identities)
            or who.group_ids.intersection(rule.groups)
            or who.fleet_ids.intersection(rule.fleets)
            or (who.sim_kind is not None and who.sim_kind in rule.sim_kinds)
            or (who.identity_kind is not None and who.identity_kind in rule.identity_kinds)
        )

    def step_for(self, who: Requester) -> _Step:
        """For `who` (whom the rule names): its decision and the codes of the requirements
        that let it apply; or None and the codes of the first that did not."""
        held: list[str] = []
        for requirement in self.requirements:
            holds, codes = requirement.judge(who.tags)
            if not holds:
                return self, None, codes
            if requirement.worth_saying:
                held.extend(codes)
        codes = tuple(held)
        return self, _explained(self.decision, codes), codes


def _decision(rule: Rule) -> Decision:
    why = (reasons.rule(rule.id),)
    if rule.action is Action.BLOCK:
        code = EdeCode.FILTERED if rule.categories else EdeCode.BLOCKED
        return Decision(Action.BLOCK, rule.id, code, f"blocked by rule {rule.id}", reasons=why)
    if rule.action is Action.OVERRIDE:
        cname = rule.override_cname
        addresses = () if cname is not None else rule.answer
        return Decision(Action.OVERRIDE, rule.id, addresses=addresses, cname=cname, reasons=why)
    return Decision(rule.action, rule.id, reasons=why)


def _compiled(index: int, rule: Rule, mask: int) -> _CompiledRule:
    requirements = [TagRequirement.posture(text) for text in rule.posture]
    requirements += [TagRequirement.sim(text) for text in rule.sim]
    return _CompiledRule(index, rule, mask, _decision(rule), tuple(requirements))


# A rule that names a requester: itself, its decision for the requester (None: a
# requirement did not hold) and the codes of its requirements (held, or the first failed).
_Step = tuple[_CompiledRule, Decision | None, tuple[str, ...]]


@dataclass(slots=True)
class _CompiledOrg:
    settings: OrgSettings
    rules: tuple[_CompiledRule, ...]
    names: dict[str, list[tuple[int, int]]]
    # Each list its rules use: (name, compiled list, the org's bit for it).
    lists: tuple[tuple[str, CompiledList, int], ...] = ()
    uses_feeds: bool = False
    by_requester: dict[Requester, tuple[_Step, ...]] = field(default_factory=dict)

    def rules_for(self, who: Requester) -> tuple[_Step, ...]:
        """The rules that name `who`, in order, each as it comes out for `who`."""
        rules = self.by_requester.get(who)
        if rules is None:
            rules = tuple(r.step_for(who) for r in self.rules if r.names(who))
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
        """Compiles every list a rule uses and the feeds (see `assemble` to reuse them)."""
        used = sorted({n for p in data.orgs.values() for r in p.rules for n in r.lists})
        lists = {name: compile_list(data.lists[name], key) for name in used}
        self._init(data.orgs, lists, compile_feeds(data.feeds, key))

    @classmethod
    def assemble(
        cls,
        orgs: Mapping[str, OrgPolicy],
        lists: Mapping[str, CompiledList],
        feeds: CompiledFeeds,
    ) -> PolicySnapshot:
        """A snapshot of `orgs` from lists and feeds compiled before (by name);
        InvalidInput if a rule names a list not in `lists`."""
        snapshot = cls.__new__(cls)
        snapshot._init(orgs, lists, feeds)
        return snapshot

    def with_orgs(
        self, orgs: Mapping[str, OrgPolicy | None], lists: Mapping[str, CompiledList]
    ) -> PolicySnapshot:
        """A copy with `orgs` recompiled (None: the org is gone); every other org, and
        its compiled lists, is shared with this snapshot."""
        snapshot = PolicySnapshot.__new__(PolicySnapshot)
        snapshot.feeds = self.feeds
        snapshot.orgs = dict(self.orgs)
        for org_id, policy in orgs.items():
            if policy is None:
                snapshot.orgs.pop(org_id, None)
            else:
                snapshot.orgs[org_id] = snapshot._compile(policy, lists)
        snapshot._classes, snapshot._class_ids = {}, {}
        return snapshot

    def _init(
        self,
        orgs: Mapping[str, OrgPolicy],
        lists: Mapping[str, CompiledList],
        feeds: CompiledFeeds,
    ) -> None:
        self.feeds = feeds
        self.orgs: dict[str, _CompiledOrg] = {
            org_id: self._compile(policy, lists) for org_id, policy in orgs.items()
        }
        self._classes: dict[Requester, int] = {}
        self._class_ids: dict[tuple[object, ...], int] = {}

    def lists_in_use(self) -> dict[str, CompiledList]:
        """Every compiled list a rule of some org uses, by name."""
        out: dict[str, CompiledList] = {}
        for org in self.orgs.values():
            out.update((name, compiled) for name, compiled, _bit in org.lists)
        return out

    def __getstate__(self) -> tuple[CompiledFeeds, dict[str, _CompiledOrg]]:
        """For handing a built snapshot to worker processes (the rule caches stay behind)."""
        orgs = {org_id: replace(org, by_requester={}) for org_id, org in self.orgs.items()}
        return self.feeds, orgs

    def __setstate__(self, state: tuple[CompiledFeeds, dict[str, _CompiledOrg]]) -> None:
        self.feeds, self.orgs = state
        self._classes, self._class_ids = {}, {}

    def policy_class(self, who: Requester) -> int:
        """A number shared by exactly the requesters `decide` cannot tell apart."""
        found = self._classes.get(who)
        if found is None:
            org = self.orgs.get(who.org_id)
            signature: tuple[object, ...] = (who.org_id,)
            if org is not None:
                fenced = bool(who.fleet_ids & org.settings.allow_list_only_fleets)
                # A decision's reasons go into its answer (the EDE text): part of the class.
                applied = tuple((r.index, d is None, codes) for r, d, codes in org.rules_for(who))
                signature += (applied, fenced)
            found = self._class_ids.setdefault(signature, len(self._class_ids))
            if len(self._classes) > 100_000:
                self._classes.clear()
            self._classes[who] = found
        return found

    def _compile(self, policy: OrgPolicy, lists: Mapping[str, CompiledList]) -> _CompiledOrg:
        names_used = sorted({name for rule in policy.rules for name in rule.lists})
        missing = [name for name in names_used if name not in lists]
        if missing:
            raise InvalidInput(f"org {policy.org_id}: rules use unknown lists {missing}")
        bits = {name: 1 << (FEED_BITS + index) for index, name in enumerate(names_used)}
        rules = []
        names: dict[str, list[tuple[int, int]]] = {}
        for index, rule in enumerate(policy.rules):
            mask = 0
            for name in rule.lists:
                mask |= bits[name]
            for category in rule.categories:
                mask |= self.feeds.bits.get(category.value, 0)
            for entry in rule.domains:
                if entry.startswith("*."):
                    names.setdefault(entry[2:], []).append((index, _BELOW))
                elif entry.startswith("."):
                    names.setdefault(entry[1:], []).append((index, _SUBTREE))
                else:
                    names.setdefault(entry, []).append((index, _EXACT))
            rules.append(_compiled(index, rule, mask))
        return _CompiledOrg(
            policy.settings,
            tuple(rules),
            names,
            tuple((name, lists[name], bits[name]) for name in names_used),
            uses_feeds=any(rule.categories for rule in policy.rules),
        )

    def settings(self, org_id: str) -> OrgSettings:
        org = self.orgs.get(org_id)
        return org.settings if org is not None else OrgSettings()

    def decide(self, who: Requester, qname: str, qtype: int) -> Decision:
        """The decision for `qname` (normalised, no trailing dot) asked by `who`."""
        org = self.orgs.get(who.org_id)
        if org is None:
            return ALLOWED
        mask = -1
        hits: set[int] | None = None
        skipped: tuple[str, ...] = ()  # the codes of named rules that matched but failed
        for compiled, decision, codes in org.rules_for(who):
            rule = compiled.rule
            if rule.qtypes and qtype not in rule.qtypes:
                continue
            if rule.has_name_selector:
                if mask < 0:
                    mask = self._mask(org, qname)
                if not compiled.mask & mask:
                    if hits is None:
                        hits = org.name_hits(qname) if org.names else set()
                    if compiled.index not in hits:
                        continue
            if decision is None:
                skipped += codes
                continue
            if rule.action is Action.SAFE_SEARCH:
                target = safe_host(qname)
                if target is None:
                    continue
                why = tuple(dict.fromkeys((*decision.reasons, *skipped)))
                return Decision(Action.OVERRIDE, rule.id, cname=target, reasons=why)
            return _explained(compiled.decision, codes + skipped) if skipped else decision
        if who.fleet_ids and who.fleet_ids & org.settings.allow_list_only_fleets:
            return _explained(_FENCED, skipped)
        return _explained(ALLOWED, skipped)

    def _mask(self, org: _CompiledOrg, qname: str) -> int:
        """The bits of the org's lists that block `qname`, and of its categories."""
        if not qname:
            return 0
        mask = self.feeds.mask(qname) if org.uses_feeds else 0
        for _name, compiled, bit in org.lists:
            if compiled.blocks(qname):
                mask |= bit
        return mask
