"""API clients' pure core: scopes, phone numbers, credentials and grants."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.risk import clients
from ztsim.risk.clients import Grant


def _counting() -> Callable[[int], bytes]:
    n = count()
    return lambda size: bytes([next(n) % 256]) * size


def test_scopes_parse_as_rfc_6749_says() -> None:
    assert clients.parse_scopes("sim-swap:check device-swap") == {"sim-swap:check", "device-swap"}
    assert clients.parse_scopes("sim-swap  sim-swap") == {"sim-swap"}
    for bad in ("", " ", "SIM-SWAP:CHECK", "sim-swap:check admin", "openid"):
        with pytest.raises(InvalidInput):
            clients.parse_scopes(bad)
    assert clients.format_scopes({"sim-swap:check", "device-swap"}) == "device-swap sim-swap:check"


def test_an_apis_whole_scope_covers_its_operations_only() -> None:
    grant = Grant("o", "c", frozenset({"sim-swap"}), None)
    assert grant.allows("sim-swap:check")
    assert grant.allows("sim-swap:retrieve-date")
    assert not grant.allows("device-swap:check")
    assert not grant.allows("sim-swap-subscriptions:read")
    narrow = Grant("o", "c", frozenset({"device-swap:check"}), None)
    assert narrow.allows("device-swap:check")
    assert not narrow.allows("device-swap:retrieve-date")
    assert not narrow.allows("device-swap")


@given(st.from_regex(r"\A\+[1-9][0-9]{4,14}\Z"))
def test_every_e164_number_is_taken_and_stored_without_its_plus(number: str) -> None:
    assert clients.checked_phone_number(number) == number
    assert clients.phone_number_of(clients.msisdn_of(number)) == number


@given(st.text(max_size=20).filter(lambda t: not re.fullmatch(r"\+[1-9][0-9]{4,14}", t)))
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        clients.checked_phone_number(text)


def test_credentials_come_from_the_injected_randomness() -> None:
    random = _counting()
    client_id = clients.new_client_id(random)
    secret = clients.new_client_secret(random)
    token = clients.new_access_token(random)
    assert client_id == "00" * 16
    assert secret == "ztsimcs_" + "AQEB" * 10 + "AQE"  # 32 bytes of 0x01, base64url
    assert token.startswith("ztsimat_")
    assert len(token) == len(secret) == 51
    assert clients.looks_like_secret(secret)
    assert not clients.looks_like_secret(token)
    assert clients.looks_like_access_token(token)
    assert not clients.looks_like_access_token(secret)
    assert not clients.looks_like_access_token(token[:-1])


def test_secrets_are_stored_as_their_sha256() -> None:
    digest = clients.secret_hash("ztsimcs_x")
    assert len(digest) == 32
    assert digest != clients.secret_hash("ztsimcs_y")
    assert digest.hex() == "1c32fd73ec12951a19db6c92f438558fd76fa4169f8c3b1191454576cf581155"


def test_token_lifetime_is_one_hour() -> None:
    assert clients.TOKEN_LIFETIME.total_seconds() == 3600
