"""The sealed session cookie: opens only as sealed, only within its lifetime."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from ztsim.sealing import Sealer
from ztsim.web import session

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "zt_session_test_token_value"


def _sealed(sealer: Sealer) -> str:
    return session.seal(sealer, session.Session(TOKEN, "secret", T0))


def test_a_sealed_session_opens_within_its_lifetime(sealer: Sealer) -> None:
    value = _sealed(sealer)
    assert TOKEN not in value
    opened = session.open_cookie(sealer, value, T0 + timedelta(hours=1))
    assert opened == session.Session(TOKEN, "secret", T0)


def test_it_expires_and_is_not_valid_before_it_began(sealer: Sealer) -> None:
    value = _sealed(sealer)
    assert session.open_cookie(sealer, value, T0 + session.LIFETIME) is None
    assert session.open_cookie(sealer, value, T0 - timedelta(seconds=1)) is None


def test_tampered_foreign_and_junk_values_do_not_open(sealer: Sealer) -> None:
    value = _sealed(sealer)
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    foreign = sealer.seal(b'{"t": "x", "c": "y", "s": "2026-01-05T09:00:00+00:00"}', b"other")
    foreign_value = base64.urlsafe_b64encode(foreign).decode()
    now = T0 + timedelta(minutes=1)
    for bad in (flipped, foreign_value, "", None, "!!!", "a" * 5000):
        assert session.open_cookie(sealer, bad, now) is None


def test_csrf_matches_only_the_same_non_empty_secret() -> None:
    assert session.csrf_matches("abc", "abc")
    assert not session.csrf_matches("abc", "abd")
    assert not session.csrf_matches("", "")
    assert not session.csrf_matches(None, "abc")
    assert not session.csrf_matches("abc", None)


def test_new_secrets_differ() -> None:
    assert len({session.new_secret() for _ in range(20)}) == 20
