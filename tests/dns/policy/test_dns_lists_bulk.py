"""The whole-text fast paths answer only for plain lists, and then exactly as line parsing does."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.policy.lists import parse_domains, parse_hosts
from ztsim.dns.policy.lists_bulk import scan_domains, scan_hosts

_label = st.sampled_from(["ads", "X", "a-b", "_t", "0", "b" * 63, "c" * 64, "ü", ""])
_name = st.lists(_label, min_size=1, max_size=5).map(".".join)
_space = st.sampled_from(["", " ", "\t", "  "])
_ending = st.sampled_from(["", ".", " # note", "#x", "\r", " extra.name"])
_address = st.sampled_from(["0.0.0.0", "127.0.0.1", "::", "10.1.2.3", "nope", ""])  # noqa: S104
_comment = st.sampled_from(["", "# comment", "   ", "#", "! adblock"])
_hosts_line = st.one_of(
    st.tuples(_space, _address, st.sampled_from([" ", "\t"]), _name, _ending).map("".join),
    _comment,
    st.just("0.0.0.0 localhost"),
    st.just("0.0.0.0 0.0.0.0"),
)
_domain_line = st.one_of(
    st.tuples(_space, st.sampled_from(["", "*.", "*"]), _name, _ending).map("".join), _comment
)
_newline = st.sampled_from(["\n", "\r\n"])


def _text(lines: list[str], newline: str, final: bool) -> str:
    return newline.join(lines) + (newline if final and lines else "")


@given(st.lists(_hosts_line, max_size=12), _newline, st.booleans())
@settings(max_examples=500)
def test_hosts_fast_path_agrees_with_line_parser(lines: list[str], nl: str, final: bool) -> None:
    text = _text(lines, nl, final)
    assert parse_hosts(text) == parse_hosts(iter(text.splitlines()))


@given(st.lists(_domain_line, max_size=12), _newline, st.booleans())
@settings(max_examples=500)
def test_domains_fast_path_agrees_with_line_parser(lines: list[str], nl: str, final: bool) -> None:
    text = _text(lines, nl, final)
    assert parse_domains(text) == parse_domains(iter(text.splitlines()))


def test_plain_lists_take_the_fast_path() -> None:
    hosts = "# list\n0.0.0.0 Ads.Example.com.\n127.0.0.1\tt.example  # why\n\n0.0.0.0 localhost\n"
    assert scan_hosts(hosts) == (["ads.example.com", "t.example", "localhost"], 2)
    parsed = parse_hosts(hosts)
    assert parsed.blocked == {"ads.example.com", "t.example"}
    assert (parsed.good_lines, parsed.ignored_lines, parsed.bad_lines) == (2, 3, 0)
    assert scan_domains("a.example\n*.b.example\n# c\n") == (["a.example"], ["b.example"], 1)


def test_anything_else_goes_to_the_line_parser() -> None:
    assert scan_hosts("0.0.0.0 a.example\n0.0.0.0 a..example\n") is None  # bad line
    assert scan_hosts("0.0.0.0 a.example b.example\n") is None  # two names on a line
    assert scan_hosts("10.0.0.1 a.example\n") is None  # not a sink address
    assert scan_hosts("0.0.0.0 bücher.example\n") is None  # IDN
    assert scan_hosts("0.0.0.0 a.example\r\n") is None  # CRLF: line parser counts lines
    assert scan_domains(("x" * 60 + ".") * 5 + "com\n") is None  # longer than 253
    assert scan_domains("||ads.example^\n") is None
    parsed = parse_hosts("0.0.0.0 a.example\n0.0.0.0 a..example\n")
    assert (parsed.good_lines, parsed.bad_lines) == (1, 1)
    assert parsed.bad_samples[0].number == 2
