"""Name normalisation: case, trailing dot, IDNA 2008 A-labels, limits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.dns.wire.errors import InvalidDomain
from ztsim.dns.wire.names import is_normalized, name_suffixes, normalize_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("_dmarc.Example.com", "_dmarc.example.com"),
        ("ad-.tracker.example", "ad-.tracker.example"),
        ("Bücher.example", "xn--bcher-kva.example"),
        # RFC 3492 §7.1 sample (B), Chinese (simplified): Punycode ihqwcrb4cv8a8dqg056pqjye.
        (
            "\u4ed6\u4eec\u4e3a\u4ec0\u4e48\u4e0d\u8bf4\u4e2d\u6587.cn",
            "xn--ihqwcrb4cv8a8dqg056pqjye.cn",
        ),
        # UTS #46 non-transitional (IDNA 2008): ß stays, where IDNA 2003 gave "fass".
        ("faß.de", "xn--fa-hia.de"),
        # UTS #46 maps the ideographic full stop to a dot and full-width letters to ASCII.
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002com", "example.com"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalize(name: str, expected: str) -> None:
    assert normalize_name(name) == expected
    assert is_normalized(expected)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty name"),
        (".", "empty name"),
        ("a..b", "empty label"),
        ("a" * 64 + ".com", "label of 64"),
        (".".join(["abcdefghi"] * 26), "at most 253"),
        ("*.example.com", "characters other than"),
        ("a b.com", "characters other than"),
        ("☃.com", "IDNA 2008"),
    ],
)
def test_refused(name: str, reason: str) -> None:
    with pytest.raises(InvalidDomain, match=reason):
        normalize_name(name)


def test_non_str_refused() -> None:
    with pytest.raises(InvalidDomain):
        normalize_name(b"example.com")  # type: ignore[arg-type]


def test_longest_name_fits_255_wire_octets() -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    assert normalize_name(name) == name


@given(st.text(max_size=40))
def test_normalize_is_idempotent_or_refuses(text: str) -> None:
    try:
        name = normalize_name(text)
    except InvalidDomain:
        return
    assert is_normalized(name)
    assert normalize_name(name) == name


def test_suffixes() -> None:
    assert name_suffixes("a.b.example.com") == [
        "a.b.example.com",
        "b.example.com",
        "example.com",
        "com",
    ]
    assert name_suffixes("com") == ["com"]
