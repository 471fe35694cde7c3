"""The Nudm vector request answered inside the HTTP connection, before ASGI.

Even on `ueau_fast_path`, an AUSF's vector request spent a third of its CPU in the ASGI
machinery around it: a task, a scope, the edge's layers and their send wrappers, the
server's response framing. The connection (`api.server`) asks this lane first, once a
request is whole, and the lane takes it only when the HTTP edge and the fast path
would let it through and answer it the same way:
- POST for an `imsi-` SUPI on the UEAU path, from a peer that is not a trusted proxy
  (a proxy's client is only known to the edge), not refused for failed
  authentications, within the body limit;
- a bearer token whose principal the gate remembers (no database lookup here: a token
  not remembered goes the long way, and the gate remembers it after), allowed vectors;
- a JSON body that `AuthenticationInfoRequest` accepts, without a resynchronisation.
Anything else is handed back and takes the ASGI path, which is the reference for every
error. The lane's answers carry the edge's headers and are counted in the request
metrics as the edge's are.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError
from starlette.responses import Response

from ztsim.api.context import ApiContext
from ztsim.api.forwarded import Network, is_trusted
from ztsim.api.gate import bearer_token_in, remembered
from ztsim.api.headers import secured
from ztsim.api.limits import BodyLimits
from ztsim.api.problems import (
    database_unavailable,
    log_unavailable,
    problem_response,
    unavailable_response,
)
from ztsim.api.ratelimit import FailureLimiter
from ztsim.api.routes_metrics import ApiMetrics, RouteTemplates
from ztsim.api.routes_udm import AuthenticationInfoRequest, issuer_of, sbi_problem
from ztsim.api.ueau_fast_path import PLAIN_PATH, json_content_type, result_json
from ztsim.errors import NotFound
from ztsim.identity.roles import Permission, Principal, allows
from ztsim.udm.issuer import VectorRequest
from ztsim.udm.service import IssuedVector, Refusal

if TYPE_CHECKING:
    from starlette.datastructures import State

log = logging.getLogger("ztsim.api.ueau_lane")

# The fast path's, on the raw request target: a query or a percent-escape goes the long way.
_TARGET = re.compile(PLAIN_PATH.encode("ascii"))
_EXAMPLE_PATH = "/nudm-ueau/v1/imsi-001010000000001/security-information/generate-auth-data"
Headers = list[tuple[bytes, bytes]]
# A vector's answer: its content type, its length, then what `secured` adds to them.
_OK_HEAD = [(b"content-type", b"application/json")]
_SECURED = secured([])


class Answer(NamedTuple):
    status: int
    headers: Headers  # the edge's headers included; the server adds its own (date)
    body: bytes


class LaneRequest(NamedTuple):
    """A request the lane has taken: answered by `UeauLane.start`."""

    vector: VectorRequest
    started: float


class UeauLane:
    """Bound to one app: its state (context, issuer), edge settings, failure limiter and
    request metrics."""

    def __init__(
        self,
        state: State,
        ctx: ApiContext,
        *,
        limits: BodyLimits,
        trusted_proxies: Sequence[Network],
        limiter: FailureLimiter | None,
        metrics: ApiMetrics,
        templates: RouteTemplates,
    ) -> None:
        self.state = state
        self.ctx = ctx
        self.trusted_proxies = tuple(trusted_proxies)
        self.limiter = limiter
        self.metrics = metrics
        # Every path the lane takes is served by one route, found once (the templates try
        # each route's pattern in turn): its label, and the edge's body limit.
        self.route = templates(_EXAMPLE_PATH)
        self.body_limit = limits.for_path(_EXAMPLE_PATH)

    def wants(self, method: bytes, target: bytes, client: str | None) -> bool:
        """Whether to keep a request's body for the lane (decided at its head)."""
        return (
            method == b"POST"
            and client is not None
            and _TARGET.fullmatch(target) is not None
            and not (self.trusted_proxies and is_trusted(client, self.trusted_proxies))
        )

    def take(self, target: bytes, headers: Headers, body: bytes, client: str) -> LaneRequest | None:
        """The request, if the lane answers it (then `start` must be called: it is
        counted in flight from here); None hands it to the ASGI path."""
        match = _TARGET.fullmatch(target)
        if match is None or not json_content_type(headers):
            return None
        if len(body) > self.body_limit:
            return None
        token = bearer_token_in(headers)
        if token is None:
            return None
        if self.limiter is not None and self.limiter.retry_after(client, time.monotonic()):
            return None
        ctx = self.ctx
        principal = remembered(ctx, token)
        if not isinstance(principal, Principal) or not allows(
            principal.role, Permission.AKA_VECTORS
        ):
            return None
        try:
            request = AuthenticationInfoRequest.model_validate_json(body)
        except ValidationError:
            return None
        if request.resynchronizationInfo is not None:
            return None
        self.metrics.in_flight.add(1)
        vector = VectorRequest(
            principal.org_id,
            match.group(1).decode("ascii"),
            request.servingNetworkName,
            request.ausfInstanceId,
            ctx.clock(),
        )
        return LaneRequest(vector, time.perf_counter())

    def start(self, request: LaneRequest, reply: Callable[[Answer], None]) -> None:
        """Answer a request `take` gave: `reply` is called with what the ASGI path would
        have answered, on this loop, once the vector (or the reason there is none) is
        known. Counted in the request metrics then (500 if it never is, as
        `RequestMetrics` counts a request whose handler failed)."""
        try:
            issued = issuer_of(self.state, self.ctx).issue_soon(request.vector)
        except Exception as exc:
            self._answered(request, reply, _failure(exc))
            return
        issued.add_done_callback(partial(self._issued, request, reply))

    def _issued(
        self,
        request: LaneRequest,
        reply: Callable[[Answer], None],
        issued: asyncio.Future[IssuedVector | Refusal],
    ) -> None:
        if issued.cancelled():  # the server's loop is ending: nobody to answer
            self._count(request, 500)
            return
        if (failure := issued.exception()) is not None:
            self._answered(request, reply, _failure(failure))
            return
        result = issued.result()
        if isinstance(result, Refusal):
            answer = _response(sbi_problem(403, "AUTHENTICATION_REJECTED", result.reason))
        else:
            body = result_json(result)
            answer = Answer(
                200, [*_OK_HEAD, (b"content-length", b"%d" % len(body)), *_SECURED], body
            )
        self._answered(request, reply, answer)

    def _answered(
        self, request: LaneRequest, reply: Callable[[Answer], None], answer: Answer
    ) -> None:
        self._count(request, answer.status)
        reply(answer)

    def _count(self, request: LaneRequest, status: int) -> None:
        metrics = self.metrics
        metrics.in_flight.add(-1)
        labels = ("POST", self.route, str(status))
        metrics.requests.inc(*labels)
        metrics.durations.observe(time.perf_counter() - request.started, *labels)


def _failure(exc: BaseException) -> Answer:
    if isinstance(exc, NotFound):
        return _response(sbi_problem(404, "USER_NOT_FOUND", "no subscriber with that SUPI"))
    if database_unavailable(exc):
        log_unavailable(exc)
        return _response(unavailable_response())
    log.error("answering a vector request failed", exc_info=exc)
    return _response(problem_response(500, "internal error"))


def _response(response: Response) -> Answer:
    return Answer(response.status_code, secured(response.raw_headers), bytes(response.body))
