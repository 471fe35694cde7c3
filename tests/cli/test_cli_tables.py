"""Tables at any width: identifiers whole, optional columns dropped in their order, text
wrapped between words, records when nothing else fits."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from rich.console import Console

from ztsim.cli.tables import Col, layout, record_lines, show

COLS = (
    Col("ICCID", whole=True),
    Col("IMSI", whole=True),
    Col("MSISDN", whole=True),
    Col("kind", whole=True, drop=2),
    Col("state", whole=True),
    Col("identity", whole=True, drop=1),
)
ROW = ("89440000123456780008", "001010000000000", "491700000000000", "physical", "active")


def _printed(width: int, cols: tuple[Col, ...], rows: Sequence[Sequence[str]]) -> str:
    console = Console(width=width, color_system=None)
    with console.capture() as captured:
        show(console, cols, rows)
    return captured.get()


def test_optional_columns_come_back_in_their_order_as_width_allows() -> None:
    rows = [(*ROW, "ann@example.test")]
    # Two spaces between columns: 62 for the four that stay, 18 more for the identity, 10
    # for the kind.
    assert layout(COLS, rows, 90) == [0, 1, 2, 3, 4, 5]
    assert layout(COLS, rows, 89) == [0, 1, 2, 4, 5]  # the identity before the kind
    assert layout(COLS, rows, 79) == [0, 1, 2, 3, 4]  # no room for the identity: the kind
    assert layout(COLS, rows, 71) == [0, 1, 2, 4]
    assert layout(COLS, rows, 62) == [0, 1, 2, 4]
    assert layout(COLS, rows, 61) is None  # the identifiers alone do not fit: records


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140])
def test_nothing_is_cut_at_any_width(width: int) -> None:
    email = "maximilian.alexander.johannson-bergstrom@subsidiary.example.test"
    rows = [(*ROW, email), (*ROW[:4], "stock", "")]
    output = _printed(width, COLS, rows)
    assert "…" not in output
    hidden = "(not shown at this width: identity)" in output
    for value in (*ROW[:3], *([] if hidden else [email])):
        assert re.search(rf"(^|\s){re.escape(value)}(\s|$)", output, re.M), (width, output)
    longest = max(len(email) + 2, width)  # only a word longer than the line may pass it
    assert all(len(line) <= longest for line in output.splitlines()), output
    assert hidden == (62 <= width < 128)  # the email needs 128; below 62: records


def test_text_wraps_between_words_only() -> None:
    members = ", ".join(f"person.{n}@example.test" for n in range(6))
    output = _printed(40, (Col("group"), Col("members")), [("Sales team", members)])
    for n in range(6):
        assert re.search(rf"person\.{n}@example\.test", output)
    assert max(len(line) for line in output.splitlines()) <= 40


def test_record_lines() -> None:
    assert record_lines("state", "active", 8, 80) == ["state   active"]
    assert record_lines("answer", "", 8, 80) == ["answer"]
    assert record_lines("who", "a b c", 5, 8) == ["who  a b", "     c"]
    # A word too long beside the header goes under it, whole.
    assert record_lines("who", "x" * 10 + " y", 5, 12) == ["who", "  " + "x" * 10, "  y"]


def test_the_reckoned_width_is_the_rendered_width() -> None:
    # layout() reckons widths without rendering (a 1,000-row list): Rich must agree.
    rows = [(*ROW, "ann@example.test"), (*ROW[:4], "suspended", "")]
    natural = 20 + 15 + 15 + 8 + 9 + 16 + 2 * 5
    assert layout(COLS, rows, natural) == [0, 1, 2, 3, 4, 5]
    assert layout(COLS, rows, natural - 1) != [0, 1, 2, 3, 4, 5]
    lines = _printed(natural, COLS, rows).splitlines()
    assert len(lines) == 4  # header, rule, two rows: nothing wrapped
    assert max(len(line) for line in lines) == natural
    # A text column at its narrowest: its longest word.
    text = (Col("id", whole=True), Col("note"))
    note = [("a1b2", "one two three fourteen")]
    assert layout(text, note, 4 + 2 + 8) == [0, 1]
    assert layout(text, note, 4 + 2 + 7) is None
    lines = _printed(14, text, note).splitlines()
    assert max(len(line) for line in lines) <= 14
    assert "fourteen" in lines[-1]


def test_wide_characters_count_as_two_cells() -> None:
    cols = (Col("name", whole=True), Col("email", whole=True))
    rows = [("山田太郎", "taro@example.test")]
    assert layout(cols, rows, 8 + 2 + 17) == [0, 1]
    assert layout(cols, rows, 8 + 2 + 16) is None
    assert "山田太郎  taro@example.test" in _printed(27, cols, rows)
