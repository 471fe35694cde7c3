"""Upstream addresses in the settings: plain, with port, IPv6, and DoT with a certificate name."""

from __future__ import annotations

import pytest

from ztsim.dns.upstream import UpstreamSpec
from ztsim.errors import InvalidInput
from ztsim.node.dns import _upstream


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("192.0.2.1", UpstreamSpec("192.0.2.1", 53)),
        ("127.0.0.1:5300", UpstreamSpec("127.0.0.1", 5300)),
        ("2001:db8::1", UpstreamSpec("2001:db8::1", 53)),
        ("[2001:db8::1]:5300", UpstreamSpec("2001:db8::1", 5300)),
        ("tls://dns.example@192.0.2.9", UpstreamSpec("192.0.2.9", 853, "dns.example")),
        ("tls://dns.example@192.0.2.9:8853", UpstreamSpec("192.0.2.9", 8853, "dns.example")),
    ],
)
def test_upstream_settings(text: str, spec: UpstreamSpec) -> None:
    assert _upstream(text) == spec


@pytest.mark.parametrize("text", ["host:port", "tls://192.0.2.9:853", "[::1]:x"])
def test_bad_upstream_settings(text: str) -> None:
    with pytest.raises(InvalidInput):
        _upstream(text)
