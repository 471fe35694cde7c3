"""Refreshing URL block lists with conditional GET (RFC 9110 §13.1: If-None-Match,
If-Modified-Since). A 304 keeps the stored copy; a failed download keeps the last good
copy and records the error for the API to show. Only one gateway process refreshes.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select

from ztsim.db import schema
from ztsim.dns.store.repository import store_download

MAX_LIST_BYTES = 64 * 1024 * 1024
_ERROR_TEXT = 500  # characters of an error kept for the API


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int  # 200 or 304
    body: str | None = None
    etag: str | None = None
    last_modified: str | None = None


Fetcher = Callable[[str, str | None, str | None], Fetched]


def fetch(url: str, etag: str | None, last_modified: str | None, timeout: float = 30) -> Fetched:
    """GET `url` with the validators of the stored copy; `OSError`/`ValueError` on failure."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http and https lists are fetched")
    headers = {"User-Agent": "ztsim-dns-gateway"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read(MAX_LIST_BYTES + 1)
            if len(raw) > MAX_LIST_BYTES:
                raise ValueError("list larger than 64 MiB")
            return Fetched(
                200,
                raw.decode("utf-8", errors="replace"),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(304)
        raise OSError(f"HTTP {exc.code}") from None


def refresh_due(engine: Engine, now: datetime, interval: float, fetcher: Fetcher = fetch) -> int:
    """Refresh every URL list not refreshed for `interval` seconds; how many were tried."""
    lists = schema.dns_lists
    due = now - timedelta(seconds=interval)
    with engine.connect() as conn:
        rows = conn.execute(
            select(lists.c.id, lists.c.org_id, lists.c.url, lists.c.etag, lists.c.last_modified)
            .where(lists.c.url.is_not(None))
            .where(or_(lists.c.refreshed_at.is_(None), lists.c.refreshed_at <= due))
        ).all()
    for list_id, org_id, url, etag, last_modified in rows:
        try:
            got = fetcher(url, etag, last_modified)
        except (OSError, ValueError) as exc:
            with engine.begin() as conn:
                error = (str(exc) or type(exc).__name__)[:_ERROR_TEXT]
                store_download(conn, org_id, list_id, None, now, refresh_error=error)
            continue
        with engine.begin() as conn:
            if got.status == 304:
                store_download(conn, org_id, list_id, None, now, refresh_error="")
            else:
                meta = {"etag": got.etag, "last_modified": got.last_modified, "refresh_error": ""}
                store_download(conn, org_id, list_id, got.body, now, **meta)
    return len(rows)
