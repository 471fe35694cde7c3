"""The `swap_requests` table on SQLite and PostgreSQL: stored and read back whole, one
pending request per target, decisions saved, reads as of a time (a pending request past
its expiry reads as expired), and lists by state, newest first, in keyset pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.identity import repository as identities
from ztsim.risk.approvals import (
    REQUEST_TTL,
    RequestState,
    SwapKind,
    SwapRequest,
    decided,
    new_request,
)
from ztsim.risk.store import swap_requests as table

from tests_clock import NOW


def _request(org: str, n: int, target: str | None = None) -> SwapRequest:
    return new_request(
        f"{n:032x}",
        org,
        SwapKind.SIM_REPLACE,
        target or f"89440000000000000{n:02d}",
        {"reason": f"card {n}", "new_iccid": "8944000000000000999"},
        actor="token:t1",
        requester="identity:ann",
        now=NOW + timedelta(minutes=n),
    )


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        return (
            identities.create_org(conn, "Acme", "acme", NOW).id,
            identities.create_org(conn, "Other", "other", NOW).id,
        )


def test_stored_read_back_decided(engine: Engine) -> None:
    org, other = _orgs(engine)
    request = _request(org, 1)
    with engine.begin() as conn:
        table.insert_request(conn, request)
        assert table.get_request(conn, org, request.id, NOW) == request
        assert table.locked(conn, org, request.id) == request
        with pytest.raises(NotFound):
            table.get_request(conn, other, request.id, NOW)
        with pytest.raises(NotFound):
            table.locked(conn, other, request.id)
        with pytest.raises(Conflict, match="already pending"):
            table.insert_request(conn, _request(org, 2, target=request.target))
        done = decided(
            request, RequestState.APPROVED, actor="token:t2", now=NOW, result={"new_iccid": "1"}
        )
        table.save(conn, done)
        assert table.get_request(conn, org, request.id, NOW) == done
        # Decided: the same target may be asked for again.
        table.insert_request(conn, _request(org, 3, target=request.target))


def test_an_expired_request_no_longer_blocks_its_target(engine: Engine) -> None:
    org, _ = _orgs(engine)
    first = _request(org, 1)
    later = new_request(
        "f" * 32,
        org,
        SwapKind.SIM_REPLACE,
        first.target,
        {"reason": "again"},
        actor="a",
        requester="b",
        now=first.expires_at,
    )
    with engine.begin() as conn:
        table.insert_request(conn, first)
        table.insert_request(conn, later)
        assert table.get_request(conn, org, first.id, later.requested_at).state is (
            RequestState.EXPIRED
        )


def test_lists_by_state_newest_first_in_pages(engine: Engine) -> None:
    org, other = _orgs(engine)
    made = [_request(org, n) for n in range(5)]
    with engine.begin() as conn:
        for n, request in enumerate(made):
            table.insert_request(conn, request)
            if n < 4:
                table.save(conn, decided(request, RequestState.REJECTED, actor="a", now=NOW))
    later = NOW + timedelta(minutes=10)
    with engine.begin() as conn:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = table.list_requests(conn, org, later, limit=2, cursor=cursor)
            seen += [r.id for r in page]
            if cursor is None:
                break
        assert seen == [r.id for r in made[::-1]]
        pending, _ = table.list_requests(conn, org, later, state=RequestState.PENDING)
        assert [r.id for r in pending] == [made[4].id]
        expired_at = made[4].requested_at + REQUEST_TTL
        assert table.list_requests(conn, org, expired_at, state=RequestState.PENDING)[0] == []
        expired, _ = table.list_requests(conn, org, expired_at, state=RequestState.EXPIRED)
        assert [(r.id, r.state) for r in expired] == [(made[4].id, RequestState.EXPIRED)]
        rejected, _ = table.list_requests(conn, org, later, state=RequestState.REJECTED)
        assert len(rejected) == 4
        assert table.list_requests(conn, other, later)[0] == []
        for bad in ("bogus", "WyJ4Il0"):  # not base64 JSON; a key without a time
            with pytest.raises(InvalidInput):
                table.list_requests(conn, org, later, cursor=bad)
