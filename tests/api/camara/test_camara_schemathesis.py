"""Schemathesis against each CAMARA spec document as published (the package's copy, not
ztsim's /openapi.json): no 5xx, and every status, content type and body the document
allows, for data that fits it and data that does not.

The app is built at import, as in tests/api/test_api_schema.py; each test points it at a
fresh CAMARA world and calls with a valid 2-legged token holding every scope.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from ztsim.sealing import Sealer

from api.camara.conftest import Camara, build
from support.api import harness
from support.leaks import LEAKS

APP = create_app(None)  # type: ignore[arg-type]  # the context is set per test below
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _spec_path(name: str) -> Path:
    path = Path(str(resources.files("ztsim.risk").joinpath("specs", "camara", name)))
    assert path.is_file()
    return path


SIM_SWAP = schemathesis.openapi.from_path(_spec_path(specs.SIM_SWAP))
DEVICE_SWAP = schemathesis.openapi.from_path(_spec_path(specs.DEVICE_SWAP))
for _loaded in (SIM_SWAP, DEVICE_SWAP):
    _loaded.app = APP  # called in process, as from_asgi would


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> Iterator[tuple[Camara, str]]:
    with harness(sqlite_engine, sealer) as h:
        camara = build(h)
        APP.state.ctx = h.ctx
        yield camara, camara.token()


def _run(case: schemathesis.Case[Any], world: tuple[Camara, str], base: str) -> None:
    _, token = world
    response = case.call_and_validate(
        base_url=f"http://testserver{base}",
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
    )
    LEAKS.add_text(f"schemathesis {case.method} {base}{case.path}", response.text)


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


@SIM_SWAP.parametrize()
@_SETTINGS
def test_sim_swap_conforms_to_its_spec(
    case: schemathesis.Case[Any], world: tuple[Camara, str]
) -> None:
    _run(case, world, "/sim-swap/v2")


@DEVICE_SWAP.parametrize()
@_SETTINGS
def test_device_swap_conforms_to_its_spec(
    case: schemathesis.Case[Any], world: tuple[Camara, str]
) -> None:
    _run(case, world, "/device-swap/v1")
