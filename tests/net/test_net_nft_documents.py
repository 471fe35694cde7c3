"""The nft JSON commands' shape (the kernel reads them back in test_net_nft.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ztsim.errors import InvalidInput
from ztsim.net import nft_documents as docs
from ztsim.net import nft_names as names
from ztsim.net.ruleset import flatten
from ztsim.policy.rules import PolicyRule

SITE = [
    PolicyRule.from_spec("network", "site", "allow", {"cidrs": ["10.9.0.0/16"], "protocol": "tcp"})
]


def verbs(commands: list[names.Command]) -> list[tuple[str, str]]:
    return [(verb, next(iter(body))) for command in commands for verb, body in command.items()]


def test_class_names_are_checked() -> None:
    assert names.class_chain("p1_c7") == "class_p1_c7"
    assert names.class_map("p1_c7", 6) == "class_p1_c7_v6"
    for bad in ("", "a-b", "a b", "x" * 49, "é"):
        with pytest.raises(InvalidInput, match="class name"):
            names.class_chain(bad)


def test_replacing_a_class_flushes_only_its_own_chain_and_maps() -> None:
    commands = docs.replace_class("staff", flatten(SITE))
    touched = {
        body["name"]
        for c in commands
        for body in (next(iter(v.values())) for v in c.values())
        if "name" in body
    }
    touched |= {
        body["chain"]
        for c in commands
        for body in (next(iter(v.values())) for v in c.values())
        if "chain" in body
    }
    assert touched == {"class_staff", "class_staff_v4", "class_staff_v6"}
    assert ("flush", "map") in verbs(commands)
    assert ("flush", "chain") in verbs(commands)
    # No v6 element command: nft refuses an empty one.
    adds = [c["add"]["element"]["name"] for c in commands if "element" in c.get("add", {})]
    assert adds == ["class_staff_v4"]


def test_a_class_denies_last_with_a_counter() -> None:
    last = docs.replace_class("c", flatten([]))[-1]
    assert last["add"]["rule"]["expr"] == [{"counter": None}, {"drop": None}]
    commands = docs.replace_class("c", flatten([]), reject=True)
    assert commands[-1]["add"]["rule"]["expr"] == [
        {"counter": None},
        {"goto": {"target": "refuse"}},
    ]
    # TCP is refused with a reset (the kernel rate-limits ICMP errors), the rest with ICMP.
    refusals = _rules_of(commands, "refuse")
    assert refusals[0][-1] == {"reject": {"type": "tcp reset"}}
    assert refusals[1] == [{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]


def test_moving_a_subject_deletes_before_it_adds() -> None:
    commands = docs.set_subjects({"10.45.0.2": "b", "fd00::2": "b"}, remove=["10.45.0.2"])
    assert verbs(commands) == [("delete", "element"), ("add", "element"), ("add", "element")]
    assert commands[1]["add"]["element"]["name"] == "subjects_v4"
    assert commands[1]["add"]["element"]["elem"] == [["10.45.0.2", {"jump": {"target": "class_b"}}]]
    assert commands[2]["add"]["element"]["name"] == "subjects_v6"
    with pytest.raises(InvalidInput, match="not an IPv4 or IPv6 address"):
        docs.set_subjects(remove=["10.45.0"])


def test_the_whole_table_replaces_itself_atomically_and_is_json() -> None:
    commands = docs.whole_table({"staff": flatten(SITE)}, {"10.45.0.2": "staff"})
    assert verbs(commands)[:3] == [("add", "table"), ("delete", "table"), ("add", "table")]
    hook = [
        c["add"]["chain"]
        for c in commands
        if "chain" in c.get("add", {}) and "hook" in c["add"]["chain"]
    ]
    assert hook == [{**hook[0], "name": "forward", "hook": "forward", "type": "filter"}]
    # The subjects' jumps come after the chains they name.
    order = verbs(commands)
    assert order.index(("add", "chain")) < len(order) - 1 - order[::-1].index(("add", "element"))
    json.dumps(docs.batch(commands))
    with pytest.raises(InvalidInput, match="not in the table"):
        docs.whole_table({}, {"10.45.0.2": "staff"})


def _rules_of(commands: list[names.Command], chain: str) -> list[list[dict[str, Any]]]:
    return [
        c["add"]["rule"]["expr"]
        for c in commands
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def test_every_deny_is_logged_to_nflog_first_rate_limited_without_a_verdict() -> None:
    for chain, commands in (
        ("class_staff", docs.replace_class("staff", flatten(SITE))),
        ("forward", docs.whole_table({}, {}, sites=["10.9.0.0/16"])),
    ):
        rules = _rules_of(commands, chain)
        denies = [i for i, expr in enumerate(rules) if {"counter": None} in expr]
        assert denies
        for i in denies:
            logged = rules[i - 1]
            assert logged[:-2] == rules[i][:-2]  # the same match
            limit, log = logged[-2:]
            assert limit == {
                "limit": {"rate": docs.LOG_RATE, "per": "second", "burst": docs.LOG_BURST}
            }
            assert log == {"log": {"prefix": chain, "group": docs.NFLOG_GROUP}}
            assert not any(k in e for e in logged for k in ("drop", "reject", "accept"))
    assert docs.NFLOG_GROUP == 5701  # the contract with the audit reader


def test_the_forward_chain_judges_only_traffic_towards_and_from_the_sites() -> None:
    rules = _rules_of(docs.whole_table({}, {}, sites=["10.9.0.0/16"]), "forward")
    assert rules[0][-1] == {"accept": None}  # established and related first
    sets = [
        (m["match"]["left"]["payload"]["field"], m["match"]["right"])
        for expr in rules[1:]
        for m in expr
        if "match" in m
    ]
    # Towards a site: looked up by source; no class, denied; from a site: denied.
    assert sets[:2] == [("daddr", "@sites_v4"), ("daddr", "@sites_v6")]
    assert {s for s in sets[2:] if s[0] == "saddr"} == {
        ("saddr", "@sites_v4"),
        ("saddr", "@sites_v6"),
    }
    # Nothing after the first rule is unscoped: each matches a sites set.
    scoped = [
        any(str(m.get("match", {}).get("right")).startswith("@sites") for m in e) for e in rules
    ]
    assert scoped == [False] + [True] * (len(rules) - 1)
    lookups = [m for expr in rules for m in expr if "vmap" in m]
    assert [v["vmap"]["data"] for v in lookups] == ["@subjects_v4", "@subjects_v6"]


def test_sites_are_merged_per_family_and_replaced_whole() -> None:
    commands = docs.set_sites(["10.9.0.0/24", "10.9.1.0/24", "10.9.0.128/25", "fd00::/64"])
    assert verbs(commands) == [
        ("flush", "set"),
        ("add", "element"),
        ("flush", "set"),
        ("add", "element"),
    ]
    assert commands[1]["add"]["element"]["elem"] == [{"prefix": {"addr": "10.9.0.0", "len": 23}}]
    assert commands[3]["add"]["element"]["name"] == "sites_v6"
    assert verbs(docs.set_sites([])) == [("flush", "set"), ("flush", "set")]
    with pytest.raises(InvalidInput, match="not a network"):
        docs.set_sites(["10.9.0.0/33"])
    # No sites named: every destination is judged (a host that forwards nothing else).
    whole = docs.whole_table({}, {})
    elements = [c["add"]["element"] for c in whole if "element" in c.get("add", {})]
    assert [e["elem"] for e in elements] == [
        [{"prefix": {"addr": "0.0.0.0", "len": 0}}],  # noqa: S104 (a prefix, not a bind)
        [{"prefix": {"addr": "::", "len": 0}}],
    ]
