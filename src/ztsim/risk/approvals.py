"""The two-person rule for swaps (issue 19): a re-issue or SIM replacement that an org
makes wait for a second admin. Pure values and rules; `risk.store.swaps` stores them.

A pending request holds nothing: the old SIM keeps working until someone else approves,
so an attacker who talked one admin or operator into a swap has not got the number yet.
Who "someone else" is: the person behind the credential (`requester_key`), never the
credential, so two tokens of one person count as one person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from ztsim.errors import Conflict, Forbidden

# Long enough for a request made on a Friday to meet an approver on Monday; short enough
# that a forgotten request cannot be approved weeks later in another context.
REQUEST_TTL = timedelta(hours=72)


class SwapKind(StrEnum):
    ESIM_REISSUE = "esim_reissue"  # target: the eSIM order re-issued
    SIM_REPLACE = "sim_replace"  # target: the physical SIM replaced (params: new_iccid)


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # and the swap was made
    REJECTED = "rejected"
    EXPIRED = "expired"  # pending past `expires_at`: never stored, read as of a time
    FAILED = "failed"  # approved, but the swap was refused (the order was cancelled meanwhile)


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


_OUTCOME = {Decision.APPROVE: RequestState.APPROVED, Decision.REJECT: RequestState.REJECTED}
# Only a pending request changes; every other state is final.
_NEXT: Mapping[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.FAILED}
    ),
}


class RequestClosed(Conflict):
    """The request was already decided, or it expired."""


class SamePerson(Forbidden):
    """The approver is the person who asked for the swap."""


class Caller(Protocol):
    """What a credential says of its holder (an API principal has both attributes)."""

    @property
    def token_id(self) -> str: ...

    @property
    def identity_id(self) -> str | None: ...


def requester_key(caller: Caller) -> str:
    """The person behind a token: its identity when the token names one, else the token
    itself (an admin token naming no one counts as a person of its own)."""
    if caller.identity_id is not None:
        return f"identity:{caller.identity_id}"
    return f"token:{caller.token_id}"


def cli_requester(os_user: str) -> str:
    """The person behind a local CLI command: the operating-system user who ran it."""
    return f"cli:{os_user}"


@dataclass(frozen=True, slots=True)
class SwapRequest:
    id: str
    org_id: str
    kind: SwapKind
    target: str
    params: Mapping[str, Any]
    state: RequestState  # as stored: `state_at` says what it is at a given time
    requested_by: str  # the actor (a token, a CLI user), for the audit trail
    requester: str  # the person (`requester_key`), for the two-person rule
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    result: Mapping[str, Any] | None = field(default=None)

    @property
    def reason(self) -> str:
        return str(self.params.get("reason", ""))

    @property
    def error(self) -> str | None:
        """Why the swap failed on approval (a `failed` request's result)."""
        if self.state is not RequestState.FAILED or self.result is None:
            return None
        return str(self.result.get("error", ""))

    def state_at(self, now: datetime) -> RequestState:
        if self.state is RequestState.PENDING and now >= self.expires_at:
            return RequestState.EXPIRED
        return self.state

    def as_of(self, now: datetime) -> SwapRequest:
        """This request with its state as of `now` (what every reader is shown)."""
        return replace(self, state=self.state_at(now))


def new_request(
    request_id: str,
    org_id: str,
    kind: SwapKind,
    target: str,
    params: Mapping[str, Any],
    *,
    actor: str,
    requester: str,
    now: datetime,
) -> SwapRequest:
    return SwapRequest(
        request_id,
        org_id,
        SwapKind(kind),
        target,
        dict(params),
        RequestState.PENDING,
        actor,
        requester,
        now,
        now + REQUEST_TTL,
    )


def check_decision(request: SwapRequest, decision: Decision, decider: str, now: datetime) -> None:
    """Raise unless `decider` (a requester key) may make `decision` now. The requester may
    reject (withdraw) their own request: only approving needs a second person."""
    state = request.state_at(now)
    if state is not RequestState.PENDING:
        raise RequestClosed(f"the swap request is {state.value}: it can no longer be decided")
    if decision is Decision.APPROVE and decider == request.requester:
        raise SamePerson("the person who asked for a swap cannot approve it: a second admin must")


def decided(
    request: SwapRequest,
    state: RequestState,
    *,
    actor: str,
    now: datetime,
    result: Mapping[str, Any] | None = None,
) -> SwapRequest:
    """The request moved to `state` by `actor` (checked by `check_decision` before)."""
    if state not in _NEXT.get(request.state, frozenset()):
        raise RequestClosed(f"a {request.state.value} swap request cannot become {state.value}")
    return replace(
        request,
        state=state,
        decided_by=actor,
        decided_at=now,
        result=dict(result) if result is not None else None,
    )


def outcome_of(decision: Decision) -> RequestState:
    return _OUTCOME[decision]
