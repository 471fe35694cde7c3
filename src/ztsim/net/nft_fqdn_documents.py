"""A segmented class in table `inet ztsim` as nft JSON commands: its segment maps, its
FQDN sets and rules, and the learned addresses that go into those sets.

A class with FQDN rules (`net.fqdn.Segmented`) cannot be one interval map: its chain is
cut in rule order, each run of CIDR-only rules one map `class_<name>_m<i>_v4` / `_v6`
whose elements are explicit (a miss goes on to the next rule), each FQDN rule one rule per
family, `ip daddr @class_<name>_f<k>_v4 [meta l4proto P] [th dport {ports}] accept|drop`,
over sets `class_<name>_f<k>_v4` / `_v6` (`flags timeout`). `nft_documents` makes and
deletes the class (its chain, its deny) with the pieces laid out here.

The net role fills the sets from the DNS gateway's answers (`fqdn_update`): a set whose
elements must live longer than the kernel's copies is flushed and refilled in the same
batch, which is how an element's timeout grows on every kernel (`net.fqdn`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ztsim.net.fqdn import FqdnRule, Segmented, SetKey, SetUpdate
from ztsim.net.nft_names import (
    ADDR_TYPE,
    MAP_KEY,
    Command,
    class_chain,
    fill,
    fqdn_set,
    in_set,
    segment_map,
    vmap_rule,
    where,
)
from ztsim.net.ruleset import Flattened

# A class's map or set as its `add` command names it: (kind, name, its spec beyond the name).
Layout = list[tuple[str, str, dict[str, Any]]]


def segmented_objects(name: str, chain: Segmented) -> Layout:
    """The class's maps and sets in chain order."""
    out: Layout = []
    for index, segment in enumerate(chain.segments):
        for f in (4, 6):
            if isinstance(segment, FqdnRule):
                spec = {"type": ADDR_TYPE[f], "flags": ["timeout"]}
                out.append(("set", fqdn_set(name, segment.k, f), spec))
            elif segment.v4 if f == 4 else segment.v6:  # an empty family needs no lookup
                spec = {"type": MAP_KEY[f], "map": "verdict", "flags": ["interval"]}
                out.append(("map", segment_map(name, index, f), spec))
    return out


def _fqdn_rule(chain: str, family: int, data: str, rule: FqdnRule) -> Command:
    expr: list[dict[str, Any]] = [in_set("daddr", family, data)]
    number = rule.protocol_number(family)
    if number is not None:
        l4 = {"meta": {"key": "l4proto"}}
        expr.append({"match": {"op": "==", "left": l4, "right": number}})
    if rule.ports:
        dport = {"payload": {"protocol": "th", "field": "dport"}}
        ports = [low if low == high else {"range": [low, high]} for low, high in rule.ports]
        expr.append({"match": {"op": "==", "left": dport, "right": {"set": ports}}})
    expr.append({rule.verdict: None})
    return {"add": {"rule": where(chain=chain, expr=expr)}}


def segmented_rules(name: str, chain: Segmented) -> list[Command]:
    """The class chain's rules before its deny: a lookup per segment and family."""
    into = class_chain(name)
    out: list[Command] = []
    for index, segment in enumerate(chain.segments):
        for f in (4, 6):
            if isinstance(segment, FqdnRule):
                out.append(_fqdn_rule(into, f, fqdn_set(name, segment.k, f), segment))
            elif segment.v4 if f == 4 else segment.v6:
                out.append(vmap_rule(into, f, segment_map(name, index, f)))
    return out


def segmented_elements(name: str, chain: Segmented) -> list[Command]:
    """The segment maps' elements (the FQDN sets start empty)."""
    out: list[Command] = []
    for index, segment in enumerate(chain.segments):
        if isinstance(segment, Flattened):
            out += fill(segment_map(name, index, 4), segment.v4)
            out += fill(segment_map(name, index, 6), segment.v6)
    return out


def _timed(elements: Mapping[str, int]) -> list[Any]:
    return [{"elem": {"val": address, "timeout": seconds}} for address, seconds in elements.items()]


def fqdn_update(update: SetUpdate) -> list[Command]:
    """Learned addresses into the FQDN sets: sets to rewrite are flushed and refilled (that
    is how an element's timeout grows on every kernel: `net.fqdn`), then the plain adds."""
    out: list[Command] = []
    for (name, k, family), elements in update.rewrite.items():
        data = fqdn_set(name, k, family)
        out.append({"flush": {"set": where(name=data)}})
        if elements:
            out.append({"add": {"element": where(name=data, elem=_timed(elements))}})
    for (name, k, family), elements in update.add.items():
        if elements:
            spec = where(name=fqdn_set(name, k, family), elem=_timed(elements))
            out.append({"add": {"element": spec}})
    return out


def fqdn_fill(elements: Mapping[SetKey, Mapping[str, int]]) -> list[Command]:
    """Addresses into sets known to be empty (a table made anew): adds only."""
    return fqdn_update(SetUpdate(add=elements))
