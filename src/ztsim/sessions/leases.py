"""The database side of address management: leases and claimed blocks of the org pools.

Guarantees and how they are kept (the in-memory side is `ztsim.sessions.allocator`):
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

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ztsim.db import schema
from ztsim.db.bulk import insert_rows, takes_driver_rows
from ztsim.errors import Conflict, InvalidInput
from ztsim.sessions.allocator import DEFAULT_BLOCK_PREFIX, Ipam, PoolEntry, blocks_of

log = logging.getLogger("ztsim.sessions.leases")

_leases = schema.ip_leases
_blocks = schema.ip_blocks

# A dynamic lease to persist: the pool, the IMSI, the address, when it was handed out.
NewLease = tuple[PoolEntry, str, str, datetime]


def load_leases(conn: Connection, ipam: Ipam, pool_ids: Iterable[str]) -> int:
    """Teach `ipam` every lease of these pools (made by any process); how many."""
    ids = list(pool_ids)
    if not ids:
        return 0
    rows = conn.execute(
        select(_leases.c.pool_id, _leases.c.imsi, _leases.c.address).where(
            _leases.c.pool_id.in_(ids)
        )
    ).all()
    for pool_id, imsi, address in rows:
        ipam.learn(pool_id, imsi, address)
    return len(rows)


def claim_next_block(
    conn: Connection,
    pool: PoolEntry,
    owner: str,
    now: datetime,
    *,
    prefix: int = DEFAULT_BLOCK_PREFIX,
) -> IPv4Network | None:
    """Claim the next unclaimed block of the pool's dynamic range for `owner`; None when
    every block is claimed (the pool is exhausted)."""
    claimed = set(
        conn.execute(select(_blocks.c.start).where(_blocks.c.pool_id == pool.id)).scalars()
    )
    for block in blocks_of(pool.network, prefix):
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
                        owner=owner,
                        claimed_at=now,
                    )
                )
        except IntegrityError:
            continue  # another process claimed it first
        return block
    return None


def claim_block(conn: Connection, ipam: Ipam, pool: PoolEntry, now: datetime) -> int:
    """Claim the next block for `ipam`'s process and make its addresses free there; the
    number added (0 when the pool is exhausted)."""
    block = claim_next_block(conn, pool, ipam.owner, now, prefix=ipam.block_prefix)
    return 0 if block is None else ipam.add_block(pool, block)


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


_LEASE_COLUMNS = ("pool_id", "org_id", "address", "imsi", "static", "created_at")


def _lease_rows(dialect: str, leases: Sequence[NewLease]) -> list[tuple[object, ...]]:
    if not takes_driver_rows(dialect):
        return [(p.id, p.org_id, address, imsi, False, when) for p, imsi, address, when in leases]
    rows: list[tuple[object, ...]] = []
    sqlite = dialect == "sqlite"
    for pool, imsi, address, when in leases:
        utc = when.astimezone(UTC)
        if sqlite:
            # The forms UtcDateTime and Boolean bind there: naive UTC text and 0.
            created = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
            rows.append((pool.id, pool.org_id, address, imsi, 0, created))
        else:
            rows.append((pool.id, pool.org_id, address, imsi, False, utc))
    return rows


def record_leases(conn: Connection, leases: Sequence[NewLease]) -> int:
    """Persist many dynamic leases in a few statements; the number recorded. If any
    collides (another process's lease), each is retried on its own, so the others still
    land and the collision is logged as in `record_lease`."""
    if not leases:
        return 0
    try:
        with conn.begin_nested():
            insert_rows(conn, _leases, _LEASE_COLUMNS, _lease_rows(conn.dialect.name, leases))
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
