"""Parsing SIM vendors' batch files (CSV). Pure: text in, validated rows or row errors out.

Vendors name columns differently (`ztsim.inventory.columns`), use comma, semicolon or
tab, sometimes a byte-order mark, and write numbers as people do ("+49 170 123-4567").
Rows are read and checked one at a time (`StockScan`); every problem is counted, the
first `MAX_ERRORS` kept with their line numbers; a row is one error however many of its
identifiers repeat; the caller imports nothing unless the report is clean.
Messages name fields, never their secret values.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from ztsim.aka.milenage import derive_opc
from ztsim.identifiers import Iccid, Imsi, InvalidIdentifier, Msisdn
from ztsim.inventory.columns import LABELS, joined, map_headers

_HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")
_PIN = re.compile(r"^[0-9]{4,8}$")  # TS 31.101 §9.2: PIN 4-8 digits
_PUK = re.compile(r"^[0-9]{8}$")  # TS 31.101 §9.2: PUK 8 digits
MAX_ROWS = 1_000_000
# Errors kept and returned per import; the rest are counted. A person fixes a file from
# the first hundred; a million stored errors only cost memory and storage.
MAX_ERRORS = 100
_T = TypeVar("_T")
_DIGITS = frozenset("0123456789")
# Written between digit groups: space, no-break space (spreadsheets), - . / ( ).
_SEPARATORS = frozenset(" \u00a0-./()")


@dataclass(frozen=True, slots=True)
class StockRow:
    line: int
    iccid: Iccid
    imsi: Imsi
    k: bytes = field(repr=False)
    opc: bytes = field(repr=False)
    msisdn: Msisdn | None
    pin: str | None = field(repr=False)
    puk: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str


class ErrorReport:
    """The first `limit` errors in the order found, and how many there were in all: a
    file of a million bad rows costs a hundred errors of memory, not a million."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.limit = limit
        self.first: list[RowError] = []
        self.total = 0

    def add(self, error: RowError) -> None:
        self.total += 1
        if len(self.first) < self.limit:
            self.first.append(error)

    def extend(self, errors: Iterable[RowError]) -> None:
        for error in errors:
            self.add(error)


@dataclass(frozen=True, slots=True)
class StockFile:
    rows: tuple[StockRow, ...]
    errors: tuple[RowError, ...]  # the first MAX_ERRORS
    ignored_columns: tuple[str, ...]
    data_rows: int = 0  # non-blank rows below the header, good or bad
    error_count: int = 0  # every error, listed or not

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


def _sniff_dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


class StockScan:
    """One pass over a file's lines (any iterable of text lines, read lazily): `rows()`
    yields each good row as it is read; errors go to `errors`, counts to the fields.
    Memory is the duplicate index (three identifiers a row) and the capped errors."""

    def __init__(
        self, lines: Iterable[str], *, max_rows: int = MAX_ROWS, max_errors: int = MAX_ERRORS
    ) -> None:
        self._lines = lines
        self._max_rows = max_rows
        self.errors = ErrorReport(max_errors)
        self.ignored_columns: tuple[str, ...] = ()
        self.data_rows = 0
        self.good_rows = 0

    def rows(self) -> Iterator[StockRow]:
        lines = iter(self._lines)
        first = next(lines, None)
        if first is None or not first.strip("\ufeff\r\n"):
            self.errors.add(RowError(1, "file", "the file is empty"))
            return
        first = first.removeprefix("\ufeff")
        dialect = _sniff_dialect(first.rstrip("\r\n"))
        reader = csv.reader(itertools.chain((first,), lines), dialect)
        try:
            headers = next(reader)
        except csv.Error as exc:
            self.errors.add(RowError(1, "file", f"not a CSV file: {exc}"))
            return
        columns, problems, ignored = map_headers(headers)
        self.ignored_columns = tuple(ignored)
        if problems:
            self.errors.extend(RowError(1, p.field, p.message) for p in problems)
            return
        seen: dict[str, dict[str, int]] = {"iccid": {}, "imsi": {}, "msisdn": {}}
        failed: list[RowError] = []
        for values in _rows(reader, failed):
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if self.data_rows >= self._max_rows:
                self.errors.add(RowError(line, "file", f"more than {self._max_rows} rows"))
                return
            self.data_rows += 1
            row, row_errors = _parse_row(line, values, columns, headers)
            self.errors.extend(row_errors)
            if row is None:
                continue
            # One error per row, naming every identifier it repeats and where.
            repeats: list[tuple[str, int]] = []
            for name, value in (("iccid", row.iccid.value), ("imsi", row.imsi.value)) + (
                (("msisdn", row.msisdn.value),) if row.msisdn else ()
            ):
                first_line = seen[name].setdefault(value, line)
                if first_line != line:
                    repeats.append((name, first_line))
            clean = not repeats
            if repeats:
                self.errors.add(RowError(line, repeats[0][0], _duplicate_message(repeats)))
            if clean:
                self.good_rows += 1
                yield row
        self.errors.extend(failed)
        if not self.data_rows and not self.errors.total:
            self.errors.add(RowError(1, "file", "the file has no SIM rows"))


