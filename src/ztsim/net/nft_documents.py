"""ztsim's nftables table as nft JSON commands (libnftables-json(5)), built as plain dicts.

Layout of table `inet ztsim`:
- sets `sites_v4` / `sites_v6` (interval): the private networks behind the sites. The
  table judges traffic towards them only; a gateway host routes other traffic too (the
  SIMs' internet traffic, its own), and that is not this table's business.
- chain `forward` (filter hook forward, priority 0, policy accept): established and
  related packets pass; a packet towards a site prefix has its source looked up in
  `subjects_v4` / `subjects_v6` (address -> `jump class_<name>`), and a source with no
  class is denied (fail closed: an address without a session, or a revoked one). A packet
  from a site prefix that is not part of a connection a SIM opened is denied: sites do
  not open connections towards SIMs. Everything else passes.
- per class: maps `class_<name>_v4` (`ipv4_addr . inet_proto . inet_service : verdict`,
  interval) and `class_<name>_v6`, and chain `class_<name>` that looks the packet's
  destination, protocol and destination port up in them and ends with a deny.
- a class with FQDN rules (`net.fqdn.Segmented`) has its chain in segments instead, in
  rule order: each run of CIDR-only rules one map `class_<name>_m<i>_v4` / `_v6` whose
  elements are explicit (a miss goes on to the next rule), each FQDN rule one rule per
  family, `ip daddr @class_<name>_f<k>_v4 [meta l4proto P] [th dport {ports}] accept|drop`,
  over sets `class_<name>_f<k>_v4` / `_v6` (`flags timeout`) that the net role fills from
  the DNS gateway's answers (`fqdn_update`); then the deny.
- a deny is two rules: the first logs the packet to NFLOG group `NFLOG_GROUP` with the
  chain's name as prefix (so the audit reader knows where it was denied), under a
  `limit` so a flood cannot flood the log; the second counts and drops, or, when the
  table is built with `reject=True`, goes to chain `refuse`: a TCP reset, else ICMP
  administratively prohibited (the UE's connect fails at once instead of timing out).
  The deny itself is never rate-limited.

Every list of commands goes to `nft -j -f -` as one batch (`batch`), which the kernel
applies atomically. Replacing a class flushes and refills only that class's chain and
maps; a subject's class is changed by deleting and adding its element in one batch
(nft 1.0.6 has no `destroy`, and `add` refuses a key that maps elsewhere).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.net.fqdn import Chain, FqdnRule, SetKey, SetUpdate
from ztsim.net.ruleset import Flattened

FAMILY = "inet"
TABLE = "ztsim"
FORWARD = "forward"
SUBJECTS = {4: "subjects_v4", 6: "subjects_v6"}
SITES = {4: "sites_v4", 6: "sites_v6"}
# The NFLOG group the denies log to (the contract between the net role and the audit
# reader, which binds it); an unprivileged constant, not a netfilter default.
REFUSE = "refuse"
_ICMPX_REFUSAL = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
NFLOG_GROUP = 5701
# Logged denies per second, and the burst above it: the kernel drops the log line, never
# the verdict, past it (the audit reader counts what it missed by the counters).
LOG_RATE, LOG_BURST = 200, 400
_EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_CLASS = re.compile(r"[A-Za-z0-9_]{1,48}")  # nft names hold 256; kept short for listings
_KEY = {
    4: ["ipv4_addr", "inet_proto", "inet_service"],
    6: ["ipv6_addr", "inet_proto", "inet_service"],
}
_ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_PAYLOAD = {4: "ip", 6: "ip6"}

Command = dict[str, Any]


def _where(**more: Any) -> dict[str, Any]:
    return {"family": FAMILY, "table": TABLE, **more}


def class_chain(name: str) -> str:
    """The chain of class `name` (letters, digits and _: the caller's stable class key)."""
    if not _CLASS.fullmatch(name):
        raise InvalidInput(f"class name {name!r}: 1-48 of A-Z a-z 0-9 _")
    return f"class_{name}"


def class_map(name: str, family: int) -> str:
    return f"{class_chain(name)}_v{family}"


def segment_map(name: str, index: int, family: int) -> str:
    """The map of a segmented class's `index`th run of CIDR-only rules."""
    return f"{class_chain(name)}_m{index}_v{family}"


def fqdn_set(name: str, k: int, family: int) -> str:
    """The set of addresses learned for FQDN rule `k` of class `name`."""
    return f"{class_chain(name)}_f{k}_v{family}"


def batch(*commands: Iterable[Command]) -> dict[str, Any]:
    """One document for `nft -j -f -`: applied as one transaction, all or nothing."""
    return {"nftables": [command for group in commands for command in group]}


def _deny(reject: bool) -> list[dict[str, Any]]:
    if reject:
        return [{"counter": None}, {"goto": {"target": REFUSE}}]
    return [{"counter": None}, {"drop": None}]


def _refusal() -> list[Command]:
    """Chain `refuse`, where every rejecting deny goes: TCP gets a reset; anything else
    ICMP administratively prohibited. The kernel rate-limits ICMP errors per destination
    (net.ipv4.icmp_ratelimit: a burst of 6, then one a second), so a revoked phone that
    retries TCP quickly would see its connects time out; resets are not limited."""
    tcp = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}
    return [
        {"add": {"chain": _where(name=REFUSE)}},
        {"flush": {"chain": _where(name=REFUSE)}},
        {"add": {"rule": _where(chain=REFUSE, expr=[tcp, {"reject": {"type": "tcp reset"}}])}},
        {"add": {"rule": _where(chain=REFUSE, expr=[_ICMPX_REFUSAL])}},
    ]


