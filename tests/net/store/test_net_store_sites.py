"""Sites and networks in the database (SQLite and PostgreSQL): each use case leaves its
audit event and one `net` change keyed by the org; another org's objects are NotFound;
names are unique per org; a site with networks goes only with `force`; a refused use case
leaves nothing; a Geneve site's Ethernet framing and its MAC are stored, changed and
cleared when no longer used."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from ipaddress import IPv6Address, ip_network

import pytest
from sqlalchemy import Connection, Engine, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.net.sites import Inner, Network, Site, TunnelKind, gateway_mac_of
from ztsim.net.store import sites

from support.traces import refused, run
from tests_clock import NOW

LATER = NOW + timedelta(hours=1)


def _org(engine: Engine, slug: str) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, slug.upper(), slug, NOW).id


def _site(conn: Connection, org: str, name: str = "hq", vni: int = 100, **more: object) -> Site:
    fields: dict[str, object] = {"tunnel": TunnelKind.GENEVE, "endpoint": "192.0.2.10"}
    fields.update(more)
    return sites.create_site(
        conn,
        org,
        name=name,
        vni=vni,
        actor="token:t",
        now=NOW,
        **fields,  # type: ignore[arg-type]
    )


def _network(conn: Connection, org: str, site: str, name: str, cidr: str) -> Network:
    return sites.add_network(conn, org, site, name=name, cidr=cidr, actor="token:t", now=NOW)


def test_a_site_is_created_read_and_listed(engine: Engine) -> None:
    org = _org(engine, "a")
    site, left = run(engine, lambda c: _site(c, org, "hq", 100, endpoint="2001:db8::7"))
    assert left.events == [(org, "net.site_created", f"site:{site.id}")]
    assert left.actors == ["token:t"]
    assert left.topics == [(Topic.NET, org)]
    assert {c.org_id for c in left.changes} == {org}
    assert (site.tunnel, site.endpoint, site.port, site.vni) == (
        TunnelKind.GENEVE,
        IPv6Address("2001:db8::7"),
        6081,
        100,
    )
    run(engine, lambda c: _site(c, org, "branch", 101, tunnel=TunnelKind.VXLAN))
    with engine.connect() as conn:
        assert sites.get_site(conn, org, site.id) == site
        listed = sites.list_sites(conn, org)
    assert [(s.name, s.port) for s in listed] == [("branch", 4789), ("hq", 6081)]


def test_a_site_name_is_unique_per_org_only(engine: Engine) -> None:
    org, other = _org(engine, "a"), _org(engine, "b")
    run(engine, lambda c: _site(c, org, "hq", 100))
    refused(engine, Conflict, lambda c: _site(c, org, "hq", 101))
    run(engine, lambda c: _site(c, other, "hq", 102))


def test_an_invalid_site_is_refused_and_leaves_nothing(engine: Engine) -> None:
    org = _org(engine, "a")
    refused(engine, InvalidInput, lambda c: _site(c, org, vni=0))
    refused(engine, InvalidInput, lambda c: _site(c, org, endpoint="224.0.0.1"))
    refused(engine, InvalidInput, lambda c: _site(c, org, port=70000))


def test_an_update_replaces_the_given_fields_and_keeps_the_rest(engine: Engine) -> None:
    org = _org(engine, "a")
    site, _ = run(engine, lambda c: _site(c, org, "hq", 100))

    def update(conn: Connection) -> Site:
        return sites.update_site(
            conn, org, site.id, tunnel=TunnelKind.VXLAN, vni=200, actor="token:u", now=LATER
        )

    updated, left = run(engine, update)
    assert (updated.name, updated.tunnel, updated.port, updated.vni) == ("hq", "vxlan", 4789, 200)
    assert (updated.created_at, updated.updated_at) == (NOW, LATER)
    assert left.events == [(org, "net.site_updated", f"site:{site.id}")]
    assert left.topics == [(Topic.NET, org)]
    with engine.connect() as conn:
        assert sites.get_site(conn, org, site.id) == updated
    # Nothing new: nothing written, nothing published.
    same, left = run(
        engine, lambda c: sites.update_site(c, org, site.id, vni=200, actor="t", now=LATER)
    )
    assert same == updated
    assert left.empty


def test_an_update_checks_names_vnis_and_values(engine: Engine) -> None:
    org = _org(engine, "a")
    hq, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    run(engine, lambda c: _site(c, org, "branch", 101))
    for change in ({"name": "branch"}, {"vni": 101}):
        refused(
            engine,
            Conflict,
            lambda c, change=change: sites.update_site(  # type: ignore[misc]
                c, org, hq.id, actor="t", now=LATER, **change
            ),
        )
    refused(
        engine,
        InvalidInput,
        lambda c: sites.update_site(c, org, hq.id, endpoint="0.0.0.0", actor="t", now=LATER),  # noqa: S104
    )
    # Its own VNI and name are not a conflict with itself.
    renamed, _ = run(
        engine,
        lambda c: sites.update_site(c, org, hq.id, name="HQ", vni=100, actor="t", now=LATER),
    )
    assert renamed.name == "HQ"


def test_networks_are_added_listed_and_deleted(engine: Engine) -> None:
    org = _org(engine, "a")
    hq, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    branch, _ = run(engine, lambda c: _site(c, org, "branch", 101))
    lan, left = run(engine, lambda c: _network(c, org, hq.id, "lan", "10.1.0.0/16"))
    assert left.events == [(org, "net.network_added", f"network:{lan.id}")]
    assert left.topics == [(Topic.NET, org)]
    assert lan.cidr == ip_network("10.1.0.0/16")
    run(engine, lambda c: _network(c, org, branch.id, "shop", "2001:db8:5::/48"))
    with engine.connect() as conn:
        assert [n.name for n in sites.list_networks(conn, org)] == ["lan", "shop"]
        assert sites.list_networks(conn, org, hq.id) == [lan]
        assert sites.get_network(conn, org, lan.id) == lan
    gone, left = run(engine, lambda c: sites.delete_network(c, org, lan.id, actor="t", now=LATER))
    assert gone == lan
    assert left.events == [(org, "net.network_deleted", f"network:{lan.id}")]
    assert left.topics == [(Topic.NET, org)]
    refused(engine, NotFound, lambda c: sites.delete_network(c, org, lan.id, actor="t", now=LATER))


def test_a_network_name_is_unique_per_org(engine: Engine) -> None:
    org = _org(engine, "a")
    hq, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    run(engine, lambda c: _network(c, org, hq.id, "lan", "10.1.0.0/16"))
    refused(engine, Conflict, lambda c: _network(c, org, hq.id, "lan", "10.2.0.0/16"))
    refused(engine, InvalidInput, lambda c: _network(c, org, hq.id, "lan2", "10.2.0.1/16"))


def test_a_site_with_networks_goes_only_with_force_and_takes_them(engine: Engine) -> None:
    org = _org(engine, "a")
    hq, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    a, _ = run(engine, lambda c: _network(c, org, hq.id, "a", "10.1.0.0/16"))
    b, _ = run(engine, lambda c: _network(c, org, hq.id, "b", "10.2.0.0/16"))
    refused(engine, Conflict, lambda c: sites.delete_site(c, org, hq.id, actor="t", now=LATER))
    gone, left = run(
        engine, lambda c: sites.delete_site(c, org, hq.id, force=True, actor="t", now=LATER)
    )
    assert gone == [a, b]
    assert left.kinds == ["net.network_deleted", "net.network_deleted", "net.site_deleted"]
    assert left.topics == [(Topic.NET, org)]  # one change for the org, not one per row
    with engine.connect() as conn:
        assert sites.list_sites(conn, org) == []
        assert sites.list_networks(conn, org) == []
    # Its VNI is free again.
    run(engine, lambda c: _site(c, org, "hq2", 100))


def test_a_site_without_networks_goes_without_force(engine: Engine) -> None:
    org = _org(engine, "a")
    hq, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    gone, left = run(engine, lambda c: sites.delete_site(c, org, hq.id, actor="t", now=LATER))
    assert gone == []
    assert left.events == [(org, "net.site_deleted", f"site:{hq.id}")]
    refused(engine, NotFound, lambda c: sites.get_site(c, org, hq.id))


def test_another_orgs_objects_are_not_found_and_left_alone(engine: Engine) -> None:
    org, other = _org(engine, "a"), _org(engine, "b")
    theirs, _ = run(engine, lambda c: _site(c, other, "hq", 100))
    their_lan, _ = run(engine, lambda c: _network(c, other, theirs.id, "lan", "10.1.0.0/16"))
    calls = [
        lambda c: sites.get_site(c, org, theirs.id),
        lambda c: sites.update_site(c, org, theirs.id, name="x", actor="t", now=LATER),
        lambda c: sites.delete_site(c, org, theirs.id, force=True, actor="t", now=LATER),
        lambda c: sites.list_networks(c, org, theirs.id),
        # Not found before any claim is checked: the prefix is theirs, the answer says nothing.
        lambda c: _network(c, org, theirs.id, "lan", "10.1.0.0/16"),
        lambda c: sites.get_network(c, org, their_lan.id),
        lambda c: sites.delete_network(c, org, their_lan.id, actor="t", now=LATER),
    ]
    for call in calls:
        refused(engine, NotFound, call)
    with engine.connect() as conn:
        assert sites.list_sites(conn, org) == []
        assert sites.list_networks(conn, org) == []
        assert sites.get_site(conn, other, theirs.id) == theirs
        assert sites.list_networks(conn, other) == [their_lan]


@pytest.mark.parametrize("endpoint", ["192.0.2.1", "2001:db8::1"])
def test_an_endpoint_is_stored_in_canonical_form(engine: Engine, endpoint: str) -> None:
    org = _org(engine, "a")
    wide = endpoint.replace("::", ":0:0:0:0:0:")
    site, _ = run(engine, lambda c: _site(c, org, endpoint=f" {wide} "))
    with engine.connect() as conn:
        stored = sites.get_site(conn, org, site.id).endpoint
    assert str(stored) == endpoint


SITE_MAC = "aa:bb:cc:00:00:01"


def _stored(engine: Engine, site_id: str) -> tuple[str, str | None]:
    """The row's own columns, as another reader of the table would see them."""
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.net_sites.c.inner, schema.net_sites.c.site_mac).where(
                schema.net_sites.c.id == site_id
            )
        ).one()
    return row.inner, row.site_mac


