import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.aka.milenage import derive_opc
from ztsim.inventory.stock import parse_stock_csv

from support.factories import make_sims, stock_csv


def test_good_file_parses_every_row() -> None:
    specs = make_sims(5)
    parsed = parse_stock_csv(stock_csv(specs))
    assert parsed.ok
    assert parsed.data_rows == 5
    assert [r.iccid.value for r in parsed.rows] == [s.iccid for s in specs]
    assert [r.k for r in parsed.rows] == [s.k for s in specs]
    assert [r.opc for r in parsed.rows] == [s.opc for s in specs]
    assert [r.msisdn.value if r.msisdn else None for r in parsed.rows] == [s.msisdn for s in specs]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_vendor_delimiters(delimiter: str) -> None:
    parsed = parse_stock_csv(stock_csv(make_sims(3), delimiter=delimiter))
    assert parsed.ok
    assert len(parsed.rows) == 3


def test_header_names_as_vendors_write_them() -> None:
    specs = make_sims(2)
    text = stock_csv(specs, headers=("iccid", "Imsi", "KI", "OP_C", "Mobile", "pin", "PUK"))
    parsed = parse_stock_csv("\ufeff" + text)
    assert parsed.ok
    assert parsed.rows[1].opc == specs[1].opc


def test_op_column_is_turned_into_opc() -> None:
    spec = make_sims(1)[0]
    op = bytes(range(16))
    text = f"ICCID,IMSI,K,OP\n{spec.iccid},{spec.imsi},{spec.k.hex()},{op.hex()}\n"
    parsed = parse_stock_csv(text)
    assert parsed.ok
    assert parsed.rows[0].opc == derive_opc(spec.k, op)


def test_unknown_columns_are_ignored_and_listed() -> None:
    spec = make_sims(1)[0]
    text = f"ICCID,IMSI,Ki,OPc,ADM1,KIC1\n{spec.iccid},{spec.imsi},{spec.k.hex()},{spec.opc.hex()},1,2\n"
    parsed = parse_stock_csv(text)
    assert parsed.ok
    assert parsed.ignored_columns == ("ADM1", "KIC1")


def test_every_bad_row_is_reported_and_no_secret_is_echoed() -> None:
    specs = make_sims(6)
    lines = stock_csv(specs).splitlines()
    bad_iccid = specs[0].iccid[:-1] + str((int(specs[0].iccid[-1]) + 1) % 10)
    lines[1] = lines[1].replace(specs[0].iccid, bad_iccid)  # Luhn check fails
    lines[2] = lines[2].replace(specs[1].k.hex(), "zz" * 16)  # K not hex
    lines[3] = lines[3].replace(specs[2].imsi, "12345")  # IMSI too short
    lines[4] = lines[3]  # duplicate of line 4 (line numbers are 1-based with the header)
    lines[6] = lines[6] + ",extra"  # wrong field count
    parsed = parse_stock_csv("\n".join(lines))
    assert not parsed.ok
    reported = {(e.line, e.field) for e in parsed.errors}
    assert {(2, "iccid"), (3, "k"), (4, "imsi"), (5, "imsi"), (7, "row")} <= reported
    text = " ".join(e.message for e in parsed.errors)
    for spec in specs:
        assert spec.k.hex() not in text
        assert spec.opc.hex() not in text


def test_a_repeated_row_is_one_error_naming_everything_it_repeats() -> None:
    spec = make_sims(1)[0]
    text = stock_csv([spec, spec, spec])
    parsed = parse_stock_csv(text)
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (3, "iccid", "duplicate: same ICCID, IMSI and MSISDN as line 2"),
        (4, "iccid", "duplicate: same ICCID, IMSI and MSISDN as line 2"),
    ]
    assert parsed.error_count == 2


def test_a_row_repeating_two_rows_names_both_lines() -> None:
    a, b = make_sims(2, seed=3)
    head = "ICCID,IMSI,Ki,OPc\n"
    rows = [f"{s.iccid},{s.imsi},{s.k.hex()},{s.opc.hex()}" for s in (a, b)]
    mixed = f"{a.iccid},{b.imsi},{a.k.hex()},{a.opc.hex()}"
    parsed = parse_stock_csv(head + "\n".join([*rows, mixed]) + "\n")
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [
        (4, "iccid", "duplicate: same ICCID as line 2, same IMSI as line 3"),
    ]


def _with_msisdn(msisdn: str) -> str:
    spec = make_sims(1, seed=4)[0]
    return (
        "ICCID;IMSI;Ki;OPc;Mobile Number\n"
        f"{spec.iccid};{spec.imsi};{spec.k.hex()};{spec.opc.hex()};{msisdn}\n"
    )


@pytest.mark.parametrize(
    "written",
    [
        "+49 170 1234567",
        "+49-170-123-4567",
        "49 (170) 123.45.67",
        "+49/170/1234567",
        "4917012\u00a034567",
    ],
)
def test_an_msisdn_written_with_separators_is_normalised(written: str) -> None:
    parsed = parse_stock_csv(_with_msisdn(written))
    assert parsed.ok, parsed.errors
    msisdn = parsed.rows[0].msisdn
    assert msisdn is not None
    assert msisdn.value == "491701234567"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "+49 170 12x4567",
            "MSISDN '+49 170 12x4567' (column 'Mobile Number') has 'x' at character 11; "
            "allowed are digits, a leading '+', and spaces, '-', '.', '/', '(' or ')' between them",
        ),
        (
            "49+1701234567",
            "MSISDN '49+1701234567' (column 'Mobile Number') has '+' at character 3; "
            "allowed are digits, a leading '+', and spaces, '-', '.', '/', '(' or ')' between them",
        ),
        (
            "+49 (0)170 1234567",
            "MSISDN '+49 (0)170 1234567' (column 'Mobile Number') has the trunk prefix '(0)' "
            "at character 5: leave it out",
        ),
        ("+0 170 1234567", "MSISDN must not start with 0 (E.164 country code)"),
    ],
)
def test_a_bad_msisdn_points_at_its_character_and_column(written: str, message: str) -> None:
    parsed = parse_stock_csv(_with_msisdn(written))
    assert [(e.line, e.field, e.message) for e in parsed.errors] == [(2, "msisdn", message)]
    assert not parsed.rows


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("ICCID,IMSI,OPc\n", "missing column K:"),
        ("ICCID,IMSI,Ki\n", "missing column OPc"),
        ("ICCID,IMSI,Ki,OPc,OP\n", "not both"),
        ("ICCID,ICCID,IMSI,Ki,OPc\n", "appears twice"),
        ("ICCID,IMSI,Ki,OPc\n\n\n", "no SIM rows"),
    ],
)
def test_file_level_errors(text: str, fragment: str) -> None:
    parsed = parse_stock_csv(text)
    assert not parsed.ok
    assert any(fragment in e.message for e in parsed.errors)


def test_pin_and_puk_formats_are_checked() -> None:
    spec = make_sims(1)[0]
    text = f"ICCID,IMSI,Ki,OPc,PIN1,PUK1\n{spec.iccid},{spec.imsi},{spec.k.hex()},{spec.opc.hex()},12,1234\n"
    assert {e.field for e in parse_stock_csv(text).errors} == {"pin", "puk"}


def test_row_limit() -> None:
    parsed = parse_stock_csv(stock_csv(make_sims(3)), max_rows=2)
    assert any("more than 2 rows" in e.message for e in parsed.errors)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_arbitrary_text_never_raises(text: str) -> None:
    parsed = parse_stock_csv("ICCID,IMSI,Ki,OPc\n" + text)
    assert parsed.ok or parsed.errors
