"""The gateway's nftables table as the net role wants it, and the smallest batch that gets
the kernel there from what it holds: pure, no I/O (the role applies the batch).

Chains are named by CONTENT: a class's chain is `n_<12 hex>`, a short SHA-256 of the
network rules that apply to the class (names, actions, targets, in order). So classes
with equal rule lists share one chain, whichever org or compilation numbered them; a
rule edit makes new names only for the rule lists it changed (the chains of every other
class stay as they are, with their counters), subjects move to the new chain, and a
chain is deleted in the batch in which the last subject leaves it. 48 bits of hash make
a collision between the few thousand rule lists of one gateway negligible (birthday bound
about n^2 / 2^49).

`GatewayTable` keeps what the kernel holds as far as the last committed plan says; `plan*`
return a `Plan` (the commands and the addresses whose open flows must be cut: those that
left the map or moved to another chain) without changing anything, and `commit` takes a
plan in once the kernel has applied it. A plan that failed is dropped: planning again
from the same state gives the same batch, so a retry is idempotent.

A chain with FQDN rules (`net.fqdn`) also has a set per rule and family that the DNS
gateway's answers fill: `plan_learn` turns answers into the batch that adds them to the
sets of the requester's chain, whose rules match the name (`net.gateway_fqdn`); a whole
table made anew is refilled with what the sets held (`fqdn.Learned`), in the same batch.

The Geneve class tag of a subject is its class id in its org's compiled policy and the
generation of that compilation (`generation_of`): a number that only grows, the feed
position at which the policy was read.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ztsim.net import nft_documents as docs
from ztsim.net.fqdn import (
    CAP_SECONDS,
    FLOOR_SECONDS,
    Answered,
    Chain,
    Learned,
    compile_chain,
    fqdn_rules,
)
from ztsim.net.gateway_fqdn import FqdnSets, LearnPlan, fqdn_sets, plan_answers
from ztsim.net.identity_option import ClassTag
from ztsim.net.nft_fqdn_documents import fqdn_fill
from ztsim.net.nft_names import Command
from ztsim.policy.rules import NetworkTarget, Plane, PolicyRule

CHAIN_PREFIX = "n_"
HASH_HEX = 12  # 48 bits: see the module's docstring
GENERATIONS = 2**32  # the option's generation field is 32 bits (docs/net.md)
Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


def _content(rule: PolicyRule) -> list[Any]:
    target = rule.target
    assert isinstance(target, NetworkTarget)
    out: list[Any] = [
        rule.name,
        rule.action,
        [str(c) for c in target.cidrs],
        target.protocol,
        [str(p) for p in target.ports],
    ]
    if target.domains:  # only then: the names of chains without domains do not change
        out.append(list(target.domains))
    return out


def chain_name(rules: Iterable[PolicyRule]) -> str:
    """The chain of a class whose applying network rules are `rules` (in order)."""
    content = [_content(r) for r in rules if r.plane is Plane.NETWORK]
    text = json.dumps(content, separators=(",", ":"))
    return CHAIN_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:HASH_HEX]


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """A class chain: its content name and the rules it is flattened from."""

    name: str
    rules: tuple[PolicyRule, ...]

    @classmethod
    def of(cls, rules: Iterable[PolicyRule]) -> ChainSpec:
        network = tuple(r for r in rules if r.plane is Plane.NETWORK)
        return cls(chain_name(network), network)


def generation_of(position: int) -> int:
    """A compilation's generation from the feed position it was read at (32 bits)."""
    return position % GENERATIONS


def class_tag(generation: int, class_id: int) -> ClassTag:
    return ClassTag(generation % GENERATIONS, class_id)


def _sites(prefixes: Iterable[Prefix | str]) -> tuple[Prefix, ...]:
    nets = {ipaddress.ip_network(p, strict=False) for p in prefixes}
    return tuple(sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen)))


@dataclass(frozen=True)
class Plan:
    """A batch for the kernel, the addresses whose flows to cut after it, and what the
    table holds once it is applied (taken in by `GatewayTable.commit`)."""

    commands: tuple[Command, ...]
    cut: tuple[str, ...]
    whole: bool
    subjects: Mapping[str, str] = field(repr=False)  # whole: all; else the ones set
    removed: frozenset[str] = frozenset()
    chains: Mapping[str, Chain] = field(default_factory=dict, repr=False)  # created
    dropped: frozenset[str] = frozenset()  # chains deleted
    sites: tuple[Prefix, ...] | None = None  # None: unchanged

    def __bool__(self) -> bool:
        return bool(self.commands)

    @property
    def fqdn(self) -> dict[str, tuple[FqdnSets, ...]]:
        """The created chains' FQDN rules, by chain (chains without any left out)."""
        return {n: sets for n, c in self.chains.items() if (sets := fqdn_sets(n, c))}

    def document(self) -> dict[str, Any]:
        return docs.batch(self.commands)


