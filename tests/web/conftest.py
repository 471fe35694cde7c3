"""What the page tests share: a browser-like client on the whole app whose every answer
goes into the suite's final leak scan (a page must never carry a secret)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient

from ztsim.api.app import create_app

from support.api import ApiHarness
from support.leaks import LEAKS


def _record(response: httpx2.Response) -> None:
    response.read()
    LEAKS.add_text(f"web {response.request.method} {response.request.url.path}", response.text)


@pytest.fixture
def client(api: ApiHarness) -> Iterator[TestClient]:
    with TestClient(create_app(api.ctx)) as c:
        c.event_hooks = {"request": [], "response": [_record]}
        yield c