def _logged(chain: str) -> list[dict[str, Any]]:
    """The statements of a deny's first rule: rate-limited NFLOG, no verdict."""
    limit = {"rate": LOG_RATE, "per": "second", "burst": LOG_BURST}
    return [{"limit": limit}, {"log": {"prefix": chain, "group": NFLOG_GROUP}}]


def _denied(chain: str, reject: bool, match: list[dict[str, Any]] | None = None) -> list[Command]:
    """A deny in `chain` (for packets that `match`, or all): logged, then counted and
    dropped or rejected."""
    head = list(match or [])
    return [
        {"add": {"rule": _where(chain=chain, expr=[*head, *_logged(chain)])}},
        {"add": {"rule": _where(chain=chain, expr=[*head, *_deny(reject)])}},
    ]


def _in_set(field: str, family: int, name: str) -> dict[str, Any]:
    left = {"payload": {"protocol": _PAYLOAD[family], "field": field}}
    return {"match": {"op": "==", "left": left, "right": f"@{name}"}}


def _lookup(field: str, family: int, data: str) -> dict[str, Any]:
    return {
        "vmap": {"key": {"payload": {"protocol": _PAYLOAD[family], "field": field}}, "data": data}
    }


def _vmap_rule(chain: str, family: int, data: str) -> Command:
    key = {
        "concat": [
            {"payload": {"protocol": _PAYLOAD[family], "field": "daddr"}},
            {"meta": {"key": "l4proto"}},
            {"payload": {"protocol": "th", "field": "dport"}},
        ]
    }
    vmap = {"vmap": {"key": key, "data": f"@{data}"}}
    return {"add": {"rule": _where(chain=chain, expr=[vmap])}}


def _fqdn_rule(chain: str, family: int, data: str, rule: FqdnRule) -> Command:
    expr: list[dict[str, Any]] = [_in_set("daddr", family, data)]
    number = rule.protocol_number(family)
    if number is not None:
        l4 = {"meta": {"key": "l4proto"}}
        expr.append({"match": {"op": "==", "left": l4, "right": number}})
    if rule.ports:
        dport = {"payload": {"protocol": "th", "field": "dport"}}
        ports = [low if low == high else {"range": [low, high]} for low, high in rule.ports]
        expr.append({"match": {"op": "==", "left": dport, "right": {"set": ports}}})
    expr.append({rule.verdict: None})
    return {"add": {"rule": _where(chain=chain, expr=expr)}}


def _fill(data: str, elements: tuple[Any, ...]) -> list[Command]:
    if not elements:
        return []  # nft refuses an `add element` with no elements
    elem = [e.to_json() for e in elements]
    return [{"add": {"element": _where(name=data, elem=elem)}}]


