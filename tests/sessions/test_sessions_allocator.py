"""The in-memory allocator alone, no database: addresses go out in order, stay with their
SIM, are never given twice, and only from blocks handed to it."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from ztsim.sessions.allocator import Ipam, PoolEntry, blocks_of, usable

POOL = PoolEntry("p1", "o1", IPv4Network("10.64.0.0/22"), None)


def _imsi(n: int) -> str:
    return f"00101{n:010d}"


def test_blocks_split_a_pool_and_a_small_pool_is_one_block() -> None:
    assert [str(b) for b in blocks_of(IPv4Network("10.64.0.0/21"), 23)] == [
        "10.64.0.0/23",
        "10.64.2.0/23",
        "10.64.4.0/23",
        "10.64.6.0/23",
    ]
    assert list(blocks_of(IPv4Network("10.64.0.0/29"), 22)) == [IPv4Network("10.64.0.0/29")]


def test_usable_leaves_out_the_pools_network_and_broadcast_addresses_only() -> None:
    first, last = IPv4Network("10.64.0.0/30"), IPv4Network("10.64.3.252/30")
    assert usable(first, POOL.network) == ["10.64.0.1", "10.64.0.2", "10.64.0.3"]
    assert usable(last, POOL.network) == ["10.64.3.252", "10.64.3.253", "10.64.3.254"]
    middle = IPv4Network("10.64.1.0/30")
    assert len(usable(middle, POOL.network)) == 4


def test_nothing_is_handed_out_before_a_block_is_added() -> None:
    ipam = Ipam("p")
    assert ipam.allocate(POOL, _imsi(1)) is None
    assert ipam.free_count(POOL) == 0


def test_addresses_go_out_in_order_once_each_and_stay_with_their_sim() -> None:
    ipam = Ipam("p")
    assert ipam.add_block(POOL, IPv4Network("10.64.0.0/29")) == 7
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.1", True)
    assert ipam.allocate(POOL, _imsi(2)) == ("10.64.0.2", True)
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.1", False)
    assert ipam.lookup(POOL, _imsi(2)) == "10.64.0.2"
    assert ipam.free_count(POOL) == 5
    given = {ipam.allocate(POOL, _imsi(n)) for n in range(3, 8)}
    assert len({g[0] for g in given if g is not None}) == 5
    assert ipam.allocate(POOL, _imsi(99)) is None
    # A second block refills the pool where the first one left off.
    assert ipam.add_block(POOL, IPv4Network("10.64.0.8/29")) == 8
    assert ipam.allocate(POOL, _imsi(99)) == ("10.64.0.8", True)


def test_a_learnt_lease_is_kept_and_its_address_never_handed_to_another_sim() -> None:
    ipam = Ipam("p")
    ipam.learn(POOL.id, _imsi(1), "10.64.0.2")
    assert ipam.add_block(POOL, IPv4Network("10.64.0.0/30")) == 2
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.2", False)
    assert ipam.allocate(POOL, _imsi(2)) == ("10.64.0.1", True)
    assert ipam.allocate(POOL, _imsi(3)) == ("10.64.0.3", True)
    assert ipam.allocate(POOL, _imsi(4)) is None


def test_a_lease_learnt_after_its_block_was_added_is_skipped_in_the_free_addresses() -> None:
    ipam = Ipam("p")
    ipam.add_block(POOL, IPv4Network("10.64.0.0/30"))
    ipam.learn(POOL.id, _imsi(1), "10.64.0.1")
    assert ipam.allocate(POOL, _imsi(2)) == ("10.64.0.2", True)


def test_forget_drops_the_lease_without_handing_its_address_out_again() -> None:
    ipam = Ipam("p")
    ipam.add_block(POOL, IPv4Network("10.64.0.0/30"))
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.1", True)
    ipam.forget(POOL.id, _imsi(1))
    assert ipam.lookup(POOL, _imsi(1)) is None
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.2", True)


def test_pools_are_kept_apart() -> None:
    other = PoolEntry("p2", "o2", IPv4Network("10.64.0.0/22"), None)
    ipam = Ipam("p")
    ipam.add_block(POOL, IPv4Network("10.64.0.0/30"))
    assert ipam.allocate(other, _imsi(1)) is None
    ipam.add_block(other, IPv4Network("10.64.0.0/30"))
    assert ipam.allocate(other, _imsi(1)) == ("10.64.0.1", True)
    assert ipam.allocate(POOL, _imsi(1)) == ("10.64.0.1", True)


def test_a_block_outside_the_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        Ipam("p").add_block(POOL, IPv4Network("10.65.0.0/29"))
