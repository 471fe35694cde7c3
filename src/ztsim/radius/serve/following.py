"""The AAA role follows the change feed (`ztsim.feed`): what it reads, off the hot
path, and how it installs it in the core.

- `Following.load`: everything, at start and on a resync: the snapshot, the address
  leases, the live sessions and the outbox position they reflect, in one consistent
  read (so the follower that starts at that position misses no change and the snapshot
  holds every change below it); then a first block for each pool this process has no
  free address in, in a write transaction of its own.
- `Following.apply`, the follower's `apply`: the rows a batch of changes names. SIM (by
  ICCID) and IDENTITY (by id) changes re-read those SIMs, identities and devices of
  their org; a NETWORK change re-reads the gateways, pools and attach settings of every
  org (a few rows per org: cheaper than telling them apart, and it never touches the
  SIMs). The attach policies follow too (`ztsim.radius.store.attach_policy`): a POLICY
  change (by org) recompiles that org's attach rules and, if they decide differently
  now, re-classifies all its SIMs; a POSTURE change (by device) re-classifies the SIMs
  bound to the device, SIM and IDENTITY changes the SIMs they name; all of it only for
  orgs with attach rules. SESSION, DNS and DEVICE_TOKEN changes change nothing the AAA
  decisions read.
  What was read is installed under the service's lock, in place (no copy of the SIM
  table), so the next Access-Request is decided on it; the live sessions it touches are
  re-decided and those no longer accepted handed to `revoke`.
- `Following.resync`, the follower's `resync`: everything again, every live session
  re-decided.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network

from sqlalchemy import Engine

from ztsim.clock import Clock, utc_now
from ztsim.db.engine import for_writing
from ztsim.feed import outbox
from ztsim.feed.change import Change, Topic
from ztsim.feed.follower import consistent_read
from ztsim.heap import refreeze
from ztsim.policy.compile import CompiledPolicy
from ztsim.radius.aaa.attach import classify_all
from ztsim.radius.aaa.core import AaaCore, Revocation
from ztsim.radius.aaa.engine import Snapshot, SnapshotPatch
from ztsim.radius.store.attach_policy import AttachRead, read_attach
from ztsim.radius.store.snapshot import Network, load_network, load_snapshot, read_patch
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.leases import claim_next_block, load_leases
from ztsim.sessions.table import Session


@dataclass(frozen=True)
class Loaded:
    snapshot: Snapshot
    live: list[Session]
    position: int  # the outbox's head when the rest was read


def load_all(engine: Engine, sealer: Sealer, ipam: Ipam, now: datetime) -> Loaded:
    with consistent_read(engine) as conn:
        snapshot = load_snapshot(conn, sealer, now)
        # Learnt outside the core's lock, so that a resync does not hold up the answers
        # for a whole table of leases. Safe: a lease read here is this process's own
        # (already known) or in another process's block, never among this one's free
        # addresses, so it cannot collide with an allocation meanwhile.
        load_leases(conn, ipam, [p.id for p in snapshot.pools.values()])
        live = sessions_repo.load_live(conn)
        position = outbox.position(conn)
    return Loaded(snapshot, live, position)


# The topics `Wanted.of` reads: the follower skips the others without decoding them
# (SESSION, this role's own accounting written back, is most of the feed).
TOPICS = frozenset({Topic.SIM, Topic.IDENTITY, Topic.NETWORK, Topic.POSTURE, Topic.POLICY})


@dataclass
class Wanted:
    """What a batch of changes asks to re-read."""

    iccids: dict[str, set[str]] = field(default_factory=dict)  # by org id
    identities: dict[str, set[str]] = field(default_factory=dict)  # by org id
    network_orgs: set[str] = field(default_factory=set)
    devices: dict[str, set[str]] = field(default_factory=dict)  # posture, by org id
    policy_orgs: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, changes: Sequence[Change]) -> Wanted:
        wanted = cls()
        for change in changes:
            if change.topic is Topic.SIM:
                wanted.iccids.setdefault(change.org_id, set()).add(change.key)
            elif change.topic is Topic.IDENTITY:
                wanted.identities.setdefault(change.org_id, set()).add(change.key)
            elif change.topic is Topic.NETWORK:
                wanted.network_orgs.add(change.org_id)
            elif change.topic is Topic.POSTURE:
                wanted.devices.setdefault(change.org_id, set()).add(change.key)
            elif change.topic is Topic.POLICY:
                wanted.policy_orgs.add(change.org_id)
        return wanted

    def __bool__(self) -> bool:
        return bool(
            self.iccids or self.identities or self.network_orgs or self.devices or self.policy_orgs
        )

    def attach(self, followed: Collection[str]) -> dict[str, set[str]]:
        """What the attach policies re-read: the keys of orgs with attach rules (`followed`)
        and the orgs whose policy changed; empty when nothing."""

        def keys(by_org: dict[str, set[str]]) -> set[str]:
            return {key for org_id, found in by_org.items() if org_id in followed for key in found}

        wanted = {
            "iccids": keys(self.iccids),
            "identity_ids": keys(self.identities),
            "device_ids": keys(self.devices),
            "policy_orgs": set(self.policy_orgs),
        }
        return wanted if any(wanted.values()) else {}

    @property
    def orgs(self) -> set[str]:
        return set(self.iccids) | set(self.identities)


@dataclass(frozen=True)
class Update:
    patches: list[SnapshotPatch]
    network: Network | None  # None: no NETWORK change in the batch
    new_pools: list[PoolEntry]  # pools the snapshot did not have (their leases learnt)
    attach: AttachRead | None = None  # None: nothing of the attach policies changed


def read_update(
    engine: Engine,
    sealer: Sealer,
    ipam: Ipam,
    wanted: Wanted,
    known_pools: Collection[str],
    *,
    policies: Mapping[str, CompiledPolicy] | None = None,
    now: datetime | None = None,
) -> Update:
    """The rows `wanted` names, from one consistent read. `policies`: the attach policies
    installed, classes re-read as they stand at `now`."""
    current = policies or {}
    attach_wanted = wanted.attach(current)
    with consistent_read(engine) as conn:
        patches = [
            read_patch(
                conn,
                org_id,
                iccids=wanted.iccids.get(org_id, ()),
                identity_ids=wanted.identities.get(org_id, ()),
            )
            for org_id in sorted(wanted.orgs)
        ]
        network = load_network(conn, sealer) if wanted.network_orgs else None
        new_pools = (
            [p for p in network.pools.values() if p.id not in known_pools] if network else []
        )
        # As in `load_all`: learnt outside the lock; none of them is in this process's
        # free addresses, since it has no block of these pools yet.
        load_leases(conn, ipam, [p.id for p in new_pools])
        attach = None
        if attach_wanted:
            at = utc_now() if now is None else now
            attach = read_attach(conn, current, at, **attach_wanted)
    return Update(patches, network, new_pools, attach)


def claim_first_blocks(
    engine: Engine, ipam: Ipam, pools: Iterable[PoolEntry], now: Callable[[], datetime]
) -> tuple[list[tuple[PoolEntry, IPv4Network]], set[str]]:
    """A block for each pool with no free address here; also the pools found exhausted.
    The blocks are for the caller to add under the core's lock."""
    blocks: list[tuple[PoolEntry, IPv4Network]] = []
    exhausted: set[str] = set()
    empty = [p for p in pools if ipam.free_count(p) == 0]
    if not empty:
        return blocks, exhausted
    with engine.begin() as conn:
        for pool in empty:
            block = claim_next_block(conn, pool, ipam.owner, now(), prefix=ipam.block_prefix)
            if block is None:
                exhausted.add(pool.id)
            else:
                blocks.append((pool, block))
    return blocks, exhausted


