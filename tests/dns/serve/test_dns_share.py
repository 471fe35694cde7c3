"""Handing policies to workers: each list's store is written once and loaded once; an
index change (a rule edit) writes a few kilobytes."""

from __future__ import annotations

from pathlib import Path

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import NetworkDefault, Requester
from ztsim.dns.policy.lists import parse_list
from ztsim.dns.policy.liststores import CompiledFeeds, compile_feeds, compile_list
from ztsim.dns.policy.rules import Action, Category, OrgPolicy, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.serve.policies import Subjects
from ztsim.dns.serve.share import INDEX, PolicyShare
from ztsim.dns.wire.constants import RRType

KEY = bytes(range(16))
WHO = Requester("o1", "alice")


def _org(*rules: Rule) -> dict[str, OrgPolicy]:
    return {"o1": OrgPolicy("o1", rules)}


def _stores(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("*.store")}


def test_lists_travel_once_and_an_index_change_is_small(tmp_path: Path) -> None:
    big = compile_list(parse_list("\n".join(f"n{i}.ads.test" for i in range(5000))), KEY, "ads:1")
    feeds = compile_feeds(sample_feeds(), KEY, "feeds:1")
    rules = (
        Rule("ads", Action.BLOCK, lists=("ads",)),
        Rule("bad", Action.BLOCK, categories=(Category.MALWARE,)),
    )
    first = PolicySnapshot.assemble(_org(*rules), {"ads": big}, feeds)
    parent, worker = PolicyShare(tmp_path), PolicyShare(tmp_path)
    worker.hold(first)  # inherited at fork
    assert not worker.changed()  # nothing published yet
    subjects = Subjects(defaults=(NetworkDefault("o1", "10.0.0.0/8"),))
    parent.publish(7, first, subjects)
    stores = _stores(tmp_path)
    assert len(stores) == 2  # the list and the feeds
    assert worker.changed()
    loaded = worker.load()
    assert loaded is not None
    position, policy, got_subjects = loaded
    assert (position, got_subjects) == (7, subjects)
    assert policy.lists_in_use()["ads"] is big  # held since the fork: not loaded again
    assert policy.decide(WHO, "n42.ads.test", RRType.A).rule_id == "ads"
    assert policy.decide(WHO, "payload.malware.example", RRType.A).rule_id == "bad"
    assert worker.load() is None  # unchanged

    edited = (*rules, Rule("more", Action.BLOCK, domains=("more.test",)))
    second = first.with_orgs(_org(*edited), {"ads": big})
    parent.publish(9, second, subjects)
    assert _stores(tmp_path) == stores  # no list written again
    assert (tmp_path / INDEX).stat().st_size < 4096
    loaded = worker.load()
    assert loaded is not None
    assert loaded[1].decide(WHO, "more.test", RRType.A).rule_id == "more"

    fresh = PolicyShare(tmp_path)  # a worker holding nothing maps the files
    loaded = fresh.load()
    assert loaded is not None
    mapped = loaded[1].lists_in_use()["ads"]
    assert mapped is not big
    assert mapped.blocks("n4999.ads.test")
    assert not mapped.blocks("other.test")

    small = compile_list(parse_list("only.test\n"), KEY, "ads:2")
    third = PolicySnapshot.assemble(_org(rules[0]), {"ads": small}, CompiledFeeds())
    parent.publish(11, third, Subjects())
    assert len(_stores(tmp_path)) == 1  # the old list's and the feeds' files went
    loaded = worker.load()
    assert loaded is not None
    assert loaded[1].decide(WHO, "only.test", RRType.A).rule_id == "ads"
    assert loaded[1].decide(WHO, "n42.ads.test", RRType.A).rule_id == ""
