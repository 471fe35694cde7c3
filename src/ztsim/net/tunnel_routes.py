"""Which site's tunnel an address lies behind: longest-prefix match over raw addresses.

The tunnel engine asks with the 4 or 16 octets it sliced out of a packet, so a lookup
makes no address object: one integer, then one dict probe per distinct prefix length,
longest first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ztsim.errors import InvalidInput


class TunnelRoutes:
    """Prefixes (CIDR text) to site names. Two equal prefixes for two sites are refused;
    nested prefixes are fine (the longer one wins)."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        tables: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}
        for cidr, site in entries:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as err:
                raise InvalidInput(f"{cidr!r} is not a network prefix") from err
            shift = net.max_prefixlen - net.prefixlen
            table = tables[net.version].setdefault(net.prefixlen, {})
            key = int(net.network_address) >> shift
            if table.get(key, site) != site:
                raise InvalidInput(f"{net} is routed to two sites")
            table[key] = site
        self._v4 = tuple((32 - n, t) for n, t in sorted(tables[4].items(), reverse=True))
        self._v6 = tuple((128 - n, t) for n, t in sorted(tables[6].items(), reverse=True))

    def lookup(self, raw: bytes | memoryview) -> str | None:
        """The site for a 4- or 16-octet address, None when no prefix holds it."""
        number = int.from_bytes(raw, "big")
        for shift, table in self._v4 if len(raw) == 4 else self._v6:
            site = table.get(number >> shift)
            if site is not None:
                return site
        return None

    def lookup_text(self, address: str) -> str | None:
        return self.lookup(ipaddress.ip_address(address).packed)