def _objects(name: str, chain: Chain) -> list[tuple[str, str, dict[str, Any]]]:
    """The class's maps and sets in chain order: (kind, name, its spec beyond the name)."""
    if isinstance(chain, Flattened):
        return [
            ("map", class_map(name, f), {"type": _KEY[f], "map": "verdict", "flags": ["interval"]})
            for f in (4, 6)
        ]
    out: list[tuple[str, str, dict[str, Any]]] = []
    for index, segment in enumerate(chain.segments):
        for f in (4, 6):
            if isinstance(segment, FqdnRule):
                spec = {"type": _ADDR_TYPE[f], "flags": ["timeout"]}
                out.append(("set", fqdn_set(name, segment.k, f), spec))
            elif segment.v4 if f == 4 else segment.v6:  # an empty family needs no lookup
                spec = {"type": _KEY[f], "map": "verdict", "flags": ["interval"]}
                out.append(("map", segment_map(name, index, f), spec))
    return out


def _class_rules(name: str, chain: Chain, reject: bool) -> list[Command]:
    where = class_chain(name)
    out: list[Command] = []
    if isinstance(chain, Flattened):
        out.extend(_vmap_rule(where, f, class_map(name, f)) for f in (4, 6))
    else:
        for index, segment in enumerate(chain.segments):
            for f in (4, 6):
                if isinstance(segment, FqdnRule):
                    out.append(_fqdn_rule(where, f, fqdn_set(name, segment.k, f), segment))
                elif segment.v4 if f == 4 else segment.v6:
                    out.append(_vmap_rule(where, f, segment_map(name, index, f)))
    out.extend(_denied(where, reject))
    return out


def _class_elements(name: str, chain: Chain) -> list[Command]:
    if isinstance(chain, Flattened):
        return [*_fill(class_map(name, 4), chain.v4), *_fill(class_map(name, 6), chain.v6)]
    out: list[Command] = []
    for index, segment in enumerate(chain.segments):
        if isinstance(segment, Flattened):
            out += _fill(segment_map(name, index, 4), segment.v4)
            out += _fill(segment_map(name, index, 6), segment.v6)
    return out


def replace_class(name: str, chain: Chain, reject: bool = False) -> list[Command]:
    """Create class `name`, or replace its rules and elements (other classes untouched).
    A segmented class's FQDN sets are emptied too: the chain is new (named by content)."""
    where = class_chain(name)
    out: list[Command] = _refusal() if reject else []
    for kind, data, spec in _objects(name, chain):
        out.append({"add": {kind: _where(name=data, **spec)}})
        out.append({"flush": {kind: _where(name=data)}})
    out.append({"add": {"chain": _where(name=where)}})
    out.append({"flush": {"chain": _where(name=where)}})
    out.extend(_class_rules(name, chain, reject))
    out.extend(_class_elements(name, chain))
    return out


def delete_class(name: str, chain: Chain | None = None) -> list[Command]:
    """Remove class `name` (laid out as `chain`; None: a plain `Flattened` one); no subject
    may still jump to it (remove those in the same batch, before these commands)."""
    where = class_chain(name)
    out: list[Command] = [
        {"flush": {"chain": _where(name=where)}},
        {"delete": {"chain": _where(name=where)}},
    ]
    layout = _objects(name, Flattened((), ()) if chain is None else chain)
    out.extend({"delete": {kind: _where(name=data)}} for kind, data, _ in layout)
    return out


def _timed(elements: Mapping[str, int]) -> list[Any]:
    return [{"elem": {"val": address, "timeout": seconds}} for address, seconds in elements.items()]


def fqdn_update(update: SetUpdate) -> list[Command]:
    """Learned addresses into the FQDN sets: sets to rewrite are flushed and refilled (that
    is how an element's timeout grows on every kernel: `net.fqdn`), then the plain adds."""
    out: list[Command] = []
    for (name, k, family), elements in update.rewrite.items():
        data = fqdn_set(name, k, family)
        out.append({"flush": {"set": _where(name=data)}})
        if elements:
            out.append({"add": {"element": _where(name=data, elem=_timed(elements))}})
    for (name, k, family), elements in update.add.items():
        if elements:
            spec = _where(name=fqdn_set(name, k, family), elem=_timed(elements))
            out.append({"add": {"element": spec}})
    return out


def fqdn_fill(elements: Mapping[SetKey, Mapping[str, int]]) -> list[Command]:
    """Addresses into sets known to be empty (a table made anew): adds only."""
    return fqdn_update(SetUpdate(add=elements))


