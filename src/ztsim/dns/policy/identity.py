"""Who is asking: a source address or a device token -> `Requester`, from the identity table.

The gateway holds one `IdentityResolver` over an `IdentitySnapshot`. A full load builds a
fresh table and swaps it in with one attribute assignment; the change feed then patches
it in place, one key at a time (`put_address`, `put_token`: one dict assignment or pop
each, atomic under the GIL), so the hot path never waits and never sees a half-applied
entry. A source with no live session is unknown, unless its org configured a default
policy for a network that contains it (`NetworkDefault`).

A revoked requester (its SIM is not active, or its identity is disabled) stays in the
table with `revoked` set: the engine refuses its queries, even where a network default
would cover its address.

What rules require of a requester (posture checks, SIM conditions) is worked out when its
entry is read, never per query: `tags_of` gives its tags (`posture:<check>:<status>` for
each of the org's checks, `sim:<condition>` for each of the org's DNS SIM conditions that
holds) and the instant one of them would flip by time alone, when the entry is read again.
`TagRequirement` reads a rule's requirement back off those tags.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ztsim.errors import InvalidInput
from ztsim.policy import reasons
from ztsim.policy.checks import CheckStatus, PostureCheck
from ztsim.policy.conditions import Condition, is_sim_path, parse
from ztsim.policy.facts import Subject

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# The few distinct sets of groups, fleets and tags, each held once and shared by every
# requester that has it: a million requesters held three million sets of their own, each
# one more object for every full collection of the cyclic garbage collector to walk
# (0.9 s a collection, the GIL held; a third of that with the sets shared). Emptied when
# full, so sets no requester has any more do not pile up.
_SHARED: dict[frozenset[str], frozenset[str]] = {}
_MAX_SHARED = 65_536


def shared(values: frozenset[str]) -> frozenset[str]:
    """The one set equal to `values` that requesters share."""
    known = _SHARED.get(values)
    if known is not None:
        return known
    if len(_SHARED) >= _MAX_SHARED:
        _SHARED.clear()
    _SHARED[values] = values
    return values


@dataclass(frozen=True, slots=True)
class Requester:
    """The subject a policy is evaluated for. Hashable: compiled rule lists are cached on it."""

    org_id: str
    identity_id: str | None = None
    group_ids: frozenset[str] = frozenset()
    fleet_ids: frozenset[str] = frozenset()
    sim_kind: str | None = None
    device_id: str | None = None
    revoked: str = ""  # why its queries are refused (an Extended DNS Error's text); "": not
    identity_kind: str | None = None  # ztsim.policy.facts.IdentityKind's value
    tags: frozenset[str] = frozenset()  # see `tags_of`
    # Hashed on every query (policy caches are keyed on it): computed once, not per call.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_ids", shared(self.group_ids))
        object.__setattr__(self, "fleet_ids", shared(self.fleet_ids))
        object.__setattr__(self, "tags", shared(self.tags))
        object.__setattr__(self, "_hash", hash(self._values()))

    def _values(self) -> tuple[object, ...]:
        fields = (self.org_id, self.identity_id, self.group_ids, self.fleet_ids)
        return (*fields, self.sim_kind, self.device_id, self.revoked, self.identity_kind, self.tags)

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Requester], tuple[object, ...]]:
        # Rebuilt through __init__, so the hash is that of the process that unpickles.
        return Requester, self._values()

    @property
    def subject(self) -> str:
        """What query events are about: the identity, else the device, else the org."""
        return self.identity_id or self.device_id or self.org_id


def sim_tag(condition: str) -> str:
    """The tag of a requester for whom the SIM condition (as `Rule.sim` keeps it) holds."""
    return f"sim:{condition}"


def tags_of(
    subject: Subject,
    checks: Iterable[PostureCheck],
    conditions: Iterable[Condition],
    now: datetime,
) -> tuple[frozenset[str], datetime | None]:
    """A requester's tags at `now`, and the earliest instant one of them flips with no new
    facts (a report goes stale, a swap ages past a duration, a cooling-off ends); None: none
    does."""
    tags: set[str] = set()
    until: datetime | None = None
    for check in checks:
        result = check.evaluate(subject, now)
        tags.add(reasons.posture(check.name, result.status))
        until = _earliest(until, result.until)
    for condition in conditions:
        outcome = condition.evaluate(subject, now)
        if outcome.holds:
            tags.add(sim_tag(condition.text))
        until = _earliest(until, outcome.until)
    return frozenset(tags), until


_MISSING = tuple(CheckStatus).index(CheckStatus.MISSING)


@dataclass(frozen=True, slots=True)
class TagRequirement:
    """A rule's requirement as a requester's tags show it: a posture check's tags (one per
    `CheckStatus`, in its order) or a SIM condition's one tag, with the condition's codes.
    It judges as `ztsim.policy.reference` does, reason codes included."""

    tags: tuple[str, ...]
    must_pass: bool = True  # False: `!check`
    codes: tuple[str, ...] = ()  # a SIM condition's reason codes

    @classmethod
    def posture(cls, text: str) -> TagRequirement:
        """`check` or `!check`, as `Rule.posture` keeps it."""
        check = text.removeprefix("!")
        return cls(tuple(reasons.posture(check, status) for status in CheckStatus), check == text)

    @classmethod
    def sim(cls, text: str) -> TagRequirement:
        """A SIM condition as `Rule.sim` keeps it (parsed before)."""
        return cls((sim_tag(text),), codes=reasons.condition(parse(text, allowed=is_sim_path)))

    def judge(self, tags: frozenset[str]) -> tuple[bool, tuple[str, ...]]:
        """Whether it holds for a requester with `tags`, and the reason codes it gives."""
        if len(self.tags) == 1:
            return self.tags[0] in tags, self.codes
        found = next((tag for tag in self.tags if tag in tags), None)
        if found is None:  # no state: not a check of the org, which holds neither way
            return False, (self.tags[_MISSING],)
        return (found == self.tags[0]) is self.must_pass, (found,)

    @property
    def worth_saying(self) -> bool:
        """Whether a decision names it when it holds: a passed check goes without saying."""
        return len(self.tags) == 1 or not self.must_pass


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


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


SIM_NOT_ACTIVE = "SIM not active"  # suspended or retired: revoked until it is resumed
IDENTITY_DISABLED = "identity disabled"


def token_digest(token: str) -> bytes:
    """Device tokens are kept and compared as SHA-256: they carry enough entropy for that."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def canonical(address: str) -> str:
    """An address as the tables key it: IPv4-mapped IPv6 as IPv4, IPv6 compressed."""
    if _CANONICAL_IPV4.fullmatch(address):
        return address  # already canonical (most are): a tenth of the cost of parsing it
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidInput(f"not an IP address: {address!r}") from exc
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