class GatewayTable:
    """The table as the kernel holds it (after the last committed plan). `monotonic`: the
    clock of the FQDN sets' expiries (seconds); `floor`, `cap`: their timeouts' bounds."""

    def __init__(
        self,
        reject: bool = False,
        flattener: Callable[[Sequence[PolicyRule]], Chain] = compile_chain,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        floor: int = FLOOR_SECONDS,
        cap: int = CAP_SECONDS,
    ) -> None:
        self.reject = reject
        self._flatten = flattener
        self.monotonic = monotonic
        self.floor, self.cap = floor, cap
        self.subjects: dict[str, str] = {}  # address -> chain name
        self.uses: dict[str, int] = {}  # chain name -> subjects jumping to it
        self.flattened: dict[str, Chain] = {}  # the chains that exist
        self.sites: tuple[Prefix, ...] = ()
        self.learned = Learned()

    def fqdn(self, chain: str) -> tuple[FqdnSets, ...]:
        """The FQDN rules of an existing chain (none: no such chain, or none in it)."""
        return fqdn_sets(chain, self.flattened.get(chain))

    def names(self, source: str, destination: str, now: float | None = None) -> frozenset[str]:
        """The names `destination` is known under in the chain of the subject at `source`:
        `policy.targets.Flow.names`, to explain what the kernel did with a flow."""
        chain = self.subjects.get(source)
        if chain is None or not fqdn_rules(self.flattened.get(chain)):
            return frozenset()
        return self.learned.names(chain, destination, self.monotonic() if now is None else now)

    def _flat(self, spec: ChainSpec, made: dict[str, Chain]) -> Chain:
        found = self.flattened.get(spec.name) or made.get(spec.name)
        if found is None:
            found = made[spec.name] = self._flatten(spec.rules)
        return found

    def plan_whole(
        self,
        subjects: Mapping[str, ChainSpec],
        sites: Iterable[Prefix | str],
        previous: Mapping[str, str] | None = None,
    ) -> Plan:
        """The whole table, replacing whatever the kernel has. `previous`: the subjects
        the kernel held before (read back from it, or this table's): those gone or moved
        have their flows cut."""
        made: dict[str, Chain] = {}
        chains: dict[str, Chain] = {}
        names: dict[str, str] = {}
        for address, spec in subjects.items():
            chains[spec.name] = self._flat(spec, made)
            names[address] = spec.name
        wanted = _sites(sites)
        before = self.subjects if previous is None else previous
        cut = tuple(a for a, chain in before.items() if names.get(a) != chain)
        commands = docs.whole_table(chains, names, self.reject, wanted)
        # The sets start empty: what they held and still holds goes back in, atomically.
        commands += fqdn_fill(self.learned.elements(chains, self.monotonic()))
        return Plan(tuple(commands), cut, True, names, chains=chains, sites=wanted)

    def plan(
        self,
        changes: Mapping[str, ChainSpec | None],
        sites: Iterable[Prefix | str] | None = None,
    ) -> Plan:
        """The batch for `changes` (address -> its chain, None: no class any more) and, if
        given, the site prefixes; empty when the kernel holds all of it already."""
        made: dict[str, Chain] = {}
        put: dict[str, str] = {}
        removed: list[str] = []
        delta: dict[str, int] = {}
        for address, spec in changes.items():
            old = self.subjects.get(address)
            new = None if spec is None else spec.name
            if old == new:
                continue
            if old is not None:
                removed.append(address)
                delta[old] = delta.get(old, 0) - 1
            if spec is not None:
                self._flat(spec, made)
                put[address] = spec.name
                delta[spec.name] = delta.get(spec.name, 0) + 1
        dropped = sorted(
            c for c, d in delta.items() if d < 0 and c in self.flattened and self.uses[c] + d <= 0
        )
        commands: list[Command] = []
        for name, flat in made.items():
            commands += docs.replace_class(name, flat, self.reject)
        commands += docs.set_subjects(put, removed)
        for name in dropped:
            commands += docs.delete_class(name, self.flattened[name])
        wanted = None if sites is None else _sites(sites)
        if wanted is not None and wanted != self.sites:
            commands += docs.set_sites(wanted)
        else:
            wanted = None
        return Plan(
            tuple(commands),
            tuple(removed),
            False,
            put,
            frozenset(removed),
            made,
            frozenset(dropped),
            wanted,
        )

    def commit(self, plan: Plan) -> None:
        """The kernel applied `plan`: take it in."""
        if plan.whole:
            self.subjects = dict(plan.subjects)
            self.flattened = dict(plan.chains)
            self.uses = {}
            for chain in self.subjects.values():
                self.uses[chain] = self.uses.get(chain, 0) + 1
        else:
            for address in plan.removed:
                chain = self.subjects.pop(address)
                self.uses[chain] -= 1
            for address, chain in plan.subjects.items():
                self.subjects[address] = chain
                self.uses[chain] = self.uses.get(chain, 0) + 1
            self.flattened.update(plan.chains)
            for chain in plan.dropped:
                del self.flattened[chain]
                del self.uses[chain]
            self.learned.forget(plan.dropped)
        if plan.whole:
            self.learned.keep(self.flattened)
        if plan.sites is not None:
            self.sites = plan.sites

    def plan_learn(self, answers: Iterable[Answered]) -> LearnPlan:
        """The batch that puts answered addresses into the sets of each requester's chain
        whose FQDN rules match the name (timeouts `fqdn.timeout(ttl)` within this table's
        floor and cap); empty when the sets hold them long enough already."""
        return plan_answers(
            answers,
            self.subjects,
            self.flattened,
            self.learned,
            now=self.monotonic(),
            floor=self.floor,
            cap=self.cap,
        )

    def commit_learn(self, plan: LearnPlan) -> None:
        """The kernel applied `plan`: the sets hold its addresses until their expiries."""
        self.learned.commit(plan.update)
