"""Runs last (pytest collects the folder `zz` after every other): every API response, log
line, CLI output and event payload the suite produced is scanned for the secrets it
created (K, OPc, tokens). The one allowed place for a token is its creation."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.leaks import LEAKS, LeakWatch


def test_the_scanner_finds_a_planted_secret() -> None:
    watch = LeakWatch()
    k = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    watch.add_secret(k)
    watch.add_text("log", "harmless")
    assert watch.findings() == []
    for text in (k.hex(), k.hex().upper(), base64.b64encode(k).decode()):
        watch.add_text("api", f"prefix {text} suffix")
    assert len(watch.findings()) == 3
    watch.allow_once("token", "ztsim_x")
    watch.add_secret("ztsim_x")
    watch.add_text("token", "ztsim_x")
    assert len(watch.findings()) == 3


_CHARS = st.sampled_from('ab09+/-_ $:.{}"')


@given(
    secrets=st.sets(st.text(_CHARS, min_size=1, max_size=6), max_size=6),
    texts=st.lists(st.text(_CHARS, max_size=40), max_size=6),
)
def test_the_scan_finds_exactly_what_testing_each_secret_in_each_text_finds(
    secrets: set[str], texts: list[str]
) -> None:
    watch = LeakWatch()
    for secret in secrets:
        watch.add_secret(secret)
    for text in texts:
        watch.add_text("api", text)
    naive = [
        f"api: contains a test secret ({s[:6]}…)"
        for text in texts
        for s in sorted(secrets)
        if s in text
    ]
    assert watch.findings() == naive


def test_nothing_the_suite_emitted_carries_a_secret() -> None:
    if len(LEAKS.emitted) < 50:
        # Run alone (e.g. `pytest tests/test_zz_no_secret_leaks.py`) there is nothing to scan.
        pytest.skip("run with the rest of the suite: nothing was collected")
    assert LEAKS.secrets, "the suite registered no secrets: the scan would prove nothing"
    assert {where.split()[0] for where, _ in LEAKS.emitted} >= {"api", "log", "event"}
    assert LEAKS.findings() == []
