"""ztsim's nftables table as nft JSON commands (libnftables-json(5)), built as plain dicts.

Layout of table `inet ztsim` (its objects' names: `nft_names`):
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
  rule order, over segment maps and FQDN sets that the net role fills from the DNS
  gateway's answers: laid out by `nft_fqdn_documents`; then the deny.
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
from collections.abc import Iterable, Mapping
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.net.fqdn import Chain
from ztsim.net.nft_fqdn_documents import (
    Layout,
    segmented_elements,
    segmented_objects,
    segmented_rules,
)
from ztsim.net.nft_names import (
    ADDR_TYPE,
    FAMILY,
    FORWARD,
    MAP_KEY,
    SITES,
    SUBJECTS,
    TABLE,
    Command,
    class_chain,
    class_map,
    fill,
    in_set,
    payload,
    vmap_rule,
    where,
)
from ztsim.net.ruleset import Flattened

REFUSE = "refuse"
_ICMPX_REFUSAL = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
# The NFLOG group the denies log to (the contract between the net role and the audit
# reader, which binds it); an unprivileged constant, not a netfilter default.
NFLOG_GROUP = 5701
# Logged denies per second, and the burst above it: the kernel drops the log line, never
# the verdict, past it (the audit reader counts what it missed by the counters).
LOG_RATE, LOG_BURST = 200, 400
_EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


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
        {"add": {"chain": where(name=REFUSE)}},
        {"flush": {"chain": where(name=REFUSE)}},
        {"add": {"rule": where(chain=REFUSE, expr=[tcp, {"reject": {"type": "tcp reset"}}])}},
        {"add": {"rule": where(chain=REFUSE, expr=[_ICMPX_REFUSAL])}},
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
        {"add": {"rule": where(chain=chain, expr=[*head, *_logged(chain)])}},
        {"add": {"rule": where(chain=chain, expr=[*head, *_deny(reject)])}},
    ]


def _objects(name: str, chain: Chain) -> Layout:
    """The class's maps and sets in chain order: (kind, name, its spec beyond the name)."""
    if isinstance(chain, Flattened):
        return [
            (
                "map",
                class_map(name, f),
                {"type": MAP_KEY[f], "map": "verdict", "flags": ["interval"]},
            )
            for f in (4, 6)
        ]
    return segmented_objects(name, chain)


def _class_rules(name: str, chain: Chain, reject: bool) -> list[Command]:
    into = class_chain(name)
    out: list[Command] = []
    if isinstance(chain, Flattened):
        out.extend(vmap_rule(into, f, class_map(name, f)) for f in (4, 6))
    else:
        out.extend(segmented_rules(name, chain))
    out.extend(_denied(into, reject))
    return out


def _class_elements(name: str, chain: Chain) -> list[Command]:
    if isinstance(chain, Flattened):
        return [*fill(class_map(name, 4), chain.v4), *fill(class_map(name, 6), chain.v6)]
    return segmented_elements(name, chain)


def replace_class(name: str, chain: Chain, reject: bool = False) -> list[Command]:
    """Create class `name`, or replace its rules and elements (other classes untouched).
    A segmented class's FQDN sets are emptied too: the chain is new (named by content)."""
    into = class_chain(name)
    out: list[Command] = _refusal() if reject else []
    for kind, data, spec in _objects(name, chain):
        out.append({"add": {kind: where(name=data, **spec)}})
        out.append({"flush": {kind: where(name=data)}})
    out.append({"add": {"chain": where(name=into)}})
    out.append({"flush": {"chain": where(name=into)}})
    out.extend(_class_rules(name, chain, reject))
    out.extend(_class_elements(name, chain))
    return out


def delete_class(name: str, chain: Chain | None = None) -> list[Command]:
    """Remove class `name` (laid out as `chain`; None: a plain `Flattened` one); no subject
    may still jump to it (remove those in the same batch, before these commands)."""
    into = class_chain(name)
    out: list[Command] = [
        {"flush": {"chain": where(name=into)}},
        {"delete": {"chain": where(name=into)}},
    ]
    layout = _objects(name, Flattened((), ()) if chain is None else chain)
    out.extend({"delete": {kind: where(name=data)}} for kind, data, _ in layout)
    return out


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
                spec = where(name=SUBJECTS[family], elem=elements[family])
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
        out.append({"flush": {"set": where(name=SITES[family])}})
        elem = _prefixes(prefixes, family)
        if elem:  # nft refuses an `add element` with no elements
            out.append({"add": {"element": where(name=SITES[family], elem=elem)}})
    return out


def _lookup(field: str, family: int, data: str) -> dict[str, Any]:
    return {"vmap": {"key": payload(field, family), "data": data}}


def _base(reject: bool) -> list[Command]:
    out: list[Command] = []
    for family in (4, 6):
        spec = where(name=SUBJECTS[family], type=ADDR_TYPE[family], map="verdict")
        out.append({"add": {"map": spec}})
        spec = where(name=SITES[family], type=ADDR_TYPE[family], flags=["interval"])
        out.append({"add": {"set": spec}})
    hook = where(name=FORWARD, type="filter", hook="forward", prio=0, policy="accept")
    out.append({"add": {"chain": hook}})
    state: dict[str, Any] = {
        "match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}
    }
    rules: list[list[dict[str, Any]]] = [[state, {"accept": None}]]
    rules += [
        [in_set("daddr", f, SITES[f]), _lookup("saddr", f, f"@{SUBJECTS[f]}")] for f in (4, 6)
    ]
    out.extend({"add": {"rule": where(chain=FORWARD, expr=expr)}} for expr in rules)
    # Towards a site, from no class; then from a site, not in a SIM's connection.
    for field in ("daddr", "saddr"):
        for family in (4, 6):
            out.extend(_denied(FORWARD, reject, [in_set(field, family, SITES[family])]))
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
