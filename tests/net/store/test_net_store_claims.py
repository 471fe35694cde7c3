"""The net context's claims (SQLite and PostgreSQL): a VNI is one tunnel on the gateway,
unique across orgs; a network may not overlap another org's network, pool, gateway or DNS
network, nor a network of another site of the same org. A refusal because of another org
says only "already claimed": no org, site, network, kind or id of theirs."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Connection, Engine

from ztsim.db.engine import for_writing
from ztsim.dns.policy.rules import OrgSettings
from ztsim.dns.store.service import put_settings
from ztsim.errors import Conflict
from ztsim.identity import repository as identities
from ztsim.net.sites import Network, Site, TunnelKind
from ztsim.net.store import sites
from ztsim.net.store.claims import CLAIMED, VNI_CLAIMED
from ztsim.radius.store import registry
from ztsim.sealing import Sealer

from support.traces import refused, run
from tests_clock import NOW

CIDR = "10.20.0.0/16"


def _org(engine: Engine, slug: str) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, f"Org {slug}", slug, NOW).id


def _site(engine: Engine, org: str, name: str, vni: int) -> Site:
    def create(conn: Connection) -> Site:
        return sites.create_site(
            conn,
            org,
            name=name,
            tunnel=TunnelKind.GENEVE,
            endpoint="192.0.2.1",
            vni=vni,
            actor="t",
            now=NOW,
        )

    return run(engine, create)[0]  # type: ignore[no-any-return]


def _add(conn: Connection, org: str, site: Site, cidr: str, name: str = "lan") -> Network:
    return sites.add_network(conn, org, site.id, name=name, cidr=cidr, actor="t", now=NOW)


def _refused_as_claimed(engine: Engine, call: object, detail: str = CLAIMED) -> None:
    """Refused with exactly `detail`, and nothing written."""
    with pytest.raises(Conflict) as caught, for_writing(engine).begin() as conn:
        call(conn)  # type: ignore[operator]
    assert str(caught.value) == detail
    refused(engine, Conflict, call)  # type: ignore[arg-type]


@pytest.fixture
def two(engine: Engine) -> tuple[str, str]:
    return _org(engine, "mine"), _org(engine, "theirs")


def test_a_vni_is_unique_across_orgs(engine: Engine, two: tuple[str, str]) -> None:
    mine, theirs = two
    _site(engine, theirs, "secret-dc", 4242)
    create = lambda c: sites.create_site(  # noqa: E731
        c,
        mine,
        name="hq",
        tunnel=TunnelKind.VXLAN,
        endpoint="192.0.2.9",
        vni=4242,
        actor="t",
        now=NOW,
    )
    _refused_as_claimed(engine, create, VNI_CLAIMED)
    # Moving one's own site onto their VNI: refused alike.
    hq = _site(engine, mine, "hq", 4243)
    move = lambda c: sites.update_site(c, mine, hq.id, vni=4242, actor="t", now=NOW)  # noqa: E731
    _refused_as_claimed(engine, move, VNI_CLAIMED)


def test_an_orgs_own_vni_clash_names_its_site(engine: Engine, two: tuple[str, str]) -> None:
    mine, _ = two
    _site(engine, mine, "hq", 7)
    with pytest.raises(Conflict, match="vni 7 is already the tunnel of site 'hq'"):
        _site(engine, mine, "branch", 7)


@pytest.mark.parametrize(
    ("held", "wanted"),
    [
        (CIDR, CIDR),
        (CIDR, "10.20.5.0/24"),  # inside theirs
        (CIDR, "10.0.0.0/8"),  # around theirs
        (CIDR, "10.20.255.255"),  # one host of theirs
        ("2001:db8:20::/48", "2001:db8:20:1::/64"),
    ],
)
def test_a_network_overlapping_another_orgs_network_is_refused(
    engine: Engine, two: tuple[str, str], held: str, wanted: str
) -> None:
    mine, theirs = two
    their_site = _site(engine, theirs, "secret-dc", 1)
    run(engine, lambda c: _add(c, theirs, their_site, held, "payroll"))
    hq = _site(engine, mine, "hq", 2)
    _refused_as_claimed(engine, lambda c: _add(c, mine, hq, wanted))


def test_networks_next_to_another_orgs_are_taken(engine: Engine, two: tuple[str, str]) -> None:
    mine, theirs = two
    their_site = _site(engine, theirs, "dc", 1)
    run(engine, lambda c: _add(c, theirs, their_site, CIDR))
    hq = _site(engine, mine, "hq", 2)
    run(engine, lambda c: _add(c, mine, hq, "10.21.0.0/16", "a"))
    run(engine, lambda c: _add(c, mine, hq, "10.19.0.0/16", "b"))
    run(engine, lambda c: _add(c, mine, hq, "2001:db8::/32", "c"))  # another family


def test_a_network_overlapping_another_orgs_address_claims_is_refused(
    engine: Engine, two: tuple[str, str], sealer: Sealer
) -> None:
    """Pools, gateways and DNS networks: a route into a tunnel would take their traffic."""
    mine, theirs = two
    with for_writing(engine).begin() as conn:
        registry.create_pool(conn, theirs, cidr="10.64.0.0/16", static_cidr=None, now=NOW)
        registry.create_gateway(
            conn,
            sealer,
            theirs,
            name="pgw",
            address="198.51.100.0/28",
            secret="s" * 16,
            apns=["corp"],
            require_message_authenticator=True,
            coa_port=3799,
            now=NOW,
        )
        put_settings(conn, theirs, OrgSettings(), ("203.0.113.0/24",), actor="t", now=NOW)
    hq = _site(engine, mine, "hq", 2)
    for cidr in ("10.64.128.0/17", "198.51.100.8/29", "203.0.113.128/25"):
        _refused_as_claimed(engine, lambda c, cidr=cidr: _add(c, mine, hq, cidr))


def test_an_orgs_own_pool_is_not_a_claim_against_its_networks(
    engine: Engine, two: tuple[str, str]
) -> None:
    # As for the org's other claims: its own objects may overlap (only it is affected).
    mine, _ = two
    with for_writing(engine).begin() as conn:
        registry.create_pool(conn, mine, cidr="10.64.0.0/16", static_cidr=None, now=NOW)
    hq = _site(engine, mine, "hq", 2)
    run(engine, lambda c: _add(c, mine, hq, "10.64.0.0/24"))


def test_two_sites_of_one_org_may_not_overlap_and_the_refusal_names_its_network(
    engine: Engine, two: tuple[str, str]
) -> None:
    mine, _ = two
    hq, branch = _site(engine, mine, "hq", 1), _site(engine, mine, "branch", 2)
    run(engine, lambda c: _add(c, mine, hq, CIDR, "lan"))
    with pytest.raises(Conflict, match="overlaps network 'lan' of another site"):
        run(engine, lambda c: _add(c, mine, branch, "10.20.1.0/24", "shop"))
    # The same site may hold overlapping networks: its routes agree.
    run(engine, lambda c: _add(c, mine, hq, "10.20.1.0/24", "floor1"))


def test_a_refusal_names_nothing_of_the_other_org(engine: Engine, two: tuple[str, str]) -> None:
    mine, theirs = two
    their_site = _site(engine, theirs, "secret-dc", 99)
    theirs_lan, _ = run(engine, lambda c: _add(c, theirs, their_site, CIDR, "payroll"))
    hq = _site(engine, mine, "hq", 2)
    texts = []
    for call in (
        lambda c: _add(c, mine, hq, CIDR),
        lambda c: sites.update_site(c, mine, hq.id, vni=99, actor="t", now=NOW),
    ):
        with pytest.raises(Conflict) as caught, for_writing(engine).begin() as conn:
            call(conn)
        texts.append(str(caught.value))
    for text in texts:
        for secret in (
            theirs,
            "theirs",
            "secret-dc",
            "payroll",
            their_site.id,
            theirs_lan.id,
            CIDR,
        ):
            assert secret not in text


@pytest.mark.postgres
def test_claims_are_one_critical_section_on_postgresql(
    engine: Engine, two: tuple[str, str]
) -> None:
    """A claim waits for an uncommitted one, then sees it: no two overlapping networks."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing to race")
    mine, theirs = two
    their_site, hq = _site(engine, theirs, "dc", 1), _site(engine, mine, "hq", 2)
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                _add(conn, mine, hq, "10.20.7.0/24")
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    with engine.begin() as first:
        _add(first, theirs, their_site, CIDR)
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.3)
        assert racer.is_alive(), "the second claim did not wait for the first"
    racer.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], Conflict)
    assert str(outcome[0]) == CLAIMED


def test_another_orgs_address_claims_over_a_site_network_are_refused(
    engine: Engine, two: tuple[str, str], sealer: Sealer
) -> None:
    """The other direction: a pool, gateway or DNS network made later over a network
    behind another org's site is refused as well (the claims of `ztsim.sessions.claims`
    count site networks)."""
    mine, theirs = two
    hq = _site(engine, mine, "hq", 7)
    run(engine, lambda c: _add(c, mine, hq, "10.70.0.0/16"))
    _refused_as_claimed(
        engine,
        lambda c: registry.create_pool(c, theirs, cidr="10.70.4.0/24", static_cidr=None, now=NOW),
    )
    _refused_as_claimed(
        engine,
        lambda c: put_settings(c, theirs, OrgSettings(), ("10.70.9.0/24",), actor="t", now=NOW),
    )
    # The org's own pool may overlap its own site's network, as its other claims may.
    run(
        engine,
        lambda c: registry.create_pool(c, mine, cidr="10.70.8.0/24", static_cidr=None, now=NOW),
    )
