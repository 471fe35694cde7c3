"""Who is asking: a source address or a device token -> `Requester`, from an immutable snapshot.

The gateway holds one `IdentityResolver`; a background task builds a fresh
`IdentitySnapshot` (from the session table, see `identity_db`) and swaps it in
with one attribute assignment, so the hot path never waits and never sees a
half-built table. A source with no live session is unknown, unless its org
configured a default policy for a network that contains it (`NetworkDefault`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ztsim.errors import InvalidInput

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Requester:
    """The subject a policy is evaluated for. Hashable: compiled rule lists are cached on it."""

    org_id: str
    identity_id: str | None = None
    group_ids: frozenset[str] = frozenset()
    fleet_ids: frozenset[str] = frozenset()
    sim_kind: str | None = None
    device_id: str | None = None
    # Hashed on every query (policy caches are keyed on it): computed once, not per call.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self._values()))

    def _values(self) -> tuple[object, ...]:
        fields = (self.org_id, self.identity_id, self.group_ids, self.fleet_ids)
        return (*fields, self.sim_kind, self.device_id)

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Requester], tuple[object, ...]]:
        # Rebuilt through __init__, so the hash is that of the process that unpickles.
        return Requester, self._values()

    @property
    def subject(self) -> str:
        """What query events are about: the identity, else the device, else the org."""
        return self.identity_id or self.device_id or self.org_id


@dataclass(frozen=True, slots=True)
class NetworkDefault:
    """An org's default policy for sources in `cidr` that have no session."""

    org_id: str
    cidr: str

    def network(self) -> _Network:
        try:
            return ipaddress.ip_network(self.cidr, strict=False)
        except ValueError as exc:
            raise InvalidInput(f"not a network: {self.cidr!r}") from exc


def token_digest(token: str) -> bytes:
    """Device tokens are kept and compared as SHA-256: they carry enough entropy for that."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _canonical(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidInput(f"not an IP address: {address!r}") from exc
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


@dataclass(frozen=True, slots=True)
class IdentitySnapshot:
    """Address and device-token tables, checked and canonicalised once at build time."""

    by_address: Mapping[str, Requester] = field(default_factory=dict)
    by_token: Mapping[bytes, Requester] = field(default_factory=dict)  # SHA-256 of the token
    networks: tuple[tuple[_Network, Requester], ...] = ()

    @classmethod
    def build(
        cls,
        addresses: Iterable[tuple[str, Requester]] = (),
        tokens: Iterable[tuple[str, Requester]] = (),
        defaults: Iterable[NetworkDefault] = (),
        token_digests: Iterable[tuple[bytes, Requester]] = (),
    ) -> IdentitySnapshot:
        """`tokens` are plain device tokens; `token_digests` their SHA-256 (as stored)."""
        by_address = {_canonical(address): who for address, who in addresses}
        by_token = {token_digest(token): who for token, who in tokens}
        by_token.update(token_digests)
        nets = [(d.network(), Requester(d.org_id)) for d in defaults]
        # Most specific network first, so a /24 default beats the /16 around it.
        nets.sort(key=lambda pair: pair[0].prefixlen, reverse=True)
        return cls(by_address, by_token, tuple(nets))

    def by_source(self, address: str) -> Requester | None:
        who = self.by_address.get(address)
        if who is not None or not self.networks:
            return who
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        for network, default in self.networks:
            if parsed.version == network.version and parsed in network:
                return default
        return None

    def __len__(self) -> int:
        return len(self.by_address)


class IdentityResolver:
    """The gateway's current snapshot; `swap` replaces it atomically (one reference store)."""

    __slots__ = ("snapshot",)

    def __init__(self, snapshot: IdentitySnapshot | None = None) -> None:
        self.snapshot = snapshot if snapshot is not None else IdentitySnapshot()

    def swap(self, snapshot: IdentitySnapshot) -> None:
        self.snapshot = snapshot

    def by_source(self, address: str) -> Requester | None:
        """The requester behind a packet's source address (IPv4-mapped IPv6 is unwrapped)."""
        if address.startswith("::ffff:"):
            address = _canonical(address)
        return self.snapshot.by_source(address)

    def by_token(self, token: str) -> Requester | None:
        return self.snapshot.by_token.get(token_digest(token))
