"""The policy file: loaded with errors that name the line, dumped so that export then apply is
a no-op, and described by the JSON Schema checked in beside it (`document` with the modules
it is made of: `file_reader`, `file_schema`, `durations`)."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy import checks, document, durations, file_schema
from ztsim.policy.checks import PostureCheck
from ztsim.policy.rules import TARGET_FIELDS, Plane, PolicyRule

POLICY = """\
version: 1
checks:
  - name: managed
    expression: device.managed and device.os_version >= "17.0"
    max_age: 24h
  - name: jailbroken
    expression: device.jailbroken
rules:
  dns:
    - name: no-social
      action: block
      domains: [.social.example]
  network:
    - name: finance
      action: allow
      groups: [finance]
      posture: [managed, "!jailbroken"]
      sim: ["sim.swap_age > 24h"]
      cidrs: [10.1.0.0/16]
      protocol: tcp
      ports: ["443", 8000-8100]
  attach:
    - name: "on"
      action: deny
      apns: [Corp.Example]
"""


def _error(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        document.load(text, "policy.yaml")
    return str(caught.value)


def test_a_file_loads_into_checks_and_ordered_rules() -> None:
    doc = document.load(POLICY)
    assert [c.name for c in doc.checks] == ["jailbroken", "managed"]
    assert doc.check_map["managed"].max_age == timedelta(hours=24)
    assert doc.check_map["jailbroken"].max_age == checks.DEFAULT_MAX_AGE
    assert [(r.plane, r.name) for r in doc.rules] == [
        (Plane.DNS, "no-social"),
        (Plane.NETWORK, "finance"),
        (Plane.ATTACH, "on"),  # quoted: a plain `on` would be YAML's true
    ]
    finance = doc.rules_of(Plane.NETWORK)[0]
    assert finance.to_spec()["ports"] == ["443", "8000-8100"]
    assert [str(p) for p in finance.selector.posture] == ["managed", "!jailbroken"]


def test_dump_reads_back_as_the_same_document_and_is_stable() -> None:
    doc = document.load(POLICY)
    text = document.dump(doc)
    assert text.startswith("# ")
    again = document.load(text)
    assert again == doc
    assert again.revision == doc.revision
    assert document.dump(again) == text
    assert "max_age: 1d" in text
    assert "name: 'on'" in text


def test_an_empty_policy_dumps_and_loads() -> None:
    empty = document.Document()
    assert document.load(document.dump(empty)) == empty
    assert empty.to_json() == {
        "version": 1,
        "checks": [],
        "rules": {"dns": [], "network": [], "attach": []},
    }


def test_a_long_list_is_written_one_item_a_line() -> None:
    domains = [f".host-number-{i}.example" for i in range(8)]
    rule = PolicyRule.from_spec("dns", "many", "block", {"domains": domains})
    text = document.dump(document.Document(rules=(rule,)))
    assert "      domains:\n        - .host-number-0.example\n" in text
    assert document.load(text).rules == (rule,)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("8000-8100]", "8000-70000]", "policy.yaml:21: rule finance: port '8000-70000'"),
        ("protocol: tcp", "protocol: icmp", "policy.yaml:21: rule finance: ports: only with"),
        ("      protocol: tcp\n", "", "policy.yaml:20: rule finance: ports: only with"),
        ("protocol: tcp", "protocol: tcp\n      protocol: udp", "policy.yaml:21: 'protocol' given"),
        ("apns:", "apn:", "policy.yaml:25: attach rule: unknown key 'apn'"),
        ("cidrs:", "apns:", "policy.yaml:19: network rule: unknown key 'apns'"),
        ('"!jailbroken"', "nobody", "policy.yaml:17: rule finance: posture: no check 'nobody'"),
        ("max_age: 24h", "max_age: 24y", "policy.yaml:5: posture check managed: max_age '24y'"),
        ("device.jailbroken", "sim.kind", "policy.yaml:7: posture check jailbroken: condition"),
        ("  - name: jailbroken", "  - name: managed", "policy.yaml:6: posture check managed: the"),
        (
            "action: deny",
            "action: block",
            "policy.yaml:24: rule on: the attach plane's actions are",
        ),
        ("name: finance", "name: bad name", "policy.yaml:14: rule name 'bad name'"),
        ("version: 1", "version: 2", "policy.yaml:1: version: 1"),
        ("rules:", "rulez:", "policy.yaml:9: the policy: unknown key 'rulez'"),
        # No `action` to point at: the rule's own line.
        ("      action: block\n", "", "policy.yaml:10: dns rule: action: required text"),
    ],
)
def test_errors_name_the_line(old: str, new: str, expected: str) -> None:
    assert old in POLICY
    assert _error(POLICY.replace(old, new, 1)).startswith(expected)


def test_duplicate_rule_names_and_bad_yaml_are_refused() -> None:
    twice = POLICY.replace('    - name: "on"', "    - name: x\n      action: allow\n    - name: x")
    assert _error(twice) == "policy.yaml:25: attach rule x: the name is used twice"
    assert _error("version: 1\nchecks: [\n").startswith("policy.yaml:3: not YAML")
    assert _error("") == "policy.yaml:1: the file is empty (a policy starts with `version: 1`)"
    assert _error("- 1\n") == "policy.yaml:1: the policy: a mapping of version, checks, rules"
    assert _error("version: 1\n1: x\n") == "policy.yaml:2: keys are text"


def test_a_rule_may_require_no_recent_swap() -> None:
    cooled = POLICY.replace('["sim.swap_age > 24h"]', '["not sim.swap_recent"]', 1)
    doc = document.load(cooled)
    finance = doc.rules_of(Plane.NETWORK)[0]
    assert [c.text for c in finance.selector.sim] == ["not sim.swap_recent"]
    assert document.load(document.dump(doc)) == doc
    typo = cooled.replace("sim.swap_recent", "sim.swap_recently", 1)
    assert _error(typo) == (
        "policy.yaml:18: rule finance: condition 'not sim.swap_recently': "
        "no such fact sim.swap_recently at column 5"
    )


def test_a_dns_rule_is_checked_by_the_callers_check_at_its_line() -> None:
    def no_lists(rule: PolicyRule) -> None:
        raise InvalidInput("lists: nothing here")

    with pytest.raises(InvalidInput, match=r"^p.yaml:10: rule no-social: lists: nothing here$"):
        document.load(POLICY, "p.yaml", check_dns=no_lists)
    assert document.load(POLICY, check_dns=lambda rule: None).rules


def test_from_json_reads_the_canonical_form_without_lines() -> None:
    doc = document.load(POLICY)
    assert document.from_json(doc.to_json()) == doc
    bad = doc.to_json()
    bad["rules"]["network"][0]["protocol"] = "icmp"
    with pytest.raises(InvalidInput, match=r"^document: rule finance: ports"):
        document.from_json(bad, "document")


def test_a_document_checks_itself() -> None:
    rule = PolicyRule.from_spec("network", "r", "allow", {"posture": ["gone"]})
    with pytest.raises(InvalidInput, match="no posture check 'gone'"):
        document.Document(rules=(rule,))
    with pytest.raises(InvalidInput, match="unique"):
        document.Document(checks=(PostureCheck("a", "device.x"), PostureCheck("a", "device.y")))
    with pytest.raises(InvalidInput, match="second network rule"):
        document.Document(rules=(PolicyRule.from_spec("network", "r", "allow", {}),) * 2)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800)]
)
def test_durations_read_and_write_in_their_largest_unit(text: str, seconds: int) -> None:
    value = durations.parse_duration(text)
    assert value == timedelta(seconds=seconds)
    assert durations.parse_duration(durations.format_duration(value)) == value
    assert durations.format_duration(timedelta(minutes=90)) == "90m"
    with pytest.raises(InvalidInput):
        durations.parse_duration("1h30m")


def test_the_checked_in_schema_is_the_generated_one() -> None:
    checked_in = resources.files("ztsim.policy").joinpath("policy.schema.json").read_text()
    assert checked_in == file_schema.schema_text(), "regenerate: ztsim policy schema > it"
    schema = json.loads(checked_in)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for plane in Plane:
        rule = schema["$defs"][f"{plane.value}_rule"]
        assert set(TARGET_FIELDS[plane]) <= set(rule["properties"])
        assert rule["additionalProperties"] is False
        others = {f for p in Plane if p is not plane for f in TARGET_FIELDS[p]}
        assert not others & set(rule["properties"]) - set(TARGET_FIELDS[plane])