def _duplicate_message(repeats: list[tuple[str, int]]) -> str:
    """'same ICCID and IMSI as line 2', or per line when they repeat different rows."""
    by_line: dict[int, list[str]] = {}
    for name, first_line in repeats:
        by_line.setdefault(first_line, []).append(LABELS[name])
    parts = [f"{joined(names)} as line {n}" for n, names in sorted(by_line.items())]
    return "duplicate: same " + ", same ".join(parts)


def parse_stock_csv(
    text: str,
    *,
    on_progress: Callable[[int], None] | None = None,
    max_rows: int = MAX_ROWS,
    max_errors: int = MAX_ERRORS,
) -> StockFile:
    """A whole file in memory, for small files (tests, the demo, benchmarks); large ones
    go through `StockScan` and `service.import_stock_file`."""
    scan = StockScan(io.StringIO(text, newline=""), max_rows=max_rows, max_errors=max_errors)
    rows: list[StockRow] = []
    for row in scan.rows():
        rows.append(row)
        if on_progress is not None and len(rows) % 1000 == 0:
            on_progress(len(rows))
    errors = tuple(scan.errors.first)
    return StockFile(tuple(rows), errors, scan.ignored_columns, scan.data_rows, scan.errors.total)


def _rows(reader: Iterator[list[str]], errors: list[RowError]) -> Iterator[list[str]]:
    """The reader's rows; a CSV syntax error ends the file with a reported error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = getattr(reader, "line_num", 0)
            errors.append(RowError(line, "file", f"CSV syntax error: {exc}"))
            return


def _msisdn(text: str, column: str) -> Msisdn:
    """A number as people write it: separators between digit groups are dropped; anything
    else is pointed at by its character position in the cell."""
    where = f"MSISDN {text!r} (column {column!r})"
    trunk = text.find("(0)")
    if trunk >= 0:
        # "+49 (0)170...": the national trunk prefix is not dialled from abroad (E.164 §6).
        raise InvalidIdentifier(
            f"{where} has the trunk prefix '(0)' at character {trunk + 1}: leave it out"
        )
    for position, char in enumerate(text, 1):
        if not (char in _DIGITS or char in _SEPARATORS or (char == "+" and position == 1)):
            raise InvalidIdentifier(
                f"{where} has {char!r} at character {position}; allowed are digits, a "
                "leading '+', and spaces, '-', '.', '/', '(' or ')' between them"
            )
    return Msisdn("".join(c for c in text if c not in _SEPARATORS))


def _parse_row(
    line: int, values: list[str], columns: dict[str, int], headers: list[str]
) -> tuple[StockRow | None, list[RowError]]:
    width = len(headers)
    if len(values) != width:
        return None, [RowError(line, "row", f"expected {width} fields, found {len(values)}")]
    cell = {name: values[index].strip() for name, index in columns.items()}
    errors: list[RowError] = []

    def ident(name: str, parse: Callable[[str], _T]) -> _T | None:
        try:
            return parse(cell[name])
        except InvalidIdentifier as exc:
            errors.append(RowError(line, name, str(exc)))
            return None

    def key(name: str, label: str) -> bytes | None:
        if not _HEX128.match(cell[name]):
            errors.append(RowError(line, name, f"{label} must be 32 hexadecimal digits"))
            return None
        return bytes.fromhex(cell[name])

    iccid = ident("iccid", Iccid)
    imsi = ident("imsi", Imsi)
    column = headers[columns["msisdn"]].strip() if "msisdn" in columns else ""
    msisdn = ident("msisdn", lambda t: _msisdn(t, column)) if cell.get("msisdn") else None
    k = key("k", "K")
    op_name = "opc" if "opc" in columns else "op"
    opc_or_op = key(op_name, "OPc" if op_name == "opc" else "OP")
    pin = cell.get("pin") or None
    puk = cell.get("puk") or None
    if pin is not None and not _PIN.match(pin):
        errors.append(RowError(line, "pin", "PIN must be 4 to 8 digits"))
    if puk is not None and not _PUK.match(puk):
        errors.append(RowError(line, "puk", "PUK must be 8 digits"))
    if errors or iccid is None or imsi is None or k is None or opc_or_op is None:
        return None, errors
    opc = opc_or_op if op_name == "opc" else derive_opc(k, opc_or_op)
    return StockRow(line, iccid, imsi, k, opc, msisdn, pin, puk), []
