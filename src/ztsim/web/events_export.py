"""The explorer's filtered events as a file: CSV for a spreadsheet, JSON for a program.

Bounded at `MAX_ROWS`, the newest first (the page says so), read a store page at a time.
Each event has the fields GET /api/v1/events gives it, serialised the same way (pydantic's
JSON mode), so the JSON export's items are the API's. A CSV cell a spreadsheet would run as
a formula (starting = + - @, or a tab or carriage return, OWASP's list) is prefixed with
an apostrophe, which spreadsheets show as text and never evaluate.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection

from ztsim.events.schema import Event
from ztsim.web.events_explorer import Filters, search

MAX_ROWS = 10_000
_STORE_PAGE = 1000  # the store's largest page
COLUMNS = ("id", "time", "kind", "actor", "subject", "outcome", "reason", "payload")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROWS = TypeAdapter(list[dict[str, Any]])


def collect(conn: Connection, org_id: str, filters: Filters) -> tuple[list[Event], bool]:
    """The newest `MAX_ROWS` events that pass the filters, and whether more were left out."""
    wide = replace(filters, limit=_STORE_PAGE)
    out: list[Event] = []
    cursor: str | None = None
    while len(out) < MAX_ROWS:
        page = search(conn, org_id, wide, older=cursor)
        out.extend(page.events)
        cursor = page.older
        if cursor is None:
            return out[:MAX_ROWS], False
    return out[:MAX_ROWS], True


def as_api(events: list[Event]) -> list[dict[str, Any]]:
    """The events as the API's JSON shows them (EventOut: everything but the org)."""
    rows = [
        {
            "id": e.id,
            "time": e.time,
            "kind": e.kind,
            "actor": e.actor,
            "subject": e.subject,
            "outcome": e.outcome.value,
            "reason": e.reason,
            "payload": e.payload,
        }
        for e in events
    ]
    shown: list[dict[str, Any]] = _ROWS.dump_python(rows, mode="json")
    return shown


def to_json(events: list[Event]) -> bytes:
    return json.dumps(as_api(events), ensure_ascii=False, separators=(",", ":")).encode()


def neutralised(cell: str) -> str:
    """The cell as text a spreadsheet will not run as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def to_csv(events: list[Event]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS)
    for row in as_api(events):
        row["payload"] = json.dumps(row["payload"], ensure_ascii=False, sort_keys=True)
        writer.writerow([neutralised(str(row[c])) for c in COLUMNS])
    return buffer.getvalue()


def filename(now: datetime, extension: str) -> str:
    return f"events-{now.strftime('%Y%m%dT%H%M%SZ')}.{extension}"
