"""The gateway table's FQDN sets: which sets a chain has, and the batch that puts what the
DNS gateway answered into them. Pure, no I/O (the role applies the batch).

A chain with FQDN rules (`net.fqdn`) has a set per rule and family. An answer to a SIM
teaches the chain the SIM's address jumps to: for each FQDN rule of that chain whose
domains match the asked name, the answer's addresses go into the rule's sets, each with
a timeout from the answer's TTL within the table's floor and cap (`fqdn.timeout`).
Answers gather first, so an address named by several answers in one batch is put in once,
with the latest expiry; `fqdn.Learned` then says which elements are new and which sets
must be rewritten to make an element live longer.

`GatewayTable.plan_learn` and `commit_learn` (`net.gateway_plan`) use this with the
table's subjects, chains and learned elements.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ztsim.net.fqdn import Answered, Chain, Learned, SetKey, SetUpdate, fqdn_rules, timeout
from ztsim.net.nft_documents import batch
from ztsim.net.nft_fqdn_documents import fqdn_update
from ztsim.net.nft_names import Command, fqdn_set


@dataclass(frozen=True, slots=True)
class FqdnSets:
    """One FQDN rule of a chain as the kernel has it: its index, domains and sets."""

    k: int
    rule: str
    domains: tuple[str, ...]
    sets: Mapping[int, str]  # address family -> the set's name


def fqdn_sets(name: str, chain: Chain | None) -> tuple[FqdnSets, ...]:
    """The FQDN rules of chain `name` (none for a chain without domains)."""
    return tuple(
        FqdnSets(r.k, r.rule, r.domains, {f: fqdn_set(name, r.k, f) for f in (4, 6)})
        for r in fqdn_rules(chain)
    )


@dataclass(frozen=True)
class LearnPlan:
    """A batch that adds learned addresses to FQDN sets (`commands`), and what it does."""

    commands: tuple[Command, ...]
    update: SetUpdate
    answers: int  # answers that named a chain's FQDN rule
    ignored: int  # answers for requesters with no chain, or no rule matching the name

    def __bool__(self) -> bool:
        return bool(self.commands)

    def document(self) -> dict[str, Any]:
        return batch(self.commands)


def plan_answers(
    answers: Iterable[Answered],
    subjects: Mapping[str, str],
    chains: Mapping[str, Chain],
    learned: Learned,
    *,
    now: float,
    floor: int,
    cap: int,
) -> LearnPlan:
    """The batch that puts answered addresses into the sets of each requester's chain
    (`subjects`: address -> chain name, `chains`: the chains that exist) whose FQDN rules
    match the name, timeouts `fqdn.timeout(ttl, floor, cap)`; empty when the sets hold
    them long enough already (`learned`, at `now`)."""
    wanted: dict[SetKey, dict[str, tuple[float, str]]] = {}
    used = ignored = 0
    for answer in answers:
        chain, ks, qname = _fqdn_of(answer, subjects, chains)
        if chain is None or not ks:
            ignored += 1
            continue
        used += 1
        expiry = now + timeout(answer.ttl, floor, cap)
        for text in answer.addresses:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            for k in ks:
                held = wanted.setdefault((chain, k, address.version), {})
                before = held.get(str(address))
                if before is None or before[0] < expiry:
                    held[str(address)] = (expiry, qname)
    update = learned.plan(wanted, now)
    return LearnPlan(tuple(fqdn_update(update)), update, used, ignored)


def _fqdn_of(
    answer: Answered, subjects: Mapping[str, str], chains: Mapping[str, Chain]
) -> tuple[str | None, tuple[int, ...], str]:
    """The requester's chain and the indices of its FQDN rules matching the name."""
    try:
        requester = str(ipaddress.ip_address(answer.requester))
    except ValueError:
        return None, (), ""
    chain = subjects.get(requester)
    if chain is None:
        return None, (), ""
    qname = answer.qname.lower().rstrip(".")
    ks = tuple(r.k for r in fqdn_rules(chains.get(chain)) if r.matches(qname))
    return chain, ks, qname