def _family(address: str) -> tuple[int, str]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidInput(f"{address!r} is not an IPv4 or IPv6 address") from None
    return ip.version, str(ip)


def set_subjects(add: Mapping[str, str] | None = None, remove: Iterable[str] = ()) -> list[Command]:
    """Remove subject addresses (each must be present), then add address -> class name.
    To move an address to another class, name it in both."""
    gone: dict[int, list[Any]] = {4: [], 6: []}
    for address in remove:
        family, text = _family(address)
        gone[family].append(text)
    new: dict[int, list[Any]] = {4: [], 6: []}
    for address, name in (add or {}).items():
        family, text = _family(address)
        new[family].append([text, {"jump": {"target": class_chain(name)}}])
    out: list[Command] = []
    for verb, elements in (("delete", gone), ("add", new)):
        for family in (4, 6):
            if elements[family]:
                spec = _where(name=SUBJECTS[family], elem=elements[family])
                out.append({verb: {"element": spec}})
    return out


def _prefixes(prefixes: Iterable[Any], family: int) -> list[Any]:
    """The prefixes of one family, merged where they touch or overlap (an interval set
    refuses overlapping elements), as nft's JSON writes them."""
    nets = []
    for prefix in prefixes:
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise InvalidInput(f"{prefix!r} is not a network") from None
        if net.version == family:
            nets.append(net)
    merged = ipaddress.collapse_addresses(nets)  # type: ignore[type-var]
    return [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}} for n in merged]


def set_sites(prefixes: Iterable[Any]) -> list[Command]:
    """Replace the site prefixes (`sites_v4`, `sites_v6`) with `prefixes` (networks or
    their text): the destinations the table judges."""
    prefixes = list(prefixes)
    out: list[Command] = []
    for family in (4, 6):
        out.append({"flush": {"set": _where(name=SITES[family])}})
        elem = _prefixes(prefixes, family)
        if elem:  # nft refuses an `add element` with no elements
            out.append({"add": {"element": _where(name=SITES[family], elem=elem)}})
    return out


def _base(reject: bool) -> list[Command]:
    out: list[Command] = []
    for family in (4, 6):
        spec = _where(name=SUBJECTS[family], type=_ADDR_TYPE[family], map="verdict")
        out.append({"add": {"map": spec}})
        spec = _where(name=SITES[family], type=_ADDR_TYPE[family], flags=["interval"])
        out.append({"add": {"set": spec}})
    hook = _where(name=FORWARD, type="filter", hook="forward", prio=0, policy="accept")
    out.append({"add": {"chain": hook}})
    state: dict[str, Any] = {
        "match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}
    }
    rules: list[list[dict[str, Any]]] = [[state, {"accept": None}]]
    rules += [
        [_in_set("daddr", f, SITES[f]), _lookup("saddr", f, f"@{SUBJECTS[f]}")] for f in (4, 6)
    ]
    out.extend({"add": {"rule": _where(chain=FORWARD, expr=expr)}} for expr in rules)
    # Towards a site, from no class; then from a site, not in a SIM's connection.
    for field in ("daddr", "saddr"):
        for family in (4, 6):
            out.extend(_denied(FORWARD, reject, [_in_set(field, family, SITES[family])]))
    return out


def whole_table(
    classes: Mapping[str, Chain],
    subjects: Mapping[str, str],
    reject: bool = False,
    sites: Iterable[Any] | None = None,
) -> list[Command]:
    """The whole table from scratch, replacing whatever is there in the same transaction
    (`add` first, so the `delete` finds a table even on a fresh host). `sites`: the site
    prefixes; None judges every destination (a host that forwards nothing else)."""
    unknown = sorted(set(subjects.values()) - set(classes))
    if unknown:
        raise InvalidInput(f"subjects name classes that are not in the table: {unknown[:5]}")
    table = {"family": FAMILY, "name": TABLE}
    out: list[Command] = [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
    ]
    if reject:
        out.extend(_refusal())
    for name, flattened in classes.items():
        out.extend(replace_class(name, flattened, reject))
    out.extend(_base(reject))
    out.extend(set_sites(_EVERYWHERE if sites is None else sites))
    out.extend(set_subjects(subjects))
    return out
