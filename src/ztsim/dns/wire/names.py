"""Normalising domain names for lookups and lists: one ASCII spelling per name.

`normalize_name` lowercases, drops one trailing dot, turns internationalised
labels into their A-labels (IDNA 2008 with UTS #46 mapping, via the `idna`
package; without it, Python's built-in IDNA 2003 codec, which accepts a few
names IDNA 2008 refuses) and checks the length limits. Labels may hold
letters, digits, hyphens and underscores: DNS allows more than hostnames do
(RFC 2181 §11), and block lists carry names like `_dmarc.x` or `ad-.x.com`.
"""

import re

from ztsim.dns.wire.errors import InvalidDomain

try:
    import idna as _idna
except ImportError:  # pragma: no cover - the venv ships it
    _idna = None  # type: ignore[assignment]

MAX_NAME_TEXT = 253  # RFC 1035 §3.1: 255 wire octets minus the first length and the root
MAX_LABEL = 63  # RFC 1035 §2.3.4
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")


def normalize_name(name: str) -> str:
    """The lowercase ASCII form of `name`, without trailing dot; `InvalidDomain` if bad."""
    if not isinstance(name, str):
        raise InvalidDomain(f"domain name must be a str, got {type(name).__name__}")
    text = name[:-1] if name.endswith(".") else name
    text = text.lower() if text.isascii() else _to_ascii(text)
    if len(text) > MAX_NAME_TEXT:
        raise InvalidDomain(f"name of {len(text)} characters (at most {MAX_NAME_TEXT})")
    if _NAME.fullmatch(text) is None:
        raise InvalidDomain(_why_bad(text))
    return text


def is_normalized(name: str) -> bool:
    """True if `normalize_name(name) == name`, checked without the IDNA work."""
    return (
        isinstance(name, str)
        and name.isascii()
        and len(name) <= MAX_NAME_TEXT
        and _NAME.fullmatch(name) is not None
    )


def _to_ascii(text: str) -> str:
    if _idna is None:  # pragma: no cover
        try:
            return text.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidDomain("name is not a valid IDNA 2003 name") from None
    try:
        mapped = _idna.uts46_remap(text, std3_rules=False, transitional=False)
    except _idna.IDNAError:
        raise InvalidDomain("name has characters UTS #46 does not map") from None
    labels = []
    for label in mapped.split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(_idna.alabel(label).decode("ascii"))
        except (_idna.IDNAError, UnicodeError):
            raise InvalidDomain("label is not a valid IDNA 2008 label") from None
    return ".".join(labels)


def _why_bad(text: str) -> str:
    if not text:
        return "empty name"
    for label in text.split("."):
        if not label:
            return "empty label"
        if len(label) > MAX_LABEL:
            return f"label of {len(label)} characters (at most {MAX_LABEL})"
        if _LABEL.fullmatch(label) is None:
            return "label has characters other than letters, digits, '-' and '_'"
    return "invalid name"  # pragma: no cover - the checks above cover the pattern


def name_suffixes(name: str) -> list[str]:
    """`name` and each parent, most specific first: a.b.c, b.c, c."""
    suffixes = [name]
    index = name.find(".")
    while index >= 0:
        suffixes.append(name[index + 1 :])
        index = name.find(".", index + 1)
    return suffixes
