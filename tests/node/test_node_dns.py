"""Upstream addresses in the settings: plain, with port, IPv6, DoT with a certificate name,
and DoH URLs."""

from __future__ import annotations

import pytest

from ztsim.dns.serve.upstream import UpstreamSpec
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
        (
            "https://127.0.0.1:8443/dns-query",
            UpstreamSpec("127.0.0.1", 8443, https_path="/dns-query"),
        ),
        ("https://dns.example", UpstreamSpec("dns.example", 443, https_path="/dns-query")),
        ("HTTPS://DNS.Example/q", UpstreamSpec("dns.example", 443, https_path="/q")),
        ("https://[2001:db8::1]:8443/", UpstreamSpec("2001:db8::1", 8443, https_path="/")),
        (
            "https://dns.example/dns-query{?dns}",  # RFC 8484 §3 URI template
            UpstreamSpec("dns.example", 443, https_path="/dns-query"),
        ),
    ],
)
def test_upstream_settings(text: str, spec: UpstreamSpec) -> None:
    assert _upstream(text) == spec


@pytest.mark.parametrize(
    "text",
    [
        "host:port",
        "tls://192.0.2.9:853",
        "[::1]:x",
        "http://127.0.0.1:8080/dns-query",
        "udp://127.0.0.1",
        "https://",
        "https://:8443/dns-query",
        "https://dns.example:0/dns-query",
        "https://dns.example:65536/dns-query",
        "https://dns.example:x/dns-query",
        "https://dns.example/dns-query?dns=AAAB",
        "https://dns.example/dns-query#frag",
        "https://dns.example/dns query",
    ],
)
def test_bad_upstream_settings(text: str) -> None:
    with pytest.raises(InvalidInput):
        _upstream(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://user:s3cret-pw@dns.example/dns-query",
        "https://s3cret-pw@dns.example/dns-query",
        "http://user:s3cret-pw@dns.example/dns-query",
        "https://dns.example:x/dns-query/s3cret-pw",
    ],
)
def test_refused_urls_are_not_echoed(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _upstream(text)
    assert "s3cret-pw" not in str(refused.value)
    if "@" in text and text.startswith("https"):
        assert "credentials" in str(refused.value)
