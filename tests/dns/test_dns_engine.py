"""The sans-I/O engine: decisions, cache, serve-stale, logging modes and malformed input;
the query log's bounds (nothing dropped silently: counted per org, reported once)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.answercache import STALE_TTL, AnswerCache
from ztsim.dns.engine import Answer, Engine, Forward
from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import (
    Action,
    OrgPolicy,
    OrgSettings,
    PolicyData,
    PrivacyMode,
    Rule,
)
from ztsim.dns.policy.snapshot import ALLOWED, PolicySnapshot
from ztsim.dns.querylog import DROPPED_KIND, Backlog, QueryLog
from ztsim.dns.wire.constants import EdeCode, Rcode, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message
from ztsim.events.schema import NewEvent

KEY = bytes(16)
ALICE = Requester("org-a", "id-alice", frozenset({"g1"}), device_id="dev-1")


def _engine(settings_: OrgSettings | None = None) -> Engine:
    ads = parse_list("ads.example\n", ListFormat.DOMAINS)
    org = OrgPolicy(
        "org-a", (Rule("ads", Action.BLOCK, lists=("ads",)),), settings_ or OrgSettings()
    )
    policy = PolicySnapshot(PolicyData({"org-a": org}, {"ads": ads}), KEY)
    return Engine(policy, AnswerCache(), QueryLog(policy, b"k" * 32))


def _query(name: str, qtype: int = RRType.A, ident: int = 7, edns: bool = True) -> bytes:
    return Message(
        id=ident,
        flags=Flag.RD,
        questions=(Question(name, qtype),),
        edns=Edns() if edns else None,
    ).to_wire()


def _upstream_answer(forward: Forward, ttl: int = 300) -> bytes:
    asked = decode_message(forward.upstream_query)
    name = asked.questions[0].name
    return Message(
        id=asked.id,
        flags=Flag.QR | Flag.RD | Flag.RA,
        questions=asked.questions,
        answers=(ResourceRecord.address(name, "192.0.2.1", ttl),),
        edns=Edns(),
    ).to_wire()


def test_allowed_name_forwarded_then_answered_from_cache() -> None:
    engine = _engine()
    step = engine.handle(_query("WWW.Example.org"), ALICE, 1000.0, udp=True)
    assert isinstance(step, Forward)
    first = decode_message(engine.resolved(step, _upstream_answer(step), 1000.0))
    assert first.id == 7
    assert first.answers[0].ttl == 300
    again = engine.handle(_query("www.example.ORG", ident=99), ALICE, 1010.0, udp=True)
    assert isinstance(again, Answer)
    replayed = decode_message(again.wire)
    assert replayed.id == 99
    assert replayed.questions[0].name == "www.example.ORG"  # the client's letter case
    assert replayed.answers[0].ttl == 290


def test_serve_stale_when_every_upstream_fails() -> None:
    engine = _engine()
    step = engine.handle(_query("www.example.org"), ALICE, 0.0, udp=True)
    assert isinstance(step, Forward)
    engine.resolved(step, _upstream_answer(step, ttl=10), 0.0)
    later = engine.handle(_query("www.example.org"), ALICE, 100.0, udp=True)
    assert isinstance(later, Forward)  # expired: ask upstream first (RFC 8767 §4)
    stale = decode_message(engine.resolved(later, None, 100.0))
    assert stale.rcode == Rcode.NOERROR
    assert [a.ttl for a in stale.answers] == [STALE_TTL]
    assert stale.edns is not None
    assert [e.info_code for e in stale.edns.extended_errors()] == [EdeCode.STALE_ANSWER]
    unknown = engine.handle(_query("never.example.org"), ALICE, 100.0, udp=True)
    assert isinstance(unknown, Forward)
    failed = decode_message(engine.resolved(unknown, None, 100.0))
    assert failed.rcode == Rcode.SERVFAIL
    assert failed.edns is not None
    assert [e.info_code for e in failed.edns.extended_errors()] == [EdeCode.NO_REACHABLE_AUTHORITY]


def test_stale_window_ends() -> None:
    engine = _engine()
    engine.cache.max_stale = 50
    step = engine.handle(_query("www.example.org"), ALICE, 0.0, udp=True)
    assert isinstance(step, Forward)
    engine.resolved(step, _upstream_answer(step, ttl=10), 0.0)
    later = engine.handle(_query("www.example.org"), ALICE, 61.0, udp=True)
    assert isinstance(later, Forward)
    assert decode_message(engine.resolved(later, None, 61.0)).rcode == Rcode.SERVFAIL


def test_unknown_source_refused_without_touching_policy() -> None:
    engine = _engine()
    step = engine.handle(_query("ads.example"), None, 0.0, udp=True)
    assert isinstance(step, Answer)
    reply = decode_message(step.wire)
    assert reply.rcode == Rcode.REFUSED
    assert reply.edns is not None
    assert [e.info_code for e in reply.edns.extended_errors()] == [EdeCode.PROHIBITED]
    assert engine.log is not None
    assert len(engine.log) == 0


def test_a_revoked_requester_is_refused_even_for_remembered_answers() -> None:
    engine = _engine()
    first = engine.handle(_query("ads.example"), ALICE, 0.0, udp=True)
    assert isinstance(first, Answer)  # blocked, and remembered for ALICE's policy class
    revoked = replace(ALICE, revoked="SIM not active")
    for name in ("ads.example", "www.example.org"):
        step = engine.handle(_query(name), revoked, 0.0, udp=True)
        assert isinstance(step, Answer)
        reply = decode_message(step.wire)
        assert reply.rcode == Rcode.REFUSED
        assert reply.answers == ()
        assert reply.edns is not None
        [ede] = reply.edns.extended_errors()
        assert (ede.info_code, ede.extra_text) == (EdeCode.PROHIBITED, "SIM not active")
    plain = engine.handle(_query("ads.example", edns=False), revoked, 0.0, udp=True)
    assert isinstance(plain, Answer)
    assert decode_message(plain.wire).rcode == Rcode.REFUSED
    assert engine.handle(b"\x00", revoked, 0.0, udp=True) is None  # too short: silence
    assert engine.log is not None
    assert len(engine.log) == 1  # ALICE's block only: nothing was decided for the revoked


def _ask_both(engine: Engine) -> None:
    blocked = engine.handle(_query("ads.example"), ALICE, 0.0, udp=True)
    assert isinstance(blocked, Answer)
    allowed = engine.handle(_query("www.example.org"), ALICE, 0.0, udp=True)
    assert isinstance(allowed, Forward)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (PrivacyMode.BLOCKED_ONLY, ["ads.example"]),
        (PrivacyMode.ALL, ["ads.example", "www.example.org"]),
        (PrivacyMode.NONE, []),
    ],
)
def test_privacy_modes(mode: PrivacyMode, expected: list[str]) -> None:
    engine = _engine(OrgSettings(privacy=mode))
    _ask_both(engine)
    assert engine.log is not None
    events = engine.log.drain()
    assert [e.payload["name"] for e in events] == expected
    assert all(e.subject == "identity:id-alice" for e in events)
    assert all(e.kind == "dns.query" and e.org_id == "org-a" for e in events)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (PrivacyMode.BLOCKED_ONLY, [{"queries": 2, "blocked": 1}]),
        (PrivacyMode.ALL, [{"queries": 2, "blocked": 1}]),
        (PrivacyMode.NONE, []),
    ],
)
def test_aggregate_stats_name_no_one(mode: PrivacyMode, expected: list[dict[str, int]]) -> None:
    engine = _engine(OrgSettings(privacy=mode))
    _ask_both(engine)
    assert engine.log is not None
    stats = engine.log.stats()
    assert [e.payload for e in stats] == expected
    assert all(e.kind == "dns.stats" and e.subject == "org:org-a" for e in stats)
    assert "alice" not in json.dumps([[e.subject, e.payload] for e in stats])
    assert engine.log.stats() == []  # counts restart after each report


def test_pseudonymised_events_carry_no_identity() -> None:
    engine = _engine(OrgSettings(privacy=PrivacyMode.ALL, pseudonymise=True))
    _ask_both(engine)
    assert engine.log is not None
    events = engine.log.drain()
    assert len(events) == 2
    text = json.dumps([[e.subject, e.reason, e.payload, e.actor] for e in events])
    for secret in ("id-alice", "dev-1", "g1"):
        assert secret not in text
    assert len({e.subject for e in events}) == 1  # stable within the org
    assert events[0].subject.startswith("pseudonym:")


def test_nonzero_edns_version_gets_badvers() -> None:
    wire = bytearray(_query("www.example.org"))
    wire[-5] = 1  # the OPT TTL's version octet (RFC 6891 §6.1.3)
    step = _engine().handle(bytes(wire), ALICE, 0.0, udp=True)
    assert isinstance(step, Answer)
    assert decode_message(step.wire).rcode == Rcode.BADVERS


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_malformed_packets_never_crash(data: bytes) -> None:
    step = _engine().handle(data, ALICE, 0.0, udp=True)
    if isinstance(step, Answer):
        reply = decode_message(step.wire)
        assert reply.flags & Flag.QR
        assert reply.id == int.from_bytes(data[:2], "big")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 60))
def test_mangled_queries_formerr_or_dropped(junk: bytes, cut: int) -> None:
    wire = _query("www.example.org")
    mangled = wire[: len(wire) - cut] + junk
    step = _engine().handle(mangled, ALICE, 0.0, udp=True)
    if isinstance(step, Answer):
        assert decode_message(step.wire).flags & Flag.QR


def test_repeated_queries_answered_from_the_memo_until_the_policy_changes() -> None:
    engine = _engine(OrgSettings(privacy=PrivacyMode.ALL))
    first = engine.handle(_query("ads.example", ident=1), ALICE, 0.0, udp=True)
    again = engine.handle(_query("ads.example", ident=2), ALICE, 5.0, udp=True)
    assert isinstance(first, Answer)
    assert isinstance(again, Answer)
    assert again.wire == b"\x00\x02" + first.wire[2:]
    other = Requester("org-a", "id-bob")
    assert isinstance(engine.handle(_query("ads.example"), other, 5.0, udp=True), Answer)
    assert engine.log is not None
    assert [e.subject for e in engine.log.drain()] == [
        "identity:id-alice",
        "identity:id-alice",  # a memo hit is logged like any query
        "identity:id-bob",
    ]
    allow_all = OrgPolicy("org-a", (Rule("open", Action.ALLOW),))
    engine.policy = PolicySnapshot(PolicyData({"org-a": allow_all}), KEY)
    assert isinstance(engine.handle(_query("ads.example"), ALICE, 6.0, udp=True), Forward)


def test_memo_of_a_cached_answer_follows_its_ttl() -> None:
    engine = _engine()
    step = engine.handle(_query("www.example.org"), ALICE, 0.0, udp=True)
    assert isinstance(step, Forward)
    engine.resolved(step, _upstream_answer(step, ttl=300), 0.0)
    ttls = []
    for now in (10.2, 10.7, 11.1, 299.5, 300.0):
        reply = engine.handle(_query("www.example.org"), ALICE, now, udp=True)
        if isinstance(reply, Forward):
            ttls.append(-1)
            continue
        assert isinstance(reply, Answer)
        ttls.append(decode_message(reply.wire).answers[0].ttl)
    assert ttls == [290, 290, 289, 1, -1]


def test_memo_is_shared_by_requesters_the_policy_treats_alike_only() -> None:
    ads = parse_list("ads.example\n", ListFormat.DOMAINS)
    rules = (
        Rule("staff-open", Action.ALLOW, domains=("ads.example",), groups=("staff",)),
        Rule("ads", Action.BLOCK, lists=("ads",)),
    )
    settings_ = OrgSettings(allow_list_only_fleets=frozenset({"kiosk"}))
    policy = PolicySnapshot(
        PolicyData({"org-a": OrgPolicy("org-a", rules, settings_)}, {"ads": ads}), KEY
    )
    engine = Engine(policy, AnswerCache(), None)
    plain = [Requester("org-a", f"id-{n}") for n in range(3)]
    staff = Requester("org-a", "id-s", frozenset({"staff"}))
    kiosk = Requester("org-a", "id-k", fleet_ids=frozenset({"kiosk"}))
    assert len({policy.policy_class(who) for who in plain}) == 1
    assert len({policy.policy_class(who) for who in (plain[0], staff, kiosk)}) == 3

    def rcode_and_ede(who: Requester, ident: int) -> tuple[int, list[int]]:
        step = engine.handle(_query("ads.example", ident=ident), who, 0.0, udp=True)
        if isinstance(step, Forward):
            return -1, []
        assert isinstance(step, Answer)
        reply = decode_message(step.wire)
        assert reply.id == ident
        assert reply.edns is not None
        return reply.rcode, [e.info_code for e in reply.edns.extended_errors()]

    blocked = (Rcode.NOERROR, [EdeCode.BLOCKED])
    for ident, who in enumerate(plain):
        assert rcode_and_ede(who, ident) == blocked
    assert len(engine._memo) == 1  # three phones, one policy: one remembered answer
    assert rcode_and_ede(staff, 10) == (-1, [])  # allowed for staff: forwarded
    assert rcode_and_ede(kiosk, 11) == blocked
    assert rcode_and_ede(plain[1], 12) == blocked
    fenced = engine.handle(_query("news.example"), kiosk, 0.0, udp=True)  # remembered
    assert isinstance(fenced, Answer)
    assert isinstance(engine.handle(_query("news.example"), plain[0], 0.0, udp=True), Forward)


# -- the query log's bounds ------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALL = OrgSettings(privacy=PrivacyMode.ALL)


def _bounded_log(max_pending: int = 100) -> QueryLog:
    orgs = {org: OrgPolicy(org, (), ALL) for org in ("org-a", "org-b")}
    return QueryLog(PolicySnapshot(PolicyData(orgs, {}), bytes(16)), b"k" * 32, max_pending)


def _ask(log: QueryLog, org: str, name: str) -> None:
    log.record(Requester(org, f"id-{org}"), name, 1, ALLOWED)


def _reports(log: QueryLog) -> dict[str, object]:
    reports = log.drop_reports()
    assert all(r.kind == DROPPED_KIND and r.subject == f"org:{r.org_id}" for r in reports)
    return {r.org_id: r.payload["dropped"] for r in reports}


def test_a_full_batch_drops_its_oldest_counted_for_their_own_org() -> None:
    log = _bounded_log(max_pending=3)
    for n in range(2):
        _ask(log, "org-a", f"a{n}.example")
    for n in range(3):
        _ask(log, "org-b", f"b{n}.example")
    assert [e.payload["name"] for e in log.drain()] == ["b0.example", "b1.example", "b2.example"]
    assert log.dropped == 2
    assert _reports(log) == {"org-a": 2}
    assert _reports(log) == {}  # reported once


def test_reports_that_could_not_be_written_are_given_back() -> None:
    log = _bounded_log()
    log.overflowed([NewEvent("org-a", "dns.query", "x", "identity:1")] * 3)
    reports = log.drop_reports()
    log.give_back(reports)
    log.overflowed([NewEvent("org-a", "dns.query", "x", "identity:1")])
    assert _reports(log) == {"org-a": 4}
    assert log.dropped == 4


def test_the_backlog_keeps_batches_in_order_up_to_its_bound() -> None:
    log = _bounded_log()
    backlog = Backlog(log, bound=4)
    a = [NewEvent("org-a", "dns.query", "x", f"identity:{n}") for n in range(3)]
    b = [NewEvent("org-b", "dns.query", "x", f"identity:{n}") for n in range(3)]
    backlog.keep([(T0, a)])
    assert len(backlog) == 3
    # A later failure holds what was kept before (taken) and newer events: the oldest go.
    later = datetime(2026, 1, 2, tzinfo=UTC)
    backlog.keep([*backlog.take(), (later, b)])
    assert len(backlog) == 4
    assert backlog.take() == [(T0, a[2:]), (later, b)]
    assert len(backlog) == 0
    assert _reports(log) == {"org-a": 2}


def test_events_and_remembered_answers_keep_each_requesters_reasons() -> None:
    rule = Rule("no-finance", Action.BLOCK, domains=(".finance.example",), posture=("!modern",))
    org = OrgPolicy("org-a", (rule,), OrgSettings(privacy=PrivacyMode.ALL))
    policy = PolicySnapshot(PolicyData({"org-a": org}), KEY)
    engine = Engine(policy, AnswerCache(), QueryLog(policy, b"k" * 32))
    failed = replace(ALICE, tags=frozenset({"posture:modern:failed"}))
    stale = replace(ALICE, tags=frozenset({"posture:modern:stale"}))
    texts = []
    for who in (failed, stale, failed, stale):  # the second round comes from the memo
        step = engine.handle(_query("www.finance.example"), who, 0.0, udp=True)
        assert isinstance(step, Answer)
        message = decode_message(step.wire)
        assert message.edns is not None
        texts.append([e.extra_text for e in message.edns.extended_errors()])
    failed_text = "blocked by rule no-finance (posture:modern:failed)"
    stale_text = "blocked by rule no-finance (posture:modern:stale)"
    assert texts == [[failed_text], [stale_text], [failed_text], [stale_text]]
    assert engine.log is not None
    events = engine.log.drain()
    assert [(e.reason, e.payload["reasons"]) for e in events] == [
        (text, ["rule:no-finance", code])
        for text, code in [
            (failed_text, "posture:modern:failed"),
            (stale_text, "posture:modern:stale"),
        ]
        * 2
    ]
    allowed = engine.handle(
        _query("www.finance.example"),
        replace(ALICE, tags=frozenset({"posture:modern:passed"})),
        0.0,
        udp=True,
    )
    assert isinstance(allowed, Forward)
    assert engine.log.drain()[0].payload["reasons"] == ["default:allow", "posture:modern:passed"]