@dataclass(frozen=True)
class Load:
    """What `Following.load` read, the blocks it claimed (for the caller to add under the
    core's lock) and the pools found exhausted."""

    loaded: Loaded
    blocks: list[tuple[PoolEntry, IPv4Network]]
    exhausted: set[str]


class Following:
    """The follower's `apply` and `resync` for one core (set `core` before the follower
    starts). `engine` is read from; blocks are claimed through `for_writing(engine)`."""

    def __init__(
        self,
        engine: Engine,
        sealer: Sealer,
        ipam: Ipam,
        lock: threading.Lock,
        clock: Clock,
        revoke: Callable[[list[Revocation]], None],
    ) -> None:
        self.engine = engine
        self._write_engine = for_writing(engine)
        self.sealer = sealer
        self.ipam = ipam
        self.lock = lock
        self.clock = clock
        self.revoke = revoke
        self.core: AaaCore | None = None
        # The newest change applied (or reflected by what was loaded): `wait_applied`.
        self._applied = threading.Condition()
        self._applied_seq = 0

    @property
    def applied_seq(self) -> int:
        return self._applied_seq

    def wait_applied(self, seq: int, timeout: float) -> bool:
        with self._applied:
            return self._applied.wait_for(lambda: self._applied_seq >= seq, timeout)

    def mark_applied(self, seq: int) -> None:
        """The core reflects every change up to `seq` (called once it is installed)."""
        with self._applied:
            self._applied_seq = max(self._applied_seq, seq)
            self._applied.notify_all()

    def load(self) -> Load:
        loaded = load_all(self.engine, self.sealer, self.ipam, self.clock())
        blocks, exhausted = claim_first_blocks(
            self._write_engine, self.ipam, loaded.snapshot.pools.values(), self.clock
        )
        return Load(loaded, blocks, exhausted)

    def apply(self, changes: Sequence[Change]) -> None:
        """Idempotent: it re-reads the rows, whatever the changes say."""
        core = self.core
        assert core is not None
        wanted = Wanted.of(changes)
        if wanted:
            # Noted before the read: bindings committed up to here are in the rows read.
            read_after = core.committed_generation
            known = {p.id for p in core.snapshot.pools.values()}
            # Read without the lock: only this thread changes the policies installed.
            policies = core.snapshot.attach.policies
            now = self.clock()
            update = read_update(
                self.engine, self.sealer, self.ipam, wanted, known, policies=policies, now=now
            )
            blocks, exhausted = claim_first_blocks(
                self._write_engine, self.ipam, update.new_pools, self.clock
            )
            with self.lock:
                imsis: set[str] = set()
                for patch in update.patches:
                    core.patch(patch, read_after=read_after)
                    imsis.update(s.imsi for s in patch.sims)
                if update.attach is not None:
                    imsis.update(self._install_attach(core, update.attach, now, read_after))
                touched = [s for imsi in imsis for s in core.sessions.for_imsi(imsi)]
                network = update.network
                if network is not None:
                    for pool, block in blocks:
                        self.ipam.add_block(pool, block)
                    pool_ids = {p.id for p in network.pools.values()}
                    core.exhausted_pools = (core.exhausted_pools & pool_ids) | exhausted
                    # The SIM tables are shared, not copied: only these are replaced.
                    core.snapshot = dataclasses.replace(
                        core.snapshot,
                        gateways=network.gateways,
                        pools=network.pools,
                        tofu_orgs=network.tofu_orgs,
                    )
                    touched += [s for s in core.sessions if s.org_id in wanted.network_orgs]
                revoked = core.revoked(touched)
            self.revoke(revoked)
        self.mark_applied(changes[-1].seq)

    @staticmethod
    def _install_attach(
        core: AaaCore, read: AttachRead, now: datetime, read_after: int
    ) -> set[str]:
        """Under the lock: the policies and classes read, and the SIMs named classified
        with the policies the hot path shares; the IMSIs whose class was set."""
        classes = dict(read.classes)
        classes.update(classify_all(core.snapshot.attach.policies, read.subjects, now))
        core.patch(
            SnapshotPatch(attach_policies=read.policies, attach_classes=classes),
            read_after=read_after,
        )
        return set(classes)

    def resync(self) -> int:
        """Everything reloaded, every live session re-decided; the position it reflects."""
        core = self.core
        assert core is not None
        read_after = core.committed_generation
        load = self.load()
        with self.lock:
            for pool, block in load.blocks:
                self.ipam.add_block(pool, block)
            # Recomputed whole: pools deleted or re-created since leave the set.
            core.exhausted_pools = load.exhausted
            # The live sessions stay this process's own: it is their only writer.
            core.install(load.loaded.snapshot, read_after=read_after)
            revoked = core.revoked(core.sessions)
        self.revoke(revoked)
        self.mark_applied(load.loaded.position)
        # The new snapshot out of the collector's way, as the start-up one was.
        refreeze()
        return load.loaded.position
