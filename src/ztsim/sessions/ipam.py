"""Address management for the org pools: static and dynamic IPv4 leases, stable per SIM.

Guarantees and how they are kept:
- One address per SIM and pool, one SIM per address: unique constraints on
  `ip_leases` (pool, imsi) and (pool, address). A SIM keeps its lease across
  sessions and restarts, so its address is stable.
- Never the same address to two live sessions, even across several AAA processes:
  a process hands out dynamic addresses only from blocks it has claimed, and a block
  is claimed by inserting (pool, start) under a unique constraint, so the database
  arbitrates. Within its blocks a process allocates in memory (no database on the
  hot path) and persists the lease afterwards.
- Static addresses live in the pool's separate `static_cidr` and are set by an admin.

Left as is: blocks are never returned, so a restarted process starts a fresh block and
the unused rest of its old blocks stays idle until a pool is re-created.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput
from ztsim.radius.aaa.engine import PoolEntry

log = logging.getLogger("ztsim.sessions.ipam")

# 1,024 addresses per claim: a burst of new SIMs should not wait on the database.
DEFAULT_BLOCK_PREFIX = 22
# Claim the next block before the current one runs dry, off the hot path.
LOW_WATER = 256

_leases = schema.ip_leases
_blocks = schema.ip_blocks


def blocks_of(network: IPv4Network, prefix: int = DEFAULT_BLOCK_PREFIX) -> Iterator[IPv4Network]:
    if network.prefixlen >= prefix:
        yield network
    else:
        yield from network.subnets(new_prefix=prefix)


def usable(block: IPv4Network, pool: IPv4Network) -> list[str]:
    """A block's host addresses, minus the pool's own network and broadcast addresses."""
    reserved = {pool.network_address, pool.broadcast_address} if pool.prefixlen < 31 else set()
    return [str(a) for a in block if a not in reserved]


class Ipam:
    """One AAA process's view of the pools: its leases cache and its free addresses."""

    def __init__(self, owner: str, *, block_prefix: int = DEFAULT_BLOCK_PREFIX) -> None:
        self.owner = owner
        self._prefix = block_prefix
        self._leases: dict[tuple[str, str], str] = {}
        self._taken: dict[str, set[str]] = {}
        self._free: dict[str, list[str]] = {}

    def load(self, conn: Connection, pool_ids: Iterable[str]) -> None:
        """Learn every lease of these pools (made by any process)."""
        ids = list(pool_ids)
        if not ids:
            return
        rows = conn.execute(
            select(_leases.c.pool_id, _leases.c.imsi, _leases.c.address).where(
                _leases.c.pool_id.in_(ids)
            )
        ).all()
        for pool_id, imsi, address in rows:
            self._leases[(pool_id, imsi)] = address
            self._taken.setdefault(pool_id, set()).add(address)

    def lookup(self, pool: PoolEntry, imsi: str) -> str | None:
        return self._leases.get((pool.id, imsi))

    def free_count(self, pool: PoolEntry) -> int:
        return len(self._free.get(pool.id, ()))

    def allocate(self, pool: PoolEntry, imsi: str) -> tuple[str, bool] | None:
        """The SIM's address and whether it is new; None when this process has no free
        address left (the caller claims a block, then asks again)."""
        known = self._leases.get((pool.id, imsi))
        if known is not None:
            return known, False
        free = self._free.get(pool.id)
        taken = self._taken.setdefault(pool.id, set())
        while free:
            address = free.pop()
            if address not in taken:
                taken.add(address)
                self._leases[(pool.id, imsi)] = address
                return address, True
        return None

    def claim_block(self, conn: Connection, pool: PoolEntry, now: datetime) -> int:
        """Claim the next unclaimed block of the pool's dynamic range; the number of free
        addresses it adds (0 when the pool is exhausted)."""
        claimed = set(
            conn.execute(select(_blocks.c.start).where(_blocks.c.pool_id == pool.id)).scalars()
        )
        for block in blocks_of(pool.network, self._prefix):
            start = str(block.network_address)
            if start in claimed:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(_blocks).values(
                            pool_id=pool.id,
                            org_id=pool.org_id,
                            start=start,
                            owner=self.owner,
                            claimed_at=now,
                        )
                    )
            except IntegrityError:
                continue  # another process claimed it first
            taken = self._taken.setdefault(pool.id, set())
            addresses = [a for a in usable(block, pool.network) if a not in taken]
            # Popped from the end: reversed, so addresses go out in ascending order.
            self._free.setdefault(pool.id, [])[:0] = list(reversed(addresses))
            return len(addresses)
        return 0

    def forget(self, pool_id: str, imsi: str) -> None:
        address = self._leases.pop((pool_id, imsi), None)
        if address is not None:
            self._taken.get(pool_id, set()).discard(address)


