"""Schemathesis against the app's own /openapi.json: no 5xx, no response outside the schema.

The app is built at import (schemathesis reads its schema at collection); each test
points it at a fresh, populated database through `app.state.ctx`.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from ztsim.sealing import Sealer

from api.conftest import World, populate
from support.api import harness
from support.leaks import LEAKS

APP = create_app(None)  # type: ignore[arg-type]  # the context is set per test below
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> Iterator[World]:
    with harness(sqlite_engine, sealer) as h:
        populated = populate(h, "alpha", 1)
        APP.state.ctx = h.ctx
        yield populated


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], world: World) -> None:
    response = case.call_and_validate(headers=world.org.auth(), checks=CHECKS)
    LEAKS.add_text(f"schemathesis {case.method} {case.path}", response.text)
