"""The gateway's identity table, kept current by the change feed one key at a time.

`load` reads the whole table (at start and on a resync); `apply` takes a batch of changes
(`Topic.SESSION`, `SIM`, `IDENTITY`, `DEVICE_TOKEN`, `POSTURE`), re-reads only the keys
they name and patches the table in place: each address or token is one dict assignment or pop, so
the hot path never sees half an entry, and a 1M-address table is never rebuilt for one
change. Changes name keys, not states (`ztsim.feed.change`): applying one twice, or late,
leaves the entry as the database has it.

To find a change's addresses again the table keeps three indexes: ICCID -> addresses
(with address -> ICCID to keep it true), identity -> addresses and device -> addresses
(a posture report names its device). An index value is one address, or a set when there
are several: most SIMs, identities and devices have one session, so that costs a dict
slot each.

Requesters carry tags (posture check states, SIM conditions that hold) worked out at the
read's `now` (`clock`). They change three ways: new facts (`Topic.POSTURE`: that device's
addresses and tokens are read again), new checks or SIM conditions for an org
(`Topic.POLICY` or `Topic.DNS` whose org's `Signature` changed: all its addresses and
tokens are read again), and time alone (a report goes stale, a swap ages): each entry
says when (`until`), and `read_due` reads the entries due (`deadlines`).

Entries from the policy file (`static`, plain `tokens`) stand under the live sessions and
the stored device tokens: they come back when the session or token over them goes.
Mutations hold one lock (the feed's thread patches, the policy's thread sets networks and
static entries); the hot path reads without it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ztsim.clock import Clock, utc_now
from ztsim.dns.policy.identity import (
    IdentityResolver,
    IdentitySnapshot,
    NetworkDefault,
    Requester,
    canonical,
    networks_of,
    token_digest,
)
from ztsim.dns.serve.deadlines import Deadlines
from ztsim.dns.store.facts_view import Facts, OrgFacts, Signature
from ztsim.dns.store.identity_view import (
    Entry,
    TokenEntry,
    address_of_session,
    addresses_of_sims,
    load_entries,
    read_addresses,
    read_orgs,
    read_tokens,
)
from ztsim.errors import InvalidInput
from ztsim.feed.change import Change, Topic

TOPICS = frozenset(
    {Topic.SESSION, Topic.SIM, Topic.IDENTITY, Topic.DEVICE_TOKEN, Topic.POSTURE}
    | {Topic.POLICY, Topic.DNS}  # an org's checks or SIM conditions: its tags
)
_NO_FACTS: Signature = ((), ())
# One address (the common case) as a plain string; more (an IoT fleet's identity may hold
# 100,000 sessions) as a set, so adding and removing one stays O(1).
_Index = dict[str, str | set[str]]


def _add(index: _Index, key: str, address: str) -> None:
    current = index.get(key)
    if current is None:
        index[key] = address
    elif isinstance(current, str):
        if current != address:
            index[key] = {current, address}
    else:
        current.add(address)


def _discard(index: _Index, key: str, address: str) -> None:
    current = index.get(key)
    if current == address:
        del index[key]
    elif isinstance(current, set) and address in current:
        current.discard(address)
        if len(current) == 1:
            index[key] = next(iter(current))


def _members(index: _Index, key: str) -> tuple[str, ...]:
    current = index.get(key)
    if current is None:
        return ()
    return (current,) if isinstance(current, str) else tuple(current)


@dataclass(frozen=True, slots=True)
class TablePatch:
    """What one batch of the feed changes in the table: each address's entry (None: no
    live session there any more), the device tokens read and the ids of those gone."""

    addresses: tuple[tuple[str, Entry | None], ...] = ()
    tokens: tuple[TokenEntry, ...] = ()
    gone_tokens: tuple[str, ...] = ()
    signatures: tuple[tuple[str, Signature], ...] = ()  # orgs whose tags were read again

    def __len__(self) -> int:
        return len(self.addresses) + len(self.tokens) + len(self.gone_tokens)


@dataclass(frozen=True, slots=True)
class FullTable:
    """Every live session's entry and every live device token (a load, a resync)."""

    entries: tuple[Entry, ...]
    tokens: tuple[TokenEntry, ...]
    signatures: tuple[tuple[str, Signature], ...] = ()


