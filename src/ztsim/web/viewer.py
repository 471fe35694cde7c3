"""Who is looking at a page: the session's principal, checked against the token store
on every request, and what the pages need of the app's context.

The pages read the app's context through `WebContext`, a protocol the API's
`ApiContext` satisfies, so this package never imports `ztsim.api` (the API mounts the
pages; the pages sit below it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection
from starlette.requests import Request

from ztsim.identity import token_store
from ztsim.identity.roles import Permission, Principal, Role, allows
from ztsim.sealing import Sealer
from ztsim.web import session

# Machine roles: their tokens belong in a serving node or a connector, not a browser.
PERSON_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AUDITOR, Role.SELF})


class WebContext(Protocol):
    @property
    def sealer(self) -> Sealer: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def read(self) -> AbstractContextManager[Connection]: ...

    def tx(self) -> AbstractContextManager[Connection]:
        """One transaction that may write; it commits before the page answers."""
        ...


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    csrf: str

    def may(self, permission: Permission) -> bool:
        return allows(self.principal.role, permission)

    @property
    def is_self(self) -> bool:
        return self.principal.role is Role.SELF


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def authenticate(ctx: WebContext, token: str) -> Principal | None:
    """The principal a token stands for, if it may sign in to the pages."""
    with ctx.read() as conn:
        principal = token_store.authenticate(conn, token, ctx.clock())
    if principal is None or principal.role not in PERSON_ROLES:
        return None
    return principal


def current(request: Request) -> Viewer | None:
    """The signed-in viewer, or None (no session, an expired one, or a token revoked)."""
    ctx = context(request)
    s = session.open_cookie(ctx.sealer, request.cookies.get(session.COOKIE), ctx.clock())
    if s is None:
        return None
    principal = authenticate(ctx, s.token)
    return None if principal is None else Viewer(principal, s.csrf)