@dataclass(slots=True, eq=False)
class IdentitySnapshot:
    """Address and device-token tables, canonicalised when built or patched."""

    by_address: dict[str, Requester] = field(default_factory=dict)
    by_token: dict[bytes, Requester] = field(default_factory=dict)  # SHA-256 of the token
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
        by_address = {canonical(address): who for address, who in addresses}
        by_token = {token_digest(token): who for token, who in tokens}
        by_token.update(token_digests)
        return cls(by_address, by_token, networks_of(defaults))

    def put_address(self, address: str, who: Requester | None) -> None:
        """Set (None: remove) one canonical address's entry: one dict operation."""
        if who is None:
            self.by_address.pop(address, None)
        else:
            self.by_address[address] = who

    def put_token(self, digest: bytes, who: Requester | None) -> None:
        if who is None:
            self.by_token.pop(digest, None)
        else:
            self.by_token[digest] = who

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


def networks_of(defaults: Iterable[NetworkDefault]) -> tuple[tuple[_Network, Requester], ...]:
    """Network defaults as `IdentitySnapshot.networks` holds them: most specific first,
    so a /24 default beats the /16 around it."""
    nets = [(d.network(), Requester(d.org_id)) for d in defaults]
    nets.sort(key=lambda pair: pair[0].prefixlen, reverse=True)
    return tuple(nets)


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
            address = canonical(address)
        return self.snapshot.by_source(address)

    def by_token(self, token: str) -> Requester | None:
        return self.snapshot.by_token.get(token_digest(token))
