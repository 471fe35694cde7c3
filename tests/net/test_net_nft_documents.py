"""The nft JSON commands' shape (the kernel reads them back in test_net_nft.py)."""

from __future__ import annotations

import json

import pytest

from ztsim.errors import InvalidInput
from ztsim.net import nft_documents as docs
from ztsim.net.ruleset import flatten
from ztsim.policy.rules import PolicyRule

SITE = [
    PolicyRule.from_spec("network", "site", "allow", {"cidrs": ["10.9.0.0/16"], "protocol": "tcp"})
]


def verbs(commands: list[docs.Command]) -> list[tuple[str, str]]:
    return [(verb, next(iter(body))) for command in commands for verb, body in command.items()]


def test_class_names_are_checked() -> None:
    assert docs.class_chain("p1_c7") == "class_p1_c7"
    assert docs.class_map("p1_c7", 6) == "class_p1_c7_v6"
    for bad in ("", "a-b", "a b", "x" * 49, "é"):
        with pytest.raises(InvalidInput, match="class name"):
            docs.class_chain(bad)


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
    last = docs.replace_class("c", flatten([]), reject=True)[-1]
    assert last["add"]["rule"]["expr"][1] == {
        "reject": {"type": "icmpx", "expr": "admin-prohibited"}
    }


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
