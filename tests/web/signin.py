"""Signing in through the login form, as a browser does (the web tests share it)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> int:
    """Signs in through the form as a browser would; the status of the form's answer."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    answer = client.post(
        "/login",
        data={"csrf": csrf_in(form.text), "token": token},
        follow_redirects=False,
    )
    return answer.status_code
