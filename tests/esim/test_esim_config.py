"""The SM-DP+ placeholder warning: reserved names are caught, real ones are not, and the
warning says what fails and which setting to change."""

from __future__ import annotations

import pytest

from ztsim.esim.config import (
    DEFAULT_SMDP_ADDRESS,
    EsimConfig,
    is_placeholder,
    issued_placeholder_warning,
    placeholder_warning,
    smdp_placeholder_warning,
)
from ztsim.settings import Settings

DEFAULT_WARNING = (
    "warning: the SM-DP+ address smdp.example.test is a placeholder (a reserved name that "
    "never resolves): phones cannot download eSIM profiles ordered with it. Set "
    "ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in the config file) to your SM-DP+ address."
)


@pytest.mark.parametrize(
    "address",
    [
        "smdp.example.test",
        "SMDP.EXAMPLE.TEST.",
        "rsp.example",
        "smdp.invalid",
        "localhost",
        "smdp.localhost",
        "smdp.example.com",
        "example.org",
        "rsp.example.net",
    ],
)
def test_reserved_names_are_placeholders(address: str) -> None:
    assert is_placeholder(address)


@pytest.mark.parametrize(
    "address",
    ["smdp.acme.com", "rsp.truphone.com", "testing.example-operator.net", "smdp.test.io"],
)
def test_real_names_are_not(address: str) -> None:
    assert not is_placeholder(address)
    assert placeholder_warning(address) is None


def test_the_default_settings_warn_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZTSIM_ESIM_SMDP_ADDRESS", raising=False)
    assert Settings().esim_smdp_address == DEFAULT_SMDP_ADDRESS
    assert smdp_placeholder_warning(Settings()) == DEFAULT_WARNING
    assert smdp_placeholder_warning(Settings(esim_smdp_address="smdp.acme.com")) is None
    assert placeholder_warning(EsimConfig().smdp_address) == DEFAULT_WARNING


def test_packs_of_orders_issued_with_a_placeholder_say_to_reissue() -> None:
    assert issued_placeholder_warning(["smdp.acme.com"]) is None
    assert issued_placeholder_warning([]) is None
    assert issued_placeholder_warning(["smdp.example.test", "smdp.acme.com"] * 2) == (
        "warning: these packs name the placeholder SM-DP+ address smdp.example.test: phones "
        "cannot download their profiles. Set ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in "
        "the config file) to your SM-DP+ address and re-issue these orders."
    )
