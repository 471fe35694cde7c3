"""Longest-prefix match of raw addresses to sites."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.net.tunnel_routes import TunnelRoutes

ROUTES = TunnelRoutes(
    [
        ("10.20.0.0/16", "hq"),
        ("10.20.5.0/24", "lab"),
        ("10.20.5.7/32", "printer"),
        ("0.0.0.0/0", "default"),
        ("fd00:1::/48", "hq"),
    ]
)


@pytest.mark.parametrize(
    ("address", "site"),
    [
        ("10.20.1.1", "hq"),
        ("10.20.5.1", "lab"),
        ("10.20.5.7", "printer"),
        ("10.21.0.1", "default"),
        ("fd00:1::5", "hq"),
        ("fd00:2::5", None),
    ],
)
def test_the_longest_prefix_wins(address: str, site: str | None) -> None:
    assert ROUTES.lookup_text(address) == site
    assert ROUTES.lookup(ipaddress.ip_address(address).packed) == site


def test_one_prefix_for_two_sites_is_refused_and_bad_text_too() -> None:
    with pytest.raises(InvalidInput):
        TunnelRoutes([("10.0.0.0/8", "a"), ("10.0.0.0/8", "b")])
    with pytest.raises(InvalidInput):
        TunnelRoutes([("10.0.0.1/8", "a")])
    with pytest.raises(InvalidInput):
        TunnelRoutes([("ten", "a")])
    assert TunnelRoutes([("10.0.0.0/8", "a"), ("10.0.0.0/8", "a")]).lookup_text("10.1.1.1") == "a"


@given(
    st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 32)), max_size=8),
    st.integers(0, 0xFFFFFFFF),
)
def test_equals_a_scan_of_every_prefix(prefixes: list[tuple[int, int]], address: int) -> None:
    nets = {ipaddress.ip_network((n, p), strict=False) for n, p in prefixes}
    routes = TunnelRoutes((str(net), str(net)) for net in nets)
    target = ipaddress.IPv4Address(address)
    holding = [net for net in nets if target in net]
    best = max(holding, key=lambda net: net.prefixlen, default=None)
    assert routes.lookup(target.packed) == (None if best is None else str(best))
