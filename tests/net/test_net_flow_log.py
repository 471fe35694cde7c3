"""The allowed-flow log: conntrack events of SIMs' flows to sites become start and stop
events in mode `all` only, bounded per source and in open flows, nothing lost uncounted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.events.schema import Outcome
from ztsim.net.ctnetlink import ConntrackEvent, Counters, FlowTuple, Kind
from ztsim.net.denials import EVENT_KIND, DenialContext, FlowEvents, FlowLogMode, FlowPrivacy
from ztsim.net.flow_log import FlowLog
from ztsim.net.tunnel_routes import TunnelRoutes

from support.leaks import LEAKS

KEY = b"pseudonym key of the flow log tests"
LEAKS.add_secret(KEY)
ORG = "org-1"
ALICE = DenialContext(ORG, "id-alice", "89440000000000000011", "to-site", ("rule:to-site",))
UE, OTHER, SITE, INTERNET = "10.45.0.2", "10.45.0.3", "172.31.0.9", "93.184.216.34"
ROUTES = TunnelRoutes([("172.31.0.0/24", "site-1")])


class Explainer:
    def __init__(self, known: dict[str, DenialContext]) -> None:
        self.known = known

    def __call__(
        self, source: str, destination: str, protocol: int, port: int
    ) -> DenialContext | None:
        return self.known.get(source)


def make_log(
    mode: FlowLogMode = FlowLogMode.ALL,
    pseudonymise: bool = False,
    max_open: int = 1000,
    explain: Explainer | None = None,
) -> tuple[FlowLog, dict[str, FlowPrivacy]]:
    privacy = {ORG: FlowPrivacy(mode, pseudonymise)}
    events = FlowEvents(lambda org: privacy[org], KEY)
    explain = explain or Explainer({UE: ALICE})
    return FlowLog(explain, events, ROUTES, max_open=max_open), privacy


def ct(
    kind: Kind,
    id: int = 1,
    source: str = UE,
    destination: str = SITE,
    sport: int = 40000,
    counters: bool = False,
    stamps: tuple[int, int] | None = None,
) -> ConntrackEvent:
    return ConntrackEvent(
        kind,
        2,
        FlowTuple(source, destination, 6, sport, 443),
        id=id,
        original_counters=Counters(10, 1200) if counters else None,
        reply_counters=Counters(8, 64_000) if counters else None,
        start_ns=stamps[0] if stamps else None,
        stop_ns=stamps[1] if stamps else None,
    )


def test_a_flow_is_a_start_and_a_stop_with_counters_and_duration() -> None:
    log, _ = make_log()
    (start,) = log.record(ct(Kind.NEW), now=10.0)
    (stop,) = log.record(ct(Kind.DESTROY, counters=True), now=12.5)
    assert (start.org_id, start.kind, start.subject) == (ORG, EVENT_KIND, "identity:id-alice")
    assert (start.outcome, stop.outcome) == (Outcome.SUCCESS, Outcome.SUCCESS)
    assert start.payload == {
        "source": UE,
        "iccid": ALICE.iccid,
        "destination": SITE,
        "protocol": 6,
        "port": 443,
        "stage": "start",
        "rule": "to-site",
        "policy_reasons": ["rule:to-site"],
        "suppressed": 0,
    }
    assert stop.payload["stage"] == "stop"
    assert (stop.payload["duration_ms"], stop.payload["packets_out"]) == (2500, 10)
    assert (stop.payload["bytes_out"], stop.payload["packets_in"]) == (1200, 8)
    assert stop.payload["bytes_in"] == 64_000
    assert "start_seen" not in stop.payload
    assert log.open_flows == 0
    assert log.counts == {"started": 1, "stopped": 1}


def test_kernel_timestamps_give_the_duration_when_present() -> None:
    log, _ = make_log()
    log.record(ct(Kind.NEW), now=10.0)
    (stop,) = log.record(ct(Kind.DESTROY, stamps=(1_000_000_000, 4_250_000_000)), now=99.0)
    assert stop.payload["duration_ms"] == 3250


def test_other_modes_write_nothing() -> None:
    for mode in (FlowLogMode.BLOCKED_ONLY, FlowLogMode.NONE):
        log, _ = make_log(mode)
        assert log.record(ct(Kind.NEW), 1.0) == []
        assert log.record(ct(Kind.DESTROY), 2.0) == []
        assert log.flush(3.0, final=True) == []
        assert log.counts == {"private": 2}
        assert log.open_flows == 0


def test_pseudonymised_events_carry_neither_address_nor_iccid() -> None:
    log, _ = make_log(pseudonymise=True)
    (start,) = log.record(ct(Kind.NEW), 1.0)
    assert start.subject.startswith("pseudonym:")
    assert "source" not in start.payload
    assert "iccid" not in start.payload


def test_internet_traffic_and_unknown_sources_are_counted_not_written() -> None:
    log, _ = make_log()
    assert log.record(ct(Kind.NEW, destination=INTERNET), 1.0) == []
    assert log.record(ct(Kind.NEW, source=OTHER), 1.0) == []
    assert log.record(ct(Kind.UPDATE), 1.0) == []
    assert log.record(ct(Kind.ENTRY), 1.0) == []
    assert log.counts == {"off_site": 1, "unattributed": 1, "ignored": 2}


def test_the_stop_keeps_who_the_flow_was_at_its_start() -> None:
    explain = Explainer({UE: ALICE})
    log, _ = make_log(explain=explain)
    log.record(ct(Kind.NEW), 1.0)
    explain.known.clear()  # revoked: the session is gone when conntrack reports the cut
    (stop,) = log.record(ct(Kind.DESTROY), 2.0)
    assert stop.subject == "identity:id-alice"


def test_an_org_leaving_mode_all_stops_the_stop() -> None:
    log, privacy = make_log()
    log.record(ct(Kind.NEW), 1.0)
    privacy[ORG] = FlowPrivacy(FlowLogMode.BLOCKED_ONLY)
    assert log.record(ct(Kind.DESTROY), 2.0) == []
    assert log.counts["private"] == 1


def test_a_stop_without_its_start_is_written_once_with_what_it_carries() -> None:
    log, _ = make_log()
    (stop,) = log.record(ct(Kind.DESTROY, counters=True), 5.0)
    assert (stop.payload["stage"], stop.payload["start_seen"]) == ("stop", 0)
    assert stop.payload["bytes_in"] == 64_000
    assert "duration_ms" not in stop.payload  # neither the kernel nor the log knows it


def test_the_open_flows_are_bounded_the_oldest_evicted() -> None:
    log, _ = make_log(max_open=2)
    for n in range(3):
        log.record(ct(Kind.NEW, id=n, sport=40000 + n), float(n))
    assert log.open_flows == 2
    assert log.counts["evicted"] == 1
    (stop,) = log.record(ct(Kind.DESTROY, id=0, sport=40000), 5.0)
    assert stop.payload["start_seen"] == 0  # evicted: reported all the same
    (known,) = log.record(ct(Kind.DESTROY, id=2, sport=40002), 5.0)
    assert "start_seen" not in known.payload


def test_a_burst_of_flows_is_rate_limited_and_the_count_carried() -> None:
    log, _ = make_log()
    written = [e for n in range(15) for e in log.record(ct(Kind.NEW, id=n, sport=n + 1), 0.0)]
    assert len(written) == 10
    stops = [e for n in range(15) for e in log.record(ct(Kind.DESTROY, id=n, sport=n + 1), 0.0)]
    assert len(stops) == 10  # a suppressed start's stop is suppressed too
    assert log.counts["suppressed"] == 10  # five starts and their five stops
    (later,) = log.record(ct(Kind.NEW, id=99, sport=999), 0.3)  # 1.5 tokens regained
    assert later.payload["suppressed"] == 5
    assert log.flush(10.0) == []


def test_the_suppressed_count_without_a_later_flow_is_flushed_as_a_summary() -> None:
    log, _ = make_log()
    for n in range(12):
        log.record(ct(Kind.NEW, id=n, sport=n + 1), 0.0)
    assert log.flush(0.0) == []  # no token yet
    (summary,) = log.flush(1.0)
    assert (summary.payload["stage"], summary.payload["suppressed"]) == ("suppressed", 2)
    assert summary.payload["port"] == 443
    assert log.flush(100.0) == []
    assert len(log) == 0  # full bucket, nothing pending: forgotten


def test_forgetting_drops_the_open_flows_and_the_buckets_counted() -> None:
    log, _ = make_log()
    for n in range(12):
        log.record(ct(Kind.NEW, id=n, sport=n + 1), 0.0)
    assert (log.open_flows, len(log)) == (12, 1)
    assert log.forget() == 12
    assert (log.open_flows, len(log)) == (0, 0)
    assert log.counts["forgotten"] == 12
    assert log.flush(100.0, final=True) == []  # the two suppressed starts are owed no summary
    (stop,) = log.record(ct(Kind.DESTROY, id=0, sport=1), 1.0)  # heard later, as unmatched
    assert stop.payload["start_seen"] == 0


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 20), st.sampled_from([UE, OTHER])),
        max_size=120,
    )
)
def test_every_attributed_flow_is_written_or_counted_and_the_table_stays_bounded(
    steps: list[tuple[bool, int, str]],
) -> None:
    log, _ = make_log(max_open=8)
    written = 0
    for n, (start, flow, source) in enumerate(steps):
        kind = Kind.NEW if start else Kind.DESTROY
        written += len(log.record(ct(kind, id=flow, source=source, sport=flow + 1), n * 0.05))
        assert log.open_flows <= 8
    counts = log.counts
    assert written == counts["started"] + counts["stopped"]
    mine = sum(1 for s in steps if s[2] == UE)
    assert counts["started"] + counts["stopped"] + counts["suppressed"] == mine
    assert counts["unattributed"] == len(steps) - mine
    assert all(e.payload["stage"] == "suppressed" for e in log.flush(1e6, final=True))
