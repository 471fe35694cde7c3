"""Schemathesis against the SIM Swap Subscriptions 0.3.0 document as published (the
package's copy, not ztsim's /openapi.json): no 5xx, and every status, content type and
body the document allows, for data that fits it and data that does not.

Each test points the app (built at import, as schemathesis reads its schema at
collection) at a fresh org whose SIM holds a number, and calls with a valid 2-legged
token holding every subscription scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from ztsim.api.app import create_app
from ztsim.risk import specs
from ztsim.risk.subscriptions import PHONE_NUMBER
from ztsim.sealing import Sealer

from support.api import harness
from support.camara_sink import client_token, org_with_line
from support.leaks import LEAKS

APP = create_app(None)  # type: ignore[arg-type]  # the context is set per test below
BASE = "/sim-swap-subscriptions/v0.3"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SCOPES = (
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create",
    "sim-swap-subscriptions:read",
    "sim-swap-subscriptions:delete",
)


def _spec_path() -> Path:
    folder = resources.files("ztsim.risk").joinpath("specs", "camara")
    path = Path(str(folder.joinpath(specs.SIM_SWAP_SUBSCRIPTIONS)))
    assert path.is_file()
    return path


SCHEMA = schemathesis.openapi.from_path(_spec_path())
SCHEMA.app = APP


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> Iterator[tuple[str, str]]:
    """(the org's number, a 2-legged token)."""
    with harness(sqlite_engine, sealer) as h:
        line = org_with_line(sqlite_engine, sealer, "alpha", 1, datetime.now(UTC))
        _, access = client_token(sqlite_engine, line.org_id, SCOPES)
        APP.state.ctx = h.ctx
        yield line.phone_number, access


def _on_our_number(body: object, number: str) -> None:
    """A generated number is almost never one the org serves: put the org's number in,
    so what follows that check is exercised too, not only the 422."""
    config = body.get("config") if isinstance(body, dict) else None
    detail = config.get("subscriptionDetail") if isinstance(config, dict) else None
    phone = detail.get("phoneNumber") if isinstance(detail, dict) else None
    if isinstance(detail, dict) and isinstance(phone, str) and PHONE_NUMBER.fullmatch(phone):
        detail["phoneNumber"] = number


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_subscriptions_conform_to_their_spec(
    case: schemathesis.Case[Any], world: tuple[str, str]
) -> None:
    number, token = world
    _on_our_number(case.body, number)
    response = case.call_and_validate(
        base_url=f"http://testserver{BASE}",
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
    )
    LEAKS.add_text(f"schemathesis {case.method} {BASE}{case.path}", response.text)
