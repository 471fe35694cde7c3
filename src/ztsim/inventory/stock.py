"""Parsing SIM vendors' batch files (CSV). Pure: text in, validated rows or row errors out.

Vendors name columns differently (`Ki` or `K`, `OPc`/`OP_C`, `MSISDN`/`Mobile`...),
use comma, semicolon or tab, and sometimes a byte-order mark. Rows are read and checked
one at a time (`StockScan`); every problem is counted, the first `MAX_ERRORS` kept
with their line numbers; the caller imports nothing unless the report is clean.
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

# Column aliases as vendors write them (compared case-insensitively, with `_ -` removed).
_ALIASES: dict[str, tuple[str, ...]] = {
    "iccid": ("iccid", "icc", "iccidnumber", "simiccid", "iccidno"),
    "imsi": ("imsi", "imsinumber"),
    "k": ("ki", "k", "key", "kikey"),
    "opc": ("opc", "opcvalue"),
    "op": ("op", "opvalue"),
    "msisdn": ("msisdn", "mobile", "phone", "phonenumber", "mobilenumber"),
    "pin": ("pin", "pin1"),
    "puk": ("puk", "puk1"),
}
_HEX128 = re.compile(r"^[0-9a-fA-F]{32}$")
_PIN = re.compile(r"^[0-9]{4,8}$")  # TS 31.101 §9.2: PIN 4-8 digits
_PUK = re.compile(r"^[0-9]{8}$")  # TS 31.101 §9.2: PUK 8 digits
MAX_ROWS = 1_000_000
# Errors kept and returned per import; the rest are counted. A person fixes a file from
# the first hundred; a million stored errors only cost memory and storage.
MAX_ERRORS = 100
_T = TypeVar("_T")


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


def _canonical(header: str) -> str:
    return re.sub(r"[\s_\-.]", "", header.strip().lower())


def _map_headers(headers: list[str]) -> tuple[dict[str, int], list[RowError], list[str]]:
    found: dict[str, int] = {}
    errors: list[RowError] = []
    ignored: list[str] = []
    lookup = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
    for index, header in enumerate(headers):
        name = lookup.get(_canonical(header))
        if name is None:
            ignored.append(header.strip())
        elif name in found:
            errors.append(RowError(1, name, f"column {name} appears twice"))
        else:
            found[name] = index
    for required in ("iccid", "imsi", "k"):
        if required not in found:
            errors.append(RowError(1, required, f"missing column {required}"))
    if "opc" in found and "op" in found:
        errors.append(RowError(1, "opc", "give OPc or OP, not both"))
    elif "opc" not in found and "op" not in found:
        errors.append(RowError(1, "opc", "missing column OPc (or OP)"))
    return found, errors, ignored


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
        columns, header_errors, ignored = _map_headers(headers)
        self.ignored_columns = tuple(ignored)
        if header_errors:
            self.errors.extend(header_errors)
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
            row, row_errors = _parse_row(line, values, columns, len(headers))
            self.errors.extend(row_errors)
            if row is None:
                continue
            clean = True
            for name, value in (("iccid", row.iccid.value), ("imsi", row.imsi.value)) + (
                (("msisdn", row.msisdn.value),) if row.msisdn else ()
            ):
                first_line = seen[name].setdefault(value, line)
                if first_line != line:
                    clean = False
                    self.errors.add(
                        RowError(line, name, f"duplicate {name}, first on line {first_line}")
                    )
            if clean:
                self.good_rows += 1
                yield row
        self.errors.extend(failed)
        if not self.data_rows and not self.errors.total:
            self.errors.add(RowError(1, "file", "the file has no SIM rows"))


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


def _parse_row(
    line: int, values: list[str], columns: dict[str, int], width: int
) -> tuple[StockRow | None, list[RowError]]:
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
    msisdn = ident("msisdn", Msisdn) if cell.get("msisdn") else None
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
