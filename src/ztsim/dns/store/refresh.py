"""Refreshing URL block lists with conditional GET (RFC 9110 §13.1: If-None-Match,
If-Modified-Since). A 304 keeps the stored copy; a failed download keeps the last good
copy and records the error for the API to show. Only one gateway process refreshes.
Downloads go through `ztsim.outbound`: internal addresses are refused unless allowed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select

from ztsim.db import schema
from ztsim.dns.store.repository import store_download
from ztsim.errors import ZtsimError
from ztsim.netguard import Network
from ztsim.outbound import FetchFailed, OutboundClient

MAX_LIST_BYTES = 64 * 1024 * 1024
_ERROR_TEXT = 500  # characters of an error kept for the API
_AGENT = "ztsim-dns-gateway"


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int  # 200 or 304
    body: str | None = None
    etag: str | None = None
    last_modified: str | None = None


Fetcher = Callable[[str, str | None, str | None], Fetched]


def fetch(
    url: str, etag: str | None, last_modified: str | None, *, client: OutboundClient
) -> Fetched:
    """GET `url` with the validators of the stored copy, through the outbound guard;
    `ZtsimError` (not allowed, could not fetch, HTTP status) or `ValueError` (too large)."""
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    response = client.get(url, headers)
    if response.status == 304:
        return Fetched(304)
    if response.status != 200:
        raise FetchFailed(f"HTTP {response.status}")
    return Fetched(
        200,
        response.body.decode("utf-8", errors="replace"),
        response.headers.get("etag"),
        response.headers.get("last-modified"),
    )


def refresh_due(
    engine: Engine,
    now: datetime,
    interval: float,
    fetcher: Fetcher | None = None,
    *,
    allowed: Sequence[Network] = (),
) -> int:
    """Refresh every URL list not refreshed for `interval` seconds; how many were tried.
    Lists are fetched through the outbound guard; `allowed`: the ranges an admin opened
    (ZTSIM_OUTBOUND_ALLOWED_RANGES)."""
    if fetcher is None:
        client = OutboundClient(allowed, max_bytes=MAX_LIST_BYTES, user_agent=_AGENT)
        fetcher = functools.partial(fetch, client=client)
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
        except (ZtsimError, OSError, ValueError) as exc:
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
