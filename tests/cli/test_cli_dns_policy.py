"""`ztsim dns lists` and `ztsim dns settings`: through the API's use cases (what the API
then shows, what they record and publish), fleets by name, one-line errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ztsim.cli import lookup
from ztsim.dns.store import repository as repo
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.node import platform as node

from support.api import ApiHarness
from support.leaks import LEAKS
from support.traces import Mark

Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def platform(org: list[str], tmp_path: Path) -> Iterator[node.Platform]:
    built = node.build(node.settings_from(None, data_dir=tmp_path / "data"))
    yield built
    built.engine.dispose()


def _org_id(platform: node.Platform) -> str:
    with platform.engine.connect() as conn:
        return identities.find_org(conn, "acme").id


def test_lists_add_show_and_remove(cli: Cli, platform: node.Platform, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("0.0.0.0 ads.test\n0.0.0.0 tracker.test\nnot a hosts line at all\n")
    mark = Mark(platform.engine)
    code, output = cli("dns", "lists", "add", "Hosts-1", "--file", str(hosts), "--format", "HOSTS")
    assert code == 0, output
    assert "Added DNS list Hosts-1 (2 names, 1 bad line skipped)." in output
    assert re.search(r"line 3: ", output)
    left = mark.left()
    assert left.kinds == ["dns.list.created"]
    assert left.topics == [(Topic.DNS, _org_id(platform))]
    url = "https://lists.example.test/blocklist-with-a-rather-long-name.txt"
    assert cli("dns", "lists", "add", "remote", "--url", url)[0] == 0
    for width in (80, 100):
        code, output = cli("dns", "lists", "list", columns=width)
        assert code == 0
        assert re.search(rf"(^|\s){re.escape(url)}(\s|$)", output, re.M), output
        if width == 100:  # a table; at 80 the URL leaves room for records only
            assert re.search(r"^Hosts-1\s+2\s+1\s+uploaded", output, re.M), output
        assert "2 lists" in output

    assert cli("dns", "rules", "add", "uses", "--action", "block", "--list", "Hosts-1")[0] == 0
    code, output = cli("dns", "lists", "remove", "Hosts-1", columns=40)
    assert code == 1
    assert output == "error: the list is used by rules ['uses']\n"
    assert cli("dns", "rules", "remove", "uses")[0] == 0
    assert cli("dns", "lists", "remove", "Hosts-1") == (0, "Removed DNS list Hosts-1.\n")
    with platform.engine.connect() as conn:
        assert [s.name for s in repo.list_lists(conn, _org_id(platform))] == ["remote"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x"), "give exactly one of --file and --url"),
        (("add", "x", "--file", "/nonexistent/list.txt"), "cannot read the list file"),
        (("add", "x", "--url", "ftp://lists.example/x"), "not a valid http or https URL"),
        (("add", "no spaces please", "--url", "https://l.example/x"), "a name is 1-100"),
        (("remove", "nothing"), "no DNS list 'nothing' in this org"),
    ],
)
def test_list_errors_are_one_line(
    cli: Cli, platform: node.Platform, args: tuple[str, ...], message: str
) -> None:
    mark = Mark(platform.engine)
    code, output = cli("dns", "lists", *args, columns=40)
    assert code == 1
    assert re.fullmatch(r"error: [^\n]+\n", output), output
    assert message in output
    assert mark.left().empty


def test_settings_by_name_reach_the_api(cli: Cli, platform: node.Platform) -> None:
    assert cli("fleets", "create", "Meters")[0] == 0
    mark = Mark(platform.engine)
    code, output = cli(
        "dns",
        "settings",
        "set",
        "--privacy",
        "NONE",
        "--block-answer",
        "Block_Page",
        "--block-page-ipv4",
        "192.0.2.80",
        "--allow-list-only-fleet",
        "Meters",
        "--network",
        "127.0.9.0/24",
        "--pseudonymise",
    )
    assert code == 0, output
    assert output == "DNS settings saved: privacy none, block answer block_page.\n"
    left = mark.left()
    org_id = _org_id(platform)
    assert (left.kinds, left.topics) == (["dns.settings.updated"], [(Topic.DNS, org_id)])

    code, output = cli("dns", "settings", "show")
    assert code == 0
    assert re.search(r"^allow-list-only fleets\s+Meters\s*$", output, re.M), output
    assert re.search(r"^networks\s+127\.0\.9\.0/24\s*$", output, re.M)

    # Only what is given changes; --clear empties.
    assert cli("dns", "settings", "set", "--privacy", "all", "--clear", "networks")[0] == 0
    code, output = cli("tokens", "create", "--role", "auditor", "--name", "read")
    assert code == 0, output
    (token,) = re.findall(r"ztsim_\S+", output)
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli tokens create", output)  # shown once, at creation
    api = ApiHarness(platform.engine, platform.sealer)
    got = api.client.get("/api/v1/dns/settings", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    with platform.engine.connect() as conn:
        meters = lookup.collection(conn, org_id, "Meters", fleet=True).id
    assert got.json() == {
        "block_answer": "block_page",
        "block_page_ipv4": "192.0.2.80",
        "block_page_ipv6": None,
        "privacy": "all",
        "pseudonymise": True,
        "allow_list_only_fleets": [meters],
        "networks": [],
    }

    for args, message in (
        (("--allow-list-only-fleet", "Nope"), "no fleet named 'Nope'"),
        (("--block-page-ipv4", "2001:db8::1"), "is not an IPv4 address"),
        (("--network", "10.0.0.0/33"), "not a network"),
    ):
        mark = Mark(platform.engine)
        code, output = cli("dns", "settings", "set", *args, columns=40)
        assert code == 1
        assert re.fullmatch(r"error: [^\n]+\n", output), output
        assert message in output
        assert mark.left().empty


def test_lists_update_replaces_the_text_or_the_url_under_the_same_name(
    cli: Cli, platform: node.Platform, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("0.0.0.0 ads.test\n")
    assert cli("dns", "lists", "add", "ads", "--file", str(hosts), "--format", "hosts")[0] == 0
    assert cli("dns", "rules", "add", "uses", "--action", "block", "--list", "ads")[0] == 0
    with platform.engine.connect() as conn:
        (before,) = repo.list_lists(conn, _org_id(platform))
    hosts.write_text("0.0.0.0 one.test\n0.0.0.0 two.test\nnot a hosts line at all\n")
    mark = Mark(platform.engine)
    code, output = cli("dns", "lists", "update", "ads", "--file", str(hosts))
    assert code == 0, output
    assert "Updated DNS list ads (2 names, 1 bad line skipped)." in output
    assert re.search(r"^  line 3: ", output, re.M), output
    left = mark.left()
    assert left.kinds == ["dns.list.updated"]
    assert left.topics == [(Topic.DNS, _org_id(platform))]
    with platform.engine.connect() as conn:
        (after,) = repo.list_lists(conn, _org_id(platform))
    # Same id and name (the rule still names it), the format kept, the text counted again.
    assert (after.id, after.name, after.format) == (before.id, "ads", "hosts")
    assert (after.good_lines, after.bad_lines) == (2, 1)

    url = "https://lists.example.test/ads.txt"
    code, output = cli("dns", "lists", "update", before.id, "--url", url, "--format", "domains")
    assert (code, output) == (0, "Updated DNS list ads (the DNS gateway fetches the new URL).\n")
    with platform.engine.connect() as conn:
        (moved,) = repo.list_lists(conn, _org_id(platform))
    assert (moved.id, moved.url, moved.format, moved.refreshed_at) == (
        before.id,
        url,
        "domains",
        None,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("update", "x"), "give exactly one of --file and --url"),
        (("update", "x", "--file", "/nonexistent/list.txt"), "cannot read the list file"),
        (
            ("update", "nothing", "--url", "https://l.example/x"),
            "no DNS list 'nothing' in this org",
        ),
    ],
)
def test_lists_update_errors_are_one_line_and_change_nothing(
    cli: Cli, platform: node.Platform, args: tuple[str, ...], message: str
) -> None:
    mark = Mark(platform.engine)
    code, output = cli("dns", "lists", *args, columns=40)
    assert code == 1
    assert re.fullmatch(r"error: [^\n]+\n", output), output
    assert output.startswith(f"error: {message}")
    assert mark.left().empty
