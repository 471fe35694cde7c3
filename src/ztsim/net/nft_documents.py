"""ztsim's nftables table as nft JSON commands (libnftables-json(5)), built as plain dicts.

Layout of table `inet ztsim`:
- chain `forward` (filter hook forward, priority 0, policy accept): established and
  related packets pass; a packet's source is looked up in `subjects_v4` / `subjects_v6`
  (address -> `jump class_<name>`); a source with no class is counted and denied. The
  gateway forwards SIMs' traffic to private networks only, so what no session placed in
  a class (an address without a session, a site opening a connection towards a SIM) is
  refused: fail closed.
- per class: maps `class_<name>_v4` (`ipv4_addr . inet_proto . inet_service : verdict`,
  interval) and `class_<name>_v6`, and chain `class_<name>` that looks the packet's
  destination, protocol and destination port up in them and ends with a counted deny.
- a deny is `drop`, or `reject with icmpx admin-prohibited` when the table is built with
  `reject=True` (the UE's connect fails at once instead of timing out).

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
from ztsim.net.ruleset import Flattened

FAMILY = "inet"
TABLE = "ztsim"
FORWARD = "forward"
SUBJECTS = {4: "subjects_v4", 6: "subjects_v6"}
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


def batch(*commands: Iterable[Command]) -> dict[str, Any]:
    """One document for `nft -j -f -`: applied as one transaction, all or nothing."""
    return {"nftables": [command for group in commands for command in group]}


def _deny(reject: bool) -> list[dict[str, Any]]:
    if reject:
        return [{"counter": None}, {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]
    return [{"counter": None}, {"drop": None}]


def _lookup(field: str, family: int, data: str) -> dict[str, Any]:
    return {
        "vmap": {"key": {"payload": {"protocol": _PAYLOAD[family], "field": field}}, "data": data}
    }


def _class_rules(name: str, reject: bool) -> list[Command]:
    chain = class_chain(name)
    out: list[Command] = []
    for family in (4, 6):
        key = {
            "concat": [
                {"payload": {"protocol": _PAYLOAD[family], "field": "daddr"}},
                {"meta": {"key": "l4proto"}},
                {"payload": {"protocol": "th", "field": "dport"}},
            ]
        }
        vmap = {"vmap": {"key": key, "data": f"@{class_map(name, family)}"}}
        out.append({"add": {"rule": _where(chain=chain, expr=[vmap])}})
    out.append({"add": {"rule": _where(chain=chain, expr=_deny(reject))}})
    return out


def _elements(name: str, family: int, flattened: Flattened) -> list[Command]:
    elements = flattened.v4 if family == 4 else flattened.v6
    if not elements:
        return []  # nft refuses an `add element` with no elements
    elem = [e.to_json() for e in elements]
    return [{"add": {"element": _where(name=class_map(name, family), elem=elem)}}]


def replace_class(name: str, flattened: Flattened, reject: bool = False) -> list[Command]:
    """Create class `name`, or replace its rules and elements (other classes untouched)."""
    chain = class_chain(name)
    out: list[Command] = []
    for family in (4, 6):
        spec = _where(
            name=class_map(name, family), type=_KEY[family], map="verdict", flags=["interval"]
        )
        out.append({"add": {"map": spec}})
        out.append({"flush": {"map": _where(name=class_map(name, family))}})
    out.append({"add": {"chain": _where(name=chain)}})
    out.append({"flush": {"chain": _where(name=chain)}})
    out.extend(_class_rules(name, reject))
    for family in (4, 6):
        out.extend(_elements(name, family, flattened))
    return out


def delete_class(name: str) -> list[Command]:
    """Remove class `name`; no subject may still jump to it (remove those in the same batch,
    before these commands)."""
    chain = class_chain(name)
    out: list[Command] = [
        {"flush": {"chain": _where(name=chain)}},
        {"delete": {"chain": _where(name=chain)}},
    ]
    out.extend({"delete": {"map": _where(name=class_map(name, f))}} for f in (4, 6))
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
                spec = _where(name=SUBJECTS[family], elem=elements[family])
                out.append({verb: {"element": spec}})
    return out


def _base(reject: bool) -> list[Command]:
    out: list[Command] = []
    for family in (4, 6):
        spec = _where(name=SUBJECTS[family], type=_ADDR_TYPE[family], map="verdict")
        out.append({"add": {"map": spec}})
    hook = _where(name=FORWARD, type="filter", hook="forward", prio=0, policy="accept")
    out.append({"add": {"chain": hook}})
    state: dict[str, Any] = {
        "match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}
    }
    rules: list[list[dict[str, Any]]] = [[state, {"accept": None}]]
    rules += [[_lookup("saddr", f, f"@{SUBJECTS[f]}")] for f in (4, 6)]
    rules.append(_deny(reject))
    out.extend({"add": {"rule": _where(chain=FORWARD, expr=expr)}} for expr in rules)
    return out


def whole_table(
    classes: Mapping[str, Flattened], subjects: Mapping[str, str], reject: bool = False
) -> list[Command]:
    """The whole table from scratch, replacing whatever is there in the same transaction
    (`add` first, so the `delete` finds a table even on a fresh host)."""
    unknown = sorted(set(subjects.values()) - set(classes))
    if unknown:
        raise InvalidInput(f"subjects name classes that are not in the table: {unknown[:5]}")
    table = {"family": FAMILY, "name": TABLE}
    out: list[Command] = [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
    ]
    for name, flattened in classes.items():
        out.extend(replace_class(name, flattened, reject))
    out.extend(_base(reject))
    out.extend(set_subjects(subjects))
    return out
