"""An API under test: an app on a real database, orgs with tokens per role, and every
response recorded for the leak scan."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.clock import utc_now
from ztsim.identity import repository, token_store
from ztsim.identity.roles import Role
from ztsim.sealing import Sealer

from support.leaks import LEAKS

ESIM_SHOWS_CODE = re.compile(
    r"(POST /api/v1/esim/orders(/[^/]+/reissue)?|GET /api/v1/esim/orders/[^/]+/pack)$"
)


def _record(response: httpx2.Response) -> None:
    response.read()
    where = f"api {response.request.method} {response.request.url.path}"
    LEAKS.add_text(where, response.text)
    if where == "api POST /api/v1/tokens" and response.status_code == 201:
        # The one response that may show a token: its creation.
        LEAKS.add_secret(response.json()["token"])
        LEAKS.allow_once(where, response.text)
    if where in ("api POST /api/v1/api-clients", "api POST /oauth2/token") and (
        response.status_code in (200, 201)
    ):
        # A client's secret is shown once, at its creation; an access token once, when issued.
        body = response.json()
        LEAKS.add_secret(body.get("client_secret") or body["access_token"])
        LEAKS.allow_once(where, response.text)
    if where == "api POST /api/v1/dns/device-tokens" and response.status_code == 201:
        LEAKS.add_secret(response.json()["token"])  # shown once: at creation
        LEAKS.allow_once(where, response.text)
    if ESIM_SHOWS_CODE.match(f"{response.request.method} {response.request.url.path}") and (
        response.status_code in (200, 201)
    ):
        # eSIM creation and re-issue show the matching ID (and confirmation code) once; packs
        # show the matching ID to whoever may print them.
        if response.status_code == 201:
            created = response.json()
            LEAKS.add_secret(created["matching_id"])
            if created["confirmation_code"]:
                LEAKS.add_secret(created["confirmation_code"])
        LEAKS.allow_once(where, response.text)


@dataclass
class OrgHandle:
    id: str
    tokens: dict[Role, str] = field(default_factory=dict)

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


class TestClock:
    """Real time, shifted by `offset`: tests move it forward to expire things."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class ApiHarness:
    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.clock = TestClock()
        self.ctx = ApiContext(engine, sealer, self.clock)
        self.app = create_app(self.ctx)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.client.event_hooks = {"request": [], "response": [_record]}

    def new_org(self, slug: str, *, self_identity: str | None = None) -> OrgHandle:
        """An org with a token per org-wide role (and a `self` token when an identity is named later)."""
        now = utc_now()
        with self.engine.begin() as conn:
            org = repository.create_org(conn, slug.title(), slug, now)
            handle = OrgHandle(org.id)
            for role in (
                Role.ADMIN,
                Role.OPERATOR,
                Role.ANALYST,
                Role.AUDITOR,
                Role.NETWORK,
                Role.SMDP,
                Role.POSTURE,
            ):
                _, token = token_store.issue(
                    conn,
                    org.id,
                    name=role.value,
                    role=role,
                    identity_id=None,
                    created_by="test",
                    now=now,
                )
                LEAKS.add_secret(token)
                handle.tokens[role] = token
        return handle

    def add_self_token(self, org: OrgHandle, identity_id: str) -> None:
        with self.engine.begin() as conn:
            _, token = token_store.issue(
                conn,
                org.id,
                name="self",
                role=Role.SELF,
                identity_id=identity_id,
                created_by="test",
                now=utc_now(),
            )
        LEAKS.add_secret(token)
        org.tokens[Role.SELF] = token


@contextmanager
def harness(engine: Engine, sealer: Sealer) -> Iterator[ApiHarness]:
    h = ApiHarness(engine, sealer)
    with h.client:
        yield h
