"""Block list parsers: hosts, plain domains, AdBlock; bad lines are counted, never raised."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.policy.lists import (
    BadLine,
    ListFormat,
    detect_format,
    parse_adblock,
    parse_domains,
    parse_hosts,
    parse_list,
)

HOSTS = """\
# Title: test list
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
255.255.255.255 broadcasthost
0.0.0.0 0.0.0.0

0.0.0.0 Ads.Example.com tracker.example.net   # two names
127.0.0.1 metrics.example.org
:: v6.example.com
0.0.0.0
not-an-ip bad.example.com
0.0.0.0 good.example.com bad_name!.com
0.0.0.0 bücher.example
"""


def test_hosts() -> None:
    parsed = parse_hosts(HOSTS)
    assert parsed.blocked == {
        "ads.example.com",
        "tracker.example.net",
        "metrics.example.org",
        "v6.example.com",
        "good.example.com",
        "xn--bcher-kva.example",
    }
    assert parsed.blocked_subtree == frozenset()
    assert (parsed.good_lines, parsed.bad_lines, parsed.ignored_lines) == (4, 3, 6)
    assert [line.number for line in parsed.bad_samples] == [10, 11, 12]
    assert parsed.bad_samples[0] == BadLine(10, "hosts line needs an address and a name")
    assert parsed.bad_samples[1].reason == "first field is not an IP address"


def test_domains() -> None:
    text = "# comment\nexample.com\nWWW.Example.org.\n*.wild.example\nbad domain\n||x^\n\n"
    parsed = parse_domains(text)
    assert parsed.blocked == {"example.com", "www.example.org"}
    assert parsed.blocked_subtree == {"wild.example"}
    assert (parsed.good_lines, parsed.bad_lines, parsed.ignored_lines) == (3, 2, 2)


ADBLOCK = """\
[Adblock Plus 2.0]
! Title: test
||ads.example.com^
||Tracker.Example.net^|
@@||cdn.ads.example.com^
||ads.example.org^$third-party
example.com##.banner
/banner/*/img^
||ads.*.example^
||a..b^
||noanchor.example
# hash comment
"""


def test_adblock() -> None:
    parsed = parse_adblock(ADBLOCK)
    assert parsed.blocked_subtree == {"ads.example.com", "tracker.example.net"}
    assert parsed.allowed_subtree == {"cdn.ads.example.com"}
    assert parsed.blocked == frozenset()
    assert (parsed.good_lines, parsed.unsupported_lines, parsed.bad_lines) == (3, 5, 1)
    assert parsed.bad_samples == (BadLine(10, "empty label"),)


def test_sample_limit() -> None:
    parsed = parse_domains(["bad name"] * 50, max_samples=3)
    assert parsed.bad_lines == 50
    assert [line.number for line in parsed.bad_samples] == [1, 2, 3]


def test_detect_and_parse_list() -> None:
    assert detect_format(HOSTS) is ListFormat.HOSTS
    assert detect_format(ADBLOCK) is ListFormat.ADBLOCK
    assert detect_format("a.com\nb.com\n") is ListFormat.DOMAINS
    assert parse_list(iter(HOSTS.splitlines())) == parse_hosts(HOSTS)


_line_text = st.text(
    alphabet=st.sampled_from([*"0.:#!@|^$*/ \tabcé_-19[]", "\u3002", "\ufeff", "\x00"]),
    max_size=30,
)


@given(st.lists(_line_text, max_size=10), st.sampled_from(list(ListFormat)))
@settings(max_examples=400)
def test_any_text_is_counted_never_raised(lines: list[str], fmt: ListFormat) -> None:
    text = "\n".join(lines)
    parsed = parse_list(text, fmt)
    total = parsed.good_lines + parsed.bad_lines + parsed.unsupported_lines + parsed.ignored_lines
    assert total == len(text.splitlines())


@given(st.text(max_size=200))
def test_arbitrary_unicode_never_raises(text: str) -> None:
    for fmt in ListFormat:
        parse_list(text, fmt)
    parse_list(text)
