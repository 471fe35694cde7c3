"""The names of table `inet ztsim`'s objects, and the few JSON shapes that refer to them.

Both kinds of document build on this (libnftables-json(5)): the table's own
(`nft_documents`: the forward chain, the subjects and sites, the classes) and a
segmented class's (`nft_fqdn_documents`: its segment maps and FQDN sets). Keeping the
names in one place keeps the two agreeing on what a class's chain, maps and sets are
called, and lets the readers of the kernel's table (`net.nft`, the role) find them.

A class's objects all start with its chain's name, `class_<name>`: `_v4` / `_v6` for a
plain class's maps, `_m<i>_v4` / `_v6` for a segmented class's maps, `_f<k>_v4` / `_v6`
for its FQDN sets.
"""

from __future__ import annotations

import re
from typing import Any

from ztsim.errors import InvalidInput

FAMILY = "inet"
TABLE = "ztsim"
FORWARD = "forward"
SUBJECTS = {4: "subjects_v4", 6: "subjects_v6"}
SITES = {4: "sites_v4", 6: "sites_v6"}
_CLASS = re.compile(r"[A-Za-z0-9_]{1,48}")  # nft names hold 256; kept short for listings
# A class map's key and an address set's type, per address family.
MAP_KEY = {
    4: ["ipv4_addr", "inet_proto", "inet_service"],
    6: ["ipv6_addr", "inet_proto", "inet_service"],
}
ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_PAYLOAD = {4: "ip", 6: "ip6"}

Command = dict[str, Any]


def where(**more: Any) -> dict[str, Any]:
    """An object of the table: its family and table, and `more`."""
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


def payload(field: str, family: int) -> dict[str, Any]:
    """A packet's address `field` (saddr, daddr) of its IP header."""
    return {"payload": {"protocol": _PAYLOAD[family], "field": field}}


def in_set(field: str, family: int, name: str) -> dict[str, Any]:
    """A match: the packet's address `field` is in set `name`."""
    return {"match": {"op": "==", "left": payload(field, family), "right": f"@{name}"}}


def vmap_rule(chain: str, family: int, data: str) -> Command:
    """A rule of `chain` that looks destination, protocol and destination port up in map
    `data` (a class's, or a segment's) and takes the verdict it finds."""
    key = {
        "concat": [
            payload("daddr", family),
            {"meta": {"key": "l4proto"}},
            {"payload": {"protocol": "th", "field": "dport"}},
        ]
    }
    vmap = {"vmap": {"key": key, "data": f"@{data}"}}
    return {"add": {"rule": where(chain=chain, expr=[vmap])}}


def fill(data: str, elements: tuple[Any, ...]) -> list[Command]:
    """`elements` (`ruleset` elements) added to map `data`; nothing for none."""
    if not elements:
        return []  # nft refuses an `add element` with no elements
    elem = [e.to_json() for e in elements]
    return [{"add": {"element": where(name=data, elem=elem)}}]
