"""The outbound address policy: what is refused, what an allowed range opens."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from ztsim.errors import InvalidInput
from ztsim.netguard import NotAllowed, check_addresses, parse_ranges, parse_target

REFUSED = [
    "127.0.0.1",  # loopback
    "127.255.0.9",
    "10.1.2.3",  # RFC 1918
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # RFC 6598 shared address space (CGNAT)
    "169.254.10.10",  # link-local
    "169.254.169.254",  # metadata
    "0.0.0.0",  # noqa: S104 - unspecified, refused
    "224.0.0.251",  # multicast
    "239.1.2.3",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "fe80::1",
    "fd00:ec2::254",  # metadata over IPv6 (AWS)
    "fc00::1",  # RFC 4193 ULA
    "ff02::1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address: str) -> None:
    with pytest.raises(NotAllowed, match=r"^the URL's address is not allowed$"):
        check_addresses([address], ())


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert str(check_addresses([address], ())) == address


def test_one_internal_address_among_public_ones_refuses_the_name() -> None:
    with pytest.raises(NotAllowed):
        check_addresses(["1.1.1.1", "10.0.0.1"], ())
    with pytest.raises(NotAllowed):
        check_addresses([], ())


def test_an_allowed_range_opens_exactly_its_addresses() -> None:
    loopback = parse_ranges(["127.0.0.0/8"])
    assert str(check_addresses(["127.0.0.1"], loopback)) == "127.0.0.1"
    assert check_addresses(["::ffff:127.0.0.1"], loopback) == ip_address("::ffff:127.0.0.1")
    for outside in ("10.0.0.1", "::1", "169.254.169.254"):
        with pytest.raises(NotAllowed):
            check_addresses([outside], loopback)


def test_metadata_needs_its_own_address_allowed() -> None:
    with pytest.raises(NotAllowed):
        check_addresses(["169.254.169.254"], parse_ranges(["169.254.0.0/16"]))
    assert check_addresses(["169.254.169.254"], parse_ranges(["169.254.169.254/32"]))
    assert check_addresses(["169.254.1.1"], parse_ranges(["169.254.0.0/16"]))


def test_bad_ranges_and_urls_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="not an address range"):
        parse_ranges(["127.0.0.1/8"])  # host bits set: say what you mean
    for url in ("ftp://x.test/", "http:///list", "http://u:p@x.test/", "http://x.test:99999/"):
        with pytest.raises(InvalidInput):
            parse_target(url)
    with pytest.raises(NotAllowed):
        parse_target("http://[fe80::1%25eth0]/list")


def test_targets() -> None:
    assert parse_target("https://lists.test/a?b=1") == parse_target("https://lists.test:443/a?b=1")
    t = parse_target("http://[::1]:8080")
    assert (t.scheme, t.host, t.port, t.path) == ("http", "::1", 8080, "/")
