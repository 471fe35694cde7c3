"""The live sessions the net role holds, and the indexes its steps and lookups need.

Each address with a session has one `Held`: the session, its class (None: no class, the
session is revoked) and when time alone may change that class. Beside them:

- by SIM, identity and device, the addresses held for each, so a SIM, IDENTITY or
  POSTURE change finds the sessions it concerns without a read;
- by raw address (4 or 16 octets), the Geneve subject a packet from there carries
  (`source`: the tunnel pump's lookup, on its own thread, without a lock);
- a heap of (until, address), the sessions whose class is due for a re-classification.

Only the role's lock holder changes it (`take`); the lookups read plain dicts whose
entries are each replaced by one assignment, so another thread sees the old value or
the new one, never none in between.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from ztsim.feed.change import Change, Topic
from ztsim.net import identity_option
from ztsim.net.store.network_policy import LiveSession, canonical

_HEX_ID = frozenset("0123456789abcdef")
_KINDS = {Topic.SIM: "iccid", Topic.IDENTITY: "identity", Topic.POSTURE: "device"}


@dataclass(frozen=True, slots=True)
class Held:
    session: LiveSession
    class_id: int | None  # None: revoked, no class
    until: datetime | None


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def _wire_id(identity_id: str | None) -> bool:
    """Whether the id fits the identity option (32 hex characters: ztsim's own ids)."""
    return identity_id is not None and len(identity_id) == 32 and _HEX_ID.issuperset(identity_id)


def _keys(s: LiveSession) -> Iterator[tuple[str, str]]:
    for kind, key in (("iccid", s.iccid), ("identity", s.identity_id), ("device", s.device_id)):
        if key is not None:
            yield kind, key


class Holdings:
    """Address -> `Held`, with the indexes above."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}
        self._index: dict[str, dict[str, set[str]]] = {"iccid": {}, "identity": {}, "device": {}}
        self._sources: dict[bytes, identity_option.Subject] = {}
        self._due: list[tuple[datetime, str]] = []

    def get(self, address: str) -> Held | None:
        return self._held.get(address)

    def items(self) -> list[tuple[str, Held]]:
        return list(self._held.items())

    def __len__(self) -> int:
        return len(self._held)

    def source(self, raw: bytes) -> identity_option.Subject | None:
        return self._sources.get(bytes(raw))

    def named(self, change: Change, out: dict[str, set[str]]) -> None:
        """Adds the addresses a change names (held ones, and a SESSION change's own), as
        the session table holds them, by org."""
        held: list[Held] = []
        if change.topic is Topic.SESSION:
            # Keyed by gateway and session, not an address: the SIM's are found below.
            with contextlib.suppress(ValueError):
                canonical(change.key)
                out.setdefault(change.org_id, set()).add(change.key)
            iccid = change.payload.get("iccid")
            if isinstance(iccid, str):
                held += [self._held[a] for a in self._index["iccid"].get(iccid, ())]
        else:
            kind = _KINDS.get(change.topic)
            if kind is not None:
                held += [self._held[a] for a in self._index[kind].get(change.key, ())]
        for h in held:
            out.setdefault(h.session.org_id, set()).add(h.session.stored or h.session.address)

    def take(
        self,
        changed: Mapping[str, Held | None],
        tag_of: Callable[[Held], identity_option.ClassTag | None],
    ) -> None:
        """Every address of `changed` replaced (None: gone); `tag_of` gives the Geneve
        class tag of a held session (None: it sends nothing through a tunnel)."""
        for address, held in changed.items():
            old = self._held.get(address)
            if old is not None:
                self._unindex(address, old.session)
            packed = _packed(address)
            if held is None:
                self._held.pop(address, None)
                self._sources.pop(packed, None)
                continue
            self._held[address] = held
            s = held.session
            for kind, key in _keys(s):
                self._index[kind].setdefault(key, set()).add(address)
            tag = tag_of(held)
            if tag is not None:
                who = s.identity_id if _wire_id(s.identity_id) else None
                self._sources[packed] = identity_option.Subject(tag, who)
            else:
                self._sources.pop(packed, None)
            if held.until is not None:
                heapq.heappush(self._due, (held.until, address))
        if len(self._due) > 2 * len(self._held) + 1024:  # superseded entries: drop them
            self._due = [(h.until, a) for a, h in self._held.items() if h.until is not None]
            heapq.heapify(self._due)

    def _unindex(self, address: str, s: LiveSession) -> None:
        for kind, key in _keys(s):
            found = self._index[kind].get(key)
            if found is not None:
                found.discard(address)
                if not found:
                    del self._index[kind][key]

    # -- time ------------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        return self._due[0][0] if self._due else None

    def pop_due(self, now: datetime) -> list[tuple[datetime, str]]:
        """The entries due by `now` whose session still has that `until` (the others were
        superseded by a later `take`), taken off the heap."""
        popped: list[tuple[datetime, str]] = []
        while self._due and self._due[0][0] <= now:
            until, address = heapq.heappop(self._due)
            held = self._held.get(address)
            if held is not None and held.until == until:
                popped.append((until, address))
        return popped

    def push_due(self, entries: list[tuple[datetime, str]]) -> None:
        """Entries `pop_due` gave back: due again (their re-classification failed)."""
        for entry in entries:
            heapq.heappush(self._due, entry)
