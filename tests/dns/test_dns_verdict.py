"""The engine counts every query once, by transport and by what it did (`Verdict`), on
every path: first answers, memo replays, upstream answers and failures, refusals."""

from __future__ import annotations

from dataclasses import replace

from ztsim.dns.answercache import AnswerCache
from ztsim.dns.engine import Answer, Engine, Forward
from ztsim.dns.policy.identity import SIM_NOT_ACTIVE, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.verdict import Verdict, new_counts
from ztsim.dns.wire.constants import RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message

ALICE = Requester("org-a", "id-alice", frozenset({"g1"}), device_id="dev-1")


def _engine() -> Engine:
    ads = parse_list("ads.example\n", ListFormat.DOMAINS)
    rules = (
        Rule("ads", Action.BLOCK, lists=("ads",)),
        Rule("intranet", Action.OVERRIDE, domains=("intra.example",), answer=("192.0.2.9",)),
        Rule("alias", Action.OVERRIDE, domains=("alias.example",), answer=("www.example.org",)),
    )
    org = OrgPolicy("org-a", rules, OrgSettings())
    return Engine(
        PolicySnapshot(PolicyData({"org-a": org}, {"ads": ads}), bytes(16)), AnswerCache()
    )


def _query(name: str, qtype: int = RRType.A, qclass: int = 1) -> bytes:
    return Message(
        id=7, flags=Flag.RD, questions=(Question(name, qtype, qclass),), edns=Edns()
    ).to_wire()


def _upstream(forward: Forward) -> bytes:
    asked = decode_message(forward.upstream_query)
    return Message(
        id=asked.id,
        flags=Flag.QR | Flag.RD | Flag.RA,
        questions=asked.questions,
        answers=(ResourceRecord.address(asked.questions[0].name, "192.0.2.1", 300),),
        edns=Edns(),
    ).to_wire()


def _counts(**by_verdict: int) -> list[int]:
    counts = new_counts()
    for name, count in by_verdict.items():
        counts[Verdict[name.upper()]] = count
    return counts


def test_every_path_counts_its_verdict_once() -> None:
    engine = _engine()
    for _ in range(2):  # the second time from the memo
        assert isinstance(engine.handle(_query("ads.example"), ALICE, 0.0, udp=True), Answer)
        assert isinstance(engine.handle(_query("intra.example"), ALICE, 0.0, udp=True), Answer)
    forward = engine.handle(_query("www.example.org"), ALICE, 0.0, udp=False)
    assert isinstance(forward, Forward)
    assert engine.verdicts == _counts(blocked=2, overridden=2)  # a forward counts when resolved
    engine.resolved(forward, _upstream(forward), 0.0)
    assert isinstance(engine.handle(_query("www.example.org"), ALICE, 1.0, udp=True), Answer)
    failed = engine.handle(_query("gone.example.org"), ALICE, 1.0, udp=True)
    assert isinstance(failed, Forward)
    engine.resolved(failed, None, 1.0)
    alias = engine.handle(_query("alias.example"), ALICE, 1.0, udp=True)
    assert isinstance(alias, Answer)  # the target is cached: answered at once
    engine.handle(_query("ads.example"), replace(ALICE, revoked=SIM_NOT_ACTIVE), 1.0, udp=True)
    engine.handle(_query("ads.example"), None, 1.0, udp=True)
    engine.handle(_query("ads.example", qclass=3), ALICE, 1.0, udp=True)  # CHAOS
    engine.handle(b"\x00\x07garbage", ALICE, 1.0, udp=True)
    assert engine.verdicts == _counts(
        blocked=2,
        overridden=3,
        allowed=2,
        servfail=1,
        refused_revoked=1,
        refused_unknown_source=1,
        refused_not_served=1,
        other=1,
    )
    assert engine.queries == [1, sum(engine.verdicts) - 1]  # [over TCP, over UDP]


def test_the_labels_are_the_names() -> None:
    assert [v.label for v in Verdict][:3] == ["allowed", "blocked", "overridden"]
    assert len(new_counts()) == len(Verdict)
