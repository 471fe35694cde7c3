"""The denial log: one event per attempt within each source's bucket, the rest counted and
carried, never lost; privacy modes; and its events stored and read back."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from ztsim.dns.querylog import pseudonym as dns_pseudonym
from ztsim.events import store
from ztsim.events.schema import Outcome
from ztsim.identity import repository
from ztsim.net.denials import (
    EVENT_KIND,
    SUPPRESSED_KIND,
    DenialContext,
    DenialLog,
    FlowEvents,
    FlowLogMode,
    FlowPrivacy,
    pseudonym,
)
from ztsim.net.nflog import Flow, NflogPacket

from support.leaks import LEAKS

KEY = b"pseudonym key of the denials tests"
LEAKS.add_secret(KEY)
ORG = "org-1"
ALICE = DenialContext(ORG, "id-alice", "89440000000000000011", "no-ssh", ("rule:no-ssh",))
NOBODY = DenialContext(ORG, None, None, None, ("default:deny",))
DEFAULT = FlowPrivacy()  # blocked-only, not pseudonymised


def udp(source: str, destination: str = "172.31.0.9", port: int = 53) -> bytes:
    """An IPv4 header and the UDP ports: what NFLOG copies of a denied datagram."""
    addresses = bytes(int(o) for o in source.split(".")) + bytes(
        int(o) for o in destination.split(".")
    )
    header = struct.pack("!BBHHHBBH", 0x45, 0, 28, 0, 0, 64, 17, 0) + addresses
    return header + struct.pack("!HHHH", 40000, port, 8, 0)


def packet(source: str, chain: str = "class_staff", port: int = 53) -> NflogPacket:
    return NflogPacket(group=5701, family=2, prefix=chain, payload=udp(source, port=port))


class Explainer:
    """The net role's `explain_denial`, as a table; counts its calls."""

    def __init__(self, known: dict[str, DenialContext]) -> None:
        self.known = known
        self.calls = 0

    def __call__(
        self, source: str, destination: str, protocol: int, port: int
    ) -> DenialContext | None:
        self.calls += 1
        return self.known.get(source)


def make_log(
    privacy: FlowPrivacy = DEFAULT, known: dict[str, DenialContext] | None = None
) -> tuple[DenialLog, Explainer]:
    explain = Explainer({"10.45.0.2": ALICE, "10.45.0.3": NOBODY} if known is None else known)
    return DenialLog(explain, FlowEvents(lambda org: privacy, KEY)), explain


def test_a_denied_attempt_is_one_event_with_identity_rule_and_reason() -> None:
    log, _ = make_log()
    (event,) = log.record(packet("10.45.0.2", port=22), now=100.0)
    assert (event.org_id, event.kind, event.actor) == (ORG, EVENT_KIND, "net-gateway")
    assert (event.subject, event.outcome, event.reason) == (
        "identity:id-alice",
        Outcome.DENIED,
        "policy_denied",
    )
    assert event.payload == {
        "source": "10.45.0.2",
        "iccid": "89440000000000000011",
        "destination": "172.31.0.9",
        "protocol": 17,
        "port": 22,
        "rule": "no-ssh",
        "policy_reasons": ["rule:no-ssh"],
        "chain": "class_staff",
        "suppressed": 0,
    }


def test_the_forward_chain_means_no_session_and_the_subject_falls_back() -> None:
    log, _ = make_log()
    (event,) = log.record(packet("10.45.0.3", chain="forward"), now=1.0)
    assert (event.reason, event.subject) == ("no_session", f"org:{ORG}")
    assert event.payload["rule"] is None
    assert "iccid" not in event.payload


def test_a_flood_writes_the_burst_and_carries_the_rest() -> None:
    log, explain = make_log()
    written = [e for _ in range(100) for e in log.record(packet("10.45.0.2"), now=10.0)]
    assert len(written) == 10  # the burst
    assert explain.calls == 10  # suppressed attempts cost no look-up
    assert log.flush(10.0) == []  # no token yet: the suppression goes on
    (carried,) = log.record(packet("10.45.0.2"), now=10.25)  # 0.25 s at 5/s: one token
    assert carried.payload["suppressed"] == 90
    assert log.record(packet("10.45.0.2"), now=10.25) == []
    (summary,) = log.flush(10.5)
    assert (summary.kind, summary.reason, summary.payload["suppressed"]) == (
        SUPPRESSED_KIND,
        "policy_denied",
        1,
    )
    assert log.counts == {"written": 11, "suppressed": 91, "summarised": 1}


