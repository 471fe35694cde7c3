"""A batch's SEQs from the reserved blocks, without a database: rows as `READ` and
`reserve` return them, the steps as the issuer runs them around its I/O."""

from __future__ import annotations

from typing import NamedTuple

from ztsim.errors import NotFound
from ztsim.udm.grants import Grant, Grants, imsis, preset


class Job(NamedTuple):
    org_id: str
    imsi: str


class Row(NamedTuple):  # a row of READ
    org_id: str
    imsi: str
    iccid: str
    state: str
    sqn_seq: int
    k_sealed: bytes = b"k"
    opc_sealed: bytes = b"o"


class Reserved(NamedTuple):  # a row `reserve` returns
    imsi: str
    sqn_seq: int
    iccid: str
    k_sealed: bytes = b"k"
    opc_sealed: bytes = b"o"


A, B, C = "001010000000001", "001010000000002", "001010000000003"


def _batch(grants: Grants, jobs: list[Job], rows: list[Row], now: float = 0.0) -> list[object]:
    """One batch as the issuer runs it, the reservation committing as the rows say."""
    results = preset(jobs)
    waiting, refused = grants.take(jobs, list(range(len(jobs))), rows, results)
    if waiting:
        sizes = grants.sizes(waiting, now)
        by_imsi = {row.imsi: row for row in rows if row.state == "active"}
        reserved = [
            Reserved(imsi, by_imsi[imsi].sqn_seq + size, by_imsi[imsi].iccid)
            for imsi, size in sizes.items()
            if imsi in by_imsi
        ]
        grants.install(grants.grant(waiting, sizes, reserved, refused, results), now)
    got: list[object] = list(results)
    for i in refused:
        got[i] = "refused"
    return got


def _seqs(got: list[object]) -> list[int]:
    assert all(isinstance(g, Grant) for g in got), got
    return [g.seq for g in got if isinstance(g, Grant)]


def test_each_request_gets_the_next_seq_and_the_rest_are_told_apart() -> None:
    grants = Grants(max_block=32)
    jobs = [Job("o", A), Job("o", A), Job("other", B), Job("o", C), Job("o", "00101099")]
    rows = [Row("o", A, "89A", "active", 41), Row("o", B, "89B", "active", 7)]
    rows.append(Row("o", C, "89C", "suspended", 3))
    got = _batch(grants, jobs, rows)
    # A's two requests: one reservation of two SEQs above its row, in request order.
    assert got[:2] == [Grant("89A", 42, b"k", b"o"), Grant("89A", 43, b"k", b"o")]
    # Another org's SIM and an unknown one are not found; a suspended one is refused.
    assert isinstance(got[2], NotFound)
    assert isinstance(got[4], NotFound)
    assert got[3] == "refused"


def test_a_current_block_serves_from_memory_and_a_moved_row_drops_it() -> None:
    grants = Grants(max_block=32)
    first = _batch(grants, [Job("o", A)] * 2, [Row("o", A, "89A", "active", 10)], now=0.0)
    assert _seqs(first) == [11, 12]
    # Used up within the growth window: the next block is twice the last (4 SEQs, 13-16).
    second = _batch(grants, [Job("o", A)], [Row("o", A, "89A", "active", 12)], now=0.1)
    assert _seqs(second) == [13]
    results = preset([Job("o", A), Job("o", A)])
    row = Row("o", A, "89A", "active", 16)
    waiting, refused = grants.take([Job("o", A)] * 2, [0, 1], [row], results)
    assert (waiting, refused) == ({}, [])
    assert results == [Grant("89A", 14, b"k", b"o"), Grant("89A", 15, b"k", b"o")]
    # Another writer moved the row: nothing more from the block, a reservation instead.
    results = preset([Job("o", A)])
    waiting, _ = grants.take([Job("o", A)], [0], [Row("o", A, "89A", "active", 500)], results)
    assert waiting == {A: [0]}
    assert isinstance(results[0], NotFound)


def test_a_sim_not_active_at_the_reservation_is_refused() -> None:
    grants = Grants()
    results = preset([Job("o", A), Job("o", A)])
    waiting, refused = grants.take(
        [Job("o", A)] * 2, [0, 1], [Row("o", A, "89A", "active", 5)], results
    )
    sizes = grants.sizes(waiting, 0.0)
    # The reservation's UPDATE found the SIM suspended meanwhile: no row back.
    assert grants.grant(waiting, sizes, [], refused, results) == []
    assert refused == [0, 1]


def test_a_dropped_block_serves_nothing_more() -> None:
    grants = Grants(max_block=32)
    _batch(grants, [Job("o", A)], [Row("o", A, "89A", "active", 0)], now=0.0)
    # A block used up quickly doubles: the second reservation holds more than one.
    _batch(grants, [Job("o", A)], [Row("o", A, "89A", "active", 1)], now=0.1)
    results = preset([Job("o", A)])
    grants.drop(A)
    waiting, _ = grants.take([Job("o", A)], [0], [Row("o", A, "89A", "active", 3)], results)
    assert waiting == {A: [0]}


def test_imsis_are_read_once_each_in_order() -> None:
    jobs = [Job("o", C), Job("o", A), Job("o", C), Job("o", B)]
    assert imsis(jobs, [0, 1, 2]) == [A, C]
