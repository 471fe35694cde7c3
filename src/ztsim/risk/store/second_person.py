"""The second person of the two-person rule, beyond "another requester key": an admin can
make tokens, even ones naming another person, so a token that the requester's token (or
any token of the requester's person) created is the requester's own hand and cannot
approve their swap. What it cannot see: two people colluding, or one person holding two
identities' tokens made by someone else; sign-in that proves who holds a token (single
sign-on) is what closes that."""

from __future__ import annotations

from sqlalchemy import Connection

from ztsim.errors import NotFound
from ztsim.identity import token_store
from ztsim.identity.models import TokenInfo
from ztsim.risk.approvals import SamePerson, SwapRequest


def check(conn: Connection, org_id: str, request: SwapRequest, approver_actor: str) -> None:
    """Raise SamePerson when the approving token was made by the requester's hand."""
    approver = _token(conn, org_id, approver_actor)
    if approver is None:
        return
    maker = _token(conn, org_id, approver.created_by)
    by_requester = approver.created_by == request.requested_by or (
        maker is not None
        and maker.identity_id is not None
        and f"identity:{maker.identity_id}" == request.requester
    )
    if by_requester:
        raise SamePerson("a token the requester created cannot approve their swap request")


def _token(conn: Connection, org_id: str, actor: str) -> TokenInfo | None:
    kind, _, token_id = actor.partition(":")
    if kind != "token":
        return None
    try:
        return token_store.get(conn, org_id, token_id)
    except NotFound:
        return None
