"""`ztsim dns rules`: a rule the CLI writes is the rule the API lists, the policy loader
reads and a DNS gateway reading the database applies; subjects by email and name; the
order; one-line errors; tables that never cut an email."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ztsim.cli import lookup
from ztsim.dns.engine import Answer, Forward
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.store import policy_view
from ztsim.dns.wire.constants import EdeCode
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, decode_message
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.node import platform as node

from support.api import ApiHarness
from support.leaks import LEAKS
from support.traces import Mark

Cli = Callable[..., tuple[int, str]]
LONG_EMAIL = "maximilian.alexander.johannson-bergstrom@subsidiary.example-corp.test"


@pytest.fixture
def platform(org: list[str], tmp_path: Path) -> Iterator[node.Platform]:
    built = node.build(node.settings_from(None, data_dir=tmp_path / "data"))
    yield built
    built.engine.dispose()


def _people(cli: Cli, tmp_path: Path) -> None:
    for args in (
        ("identities", "create", "--name", "Ann Lee", "--email", "ann@example.test"),
        ("identities", "create", "--name", "Max", "--email", LONG_EMAIL),
        ("groups", "create", "Sales"),
        ("groups", "add", "Sales", "Ann Lee"),
        ("fleets", "create", "Meters"),
    ):
        code, output = cli(*args)
        assert code == 0, (args, output)
    (tmp_path / "ads.txt").write_text("||ads.test^\n||tracker.test^\n")
    code, output = cli("dns", "lists", "add", "ads", "--file", str(tmp_path / "ads.txt"))
    assert code == 0, output
    assert "Added DNS list ads (2 names)." in output


def _step(process: GatewayProcess, name: str) -> Answer | Forward | None:
    who = process.gateway.identities.by_source("127.0.9.7")  # the org's network default
    query = Message(id=7, flags=Flag.RD, questions=(Question(name, 1),), edns=Edns())
    return process.gateway.engine.handle(query.to_wire(), who, 0.0, udp=True)


def _ask(process: GatewayProcess, name: str) -> Message:
    step = _step(process, name)
    assert isinstance(step, Answer), step
    return decode_message(step.wire)


def _admin_token(cli: Cli) -> str:
    code, output = cli("tokens", "create", "--role", "admin", "--name", "rules-test")
    assert code == 0, output
    token: str = re.findall(r"ztsim_\S+", output)[0]
    LEAKS.add_secret(token)
    LEAKS.allow_once("cli tokens create", output)  # shown once, at creation
    return token


def test_cli_rules_are_what_the_api_lists_and_the_gateway_applies(
    cli: Cli, platform: node.Platform, tmp_path: Path
) -> None:
    _people(cli, tmp_path)
    steps = [
        ("sales-ads", "--action", "block", "--list", "ads", "--group", "Sales"),
        ("intranet", "--action", "OVERRIDE", "--domain", "intranet.test"),
        ("everyone-ads", "--action", "Block", "--list", "ads", "--position", "1"),
        ("max-only", "--action", "allow", "--domain", "ok.test", "--identity", LONG_EMAIL),
    ]
    for name, *args in steps:
        extra = ["--answer", "192.0.2.7"] if name == "intranet" else []
        code, output = cli("dns", "rules", "add", name, *args, *extra)
        assert code == 0, output
    assert "Added DNS rule max-only (allow) at place 4." in output
    code, output = cli("dns", "settings", "set", "--network", "127.0.9.0/24", "--privacy", "ALL")
    assert code == 0, output

    with platform.engine.connect() as conn:
        org_id = identities.find_org(conn, "acme").id
        ann = lookup.identity_id(conn, org_id, "ann@example.test")
        sales = lookup.collection(conn, org_id, "Sales", fleet=False).id
    api = ApiHarness(platform.engine, platform.sealer)
    auth = {"Authorization": f"Bearer {_admin_token(cli)}"}
    listed = api.client.get("/api/v1/dns/rules", headers=auth).json()
    assert [r["name"] for r in listed] == ["everyone-ads", "sales-ads", "intranet", "max-only"]
    assert listed[1]["groups"] == [sales]
    assert listed[1]["lists"] == ["ads"]
    assert listed[2]["answer"] == ["192.0.2.7"]
    settings = api.client.get("/api/v1/dns/settings", headers=auth).json()
    assert (settings["privacy"], settings["networks"]) == ("all", ["127.0.9.0/24"])

    with platform.engine.connect() as conn:
        data, defaults = policy_view.load_policy(conn)
    loaded = data.orgs[org_id].rules
    assert [r.id for r in loaded] == ["everyone-ads", "sales-ads", "intranet", "max-only"]
    assert loaded[1].groups == (sales,)
    assert [d.cidr for d in defaults] == ["127.0.9.0/24"]

    process = GatewayProcess(
        GatewayOptions(
            "127.0.0.1", 0, [], None, database=platform.engine, store_key=lambda: b"k" * 16
        ),
        None,
    )
    blocked = _ask(process, "x.ads.test")
    assert blocked.edns is not None
    assert [(e.info_code, e.extra_text) for e in blocked.edns.extended_errors()] == [
        (EdeCode.BLOCKED, "blocked by rule everyone-ads")
    ]
    assert _ask(process, "intranet.test").answers[0].rdata == bytes([192, 0, 2, 7])

    # Moved after the override and narrowed to Ann: the network's sources are not blocked.
    code, output = cli("dns", "rules", "move", "everyone-ads", "--after", "intranet")
    assert code == 0, output
    assert "DNS rule everyone-ads is now at place 3." in output
    code, output = cli("dns", "rules", "update", "everyone-ads", "--identity", "Ann Lee")
    assert code == 0, output
    listed = api.client.get("/api/v1/dns/rules", headers=auth).json()
    assert [r["name"] for r in listed] == ["sales-ads", "intranet", "everyone-ads", "max-only"]
    assert (listed[2]["identities"], listed[2]["lists"]) == ([ann], ["ads"])  # lists kept
    process.reload()
    assert isinstance(_step(process, "x.ads.test"), Forward)  # to the upstreams


def test_order_update_remove_and_what_they_publish(
    cli: Cli, platform: node.Platform, tmp_path: Path
) -> None:
    _people(cli, tmp_path)
    for name in ("a", "b", "c"):
        assert (
            cli("dns", "rules", "add", name, "--action", "block", "--domain", f"{name}.test")[0]
            == 0
        )
    mark = Mark(platform.engine)
    code, output = cli("dns", "rules", "move", "c", "--to", "1")
    assert code == 0, output
    left = mark.left()
    with platform.engine.connect() as conn:
        org_id = identities.find_org(conn, "acme").id
    assert set(left.topics) == {(Topic.DNS, org_id)}  # one use case, however many rules moved
    assert left.kinds.count("dns.rule.updated") >= 1
    code, output = cli("dns", "rules", "move", "a", "--before", "c")
    assert code == 0, output
    code, output = cli("dns", "rules", "list", columns=100)
    assert re.findall(r"^(\d)\s+(\w)\s", output, re.M) == [("1", "a"), ("2", "c"), ("3", "b")]
    assert "3 rules" in output

    code, output = cli(
        "dns", "rules", "update", "b", "--qtype", "aaaa", "--qtype", "65", "--category", "MALWARE"
    )
    assert code == 0, output
    code, output = cli("dns", "rules", "update", "b", "--clear", "DOMAINS", "--name", "b2")
    assert code == 0, output
    code, output = cli("dns", "rules", "list", columns=100)
    assert "category:malware, type:AAAA, type:HTTPS" in output
    assert "b.test" not in output
    assert "everyone" in output

    mark = Mark(platform.engine)
    code, output = cli("dns", "rules", "remove", "b2")
    assert (code, output) == (0, "Removed DNS rule b2.\n")
    assert mark.left().kinds == ["dns.rule.deleted"]
    assert "1 rule\n" not in cli("dns", "rules", "list")[1]
    assert cli("dns", "rules", "remove", "a")[0] == 0
    assert "1 rule\n" in cli("dns", "rules", "list")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x", "--action", "block", "--list", "missing"), "no such DNS lists"),
        (("add", "x", "--action", "block", "--group", "Nobody"), "no group named 'Nobody'"),
        (("add", "x", "--action", "block", "--identity", "no@x.test"), "no identity"),
        (("add", "x", "--action", "override", "--domain", "a.test"), "needs an answer"),
        (("add", "x", "--action", "block", "--qtype", "NOPE"), "unknown query type 'NOPE'"),
        (("add", "bad name with spaces", "--action", "block"), "a name is 1-100 letters"),
        (("add", "x", "--action", "block", "--domain", "not a name"), "rule x: 'not a name'"),
        (("move", "nothing-here", "--to", "1"), "no DNS rule 'nothing-here'"),
        (("move", "x"), "give exactly one of --to, --before and --after"),
        (("remove", "[bold]x"), "no DNS rule '[bold]x' in this org"),
    ],
)
def test_errors_are_one_line_and_leave_nothing(
    cli: Cli, platform: node.Platform, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    _people(cli, tmp_path)
    assert cli("dns", "rules", "add", "x-exists", "--action", "block", "--domain", "x.test")[0] == 0
    mark = Mark(platform.engine)
    code, output = cli("dns", "rules", *args, columns=40)
    assert code == 1
    assert re.fullmatch(r"error: [^\n]+\n", output), output
    assert message in output
    assert mark.left().empty


def test_rule_tables_never_cut_an_email(cli: Cli, platform: node.Platform, tmp_path: Path) -> None:
    _people(cli, tmp_path)
    args = ("--action", "block", "--list", "ads", "--identity", LONG_EMAIL, "--group", "Sales")
    assert cli("dns", "rules", "add", "long-subject", *args)[0] == 0
    assert cli("dns", "rules", "add", "ann", "--action", "block", "--identity", "ann")[0] == 1
    assert cli("dns", "rules", "add", "ann", "--action", "block", "--identity", "Ann Lee")[0] == 0
    for width in (80, 100, 160):
        code, output = cli("dns", "rules", "list", columns=width)
        assert code == 0
        assert all(len(line) <= width for line in output.splitlines()), output
        assert re.search(rf"(^|\s){re.escape(LONG_EMAIL)}(,|\s|$)", output, re.M), (width, output)
        assert "ann@example.test" in output
        assert "group:Sales" in output
        assert "…" not in output
        assert "2 rules" in output


def test_requirements_set_kept_and_cleared(
    cli: Cli, platform: node.Platform, tmp_path: Path
) -> None:
    _people(cli, tmp_path)
    code, output = cli(
        "dns", "rules", "add", "finance", "--action", "block", "--domain", ".finance.test",
        "--posture", "!managed-modern", "--sim", "sim.swap_age <  24h",
        "--identity-kind", "USER",
    )  # fmt: skip
    assert code == 0, output
    with platform.engine.connect() as conn:
        org_id = identities.find_org(conn, "acme").id
        [rule] = policy_view.load_policy(conn)[0].orgs[org_id].rules
    assert (rule.posture, rule.sim, rule.identity_kinds) == (
        ("!managed-modern",),
        ("sim.swap_age <  24h",),
        ("user",),
    )
    code, output = cli("dns", "rules", "list")
    assert code == 0, output
    # Whom it names, then what must hold for them.
    assert "identity-kind:user if posture:!managed-modern" in " ".join(output.split()), output
    code, output = cli("dns", "rules", "update", "finance", "--posture", "modern", "--clear", "SIM")
    assert code == 0, output
    with platform.engine.connect() as conn:
        [rule] = policy_view.load_policy(conn)[0].orgs[org_id].rules
    assert (rule.posture, rule.sim, rule.identity_kinds) == (("modern",), (), ("user",))
    code, output = cli("dns", "rules", "update", "finance", "--clear", "identity-kinds")
    assert code == 0, output
    for bad, message in ((("--sim", "device.managed"), "cannot be used here"),
                         (("--posture", "Bad Name"), "posture check name")):  # fmt: skip
        code, output = cli("dns", "rules", "update", "finance", *bad)
        assert (code, message in output) == (1, True), output
    with platform.engine.connect() as conn:
        [rule] = policy_view.load_policy(conn)[0].orgs[org_id].rules
    assert (rule.posture, rule.identity_kinds, rule.domains) == (
        ("modern",),
        (),
        (".finance.test",),
    )