def _payloads(engine: Engine, subject: str) -> list[dict[str, object]]:
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(select(e.c.payload).where(e.c.subject == subject).order_by(e.c.id))
        return [dict(p) for p in rows.scalars()]


def test_a_site_with_ethernet_inside_is_stored_with_its_mac(engine: Engine) -> None:
    org = _org(engine, "a")
    plain, _ = run(engine, lambda c: _site(c, org, "hq", 100))
    assert _stored(engine, plain.id) == ("ip", None)  # the default, on every backend
    ovs, left = run(
        engine,
        lambda c: _site(c, org, "ovs", 101, inner=Inner.ETHERNET, site_mac="AA-BB-CC-00-00-01"),
    )
    assert left.topics == [(Topic.NET, org)]
    assert (ovs.inner, ovs.site_mac) == (Inner.ETHERNET, SITE_MAC)
    assert ovs.gateway_mac == gateway_mac_of(ovs.id)
    assert _stored(engine, ovs.id) == ("ethernet", SITE_MAC)
    with engine.connect() as conn:
        assert sites.get_site(conn, org, ovs.id) == ovs
        assert [s.inner for s in sites.list_sites(conn, org)] == [Inner.IP, Inner.ETHERNET]
    [created] = _payloads(engine, f"site:{ovs.id}")
    assert (created["inner"], created["site_mac"]) == ("ethernet", SITE_MAC)