def record_lease(conn: Connection, pool: PoolEntry, imsi: str, address: str, now: datetime) -> bool:
    """Persist a dynamic lease; False if the SIM already had one (a race between two
    processes: the address handed out stays in this process's block, unused by others)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(_leases).values(
                    pool_id=pool.id,
                    org_id=pool.org_id,
                    address=address,
                    imsi=imsi,
                    static=False,
                    created_at=now,
                )
            )
    except IntegrityError:
        log.warning("lease for a SIM of pool %s already recorded by another process", pool.id)
        return False
    return True


# SQLite and PostgreSQL take a batch of leases straight from the driver, several rows per
# statement: SQLAlchemy's per-row processing of a burst of first attaches (thousands)
# held the GIL long enough to stall the RADIUS thread.
_RAW_DIALECTS = ("sqlite", "postgresql")
_LEASE_COLUMNS = ("pool_id", "org_id", "address", "imsi", "static", "created_at")
# 6 columns: 900 parameters, under SQLite's oldest limit of 999 per statement.
_LEASES_PER_INSERT = 150


@functools.lru_cache(maxsize=16)
def _lease_insert_sql(mark: str, rows: int) -> str:
    values = "(" + ", ".join([mark] * len(_LEASE_COLUMNS)) + ")"
    columns = ", ".join(_LEASE_COLUMNS)
    # Only constants and placeholders: the values are bound by the driver.
    sql = f"INSERT INTO ip_leases ({columns}) VALUES " + ", ".join([values] * rows)  # noqa: S608
    return sql


def _insert_leases(
    conn: Connection, leases: Sequence[tuple[PoolEntry, str, str, datetime]]
) -> None:
    dialect = conn.dialect.name
    if dialect not in _RAW_DIALECTS:
        conn.execute(
            insert(_leases),
            [
                {
                    "pool_id": pool.id,
                    "org_id": pool.org_id,
                    "address": address,
                    "imsi": imsi,
                    "static": False,
                    "created_at": when,
                }
                for pool, imsi, address, when in leases
            ],
        )
        return
    sqlite = dialect == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(leases), _LEASES_PER_INSERT):
        chunk = leases[start : start + _LEASES_PER_INSERT]
        params: list[object] = []
        for pool, imsi, address, when in chunk:
            utc = when.astimezone(UTC)
            # The forms UtcDateTime and Boolean bind: naive UTC text and 0 on SQLite.
            created: object = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
            params += (pool.id, pool.org_id, address, imsi)
            params += (0, created) if sqlite else (False, utc)
        conn.exec_driver_sql(_lease_insert_sql(mark, len(chunk)), tuple(params))


def record_leases(conn: Connection, leases: Sequence[tuple[PoolEntry, str, str, datetime]]) -> int:
    """Persist many dynamic leases (pool, IMSI, address, time) in a few statements; the
    number recorded. If any collides (another process's lease), each is retried on its
    own, so the others still land and the collision is logged as in `record_lease`."""
    if not leases:
        return 0
    try:
        with conn.begin_nested():
            _insert_leases(conn, leases)
    except IntegrityError:
        return sum(record_lease(conn, *lease) for lease in leases)
    return len(leases)


def assign_static(
    conn: Connection, pool: PoolEntry, imsi: str, address: str, now: datetime
) -> None:
    """Give a SIM a fixed address from the pool's static range, replacing its lease."""
    if pool.static_network is None:
        raise InvalidInput("the pool has no static range")
    try:
        wanted = IPv4Address(address)
    except ValueError:
        raise InvalidInput("the static address is not an IPv4 address") from None
    if wanted not in pool.static_network:
        raise InvalidInput("the static address is outside the pool's static range")
    conn.execute(delete(_leases).where(_leases.c.pool_id == pool.id, _leases.c.imsi == imsi))
    try:
        with conn.begin_nested():
            conn.execute(
                insert(_leases).values(
                    pool_id=pool.id,
                    org_id=pool.org_id,
                    address=str(wanted),
                    imsi=imsi,
                    static=True,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise Conflict("the static address is already leased to another SIM") from None
