"""A vendor file's header: a missing column is answered with the headers found and the
names accepted for it, so an operator fixes the file in one go."""

from __future__ import annotations

from ztsim.inventory.columns import map_headers
from ztsim.inventory.stock import parse_stock_csv


def test_a_missing_iccid_names_the_headers_found_and_the_accepted_names() -> None:
    parsed = parse_stock_csv("Serial No;IMSI;Ki;OPc\n1;2;3;4\n")
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (
            1,
            "iccid",
            'missing column ICCID: the header has "Serial No", "IMSI", "Ki", "OPc"; '
            "ICCID is accepted as iccid, icc, iccidnumber, simiccid, iccidno "
            "(any case; spaces, '_', '-' and '.' ignored)",
        )
    ]
    assert not parsed.rows


def test_a_missing_opc_names_both_ways_to_give_it() -> None:
    _, problems, _ = map_headers(["ICCID", "IMSI", "Ki", "OP-C value x"])
    assert [(p.field, p.message) for p in problems] == [
        (
            "opc",
            'missing column OPc (or OP): the header has "ICCID", "IMSI", "Ki", "OP-C value x"; '
            "OPc is accepted as opc, opcvalue; OP is accepted as op, opvalue "
            "(any case; spaces, '_', '-' and '.' ignored)",
        )
    ]


def test_every_missing_column_is_reported_at_once() -> None:
    _, problems, ignored = map_headers(["Serial", "Key"])
    assert [p.field for p in problems] == ["iccid", "imsi", "opc"]
    assert ignored == ["Serial"]


def test_a_long_header_is_shortened_in_the_message() -> None:
    headers = [f"column {n}" for n in range(30)] + ["x" * 100]
    _, problems, _ = map_headers(headers)
    first = problems[0].message
    assert '"column 19"' in first
    assert '"column 20"' not in first
    assert "and 11 more;" in first
    assert "x" * 41 not in first


def test_vendor_spellings_map_to_fields() -> None:
    found, problems, ignored = map_headers(["ICC-ID", "imsi_number", "KI", "OP.c", "Mobile"])
    assert problems == []
    assert found == {"iccid": 0, "imsi": 1, "k": 2, "opc": 3, "msisdn": 4}
    assert ignored == []
