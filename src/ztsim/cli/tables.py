"""Tables that never cut an identifier, at any terminal width.

A column is `whole` (ICCIDs, IMSIs, MSISDNs, emails, addresses, one-word values: one line,
never shortened) or text, which may wrap between words but never inside one. A column
with `drop` > 0 is left out on a terminal too narrow for everything, the highest `drop`
first. When even the columns that stay do not fit, each row is printed as a record (one
`header  value` line per column) instead, so nothing is ever shortened with an ellipsis
or folded mid-identifier.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    whole: bool = False
    drop: int = 0  # 0: always shown; higher: left out sooner on a narrow terminal


Row = Sequence[str]
GAP = 2  # the spaces between two columns: `_table`'s padding, collapsed, and no rules


# Widths in terminal cells, not characters: a CJK name takes two cells a character.
def _full(header: str, cells: list[str]) -> int:
    return max(cell_len(header), *(cell_len(c) for c in cells)) if cells else cell_len(header)


def _longest_word(header: str, cells: list[str]) -> int:
    words = [w for text in (header, *cells) for w in text.split()]
    return max((cell_len(w) for w in words), default=1)


def _table(cols: Sequence[Col], rows: Sequence[Row], title: str | None) -> Table:
    # No vertical rules: two spaces between columns leave the width to the values.
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        title=title,
    )
    for n, col in enumerate(cols):
        cells = [row[n] for row in rows]
        if col.whole:
            table.add_column(col.header, no_wrap=True, min_width=_full(col.header, cells))
        else:
            table.add_column(col.header, min_width=_longest_word(col.header, cells))
    for row in rows:
        table.add_row(*row)
    return table


def _widths(cols: Sequence[Col], rows: Sequence[Row], shown: list[int]) -> tuple[int, int]:
    """The table of the `shown` columns: its natural width, and the narrowest it can be
    with nothing cut (its text columns wrapped between words)."""
    natural = GAP * (len(shown) - 1)
    slack = 0
    for i in shown:
        cells = [row[i] for row in rows]
        full = _full(cols[i].header, cells)
        natural += full
        if not cols[i].whole:
            slack += full - _longest_word(cols[i].header, cells)
    return natural, natural - slack


def layout(cols: Sequence[Col], rows: Sequence[Row], width: int) -> list[int] | None:
    """The indexes of the columns shown at `width`, or None: records instead. The
    columns that cannot be dropped come first; each other one (lowest `drop` first) is
    added only if the table still fits without wrapping."""
    shown = [i for i, c in enumerate(cols) if c.drop == 0]
    natural, narrowest = _widths(cols, rows, shown)
    if narrowest > width:
        return None
    if natural > width:
        return shown
    for extra in sorted((i for i, c in enumerate(cols) if c.drop > 0), key=lambda i: cols[i].drop):
        trial = sorted([*shown, extra])
        if _widths(cols, rows, trial)[0] <= width:
            shown = trial
    return shown


def show(
    console: Console, cols: Sequence[Col], rows: Sequence[Row], title: str | None = None
) -> None:
    """Print `rows` under `cols` on `console` as wide as it is."""
    shown = layout(cols, rows, console.width)
    if shown is None:
        _records(console, cols, rows, title)
        return
    kept = [cols[i] for i in shown]
    console.print(_table(kept, [[row[i] for i in shown] for row in rows], title), highlight=False)
    hidden = [c.header for i, c in enumerate(cols) if i not in shown]
    if hidden:
        note = f"(not shown at this width: {', '.join(hidden)})"
        console.print(note, style="dim", highlight=False, markup=False)


def _records(console: Console, cols: Sequence[Col], rows: Sequence[Row], title: str | None) -> None:
    if title:
        console.print(title, highlight=False, markup=False)
    label = max(len(c.header) for c in cols) + 2
    for n, row in enumerate(rows):
        if n:
            console.print()
        for col, value in zip(cols, row, strict=True):
            for line in record_lines(col.header, value, label, console.width):
                # soft_wrap: a word longer than the line is left whole for the terminal.
                console.print(line, highlight=False, markup=False, soft_wrap=True)


def record_lines(header: str, value: str, label: int, width: int) -> list[str]:
    """`header  value` with the value wrapped between words only, from column `label`; a
    value with a word too long to sit beside the header starts on the next line, indented
    by two."""
    indent = label
    if max((len(w) for w in value.split()), default=0) > width - label:
        indent = 2
    room = max(width - indent, 1)
    wrapped = textwrap.wrap(value, room, break_long_words=False, break_on_hyphens=False)
    if indent < label:
        return [header, *(" " * indent + text for text in wrapped)]
    first, *rest = wrapped or [""]
    return [(header.ljust(label) + first).rstrip(), *(" " * label + text for text in rest)]
