"""Debian's Chromium (/usr/bin/chromium) driven by Playwright, for the web tests that
need a real browser: the `browser` fixture skips when the binary or Playwright is
missing. Playwright's own browser download is never used (it does not work on these
machines). Also what those tests share: a page's reported problems (`watch`) and
signing in through the login form (`sign_in_page`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]
TIMEOUT_MS = 15_000
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=TIMEOUT_MS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """What a page reported while a test drove it. `problems`: console errors and
    Content Security Policy messages, uncaught page errors, responses of 400 or more;
    `hosts`: every host the page asked, so a test can show it asked only the server."""

    problems: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)


def watch(page: Any) -> Watched:
    """Starts collecting what `page` reports; the result fills as the test goes on."""
    watched = Watched()

    def console(message: Any) -> None:
        # A CSP message need not be an error (a warning still means a broken policy).
        if message.type == "error" or "Content Security Policy" in message.text:
            watched.problems.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400:
            watched.problems.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(str(error)))
    page.on("request", lambda request: watched.hosts.add(urlsplit(request.url).netloc))
    page.on("response", response)
    return watched


def sign_in_page(page: Any, base: str, token: str) -> None:
    """Signs in through the login form as a person does (label, button), and waits until
    the browser has left the form; where it lands is the caller's to check."""
    page.goto(base + "/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))
