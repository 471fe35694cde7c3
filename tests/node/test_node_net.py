"""The net role as the composition root builds it: typed settings, the root-only rule of
`ztsim up`, and start/stop around a gateway namespace's table, its tunnels (a VXLAN site
made from the feed) and its audit (the NFLOG socket in the namespace, the orgs' privacy
modes read again on a DNS change), and the role's metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from ztsim.dns.policy.rules import OrgSettings
from ztsim.dns.store import service as dns_service
from ztsim.errors import InvalidInput
from ztsim.feed import outbox
from ztsim.net.netns import in_namespace_of
from ztsim.net.nflog import NflogError
from ztsim.net.nft import NftError, elements_of
from ztsim.net.nft_documents import NFLOG_GROUP
from ztsim.net.serve.nflog_socket import open_nflog
from ztsim.net.serve.tunnels import TunnelError
from ztsim.node.net import NetRole, NetSettings, should_run
from ztsim.sealing import Sealer

from support.net_role_world import add_rule, add_site, build_world, start_session
from support.netns_hosts import ip, netns_unusable, reap_stale

_SKIP = netns_unusable()
UNDERLAY = "198.18.0.1"


def test_settings_are_checked() -> None:
    assert NetSettings().reject
    assert NetSettings().audit
    assert NetSettings().underlay is None
    assert NetSettings(underlay=" 198.18.0.1 ").underlay == "198.18.0.1"
    assert NetSettings(underlay="::ffff:198.18.0.1").underlay == "198.18.0.1"
    for underlay in ("198.18.0.0/24", "gw.example", "224.0.0.1"):
        with pytest.raises(InvalidInput, match="endpoint"):
            NetSettings(underlay=underlay)
    for bad in ({"nft_timeout": 0.0}, {"nft_timeout": 61.0}, {"poll_seconds": -1.0}):
        with pytest.raises(InvalidInput):
            NetSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="nft_prefix"):
        NetSettings(nft_prefix=("ip", ""))


def test_up_starts_it_only_when_enabled_and_root() -> None:
    assert not should_run(NetSettings(), euid=0)
    assert not should_run(NetSettings(enabled=True), euid=1000)
    assert should_run(NetSettings(enabled=True), euid=0)


def test_a_kernel_that_cannot_be_reached_fails_the_start(engine: Engine) -> None:
    role = NetRole(engine, NetSettings(enabled=True, nft_prefix=("/nonexistent/ztsim-net",)))
    with pytest.raises(NftError, match="could not be started"):
        role.start()
    role.stop()  # harmless after a failed start
    assert role.audit is not None
    assert role.audit.reader is None  # never listened


@pytest.fixture
def namespace() -> Iterator[str]:
    if _SKIP:
        pytest.skip(_SKIP)
    reap_stale()
    name = f"ztsim-node-net-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "u0", "type", "veth", "peer", "name", "u1")
        ip("-n", name, "addr", "add", f"{UNDERLAY}/24", "dev", "u0")
        ip("-n", name, "link", "set", "u0", "up")
        yield name
    finally:
        ip("netns", "del", name, check=False)


def _links(namespace: str) -> dict[str, str]:
    """The namespace's devices -> their kind."""
    listing = json.loads(ip("-n", namespace, "-j", "-d", "link", "show"))
    return {str(i["ifname"]): str(i.get("linkinfo", {}).get("info_kind", "")) for i in listing}


