"""Whole-text fast paths for the list parsers, for lists in their plainest shape.

A million-line list parsed line by line in Python takes seconds; the same list
matched by one regular expression over the whole text takes a fraction of that,
and list reloads are what this buys. The fast path only answers when every line
is either a plain entry or blank/comment, in ASCII, with names that need no
normalising beyond lowercase and one trailing dot. Anything else returns None and
the line-by-line parser in `lists` decides, so both paths give the same result
(a property test holds them to it).
"""

import re

from ztsim.dns.wire.names import MAX_NAME_TEXT

_NAME = r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}"  # RFC 1035 §2.3.4 label limit, as names.py
# Each pattern starts at the newline before its line (the text gets one in front) and
# stops before the next: a literal first character lets the regex engine skip ahead
# to candidate positions instead of trying every one, as `^` with re.M would.
_TAIL = r"\.?[ \t]*(?:#[^\n]*)?(?=\n)"
_HOSTS_LINE = re.compile(rf"\n[ \t]*(?:0\.0\.0\.0|127\.0\.0\.1)[ \t]+({_NAME}){_TAIL}")
_DOMAIN_LINE = re.compile(rf"\n[ \t]*(\*\.)?({_NAME}){_TAIL}")
_BLANK_LINE = re.compile(r"\n[ \t]*(?:#[^\n]*)?(?=\n)")
# Characters `str.splitlines` breaks at or `str.strip` removes besides space, tab and \n.
_OTHER_SEPARATORS = "\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _prepared(text: str) -> tuple[str, int] | None:
    """Newline, the lowercased text, newline; and its line count. None if not plain."""
    if not text.isascii() or any(char in text for char in _OTHER_SEPARATORS):
        return None
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return "\n" + text.lower() + ("\n" if text and not text.endswith("\n") else ""), lines


def _short_enough(names: list[str]) -> bool:
    return not names or max(map(len, names)) <= MAX_NAME_TEXT


def scan_hosts(text: str) -> tuple[list[str], int] | None:
    """Names of `0.0.0.0 name` / `127.0.0.1 name` lines, in order, and the blank lines."""
    prepared = _prepared(text)
    if prepared is None:
        return None
    body, lines = prepared
    names = _HOSTS_LINE.findall(body)
    blank = len(_BLANK_LINE.findall(body))
    if len(names) + blank != lines or not _short_enough(names):
        return None
    return names, blank


def scan_domains(text: str) -> tuple[list[str], list[str], int] | None:
    """Exact names, `*.`-prefixed (subtree) names and the blank lines of a domain list."""
    prepared = _prepared(text)
    if prepared is None:
        return None
    body, lines = prepared
    found: list[tuple[str, str]] = _DOMAIN_LINE.findall(body)
    blank = len(_BLANK_LINE.findall(body))
    exact = [name for star, name in found if not star]
    subtree = [name for star, name in found if star]
    if len(found) + blank != lines or not _short_enough(exact) or not _short_enough(subtree):
        return None
    return exact, subtree, blank
