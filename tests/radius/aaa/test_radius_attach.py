"""The attach plane in the AAA, without I/O: classes, their deadlines, and the decision
an org's attach rules make after the built-in checks (with its reason codes), through
`decide` and through the core (the event it records, the reply, the sessions it revokes)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, ip_network

import pytest

from ztsim.events.schema import NewEvent
from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import Posture, SimSignals, Subject
from ztsim.policy.rules import PolicyRule
from ztsim.radius import Code, Packet, SharedSecret, decode_attributes, sign_request
from ztsim.radius.aaa.accounting import session_event
from ztsim.radius.aaa.attach import (
    BAD_APN,
    UNCLASSIFIED,
    AttachState,
    Deadlines,
    classify,
    classify_all,
    judge,
)
from ztsim.radius.aaa.core import AaaCore
from ztsim.radius.aaa.engine import (
    AccessRequest,
    GatewayEntry,
    Reason,
    SimEntry,
    Snapshot,
    SnapshotPatch,
    decide,
)
from ztsim.radius.dictionary import make_attribute
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.table import Session, SessionIndex

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IMSI = "001010000000001"
IMEI = "353490069873327"
IMEISV = "3534900698733201"
SECRET = SharedSecret("attach-secret-0123456789")
GW = GatewayEntry(
    "g1", "o1", "pgw", ip_network("127.0.0.1/32"), SECRET, frozenset({"corp", "iot"}), True, 3799
)
POOL = PoolEntry("p1", "o1", IPv4Network("10.64.0.0/24"), None)
CHECKS = {
    "managed-modern": PostureCheck(
        "managed-modern", 'device.managed and device.os_version >= "17.0"', timedelta(hours=1)
    )
}
RULES = [
    PolicyRule.from_spec(
        "attach", "unmanaged-no-corp", "deny", {"posture": ["!managed-modern"], "apns": ["corp"]}
    ),
    PolicyRule.from_spec("attach", "fresh-swap", "deny", {"sim": ["sim.swap_age < 24h"]}),
]


def _policy() -> CompiledPolicy:
    return CompiledPolicy("o1", RULES, CHECKS)


def _subject(*, managed: bool = True, swapped_at: datetime | None = None) -> Subject:
    posture = Posture({"managed": managed, "os_version": "17.2"}, NOW - timedelta(minutes=10))
    return Subject("o1", "i1", posture=posture, signals=SimSignals(swapped_at=swapped_at))


def _snapshot(
    subject: Subject | None, *, device_id: str | None = "d1", org: str = "o1"
) -> Snapshot:
    policy = _policy()
    classes = {} if subject is None else {IMSI: classify(policy, subject, NOW)}
    return Snapshot(
        sims={IMSI: SimEntry("8944", org, IMSI, "active", "i1", device_id)},
        device_imeis={"d1": IMEI},
        identities_enabled={"i1": True},
        tofu_orgs=frozenset({"o1"}),
        gateways=(GW,),
        pools={"o1": POOL},
        attach=AttachState({"o1": policy}, classes),
    )


REQUEST = AccessRequest(IMSI, IMEI, "corp")


def test_a_compliant_device_is_accepted_as_before() -> None:
    decision = decide(_snapshot(_subject()), GW, REQUEST, now=NOW)
    assert (decision.reason, decision.policy) == (Reason.ACCEPTED, None)


def test_a_non_compliant_device_is_refused_with_the_rule_and_check_that_refused() -> None:
    decision = decide(_snapshot(_subject(managed=False)), GW, REQUEST, now=NOW)
    assert decision.reason is Reason.POLICY_DENIED
    assert not decision.accepted
    assert decision.policy is not None
    assert decision.policy.rule == "unmanaged-no-corp"
    assert decision.policy.reasons == ("rule:unmanaged-no-corp", "posture:managed-modern:failed")
    # The wire says nothing of which rule or check.
    assert decision.message == "access denied by policy"


def test_a_rule_for_other_apns_leaves_the_default_allow() -> None:
    request = AccessRequest(IMSI, IMEI, "iot")
    assert decide(_snapshot(_subject(managed=False)), GW, request, now=NOW).accepted


def test_a_report_gone_stale_fails_closed_at_that_instant_without_a_new_read() -> None:
    snapshot = _snapshot(_subject())
    (entry,) = snapshot.attach.classes.values()
    assert entry.until == NOW - timedelta(minutes=10) + timedelta(hours=1)
    assert decide(snapshot, GW, REQUEST, now=entry.until - timedelta(seconds=1)).accepted
    late = decide(snapshot, GW, REQUEST, now=entry.until)
    assert late.reason is Reason.POLICY_DENIED
    assert late.policy is not None
    assert "posture:managed-modern:stale" in late.policy.reasons


def test_a_recent_swap_refuses_until_it_has_aged() -> None:
    snapshot = _snapshot(_subject(swapped_at=NOW - timedelta(hours=1)))
    early = decide(snapshot, GW, AccessRequest(IMSI, IMEI, "iot"), now=NOW)
    assert early.policy is not None
    assert early.policy.reasons == ("rule:fresh-swap", "sim:swap-recent")
    later = NOW + timedelta(hours=23, seconds=1)
    assert decide(snapshot, GW, AccessRequest(IMSI, IMEI, "iot"), now=later).accepted


def test_a_cooling_off_refuses_corp_until_it_ends_then_the_class_is_due() -> None:
    cooling = PolicyRule.from_spec(
        "attach", "cooling-off", "deny", {"sim": ["sim.swap_recent"], "apns": ["corp"]}
    )
    policy = CompiledPolicy("o1", [cooling], {})
    ends = NOW + timedelta(hours=48)
    # Swapped three days ago: the age says nothing here, the org's cooling-off does.
    signals = SimSignals(swapped_at=NOW - timedelta(days=3), swap_recent_until=ends)
    swapped = classify(policy, Subject("o1", "i1", signals=signals), NOW)
    assert swapped.until == ends
    snapshot = replace(_snapshot(None), attach=AttachState({"o1": policy}, {IMSI: swapped}))
    refused = decide(snapshot, GW, REQUEST, now=NOW)
    assert refused.reason is Reason.POLICY_DENIED
    assert refused.policy is not None
    assert refused.policy.reasons == ("rule:cooling-off", "sim:swap-recent")
    assert decide(snapshot, GW, AccessRequest(IMSI, IMEI, "iot"), now=NOW).accepted
    assert not decide(snapshot, GW, REQUEST, now=ends - timedelta(microseconds=1)).accepted
    assert decide(snapshot, GW, REQUEST, now=ends).accepted  # at the end, with no new read
    # The revoker's schedule: due at the end, then nothing more to age.
    assert snapshot.attach.due.next() == ends
    assert snapshot.attach.reclassify_due(ends - timedelta(seconds=1), 10) == []
    assert snapshot.attach.reclassify_due(ends, 10) == [IMSI]
    assert snapshot.attach.due.next() is None


def test_the_built_in_checks_come_first() -> None:
    snapshot = _snapshot(_subject(managed=False))
    snapshot.patch(SnapshotPatch(sims=(SimEntry("8944", "o1", IMSI, "suspended", "i1", "d1"),)))
    assert decide(snapshot, GW, REQUEST, now=NOW).reason is Reason.SIM_NOT_ACTIVE


def test_an_org_without_attach_rules_is_not_judged_and_an_unclassified_sim_is_refused() -> None:
    other = replace(GW, org_id="o2")
    snapshot = _snapshot(None, org="o2")
    assert decide(snapshot, other, REQUEST, now=NOW).reason is Reason.ACCEPTED
    refused = decide(_snapshot(None), GW, REQUEST, now=NOW)
    assert refused.policy is not None
    assert refused.policy.reasons == (UNCLASSIFIED,)


def test_first_attach_is_not_bound_when_the_policy_refuses() -> None:
    bound = decide(_snapshot(_subject(), device_id=None), GW, REQUEST, now=NOW)
    assert (bound.reason, bound.bind_imei) == (Reason.BOUND_ON_FIRST_ATTACH, IMEI)
    refused = decide(_snapshot(_subject(managed=False), device_id=None), GW, REQUEST, now=NOW)
    assert (refused.reason, refused.bind_imei) == (Reason.POLICY_DENIED, None)


def test_judge_refuses_a_class_of_another_policy_and_an_unreadable_apn() -> None:
    policy = _policy()
    entry = classify(_policy(), _subject(), NOW)  # an equal policy, not this one
    assert judge(policy, entry, "corp", NOW).reasons == (UNCLASSIFIED,)
    mine = classify(policy, _subject(), NOW)
    assert judge(policy, mine, "corp", NOW).action == "allow"
    assert judge(policy, mine, "-bad-", NOW).reasons == (BAD_APN,)


def test_classify_all_forgets_gone_sims_and_orgs_without_rules() -> None:
    policy = _policy()
    found = classify_all(
        {"o1": policy},
        {"a": _subject(), "b": None, "c": Subject("o2", "i9")},
        NOW,
    )
    assert found["b"] is None
    assert found["c"] is None
    entry = found["a"]
    assert entry is not None
    assert entry.policy is policy
    # A class that time cannot change keeps no subject.
    assert classify(policy, Subject("o1", "i1"), NOW).subject is None
    assert entry.subject is not None


def test_deadlines_pop_in_order_and_forget_replaced_instants() -> None:
    due = Deadlines()
    due.set("a", NOW + timedelta(seconds=30))
    due.set("b", NOW + timedelta(seconds=10))
    due.set("c", NOW + timedelta(seconds=20))
    due.set("b", NOW + timedelta(seconds=40))  # moved: its old instant is dead
    due.set("c", None)
    assert due.next() == NOW + timedelta(seconds=30)
    assert len(due) == 2
    assert due.pop_due(NOW + timedelta(seconds=35), limit=10) == ["a"]
    assert due.pop_due(NOW + timedelta(seconds=35), limit=10) == []
    assert due.pop_due(NOW + timedelta(minutes=5), limit=10) == ["b"]
    assert due.next() is None


def test_deadlines_keep_their_heap_bounded_and_pop_at_most_the_limit() -> None:
    due = Deadlines()
    for n in range(500):
        due.set("x", NOW + timedelta(seconds=n))
    assert len(due._heap) <= 2 * len(due) + 64
    for n in range(5):
        due.set(f"k{n}", NOW)
    assert len(due.pop_due(NOW, limit=3)) == 3
    assert len(due.pop_due(NOW, limit=3)) == 2


def test_the_state_re_classifies_what_is_due_and_reports_changed_classes() -> None:
    policy = _policy()
    fresh = classify(policy, _subject(), NOW)
    plain = classify(policy, Subject("o1", "i2"), NOW)
    state = AttachState({"o1": policy}, {"a": fresh, "b": plain})
    assert fresh.until is not None
    assert state.due.next() == fresh.until
    assert state.reclassify_due(fresh.until - timedelta(seconds=1), 10) == []
    assert state.reclassify_due(fresh.until, 10) == ["a"]
    assert state.classes["a"].class_id != fresh.class_id
    assert state.due.next() is None  # stale: nothing left to age
    state.patch({"o1": None}, {"a": None})
    assert state.policies == {}
    assert list(state.classes) == ["b"]


# -- through the core ---------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.records: list[object] = []
        self.events: list[NewEvent] = []
        self.generation = 0

    def access(self, record: object) -> None:
        self.records.append(record)

    def event(self, event: NewEvent, when: datetime) -> None:
        self.events.append(event)

    def session_event(self, session: Session, kind: str, when: datetime) -> None:
        self.events.append(session_event(session, kind))

    def session(self, session: object) -> None:
        pass

    def lease(self, pool: object, imsi: str, address: str, when: datetime) -> None:
        pass

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        pass


def _core(subject: Subject, sessions: tuple[Session, ...] = ()) -> tuple[AaaCore, _Sink]:
    ipam = Ipam("attach")
    ipam.add_block(POOL, POOL.network)
    sink = _Sink()
    core = AaaCore(
        snapshot=_snapshot(subject),
        sessions=SessionIndex(sessions),
        ipam=ipam,
        sink=sink,
        clock=lambda: NOW,
    )
    return core, sink


def _access_request(apn: str = "corp") -> bytes:
    request = Packet(
        Code.ACCESS_REQUEST,
        7,
        os.urandom(16),
        (
            make_attribute("User-Name", IMSI),
            make_attribute("3GPP-IMSI", IMSI),
            make_attribute("3GPP-IMEISV", IMEISV),
            make_attribute("Called-Station-Id", apn),
        ),
    )
    return sign_request(request, SECRET, add_message_authenticator=True).encode()


@pytest.mark.parametrize("managed", [True, False])
def test_the_core_answers_and_records_the_policy_decision(managed: bool) -> None:
    core, sink = _core(_subject(managed=managed))
    reply = core.handle_auth(_access_request(), ("127.0.0.1", 5000), NOW)
    assert reply is not None
    packet = Packet.decode(reply)
    if managed:
        assert packet.code is Code.ACCESS_ACCEPT
        assert (len(sink.records), sink.events) == (1, [])
        return
    assert packet.code is Code.ACCESS_REJECT
    assert decode_attributes(packet).get("Reply-Message") == "access denied by policy"
    assert sink.records == []
    (event,) = sink.events
    assert (event.kind, event.outcome.value, event.reason) == (
        "radius.access",
        "denied",
        "policy_denied",
    )
    assert event.payload["policy_rule"] == "unmanaged-no-corp"
    assert event.payload["policy_reasons"] == [
        "rule:unmanaged-no-corp",
        "posture:managed-modern:failed",
    ]
    assert (event.payload["imsi"], event.payload["apn"]) == (IMSI, "corp")
    assert core.counters.rejects == 1


def _session(apn: str = "corp") -> Session:
    return Session(
        "o1", "g1", "s1", "127.0.0.1", IMSI, "8944", "i1", "d1", IMEI,
        "10.64.0.9", apn, None, None, NOW, NOW,
    )  # fmt: skip


def test_a_class_that_goes_stale_revokes_its_live_sessions_when_due() -> None:
    core, _ = _core(_subject(), (_session(), _session("iot")._replace(acct_session_id="s2")))
    due = core.next_due()
    assert due is not None
    assert core.reclassify_due(due - timedelta(seconds=1)) == []
    (revoked,) = core.reclassify_due(due)
    session, gateway, reason, codes = revoked
    assert (session.apn, gateway, reason) == ("corp", GW, Reason.POLICY_DENIED)
    assert codes == ("rule:unmanaged-no-corp", "posture:managed-modern:stale")
    assert core.next_due() is None


def test_a_patch_that_moves_a_sim_into_a_refused_class_is_revoked() -> None:
    core, _ = _core(_subject(), (_session(),))
    assert core.revoked(core.sessions) == []
    policy = core.snapshot.attach.policies["o1"]
    worse = classify(policy, _subject(managed=False), NOW)
    core.patch(SnapshotPatch(attach_classes={IMSI: worse}), read_after=-1)
    ((_, _, reason, codes),) = core.revoked(core.sessions)
    assert reason is Reason.POLICY_DENIED
    assert "posture:managed-modern:failed" in codes
