"""The events explorer: the org's event log filtered, newest first, a page at a time.

Filters arrive as a GET form's fields and are checked here, so a malformed one is a
message the page shows (400) rather than a database error: a kind (exact) or a kind
prefix, a person (identity id or email: the events about them, their SIMs and devices),
a SIM (ICCID), an outcome and a time range (ISO 8601 or a datetime-local field's value,
read as UTC when it names no offset). Paging is the API's keyset: `older` is the very
cursor GET /api/v1/events returns; `newer` walks back. Every read is the viewer's org.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy import Connection

from ztsim.errors import InvalidInput
from ztsim.events import store
from ztsim.events.schema import Event, Outcome, subject_of
from ztsim.identifiers.iccid import Iccid
from ztsim.web.person_key import person_id, subjects_of

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A kind is dotted lower-case words (`radius.access`); a prefix may stop anywhere in one.
_KIND = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MAX_TIME_TEXT = 40
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?")
FIELDS = ("kind", "prefix", "person", "sim", "outcome", "from", "to", "limit")
OUTCOMES = tuple(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters as typed (shown back in the form, carried by the paging links) and
    as checked (what the store is asked)."""

    typed: dict[str, str]
    kind: str | None = None
    prefix: str | None = None
    person: str | None = None  # the raw key; resolved against the org when read
    iccid: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = PAGE_SIZE

    def query_string(self, **extra: str) -> str:
        """The filters (as typed, the empty ones left out) and `extra` as a query string."""
        kept = {k: v for k, v in self.typed.items() if v}
        return urlencode({**kept, **extra})


@dataclass(frozen=True, slots=True)
class Explored:
    events: list[Event]
    older: str | None  # the link to the next older page, or None
    newer: str | None  # the link to the next newer page, or None


def _kind(name: str, text: str) -> str | None:
    if not text:
        return None
    if not _KIND.fullmatch(text):
        raise InvalidInput(
            f"{name}: lower-case letters, digits, '.', '_' and '-', up to 64 (e.g. radius.access)"
        )
    return text


def _time(name: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) > _MAX_TIME_TEXT:
            raise ValueError(text)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name}: a date and time such as 2025-01-31T14:00 or 2025-01-31T14:00:00+01:00"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iccid(text: str) -> str | None:
    if not text:
        return None
    try:
        return Iccid(text).value
    except InvalidInput:
        raise InvalidInput("SIM: an ICCID of 19 or 20 digits starting with 89") from None


def _outcome(text: str) -> Outcome | None:
    if not text:
        return None
    try:
        return Outcome(text)
    except ValueError:
        raise InvalidInput(f"outcome: one of {', '.join(OUTCOMES)}") from None


def _limit(text: str) -> int:
    if not text:
        return PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit: a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def time_input(text: str) -> str:
    """The input type that can hold `text`: a datetime-local field empties a value with an
    offset (and the filter would be lost on the next submit), so such a value stays text."""
    return "datetime-local" if not text or _LOCAL_TIME.fullmatch(text) else "text"


def typed(params: Mapping[str, str]) -> dict[str, str]:
    """The explorer's fields from a request's query, trimmed; the others left out."""
    return {name: params.get(name, "").strip() for name in FIELDS}


def parse(typed_fields: dict[str, str]) -> Filters:
    """The checked filters; InvalidInput names the field that is wrong and its form."""
    t = typed_fields
    filters = Filters(
        t,
        kind=_kind("kind", t["kind"]),
        prefix=_kind("kind prefix", t["prefix"]),
        person=t["person"] or None,
        iccid=_iccid(t["sim"]),
        outcome=_outcome(t["outcome"]),
        since=_time("from", t["from"]),
        until=_time("to", t["to"]),
        limit=_limit(t["limit"]),
    )
    if filters.since and filters.until and filters.since >= filters.until:
        raise InvalidInput("from must be before to")
    return filters


def search(
    conn: Connection,
    org_id: str,
    filters: Filters,
    *,
    older: str | None = None,
    newer: str | None = None,
) -> store.EventPage:
    """One page of the org's events that pass the filters. InvalidInput for a person not
    in the org, a cursor not issued here, or both cursors at once."""
    if older and newer:
        raise InvalidInput("page older or newer, not both")
    subjects = None
    if filters.person is not None:
        subjects = subjects_of(conn, org_id, person_id(conn, org_id, filters.person))
    q = store.EventQuery(
        kind=filters.kind,
        subject=subject_of("sim", filters.iccid) if filters.iccid else None,
        since=filters.since,
        until=filters.until,
        subjects_in=subjects,
    )
    return store.search(
        conn,
        org_id,
        q,
        kind_prefix=filters.prefix,
        outcome=filters.outcome,
        limit=filters.limit,
        older_than=older or None,
        newer_than=newer or None,
    )


def explore(
    conn: Connection,
    org_id: str,
    filters: Filters,
    *,
    older: str | None = None,
    newer: str | None = None,
) -> Explored:
    """A page, with its paging links carrying the filters."""
    found = search(conn, org_id, filters, older=older, newer=newer)
    return Explored(
        found.events,
        f"/events?{filters.query_string(older=found.older)}" if found.older else None,
        f"/events?{filters.query_string(newer=found.newer)}" if found.newer else None,
    )