def test_ethernet_inside_that_cannot_be_is_refused_and_leaves_nothing(engine: Engine) -> None:
    org = _org(engine, "a")
    calls = [
        lambda c: _site(c, org, inner=Inner.ETHERNET),  # no MAC
        lambda c: _site(c, org, inner=Inner.ETHERNET, site_mac="01:00:5e:00:00:01"),
        lambda c: _site(c, org, inner=Inner.ETHERNET, site_mac="aa:bb", tunnel=TunnelKind.VXLAN),
        lambda c: _site(c, org, tunnel=TunnelKind.VXLAN, inner=Inner.ETHERNET, site_mac=SITE_MAC),
        lambda c: _site(c, org, site_mac=SITE_MAC),  # a MAC without Ethernet inside
    ]
    for call in calls:
        refused(engine, InvalidInput, call)


def test_an_update_changes_the_framing_and_clears_a_mac_no_longer_used(engine: Engine) -> None:
    org = _org(engine, "a")
    site, _ = run(engine, lambda c: _site(c, org, "hq", 100))

    def update(**change: object) -> Callable[[Connection], Site]:
        return lambda c: sites.update_site(c, org, site.id, actor="t", now=LATER, **change)  # type: ignore[arg-type]

    refused(engine, InvalidInput, update(inner=Inner.ETHERNET))  # the MAC is required
    refused(engine, InvalidInput, update(site_mac=SITE_MAC))  # and only with Ethernet
    framed, left = run(engine, update(inner=Inner.ETHERNET, site_mac=SITE_MAC))
    assert left.kinds == ["net.site_updated"]
    assert _stored(engine, site.id) == ("ethernet", SITE_MAC)
    assert framed.gateway_mac == gateway_mac_of(site.id)
    same, left = run(engine, update(site_mac=SITE_MAC.upper()))
    assert (same, left.empty) == (framed, True)  # the same MAC: nothing written
    bare, _ = run(engine, update(inner=Inner.IP))
    assert (bare.inner, bare.site_mac, bare.gateway_mac) == (Inner.IP, None, None)
    assert _stored(engine, site.id) == ("ip", None)
    run(engine, update(inner=Inner.ETHERNET, site_mac=SITE_MAC))
    vxlan, _ = run(engine, update(tunnel=TunnelKind.VXLAN))  # VXLAN frames by itself
    assert (vxlan.port, vxlan.inner, vxlan.site_mac) == (4789, Inner.IP, None)
    assert _stored(engine, site.id) == ("ip", None)
    assert [(p.get("inner"), p.get("site_mac")) for p in _payloads(engine, f"site:{site.id}")] == [
        ("ip", None),
        ("ethernet", SITE_MAC),
        ("ip", None),
        ("ethernet", SITE_MAC),
        ("ip", None),
    ]
