"""The rows of an access decision, built straight from the record, are the rows the general
event path builds from the same decision."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ztsim.radius.aaa.engine import RISK_REASONS, Reason
from ztsim.radius.aaa.traffic import (
    REPLAY_ENTRIES,
    REPLAY_SECONDS,
    AccessRecord,
    AccessRows,
    ReplayCache,
    access_events,
    event_row,
)

# An Access-Request (header, zero authenticator) with one 3GPP VSA: 3GPP-User-Location-Info
# of type TAI and ECGI (TS 29.061 §16.4.7.2), PLMN 001-01, TAC 1, ECI 257.
_ULI_REQUEST_HEX = "01000029" + "00" * 16 + "1a15000028af160f" + "8200f110000100f11000000101"
_text = st.none() | st.text(max_size=20)
_when = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    st.text(min_size=1, max_size=10),
    st.booleans(),
    st.sampled_from(list(Reason)),
    _text,
    _text,
    _text,
    _text,
    _when,
    st.booleans(),
)
def test_access_rows_equal_the_general_path(
    gateway_id: str,
    accepted: bool,
    reason: Reason,
    imsi: str | None,
    apn: str | None,
    imei: str | None,
    address: str | None,
    when: datetime,
    sqlite: bool,
) -> None:
    record: AccessRecord = (
        "org",
        gateway_id,
        "sim:1",
        accepted,
        reason.value,
        imsi,
        apn,
        imei,
        address,
        when,
        None,
    )
    expected = [event_row(e, when, sqlite=sqlite) for e in access_events(record)]
    assert AccessRows(sqlite=sqlite)(record) == expected


def test_risk_decisions_add_a_risk_event_and_times_are_utc_text() -> None:
    when = datetime(2026, 1, 2, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=1)))
    record: AccessRecord = (
        "org",
        "g1",
        "sim:1",
        False,
        "clone_suspected",
        "001",
        "corp",
        "35",
        None,
        when,
        None,
    )
    rows = AccessRows(sqlite=True)(record)
    assert [row[2] for row in rows] == ["radius.access", "risk.clone"]
    assert rows[0][1] == "2026-01-02 03:05:06.000007"
    assert rows[0][7] == '{"gateway_id": "g1", "imsi": "001", "apn": "corp", "imei": "35"}'


_records = st.tuples(
    st.sampled_from(["org-a", "org-b"]),
    st.sampled_from(["g1", "g2", 'g"3']),
    st.just("sim:1"),
    st.booleans(),
    st.sampled_from([r.value for r in Reason]),
    _text,
    _text,
    _text,
    _text,
    _when,
    st.none() | st.sampled_from([bytes.fromhex(_ULI_REQUEST_HEX), b"\x01\x00\x00\x14"]),
)


@given(st.lists(_records, max_size=8), st.booleans())
def test_one_builder_for_many_records_equals_the_general_path(
    records: list[AccessRecord], sqlite: bool
) -> None:
    # The writer keeps one builder, which remembers times and gateways between records.
    build = AccessRows(sqlite=sqlite)
    shared = [(*r[:9], records[0][9], r[10]) if i % 2 else r for i, r in enumerate(records)]
    for record in shared:
        expected = [event_row(e, record[9], sqlite=sqlite) for e in access_events(record)]
        assert build(record) == expected


def test_every_risk_reason_has_its_risk_event() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    for reason in Reason:
        record: AccessRecord = (
            "o",
            "g",
            "sim:1",
            False,
            reason.value,
            None,
            None,
            None,
            None,
            when,
            None,
        )
        kinds = [e.kind for e in access_events(record)]
        assert (len(kinds) == 2) == (reason in RISK_REASONS), (reason, kinds)


def test_a_record_is_not_tracked_by_the_cyclic_gc_once_collected() -> None:
    # Records wait for the writer; tracked ones would grow the old generation and bring
    # full collections (a stall of the hot path) every few tens of thousands.
    record: AccessRecord = (
        "org",
        "g1",
        "sim:1",
        True,
        Reason.ACCEPTED.value,
        "001010000000001",
        "corp",
        "350000000000001",
        "10.0.0.1",
        datetime.now(UTC),
        bytes.fromhex(_ULI_REQUEST_HEX),
    )
    record = tuple(list(record))  # type: ignore[assignment]  # a fresh tuple, tracked
    assert gc.is_tracked(record)
    gc.collect(0)
    assert not gc.is_tracked(record)


def test_the_replay_cache_forgets_a_sims_replies_and_its_index_expires_with_them() -> None:
    now = [0.0]
    cache = ReplayCache(lambda: now[0])
    cache.put(("p", 1, b"a"), b"accept-1", "001010000000001")
    cache.put(("p", 2, b"b"), b"accept-2", "001010000000002")
    cache.put(("p", 3, b"c"), b"no-imsi")
    assert cache.forget(["001010000000001", "001019999999999"]) == 1
    assert cache.get(("p", 1, b"a")) is None
    assert cache.get(("p", 2, b"b")) == b"accept-2"
    now[0] = REPLAY_SECONDS + 1  # the rest are too old now: the next put expires them
    cache.put(("p", 4, b"d"), b"accept-4", "001010000000004")
    assert cache.forget(["001010000000002"]) == 0  # gone with its entry, index and all
    assert cache.forget_all() == 1
    assert cache.get(("p", 4, b"d")) is None


def test_the_replay_cache_keeps_its_bound_and_lets_the_oldest_replies_go_first() -> None:
    cache = ReplayCache(lambda: 0.0)
    total = REPLAY_ENTRIES + REPLAY_ENTRIES // 4
    for n in range(total):
        cache.put(("p", n, b""), b"%d" % n, f"0010100000{n % 7:05d}")
    assert cache.get(("p", 0, b"")) is None
    assert cache.get(("p", total - REPLAY_ENTRIES - REPLAY_ENTRIES // 16 - 1, b"")) is None
    # The newest bound's worth are all there, each under its own IMSI too.
    assert all(cache.get(("p", n, b"")) == b"%d" % n for n in range(total - REPLAY_ENTRIES, total))
    held = cache.forget_all()
    assert REPLAY_ENTRIES <= held <= REPLAY_ENTRIES + REPLAY_ENTRIES // 16
    assert cache.get(("p", total - 1, b"")) is None


def test_an_access_event_carries_where_the_ue_was() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    request = bytes.fromhex(_ULI_REQUEST_HEX)
    record: AccessRecord = (
        "o", "g", "sim:1", True, "accepted", "001", "corp", "35", "10.0.0.1", when, request
    )  # fmt: skip
    (event,) = access_events(record)
    assert event.payload["location"] == {"plmn": "001-01", "tac": 1, "eci": 257}
    assert AccessRows(sqlite=False)(record) == [event_row(event, when, sqlite=False)]
    # No location in the octets (or none that decodes): no `location` at all.
    bare = (*record[:10], request[:20])
    assert "location" not in access_events(bare)[0].payload
