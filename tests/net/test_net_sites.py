"""Sites and networks as values: tunnel kinds and their standard ports, VNIs of 24 bits,
unicast endpoints, routable prefixes without host bits; Ethernet inside a Geneve site
(the site's unicast MAC required, ztsim's own derived from the site's id and kept through
every change); the parsers never fail but with InvalidInput (Hypothesis)."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.net.sites import (
    GENEVE_PORT,
    MAX_VNI,
    VXLAN_PORT,
    Inner,
    Network,
    Site,
    TunnelKind,
    check_name,
    check_port,
    check_vni,
    default_port,
    endpoint_of,
    gateway_mac_of,
    inner_kind,
    mac_of,
    new_site,
    prefix_of,
    tunnel_kind,
)

from tests_clock import NOW


def _site(**given: object) -> Site:
    fields: dict[str, object] = {
        "name": "hq",
        "tunnel": TunnelKind.GENEVE,
        "endpoint": "192.0.2.10",
        "port": None,
        "vni": 100,
        "now": NOW,
    }
    fields.update(given)
    return new_site("s1", "o1", **fields)  # type: ignore[arg-type]


def test_the_standard_ports_are_the_rfcs() -> None:
    assert (GENEVE_PORT, VXLAN_PORT) == (6081, 4789)
    assert _site().port == 6081
    assert _site(tunnel=TunnelKind.VXLAN).port == 4789
    assert _site(port=7000).port == 7000
    assert default_port(TunnelKind.VXLAN) == 4789


@pytest.mark.parametrize(("text", "kind"), [("geneve", "geneve"), (" VXLAN ", "vxlan")])
def test_tunnel_kinds_are_read_without_regard_to_case(text: str, kind: str) -> None:
    assert tunnel_kind(text) is TunnelKind(kind)


def test_an_unknown_tunnel_kind_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="one of geneve, vxlan"):
        tunnel_kind("gre")


@pytest.mark.parametrize("vni", [1, 4096, MAX_VNI])
def test_a_vni_of_24_bits_is_taken(vni: int) -> None:
    assert check_vni(vni) == vni == _site(vni=vni).vni


@pytest.mark.parametrize("vni", [0, -1, 2**24, True])
def test_a_vni_outside_1_to_2_24_minus_1_is_refused(vni: int) -> None:
    with pytest.raises(InvalidInput, match="vni must be 1 to 16777215"):
        _site(vni=vni)


@pytest.mark.parametrize("port", [0, 65536, -5])
def test_a_port_outside_1_to_65535_is_refused(port: int) -> None:
    with pytest.raises(InvalidInput, match="port must be 1 to 65535"):
        check_port(port)
    with pytest.raises(InvalidInput, match="port"):
        _site(port=port)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", IPv4Address("192.0.2.1")),
        (" 2001:db8::1 ", IPv6Address("2001:db8::1")),
        ("::ffff:192.0.2.9", IPv4Address("192.0.2.9")),  # what goes on the wire
    ],
)
def test_an_endpoint_is_one_unicast_address(text: str, address: object) -> None:
    assert endpoint_of(text) == address
    assert _site(endpoint=text).endpoint == address


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("224.0.0.5", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.0/24", "an IP address"),
        ("gateway.example", "an IP address"),
    ],
)
def test_an_endpoint_that_is_not_one_unicast_address_is_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        endpoint_of(text)


@pytest.mark.parametrize(
    "text", ["10.1.0.0/16", "172.16.5.0/24", "192.0.2.7", "2001:db8:1::/48", "fd00::/8"]
)
def test_a_routable_prefix_without_host_bits_is_taken(text: str) -> None:
    assert prefix_of(text) == ip_network(text)


def test_host_bits_are_refused_with_the_prefix_meant() -> None:
    with pytest.raises(InvalidInput, match=r"has host bits set: did you mean 10\.1\.0\.0/16\?"):
        prefix_of("10.1.2.3/16")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("224.1.0.0/16", "multicast"),
        ("0.0.0.0/0", "multicast"),  # everything: multicast too, and every other org
        ("ff00::/12", "multicast"),
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/64", "link-local"),
        ("0.0.0.0/32", "unspecified"),
        ("::ffff:10.0.0.0/104", "IPv4-mapped"),
        ("10.0.0.0/33", "an IP prefix"),
        ("lan", "an IP prefix"),
    ],
)
def test_a_prefix_that_no_site_can_be_behind_is_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        prefix_of(text)


@pytest.mark.parametrize(
    ("name", "why"),
    [("", "1 to 100"), ("   ", "1 to 100"), ("x" * 101, "1 to 100"), ("a\nb", "control")],
)
def test_names_are_1_to_100_printable_characters(name: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_name(name)
    with pytest.raises(InvalidInput, match=why):
        _site(name=name)


def test_a_name_is_stripped() -> None:
    assert _site(name="  hq  ").name == "hq"


def test_a_new_tunnel_kind_moves_a_standard_port_and_keeps_a_chosen_one() -> None:
    later = NOW.replace(hour=13)
    moved = _site().changed(later, tunnel=TunnelKind.VXLAN)
    assert (moved.tunnel, moved.port, moved.updated_at, moved.created_at) == (
        TunnelKind.VXLAN,
        4789,
        later,
        NOW,
    )
    kept = _site(port=7000).changed(later, tunnel=TunnelKind.VXLAN)
    assert kept.port == 7000
    assert _site().changed(later, tunnel=TunnelKind.VXLAN, port=9000).port == 9000


def test_changing_checks_the_new_values() -> None:
    with pytest.raises(InvalidInput, match="vni"):
        _site().changed(NOW, vni=0)
    with pytest.raises(InvalidInput, match="name"):
        _site().changed(NOW, name="")


def test_a_network_checks_its_name_and_prefix() -> None:
    network = Network("n1", "o1", "s1", " lan ", IPv4Network("10.1.0.0/16"), NOW)
    assert network.name == "lan"
    with pytest.raises(InvalidInput, match="loopback"):
        Network("n1", "o1", "s1", "lan", IPv6Network("::1/128"), NOW)


SITE_MAC = "aa:bb:cc:00:00:01"


def _framed(**given: object) -> Site:
    return _site(**{"inner": Inner.ETHERNET, "site_mac": SITE_MAC, **given})


def test_a_site_carries_ip_unless_told_and_then_has_no_macs() -> None:
    site = _site()
    assert (site.inner, site.site_mac, site.gateway_mac) == (Inner.IP, None, None)
    assert _site(tunnel=TunnelKind.VXLAN).gateway_mac is None


def test_an_ethernet_site_has_its_mac_and_ztsims_own_derived_from_its_id() -> None:
    site = _framed(site_mac=" AA-BB-CC-00-00-01 ")
    assert (site.inner, site.site_mac) == (Inner.ETHERNET, SITE_MAC)  # as ip(8) writes it
    assert site.gateway_mac == gateway_mac_of("s1") == "02:63:04:d5:f7:48"  # pinned: stable
    assert gateway_mac_of("s2") != site.gateway_mac
    # Not from the VNI, the endpoint or the name: a neighbour entry pinned at the site
    # stays right while the site exists.
    later = NOW.replace(hour=13)
    moved = site.changed(later, name="dc", endpoint=endpoint_of("192.0.2.99"), vni=7)
    assert (moved.gateway_mac, moved.site_mac) == (site.gateway_mac, SITE_MAC)


@pytest.mark.parametrize("site_id", ["s1", "", "0123456789abcdef0123456789abcdef", "é"])
def test_ztsims_mac_is_unicast_and_locally_administered(site_id: str) -> None:
    mac = gateway_mac_of(site_id)
    assert mac_of(mac, "mac") == mac  # six octets, lower case, unicast, not zero
    assert int(mac[:2], 16) & 0b11 == 0b10  # U/L set (RFC 7042 §2.1), I/G clear


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"tunnel": TunnelKind.VXLAN}, "inner ethernet is for geneve sites: vxlan carries"),
        ({"site_mac": None}, "site_mac is required with inner ethernet"),
        ({"site_mac": "02:63:04:d5:f7:48"}, "must not be ztsim's own MAC"),
        ({"inner": Inner.IP}, "site_mac is only for inner ethernet"),
        ({"inner": Inner.IP, "tunnel": TunnelKind.VXLAN}, "site_mac is only for inner ethernet"),
    ],
)
def test_ethernet_inside_is_for_geneve_with_the_sites_mac(
    given: dict[str, object], why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        _framed(**given)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("aa:bb:cc:00:00", "a MAC address like 02:00:5e:10:00:01"),
        ("aa:bb:cc:00:00:01:02", "a MAC address like"),
        ("aa:bb-cc:00:00:01", "a MAC address like"),  # one separator throughout
        ("aabb.cc00.0001", "a MAC address like"),
        ("gg:bb:cc:00:00:01", "a MAC address like"),
        ("01:00:5e:00:00:01", "unicast"),  # IPv4 multicast (RFC 1112 §6.4)
        ("ff:ff:ff:ff:ff:ff", "unicast"),
        ("00:00:00:00:00:00", "all zeros"),
    ],
)
def test_a_site_mac_is_one_unicast_mac(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=f"site_mac must .*{why}"):
        _framed(site_mac=text)


@pytest.mark.parametrize(("text", "inner"), [("ip", Inner.IP), (" Ethernet ", Inner.ETHERNET)])
def test_inner_kinds_are_read_without_regard_to_case(text: str, inner: Inner) -> None:
    assert inner_kind(text) is inner
    with pytest.raises(InvalidInput, match="inner must be one of ip, ethernet, not 'mpls'"):
        inner_kind("mpls")


def test_changing_the_framing() -> None:
    later = NOW.replace(hour=13)
    framed = _site().changed(later, inner=Inner.ETHERNET, site_mac=SITE_MAC)
    assert (framed.inner, framed.site_mac) == (Inner.ETHERNET, SITE_MAC)
    other = framed.changed(later, site_mac="aa:bb:cc:00:00:02")
    assert (other.inner, other.site_mac) == (Inner.ETHERNET, "aa:bb:cc:00:00:02")
    # Back to IP: the MAC goes with it, and is asked for again on the way back.
    bare = framed.changed(later, inner=Inner.IP)
    assert (bare.inner, bare.site_mac) == (Inner.IP, None)
    with pytest.raises(InvalidInput, match="site_mac is required"):
        bare.changed(later, inner=Inner.ETHERNET)
    with pytest.raises(InvalidInput, match="site_mac is only for inner ethernet"):
        bare.changed(later, site_mac=SITE_MAC)
    # Moved to VXLAN, a site carries IP (VXLAN frames by itself), unless told otherwise.
    vxlan = framed.changed(later, tunnel=TunnelKind.VXLAN)
    assert (vxlan.tunnel, vxlan.port, vxlan.inner, vxlan.site_mac) == ("vxlan", 4789, "ip", None)
    with pytest.raises(InvalidInput, match="for geneve sites"):
        framed.changed(later, tunnel=TunnelKind.VXLAN, inner=Inner.ETHERNET)
    with pytest.raises(InvalidInput, match="a MAC address like"):
        framed.changed(later, site_mac="nope")


@given(st.text(max_size=60))
def test_the_parsers_take_or_refuse_any_text(text: str) -> None:
    for parse in (endpoint_of, prefix_of, tunnel_kind, inner_kind, mac_of):
        with contextlib.suppress(InvalidInput):
            parse(text)


@given(st.ip_addresses())
def test_every_unicast_address_is_an_endpoint_as_itself(address: IPv4Address | IPv6Address) -> None:
    refused = address.is_unspecified or address.is_multicast
    refused = refused or address == IPv4Address("255.255.255.255")
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return  # unwrapped to IPv4: covered above
    if refused:
        with pytest.raises(InvalidInput):
            endpoint_of(str(address))
    else:
        assert endpoint_of(str(address)) == address


@given(st.integers(min_value=0, max_value=2**24 - 1), st.integers(min_value=8, max_value=32))
def test_a_prefix_is_taken_exactly_when_it_has_no_host_bits(host: int, length: int) -> None:
    address = IPv4Address(0x0A00_0000 + host)  # inside 10.0.0.0/8: routable throughout
    text = f"{address}/{length}"
    exact = ip_network(text, strict=False)
    if exact.network_address == address:
        assert prefix_of(text) == exact
    else:
        with pytest.raises(InvalidInput, match=f"did you mean {exact}"):
            prefix_of(text)


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-"]), st.booleans())
def test_every_unicast_mac_is_taken_in_one_canonical_form(
    octets: bytes, separator: str, upper: bool
) -> None:
    text = separator.join(f"{o:02x}" for o in octets)
    text = text.upper() if upper else text
    canonical = ":".join(f"{o:02x}" for o in octets)
    if octets[0] & 0x01 or octets == bytes(6):
        with pytest.raises(InvalidInput):
            mac_of(text)
    else:
        assert mac_of(text) == canonical
