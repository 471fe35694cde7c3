"""`ztsim sites` and `ztsim networks`: create, list and delete by name, each change on the
feed as the org's `net` topic; a Geneve site with Ethernet inside, ztsim's MAC on it
printed for the site's operator; errors are one line and exit code 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from ztsim.db import schema
from ztsim.db.engine import make_engine
from ztsim.feed.change import Topic
from ztsim.net.sites import gateway_mac_of

from support.traces import Mark

Cli = Callable[..., tuple[int, str]]


def test_sites_and_networks(cli: Cli, org: list[str], tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        org_id = conn.execute(select(schema.orgs.c.id)).scalar_one()
    mark = Mark(engine)
    code, output = cli(
        "sites", "create", "--name", "hq", "--endpoint", "192.0.2.10", "--vni", "100"
    )
    assert code == 0, output
    assert "Created site hq: geneve to 192.0.2.10 port 6081, VNI 100." in output
    args = ("--endpoint", "2001:db8::1", "--vni", "101", "--tunnel", "VXLAN")
    code, output = cli("sites", "create", "--name", "branch", *args)
    assert code == 0, output
    assert "vxlan to 2001:db8::1 port 4789" in output

    assert cli("networks", "add", "hq", "10.1.0.0/16", "--name", "lan")[0] == 0
    assert cli("networks", "add", "branch", "10.2.0.0/16", "--name", "shop")[0] == 0
    code, output = cli("networks", "add", "branch", "10.1.5.0/24", "--name", "clash")
    assert code == 1
    assert "overlaps network 'lan' of another site" in output
    code, output = cli("networks", "add", "nowhere", "10.9.0.0/16", "--name", "x")
    assert (code, "no site 'nowhere'" in output) == (1, True)

    code, output = cli("sites", "list", columns=120)
    assert code == 0, output
    assert "2 sites" in output
    hq_row = next(line for line in output.splitlines() if line.startswith("hq"))
    assert hq_row.split() == ["hq", "geneve", "ip", "192.0.2.10", "6081", "100", "1"]
    code, output = cli("networks", "list", "--site", "hq")
    assert "lan" in output
    assert "shop" not in output
    assert "1 network\n" in output
    assert "2 networks" in cli("networks", "list")[1]

    code, output = cli("sites", "delete", "hq")
    assert code == 1
    assert "delete them first" in output
    code, output = cli("sites", "delete", "hq", "--force")
    assert code == 0, output
    assert "Deleted site hq and 1 network." in output
    code, output = cli("networks", "delete", "shop")
    assert (code, "Deleted network shop (10.2.0.0/16)." in output) == (0, True)
    assert cli("networks", "delete", "shop")[0] == 1
    assert cli("sites", "delete", "branch")[0] == 0
    assert "0 sites" in cli("sites", "list")[1]

    left = mark.left()
    assert set(left.topics) == {(Topic.NET, org_id)}
    assert left.kinds == [
        "net.site_created",
        "net.site_created",
        "net.network_added",
        "net.network_added",
        "net.network_deleted",
        "net.site_deleted",
        "net.network_deleted",
        "net.site_deleted",
    ]
    engine.dispose()


def test_invalid_values_are_one_line_errors(cli: Cli, org: list[str]) -> None:
    base = ("sites", "create", "--name", "hq", "--vni", "100")
    code, output = cli(*base, "--endpoint", "224.0.0.1")
    assert (code, output.count("\n")) == (1, 1)
    assert "multicast" in output
    code, output = cli(*base, "--endpoint", "192.0.2.1", "--tunnel", "gre")
    assert code == 1
    assert "one of geneve, vxlan" in output
    code, output = cli("sites", "create", "--name", "hq", "--endpoint", "192.0.2.1", "--vni", "0")
    assert code == 2  # out of range: refused by the option itself


def test_a_geneve_site_with_ethernet_inside(cli: Cli, org: list[str], tmp_path: Path) -> None:
    base = ("sites", "create", "--name", "ovs", "--endpoint", "192.0.2.2", "--vni", "4242")
    code, output = cli(*base, "--inner", "ethernet", "--site-mac", "AA:BB:CC:00:00:01", columns=200)
    assert code == 0, output
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    with engine.connect() as conn:
        site_id = conn.execute(select(schema.net_sites.c.id)).scalar_one()
    engine.dispose()
    mac = gateway_mac_of(site_id)
    assert "Created site ovs: geneve to 192.0.2.2 port 6081, VNI 4242." in output
    # What the site's operator needs: ztsim's MAC, for a permanent neighbour entry.
    assert f"Ethernet inside, frames to aa:bb:cc:00:00:01 from ztsim's MAC {mac}." in output
    assert "Give ztsim's MAC a permanent neighbour entry at the site" in output
    code, output = cli("sites", "list", columns=120)
    ovs_row = next(line for line in output.splitlines() if line.startswith("ovs"))
    assert ovs_row.split() == ["ovs", "geneve", "ethernet", "192.0.2.2", "6081", "4242", "0"]
    plain = ("sites", "create", "--name", "hq", "--endpoint", "192.0.2.3", "--vni", "1")
    code, output = cli(*plain)
    assert (code, "ztsim's MAC" in output) == (0, False)


def test_ethernet_inside_that_cannot_be_is_a_one_line_error(cli: Cli, org: list[str]) -> None:
    base = ("sites", "create", "--name", "ovs", "--endpoint", "192.0.2.2", "--vni", "4242")
    for more, why in [
        (("--inner", "ethernet"), "site_mac is required with inner ethernet"),
        (("--inner", "ethernet", "--site-mac", "aa:bb"), "a MAC address like"),
        (("--inner", "mpls"), "inner must be one of ip, ethernet"),
        (("--site-mac", "aa:bb:cc:00:00:01"), "site_mac is only for inner ethernet"),
        (
            ("--tunnel", "vxlan", "--inner", "ethernet", "--site-mac", "aa:bb:cc:00:00:01"),
            "inner ethernet is for geneve sites",
        ),
    ]:
        code, output = cli(*base, *more)
        assert (code, output.count("\n")) == (1, 1), output
        assert why in output
    assert "0 sites" in cli("sites", "list")[1]