def test_sources_have_buckets_of_their_own_and_are_forgotten_when_idle() -> None:
    log, _ = make_log()
    for _ in range(30):
        log.record(packet("10.45.0.2"), now=0.0)
    assert len(log.record(packet("10.45.0.3"), now=0.0)) == 1
    assert len(log) == 2
    assert [e.payload["suppressed"] for e in log.flush(0.5)] == [20]
    assert len(log) == 1  # 10.45.0.3 has a full bucket and nothing pending
    assert log.flush(3.0) == []
    assert len(log) == 0


def test_the_final_flush_reports_what_is_pending_without_a_token() -> None:
    log, _ = make_log()
    for _ in range(15):
        log.record(packet("10.45.0.2"), now=0.0)
    (summary,) = log.flush(0.0, final=True)
    assert summary.payload["suppressed"] == 5


def test_unattributed_sources_and_unparsed_packets_are_counted() -> None:
    log, _ = make_log()
    for _ in range(12):
        assert log.record(packet("10.45.0.99"), now=0.0) == []
    bad = NflogPacket(5701, 2, "forward", b"\x45\x00")
    assert log.record(bad, now=0.0) == []
    assert log.flush(1.0) == []
    assert log.counts == {"unattributed": 12, "suppressed": 2, "unparsed": 1}


def test_pseudonymised_orgs_get_the_dns_pseudonym_and_no_sim_or_address() -> None:
    log, _ = make_log(FlowPrivacy(FlowLogMode.NONE, pseudonymise=True))
    (event,) = log.record(packet("10.45.0.2"), now=0.0)
    assert event.subject == dns_pseudonym(KEY, ORG, "identity:id-alice")
    assert event.subject == pseudonym(KEY, ORG, "identity:id-alice")
    assert "source" not in event.payload
    assert "iccid" not in event.payload
    assert "id-alice" not in str(event)


@pytest.mark.parametrize(
    ("mode", "logged"),
    [(FlowLogMode.NONE, False), (FlowLogMode.BLOCKED_ONLY, False), (FlowLogMode.ALL, True)],
)
def test_allowed_flows_are_logged_only_in_mode_all(mode: FlowLogMode, logged: bool) -> None:
    events = FlowEvents(lambda org: FlowPrivacy(mode), KEY)
    flow = Flow("10.45.0.2", "172.31.0.9", 6, 443, 50000)
    allowed = DenialContext(ORG, "id-alice", None, "site", ("rule:site",))
    event = events.allowed(allowed, flow, "stop", packets=12, octets=3400)
    assert (event is not None) is logged
    if event is not None:
        assert (event.kind, event.outcome, event.reason) == (EVENT_KIND, Outcome.SUCCESS, "")
        assert event.payload["stage"] == "stop"
        assert (event.payload["packets"], event.payload["octets"]) == (12, 3400)


def test_the_bucket_is_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        DenialLog(Explainer({}), FlowEvents(lambda org: FlowPrivacy(), KEY), rate=0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["10.45.0.2", "10.45.0.3", "10.45.0.4"]), st.floats(0, 0.5)),
        max_size=300,
    )
)
def test_every_attempt_is_an_event_or_a_count_on_one(attempts: list[tuple[str, float]]) -> None:
    known = {"10.45.0.2": ALICE, "10.45.0.3": NOBODY, "10.45.0.4": ALICE}
    log, _ = make_log(known=known)
    now, seen = 0.0, []
    for source, gap in attempts:
        now += gap
        seen += log.record(packet(source), now)
        if gap > 0.4:
            seen += log.flush(now)
    seen += log.flush(now, final=True)
    denied = [e for e in seen if e.kind == EVENT_KIND]
    assert len(denied) + sum(e.payload["suppressed"] for e in seen) == len(attempts)
    assert len(log) <= 3


# -- the event store ------------------------------------------------------------------


def test_the_events_are_stored_and_read_back(engine: Engine) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        org = repository.create_org(conn, "Acme", "acme", now).id
    who = DenialContext(org, "id-alice", "89440000000000000011", None, ("default:deny",))
    log, _ = make_log(known={"10.45.0.2": who})
    events = [e for _ in range(12) for e in log.record(packet("10.45.0.2"), now=0.0)]
    events += log.flush(1.0)
    with engine.begin() as conn:
        store.append(conn, events, now)
    with engine.connect() as conn:
        page, _ = store.query(conn, org, store.EventQuery(kind=EVENT_KIND), limit=50)
        summaries, _ = store.query(conn, org, store.EventQuery(kind=SUPPRESSED_KIND))
    assert len(page) == 10
    assert {e.subject for e in page} == {"identity:id-alice"}
    assert page[0].outcome is Outcome.DENIED
    assert page[0].payload["policy_reasons"] == ["default:deny"]
    assert page[0].payload["rule"] is None
    assert [s.payload["suppressed"] for s in summaries] == [2]
    assert summaries[0].time == now
