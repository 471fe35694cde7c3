"""The two-person rule's pure parts: who a caller is, who may decide, when a request
expires, and which states a request may move to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from ztsim.errors import Conflict, Forbidden
from ztsim.risk.approvals import (
    REQUEST_TTL,
    Decision,
    RequestClosed,
    RequestState,
    SamePerson,
    SwapKind,
    SwapRequest,
    check_decision,
    cli_requester,
    decided,
    new_request,
    outcome_of,
    requester_key,
)

from tests_clock import NOW


@dataclass(frozen=True)
class Token:
    token_id: str
    identity_id: str | None = None


def _request(requester: str = "identity:ann") -> SwapRequest:
    return new_request(
        "r1",
        "org",
        SwapKind.ESIM_REISSUE,
        "order-1",
        {"reason": "lost phone", "eid": None},
        actor="token:t1",
        requester=requester,
        now=NOW,
    )


def test_the_person_behind_a_token_is_its_identity_else_the_token() -> None:
    assert requester_key(Token("t1", "ann")) == "identity:ann"
    assert requester_key(Token("t2", "ann")) == requester_key(Token("t1", "ann"))
    assert requester_key(Token("t1")) == "token:t1"
    assert requester_key(Token("t1")) != requester_key(Token("t2"))
    # An identity id never passes for a token id of the same text, nor a CLI user.
    assert requester_key(Token("x")) != requester_key(Token("y", "x"))
    assert cli_requester("root") == "cli:root"


def test_a_new_request_is_pending_for_the_ttl_then_expired() -> None:
    request = _request()
    assert request.state is RequestState.PENDING
    assert request.expires_at - request.requested_at == REQUEST_TTL == timedelta(hours=72)
    assert request.reason == "lost phone"
    assert request.state_at(request.expires_at - timedelta(seconds=1)) is RequestState.PENDING
    assert request.state_at(request.expires_at) is RequestState.EXPIRED
    assert request.as_of(request.expires_at).state is RequestState.EXPIRED
    # A decided request stays what it is.
    rejected = decided(request, RequestState.REJECTED, actor="token:t2", now=NOW)
    assert rejected.state_at(NOW + timedelta(days=30)) is RequestState.REJECTED


def test_the_requester_cannot_approve_but_may_withdraw() -> None:
    request = _request("identity:ann")
    with pytest.raises(SamePerson, match="second admin"):
        check_decision(request, Decision.APPROVE, "identity:ann", NOW)
    assert issubclass(SamePerson, Forbidden)
    check_decision(request, Decision.APPROVE, "identity:bob", NOW)
    check_decision(request, Decision.APPROVE, "token:other", NOW)
    check_decision(request, Decision.REJECT, "identity:ann", NOW)


@pytest.mark.parametrize("decision", list(Decision))
def test_an_expired_or_decided_request_cannot_be_decided(decision: Decision) -> None:
    request = _request()
    with pytest.raises(RequestClosed, match="is expired"):
        check_decision(request, decision, "identity:bob", request.expires_at)
    for state in (RequestState.APPROVED, RequestState.REJECTED, RequestState.FAILED):
        done = decided(request, state, actor="token:t2", now=NOW)
        with pytest.raises(RequestClosed, match=f"is {state.value}"):
            check_decision(done, decision, "identity:bob", NOW)
    assert issubclass(RequestClosed, Conflict)


def test_transitions_leave_pending_once() -> None:
    request = _request()
    approved = decided(
        request, RequestState.APPROVED, actor="token:t2", now=NOW, result={"new_iccid": "1"}
    )
    assert (approved.decided_by, approved.decided_at) == ("token:t2", NOW)
    assert approved.result == {"new_iccid": "1"}
    assert approved.error is None
    for target in RequestState:
        with pytest.raises(RequestClosed):
            decided(approved, target, actor="token:t3", now=NOW)
    for target in (RequestState.PENDING, RequestState.EXPIRED):
        with pytest.raises(RequestClosed):
            decided(request, target, actor="token:t2", now=NOW)
    failed = decided(request, RequestState.FAILED, actor="t", now=NOW, result={"error": "gone"})
    assert failed.error == "gone"
    assert outcome_of(Decision.APPROVE) is RequestState.APPROVED
    assert outcome_of(Decision.REJECT) is RequestState.REJECTED


def test_a_request_keeps_its_own_copy_of_params() -> None:
    params = {"reason": "x", "new_iccid": "8944"}
    request = new_request(
        "r", "o", SwapKind.SIM_REPLACE, "t", params, actor="a", requester="b", now=NOW
    )
    params["new_iccid"] = "changed"
    assert request.params["new_iccid"] == "8944"
    assert request.kind is SwapKind.SIM_REPLACE
