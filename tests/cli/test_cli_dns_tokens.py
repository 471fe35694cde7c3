"""`ztsim dns device-tokens`: a token the CLI creates is the one a DNS gateway reading the
database knows; shown once; revoked by id or prefix; devices by IMEI or name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ztsim.clock import utc_now
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.node import platform as node

from support.leaks import LEAKS
from support.traces import Mark

Cli = Callable[..., tuple[int, str]]
IMEI = "490154203237518"  # a valid Luhn check digit


@pytest.fixture
def platform(org: list[str], tmp_path: Path) -> Iterator[node.Platform]:
    built = node.build(node.settings_from(None, data_dir=tmp_path / "data"))
    yield built
    built.engine.dispose()


def test_create_list_revoke(cli: Cli, platform: node.Platform) -> None:
    assert cli("identities", "create", "--name", "Ann", "--email", "ann@example.test")[0] == 0
    with platform.engine.begin() as conn:
        org_id = identities.find_org(conn, "acme").id
        ann = identities.list_identities(conn, org_id, kind=None, limit=10)[0][0].id
        device = inventory.register_device(
            conn,
            org_id,
            imei=IMEI,
            eid=None,
            owner_id=ann,
            name="Ann's phone",
            actor="t",
            now=utc_now(),
        )
    mark = Mark(platform.engine)
    code, output = cli("dns", "device-tokens", "create", "Ann's phone")
    assert code == 0, output
    (token,) = re.findall(r"ztdns_\S+", output)
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli dns device-tokens", output)  # shown once, at creation
    left = mark.left()
    assert left.kinds == ["dns.device_token.created"]
    (token_id,) = re.findall(r"Device token (\w+),", output)
    assert left.topics == [(Topic.DEVICE_TOKEN, token_id)]

    process = GatewayProcess(
        GatewayOptions(
            "127.0.0.1", 0, [], None, database=platform.engine, store_key=lambda: b"k" * 16
        ),
        None,
    )
    phone = process.gateway.identities.by_token(token)
    assert phone is not None
    assert (phone.device_id, phone.identity_id) == (device.id, ann)

    for width in (80, 100):
        code, output = cli("dns", "device-tokens", "list", columns=width)
        assert code == 0
        assert re.search(rf"^{re.escape(token[:8])}\s+{IMEI}\s.*\s{token_id}\s*$", output, re.M), (
            output
        )
        assert token not in output
        assert "1 device token\n" in output

    code, output = cli("dns", "device-tokens", "revoke", token)
    assert code == 1
    assert token not in output  # a pasted token is not echoed
    assert cli("dns", "device-tokens", "create", IMEI)[0] == 0  # by IMEI
    code, output = cli("dns", "device-tokens", "revoke", token_id)
    assert (code, output) == (0, f"Device token {token_id} is revoked.\n")
    process.reload()
    assert process.gateway.identities.by_token(token) is None
    code, output = cli("dns", "device-tokens", "list", columns=100)
    assert "revoked" in output
    assert "valid" in output
    assert "2 device tokens" in output


def test_unknown_device_is_one_line(cli: Cli, platform: node.Platform) -> None:
    code, output = cli("dns", "device-tokens", "create", "nothing", columns=40)
    assert (code, output) == (1, "error: no device 'nothing' in this org\n")