def test_the_role_applies_the_table_and_follows_the_feed(
    engine: Engine, sealer: Sealer, namespace: str
) -> None:
    world = build_world(engine, sealer)
    add_site(engine, world, "172.31.77.0/24")
    add_rule(engine, world, "site", "allow", cidrs=["172.31.77.0/24"], protocol="tcp")
    start_session(engine, world, world.alice, "10.45.0.2")
    prefix = ("ip", "netns", "exec", namespace)
    settings = NetSettings(enabled=True, nft_prefix=prefix, underlay=UNDERLAY)
    role = NetRole(engine, settings)
    role.start()
    try:
        listing = role.state.nft.table()
        assert [e[0] for e in elements_of(listing, "subjects_v4")] == ["10.45.0.2"]
        assert elements_of(listing, "sites_v4") == [{"prefix": {"addr": "172.31.77.0", "len": 24}}]
        assert _links(namespace)["ztv4100"] == "vxlan"  # the site's tunnel, carried at load
        position = start_session(engine, world, world.bob, "10.45.0.3")
        assert role.wait_applied(position, 5.0)
        listing = role.state.nft.table()
        assert sorted(e[0] for e in elements_of(listing, "subjects_v4")) == [
            "10.45.0.2",
            "10.45.0.3",
        ]
        position = add_site(engine, world, "172.31.90.0/24", vni=4101, name="branch")
        assert role.wait_applied(position, 5.0)
        assert [e["prefix"]["addr"] for e in elements_of(role.state.nft.table(), "sites_v4")] == [
            "172.31.77.0",
            "172.31.90.0",
        ]
        assert _links(namespace)["ztv4101"] == "vxlan"  # from the feed

        # The audit listens in the namespace (a second listener there is refused), and
        # reads the privacy modes again when the role sees a DNS change.
        assert role.audit is not None
        with pytest.raises(NflogError, match="EPERM"):
            in_namespace_of(prefix, lambda: open_nflog(NFLOG_GROUP))
        assert not role.audit.privacy(world.org_id).pseudonymise
        with engine.begin() as conn:
            dns_service.put_settings(
                conn, world.org_id, OrgSettings(pseudonymise=True), (), actor="test",
                now=datetime.now(UTC),
            )  # fmt: skip
            position = outbox.position(conn)
        assert role.wait_applied(position, 5.0)
        assert role.audit.privacy(world.org_id).pseudonymise

        names = {f.name for f in role.collect()}
        assert {"ztsim_feed_position", "ztsim_net_nflog_total", "ztsim_net_denials_total"} <= names
        position_family = next(f for f in role.collect() if f.name == "ztsim_feed_position")
        assert position_family.samples[0].labels == (("role", "net"),)
        assert position_family.samples[0].value >= position
    finally:
        role.stop()
    assert "ztv4100" in _links(namespace)  # VXLAN devices stay for the next role


def test_an_underlay_on_no_device_fails_the_start(engine: Engine, namespace: str) -> None:
    prefix = ("ip", "netns", "exec", namespace)
    role = NetRole(engine, NetSettings(enabled=True, nft_prefix=prefix, underlay="198.18.9.9"))
    with pytest.raises(TunnelError, match="on no device"):
        role.start()
    # Nothing left running: the group is free again in the namespace.
    in_namespace_of(prefix, lambda: open_nflog(NFLOG_GROUP)).close()


def test_a_tunnel_failure_is_retried(engine: Engine, sealer: Sealer, namespace: str) -> None:
    """The underlay address goes away; a site declared meanwhile cannot be carried (the
    follower logs it and retries), and is carried once the address is back."""
    world = build_world(engine, sealer)
    prefix = ("ip", "netns", "exec", namespace)
    settings = NetSettings(enabled=True, nft_prefix=prefix, underlay=UNDERLAY, audit=False)
    role = NetRole(engine, settings)
    role.start()
    try:
        ip("-n", namespace, "addr", "del", f"{UNDERLAY}/24", "dev", "u0")
        position = add_site(engine, world, "172.31.77.0/24")
        assert not role.wait_applied(position, 1.0)  # refused, retried
        assert "ztv4100" not in _links(namespace)
        # The table took the site's prefix already: enforcement does not wait for tunnels.
        assert elements_of(role.state.nft.table(), "sites_v4")
        ip("-n", namespace, "addr", "add", f"{UNDERLAY}/24", "dev", "u0")
        assert role.wait_applied(position, 5.0)
        assert _links(namespace)["ztv4100"] == "vxlan"
    finally:
        role.stop()