def read_full(conn: Connection, now: datetime) -> FullTable:
    """Every entry and live token, tagged at `now` from facts read once for all."""
    facts = Facts(conn, now)
    entries = load_entries(conn, now, facts)
    tokens = tuple(t for t in read_tokens(conn, now, facts=facts) if t.who is not None)
    orgs = sorted(facts.checks.keys() | facts.conditions.keys())
    return FullTable(tuple(entries.values()), tokens, tuple((o, facts.signature(o)) for o in orgs))


def _address(key: str) -> str | None:
    try:
        return canonical(key)
    except InvalidInput:
        return None


class IdentityTable:
    def __init__(self, resolver: IdentityResolver, clock: Clock = utc_now) -> None:
        """`clock`: the instant reads tag requesters at."""
        self.resolver = resolver
        self.clock = clock
        self._lock = threading.Lock()
        self._static: dict[str, Requester] = {}
        self._static_tokens: dict[bytes, Requester] = {}
        self._defaults: tuple[NetworkDefault, ...] = ()
        self._sim_of: dict[str, str] = {}
        self._by_sim: _Index = {}
        self._by_identity: _Index = {}
        self._by_device: _Index = {}
        self._tokens: dict[str, TokenEntry] = {}  # stored device tokens by id
        self._signatures: dict[str, Signature] = {}  # orgs with checks or SIM conditions
        self._org_facts = OrgFacts()  # their checks and conditions, for batches' tags
        self._deadlines = Deadlines()

    # -- in full -------------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        """Read every live session and device token and swap in a fresh table."""
        self.install_full(read_full(conn, self.clock()))

    def install_full(self, full: FullTable) -> None:
        """Swap in a table read whole (`read_full`)."""
        with self._lock:
            self._sim_of, self._by_sim, self._by_identity, self._by_device = {}, {}, {}, {}
            self._deadlines.clear()
            self._signatures = dict(full.signatures)
            self._org_facts.forget_all()
            by_address = dict(self._static)
            for entry in full.entries:
                by_address[entry.address] = entry.who
                self._index(entry)
            by_token = dict(self._static_tokens)
            by_token.update((t.digest, t.who) for t in full.tokens if t.who is not None)
            self._tokens = {t.token_id: t for t in full.tokens}
            for token in full.tokens:
                self._deadlines.set(("token", token.token_id), token.until)
            self.resolver.swap(IdentitySnapshot(by_address, by_token, networks_of(self._defaults)))

    def set_sources(
        self,
        static: Iterable[tuple[str, Requester]],
        tokens: Iterable[tuple[str, Requester]],
        defaults: Iterable[NetworkDefault],
    ) -> None:
        """What the policy says about requesters: the policy file's static addresses and
        plain tokens, and every org's network defaults. Patches only what changed."""
        new_static = {canonical(address): who for address, who in static}
        new_tokens = {token_digest(token): who for token, who in tokens}
        defaults = tuple(defaults)
        with self._lock:
            table = self.resolver.snapshot
            old_static, self._static = self._static, new_static
            for address in old_static.keys() | new_static.keys():
                current = table.by_address.get(address)
                if current is None or current is old_static.get(address):
                    table.put_address(address, new_static.get(address))
            old_tokens, self._static_tokens = self._static_tokens, new_tokens
            for digest in old_tokens.keys() | new_tokens.keys():
                current = table.by_token.get(digest)
                if current is None or current is old_tokens.get(digest):
                    table.put_token(digest, new_tokens.get(digest))
            if defaults != self._defaults:
                self._defaults = defaults
                table.networks = networks_of(defaults)

    # -- one batch of the feed -----------------------------------------------------------

    def apply(self, conn: Connection, changes: Sequence[Change]) -> TablePatch:
        """Re-read and patch every key the changes name; returns the patch (what a
        parent hands its workers, `relay`). Changes of other topics are passed over."""
        patch = self.read(conn, changes)
        self.install(patch)
        return patch

    def read(self, conn: Connection, changes: Sequence[Change]) -> TablePatch:
        """The entries and tokens the changes name, as the database has them now. Reads
        the indexes, never writes them: on the thread that installs, or before it does."""
        wanted: dict[str, set[str]] = {}
        token_ids: set[str] = set()
        owners: set[str] = set()
        iccids: set[str] = set()
        orgs: set[str] = set()
        devices: set[str] = set()

        def want(org_id: str, addresses: Iterable[str]) -> None:
            wanted.setdefault(org_id, set()).update(addresses)

        for change in changes:
            topic, key, org_id = change.topic, change.key, change.org_id
            if topic is Topic.SESSION:
                address = _address(key)
                if address is not None:
                    want(org_id, (address,))
                else:
                    gateway, _, session = key.partition("/")
                    gateway = str(change.payload.get("gateway_id") or gateway)
                    session = str(change.payload.get("acct_session_id") or session)
                    for found, org in address_of_session(conn, gateway, session).items():
                        want(org, (found,))
                iccid = change.payload.get("iccid")
                if isinstance(iccid, str):  # the session may have moved from another address
                    want(org_id, _members(self._by_sim, iccid))
            elif topic is Topic.SIM:
                want(org_id, _members(self._by_sim, key))
                iccids.add(key)
            elif topic is Topic.IDENTITY:
                want(org_id, _members(self._by_identity, key))
                owners.add(key)
            elif topic is Topic.DEVICE_TOKEN:
                token_ids.add(key)
            elif topic is Topic.POSTURE:
                want(org_id, _members(self._by_device, key))
                devices.add(key)
            elif topic in (Topic.POLICY, Topic.DNS):
                orgs.add(org_id)
        if iccids:  # one query for the batch's SIMs, not one each
            for found, org in addresses_of_sims(conn, iccids).items():
                want(org, (found,))
        if owners or devices:
            # Tokens this identity owned that it may own no longer (or that went), and the
            # tokens of devices with new posture.
            token_ids.update(
                t.token_id
                for t in self._tokens.values()
                if t.who is not None and (t.who.identity_id in owners or t.who.device_id in devices)
            )
        now = self.clock()
        current = self._org_facts.refresh(conn, orgs) if orgs else {}
        changed = {o for o, s in current.items() if s != self._signatures.get(o, _NO_FACTS)}
        return self._read(conn, now, wanted, token_ids, owners, {o: current[o] for o in changed})

    def read_due(self, conn: Connection) -> TablePatch:
        """The entries whose tags time alone has changed since they were read."""
        now = self.clock()
        with self._lock:
            due = self._deadlines.due(now)
        table = self.resolver.snapshot
        wanted: dict[str, set[str]] = {}
        for kind, key in due:
            who = table.by_address.get(key) if kind == "address" else None
            if who is not None:
                wanted.setdefault(who.org_id, set()).add(key)
        tokens = {key for kind, key in due if kind == "token"}
        return self._read(conn, now, wanted, tokens, set(), {})

    def next_due(self) -> datetime | None:
        """When the earliest entry is due to be read again (None: none is)."""
        with self._lock:
            return self._deadlines.next()

    def _read(
        self,
        conn: Connection,
        now: datetime,
        wanted: dict[str, set[str]],
        token_ids: set[str],
        owners: set[str],
        orgs: dict[str, Signature],
    ) -> TablePatch:
        entries = read_addresses(conn, wanted, now, self._org_facts) if wanted else {}
        if orgs:  # their checks or SIM conditions changed: every tag of theirs may have
            found = read_orgs(conn, orgs, now, self._org_facts)
            entries.update(found)
            for address, entry in found.items():
                wanted.setdefault(entry.who.org_id, set()).add(address)
        tokens: list[TokenEntry] = []
        if token_ids or owners or orgs:
            tokens = read_tokens(
                conn, now, ids=token_ids, owners=owners, orgs=orgs, known=self._org_facts
            )
        read = {t.token_id for t in tokens}
        return TablePatch(
            addresses=tuple(
                (address, entries.get(address))
                for addresses in wanted.values()
                for address in sorted(addresses)
            ),
            tokens=tuple(tokens),
            gone_tokens=tuple(sorted(token_ids - read)),
            signatures=tuple(sorted(orgs.items())),
        )

    def install(self, patch: TablePatch) -> None:
        """Patch the table in place with what `read` found."""
        with self._lock:
            self._signatures.update(patch.signatures)
            for address, entry in patch.addresses:
                self._put(address, entry)
            for token_id in patch.gone_tokens:  # the row is gone
                gone = self._tokens.get(token_id)
                if gone is not None:
                    self._put_token(TokenEntry(token_id, gone.digest, None))
                else:
                    self._deadlines.set(("token", token_id), None)
            for token in patch.tokens:
                self._put_token(token)

    def _index(self, entry: Entry) -> None:
        if entry.iccid is not None:
            self._sim_of[entry.address] = entry.iccid
            _add(self._by_sim, entry.iccid, entry.address)
        if entry.who.identity_id is not None:
            _add(self._by_identity, entry.who.identity_id, entry.address)
        if entry.who.device_id is not None:
            _add(self._by_device, entry.who.device_id, entry.address)
        self._deadlines.set(("address", entry.address), entry.until)

    def _put(self, address: str, entry: Entry | None) -> None:
        table = self.resolver.snapshot
        static = self._static.get(address)
        old = table.by_address.get(address)
        old_iccid = self._sim_of.pop(address, None)
        if old_iccid is not None:
            _discard(self._by_sim, old_iccid, address)
        if old is not None and old is not static:
            if old.identity_id is not None:
                _discard(self._by_identity, old.identity_id, address)
            if old.device_id is not None:
                _discard(self._by_device, old.device_id, address)
        if entry is None:
            self._deadlines.set(("address", address), None)
            table.put_address(address, static)
            return
        table.put_address(address, entry.who)
        self._index(entry)

    def _put_token(self, token: TokenEntry) -> None:
        table = self.resolver.snapshot
        self._deadlines.set(("token", token.token_id), token.until)
        if token.who is None:
            self._tokens.pop(token.token_id, None)
            table.put_token(token.digest, self._static_tokens.get(token.digest))
        else:
            self._tokens[token.token_id] = token
            table.put_token(token.digest, token.who)

    def clear(self) -> None:
        """Drop the table and its indexes (a process that stopped serving)."""
        with self._lock:
            self._sim_of, self._by_sim, self._by_identity, self._tokens = {}, {}, {}, {}
            self._by_device, self._signatures = {}, {}
            self._org_facts.forget_all()
            self._deadlines.clear()
            self.resolver.swap(IdentitySnapshot())

    # -- for checks ----------------------------------------------------------------------

    def digest(self) -> str:
        """A digest of the table's sessions and tokens: equal for equal tables (compare a
        gateway with a fresh load of the database)."""
        table = self.resolver.snapshot
        out = hashlib.sha256()
        for address, who in sorted(table.by_address.items()):
            out.update(repr((address, _values(who))).encode())
        for digest, who in sorted(table.by_token.items()):
            out.update(digest + repr(_values(who)).encode())
        return out.hexdigest()

    def index_sizes(self) -> tuple[int, int, int]:
        return len(self._sim_of), len(self._by_sim), len(self._by_identity)

    def due_count(self) -> int:
        """Entries and tokens with a time their tags flip (for checks)."""
        return len(self._deadlines)


def _values(who: Requester) -> tuple[object, ...]:
    groups, fleets, tags = sorted(who.group_ids), sorted(who.fleet_ids), sorted(who.tags)
    fields = (who.org_id, who.identity_id, groups, fleets, who.sim_kind, who.device_id)
    return (*fields, who.revoked, who.identity_kind, tags)
