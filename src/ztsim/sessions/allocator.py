"""The in-memory address allocator of one AAA process: its leases cache and the free
addresses of the blocks it has claimed. Pure: what the database says comes in through
`learn` and `add_block` (see `ztsim.sessions.leases`), so the hot path never waits on it.

Guarantees kept here:
- One address per SIM and pool: a SIM that has an address gets it back (stable across
  sessions, and across restarts once its lease is learnt again).
- One SIM per address within this process: an address learnt or handed out is taken,
  and a block's addresses already taken are never made free.
- Across processes, the blocks keep them apart: a process hands out dynamic addresses
  only from blocks the database let it claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network

# 1,024 addresses per claim: a burst of new SIMs should not wait on the database.
DEFAULT_BLOCK_PREFIX = 22
# Claim the next block before the current one runs dry, off the hot path.
LOW_WATER = 256


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """An org's address pool: the dynamic range, and the static range set by an admin."""

    id: str
    org_id: str
    network: IPv4Network
    static_network: IPv4Network | None


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
    """One AAA process's view of the pools: its leases cache and its free addresses.
    `owner` names the process in the blocks it claims."""

    def __init__(self, owner: str, *, block_prefix: int = DEFAULT_BLOCK_PREFIX) -> None:
        self.owner = owner
        self.block_prefix = block_prefix
        self._leases: dict[tuple[str, str], str] = {}
        self._taken: dict[str, set[str]] = {}
        self._free: dict[str, list[str]] = {}

    def learn(self, pool_id: str, imsi: str, address: str) -> None:
        """A lease the database holds (made by any process, static or dynamic)."""
        self._leases[(pool_id, imsi)] = address
        self._taken.setdefault(pool_id, set()).add(address)

    def add_block(self, pool: PoolEntry, block: IPv4Network) -> int:
        """Make a claimed block's addresses free (those not taken); how many were added."""
        if not block.subnet_of(pool.network):
            raise ValueError(f"block {block} is outside pool {pool.network}")
        taken = self._taken.setdefault(pool.id, set())
        addresses = [a for a in usable(block, pool.network) if a not in taken]
        # Popped from the end: reversed, so addresses go out in ascending order.
        self._free.setdefault(pool.id, [])[:0] = list(reversed(addresses))
        return len(addresses)

    def lookup(self, pool: PoolEntry, imsi: str) -> str | None:
        return self._leases.get((pool.id, imsi))

    def free_count(self, pool: PoolEntry) -> int:
        return len(self._free.get(pool.id, ()))

    def allocate(self, pool: PoolEntry, imsi: str) -> tuple[str, bool] | None:
        """The SIM's address and whether it is new; None when this process has no free
        address left (the caller has a block claimed, then asks again)."""
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

    def forget(self, pool_id: str, imsi: str) -> None:
        address = self._leases.pop((pool_id, imsi), None)
        if address is not None:
            self._taken.get(pool_id, set()).discard(address)
